import type { Readable, Writable } from 'node:stream';
import {
  BackendError,
  type AllocRequest,
  type Backend,
  type BackendProfile,
  type BufferId,
  type Handle,
  type IoctlArg,
  type IoctlResult,
} from '../backend.ts';
import { ProtocolClient, type ProtocolClientOptions } from './client.ts';
import {
  bufferTargetCount,
  decodeBytes,
  encodeArg,
  encodeBytes,
  encodeU64,
  type OkResults,
  type Op,
  type RequestOf,
} from './messages.ts';

const SHUTDOWN_TIMEOUT_MS = 5000;

/**
 * A Backend whose every operation is a request over the stdio protocol. Results are checked for the
 * shape each op needs even when schema validation is off, so a sloppy peer fails loudly, not subtly.
 *
 * This side names the buffers, so an alloc is not waited for: its id is known at once and the request
 * travels with the call that uses the buffer (behind a slow channel that saves a round trip per buffer).
 * An alloc the peer fails is never lost: the next operation to be answered after it throws that
 * failure, and a free of such a buffer (release) throws it when nothing else did.
 */
export class RemoteBackend implements Backend {
  private nextBuffer = 1;
  /** Allocs sent and not yet answered; each settles (never rejects) once its answer is in. */
  private readonly unanswered = new Set<Promise<void>>();
  /** Allocs the peer failed, by buffer id, until an operation reports the failure. */
  private readonly failedAllocs = new Map<BufferId, Error>();
  /** Buffers whose failed alloc was reported: nothing to free on the peer. */
  private readonly neverMade = new Set<BufferId>();

  constructor(
    readonly profile: BackendProfile,
    private readonly client: ProtocolClient,
    private readonly onDispose: () => Promise<void> = () => Promise.resolve(),
  ) {}

  async open(path: string): Promise<{ handle: Handle } | { errno: string }> {
    const r = await this.send({ op: 'open', path });
    if ('handle' in r && isId(r.handle)) return { handle: r.handle };
    if ('errno' in r && typeof r.errno === 'string') return { errno: r.errno };
    throw malformed('open', 'neither a handle nor an errno');
  }

  async ioctl(handle: Handle, request: bigint, arg: IoctlArg): Promise<IoctlResult> {
    const r = await this.send({
      op: 'ioctl',
      handle,
      request: encodeU64(request),
      arg: encodeArg(arg),
    });
    if (!Number.isSafeInteger(r.ret))
      throw malformed('ioctl', `ret ${JSON.stringify(r.ret)} is not an integer`);
    if (r.errno !== null && typeof r.errno !== 'string')
      throw malformed('ioctl', 'errno is neither null nor a name');
    if (!Array.isArray(r.spans) || r.spans.length !== bufferTargetCount(arg)) {
      throw malformed('ioctl', `expected ${bufferTargetCount(arg)} spans, one per buffer target`);
    }
    const result: IoctlResult = {
      ret: BigInt(r.ret),
      errno: r.errno,
      spans: r.spans.map((s) => bytes('ioctl', s)),
    };
    if (arg.kind === 'struct') {
      if (r.image === undefined) throw malformed('ioctl', 'a struct argument needs the image after the call');
      result.image = bytes('ioctl', r.image);
    }
    return result;
  }

  async close(handle: Handle): Promise<void> {
    await this.send({ op: 'close', handle });
  }

  alloc(request: AllocRequest): Promise<BufferId> {
    const buffer = this.nextBuffer++;
    const body: RequestOf<'alloc'> = { op: 'alloc', buffer, size: request.size };
    if (request.alignment !== undefined) body.alignment = request.alignment;
    if (request.init) body.init = encodeBytes(request.init);
    if (request.readonly !== undefined) body.readonly = request.readonly;
    const answered = this.client.request(body).then(
      () => undefined,
      (err: Error) => void this.failedAllocs.set(buffer, err),
    );
    this.unanswered.add(answered);
    void answered.then(() => this.unanswered.delete(answered));
    return Promise.resolve(buffer);
  }

  async read(buffer: BufferId, offset: number, length: number): Promise<Uint8Array> {
    const r = await this.send({ op: 'read', buffer, offset, length });
    const data = bytes('read', r.data);
    if (data.length !== length) throw malformed('read', `asked for ${length} bytes, got ${data.length}`);
    return data;
  }

  async write(buffer: BufferId, offset: number, data: Uint8Array): Promise<void> {
    await this.send({ op: 'write', buffer, offset, data: encodeBytes(data) });
  }

  async free(buffer: BufferId): Promise<void> {
    if (this.neverMade.delete(buffer)) return;
    await this.send({ op: 'free', buffer });
  }

  /** Waited for, unlike alloc: a vCPU that cannot be mapped should fail the call that maps it. */
  async mmap(handle: Handle, length: number, offset: number): Promise<BufferId> {
    const buffer = this.nextBuffer++;
    await this.send({ op: 'mmap', buffer, handle, length, offset });
    return buffer;
  }

  /** Asks the peer to shut down (if it is still talking), then lets the owner stop it for good. */
  async dispose(): Promise<void> {
    if (!this.client.failure) {
      const timer = setTimeout(() => this.client.close(), SHUTDOWN_TIMEOUT_MS);
      await this.client.request({ op: 'shutdown' }).catch(() => undefined);
      clearTimeout(timer);
    }
    this.client.close();
    await this.onDispose();
  }

  /**
   * Sends a request and resolves with its answer, unless an alloc sent before it failed: then that
   * failure is thrown instead (also in place of the request's own error, which it usually explains:
   * "unknown buffer"). Allocs still unanswered are waited for, so a peer answering out of order
   * cannot hide one.
   */
  private send<O extends Op>(body: RequestOf<O>): Promise<OkResults[O]> {
    const response = this.client.request(body);
    // Nothing sent before can fail this request: the usual case, which must cost nothing extra.
    if (this.unanswered.size === 0 && this.failedAllocs.size === 0) return response;
    return this.afterAllocs(response, [...this.unanswered]);
  }

  private async afterAllocs<T>(response: Promise<T>, earlier: Promise<void>[]): Promise<T> {
    let result: T;
    try {
      result = await response;
    } catch (err) {
      await Promise.all(earlier);
      throw this.takeAllocFailure() ?? err;
    }
    await Promise.all(earlier);
    const failure = this.takeAllocFailure();
    if (failure) throw failure;
    return result;
  }

  /** The oldest alloc failure not yet reported, now reported. */
  private takeAllocFailure(): Error | undefined {
    const first = this.failedAllocs.entries().next();
    if (first.done) return undefined;
    const [buffer, err] = first.value;
    this.failedAllocs.delete(buffer);
    this.neverMade.add(buffer);
    return err;
  }
}

/** Reads the handshake on a channel and returns the backend it describes. */
export async function connectBackend(
  input: Readable,
  output: Writable,
  options: ProtocolClientOptions & { onDispose?: () => Promise<void> } = {},
): Promise<RemoteBackend> {
  const client = new ProtocolClient(input, output, options);
  const handshake = await client.handshake();
  return new RemoteBackend(handshake.profile, client, options.onDispose);
}

function malformed(op: string, why: string): BackendError {
  return new BackendError(`malformed response to ${op}: ${why}`);
}

function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function bytes(op: string, text: unknown): Uint8Array {
  if (typeof text !== 'string') throw malformed(op, 'bytes must be a base64 string');
  try {
    return decodeBytes(text);
  } catch {
    throw malformed(op, `bytes are not base64: ${text.slice(0, 40)}`);
  }
}
