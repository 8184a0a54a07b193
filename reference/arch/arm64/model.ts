import { bytesToUint, uintToBytes, writeFields } from '../../../harness/abi/codec.ts';
import type { SpecTree } from '../../../harness/spec/tree.ts';
import { u64 } from '../../abi.ts';
import { capabilityTable } from '../../capabilities.ts';
import { fail } from '../../errno.ts';
import type { ArchModel, ArchVcpu, ArchVm, VcpuFile, VmFile } from '../../kernel.ts';
import { copyRegList, getRegValue, putRegValue, readOneReg, regSize, REG_SIZE_MASK } from '../../one-reg.ts';
import { execute, type GuestCpu, type MmioAccess } from './cpu.ts';
import {
  beforeIdChecks,
  checkIdValue,
  FEATURE_ID_SPACE_SIZE,
  isVcpuScopedFeatureId,
  writableMasks,
} from './idregs.ts';
import { INVALID_GPA, PvLock, RUN_DELAY_PER_PREEMPTION_NS, StolenTime } from './pv.ts';
import { AFFINITY_FIELDS, PSCI_0_1, type PsciVcpu } from './psci.ts';
import { NOT_SUPPORTED as SMCCC_NOT_SUPPORTED, smcccCall, SmcccIds, type SmcccCaller } from './smccc.ts';
import { SmcccFilter } from './smccc-filter.ts';
import { modelSysregs, type SysregDesc } from './sysregs.ts';

/** KVM_ARM_TARGET_GENERIC_V8: what KVM_ARM_PREFERRED_TARGET answers on every current host. */
const TARGET_GENERIC_V8 = 5n;
const FEATURE_POWER_OFF = 0;
const FEATURE_PSCI_0_2 = 2;
/** Features the model host supports (no SVE, PMU, pointer auth, AArch32 EL1 or nested virt). */
const SUPPORTED_FEATURES = (1n << BigInt(FEATURE_POWER_OFF)) | (1n << BigInt(FEATURE_PSCI_0_2));
/** Feature bits upstream 6.12 knows at all (KVM_VCPU_MAX_FEATURES); others are rejected as unknown. */
const KNOWN_FEATURES = 0xffn;

const COPROC_MASK = 0x0fff_0000n;
const COPROC_CORE = 0x0010_0000n;
const COPROC_FW = 0x0014_0000n;
const COPROC_FW_FEAT_BMAP = 0x0016_0000n;
const ARM64_ID_HIGH = 0x6000_0000n;

/** PSTATE at reset: EL1h with D, A, I and F masked (arch/arm64/kvm/reset.c). */
const PSTATE_RESET = 0x3c5n;
const PSTATE_MODE_MASK = 0xfn;
const VALID_AARCH64_MODES = new Set([0x0n, 0x4n, 0x5n]);

/**
 * struct kvm_regs viewed as 32-bit words (guest.c indexes it so): each run of registers of one size. A
 * register starts on a multiple of its own size in words; the words between the runs are padding.
 */
const CORE_RANGES = [
  { first: 0, end: 0x52, size: 8 }, // x0..x30, sp, pc, pstate, sp_el1, elr_el1, spsr[5]
  { first: 0x54, end: 0xd4, size: 16 }, // v0..v31
  { first: 0xd4, end: 0xd6, size: 4 }, // fpsr, fpcr
] as const;
/** sizeof(struct kvm_regs) / 4: two reserved words follow fpcr. */
const CORE_WORDS = 0xd8;
function coreRegSize(word: number): number | undefined {
  const range = CORE_RANGES.find((r) => word >= r.first && word < r.end);
  return range && word % (range.size / 4) === 0 ? range.size : undefined;
}

/** ID_AA64PFR0_EL1.GIC, bits 27:24: the GIC system-register interface. */
const PFR0_GIC = 0xfn << 24n;

const FW_PSCI_VERSION = 0n;
const FW_WORKAROUND_2 = 2n;
/** What a vCPU with KVM_ARM_VCPU_PSCI_0_2 may be given: 0.2, 1.0, 1.1. */
const PSCI_VERSIONS = new Set([0x2n, 0x1_0000n, 0x1_0001n]);
const PSCI_LATEST = 0x1_0001n;
/**
 * The host's mitigation levels for SMCCC_ARCH_WORKAROUND_1..3 (firmware registers 1..3), as Linux 6.12 reports
 * them under QEMU's max CPU: WORKAROUND_1 NOT_REQUIRED (2), WORKAROUND_2 NOT_AVAIL (0; it has its own
 * numbering, where NOT_REQUIRED is 3), WORKAROUND_3 NOT_AVAIL (0).
 */
