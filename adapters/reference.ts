import { loadSpec } from '../harness/spec/loader.ts';
import type { SpecTree } from '../harness/spec/tree.ts';
import type { Arch } from '../harness/spec/types.ts';
import { archModel } from '../reference/arch/index.ts';
import { ReferenceKernel, VcpuFile } from '../reference/kernel.ts';
import { INVALID_ADDRESS } from '../reference/usermem.ts';
import { NotModelled } from '../reference/errno.ts';
import {
  BackendError,
  BackendSkip,
  type AllocRequest,
  type Backend,
  type BackendFactory,
  type BackendProfile,
  type BufferId,
  type Handle,
  type IoctlArg,
  type IoctlResult,
  type PointerTarget,
} from './backend.ts';
import { pooledCopy } from '../harness/abi/bytes.ts';
import { patchPointers } from './memory-patching.ts';

interface HeldBuffer {
  addr: bigint;
  bytes: Uint8Array;
  /** Allocated by `alloc` (not a view of a vCPU's kvm_run), so the pool may take it back. */
  pooled: boolean;
}

/**
 * Freed user memory kept for reuse, by size, up to a bound. Most cases allocate a megabyte or more of
 * guest RAM; fresh memory costs page faults and garbage collection every time, reused memory a memset.
 * A buffer comes back zeroed, exactly as fresh memory does.
 */
class BufferPool {
  private readonly bySize = new Map<number, Uint8Array[]>();
  private held = 0;

  constructor(private readonly limitBytes: number) {}

  take(size: number): Uint8Array {
    const reused = this.bySize.get(size)?.pop();
    if (!reused) return new Uint8Array(size);
    this.held -= size;
    return reused.fill(0);
  }

  give(bytes: Uint8Array): void {
    if (this.held + bytes.length > this.limitBytes) return;
    this.held += bytes.length;
    const list = this.bySize.get(bytes.length);
    if (list) list.push(bytes);
    else this.bySize.set(bytes.length, [bytes]);
  }
}

const pool = new BufferPool(32 << 20);

/** The bundled reference, in process: the adapter contract mapped onto a ReferenceKernel. */
export class ReferenceBackend implements Backend {
  readonly profile: BackendProfile;
  readonly kernel: ReferenceKernel;
  private readonly buffers = new Map<BufferId, HeldBuffer>();
  private nextBuffer = 1;

  constructor(spec: SpecTree, arch: Arch, revision: string) {
    const model = archModel(arch, spec);
    this.kernel = new ReferenceKernel(spec, model, revision);
    this.profile = {
      arch,
      implementation: 'kvmspec-reference',
      version: model.kernelVersion,
      revisions: revision === 'upstream' ? ['upstream'] : ['upstream', revision],
    };
  }

  private held(id: BufferId): HeldBuffer {
    const b = this.buffers.get(id);
    if (!b) throw new BackendError(`no buffer ${id}`);
    return b;
  }

  private address(target: PointerTarget): bigint {
    switch (target.kind) {
      case 'null':
        return 0n;
      case 'invalid':
        return INVALID_ADDRESS;
      case 'buffer':
        return this.held(target.buffer).addr + BigInt(target.offset);
    }
  }

  private span(target: PointerTarget): Uint8Array | undefined {
    if (target.kind !== 'buffer') return undefined;
    return this.held(target.buffer).bytes.slice(target.offset, target.offset + target.length);
  }

  open(path: string): Promise<{ handle: Handle } | { errno: string }> {
    const r = this.kernel.ioctlResult(() => BigInt(this.kernel.open(path)));
    return Promise.resolve(r.errno ? { errno: r.errno } : { handle: Number(r.ret) });
  }

  /** One kernel ioctl; behaviour the reference does not model skips the case, naming what is missing. */
  private call(handle: Handle, request: bigint, addr: bigint) {
    try {
      return this.kernel.ioctl(handle, request, addr);
    } catch (err) {
      if (err instanceof NotModelled) throw new BackendSkip(`the reference does not model ${err.message}`);
      throw err;
    }
  }

