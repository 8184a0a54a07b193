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
  type RequestOf,
} from './messages.ts';

const SHUTDOWN_TIMEOUT_MS = 5000;

/**
 * A Backend whose every operation is a request over the stdio protocol. Results are checked for the
 * shape each op needs even when schema validation is off, so a sloppy peer fails loudly, not subtly.
 */
export class RemoteBackend implements Backend {
  constructor(
    readonly profile: BackendProfile,
    private readonly client: ProtocolClient,
    private readonly onDispose: () => Promise<void> = () => Promise.resolve(),
  ) {}

  async open(path: string): Promise<{ handle: Handle } | { errno: string }> {
    const r = await this.client.request({ op: 'open', path });
    if ('handle' in r && isId(r.handle)) return { handle: r.handle };
    if ('errno' in r && typeof r.errno === 'string') return { errno: r.errno };
    throw malformed('open', 'neither a handle nor an errno');
  }

  async ioctl(handle: Handle, request: bigint, arg: IoctlArg): Promise<IoctlResult> {
    const r = await this.client.request({
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
    await this.client.request({ op: 'close', handle });
  }

  async alloc(request: AllocRequest): Promise<BufferId> {
    const body: RequestOf<'alloc'> = { op: 'alloc', size: request.size };
    if (request.alignment !== undefined) body.alignment = request.alignment;
    if (request.init) body.init = encodeBytes(request.init);
    if (request.readonly !== undefined) body.readonly = request.readonly;
    return bufferId('alloc', (await this.client.request(body)).buffer);
  }

  async read(buffer: BufferId, offset: number, length: number): Promise<Uint8Array> {
    const r = await this.client.request({ op: 'read', buffer, offset, length });
    const data = bytes('read', r.data);
    if (data.length !== length) throw malformed('read', `asked for ${length} bytes, got ${data.length}`);
    return data;
  }

  async write(buffer: BufferId, offset: number, data: Uint8Array): Promise<void> {
    await this.client.request({ op: 'write', buffer, offset, data: encodeBytes(data) });
  }

  async free(buffer: BufferId): Promise<void> {
    await this.client.request({ op: 'free', buffer });
  }

  async mmap(handle: Handle, length: number, offset: number): Promise<BufferId> {
    return bufferId('mmap', (await this.client.request({ op: 'mmap', handle, length, offset })).buffer);
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

function bufferId(op: string, value: unknown): BufferId {
  if (!isId(value)) throw malformed(op, `buffer ${JSON.stringify(value)} is not an id`);
  return value;
}

function bytes(op: string, text: unknown): Uint8Array {
  if (typeof text !== 'string') throw malformed(op, 'bytes must be a base64 string');
  try {
    return decodeBytes(text);
  } catch {
    throw malformed(op, `bytes are not base64: ${text.slice(0, 40)}`);
  }
}
