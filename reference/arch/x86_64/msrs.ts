/**
 * The MSRs of the reference's x86 model host: what KVM_GET_MSR_INDEX_LIST reports and how the
 * host-initiated MSR path (arch/x86/kvm/x86.c __kvm_set_msr / kvm_set_msr_common, the path KVM_SET_MSRS
 * and ONE_REG share) treats writes. Real hosts report other lists; the suite reads whatever list the
 * backend reports.
 */
export interface MsrDesc {
  index: number;
  reset: bigint;
  /** What a host-initiated write of `value` stores, or undefined when the write is refused. */
  store(value: bigint, current: bigint): bigint | undefined;
}

const any = (value: bigint) => value;
/** The model host has 48-bit virtual addresses (no LA57): bits 63..47 must all equal bit 47. */
const VA_BITS = 48n;
export function signExtend(value: bigint): bigint {
  const shift = 64n - VA_BITS;
  return BigInt.asUintN(64, BigInt.asIntN(64, value << shift) >> shift);
}
/** Address MSRs (LSTAR, CSTAR, FS/GS bases) refuse a non-canonical value. */
const canonical = (value: bigint) => (signExtend(value) === value ? value : undefined);
/** SYSENTER_ESP/EIP take any value and store it made canonical (a write on AMD may be non-canonical). */
const canonicalized = (value: bigint) => signExtend(value);
/** EFER bits KVM lets a guest own on the model host: SCE, LME, LMA, NXE. */
const EFER_VALID = 0x1n | 0x100n | 0x400n | 0x800n;
const EFER_LMA = 0x400n;
export const MSR_EFER = 0xc0000080;
/** A host-initiated EFER write cannot change LMA: KVM keeps the vCPU's own (set_efer). */
const efer = (value: bigint, current: bigint) =>
  (value & ~EFER_VALID) === 0n ? (value & ~EFER_LMA) | (current & EFER_LMA) : undefined;
/** PAT: eight memory types, each UC, WC, WT, WP, WB or UC- (kvm_pat_valid). */
function pat(value: bigint): bigint | undefined {
  for (let i = 0n; i < 8n; i++) {
    const type = (value >> (i * 8n)) & 0xffn;
    if (![0n, 1n, 4n, 5n, 6n, 7n].includes(type)) return undefined;
  }
  return value;
}

export const MSRS: readonly MsrDesc[] = [
  { index: 0x10, reset: 0n, store: any }, // IA32_TSC
  { index: 0x3b, reset: 0n, store: any }, // IA32_TSC_ADJUST
  { index: 0x174, reset: 0n, store: any }, // IA32_SYSENTER_CS
  { index: 0x175, reset: 0n, store: canonicalized }, // IA32_SYSENTER_ESP
  { index: 0x176, reset: 0n, store: canonicalized }, // IA32_SYSENTER_EIP
  { index: 0x277, reset: 0x0007_0406_0007_0406n, store: pat }, // IA32_PAT
  { index: MSR_EFER, reset: 0n, store: efer }, // EFER
  { index: 0xc0000081, reset: 0n, store: any }, // STAR
  { index: 0xc0000082, reset: 0n, store: canonical }, // LSTAR
  { index: 0xc0000083, reset: 0n, store: canonical }, // CSTAR
  { index: 0xc0000084, reset: 0n, store: any }, // SYSCALL_MASK
  { index: 0xc0000100, reset: 0n, store: canonical }, // FS_BASE
  { index: 0xc0000101, reset: 0n, store: canonical }, // GS_BASE
  { index: 0xc0000102, reset: 0n, store: canonical }, // KERNEL_GS_BASE
  { index: 0x4b564d00, reset: 0n, store: any }, // KVM_WALL_CLOCK_NEW
  { index: 0x4b564d01, reset: 0n, store: any }, // KVM_SYSTEM_TIME_NEW
];
