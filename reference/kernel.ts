import type { SpecTree } from '../harness/spec/tree.ts';
import type { Arch } from '../harness/spec/types.ts';
import { Abi, u64 } from './abi.ts';
import { Errno, fail, type ErrnoName } from './errno.ts';
import { PAGE_SIZE, UserMemory } from './usermem.ts';

export const KVM_API_VERSION = 12n;
/** SHRT_MAX slots per address space (include/linux/kvm_host.h). */
const KVM_MEM_SLOTS_NUM = 32767;
const MEM_LOG_DIRTY_PAGES = 0x1;
const MEM_READONLY = 0x2;

/** What each arch module supplies; everything generic (fd table, memslots, vCPU creation) lives here. */
export interface ArchModel {
  readonly arch: Arch;
  /** The upstream kernel version whose behaviour is modelled. */
  readonly kernelVersion: string;
  readonly maxVcpuId: number;
  /** KVM_USER_MEM_SLOTS when the arch defines it (x86 keeps 3 slots for itself); else KVM_MEM_SLOTS_NUM. */
  readonly userMemslots?: number;
  readonly vcpuMmapSize: number;
  /** The errno a request unknown to each kind of file gives on this arch (upstream's default case). */
  readonly unknownIoctl: Record<'system' | 'vm' | 'vcpu', ErrnoName>;
  checkExtension(cap: bigint, vm: VmFile | null): bigint;
  /** Validates KVM_CREATE_VM's type and returns the arch's VM state. */
  createVm(type: bigint, vm: VmFile): ArchVm;
  systemIoctl?(name: string, arg: bigint, kernel: ReferenceKernel): bigint | undefined;
}

export interface ArchVm {
  /** An arch VM ioctl; undefined when the arch does not handle that request (or has no VM ioctls). */
  ioctl?(name: string, arg: bigint): bigint | undefined;
  createVcpu(vcpu: VcpuFile): ArchVcpu;
  /**
   * Arch checks on a new vCPU id. Upstream creates the arch vCPU before the generic duplicate-id check,
   * so an arch that refuses a reused id answers with its own errno (ppc KVM-HV: EINVAL) instead of EEXIST.
   */
  admitVcpuId?(id: bigint, existing: readonly VcpuFile[]): void;
  /** Arch checks on a new memslot (s390's 1 MiB alignment). */
  prepareMemoryRegion?(slot: Memslot): void;
  /** KVM_ENABLE_CAP of a capability generic KVM left to the arch: whether the arch enabled it. */
  enableCap?(cap: bigint): boolean;
}

export interface ArchVcpu {
  ioctl(name: string, arg: bigint): bigint | undefined;
  /**
   * kvm_arch_vcpu_ioctl_get_mpstate: the state to copy out, or a non-zero value that generic KVM returns as it
   * is (s390's states). An arch without MP states (ppc) leaves both hooks out: EINVAL.
   */
  getMpState?(): { state: bigint } | { ret: bigint };
  /** kvm_arch_vcpu_ioctl_set_mpstate of the state generic KVM copied in. */
  setMpState?(state: bigint): void;
}

export interface Memslot {
  slot: number;
  flags: number;
  gpa: bigint;
  size: bigint;
  hva: bigint;
  /** The first guest frame and the number of frames, as numbers for page-by-page loops. */
  frame: number;
  frames: number;
}

export abstract class KernelFile {
  constructor(readonly kernel: ReferenceKernel) {}
  abstract ioctl(request: bigint, arg: bigint): bigint;
}

class SystemFile extends KernelFile {
  ioctl(request: bigint, arg: bigint): bigint {
    const { abi, model } = this.kernel;
    const name = abi.ioctlName(request);
    switch (name) {
      case 'KVM_GET_API_VERSION':
        return arg === 0n ? KVM_API_VERSION : fail('EINVAL');
      case 'KVM_CHECK_EXTENSION':
        return model.checkExtension(arg, null);
      case 'KVM_CREATE_VM': {
        const vm = new VmFile(this.kernel, arg);
        return BigInt(this.kernel.install(vm));
      }
      case 'KVM_GET_VCPU_MMAP_SIZE':
        return arg === 0n ? BigInt(model.vcpuMmapSize) : fail('EINVAL');
      default: {
        const handled = name === undefined ? undefined : model.systemIoctl?.(name, arg, this.kernel);
        return handled ?? fail(model.unknownIoctl.system);
      }
    }
  }
}

export class VmFile extends KernelFile {
  readonly arch: ArchVm;
  readonly memslots = new Map<number, Memslot>();
  readonly vcpus: VcpuFile[] = [];
  /** Set by the first KVM_RUN of any vCPU; arm64 locks ID registers from then on. */
  hasRun = false;