const WORKAROUND_LEVELS: ReadonlyMap<bigint, bigint> = new Map([
  [1n, 2n],
  [FW_WORKAROUND_2, 0n],
  [3n, 0n],
]);
const WA2_ENABLED = 0x10n;
const WA2_AVAIL = 2n;
/** Hypercall service bitmaps: STD (TRNG), STD_HYP (PV time), VENDOR_HYP (features, PTP); all on by default. */
const FW_BITMAP_SUPPORTED: readonly bigint[] = [0x1n, 0x1n, 0x3n];
const STD_HYP_BMAP = 1;
const STD_HYP_PV_TIME = 0x1n;

/** The revision whose vCPUs have the proposed PV-lock interface. */
export const PVLOCK_REVISION = 'proposal-2019-pvlock';
/** The model host's IPA limit (kvm_ipa_limit): 52 bits, as on a host with FEAT_LPA2 (QEMU's max CPU). */
const MAX_IPA_BITS = 52n;
/** A KVM_RUN ends with an error exit after this many instructions, so no case can hang. */
export const MAX_GUEST_STEPS = 4096;
/** The model preempts a running vCPU thread after this many instructions (then reschedules it at once). */
export const TIME_SLICE_STEPS = 256;

class Arm64Vm implements ArchVm {
  /** ID registers are VM-wide: one value per register for every vCPU of the VM. */
  readonly idRegs: Map<string, bigint>;
  /** The hypercall bitmaps are VM-wide too (kvm->arch.smccc_feat). */
  readonly fwBitmaps = [...FW_BITMAP_SUPPORTED];
  /** The PSCI version user space chose is VM-wide too (kvm->arch.psci_version), kept across vCPU resets. */
  psciVersion = PSCI_LATEST;
  /** KVM_CAP_ARM_SYSTEM_SUSPEND is enabled: SYSTEM_SUSPEND exits to user space. */
  systemSuspend = false;
  /** The feature set of the VM's first KVM_ARM_VCPU_INIT (kvm->arch.vcpu_features), POWER_OFF left out. */
  features: bigint | undefined;
  readonly smccc: SmcccIds;
  readonly pvlock: boolean;
  readonly smcccFilter: SmcccFilter;

  constructor(
    readonly vm: VmFile,
    readonly sysregs: readonly SysregDesc[],
  ) {
    this.idRegs = new Map(sysregs.filter((d) => d.kind === 'id').map((d) => [d.name, d.reset]));
    this.smccc = new SmcccIds(vm.kernel.abi);
    this.smcccFilter = new SmcccFilter(vm.kernel.abi);
    this.pvlock = vm.kernel.abi.revision === PVLOCK_REVISION;
  }

  ioctl(name: string, arg: bigint): bigint | undefined {
    const { kernel } = this.vm;
    switch (name) {
      case 'KVM_ARM_PREFERRED_TARGET':
        kernel.abi.writeStruct(kernel.mem, arg, 'kvm_vcpu_init', { target: TARGET_GENERIC_V8 });
        return 0n;
      case 'KVM_ARM_GET_REG_WRITABLE_MASKS':
        return this.writableMasks(arg);
      case 'KVM_HAS_DEVICE_ATTR':
      case 'KVM_SET_DEVICE_ATTR':
        return this.vmAttr(name, arg);
      case 'KVM_IRQ_LINE':
      case 'KVM_IRQ_LINE_STATUS':
        return this.irqLine(name === 'KVM_IRQ_LINE_STATUS', arg);
      default:
        return undefined;
    }
  }

  /**
   * KVM_IRQ_LINE without an in-kernel GIC (the model has none): a type, a vCPU id and a number packed in
   * `irq`, of which only a vCPU's own IRQ and FIQ inputs can be driven. The level lands in the vCPU's
   * HCR_EL2.VI/VF, which the model does not keep: its guests run with interrupts masked. _STATUS copies the
   * struct back as read, as arm64 sets no status.
   */
  private irqLine(withStatus: boolean, arg: bigint): bigint {
    const { mem, abi } = this.vm.kernel;
    const fields = abi.readStruct(mem, arg, 'kvm_irq_level');
    const irq = u64(fields, 'irq');
    const part = (name: string) =>
      (irq >> abi.constant(`KVM_ARM_IRQ_${name}_SHIFT`)) & abi.constant(`KVM_ARM_IRQ_${name}_MASK`);
    const type = part('TYPE');
    if (type === abi.constant('KVM_ARM_IRQ_TYPE_SPI') || type === abi.constant('KVM_ARM_IRQ_TYPE_PPI'))
      fail('ENXIO');
    if (type !== abi.constant('KVM_ARM_IRQ_TYPE_CPU')) fail('EINVAL');
    const vcpuId = part('VCPU') + part('VCPU2') * (abi.constant('KVM_ARM_IRQ_VCPU_MASK') + 1n);
    if (!this.vm.vcpus.some((v) => v.id === vcpuId)) fail('EINVAL');
    if (part('NUM') > abi.constant('KVM_ARM_IRQ_CPU_FIQ')) fail('EINVAL');
    if (withStatus) abi.writeStruct(mem, arg, 'kvm_irq_level', { irq, level: u64(fields, 'level') });
    return 0n;
  }

