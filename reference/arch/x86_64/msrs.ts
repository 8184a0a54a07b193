/**
 * The MSRs of the reference's x86 model host: what KVM_GET_MSR_INDEX_LIST reports and how the
 * host-initiated MSR path (arch/x86/kvm/x86.c, the path KVM_SET_MSRS and ONE_REG share) treats writes.
 * Real hosts report other lists; the suite reads whatever list the backend reports.
 */
export interface MsrDesc {
  index: number;
  name: string;
  reset: bigint;
  /** Whether a host-initiated write of this value is accepted. */
  accepts(value: bigint): boolean;
}

const any = () => true;
/** 48-bit virtual addresses: bits 63..47 must all equal bit 47. */
function canonical(value: bigint): boolean {
  const top = value >> 47n;
  return top === 0n || top === 0x1_ffffn;
}
/** EFER bits KVM lets a guest own on the model host: SCE, LME, LMA, NXE. */
const EFER_VALID = 0x1n | 0x100n | 0x400n | 0x800n;
/** PAT: eight memory types, each UC, WC, WT, WP, WB or UC-. */
function validPat(value: bigint): boolean {
  for (let i = 0n; i < 8n; i++) {
    const type = (value >> (i * 8n)) & 0xffn;
    if (![0n, 1n, 4n, 5n, 6n, 7n].includes(type)) return false;
  }
  return true;
}

export const MSRS: readonly MsrDesc[] = [
  { index: 0x10, name: 'IA32_TSC', reset: 0n, accepts: any },
  { index: 0x3b, name: 'IA32_TSC_ADJUST', reset: 0n, accepts: any },
  { index: 0x174, name: 'IA32_SYSENTER_CS', reset: 0n, accepts: any },
  { index: 0x175, name: 'IA32_SYSENTER_ESP', reset: 0n, accepts: canonical },
  { index: 0x176, name: 'IA32_SYSENTER_EIP', reset: 0n, accepts: canonical },
  { index: 0x277, name: 'IA32_PAT', reset: 0x0007_0406_0007_0406n, accepts: validPat },
  { index: 0xc0000080, name: 'EFER', reset: 0n, accepts: (v) => (v & ~EFER_VALID) === 0n },
  { index: 0xc0000081, name: 'STAR', reset: 0n, accepts: any },
  { index: 0xc0000082, name: 'LSTAR', reset: 0n, accepts: canonical },
  { index: 0xc0000083, name: 'CSTAR', reset: 0n, accepts: canonical },
  { index: 0xc0000084, name: 'SYSCALL_MASK', reset: 0n, accepts: any },
  { index: 0xc0000100, name: 'FS_BASE', reset: 0n, accepts: canonical },
  { index: 0xc0000101, name: 'GS_BASE', reset: 0n, accepts: canonical },
  { index: 0xc0000102, name: 'KERNEL_GS_BASE', reset: 0n, accepts: canonical },
  { index: 0x4b564d00, name: 'KVM_WALL_CLOCK_NEW', reset: 0n, accepts: any },
  { index: 0x4b564d01, name: 'KVM_SYSTEM_TIME_NEW', reset: 0n, accepts: any },
];
