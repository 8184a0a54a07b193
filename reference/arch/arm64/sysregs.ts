/**
 * The reference's arm64 CPU model: the values of a documented model CPU (a Neoverse-N1-class core without SVE,
 * SME, pointer authentication, MTE or AArch32; see docs/arm64.md) for the system registers of the spec's ONE_REG
 * catalog. Real hosts differ in values; the suite compares such values by invariants.
 *
 * The ABI side (ids, and the writable fields of the feature ID registers with their policies) is the spec's
 * (spec/registers/arm64.json); the model values here are joined with it by name: a catalogued system
 * register the model has no value for is an error (test/arm64.test.ts checks the other direction).
 */
import type { SpecTree } from '../../../harness/spec/tree.ts';
import type { RegisterField } from '../../../harness/spec/types.ts';
import { toBigInt } from '../../../harness/spec/int.ts';

export type SysregKind =
  /** Feature ID register: VM-wide, locked after the first KVM_RUN (arch/arm64/kvm/sys_regs.c set_id_reg). */
  | 'id'
  /**
   * vCPU-scoped feature ID register with a setter of its own (CLIDR_EL1, set_clidr): one value per vCPU,
   * a write checked against its writable fields, never locked by a run.
   */
  | 'vcpu-id'
  /** Ordinary vCPU state, reset by KVM_ARM_VCPU_INIT: the value written is the value read back. */
  | 'state';

export interface SysregDesc {
  name: string;
  id: bigint;
  kind: SysregKind;
  reset: bigint;
  /** The spec's writable fields; an ID register without any is fixed at its value. */
  fields: readonly RegisterField[];
}

/**
 * What KVM writes into registers whose architectural reset value is UNKNOWN (reset_unknown in
 * arch/arm64/kvm/sys_regs.h): a fixed poison pattern, so stale state is easy to spot (seen on real 6.12).
 */
export const UNKNOWN_RESET = 0x1de7_ec7e_dbad_c0den;

/**
 * The model CPU's feature ID registers. Field values are chosen so that most writable fields have both a
 * lower and a higher neighbour; features the model lacks (SVE, FP8, FPMR, RME, ...) read 0.
 */
export const ID_VALUES: Readonly<Record<string, bigint>> = {
  MIDR_EL1: 0x414fd0c1n,
  REVIDR_EL1: 0n,
  // AArch64 only at every EL, GICv3 system registers, Secure EL2, DIT, CSV2 and CSV3.
  ID_AA64PFR0_EL1: 0x1101_0010_1111_1111n,
  // BTI, SSBS 2 (with the MSR/MRS interface), CSV2_frac 1; no MTE or SME.
  ID_AA64PFR1_EL1: 0x1_0000_0021n,
  ID_AA64PFR2_EL1: 0n,
  // No SVE: KVM shows a vCPU without SVE a zero ZFR0.
  ID_AA64ZFR0_EL1: 0n,
  ID_AA64FPFR0_EL1: 0n,
  // Armv8.2 debug, no PMU, 4 watchpoints, DoubleLock implemented (0).
  ID_AA64DFR0_EL1: 0x0000_0000_1030_5008n,
  ID_AA64DFR1_EL1: 0n,
  ID_AA64ISAR0_EL1: 0x1221_1111_1021_2120n,
  ID_AA64ISAR1_EL1: 0x0011_1111_0021_1002n,
  ID_AA64ISAR2_EL1: 0x0011_0000_0000_0012n,
  // TGRAN4 and TGRAN64 0: supported.
  ID_AA64MMFR0_EL1: 0x1100_1222_0011_1125n,
  ID_AA64MMFR1_EL1: 0x0010_1011_1131_2122n,
  ID_AA64MMFR2_EL1: 0x1221_0111_1111_1111n,
  ID_AA64MMFR3_EL1: 0x1_0101n,
  // VM-wide like the ID_* block (kvm->arch.ctr_el0), though outside it. With IDC and DIC, so the CLIDR
  // setter's IDC check (a host without CTR_EL0.IDC) never applies.
  CTR_EL0: 0xb444_c004n,
};

/** The model CPU's vCPU-scoped feature ID registers with a checked setter. */
export const VCPU_ID_VALUES: Readonly<Record<string, bigint>> = {
  // Separate L1 instruction and data caches and a unified L2; LoUU 1, LoC 2, LoUIS 1.
  CLIDR_EL1: 0x0a20_0023n,
};

/** The model's reset values of ordinary vCPU state (MPIDR_EL1 is set from the vCPU id at reset). */
export const STATE_VALUES: Readonly<Record<string, bigint>> = {
  MPIDR_EL1: 0x8000_0000n,
  SCTLR_EL1: 0x30c50838n,
  CPACR_EL1: 0n,
  TTBR0_EL1: UNKNOWN_RESET,
  TTBR1_EL1: UNKNOWN_RESET,
  TCR_EL1: 0n,
  AFSR0_EL1: UNKNOWN_RESET,
  AFSR1_EL1: UNKNOWN_RESET,
  ESR_EL1: UNKNOWN_RESET,
  FAR_EL1: UNKNOWN_RESET,
  PAR_EL1: UNKNOWN_RESET,
  MAIR_EL1: UNKNOWN_RESET,
  AMAIR_EL1: 0n,
  VBAR_EL1: 0n,
  CONTEXTIDR_EL1: 0n,
  TPIDR_EL1: UNKNOWN_RESET,
  CNTKCTL_EL1: 0n,
  CSSELR_EL1: UNKNOWN_RESET,
  TPIDR_EL0: UNKNOWN_RESET,
  TPIDRRO_EL0: UNKNOWN_RESET,
  // Generic-timer state: reads on real hosts depend on time; the model keeps what was written.
  KVM_REG_ARM_TIMER_CTL: 0n,
  KVM_REG_ARM_TIMER_CNT: 0n,
  KVM_REG_ARM_TIMER_CVAL: 0n,
};

/** The ONE_REG id space of the system registers (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG). */
export const SYSREG_BASE = 0x6030_0000_0013_0000n;

/** The catalog's system registers, in catalog order, each with the model's kind and value. */
export function modelSysregs(spec: SpecTree): SysregDesc[] {
  return spec
    .registers('arm64')
    .filter((r) => toBigInt(r.id) >> 16n === SYSREG_BASE >> 16n)
    .map((r) => ({ name: r.name, id: toBigInt(r.id), ...modelValue(r.name), fields: r.fields ?? [] }));
}

function modelValue(name: string): { kind: SysregKind; reset: bigint } {
  const id = ID_VALUES[name];
  if (id !== undefined) return { kind: 'id', reset: id };
  const vcpuId = VCPU_ID_VALUES[name];
  if (vcpuId !== undefined) return { kind: 'vcpu-id', reset: vcpuId };
  return { kind: 'state', reset: STATE_VALUES[name] ?? unmodelled(name) };
}

function unmodelled(name: string): never {
  throw new Error(`arm64 model: no value for the catalogued register ${name}`);
}
