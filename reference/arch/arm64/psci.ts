import type { Abi } from '../../abi.ts';

/**
 * KVM's PSCI (arch/arm64/kvm/psci.c): the calls of the standard secure service, answered by the version the
 * calling vCPU has — KVM's own 0.1 ids, PSCI 0.2, or 1.0/1.1, which add PSCI_FEATURES, SYSTEM_RESET2 and
 * (when user space asks for it) SYSTEM_SUSPEND. CPU_SUSPEND and CPU_OFF, which park the vCPU until an
 * interrupt or a CPU_ON, are not modelled; they answer NOT_SUPPORTED here (PSCI_FEATURES still reports what
 * KVM implements).
 */

/** KVM_ARM_PSCI_0_1 and KVM_ARM_PSCI_1_0 (include/kvm/arm_psci.h): major << 16 | minor. */
export const PSCI_0_1 = 0x1n;
const PSCI_1_0 = 0x1_0000n;

/** PSCI return values (include/uapi/linux/psci.h) as x0 holds them, and AFFINITY_INFO's answers. */
const SUCCESS = 0n;
const NOT_SUPPORTED = (1n << 64n) - 1n;
const INVALID_PARAMETERS = (1n << 64n) - 2n;
const ALREADY_ON = (1n << 64n) - 4n;
const AFFINITY_ON = 0n;
const AFFINITY_OFF = 1n;
/** MIGRATE_INFO_TYPE: a Trusted OS that needs no migration, or none (PSCI_0_2_TOS_MP). */
const TOS_MP = 2n;

/** MPIDR_EL1's affinity fields, Aff3 and Aff2..Aff0 (MPIDR_HWID_BITMASK); each level is 8 bits wide. */
export const AFFINITY_FIELDS = 0xff_00ff_ffffn;
const LOW_WORD = 0xffff_ffffn;

/** A vCPU as PSCI sees it: its affinity, whether it is powered off, and the way CPU_ON wakes it. */
export interface PsciVcpu {
  readonly affinity: bigint;
  readonly poweredOff: boolean;
  /** Powers the vCPU on: at its next KVM_RUN it resets and starts at `entry` with `context` in x0. */
  powerOn(entry: bigint, context: bigint): void;
}

export interface PsciCaller {
  /** KVM_ARM_PSCI_0_1 for a vCPU without KVM_ARM_VCPU_PSCI_0_2, else the VM's version. */
  readonly psciVersion: bigint;
  /** Every vCPU of the VM, in creation order (kvm_for_each_vcpu). */
  vcpus(): readonly PsciVcpu[];
  /** User space enabled KVM_CAP_ARM_SYSTEM_SUSPEND on the VM (KVM_ARCH_FLAG_SYSTEM_SUSPEND_ENABLED). */
  readonly systemSuspend: boolean;
}

/** A call that ends in a system event returns nothing to the guest: KVM_RUN exits with it instead. */
export interface SystemEvent {
  type: 'KVM_SYSTEM_EVENT_SHUTDOWN' | 'KVM_SYSTEM_EVENT_RESET';
  /** kvm_run.system_event.flags. */
  flags: bigint;
}

/**
 * SYSTEM_SUSPEND, left to user space: KVM_RUN exits with a SUSPEND event and no data, the guest's registers
 * as it set them but for x1..x3, which the SMC32 form narrows first (`args`); no vCPU is stopped.
 */
export interface SuspendEvent {
  suspend: readonly bigint[];
}

/** x0 for the guest, a system event, or a suspend. */
export type PsciOutcome = bigint | SystemEvent | SuspendEvent;

