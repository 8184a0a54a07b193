import { closeSync, existsSync, openSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import koffi from 'koffi';
import type { Arch } from '../harness/spec/types.ts';
import {
  BackendError,
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
import { patchPointers } from './memory-patching.ts';

// Linux's generic mmap/mprotect flag values (the same on x86_64, arm64, s390x and powerpc).
const PROT_NONE = 0;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
const SC_PAGESIZE = 30;
const MAP_FAILED = (1n << 64n) - 1n;
const KVM_DEVICE = '/dev/kvm';

/** The few libc calls the backend needs, bound once per process through koffi. */
interface Libc {
  ioctl(fd: number, request: bigint, arg: bigint): number;
  mmap(addr: null, length: number, prot: number, flags: number, fd: number, offset: number): unknown;
  munmap(addr: unknown, length: number): number;
  mprotect(addr: unknown, length: number, prot: number): number;
  pageSize: number;
}

let libc: Libc | undefined;
function loadLibc(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  const sysconf = lib.func('long sysconf(int name)') as (name: number) => number;
  libc = {
    ioctl: lib.func('int ioctl(int fd, unsigned long request, unsigned long arg)') as Libc['ioctl'],
    mmap: lib.func(
      'void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)',
    ) as Libc['mmap'],
    munmap: lib.func('int munmap(void *addr, size_t length)') as Libc['munmap'],
    mprotect: lib.func('int mprotect(void *addr, size_t length, int prot)') as Libc['mprotect'],
    pageSize: sysconf(SC_PAGESIZE),
  };
  return libc;
}

/** errno number → name; where Linux has two names for one number, the one the kernel's docs use. */
const errnoNames = (() => {
  const preferred = new Set(['EAGAIN', 'EOPNOTSUPP']);
  const names = new Map<number, string>();
  for (const [name, value] of Object.entries(os.constants.errno)) {
    if (!names.has(value) || preferred.has(name)) names.set(value, name);
  }
  return names;
})();

export function errnoName(value: number): string {
  return errnoNames.get(value) ?? `E#${value}`;
}

/** The kernel's errno after a failed call, read before anything else can overwrite it. */
function lastErrno(): string {
  return errnoName(koffi.errno());
}

export function hostArch(): Arch | undefined {
  switch (os.arch()) {
    case 'x64':
      return 'x86_64';
    case 'arm64':
      return 'arm64';
    case 's390x':
      return 's390x';
    case 'ppc64':
      return os.endianness() === 'LE' ? 'ppc64le' : undefined;
    default:
      return undefined;
  }
}

/** "6.18.44-fc-v595" → "6.18" */
export function kernelVersion(release = os.release()): string {
  const match = /^(\d+)\.(\d+)/.exec(release);
  return match ? `${match[1]}.${match[2]}` : release;
}

/** A private anonymous mapping (or a shared mapping of a vCPU file) the backend hands out as a buffer. */
interface Mapping {
  pointer: unknown;
  mapped: number;
  /** The buffer's address and size inside the mapping (an aligned buffer starts past the mapping's start). */
  address: bigint;
  size: number;
  bytes: Uint8Array;
  readonly: boolean;
}

/** Files other backends in this process own; a handle is only ever used by the backend that opened it. */
const ownedByAnyBackend = new Set<number>();

/**
 * This machine's /dev/kvm, called in-process through koffi: handles are real file descriptors, buffers
 * are real mmap'd memory (so alignment and read-only protection are the kernel's own), `invalid` points
 * into a PROT_NONE page, and errno names come from the host's own table.
 */
export class LinuxBackend implements Backend {
  readonly profile: BackendProfile;
  private readonly libc = loadLibc();
  private readonly endian = os.endianness() === 'LE' ? ('little' as const) : ('big' as const);
  private readonly files: number[] = [];
  private readonly buffers = new Map<BufferId, Mapping>();
  private scratch: Mapping | undefined;
  private nextBuffer = 1;
  private readonly invalidPage: Mapping;

  constructor(arch: Arch) {
    this.profile = { arch, implementation: 'linux', version: kernelVersion(), revisions: ['upstream'] };
    this.invalidPage = this.mapAnonymous(this.libc.pageSize, this.libc.pageSize, PROT_NONE);
  }

  open(path: string): Promise<{ handle: Handle } | { errno: string }> {
    try {
      const fd = openSync(path, 'r+');
      this.adopt(fd);
      return Promise.resolve({ handle: fd });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code?.startsWith('E')) return Promise.resolve({ errno: code });
      throw err;
    }
  }

  ioctl(handle: Handle, request: bigint, arg: IoctlArg): Promise<IoctlResult> {
    // Never touch a descriptor this backend did not open: it may be Node's own, or another backend's.
    if (!this.files.includes(handle)) return Promise.resolve({ ret: -1n, errno: 'EBADF', spans: [] });
    switch (arg.kind) {
      case 'int':
        return Promise.resolve(this.call(handle, request, BigInt.asUintN(64, arg.value)));
      case 'pointer': {
        const r = this.call(handle, request, this.address(arg.target));
        r.spans = this.spans([arg.target]);
        return Promise.resolve(r);
      }
      case 'struct': {
        const scratch = this.scratchFor(arg.image.length);
        const image = scratch.bytes.subarray(0, arg.image.length);
        image.set(arg.image);
        const restore = patchPointers(image, arg.pointers, (p) => this.address(p.target), this.endian);
        const r = this.call(handle, request, scratch.address);
        restore();
        r.image = image.slice();
        r.spans = this.spans(arg.pointers.map((p) => p.target));
        return Promise.resolve(r);
      }
    }
  }

  close(handle: Handle): Promise<void> {
    const i = this.files.indexOf(handle);
    if (i >= 0) {
      this.files.splice(i, 1);
      ownedByAnyBackend.delete(handle);
      closeSync(handle);
    }
    return Promise.resolve();
  }

  alloc(request: AllocRequest): Promise<BufferId> {
    const alignment = request.alignment ?? this.libc.pageSize;
    if (alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
      throw new BackendError(`alignment ${alignment} is not a power of two`);
    }
    const mapping = this.mapAnonymous(request.size, alignment, PROT_READ | PROT_WRITE);
    if (request.init) mapping.bytes.set(request.init.subarray(0, request.size));
    if (request.readonly) this.protect(mapping, PROT_READ);
    return Promise.resolve(this.hold(mapping));
  }

  read(buffer: BufferId, offset: number, length: number): Promise<Uint8Array> {
    const m = this.held(buffer);
    this.checkRange(buffer, m, offset, length);
    return Promise.resolve(m.bytes.slice(offset, offset + length));
  }

  write(buffer: BufferId, offset: number, bytes: Uint8Array): Promise<void> {
    const m = this.held(buffer);
    this.checkRange(buffer, m, offset, bytes.length);
    // The case writes as the VMM would; a read-only buffer is opened up just for that copy.
    const readonly = m.readonly;
    if (readonly) this.protect(m, PROT_READ | PROT_WRITE);
    m.bytes.set(bytes, offset);
    if (readonly) this.protect(m, PROT_READ);
    return Promise.resolve();
  }

  free(buffer: BufferId): Promise<void> {
    this.unmap(this.held(buffer));
    this.buffers.delete(buffer);
    return Promise.resolve();
  }

  mmap(handle: Handle, length: number, offset: number): Promise<BufferId> {
    if (!this.files.includes(handle)) throw new BackendError(`mmap of handle ${handle}, which is not open`);
    const pointer = this.libc.mmap(null, length, PROT_READ | PROT_WRITE, MAP_SHARED, handle, offset);
    const address = koffi.address(pointer);
    if (address === MAP_FAILED) throw new BackendError(`mmap of handle ${handle} failed: ${lastErrno()}`);
    const bytes = new Uint8Array(koffi.view(pointer, length));
    return Promise.resolve(
      this.hold({ pointer, mapped: length, address, size: length, bytes, readonly: false }),
    );
  }

  dispose(): Promise<void> {
    for (const m of this.buffers.values()) this.unmap(m);
    this.buffers.clear();
    for (const fd of this.files.splice(0).reverse()) {
      ownedByAnyBackend.delete(fd);
      closeSync(fd);
    }
    this.unmap(this.invalidPage);
    if (this.scratch) this.unmap(this.scratch);
    this.scratch = undefined;
    return Promise.resolve();
  }

  /** One ioctl; the result has no spans yet (callers with pointers add them). */
  private call(fd: number, request: bigint, arg: bigint): IoctlResult {
    const ret = this.libc.ioctl(fd, request, arg);
    if (ret < 0) return { ret: BigInt(ret), errno: lastErrno(), spans: [] };
    // KVM_CREATE_VM, KVM_CREATE_VCPU, KVM_CREATE_DEVICE… return new files; the backend must close them.
    if (ret > 2 && isKvmFile(ret) && !ownedByAnyBackend.has(ret)) this.adopt(ret);
    return { ret: BigInt(ret), errno: null, spans: [] };
  }

  private adopt(fd: number): void {
    this.files.push(fd);
    ownedByAnyBackend.add(fd);
  }

  private address(target: PointerTarget): bigint {
    switch (target.kind) {
      case 'null':
        return 0n;
      case 'invalid':
        return this.invalidPage.address;
      case 'buffer': {
        const m = this.held(target.buffer);
        this.checkRange(target.buffer, m, target.offset, target.length);
        return m.address + BigInt(target.offset);
      }
    }
  }

  /**
   * The native memory struct images are placed in: one mapping, kept for the backend's life and grown
   * when an image needs more, so a call costs no mmap of its own. Calls never overlap (each is one
   * synchronous ioctl), so one scratch area serves them all.
   */
  private scratchFor(size: number): Mapping {
    if (this.scratch && this.scratch.size >= size) return this.scratch;
    if (this.scratch) this.unmap(this.scratch);
    this.scratch = this.mapAnonymous(Math.max(size, this.libc.pageSize), 8, PROT_READ | PROT_WRITE);
    return this.scratch;
  }

  private spans(targets: PointerTarget[]): Uint8Array[] {
    return targets.flatMap((t) =>
      t.kind === 'buffer' ? [this.held(t.buffer).bytes.slice(t.offset, t.offset + t.length)] : [],
    );
  }

  private held(buffer: BufferId): Mapping {
    const m = this.buffers.get(buffer);
    if (!m) throw new BackendError(`no buffer ${buffer}`);
    return m;
  }

  private hold(mapping: Mapping): BufferId {
    const id = this.nextBuffer++;
    this.buffers.set(id, mapping);
    return id;
  }

  private checkRange(buffer: BufferId, m: Mapping, offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > m.size) {
      throw new BackendError(
        `bytes ${offset}..${offset + length} lie outside buffer ${buffer} of ${m.size} bytes`,
      );
    }
  }

  /** Maps enough pages to place `size` bytes at an `alignment` boundary inside them. */
  private mapAnonymous(size: number, alignment: number, prot: number): Mapping {
    const page = this.libc.pageSize;
    const pages = Math.max(Math.ceil(size / page), 1) * page;
    const mapped = pages + (alignment > page ? alignment : 0);
    const pointer = this.libc.mmap(null, mapped, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const base = koffi.address(pointer);
    if (base === MAP_FAILED) throw new BackendError(`mmap of ${mapped} bytes failed: ${lastErrno()}`);
    const align = BigInt(alignment);
    const address = (base + align - 1n) & ~(align - 1n);
    const skip = Number(address - base);
    const bytes =
      prot === PROT_NONE ? new Uint8Array(0) : new Uint8Array(koffi.view(pointer, mapped), skip, size);
    return { pointer, mapped, address, size, bytes, readonly: false };
  }

  private protect(m: Mapping, prot: number): void {
    if (this.libc.mprotect(m.pointer, m.mapped, prot) !== 0) {
      throw new BackendError(`mprotect failed: ${lastErrno()}`);
    }
    m.readonly = prot === PROT_READ;
  }

  private unmap(m: Mapping): void {
    this.libc.munmap(m.pointer, m.mapped);
  }
}

/** Whether a descriptor is one of KVM's anonymous files (a VM, a vCPU, a device, stats). */
function isKvmFile(fd: number): boolean {
  try {
    return /^anon_inode:\[?kvm/.test(readlinkSync(`/proc/self/fd/${fd}`));
  } catch {
    return false;
  }
}

/** The `linux` backend: this machine's own KVM, for its own arch only. */
export const linuxFactory: BackendFactory = {
  name: 'linux',
  arches: () => {
    const arch = hostArch();
    return arch && existsSync(KVM_DEVICE) ? [arch] : [];
  },
  create: ({ arch }) => {
    const host = hostArch();
    if (arch !== host) {
      return Promise.reject(
        new BackendError(`the linux backend drives this machine's KVM (${host ?? os.arch()}), not ${arch}`),
      );
    }
    if (!existsSync(KVM_DEVICE))
      return Promise.reject(new BackendError(`${KVM_DEVICE} does not exist on this machine`));
    return Promise.resolve(new LinuxBackend(arch));
  },
};