  /** The VM's one attribute group, KVM_ARM_VM_SMCCC_CTRL, with its one attribute, the SMCCC filter. */
  private vmAttr(name: string, arg: bigint): bigint {
    const { kernel } = this.vm;
    const attr = kernel.abi.readStruct(kernel.mem, arg, 'kvm_device_attr');
    if (u64(attr, 'group') !== kernel.abi.constant('KVM_ARM_VM_SMCCC_CTRL')) fail('ENXIO');
    if (u64(attr, 'attr') !== kernel.abi.constant('KVM_ARM_VM_SMCCC_FILTER')) fail('ENXIO');
    if (name === 'KVM_HAS_DEVICE_ATTR') return 0n;
    const f = kernel.abi.readStruct(kernel.mem, u64(attr, 'addr'), 'kvm_smccc_filter');
    const filter = { base: u64(f, 'base'), nr: u64(f, 'nr_functions'), action: u64(f, 'action') };
    this.smcccFilter.set({ ...filter, pad: f.pad as bigint[] }, this.vm.hasRun);
    return 0n;
  }

  /** Range and reserved words are checked before the array is touched; the array is zeroed, then filled. */
  private writableMasks(arg: bigint): bigint {
    const { kernel } = this.vm;
    const range = kernel.abi.readStruct(kernel.mem, arg, 'reg_mask_range');
    if (u64(range, 'range') !== 0n || (range.reserved as bigint[]).some((w) => w !== 0n)) fail('EINVAL');
    const addr = u64(range, 'addr');
    kernel.mem.copyToUser(addr, new Uint8Array(FEATURE_ID_SPACE_SIZE * 8));
    const bytes = new Uint8Array(FEATURE_ID_SPACE_SIZE * 8);
    writableMasks(this.sysregs).forEach((m, i) => bytes.set(uintToBytes(m, 8, kernel.abi.endian), i * 8));
    kernel.mem.copyToUser(addr, bytes);
    return 0n;
  }

  /**
   * At the VM's first KVM_RUN (kvm_finalize_sys_regs): a VM without an in-kernel GICv3, as every VM of the
   * model is, reads ID_AA64PFR0_EL1.GIC as 0 from then on, whatever it read before.
   */
  finalizeIdRegs(): void {
    const pfr0 = this.idRegs.get('ID_AA64PFR0_EL1');
    if (pfr0 !== undefined) this.idRegs.set('ID_AA64PFR0_EL1', pfr0 & ~PFR0_GIC);
  }

  enableCap(cap: bigint): boolean {
    if (cap !== this.vm.kernel.abi.constant('KVM_CAP_ARM_SYSTEM_SUSPEND')) return false;
    this.systemSuspend = true;
    return true;
  }

  createVcpu(vcpu: VcpuFile): ArchVcpu {
    return new Arm64Vcpu(vcpu, this);
  }

  /** Every vCPU of the VM, in creation order: PSCI finds CPU_ON's and AFFINITY_INFO's targets here. */
  get vcpus(): Arm64Vcpu[] {
    return this.vm.vcpus.flatMap((f) => (f.arch instanceof Arm64Vcpu ? [f.arch] : []));
  }
}

class Arm64Vcpu implements ArchVcpu, GuestCpu, PsciVcpu {
  private initialized = false;
  /** Initialised with KVM_ARM_VCPU_PSCI_0_2; without it the vCPU has PSCI 0.1. */
  private psci02 = false;
  private readonly core = new Map<number, bigint>();
  private readonly sysregs = new Map<string, bigint>();
  readonly stolenTime: StolenTime;
  readonly pvlock: PvLock;
  /** The thread's time runnable but off the CPU (sched_info run_delay), in ns. */
  private runDelay = 0n;
  /** A guest access to an address outside every memslot, completed by the next KVM_RUN. */
  private pendingMmio: MmioAccess | undefined;
  /**
   * STOPPED is powered off: initialised with KVM_ARM_VCPU_POWER_OFF, by any vCPU's SYSTEM_OFF or by
   * KVM_SET_MP_STATE, until a CPU_ON, KVM_SET_MP_STATE or the next KVM_ARM_VCPU_INIT. SUSPENDED waits in WFI.
   */
  mpState: 'runnable' | 'stopped' | 'suspended' = 'runnable';
  /** Where a CPU_ON told the vCPU to start, applied with a reset at its next KVM_RUN (KVM_REQ_VCPU_RESET). */
  private pendingStart: { entry: bigint; context: bigint } | undefined;