  ioctl(handle: Handle, request: bigint, arg: IoctlArg): Promise<IoctlResult> {
    switch (arg.kind) {
      // Results are built field by field: an object spread here cost a microsecond a call (V8 in Node 20).
      case 'int': {
        const r = this.call(handle, request, arg.value);
        return Promise.resolve({ ret: r.ret, errno: r.errno, spans: [] });
      }
      case 'pointer': {
        const r = this.call(handle, request, this.address(arg.target));
        const span = this.span(arg.target);
        return Promise.resolve({ ret: r.ret, errno: r.errno, spans: span ? [span] : [] });
      }
      case 'struct': {
        const image = pooledCopy(arg.image);
        const restore = patchPointers(
          image,
          arg.pointers,
          (p) => this.address(p.target),
          this.kernel.abi.endian,
        );
        const addr = this.kernel.mem.map(image);
        try {
          const r = this.call(handle, request, addr);
          restore();
          const spans: Uint8Array[] = [];
          for (const p of arg.pointers) {
            const span = this.span(p.target);
            if (span) spans.push(span);
          }
          return Promise.resolve({ ret: r.ret, errno: r.errno, image, spans });
        } finally {
          this.kernel.mem.unmap(addr);
        }
      }
    }
  }

  close(handle: Handle): Promise<void> {
    this.kernel.ioctlResult(() => {
      this.kernel.close(handle);
      return 0n;
    });
    return Promise.resolve();
  }

  alloc(request: AllocRequest): Promise<BufferId> {
    const bytes = pool.take(request.size);
    if (request.init) bytes.set(request.init.subarray(0, request.size));
    const mapOptions: { alignment?: number; readonly?: boolean } = { readonly: request.readonly ?? false };
    if (request.alignment !== undefined) mapOptions.alignment = request.alignment;
    const addr = this.kernel.mem.map(bytes, mapOptions);
    const id = this.nextBuffer++;
    this.buffers.set(id, { addr, bytes, pooled: true });
    return Promise.resolve(id);
  }

  read(buffer: BufferId, offset: number, length: number): Promise<Uint8Array> {
    const b = this.held(buffer);
    if (offset + length > b.bytes.length) throw new BackendError(`read past the end of buffer ${buffer}`);
    return Promise.resolve(b.bytes.slice(offset, offset + length));
  }

  write(buffer: BufferId, offset: number, bytes: Uint8Array): Promise<void> {
    const b = this.held(buffer);
    if (offset + bytes.length > b.bytes.length)
      throw new BackendError(`write past the end of buffer ${buffer}`);
    b.bytes.set(bytes, offset);
    return Promise.resolve();
  }

  free(buffer: BufferId): Promise<void> {
    const held = this.held(buffer);
    this.kernel.mem.unmap(held.addr);
    this.buffers.delete(buffer);
    if (held.pooled) pool.give(held.bytes);
    return Promise.resolve();
  }

  mmap(handle: Handle, length: number, offset: number): Promise<BufferId> {
    const file = this.kernel.file(handle);
    // The contract maps a vCPU's kvm_run area from its start. Other files have no mmap in KVM (ENODEV), and
    // the reference models no pages past kvm_run: like a failed mmap on Linux, those are backend errors.
    if (!(file instanceof VcpuFile) || offset !== 0 || length > file.run.length)
      throw new BackendError(
        `mmap of handle ${handle} (${length} bytes at ${offset}) is not of a vCPU's kvm_run`,
      );
    const bytes = file.run;
    const addr = this.kernel.mem.map(bytes);
    const id = this.nextBuffer++;
    this.buffers.set(id, { addr, bytes, pooled: false });
    return Promise.resolve(id);
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

let cachedSpec: SpecTree | undefined;

export const referenceFactory: BackendFactory = {
  name: 'reference',
  arches: () => ['arm64', 's390x', 'x86_64', 'ppc64le'],
  create: ({ arch, revision }) => {
    cachedSpec ??= loadSpec();
    return Promise.resolve(new ReferenceBackend(cachedSpec, arch, revision));
  },
};

/** A reference backend over a given spec tree (tests use their own trees and broken variants). */
export function createReferenceBackend(spec: SpecTree, arch: Arch, revision = 'upstream'): ReferenceBackend {
  return new ReferenceBackend(spec, arch, revision);
}
