import type { Pgm } from './pgm.ts';

/** PSW mask bits (IBM numbering from the left of 64): what a guest access depends on. */
const PSW_DAT = 1n << 58n;
const PSW_EA = 1n << 32n;
const PSW_BA = 1n << 31n;

/** CR0 controls a vCPU's logical accesses honour. */
export const CR0_LOW_ADDRESS_PROTECTION = 1n << 28n;
export const CR0_FETCH_PROTECTION_OVERRIDE = 1n << 25n;
export const CR0_STORAGE_PROTECTION_OVERRIDE = 1n << 24n;
const CR0_EDAT = 1n << 23n;

/**
 * How much of enhanced DAT a translation uses: 0 none, 1 EDAT-1 (facility 8), 2 also EDAT-2 (facility 78).
 * Both facilities are in KVM's base list (arch/s390/tools/gen_facilities.c, FACILITIES_KVM), which every
 * host since zEC12 installs; the model has no CPU-model attributes to take them from a VM, so CR0's EDAT
 * bit alone decides.
 */
export type EdatLevel = 0 | 1 | 2;
const VM_EDAT_LEVEL: EdatLevel = 2;

/** Address-space control values in PSW bits 16-17 (0 is the primary space). */
export const AS_ACCESS_REGISTER = 1;
const AS_SECONDARY = 2;
const AS_HOME = 3;

export const NUM_ACRS = 16;

const PAGE_BYTES = 4096;
const PREFIX_MASK = 0x7fff_e000n;

type AddressBits = 24 | 31 | 64;
const ADDRESS_MASK: Record<AddressBits, bigint> = {
  24: 0xff_ffffn,
  31: 0x7fff_ffffn,
  64: 0xffff_ffff_ffff_ffffn,
};

/**
 * The state of one s390 vCPU that guest accesses read. The PSW is the one in the SIE block: it changes
 * only when KVM_RUN loads kvm_run.psw_mask/psw_addr, never directly from user space.
 */
export class S390Cpu {
  pswMask = 0n;
  pswAddr = 0n;
  readonly crs: bigint[] = new Array<bigint>(16).fill(0n);
  readonly acrs: number[] = new Array<number>(NUM_ACRS).fill(0);
  /** The program interrupt INJECT_EXCEPTION made pending: one slot, a later one replaces it. */
  pendingPgm?: Pgm;
  /** A new vCPU is stopped; KVM_RUN starts it (no user-controlled CPU state). */
  stopped = true;
  /** The secure instruction data area, present while the vCPU is protected. */
  sida?: Uint8Array;
  /** The prefix register: the absolute address of the two pages real addresses 0..8191 reach. */
  private prefixPage = 0;

  get prefix(): number {
    return this.prefixPage * PAGE_BYTES;
  }

  /** Loads the prefix register: KVM keeps bits 0x7fffe000 of the low word it is given (kvm_s390_set_prefix). */
  loadPrefix(value: bigint): void {
    this.prefixPage = Number(value & PREFIX_MASK) / PAGE_BYTES;
  }

  get dat(): boolean {
    return (this.pswMask & PSW_DAT) !== 0n;
  }

  get addressSpace(): number {
    return Number((this.pswMask >> 46n) & 3n);
  }

  /** The addressing mode from the PSW's EA and BA bits. */
  get addressBits(): AddressBits {
    const ea = (this.pswMask & PSW_EA) !== 0n;
    const ba = (this.pswMask & PSW_BA) !== 0n;
    return ea && ba ? 64 : ba ? 31 : 24;
  }

  /** Truncates an address to the addressing mode. */
  effective(addr: bigint): bigint {
    return addr & ADDRESS_MASK[this.addressBits];
  }

  /** The addressing mode's address space in pages: where page numbers wrap. */
  get addressPages(): number {
    return 2 ** (this.addressBits - 12);
  }

  /**
   * Prefixing (kvm_s390_real_to_abs): real pages 0 and 1 and the two pages at the prefix trade places;
   * every other real page is its own absolute page.
   */
  absolutePage(realPage: number): number {
    const prefix = this.prefixPage;
    if (realPage < 2) return realPage + prefix;
    if (realPage - prefix >= 0 && realPage - prefix < 2) return realPage - prefix;
    return realPage;
  }

  /** A real address as the absolute address it reaches. */
  absolute(real: bigint): bigint {
    const page = Number(real >> 12n);
    return (BigInt(this.absolutePage(page)) << 12n) | (real & 0xfffn);
  }

  /** The ASCE of a non-AR address space: CR1 primary, CR7 secondary, CR13 home. */
  asceOf(as: number): bigint {
    return as === AS_SECONDARY ? this.crs[7]! : as === AS_HOME ? this.crs[13]! : this.crs[1]!;
  }

  cr0(bit: bigint): boolean {
    return (this.crs[0]! & bit) !== 0n;
  }

  /** The enhanced DAT a translation uses (guest_translate): the VM's facilities, when CR0 enables them. */
  get edat(): EdatLevel {
    return this.cr0(CR0_EDAT) ? VM_EDAT_LEVEL : 0;
  }
}