  /** A vCPU without KVM_ARM_VCPU_PSCI_0_2 has PSCI 0.1 whatever the VM's version (kvm_psci_version). */
  private get psciVersion(): bigint {
    return this.psci02 ? this.vm.psciVersion : PSCI_0_1;
  }

  /** MPIDR_EL1's affinity fields (kvm_vcpu_get_mpidr_aff): whatever user space may have set. */
  get affinity(): bigint {
    return (this.sysregs.get('MPIDR_EL1') ?? 0n) & AFFINITY_FIELDS;
  }

  /** PSCI's off (kvm_arm_vcpu_stopped): SUSPENDED counts as on. */
  get poweredOff(): boolean {
    return this.mpState === 'stopped';
  }

  powerOn(entry: bigint, context: bigint): void {
    this.pendingStart = { entry, context };
    this.mpState = 'runnable';
  }

  getMpState(): { state: bigint } {
    const name = { runnable: 'RUNNABLE', stopped: 'STOPPED', suspended: 'SUSPENDED' }[this.mpState];
    return { state: this.vcpu.kernel.abi.constant(`KVM_MP_STATE_${name}`) };
  }

  /** RUNNABLE is written as it is, with no reset; STOPPED powers the vCPU off as PSCI does. */
  setMpState(state: bigint): void {
    const { abi } = this.vcpu.kernel;
    if (state === abi.constant('KVM_MP_STATE_RUNNABLE')) this.mpState = 'runnable';
    else if (state === abi.constant('KVM_MP_STATE_STOPPED')) this.mpState = 'stopped';
    else if (state === abi.constant('KVM_MP_STATE_SUSPENDED')) this.mpState = 'suspended';
    else fail('EINVAL');
  }

  constructor(
    readonly vcpu: VcpuFile,
    readonly vm: Arm64Vm,
  ) {
    const { abi } = vcpu.kernel;
    this.stolenTime = new StolenTime(abi.constant('KVM_ARM_VCPU_PVTIME_IPA'));
    this.pvlock = new PvLock(abi.constant('KVM_ARM_VCPU_PVLOCK_IPA'));
    this.reset();
  }

  x(n: number): bigint {
    return this.core.get(2 * n) ?? 0n;
  }

  setX(n: number, value: bigint): void {
    this.core.set(2 * n, value);
  }

  get pc(): bigint {
    return this.core.get(0x40) ?? 0n;
  }

  set pc(value: bigint) {
    this.core.set(0x40, value);
  }

  /** SP_EL1 in EL1h (PSTATE.M bit 0 set), SP_EL0 otherwise. */
  sp(): bigint {
    const pstate = this.core.get(0x42) ?? PSTATE_RESET;
    return this.core.get((pstate & 1n) === 1n ? 0x44 : 0x3e) ?? 0n;
  }

  /**
   * vCPU reset (KVM_ARM_VCPU_INIT): core and ordinary state back to reset; VM-wide ID registers untouched,
   * and the vCPU-scoped feature ID registers (MPIDR_EL1, CLIDR_EL1) reset at the first init only.
   */
  private reset(): void {
    this.core.clear();
    this.core.set(0x42, PSTATE_RESET);
    const first = !this.initialized;
    for (const d of this.vm.sysregs)
      if (d.kind !== 'id' && (first || !isVcpuScopedFeatureId(d.id))) this.sysregs.set(d.name, d.reset);
    // The vCPU id's bits 3..0 go to Aff0 and bits 11..4 to Aff1 (sys_regs.c reset_mpidr); bit 31 is RES1.
    const id = this.vcpu.id;
    if (first) this.sysregs.set('MPIDR_EL1', 0x8000_0000n | (((id >> 4n) & 0xffn) << 8n) | (id & 0xfn));
    this.pendingMmio = undefined;
    this.pendingStart = undefined;
  }

  ioctl(name: string, arg: bigint): bigint | undefined {
    switch (name) {
      case 'KVM_ARM_VCPU_INIT':
        return this.init(arg);
      case 'KVM_GET_ONE_REG':
      case 'KVM_SET_ONE_REG': {
        if (!this.initialized) fail('ENOEXEC');
        const { id, addr } = readOneReg(this.vcpu.kernel, arg);
        return name === 'KVM_GET_ONE_REG' ? this.get(id, addr) : this.set(id, addr);
      }
      case 'KVM_GET_REG_LIST':
        if (!this.initialized) fail('ENOEXEC');
        return copyRegList(this.vcpu.kernel, arg, this.regIds());
      case 'KVM_RUN':
        return this.run();
      case 'KVM_HAS_DEVICE_ATTR':
      case 'KVM_SET_DEVICE_ATTR':
      case 'KVM_GET_DEVICE_ATTR':
        return this.deviceAttr(name, arg);
      default:
        return undefined;
    }
  }

