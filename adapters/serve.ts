import type { Readable, Writable } from 'node:stream';
import { ARCHES, type Arch } from '../harness/spec/types.ts';
import {
  BackendError,
  BackendSkip,
  type Backend,
  type BackendFactory,
  type BufferId,
  type IoctlArg,
  type PointerTarget,
} from './backend.ts';
import { DEFAULT_MAX_LINE_BYTES, preview, readLines, tickBatchedWriter } from './protocol/lines.ts';
import {
  PROTOCOL_VERSION,
  decodeArg,
  decodeBytes,
  decodeU64,
  encodeBytes,
  type ErrorKind,
  type Handshake,
  type Request,
} from './protocol/messages.ts';
import { isObject, requestProblem } from './protocol/validation.ts';

export interface ServeOptions {
  maxLineBytes?: number;
}

/**
 * Exposes any Backend over the stdio protocol: writes the handshake, then answers requests one at a
 * time in arrival order (requests may be pipelined), under the buffer names the harness chose. Nothing but
 * protocol lines is written to `output`.
 * A request the backend throws on gets an error response; a malformed one gets an error naming the
 * problem; neither stops the server. Resolves after `shutdown` or the end of input, with the backend
 * disposed and `output` ended.
 */
export function serveBackend(
  backend: Backend,
  input: Readable,
  output: Writable,
  options: ServeOptions = {},
): Promise<void> {
  const write = tickBatchedWriter(output);
  const send = (message: object) => write(`${JSON.stringify(message)}\n`);
  const handshake: Handshake = { kvmspec: 'backend', protocol: PROTOCOL_VERSION, profile: backend.profile };
  send(handshake);

  const buffers = new BufferNames();

  return new Promise<void>((resolve) => {
    let queue = Promise.resolve();
    let finished = false;
    /** Disposes the backend, sends the last message (shutdown's answer), and ends the output. */
    const finish = async (last?: object) => {
      if (finished) return;
      finished = true;
      stop();
      await backend.dispose().catch(() => undefined);
      if (last) send(last);
      output.end(() => {
        // Lets a served process exit: its stdin would otherwise keep the event loop alive.
        input.destroy();
        resolve();
      });
    };
    const enqueue = (work: () => Promise<void>) => {
      queue = queue.then(work);
    };
    const stop = readLines(input, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, {
      line: (text) =>
        enqueue(async () => {
          if (finished) return;
          const parsed = parseRequest(text);
          if ('problem' in parsed) {
            send(failure(parsed.seq, 'unsupported', parsed.problem));
            return;
          }
          const { request } = parsed;
          if (request.op === 'shutdown') {
            await finish({ seq: request.seq, ok: true });
            return;
          }
          send(await answer(backend, buffers, request));
        }),
      end: () => enqueue(() => finish()),
      error: (message) =>
        enqueue(async () => {
          send(failure(null, 'unsupported', `cannot read requests: ${message}`));
          await finish();
        }),
    });
  });
}

/**
 * `kvmspec serve`: one backend of `factory` on this process's stdin and stdout. The arch is the one
 * asked for, else KVMSPEC_ARCH (set by the process backend that started us), else the factory's first.
 * console.log goes to stderr meanwhile, so nothing but protocol lines can reach stdout.
 */
export async function serveOnStdio(
  factory: BackendFactory,
  options: { arch?: Arch; revision?: string } = {},
): Promise<void> {
  const wanted = options.arch ?? process.env.KVMSPEC_ARCH ?? factory.arches()[0];
  if (
    !wanted ||
    !(ARCHES as readonly string[]).includes(wanted) ||
    !factory.arches().includes(wanted as Arch)
  ) {
    throw new BackendError(
      `backend '${factory.name}' cannot serve arch '${wanted ?? ''}' (it serves ${factory.arches().join(', ')})`,
    );
  }
  const revision = options.revision ?? process.env.KVMSPEC_REVISION ?? 'upstream';
  console.log = console.error;
  const backend = await factory.create({ arch: wanted as Arch, revision });
  await serveBackend(backend, process.stdin, process.stdout);
}

type Parsed = { request: Request } | { problem: string; seq: number | null };

