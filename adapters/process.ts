import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { ARCHES } from '../harness/spec/types.ts';
import { BackendError, type Backend, type BackendFactory } from './backend.ts';
import { connectBackend } from './protocol/remote-backend.ts';

export interface ProcessBackendOptions {
  /** The program and its arguments: everything after `--` on the command line. */
  command: string[];
  timeoutMs?: number;
  handshakeTimeoutMs?: number;
  maxLineBytes?: number;
  /** Validate every protocol message against the schemas (tests do; runs need not). */
  validate?: boolean;
  /** How much of the program's stderr is kept for error messages. */
  stderrBytes?: number;
  cwd?: string;
}

const EXIT_GRACE_MS = 5000;

/**
 * Keeps the last `limit` bytes a stream produced, so a program flooding its stderr costs bounded
 * memory while the lines just before a crash stay available.
 */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = false;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 0) {
      const excess = this.size - this.limit;
      const first = this.chunks[0]!;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
      this.dropped = true;
    }
  }

  /** The last `lines` lines kept; marks that earlier output was dropped. */
  tail(lines = 20): string {
    let text = Buffer.concat(this.chunks).toString('utf8');
    // After a drop the first line is a fragment; show whole lines only.
    if (this.dropped) text = text.slice(text.indexOf('\n') + 1);
    const all = text.trimEnd().split('\n');
    const kept = all.slice(-lines);
    const cut = this.dropped || kept.length < all.length;
    return kept.length === 1 && kept[0] === '' ? '' : `${cut ? '…\n' : ''}${kept.join('\n')}`;
  }
}

type Child = ChildProcessByStdio<Writable, Readable, Readable>;

/** Starts `command`, reads its handshake and returns the backend it serves. */
export async function startProcessBackend(
  options: ProcessBackendOptions,
  wanted: { arch?: string; revision?: string } = {},
): Promise<Backend> {
  const [program, ...args] = options.command;
  if (!program) throw new BackendError('the process backend needs a command after --');
  const env = { ...process.env };
  if (wanted.arch) env.KVMSPEC_ARCH = wanted.arch;
  if (wanted.revision) env.KVMSPEC_REVISION = wanted.revision;
  const child: Child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], env, cwd: options.cwd });
  const stderr = new TailBuffer(options.stderrBytes ?? 64 * 1024);
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  // A write to a dead child's stdin fails with EPIPE; the client reports it, so nothing else must throw.
  child.stdin.on('error', () => undefined);
  const gone = new Promise<string>((resolve) => {
    child.on('error', (err) => resolve(`could not be started: ${err.message}`));
    child.on('close', (code, signal) =>
      resolve(signal ? `was killed by ${signal}` : `exited with code ${code}`),
    );
  });
  const stop = async () => {
    child.stdin.end();
    if (child.exitCode === null && child.signalCode === null) {
      const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_GRACE_MS);
      await gone;
      clearTimeout(timer);
    }
  };
  const peer = `process \`${options.command.join(' ')}\`${child.pid ? ` (pid ${child.pid})` : ''}`;
  try {
    return await connectBackend(child.stdout, child.stdin, {
      timeoutMs: options.timeoutMs,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      maxLineBytes: options.maxLineBytes,
      validate: options.validate,
      peer,
      peerGone: () => gone,
      stderrTail: () => stderr.tail(),
      onDispose: stop,
    });
  } catch (err) {
    child.kill('SIGKILL');
    await gone;
    throw err;
  }
}

/**
 * The `process` backend: any program that speaks the stdio protocol. The program learns the wanted arch
 * and revision from KVMSPEC_ARCH / KVMSPEC_REVISION and states what it serves in its handshake; a
 * program serving another arch than the one asked for is refused.
 */
export function processFactory(options: ProcessBackendOptions): BackendFactory {
  return {
    name: 'process',
    arches: () => [...ARCHES],
    create: async ({ arch, revision }) => {
      const backend = await startProcessBackend(options, { arch, revision });
      if (backend.profile.arch !== arch) {
        await backend.dispose();
        throw new BackendError(
          `process \`${options.command.join(' ')}\` serves ${backend.profile.arch}, not ${arch}`,
        );
      }
      return backend;
    },
  };
}