  /**
   * vCPU attributes: the timer and PMU groups (the model has no in-kernel interrupt controller and its vCPUs
   * no PMU), the PV-time group, and the PV-lock group in its proposal; any other group is ENXIO.
   */
  private deviceAttr(name: string, arg: bigint): bigint {
    const { kernel } = this.vcpu;
    const a = kernel.abi.readStruct(kernel.mem, arg, 'kvm_device_attr');
    const group = u64(a, 'group');
    const attr = u64(a, 'attr');
    const addr = u64(a, 'addr');
    if (group === kernel.abi.constant('KVM_ARM_VCPU_TIMER_CTRL'))
      return timerAttr(name, attr, (irq) => putRegValue(kernel, addr, irq, 4));
    if (group === kernel.abi.constant('KVM_ARM_VCPU_PMU_V3_CTRL')) return pmuAttr(name, attr);
    const region =
      group === kernel.abi.constant('KVM_ARM_VCPU_PVTIME_CTRL')
        ? this.stolenTime
        : this.vm.pvlock && group === kernel.abi.constant('KVM_ARM_VCPU_PVLOCK_CTRL')
          ? this.pvlock
          : fail('ENXIO');
    if (name === 'KVM_HAS_DEVICE_ATTR') return region.has(attr);
    if (name === 'KVM_GET_DEVICE_ATTR') return region.get(attr, (v) => putRegValue(kernel, addr, v, 8));
    return region.set(this.vcpu.vm, attr, () => getRegValue(kernel, addr, 8));
  }

  /** vcpu_load: the scheduler put this thread back on a CPU. */
  private load(): void {
    this.stolenTime.update(this.vcpu.vm, this.runDelay);
    this.pvlock.load(this.vcpu.vm);
  }

  /** vcpu_put: `preempted` when the thread was scheduled out while runnable, not for an exit to user space. */
  private put(preempted: boolean): void {
    this.pvlock.put(this.vcpu.vm, preempted);
  }

  private smcccCaller(): SmcccCaller {
    const vm = this.vcpu.vm;
    return {
      pvlock: this.vm.pvlock,
      pvTimeAllowed: ((this.vm.fwBitmaps[STD_HYP_BMAP] ?? 0n) & STD_HYP_PV_TIME) !== 0n,
      psciVersion: this.psciVersion,
      vcpus: () => this.vm.vcpus,
      systemSuspend: this.vm.systemSuspend,
      workaroundLevel: (n) => WORKAROUND_LEVELS.get(BigInt(n)) ?? 0n,
      stolenTimeSet: () => this.stolenTime.base !== INVALID_GPA,
      stolenTimeInit: () => this.stolenTime.init(vm, this.runDelay),
      pvlockBase: () => this.pvlock.base,
      filter: this.vm.smcccFilter,
    };
  }

  private exit(reason: string, values: Record<string, bigint | bigint[]>): bigint {
    const { kernel } = this.vcpu;
    const layout = kernel.abi.layout('kvm_run');
    writeFields(
      layout,
      this.vcpu.run,
      { exit_reason: kernel.abi.constant(reason), ...values },
      kernel.abi.endian,
    );
    return 0n;
  }

