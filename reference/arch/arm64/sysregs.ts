/**
 * The reference's arm64 CPU model: the system registers user space reaches through ONE_REG, with the values
 * of a documented model CPU (a Neoverse-N1-class core without SVE, SME, pointer authentication, MTE or AArch32;
 * see docs/arm64.md). Real hosts differ in values; the suite compares such values by invariants.
 *
 * The feature registers carry the writable fields Linux 6.12 reports in KVM_ARM_GET_REG_WRITABLE_MASKS (the
 * union of a register's fields is its mask), each with the safe-value policy the kernel's feature tables give
 * it (arch/arm64/kernel/cpufeature.c, as overridden in arch/arm64/kvm/sys_regs.c); a KVM_SET_ONE_REG value is
 * checked against the model value as the limit.
 */
export type SysregKind =
  /** Feature ID register: VM-wide, locked after the first KVM_RUN (arch/arm64/kvm/sys_regs.c set_id_reg). */
  | 'id'
  /** Ordinary vCPU state: the value written is the value read back. */
  | 'state'
  /** Generic-timer state: reads depend on time. */
  | 'timer';

/**
 * How a field may differ from the limit: lower-safe fields may only go down (not below `min`), higher-safe
 * only up; `any` fields take every value (CLIDR_EL1, whose setter checks only its reserved bits).
 */
export type FieldPolicy = 'lower-safe' | 'higher-safe' | 'any';

export interface IdField {
  name: string;
  shift: number;
  /** 4 unless given (CTR_EL0 and ID_AA64FPFR0_EL1 have 1-bit fields). */
  width?: number;
  /** Signed fields compare as two's complement: 0xf (not implemented) is below 0. */
  signed?: boolean;
  policy: FieldPolicy;
  /** The lowest value a lower-safe field accepts, when the kernel checks one (DFR0.DebugVer). */
  min?: number;
}

export interface SysregDesc {
  name: string;
  op0: number;
  op1: number;
  crn: number;
  crm: number;
  op2: number;
  kind: SysregKind;
  reset: bigint;
  /** Writable fields of an ID register; an ID register without any is fixed at its value. */
  fields?: readonly IdField[];
}

const r = (
  name: string,
  [op0, op1, crn, crm, op2]: [number, number, number, number, number],
  kind: SysregKind,
  reset: bigint,
  fields?: readonly IdField[],
): SysregDesc => ({ name, op0, op1, crn, crm, op2, kind, reset, ...(fields ? { fields } : {}) });

const lower = (name: string, shift: number): IdField => ({ name, shift, policy: 'lower-safe' });
const bit = (name: string, shift: number): IdField => ({ name, shift, width: 1, policy: 'lower-safe' });

/**
 * What KVM writes into registers whose architectural reset value is UNKNOWN (reset_unknown in
 * arch/arm64/kvm/sys_regs.h): a fixed poison pattern, so stale state is easy to spot (seen on real 6.12).
 */
export const UNKNOWN_RESET = 0x1de7_ec7e_dbad_c0den;