  constructor(kernel: ReferenceKernel, type: bigint) {
    super(kernel);
    this.arch = kernel.model.createVm(type, this);
  }

  ioctl(request: bigint, arg: bigint): bigint {
    const { abi, model } = this.kernel;
    const name = abi.ioctlName(request);
    switch (name) {
      case 'KVM_CHECK_EXTENSION':
        return model.checkExtension(arg, this);
      case 'KVM_CREATE_VCPU':
        return this.createVcpu(arg);
      case 'KVM_SET_USER_MEMORY_REGION':
        return this.setMemoryRegion(arg);
      case 'KVM_ENABLE_CAP':
        return this.enableCap(arg);
      default: {
        const handled = name === undefined ? undefined : this.arch.ioctl?.(name, arg);
        return handled ?? fail(model.unknownIoctl.vm);
      }
    }
  }

  /**
   * Generic KVM copies the struct in and keeps the capabilities it enables itself (none modelled here); the
   * rest go to the arch, and every arch refuses flags before it looks at the capability.
   */
  private enableCap(arg: bigint): bigint {
    const c = this.kernel.abi.readStruct(this.kernel.mem, arg, 'kvm_enable_cap');
    if (u64(c, 'flags') !== 0n) fail('EINVAL');
    return this.arch.enableCap?.(u64(c, 'cap')) ? 0n : fail('EINVAL');
  }

  private createVcpu(id: bigint): bigint {
    // The id is an unsigned long: one limit covers what a signed reading would call negative.
    if (id >= BigInt(this.kernel.model.maxVcpuId)) fail('EINVAL');
    this.arch.admitVcpuId?.(id, this.vcpus);
    if (this.vcpus.some((v) => v.id === id)) fail('EEXIST');
    const vcpu = new VcpuFile(this.kernel, this, id);
    this.vcpus.push(vcpu);
    return BigInt(this.kernel.install(vcpu));
  }

  /**
   * Upstream's generic memslot checks (virt/kvm/kvm_main.c), then the arch's own. The user range is only
   * checked to be user space (access_ok), never to be mapped: a VMM may map its RAM later.
   */
  private setMemoryRegion(arg: bigint): bigint {
    const r = this.kernel.abi.readStruct(this.kernel.mem, arg, 'kvm_userspace_memory_region');
    const slot = Number(u64(r, 'slot'));
    const flags = Number(u64(r, 'flags'));
    const gpa = u64(r, 'guest_phys_addr');
    const size = u64(r, 'memory_size');
    const hva = u64(r, 'userspace_addr');
    const page = BigInt(PAGE_SIZE);
    // KVM_SET_USER_MEMORY_REGION (v1) knows LOG_DIRTY_PAGES and READONLY only.
    if ((flags & ~(MEM_LOG_DIRTY_PAGES | MEM_READONLY)) !== 0) fail('EINVAL');
    if ((slot & 0xffff) >= (this.kernel.model.userMemslots ?? KVM_MEM_SLOTS_NUM)) fail('EINVAL');
    if (size % page !== 0n || gpa % page !== 0n || hva % page !== 0n) fail('EINVAL');
    // The guest range must not wrap around the 64-bit address space.
    if (gpa + size >= 1n << 64n) fail('EINVAL');
    const old = this.memslots.get(slot);
    if (size === 0n) {
      if (!old) fail('EINVAL');
      this.memslots.delete(slot);
      return 0n;
    }
    // An existing slot may only move or change LOG_DIRTY_PAGES.
    if (old && (hva !== old.hva || size !== old.size || ((flags ^ old.flags) & MEM_READONLY) !== 0))
      fail('EINVAL');
    // Upstream checks overlap only when a slot is created or moved and returns early when nothing changes;
    // checking always is the same, since a slot that keeps its range overlaps no other slot already.
    for (const other of this.memslots.values()) {
      if (other.slot !== slot && gpa < other.gpa + other.size && other.gpa < gpa + size) fail('EEXIST');
    }
    const memslot: Memslot = {
      slot,
      flags,
      gpa,
      size,
      hva,
      frame: Number(gpa / page),
      frames: Number(size / page),
    };
    this.arch.prepareMemoryRegion?.(memslot);
    this.memslots.set(slot, memslot);
    return 0n;
  }

  /** Host view of guest-physical memory, or undefined where no memslot backs [gpa, gpa+len). */
  guestView(gpa: bigint, len: number): Uint8Array | undefined {
    for (const s of this.memslots.values()) {
      if (gpa >= s.gpa && gpa + BigInt(len) <= s.gpa + s.size)
        return this.kernel.mem.view(s.hva + (gpa - s.gpa), len);
    }
    return undefined;
  }

