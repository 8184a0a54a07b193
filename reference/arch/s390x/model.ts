import type { SpecTree } from '../../../harness/spec/tree.ts';
import { capabilityTable } from '../../capabilities.ts';
import { fail } from '../../errno.ts';
import type {
  ArchModel,
  ArchVcpu,
  ArchVm,
  Memslot,
  ReferenceKernel,
  VcpuFile,
  VmFile,
} from '../../kernel.ts';
import { getRegValue, putRegValue, readOneReg } from '../../one-reg.ts';
import { proposalCmpxchg, upstreamCmpxchg } from './cmpxchg.ts';
import { S390Cpu } from './cpu.ts';
import { getIrqState } from './irq.ts';
import { getSkeys, setSkeys } from './keys.ts';
import { absoluteOp, F_CMPXCHG, OP, readMemOp, vcpuMemOp } from './memop.ts';
import { ProtectedVirtualization } from './pv.ts';
import { runVcpu, setInitialPsw } from './run.ts';
import { GuestStorage, PAGE_SIZE } from './storage.ts';

const MiB = 1n << 20n;
/** KVM_S390_PFAULT_TOKEN_INVALID: the pfault token of a fresh vCPU. */
const PFAULT_TOKEN_INVALID = 0xffff_ffff_ffff_ffffn;
const GBEA = 0x5030_0000_0000_0009n;
const PROPOSAL_CMPXCHG = 'proposal-2022-cmpxchg';

/** The s390 ONE_REG registers (arch/s390/kvm/kvm-s390.c): exact ids; anything else is EINVAL. */
const ONE_REGS: readonly { id: bigint; size: number; reset: bigint }[] = [
  { id: 0x5020_0000_0000_0001n, size: 4, reset: 0n }, // TODPR
  { id: 0x5030_0000_0000_0002n, size: 8, reset: 0n }, // EPOCHDIFF
  { id: 0x5030_0000_0000_0003n, size: 8, reset: 0n }, // CPU_TIMER
  { id: 0x5030_0000_0000_0004n, size: 8, reset: 0n }, // CLOCK_COMP
  { id: 0x5030_0000_0000_0005n, size: 8, reset: PFAULT_TOKEN_INVALID }, // PFTOKEN
  { id: 0x5030_0000_0000_0006n, size: 8, reset: 0n }, // PFCOMPARE
  { id: 0x5030_0000_0000_0007n, size: 8, reset: 0n }, // PFSELECT
  { id: 0x5030_0000_0000_0008n, size: 8, reset: 0n }, // PP
  { id: GBEA, size: 8, reset: 1n }, // GBEA
];

class S390Vm implements ArchVm {
  readonly storage: GuestStorage;
  readonly pv = new ProtectedVirtualization();
  /**
   * User space controls the CPU states (kvm->arch.user_cpu_state_ctrl): set by any KVM_SET_MP_STATE on the
   * VM, after which KVM_RUN no longer starts a stopped vCPU.
   */
  userCpuStateCtrl = false;

  constructor(private readonly vm: VmFile) {
    this.storage = new GuestStorage(vm);
  }

  private get kernel(): ReferenceKernel {
    return this.vm.kernel;
  }

  ioctl(name: string, arg: bigint): bigint | undefined {
    switch (name) {
      case 'KVM_S390_MEM_OP':
        return this.memOp(arg);
      case 'KVM_S390_SET_SKEYS':
        return setSkeys(this.kernel, this.storage, arg);
      case 'KVM_S390_GET_SKEYS':
        return getSkeys(this.kernel, this.storage, arg);
      case 'KVM_S390_PV_COMMAND':
        return this.pv.command(this.kernel, arg);
    }
    return undefined;
  }

  /**
   * The VM ioctl refuses protected VMs outright, then takes only absolute ops; cmpxchg is op 6 upstream
   * and a write flag in the proposal.
   */
  private memOp(arg: bigint): bigint {
    const mop = readMemOp(this.kernel, arg);
    if (this.pv.enabled) fail('EINVAL');
    const proposal = this.kernel.abi.revision === PROPOSAL_CMPXCHG;
    switch (mop.op) {
      case OP.ABSOLUTE_READ:
        return absoluteOp(this.kernel, this.storage, mop);
      case OP.ABSOLUTE_WRITE:
        return proposal && (mop.flags & F_CMPXCHG) !== 0n
          ? proposalCmpxchg(this.kernel, this.storage, mop, arg)
          : absoluteOp(this.kernel, this.storage, mop);
      case OP.ABSOLUTE_CMPXCHG:
        return proposal ? fail('EINVAL') : upstreamCmpxchg(this.kernel, this.storage, mop);
      default:
        return fail('EINVAL');
    }
  }

  /** s390 maps guest memory in 1 MiB segments: the user address and the size must be segment-aligned. */
  prepareMemoryRegion(slot: Memslot): void {
    if (slot.hva % MiB !== 0n || slot.size % MiB !== 0n) fail('EINVAL');
  }

  createVcpu(vcpu: VcpuFile): ArchVcpu {
    const cpu = new S390Cpu();
    this.pv.adopt(cpu);
    return new S390Vcpu(vcpu, cpu, this);
  }
}