function parseRequest(text: string): Parsed {
  let message: unknown;
  try {
    message = JSON.parse(text) as unknown;
  } catch {
    return { problem: `request is not JSON: ${preview(text)}`, seq: null };
  }
  const seq = isObject(message) && Number.isSafeInteger(message.seq) ? (message.seq as number) : null;
  const problem = requestProblem(message);
  if (problem) return { problem: `malformed request: ${problem}`, seq };
  return { request: message as Request };
}

/**
 * The harness names buffers (protocol version 2); a Backend names its own. This maps the one to the
 * other for the life of a connection.
 */
class BufferNames {
  private readonly ids = new Map<number, BufferId>();

  /** Makes a buffer under the harness's name, which must not be in use. */
  async add(name: number, make: () => Promise<BufferId>): Promise<void> {
    if (this.ids.has(name)) throw new BackendError(`buffer ${name} is already in use`);
    this.ids.set(name, await make());
  }

  get(name: number): BufferId {
    const id = this.ids.get(name);
    if (id === undefined) throw new BackendError(`unknown buffer ${name}`);
    return id;
  }

  delete(name: number): void {
    this.ids.delete(name);
  }

  /** The argument with every buffer target renamed to the backend's id. */
  arg(arg: IoctlArg): IoctlArg {
    const target = (t: PointerTarget): PointerTarget =>
      t.kind === 'buffer' ? { ...t, buffer: this.get(t.buffer) } : t;
    switch (arg.kind) {
      case 'int':
        return arg;
      case 'pointer':
        return { kind: 'pointer', target: target(arg.target) };
      case 'struct':
        return {
          ...arg,
          pointers: arg.pointers.map((p) => ({ offset: p.offset, target: target(p.target) })),
        };
    }
  }
}

/** Runs one request on the backend; whatever it throws becomes an error response. */
async function answer(
  backend: Backend,
  buffers: BufferNames,
  request: Exclude<Request, { op: 'shutdown' }>,
): Promise<object> {
  const { seq } = request;
  try {
    return { seq, ok: true, ...(await perform(backend, buffers, request)) };
  } catch (err) {
    if (err instanceof BackendSkip) return failure(seq, 'skip', err.message);
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return failure(seq, 'backend', message);
  }
}

async function perform(
  backend: Backend,
  buffers: BufferNames,
  request: Exclude<Request, { op: 'shutdown' }>,
): Promise<object> {
  switch (request.op) {
    case 'open':
      return await backend.open(request.path);
    case 'ioctl': {
      const arg = buffers.arg(decodeArg(request.arg));
      const r = await backend.ioctl(request.handle, decodeU64(request.request), arg);
      if (!Number.isSafeInteger(Number(r.ret)) || BigInt(Number(r.ret)) !== r.ret) {
        throw new RangeError(`ioctl returned ${r.ret}, which the protocol cannot carry exactly`);
      }
      const out: Record<string, unknown> = {
        ret: Number(r.ret),
        errno: r.errno,
        spans: r.spans.map(encodeBytes),
      };
      if (r.image) out.image = encodeBytes(r.image);
      return out;
    }
    case 'close':
      await backend.close(request.handle);
      return {};
    case 'alloc': {
      const alloc: Parameters<Backend['alloc']>[0] = { size: request.size };
      if (request.alignment !== undefined) alloc.alignment = request.alignment;
      if (request.init !== undefined) alloc.init = decodeBytes(request.init);
      if (request.readonly !== undefined) alloc.readonly = request.readonly;
      await buffers.add(request.buffer, () => backend.alloc(alloc));
      return {};
    }
    case 'read':
      return {
        data: encodeBytes(await backend.read(buffers.get(request.buffer), request.offset, request.length)),
      };
    case 'write':
      await backend.write(buffers.get(request.buffer), request.offset, decodeBytes(request.data));
      return {};
    case 'free':
      await backend.free(buffers.get(request.buffer));
      buffers.delete(request.buffer);
      return {};
    case 'mmap':
      await buffers.add(request.buffer, () => backend.mmap(request.handle, request.length, request.offset));
      return {};
  }
}

function failure(seq: number | null, kind: ErrorKind, message: string): object {
  return { seq, ok: false, error: { kind, message } };
}