  /**
   * KVM_RUN: complete a pending MMIO access, then (unless immediate_exit) execute guest instructions until the
   * guest needs user space. The first KVM_RUN of any vCPU marks the VM as having run (ID registers lock).
   */
  private run(): bigint {
    if (!this.initialized) fail('ENOEXEC');
    const vm = this.vcpu.vm;
    if (!vm.hasRun) this.vm.finalizeIdRegs();
    vm.hasRun = true;
    const pending = this.pendingMmio;
    if (pending) {
      // A load takes what user space left in kvm_run; the zero register discards it.
      if (!pending.isWrite && pending.rt !== 31) this.setX(pending.rt, this.mmioData(pending.len));
      this.pendingMmio = undefined;
      this.pc += 4n;
    }
    // Only now immediate_exit: the first run and the MMIO completion above happen either way.
    if (this.vcpu.immediateExit) fail('EINTR');
    if (this.mpState !== 'runnable') return this.exit('KVM_EXIT_INTERNAL_ERROR', {});
    const start = this.pendingStart;
    if (start) {
      this.reset();
      this.pc = start.entry;
      this.setX(0, start.context);
    }
    this.load();
    let remaining = MAX_GUEST_STEPS;
    let slice = 0;
    const memory = { view: (gpa: bigint, len: number) => vm.guestView(gpa, len) };
    for (;;) {
      const { stop, steps } = execute(this, memory, Math.min(remaining, TIME_SLICE_STEPS - slice));
      remaining -= steps;
      slice += steps;
      switch (stop.kind) {
        case 'call': {
          // SMCCC reserves the non-zero SMC immediates: KVM answers NOT_SUPPORTED in x0 alone (handle_smc).
          if (stop.conduit === 'smc' && stop.imm !== 0) {
            this.setX(0, SMCCC_NOT_SUPPORTED);
            break;
          }
          const args = [0, 1, 2, 3].map((n) => this.x(n));
          const outcome = smcccCall(this.vm.smccc, this.smcccCaller(), args);
          if (typeof outcome === 'object' && 'forwarded' in outcome) {
            // KVM answers nothing: user space does, through the registers, before the next KVM_RUN.
            this.put(false);
            const flags =
              stop.conduit === 'smc' ? this.vcpu.kernel.abi.constant('KVM_HYPERCALL_EXIT_SMC') : 0n;
            return this.exit('KVM_EXIT_HYPERCALL', { nr: outcome.forwarded, 'hypercall.flags': flags });
          }
          if (typeof outcome === 'object' && 'suspend' in outcome) {
            // kvm_psci_system_suspend: the registers stay for user space to read; nothing stops. With ndata 0
            // no data word means anything, so none is written.
            outcome.suspend.forEach((value, i) => this.setX(i + 1, value));
            this.put(false);
            return this.exit('KVM_EXIT_SYSTEM_EVENT', {
              type: this.vcpu.kernel.abi.constant('KVM_SYSTEM_EVENT_SUSPEND'),
              ndata: 0n,
            });
          }
          if (typeof outcome !== 'bigint') {
            // kvm_prepare_system_event: every vCPU of the VM stops until user space resets it.
            for (const v of this.vm.vcpus) v.mpState = 'stopped';
            this.put(false);
            return this.exit('KVM_EXIT_SYSTEM_EVENT', {
              type: this.vcpu.kernel.abi.constant(outcome.type),
              ndata: 1n,
              'system_event.flags': outcome.flags,
            });
          }
          this.setX(0, outcome);
          for (const n of [1, 2, 3]) this.setX(n, 0n);
          break;
        }
        case 'mmio': {
          const a = stop.access;
          this.pendingMmio = a;
          this.put(false);
          const data = Array.from(uintToBytes(a.data, 8, 'little'), (b) => BigInt(b));
          return this.exit('KVM_EXIT_MMIO', {
            phys_addr: a.addr,
            data,
            len: BigInt(a.len),
            is_write: a.isWrite ? 1n : 0n,
          });
        }
        case 'error':
          this.put(false);
          return this.exit('KVM_EXIT_INTERNAL_ERROR', {});
        case 'budget':
          if (remaining <= 0) {
            this.put(false);
            return this.exit('KVM_EXIT_INTERNAL_ERROR', {});
          }
          // The time slice ran out: the thread is preempted, waits for a CPU, and runs on.
          this.put(true);
          this.runDelay += RUN_DELAY_PER_PREEMPTION_NS;
          this.load();
          slice = 0;
          break;
      }
    }
  }

  /** The value user space left in kvm_run.mmio.data for a load, little-endian as the guest sees it. */
  private mmioData(len: number): bigint {
    const { kernel } = this.vcpu;
    const offset = kernel.abi.spec.field('kvm_run', 'data', { arch: 'arm64' }).offset;
    return bytesToUint(this.vcpu.run.subarray(offset, offset + len), 'little');
  }

  private init(arg: bigint): bigint {
    const { kernel } = this.vcpu;
    const values = kernel.abi.readStruct(kernel.mem, arg, 'kvm_vcpu_init');
    if (u64(values, 'target') !== TARGET_GENERIC_V8) fail('EINVAL');
    const features = values.features as bigint[];
    if (features.slice(1).some((f) => f !== 0n)) fail('ENOENT');
    const f0 = features[0] ?? 0n;
    if ((f0 & ~KNOWN_FEATURES) !== 0n) fail('ENOENT');
    if ((f0 & ~SUPPORTED_FEATURES) !== 0n) fail('EINVAL');
    // POWER_OFF applies to this call only; every init of the VM must name the first one's set.
    const set = f0 & ~(1n << BigInt(FEATURE_POWER_OFF));
    if (this.vm.features !== undefined && set !== this.vm.features) fail('EINVAL');
    this.vm.features = set;
    this.psci02 = (f0 & (1n << BigInt(FEATURE_PSCI_0_2))) !== 0n;
    this.reset();
    this.mpState = (f0 & (1n << BigInt(FEATURE_POWER_OFF))) !== 0n ? 'stopped' : 'runnable';
    this.initialized = true;
    return 0n;
  }

  /** Every id GET_REG_LIST reports: core, firmware, hypercall bitmaps, then system registers. */
  private regIds(): bigint[] {
    const ids: bigint[] = [];
    for (const { first, end, size } of CORE_RANGES)
      for (let word = first; word < end; word += size / 4)
        ids.push(0x6000_0000_0010_0000n | (BigInt(Math.log2(size)) << 52n) | BigInt(word));
    for (const n of [FW_PSCI_VERSION, ...WORKAROUND_LEVELS.keys()]) ids.push(0x6030_0000_0014_0000n | n);
    FW_BITMAP_SUPPORTED.forEach((_, n) => ids.push(0x6030_0000_0016_0000n | BigInt(n)));
    for (const d of this.vm.sysregs) ids.push(d.id);
    return ids;
  }