class S390Vcpu implements ArchVcpu {
  private readonly regs = new Map<bigint, bigint>(ONE_REGS.map((r) => [r.id, r.reset]));

  constructor(
    readonly vcpu: VcpuFile,
    private readonly cpu: S390Cpu,
    private readonly vm: S390Vm,
  ) {}

  private get storage(): GuestStorage {
    return this.vm.storage;
  }

  /** s390 hands the state back as the ioctl's value, not through the struct (kvm_arch_vcpu_ioctl_get_mpstate). */
  getMpState(): { ret: bigint } {
    const { abi } = this.vcpu.kernel;
    return { ret: abi.constant(this.cpu.stopped ? 'KVM_MP_STATE_STOPPED' : 'KVM_MP_STATE_OPERATING') };
  }

  /** Any call, refused or not, hands the VM's CPU states to user space first. */
  setMpState(state: bigint): void {
    const { abi } = this.vcpu.kernel;
    this.vm.userCpuStateCtrl = true;
    if (state === abi.constant('KVM_MP_STATE_STOPPED')) this.cpu.stopped = true;
    else if (state === abi.constant('KVM_MP_STATE_OPERATING')) this.cpu.stopped = false;
    else fail('ENXIO');
  }

  /**
   * A protected vCPU's SIDA is one page. Otherwise the SIDA designation shares its SIE-block field with
   * GBEA, whose low byte then sizes the range check in pages.
   */
  private get sidaSize(): number {
    if (this.cpu.sida) return this.cpu.sida.length;
    return (Number((this.regs.get(GBEA) ?? 0n) & 0xffn) + 1) * Number(PAGE_SIZE);
  }

  ioctl(name: string, arg: bigint): bigint | undefined {
    const { kernel } = this.vcpu;
    switch (name) {
      case 'KVM_S390_MEM_OP':
        return vcpuMemOp(kernel, this.cpu, this.storage, this.sidaSize, arg);
      case 'KVM_SET_SREGS': {
        const s = kernel.abi.readStruct(kernel.mem, arg, 'kvm_sregs');
        (s.acrs as bigint[]).forEach((v, i) => (this.cpu.acrs[i] = Number(v)));
        (s.crs as bigint[]).forEach((v, i) => (this.cpu.crs[i] = v));
        return 0n;
      }
      case 'KVM_GET_SREGS':
        kernel.abi.writeStruct(kernel.mem, arg, 'kvm_sregs', {
          acrs: this.cpu.acrs.map(BigInt),
          crs: [...this.cpu.crs],
        });
        return 0n;
      case 'KVM_S390_SET_INITIAL_PSW':
        return setInitialPsw(this.vcpu, this.cpu, arg);
      case 'KVM_S390_GET_IRQ_STATE':
        return getIrqState(kernel, this.cpu, arg);
      case 'KVM_RUN':
        // immediate_exit is the first thing s390 looks at: before the stopped check and the register sync.
        if (this.vcpu.immediateExit) fail('EINTR');
        if (this.vm.userCpuStateCtrl && this.cpu.stopped) fail('EINVAL');
        return runVcpu(this.vcpu, this.cpu, this.storage);
      case 'KVM_GET_ONE_REG':
      case 'KVM_SET_ONE_REG':
        return this.oneReg(name, arg);
    }
    return undefined;
  }

  private oneReg(name: string, arg: bigint): bigint {
    const { kernel } = this.vcpu;
    const { id, addr } = readOneReg(kernel, arg);
    const reg = ONE_REGS.find((r) => r.id === id) ?? fail('EINVAL');
    if (name === 'KVM_GET_ONE_REG') putRegValue(kernel, addr, this.regs.get(id) ?? 0n, reg.size);
    else this.regs.set(id, getRegValue(kernel, addr, reg.size));
    return 0n;
  }
}

/** The extended SCA's 248 CPU slots: KVM_CAP_MAX_VCPU_ID, and the first id KVM_CREATE_VCPU refuses. */
const MAX_VCPU_ID = 248;

export function s390xModel(spec: SpecTree): ArchModel {
  return {
    arch: 's390x',
    kernelVersion: '6.12',
    maxVcpuId: MAX_VCPU_ID,
    vcpuMmapSize: 4096,
    unknownIoctl: { system: 'EINVAL', vm: 'ENOTTY', vcpu: 'ENOTTY' },
    checkExtension: capabilityTable(spec, 's390x', {
      KVM_CAP_USER_MEMORY: 1n,
      KVM_CAP_MP_STATE: 1n,
      KVM_CAP_ONE_REG: 1n,
      KVM_CAP_MAX_VCPU_ID: BigInt(MAX_VCPU_ID),
      KVM_CAP_S390_MEM_OP: 65536n,
      KVM_CAP_S390_MEM_OP_EXTENSION: 3n,
      KVM_CAP_S390_PROTECTED: 1n,
    }),
    createVm: (type, vm) => (type === 0n ? new S390Vm(vm) : fail('EINVAL')),
  };
}
