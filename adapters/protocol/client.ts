import type { Readable, Writable } from 'node:stream';
import { BackendError, BackendSkip } from '../backend.ts';
import { DEFAULT_MAX_LINE_BYTES, preview, readLines, tickBatchedWriter } from './lines.ts';
import { PROTOCOL_VERSION, type Handshake, type OkResults, type Op, type RequestOf } from './messages.ts';
import { handshakeProblem, isObject, requestProblem, responseProblem } from './validation.ts';

export interface ProtocolClientOptions {
  /** How long one request may wait for its response; a backend that misses it is declared hung. */
  timeoutMs?: number;
  handshakeTimeoutMs?: number;
  maxLineBytes?: number;
  /** Check every message sent and received against spec/schema/protocol (tests turn this on). */
  validate?: boolean;
  /** Names the peer in error messages, e.g. "process `python3 backend.py` (pid 42)". */
  peer?: string;
  /**
   * Called when the peer's output ends; resolves with what became of the peer ("exited with code 1")
   * once its stderr has been read, so the error can include both. Waited for at most `goneGraceMs`.
   */
  peerGone?: () => Promise<string>;
  /** The last lines the peer wrote to its stderr, if it has one. */
  stderrTail?: () => string;
}

const GONE_GRACE_MS = 2000;

interface Pending {
  op: Op;
  resolve(result: unknown): void;
  reject(err: Error): void;
  /** performance.now() by which the response must have arrived. */
  deadline: number;
}

/**
 * The harness side of the stdio protocol over any byte channel (a child's stdout/stdin, a socket, an
 * in-memory pair). Requests may be pipelined; each waits for the response carrying its seq. Any
 * protocol breach — garbage, EOF, an unknown seq, an oversized line, a missed deadline — fails every
 * pending and future request with one BackendError, since nothing the peer says afterwards can be trusted.
 */
export class ProtocolClient {
  private readonly pending = new Map<number, Pending>();
  private nextSeq = 1;
  private broken: BackendError | undefined;
  private readonly detach: () => void;
  private readonly handshakeLine: Promise<string>;
  private settleHandshake: { resolve(line: string): void; reject(err: Error): void } | undefined;
  private readonly timeoutMs: number;
  private readonly peer: string;
  /**
   * One timer watches the oldest pending request (a Map keeps insertion order), not one per request:
   * the first missed deadline breaks the connection anyway, and a timer per call costs more than the
   * call itself when thousands are pipelined.
   */
  private watchdog: NodeJS.Timeout | undefined;
  private readonly send: (line: string) => void;

  constructor(
    input: Readable,
    private readonly output: Writable,
    private readonly options: ProtocolClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.peer = options.peer ?? 'backend';
    this.send = tickBatchedWriter(output);
    this.handshakeLine = new Promise<string>((resolve, reject) => {
      this.settleHandshake = { resolve, reject };
    });
    // A handshake nobody awaits yet must not count as an unhandled rejection; handshake() rethrows it.
    this.handshakeLine.catch(() => undefined);
    // A write fails (EPIPE) when the peer died, often before its exit is known: say how it ended, too.
    output.on(
      'error',
      (err: Error) => void this.failAfterPeerGone(`cannot write to the ${this.peer}: ${err.message}`),
    );
    this.detach = readLines(input, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, {
      line: (text) => this.onLine(text),
      end: (partial) =>
        void this.failAfterPeerGone(
          partial
            ? `the ${this.peer} ended its output in the middle of a line: ${preview(partial.toString('utf8'))}`
            : `the ${this.peer} closed its output`,
        ),
      error: (message) => this.fail(`bad output from the ${this.peer}: ${message}`),
    });
  }