export const SYSREGS: readonly SysregDesc[] = [
  r('MIDR_EL1', [3, 0, 0, 0, 0], 'id', 0x414fd0c1n),
  r('MPIDR_EL1', [3, 0, 0, 0, 5], 'state', 0x80000000n),
  r('REVIDR_EL1', [3, 0, 0, 0, 6], 'id', 0n),
  // AArch64 only at every EL, Secure EL2, DIT, CSV2 and CSV3. RME is in 6.12's mask but not in the feature
  // table, so it must keep its value: modelled as lower-safe at 0, which accepts only 0.
  r('ID_AA64PFR0_EL1', [3, 0, 0, 4, 0], 'id', 0x1101_0010_1111_1111n, [
    lower('EL0', 0),
    lower('EL1', 4),
    lower('EL2', 8),
    lower('EL3', 12),
    lower('GIC', 24),
    lower('SEL2', 36),
    lower('DIT', 48),
    lower('RME', 52),
    lower('CSV2', 56),
    lower('CSV3', 60),
  ]),
  // BTI, SSBS 2 (with the MSR/MRS interface), CSV2_frac 1; no MTE or SME.
  r('ID_AA64PFR1_EL1', [3, 0, 0, 4, 1], 'id', 0x1_0000_0021n, [
    lower('BT', 0),
    lower('SSBS', 4),
    lower('CSV2_frac', 32),
  ]),
  r('ID_AA64PFR2_EL1', [3, 0, 0, 4, 2], 'id', 0n, [lower('FPMR', 32)]),
  // No SVE: KVM shows a vCPU without SVE a zero ZFR0, and every field at 0 accepts only 0.
  r('ID_AA64ZFR0_EL1', [3, 0, 0, 4, 4], 'id', 0n, [
    lower('SVEver', 0),
    lower('AES', 4),
    lower('BitPerm', 16),
    lower('BF16', 20),
    lower('B16B16', 24),
    lower('SHA3', 32),
    lower('SM4', 40),
    lower('I8MM', 44),
    lower('F32MM', 52),
    lower('F64MM', 56),
  ]),
  // No FP8 (nor FPMR above): six 1-bit fields, all 0.
  r('ID_AA64FPFR0_EL1', [3, 0, 0, 4, 7], 'id', 0n, [
    bit('F8E5M2', 0),
    bit('F8E4M3', 1),
    bit('F8DP2', 28),
    bit('F8DP4', 29),
    bit('F8FMA', 30),
    bit('F8CVT', 31),
  ]),
  // No PMU (PMUVer 0), Armv8.2 debug. KVM treats DebugVer and PMUVer as lower-safe (the host tables say
  // exact), with 6 (Armv8.0 debug) as DebugVer's floor; DoubleLock is signed (0 implemented, 0xf not).
  r('ID_AA64DFR0_EL1', [3, 0, 0, 5, 0], 'id', 0x0000_0000_1030_5008n, [
    { name: 'DebugVer', shift: 0, policy: 'lower-safe', min: 6 },
    lower('PMUVer', 8),
    lower('WRPs', 20),
    { name: 'DoubleLock', shift: 36, policy: 'lower-safe', signed: true },
  ]),
  r('ID_AA64DFR1_EL1', [3, 0, 0, 5, 1], 'id', 0n),
  // Every field 1 or 2, so that each has both a lower (safe) and a higher (unsafe) neighbour.
  r('ID_AA64ISAR0_EL1', [3, 0, 0, 6, 0], 'id', 0x1221_1111_1021_2120n, [
    lower('AES', 4),
    lower('SHA1', 8),
    lower('SHA2', 12),
    lower('CRC32', 16),
    lower('ATOMIC', 20),
    lower('TME', 24),
    lower('RDM', 28),
    lower('SHA3', 32),
    lower('SM3', 36),
    lower('SM4', 40),
    lower('DP', 44),
    lower('FHM', 48),
    lower('TS', 52),
    lower('TLB', 56),
    lower('RNDR', 60),
  ]),
  // Pointer authentication (APA, API, GPA, GPI) is absent and fixed.
  r('ID_AA64ISAR1_EL1', [3, 0, 0, 6, 1], 'id', 0x0011_1111_0021_1002n, [
    lower('DPB', 0),
    lower('JSCVT', 12),
    lower('FCMA', 16),
    lower('LRCPC', 20),
    lower('FRINTTS', 32),
    lower('SB', 36),
    lower('SPECRES', 40),
    lower('BF16', 44),
    lower('DGH', 48),
    lower('I8MM', 52),
    lower('XS', 56),
    lower('LS64', 60),
  ]),
  // GPA3 and APA3 (pointer authentication) are fixed. Fields 6.12 reports writable but keeps at the host's
  // value (MOPS, BC, ... are 0 here) are modelled as lower-safe at 0, which accepts only 0: a real 6.12
  // refused BC 0 -> 1 even though newer feature tables call BC higher-safe.
  r('ID_AA64ISAR2_EL1', [3, 0, 0, 6, 2], 'id', 0x0011_0000_0000_0012n, [
    lower('WFxT', 0),
    lower('RPRES', 4),
    lower('MOPS', 16),
    lower('BC', 20),
    lower('PAC_frac', 24),
    lower('CLRBHB', 28),
    lower('SYSREG_128', 32),
    lower('SYSINSTR_128', 36),
    lower('PRFMSLC', 40),
    lower('RPRFM', 48),
    lower('CSSC', 52),
    lower('LUT', 56),
    lower('ATS1A', 60),
  ]),
  // ASIDBits and the stage-2 granule fields (TGRAN*_2, exact) exist but are not writable, as on 6.12.
  // TGRAN4 and TGRAN64 are signed: 0 means supported, 0xf (-1) not implemented.
  r('ID_AA64MMFR0_EL1', [3, 0, 0, 7, 0], 'id', 0x1100_1222_0011_1125n, [
    lower('PARANGE', 0),
    lower('BIGEND', 8),
    lower('SNSMEM', 12),
    lower('BIGENDEL0', 16),
    lower('TGRAN16', 20),
    { name: 'TGRAN64', shift: 24, policy: 'lower-safe', signed: true },
    { name: 'TGRAN4', shift: 28, policy: 'lower-safe', signed: true },
    lower('EXS', 44),
    lower('FGT', 56),
    lower('ECV', 60),
  ]),
  // VMIDBits, VH, XNX and TWED exist but are not writable, as on 6.12.
  r('ID_AA64MMFR1_EL1', [3, 0, 0, 7, 1], 'id', 0x0010_1011_1131_2122n, [
    lower('HAFDBS', 0),
    lower('HPDS', 12),
    lower('LO', 16),
    lower('PAN', 20),
    { name: 'SpecSEI', shift: 24, policy: 'higher-safe' },
    lower('ETS', 36),
    lower('AFP', 44),
    lower('nTLBPA', 48),
    lower('TIDCP1', 52),
    lower('CMOW', 56),
    lower('ECBHB', 60),
  ]),
  // CCIDX, NV, IDS, FWB and EVT exist but are not writable, as on 6.12.
  r('ID_AA64MMFR2_EL1', [3, 0, 0, 7, 2], 'id', 0x1221_0111_1111_1111n, [
    lower('CnP', 0),
    lower('UAO', 4),
    lower('LSM', 8),
    lower('IESB', 12),
    lower('VARange', 16),
    lower('ST', 28),
    lower('AT', 32),
    lower('TTL', 48),
    lower('BBM', 52),
    lower('E0PD', 60),
  ]),
  r('ID_AA64MMFR3_EL1', [3, 0, 0, 7, 3], 'id', 0x1_0101n, [
    lower('TCRX', 0),
    lower('S1PIE', 8),
    lower('S1POE', 16),
  ]),
  r('SCTLR_EL1', [3, 0, 1, 0, 0], 'state', 0x30c50838n),
  r('CPACR_EL1', [3, 0, 1, 0, 2], 'state', 0n),
  r('TTBR0_EL1', [3, 0, 2, 0, 0], 'state', UNKNOWN_RESET),
  r('TTBR1_EL1', [3, 0, 2, 0, 1], 'state', UNKNOWN_RESET),
  r('TCR_EL1', [3, 0, 2, 0, 2], 'state', 0n),
  r('AFSR0_EL1', [3, 0, 5, 1, 0], 'state', UNKNOWN_RESET),
  r('AFSR1_EL1', [3, 0, 5, 1, 1], 'state', UNKNOWN_RESET),
  r('ESR_EL1', [3, 0, 5, 2, 0], 'state', UNKNOWN_RESET),
  r('FAR_EL1', [3, 0, 6, 0, 0], 'state', UNKNOWN_RESET),
  r('PAR_EL1', [3, 0, 7, 4, 0], 'state', UNKNOWN_RESET),
  r('MAIR_EL1', [3, 0, 10, 2, 0], 'state', UNKNOWN_RESET),
  r('AMAIR_EL1', [3, 0, 10, 3, 0], 'state', 0n),
  r('VBAR_EL1', [3, 0, 12, 0, 0], 'state', 0n),
  r('CONTEXTIDR_EL1', [3, 0, 13, 0, 1], 'state', 0n),
  r('TPIDR_EL1', [3, 0, 13, 0, 4], 'state', UNKNOWN_RESET),
  r('CNTKCTL_EL1', [3, 0, 14, 1, 0], 'state', 0n),
  // Writable since 6.7 by its own setter, which refuses only reserved bits (and an IDC-implying value on a
  // host without CTR_EL0.IDC, which the model's CTR_EL0 has). Real KVM keeps it per vCPU and writable after
  // KVM_RUN; the model keeps it with the VM-wide ID registers (docs/arm64.md).
  r('CLIDR_EL1', [3, 1, 0, 0, 1], 'id', 0x0a20_0023n, [
    { name: 'cache hierarchy', shift: 0, width: 47, policy: 'any' },
  ]),
  r('CSSELR_EL1', [3, 2, 0, 0, 0], 'state', UNKNOWN_RESET),
  // The cache-line sizes and the two coherency bits may be lowered (writable since 6.10).
  r('CTR_EL0', [3, 3, 0, 0, 1], 'id', 0xb444_c004n, [
    lower('IminLine', 0),
    lower('DminLine', 16),
    { name: 'IDC', shift: 28, width: 1, policy: 'lower-safe' },
    { name: 'DIC', shift: 29, width: 1, policy: 'lower-safe' },
  ]),
  r('TPIDR_EL0', [3, 3, 13, 0, 2], 'state', UNKNOWN_RESET),
  r('TPIDRRO_EL0', [3, 3, 13, 0, 3], 'state', UNKNOWN_RESET),
  // The ABI's timer ids swap the CNT and CVAL encodings (documented quirk in api.rst); the catalog uses the ids.
  r('KVM_REG_ARM_TIMER_CTL', [3, 3, 14, 3, 1], 'timer', 0n),
  r('KVM_REG_ARM_TIMER_CNT', [3, 3, 14, 3, 2], 'timer', 0n),
  r('KVM_REG_ARM_TIMER_CVAL', [3, 3, 14, 0, 2], 'timer', 0n),
];

export const SYSREG_BASE = 0x6030_0000_0013_0000n;

export function sysregId(d: Pick<SysregDesc, 'op0' | 'op1' | 'crn' | 'crm' | 'op2'>): bigint {
  return SYSREG_BASE | BigInt((d.op0 << 14) | (d.op1 << 11) | (d.crn << 7) | (d.crm << 3) | d.op2);
}