/** PSCI function ids by their spec constant names. */
export class PsciIds {
  readonly version: bigint;
  readonly cpuOn: bigint;
  readonly cpuOn64: bigint;
  readonly affinityInfo: bigint;
  readonly affinityInfo64: bigint;
  readonly migrateInfoType: bigint;
  readonly systemOff: bigint;
  readonly systemReset: bigint;
  readonly features: bigint;
  readonly reset2: readonly bigint[];
  /** SYSTEM_SUSPEND's SMC32 and SMC64 ids. */
  readonly suspend: readonly [bigint, bigint];
  readonly kvmCpuOn: bigint;
  /** kvm_run.system_event.flags of a SYSTEM_RESET2 reset. */
  readonly reset2Flag: bigint;
  /** SYSTEM_RESET2's first vendor reset type; 0 (warm reset) is the one architectural type KVM takes. */
  readonly vendorResetTypes: bigint;
  /** What PSCI_FEATURES reports implemented under every 1.x version. */
  readonly implemented: ReadonlySet<bigint>;

  constructor(abi: Abi) {
    const id = (name: string) => abi.constant(name);
    this.version = id('PSCI_0_2_FN_PSCI_VERSION');
    this.cpuOn = id('PSCI_0_2_FN_CPU_ON');
    this.cpuOn64 = id('PSCI_0_2_FN64_CPU_ON');
    this.affinityInfo = id('PSCI_0_2_FN_AFFINITY_INFO');
    this.affinityInfo64 = id('PSCI_0_2_FN64_AFFINITY_INFO');
    this.migrateInfoType = id('PSCI_0_2_FN_MIGRATE_INFO_TYPE');
    this.systemOff = id('PSCI_0_2_FN_SYSTEM_OFF');
    this.systemReset = id('PSCI_0_2_FN_SYSTEM_RESET');
    this.vendorResetTypes = id('PSCI_1_1_RESET_TYPE_VENDOR_START');
    this.features = id('PSCI_1_0_FN_PSCI_FEATURES');
    this.reset2 = [id('PSCI_1_1_FN_SYSTEM_RESET2'), id('PSCI_1_1_FN64_SYSTEM_RESET2')];
    this.suspend = [id('PSCI_1_0_FN_SYSTEM_SUSPEND'), id('PSCI_1_0_FN64_SYSTEM_SUSPEND')];
    this.kvmCpuOn = id('KVM_PSCI_FN_CPU_ON');
    this.reset2Flag = id('KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2');
    this.implemented = new Set(
      [
        'PSCI_0_2_FN_PSCI_VERSION',
        'PSCI_0_2_FN_CPU_SUSPEND',
        'PSCI_0_2_FN64_CPU_SUSPEND',
        'PSCI_0_2_FN_CPU_OFF',
        'PSCI_0_2_FN_CPU_ON',
        'PSCI_0_2_FN64_CPU_ON',
        'PSCI_0_2_FN_AFFINITY_INFO',
        'PSCI_0_2_FN64_AFFINITY_INFO',
        'PSCI_0_2_FN_MIGRATE_INFO_TYPE',
        'PSCI_0_2_FN_SYSTEM_OFF',
        'PSCI_0_2_FN_SYSTEM_RESET',
        'PSCI_1_0_FN_PSCI_FEATURES',
        'ARM_SMCCC_VERSION_FUNC_ID',
      ].map(id),
    );
  }
}

/**
 * CPU_ON: a target with bits outside the affinity fields is refused before the lookup, which compares the
 * fields alone (kvm_mpidr_to_vcpu); a vCPU that is on answers ALREADY_ON, which PSCI 0.1 does not have
 * (kvm_psci_vcpu_on).
 */
function cpuOn(caller: PsciCaller, [target, entry, context]: readonly bigint[]): bigint {
  if ((target! & ~AFFINITY_FIELDS) !== 0n) return INVALID_PARAMETERS;
  const vcpu = caller.vcpus().find((v) => v.affinity === (target! & AFFINITY_FIELDS));
  if (!vcpu) return INVALID_PARAMETERS;
  if (!vcpu.poweredOff) return caller.psciVersion === PSCI_0_1 ? INVALID_PARAMETERS : ALREADY_ON;
  vcpu.powerOn(entry!, context!);
  return SUCCESS;
}

