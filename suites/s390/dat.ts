import type { CaseContext } from '../../harness/plan/types.ts';
import { DIAG_501, enterPsw, s390, setRegs, type Guest } from './guest.ts';

/** Entry bits the tables the suite builds use (z/Architecture format-0 entries, no EDAT). */
export const INVALID = 0x20n;
export const PTE_INVALID = 0x400n;
export const PTE_PROTECT = 0x200n;
export const PTE_BIT52 = 0x800n;
export const SEGMENT_PROTECT = 0x200n;
export const TT_REGION_THIRD = 0x04n;
/** Where the DIAGNOSE 0x501 lives, identity-mapped in every space. */
export const CODE = 0x1000n;

/** One address space: a segment table (2048 entries) and the page table of segment 0. */
export interface Space {
  st: number;
  pt: number;
  /** Page-table entries by logical page address (segment 0), beside the code page. */
  pages?: Record<number, bigint>;
  /** Segment-table entries to override, by segment index. */
  segments?: Record<number, bigint>;
  /** ASCE table length (0..3); 3 covers all 2048 segments. */
  tl?: number;
}

function entries(count: number, fill: bigint, set: Record<number, bigint>): Uint8Array {
  const bytes = new Uint8Array(count * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < count; i++) view.setBigUint64(i * 8, set[i] ?? fill);
  return bytes;
}

/** Writes a space's tables into guest RAM and returns its segment-table ASCE. */
export async function buildSpace(ctx: CaseContext, g: Guest, s: Space): Promise<bigint> {
  const pages: Record<number, bigint> = { [Number(CODE >> 12n)]: CODE };
  for (const [addr, pte] of Object.entries(s.pages ?? {})) pages[Number(addr) >> 12] = pte;
  await ctx.kvm.write(g.ram, entries(256, PTE_INVALID, pages), s.pt);
  await ctx.kvm.write(g.ram, entries(2048, INVALID, { 0: BigInt(s.pt), ...s.segments }), s.st);
  return BigInt(s.st) | BigInt(s.tl ?? 3);
}

/** A region-third table whose entry 0 designates the segment table of `asce` (and the rest invalid, unless `set`). */
export async function regionThird(
  ctx: CaseContext,
  g: Guest,
  rtt: number,
  segmentAsce: bigint,
  tl = 3,
  /** Entries to set beside or instead of entry 0, given the segment table's origin. */
  set: (origin: bigint) => Record<number, bigint> = () => ({}),
): Promise<bigint> {
  const origin = segmentAsce & ~0xfffn;
  await ctx.kvm.write(
    g.ram,
    entries(2048, INVALID | TT_REGION_THIRD, { 0: origin | TT_REGION_THIRD | 3n, ...set(origin) }),
    rtt,
  );
  return BigInt(rtt) | (1n << 2n) | BigInt(tl);
}

/** Table type of a region-second table's entries (bits 60-61 = 2), and an ASCE designating such a table. */
const TT_REGION_SECOND = 0x08n;

/**
 * A region-second table whose entry 0 designates the region-third table of `regionThirdAsce`, with `bits`
 * or-ed into that entry (bits a region-second entry does not define, for instance); returns its ASCE.
 */
export async function regionSecond(
  ctx: CaseContext,
  g: Guest,
  rst: number,
  regionThirdAsce: bigint,
  bits = 0n,
): Promise<bigint> {
  const origin = regionThirdAsce & ~0xfffn;
  const entry0 = origin | TT_REGION_SECOND | 3n | bits;
  await ctx.kvm.write(g.ram, entries(2048, INVALID | TT_REGION_SECOND, { 0: entry0 }), rst);
  return BigInt(rst) | TT_REGION_SECOND | 3n;
}

export type PswSpace = 'primary' | 'access-register' | 'secondary' | 'home';
/** The PSW address-space control (bits 16-17) of each space. */
const SPACE_CONTROL: Record<PswSpace, bigint> = {
  primary: 0n,
  'access-register': 1n,
  secondary: 2n,
  home: 3n,
};

/** Loads the control registers, then enters a 64-bit DAT-on PSW in the given space through KVM_RUN. */
export async function enterDat(
  ctx: CaseContext,
  g: Guest,
  crs: Record<number, bigint>,
  space: PswSpace = 'primary',
  acrs: Record<number, number> = {},
): Promise<void> {
  await setRegs(ctx, g, crs, acrs);
  await ctx.kvm.write(g.ram, DIAG_501, Number(CODE));
  const as = s390(ctx, 'S390_PSW_MASK_AS') & (SPACE_CONTROL[space] << 46n);
  const mask =
    s390(ctx, 'S390_PSW_MASK_DAT') | s390(ctx, 'S390_PSW_MASK_EA') | s390(ctx, 'S390_PSW_MASK_BA') | as;
  await enterPsw(ctx, g, mask, CODE);
}
