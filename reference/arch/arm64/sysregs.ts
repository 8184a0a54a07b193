/**
 * The reference's arm64 CPU model: the system registers user space reaches through ONE_REG, with reset
 * values of a documented model CPU (a Neoverse-N1-like core without SVE, SME, pointer authentication,
 * MTE or AArch32 EL1). Real hosts differ in values; the suite compares such values by invariants.
 */
export type SysregKind =
  /** Feature ID register: VM-wide, locked after the first KVM_RUN (arch/arm64/kvm/sys_regs.c set_id_reg). */
  | 'id'
  /** Ordinary vCPU state: the value written is the value read back. */
  | 'state'
  /** Generic-timer state: reads depend on time. */
  | 'timer';

export interface SysregDesc {
  name: string;
  op0: number;
  op1: number;
  crn: number;
  crm: number;
  op2: number;
  kind: SysregKind;
  reset: bigint;
}

const r = (
  name: string,
  [op0, op1, crn, crm, op2]: [number, number, number, number, number],
  kind: SysregKind,
  reset: bigint,
): SysregDesc => ({ name, op0, op1, crn, crm, op2, kind, reset });

export const SYSREGS: readonly SysregDesc[] = [
  r('MIDR_EL1', [3, 0, 0, 0, 0], 'id', 0x414fd0c1n),
  r('MPIDR_EL1', [3, 0, 0, 0, 5], 'state', 0x80000000n),
  r('REVIDR_EL1', [3, 0, 0, 0, 6], 'id', 0n),
  r('ID_AA64PFR0_EL1', [3, 0, 0, 4, 0], 'id', 0x1100_0000_1101_1111n),
  r('ID_AA64PFR1_EL1', [3, 0, 0, 4, 1], 'id', 0x20n),
  r('ID_AA64DFR0_EL1', [3, 0, 0, 5, 0], 'id', 0x0000_0000_1030_5408n),
  r('ID_AA64DFR1_EL1', [3, 0, 0, 5, 1], 'id', 0n),
  r('ID_AA64ISAR0_EL1', [3, 0, 0, 6, 0], 'id', 0x0000_1000_1021_1120n),
  r('ID_AA64ISAR1_EL1', [3, 0, 0, 6, 1], 'id', 0x0010_0001_0021_1000n),
  r('ID_AA64ISAR2_EL1', [3, 0, 0, 6, 2], 'id', 0n),
  r('ID_AA64MMFR0_EL1', [3, 0, 0, 7, 0], 'id', 0x0000_0000_0010_1125n),
  r('ID_AA64MMFR1_EL1', [3, 0, 0, 7, 1], 'id', 0x0000_0000_1012_2122n),
  r('ID_AA64MMFR2_EL1', [3, 0, 0, 7, 2], 'id', 0x0000_0000_0000_1011n),
  r('SCTLR_EL1', [3, 0, 1, 0, 0], 'state', 0x30c50838n),
  r('CPACR_EL1', [3, 0, 1, 0, 2], 'state', 0n),
  r('TTBR0_EL1', [3, 0, 2, 0, 0], 'state', 0n),
  r('TTBR1_EL1', [3, 0, 2, 0, 1], 'state', 0n),
  r('TCR_EL1', [3, 0, 2, 0, 2], 'state', 0n),
  r('AFSR0_EL1', [3, 0, 5, 1, 0], 'state', 0n),
  r('AFSR1_EL1', [3, 0, 5, 1, 1], 'state', 0n),
  r('ESR_EL1', [3, 0, 5, 2, 0], 'state', 0n),
  r('FAR_EL1', [3, 0, 6, 0, 0], 'state', 0n),
  r('PAR_EL1', [3, 0, 7, 4, 0], 'state', 0n),
  r('MAIR_EL1', [3, 0, 10, 2, 0], 'state', 0n),
  r('AMAIR_EL1', [3, 0, 10, 3, 0], 'state', 0n),
  r('VBAR_EL1', [3, 0, 12, 0, 0], 'state', 0n),
  r('CONTEXTIDR_EL1', [3, 0, 13, 0, 1], 'state', 0n),
  r('TPIDR_EL1', [3, 0, 13, 0, 4], 'state', 0n),
  r('CNTKCTL_EL1', [3, 0, 14, 1, 0], 'state', 0n),
  r('CLIDR_EL1', [3, 1, 0, 0, 1], 'id', 0x0a20_0023n),
  r('CSSELR_EL1', [3, 2, 0, 0, 0], 'state', 0n),
  r('CTR_EL0', [3, 3, 0, 0, 1], 'id', 0x8444_c004n),
  r('TPIDR_EL0', [3, 3, 13, 0, 2], 'state', 0n),
  r('TPIDRRO_EL0', [3, 3, 13, 0, 3], 'state', 0n),
  // The ABI's timer ids swap the CNT and CVAL encodings (documented quirk in api.rst); the catalog uses the ids.
  r('KVM_REG_ARM_TIMER_CTL', [3, 3, 14, 3, 1], 'timer', 0n),
  r('KVM_REG_ARM_TIMER_CNT', [3, 3, 14, 3, 2], 'timer', 0n),
  r('KVM_REG_ARM_TIMER_CVAL', [3, 3, 14, 0, 2], 'timer', 0n),
];

export const SYSREG_BASE = 0x6030_0000_0013_0000n;

export function sysregId(d: Pick<SysregDesc, 'op0' | 'op1' | 'crn' | 'crm' | 'op2'>): bigint {
  return SYSREG_BASE | BigInt((d.op0 << 14) | (d.op1 << 11) | (d.crn << 7) | (d.crm << 3) | d.op2);
}