  memslotAt(gpa: bigint): Memslot | undefined {
    for (const s of this.memslots.values()) if (gpa >= s.gpa && gpa < s.gpa + s.size) return s;
    return undefined;
  }

  memslotAtFrame(frame: number): Memslot | undefined {
    for (const s of this.memslots.values()) if (frame >= s.frame && frame < s.frame + s.frames) return s;
    return undefined;
  }
}

export class VcpuFile extends KernelFile {
  readonly arch: ArchVcpu;
  /** The kvm_run area user space maps (the only mapping the reference models); arch code writes exits into it. */
  readonly run: Uint8Array;

  constructor(
    kernel: ReferenceKernel,
    readonly vm: VmFile,
    readonly id: bigint,
  ) {
    super(kernel);
    this.run = new Uint8Array(kernel.model.vcpuMmapSize);
    this.arch = vm.arch.createVcpu(this);
  }

  ioctl(request: bigint, arg: bigint): bigint {
    const name = this.kernel.abi.ioctlName(request);
    // Generic KVM checks the argument before any arch code runs (virt/kvm/kvm_main.c).
    if (name === 'KVM_RUN' && arg !== 0n) fail('EINVAL');
    if (name === 'KVM_GET_MP_STATE') return this.getMpState(arg);
    if (name === 'KVM_SET_MP_STATE') return this.setMpState(arg);
    const handled = name === undefined ? undefined : this.arch.ioctl(name, arg);
    return handled ?? fail(this.kernel.model.unknownIoctl.vcpu);
  }

  /**
   * kvm_run.immediate_exit, which generic KVM turns into wants_to_run for the arch: set, KVM_RUN returns EINTR
   * without entering the guest, once the arch has done what it does first.
   */
  get immediateExit(): boolean {
    const { offset } = this.kernel.abi.spec.field('kvm_run', 'immediate_exit', {
      arch: this.kernel.model.arch,
    });
    return this.run[offset] !== 0;
  }

  /** The arch answers first; generic KVM copies the state out only when the arch returned 0. */
  private getMpState(arg: bigint): bigint {
    const got = this.arch.getMpState?.() ?? fail('EINVAL');
    if ('ret' in got) return got.ret;
    this.kernel.abi.writeStruct(this.kernel.mem, arg, 'kvm_mp_state', { mp_state: got.state });
    return 0n;
  }

  /** Generic KVM copies the state in before the arch looks at it. */
  private setMpState(arg: bigint): bigint {
    const s = this.kernel.abi.readStruct(this.kernel.mem, arg, 'kvm_mp_state');
    if (!this.arch.setMpState) fail('EINVAL');
    this.arch.setMpState(u64(s, 'mp_state'));
    return 0n;
  }
}

/**
 * The reference KVM: one per backend instance and arch. Calls arrive as a real kernel sees them — a file
 * descriptor, a request number and an unsigned long argument — and fail with an errno thrown inside.
 */
export class ReferenceKernel {
  readonly mem = new UserMemory();
  readonly abi: Abi;
  private readonly files = new Map<number, KernelFile>();
  private nextFd = 3;

  constructor(
    spec: SpecTree,
    readonly model: ArchModel,
    revision: string,
  ) {
    this.abi = new Abi(spec, model.arch, revision);
  }

  install(file: KernelFile): number {
    const fd = this.nextFd++;
    this.files.set(fd, file);
    return fd;
  }

  open(path: string): number {
    if (path !== '/dev/kvm') fail('ENOENT');
    return this.install(new SystemFile(this));
  }

  file(fd: number): KernelFile {
    return this.files.get(fd) ?? fail('EBADF');
  }

  /** ret >= 0 on success; on failure ret -1 and the errno. */
  ioctl(fd: number, request: bigint, arg: bigint): { ret: bigint; errno: ErrnoName | null } {
    return this.ioctlResult(() => this.file(fd).ioctl(request, arg));
  }

  /** Runs a kernel entry point the way the syscall boundary does: a thrown errno becomes ret -1. */
  ioctlResult(call: () => bigint): { ret: bigint; errno: ErrnoName | null } {
    try {
      return { ret: call(), errno: null };
    } catch (err) {
      if (err instanceof Errno) return { ret: -1n, errno: err.errno };
      throw err;
    }
  }

  /** Only the fd goes: a VM lives on in its vCPUs, a vCPU in its VM, as upstream's references keep them. */
  close(fd: number): void {
    this.files.delete(fd);
  }
}