  private get(id: bigint, addr: bigint): bigint {
    const { kernel } = this.vcpu;
    if ((id & ~REG_SIZE_MASK) >> 32n !== ARM64_ID_HIGH) fail('EINVAL');
    switch (id & COPROC_MASK) {
      case COPROC_CORE: {
        const { word, size } = this.coreReg(id);
        putRegValue(kernel, addr, this.readCore(word, size), size);
        return 0n;
      }
      case COPROC_FW:
      case COPROC_FW_FEAT_BMAP:
        putRegValue(kernel, addr, this.fwValue(id) ?? fail('ENOENT'), 8);
        return 0n;
      default: {
        const d = this.sysreg(id);
        putRegValue(kernel, addr, this.readSysreg(d), 8);
        return 0n;
      }
    }
  }

  private set(id: bigint, addr: bigint): bigint {
    const { kernel } = this.vcpu;
    if ((id & ~REG_SIZE_MASK) >> 32n !== ARM64_ID_HIGH) fail('EINVAL');
    switch (id & COPROC_MASK) {
      case COPROC_CORE: {
        const { word, size } = this.coreReg(id);
        const value = getRegValue(kernel, addr, size);
        if (word === 0x42 && !VALID_AARCH64_MODES.has(value & PSTATE_MODE_MASK)) fail('EINVAL');
        this.writeCore(word, size, value);
        return 0n;
      }
      case COPROC_FW:
      case COPROC_FW_FEAT_BMAP: {
        // The size is checked first, then the value copied in, then the id looked up (kvm_arm_set_fw_reg).
        if (regSize(id) !== 8) fail('ENOENT');
        const value = getRegValue(kernel, addr, 8);
        const held = this.fwValue(id) ?? fail('ENOENT');
        if ((id & COPROC_MASK) === COPROC_FW) this.setFw(id & 0xffffn, value, held);
        else this.setBitmap(Number(id & 0xffffn), value, held);
        return 0n;
      }
      default: {
        // System-register writes read the user value before looking the register up.
        const value = getRegValue(kernel, addr, 8);
        const d = this.sysreg(id);
        this.writeSysreg(d, value);
        return 0n;
      }
    }
  }

  private coreReg(id: bigint): { word: number; size: number } {
    const word = Number(id & 0xffffn);
    // Upstream counts a register reaching the end of kvm_regs as past it, before the layout is looked at.
    if (word + (regSize(id) >> 2) >= CORE_WORDS) fail('ENOENT');
    const size = regSize(id);
    if (coreRegSize(word) !== size) fail('EINVAL');
    return { word, size };
  }

  private readCore(word: number, size: number): bigint {
    return (this.core.get(word) ?? 0n) & ((1n << BigInt(size * 8)) - 1n);
  }

  private writeCore(word: number, size: number, value: bigint): void {
    this.core.set(word, value & ((1n << BigInt(size * 8)) - 1n));
  }

  /** The firmware or bitmap register an id names exactly (hypercalls.c matches the whole id, size included). */
  private fwValue(id: bigint): bigint | undefined {
    if (regSize(id) !== 8) return undefined;
    const index = id & 0xffffn;
    if ((id & COPROC_MASK) === COPROC_FW_FEAT_BMAP) return this.vm.fwBitmaps[Number(index)];
    if (index === FW_PSCI_VERSION) return this.psciVersion;
    return WORKAROUND_LEVELS.get(index);
  }

  /**
   * A firmware register write: PSCI_VERSION takes a version KVM implements; a workaround level (`held` is the
   * host's) is never raised.
   */
  private setFw(index: bigint, value: bigint, held: bigint): void {
    if (index === FW_PSCI_VERSION) {
      // 0.1 only without the PSCI 0.2 feature, 0.2 and later only with it (kvm_arm_set_fw_reg).
      if (this.psci02 ? !PSCI_VERSIONS.has(value) : value !== PSCI_0_1) fail('EINVAL');
      this.vm.psciVersion = value;
    } else if (index === FW_WORKAROUND_2) {
      // Levels 0..3, and ENABLED only with AVAIL. NOT_AVAIL and UNKNOWN (0, 1) fold to NOT_AVAIL, AVAIL and
      // NOT_REQUIRED (2, 3) to NOT_REQUIRED, which the host's level must reach.
      const level = value & ~WA2_ENABLED;
      if (level > 3n || (value !== level && level !== WA2_AVAIL)) fail('EINVAL');
      if (level >= WA2_AVAIL && held < 3n) fail('EINVAL');
    } else if (value > held) {
      // A level may be lowered (a migration target claims less) but never raised above the host's, which is
      // at most 0xf, so bits above the level field are refused too; the host's level is what reads back.
      fail('EINVAL');
    }
  }