/** AFFINITY_INFO: ON if any vCPU matching the target from `level` upwards is on, OFF if all are off. */
function affinityInfo(caller: PsciCaller, [target, level]: readonly bigint[]): bigint {
  if ((target! & ~AFFINITY_FIELDS) !== 0n || level! > 3n) return INVALID_PARAMETERS;
  const mask = AFFINITY_FIELDS & ~((1n << (8n * level!)) - 1n);
  const matching = caller.vcpus().filter((v) => (v.affinity & mask) === (target! & mask));
  if (matching.length === 0) return INVALID_PARAMETERS;
  return matching.some((v) => !v.poweredOff) ? AFFINITY_ON : AFFINITY_OFF;
}

/** PSCI_FEATURES of a function id (its low 32 bits): SYSTEM_RESET2 from 1.1 on, SYSTEM_SUSPEND once enabled. */
function features(ids: PsciIds, caller: PsciCaller, fid: bigint): bigint {
  const id = fid & LOW_WORD;
  if (ids.implemented.has(id)) return SUCCESS;
  if (ids.suspend.includes(id)) return caller.systemSuspend ? SUCCESS : NOT_SUPPORTED;
  return ids.reset2.includes(id) && caller.psciVersion > PSCI_1_0 ? SUCCESS : NOT_SUPPORTED;
}

/** SYSTEM_SUSPEND (PSCI 1.0 on): user space's to carry out, and only once it enabled the capability. */
function systemSuspend(caller: PsciCaller, args: readonly bigint[]): PsciOutcome {
  return caller.psciVersion >= PSCI_1_0 && caller.systemSuspend ? { suspend: args } : NOT_SUPPORTED;
}

/** SYSTEM_RESET2 (PSCI 1.1): a warm or vendor reset type in x1's low 32 bits resets, others are refused. */
function systemReset2(ids: PsciIds, type: bigint): PsciOutcome {
  const kept = type & LOW_WORD;
  return kept === 0n || kept >= ids.vendorResetTypes
    ? { type: 'KVM_SYSTEM_EVENT_RESET', flags: ids.reset2Flag }
    : INVALID_PARAMETERS;
}

/**
 * A call the SMCCC handler passed on to PSCI: `fid` is x0's low 32 bits, `args` x1..x3. The SMC32 forms of
 * CPU_ON, AFFINITY_INFO and SYSTEM_SUSPEND look at the low halves of their arguments only
 * (kvm_psci_narrow_to_32bit).
 */
export function psciCall(
  ids: PsciIds,
  caller: PsciCaller,
  fid: bigint,
  args: readonly bigint[],
): PsciOutcome {
  const version = caller.psciVersion;
  if (version === PSCI_0_1) return fid === ids.kvmCpuOn ? cpuOn(caller, args) : NOT_SUPPORTED;
  const narrowed = () => args.map((a) => a & LOW_WORD);
  switch (fid) {
    case ids.version:
      return version;
    case ids.features:
      return version >= PSCI_1_0 ? features(ids, caller, args[0]!) : NOT_SUPPORTED;
    case ids.cpuOn:
      return cpuOn(caller, narrowed());
    case ids.cpuOn64:
      return cpuOn(caller, args);
    case ids.affinityInfo:
      return affinityInfo(caller, narrowed());
    case ids.affinityInfo64:
      return affinityInfo(caller, args);
    case ids.migrateInfoType:
      return TOS_MP;
    case ids.systemOff:
      return { type: 'KVM_SYSTEM_EVENT_SHUTDOWN', flags: 0n };
    case ids.systemReset:
      return { type: 'KVM_SYSTEM_EVENT_RESET', flags: 0n };
    case ids.reset2[0]:
    case ids.reset2[1]:
      return version > PSCI_1_0 ? systemReset2(ids, args[0]!) : NOT_SUPPORTED;
    case ids.suspend[0]:
      return systemSuspend(caller, narrowed());
    case ids.suspend[1]:
      return systemSuspend(caller, args);
    default:
      return NOT_SUPPORTED;
  }
}