  /** The first line: who the backend is. Fails on a wrong protocol version or a malformed profile. */
  async handshake(): Promise<Handshake> {
    const timeoutMs = this.options.handshakeTimeoutMs ?? this.timeoutMs;
    const timer = setTimeout(
      () => this.fail(`no handshake from the ${this.peer} within ${timeoutMs} ms`),
      timeoutMs,
    );
    try {
      const message = this.parse(await this.handshakeLine);
      if (isObject(message) && message.kvmspec === 'backend' && message.protocol !== PROTOCOL_VERSION) {
        throw this.fail(
          `the ${this.peer} speaks protocol version ${JSON.stringify(message.protocol)}; this harness speaks ${PROTOCOL_VERSION} (docs/protocol.md says what changed between versions)`,
        );
      }
      const problem = handshakeProblem(message);
      if (problem) throw this.fail(`the ${this.peer}'s handshake is malformed: ${problem}`);
      return message as Handshake;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends one request and resolves with its op's result; a `skip` answer rejects with BackendSkip. */
  request<O extends Op>(body: RequestOf<O>): Promise<OkResults[O]> {
    if (this.broken) return Promise.reject(this.broken);
    const seq = this.nextSeq++;
    const message = { seq, ...body };
    if (this.options.validate) {
      const problem = requestProblem(message);
      // The harness built the message: a problem here is our bug, not the backend's.
      if (problem)
        return Promise.reject(new Error(`harness built an invalid ${body.op} request: ${problem}`));
    }
    return new Promise<OkResults[O]>((resolve, reject) => {
      this.pending.set(seq, { op: body.op, resolve, reject, deadline: performance.now() + this.timeoutMs });
      this.watch();
      this.send(`${JSON.stringify(message)}\n`);
    });
  }

  /**
   * Arms the watchdog for the oldest pending request. An armed one stays (its deadline is no later than any
   * newer request's) and is only held from keeping the process alive while nothing is pending.
   */
  private watch(): void {
    if (this.broken) return;
    if (this.watchdog) {
      this.watchdog.ref();
      return;
    }
    const oldest = this.pending.entries().next();
    if (oldest.done) return;
    const [seq, entry] = oldest.value;
    this.watchdog = setTimeout(
      () => {
        this.watchdog = undefined;
        if (this.pending.get(seq) === entry && performance.now() >= entry.deadline) {
          this.fail(`no response to request ${seq} (${entry.op}) within ${this.timeoutMs} ms`);
        } else this.watch();
      },
      Math.max(0, entry.deadline - performance.now()),
    );
  }

  get failure(): BackendError | undefined {
    return this.broken;
  }

  /** Stops listening and ends the output; pending requests fail. */
  close(): void {
    this.fail(`the connection to the ${this.peer} was closed`, false);
    this.output.end();
  }

  private onLine(text: string): void {
    if (this.settleHandshake) {
      const settle = this.settleHandshake;
      this.settleHandshake = undefined;
      settle.resolve(text);
      return;
    }
    let message: unknown;
    try {
      message = this.parse(text);
    } catch {
      return;
    }
    if (!isObject(message) || typeof message.ok !== 'boolean') {
      this.fail(`the ${this.peer} sent a line that is not a response: ${preview(text)}`);
      return;
    }
    if (message.seq === null && message.ok === false) {
      this.fail(`the ${this.peer} could not read a request: ${describeError(message)}`);
      return;
    }
    const seq = message.seq;
    const entry = typeof seq === 'number' ? this.pending.get(seq) : undefined;
    if (!entry) {
      const waiting = [...this.pending.keys()].join(', ') || 'none';
      this.fail(
        `the ${this.peer} answered seq ${JSON.stringify(seq)}, which is not pending (pending: ${waiting})`,
      );
      return;
    }
    this.pending.delete(seq as number);
    if (this.pending.size === 0) this.watchdog?.unref();
    if (this.options.validate) {
      const problem = responseProblem(entry.op, message);
      if (problem) {
        entry.reject(this.fail(`the ${this.peer}'s response to ${entry.op} is malformed: ${problem}`));
        return;
      }
    }
    if (message.ok) {
      entry.resolve(message);
      return;
    }
    const error = isObject(message.error) ? message.error : {};
    const reason = typeof error.message === 'string' ? error.message : 'no message';
    switch (error.kind) {
      case 'skip':
        entry.reject(new BackendSkip(reason));
        return;
      case 'unsupported':
        entry.reject(
          new BackendError(`the ${this.peer} does not support this ${entry.op} request: ${reason}`),
        );
        return;
      default:
        entry.reject(new BackendError(`the ${this.peer} failed a ${entry.op} request: ${reason}`));
    }
  }

  /** Parses a line as JSON; garbage breaks the connection. */
  private parse(text: string): unknown {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw this.fail(`the ${this.peer} sent a line that is not JSON: ${preview(text)}`);
    }
  }

  private async failAfterPeerGone(message: string): Promise<void> {
    if (this.broken) return;
    let fate = '';
    if (this.options.peerGone) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(''), GONE_GRACE_MS);
      });
      fate = await Promise.race([this.options.peerGone(), grace]);
      clearTimeout(timer);
    }
    this.fail(fate ? `${message}; it ${fate}` : message);
  }

  /** Breaks the connection once: every pending request, and every later one, fails with this error. */
  private fail(message: string, withStderr = true): BackendError {
    if (this.broken) return this.broken;
    const tail = withStderr ? this.options.stderrTail?.().trimEnd() : undefined;
    const error = new BackendError(tail ? `${message}\nlast lines of its stderr:\n${indent(tail)}` : message);
    this.broken = error;
    this.detach();
    this.settleHandshake?.reject(error);
    this.settleHandshake = undefined;
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
    for (const entry of this.pending.values()) entry.reject(error);
    this.pending.clear();
    return error;
  }
}

function describeError(message: Record<string, unknown>): string {
  const error = isObject(message.error) ? message.error : {};
  return typeof error.message === 'string' ? error.message : JSON.stringify(message);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  | ${l}`)
    .join('\n');
}