  /** A bitmap write: unsupported bits first, then the lock once the VM ran (kvm_arm_set_fw_reg_bmap). */
  private setBitmap(n: number, value: bigint, held: bigint): void {
    if ((value & ~(FW_BITMAP_SUPPORTED[n] ?? 0n)) !== 0n) fail('EINVAL');
    if (this.vcpu.vm.hasRun && value !== held) fail('EBUSY');
    this.vm.fwBitmaps[n] = value;
  }

  /** A system register: the catalogued id includes its size, so another size names none (ENOENT). */
  private sysreg(id: bigint): SysregDesc {
    return this.vm.sysregs.find((s) => s.id === id) ?? fail('ENOENT');
  }

  private readSysreg(d: SysregDesc): bigint {
    return (d.kind === 'id' ? this.vm.idRegs : this.sysregs).get(d.name)!;
  }

  /**
   * VM-wide ID registers: after the VM ran only the current value is accepted (EBUSY otherwise); before,
   * mask and safety. A vCPU-scoped one is checked the same way at any time (CLIDR_EL1: reserved bits).
   */
  private writeSysreg(d: SysregDesc, written: bigint): void {
    const value = beforeIdChecks(d, written);
    if (d.kind === 'id') {
      if (this.vcpu.vm.hasRun) {
        if (value !== this.vm.idRegs.get(d.name)) fail('EBUSY');
        return;
      }
      checkIdValue(d, value);
      this.vm.idRegs.set(d.name, value);
      return;
    }
    if (d.kind === 'vcpu-id') checkIdValue(d, value);
    this.sysregs.set(d.name, value);
  }
}

/** The timers' default interrupts (arch_timer.c): virtual, physical, EL2 virtual, EL2 physical (attributes 0-3). */
const TIMER_PPIS: readonly bigint[] = [27n, 30n, 28n, 26n];

/**
 * The timer group: HAS and GET know attributes 0-3 (ENXIO past them); SET needs an in-kernel interrupt
 * controller, which the model never has, and checks that before anything else (EINVAL).
 */
function timerAttr(name: string, attr: bigint, put: (irq: bigint) => void): bigint {
  if (name === 'KVM_SET_DEVICE_ATTR') fail('EINVAL');
  const irq = attr < BigInt(TIMER_PPIS.length) ? TIMER_PPIS[Number(attr)]! : fail('ENXIO');
  if (name === 'KVM_GET_DEVICE_ATTR') put(irq);
  return 0n;
}

/**
 * The PMU group on a vCPU without a PMU: HAS is ENXIO, SET ENODEV; GET of the interrupt (attribute 0) first
 * needs an in-kernel interrupt controller (EINVAL), any other GET is ENXIO.
 */
function pmuAttr(name: string, attr: bigint): bigint {
  if (name === 'KVM_SET_DEVICE_ATTR') fail('ENODEV');
  if (name === 'KVM_GET_DEVICE_ATTR' && attr === 0n) fail('EINVAL');
  fail('ENXIO');
}

/** The model host's vCPU limit, its GICv3's (kvm->max_vcpus): KVM_CAP_MAX_VCPU_ID and the first id refused. */
const MAX_VCPUS = 512;

export function arm64Model(spec: SpecTree): ArchModel {
  const sysregs = modelSysregs(spec);
  return {
    arch: 'arm64',
    kernelVersion: '6.12',
    maxVcpuId: MAX_VCPUS,
    vcpuMmapSize: 2 * 4096,
    unknownIoctl: { system: 'EINVAL', vm: 'EINVAL', vcpu: 'EINVAL' },
    checkExtension: capabilityTable(spec, 'arm64', {
      // The machine has a GIC, so the vGIC is present.
      KVM_CAP_IRQCHIP: 1n,
      KVM_CAP_USER_MEMORY: 1n,
      KVM_CAP_MP_STATE: 1n,
      KVM_CAP_ONE_REG: 1n,
      KVM_CAP_ARM_SUPPORTED_REG_MASK_RANGES: 1n,
      KVM_CAP_ARM_SYSTEM_SUSPEND: 1n,
      KVM_CAP_ARM_VM_IPA_SIZE: MAX_IPA_BITS,
      KVM_CAP_MAX_VCPU_ID: BigInt(MAX_VCPUS),
    }),
    createVm: (type, vm) => {
      // The low byte selects the IPA size (0 = default 40 bits); every other bit is reserved.
      if ((type & ~0xffn) !== 0n) fail('EINVAL');
      const ipa = type & 0xffn;
      if (ipa !== 0n && (ipa < 32n || ipa > MAX_IPA_BITS)) fail('EINVAL');
      return new Arm64Vm(vm, sysregs);
    },
  };
}
