import { PGM } from './pgm.ts';
import type { GuestStorage } from './storage.ts';
import type { AccessMode } from './pgm.ts';

/** ASCE bits: table origin, private space, real space, designation type, table length. */
const ORIGIN = ~0xfffn & 0xffff_ffff_ffff_ffffn;
export const ASCE_PRIVATE = 0x100n;
const ASCE_REAL = 0x20n;
const DT = (v: bigint) => Number((v >> 2n) & 3n);
const TL = (v: bigint) => Number(v & 3n);
/** Region and segment table entry bits. */
const ENTRY_INVALID = 0x20n;
const REGION_TF = (v: bigint) => Number((v >> 6n) & 3n);
const SEGMENT_PROTECT = 0x200n;
const SEGMENT_COMMON = 0x10n;
const PAGE_TABLE_ORIGIN = ~0x7ffn & 0xffff_ffff_ffff_ffffn;
/** Page table entry bits. */
const PTE_ZERO = 0x800n;
const PTE_INVALID = 0x400n;
const PTE_PROTECT = 0x200n;

/** Table levels from region-first (type 3) down to segment (type 0): index shift and exception code. */
const LEVELS = [
  { shift: 53n, code: PGM.REGION_FIRST_TRANS },
  { shift: 42n, code: PGM.REGION_SECOND_TRANS },
  { shift: 31n, code: PGM.REGION_THIRD_TRANS },
  { shift: 20n, code: PGM.SEGMENT_TRANSLATION },
] as const;

export type Translation = { gpa: bigint } | { code: number; dat?: boolean };

const index = (gva: bigint, level: number) => Number((gva >> LEVELS[level]!.shift) & 0x7ffn);

/**
 * The part of a walk fixed by the segment: its page table (undefined outside guest memory; the 2 KiB
 * table is 2 KiB-aligned, so it never straddles a page and is backed whole or not at all) and whether
 * the segment is protected.
 */
type SegmentWalk = { pageTable: DataView | undefined; protect: boolean } | { code: number };
const PAGE_TABLE_BYTES = 256 * 8;

/** From the ASCE's designation type down to the segment-table entry, with each way that can fail. */
function walkToSegment(storage: GuestStorage, asce: bigint, gva: bigint): SegmentWalk {
  let level = 3 - DT(asce);
  // Index bits above the designated table must be zero.
  for (let upper = 0; upper < level; upper++) if (index(gva, upper) !== 0) return { code: PGM.ASCE_TYPE };
  if (index(gva, level) >> 9 > TL(asce)) return { code: LEVELS[level]!.code };
  let ptr = (asce & ORIGIN) + BigInt(index(gva, level)) * 8n;
  for (; level < 3; level++) {
    const entry = storage.readTable(ptr, 8);
    if (entry === undefined) return { code: PGM.ADDRESSING };
    if ((entry & ENTRY_INVALID) !== 0n) return { code: LEVELS[level]!.code };
    if (DT(entry) !== 3 - level) return { code: PGM.TRANSLATION_SPEC };
    const next = index(gva, level + 1);
    if (next >> 9 < REGION_TF(entry) || next >> 9 > TL(entry)) return { code: LEVELS[level + 1]!.code };
    ptr = (entry & ORIGIN) + BigInt(next) * 8n;
  }
  const ste = storage.readTable(ptr, 8);
  if (ste === undefined) return { code: PGM.ADDRESSING };
  if ((ste & ENTRY_INVALID) !== 0n) return { code: PGM.SEGMENT_TRANSLATION };
  if (DT(ste) !== 0) return { code: PGM.TRANSLATION_SPEC };
  if ((ste & SEGMENT_COMMON) !== 0n && (asce & ASCE_PRIVATE) !== 0n) return { code: PGM.TRANSLATION_SPEC };
  const table = storage.bytes(ste & PAGE_TABLE_ORIGIN, PAGE_TABLE_BYTES);
  return {
    pageTable: table && new DataView(table.buffer, table.byteOffset, PAGE_TABLE_BYTES),
    protect: (ste & SEGMENT_PROTECT) !== 0n,
  };
}

/**
 * Dynamic address translation of logical addresses through an ASCE (arch/s390/kvm/gaccess.c, without
 * EDAT large pages), with the architecture's exception for each way a walk can fail. Tables live in
 * guest memory; a table outside it is an addressing exception. Upstream walks every page from the top;
 * pages of one segment share everything above the page table, so one access reuses that part of the
 * walk (no table changes while an access translates).
 * Whether the frame itself is backed is the caller's check.
 */
export function translator(
  storage: GuestStorage,
  asce: bigint,
  mode: AccessMode,
): (gva: bigint) => Translation {
  if ((asce & ASCE_REAL) !== 0n) return (gva) => ({ gpa: gva });
  let last: { segment: bigint; walk: SegmentWalk } | undefined;
  return (gva) => {
    if (last?.segment !== gva >> 20n) last = { segment: gva >> 20n, walk: walkToSegment(storage, asce, gva) };
    const { walk } = last;
    if ('code' in walk) return { code: walk.code };
    if (!walk.pageTable) return { code: PGM.ADDRESSING };
    const pte = walk.pageTable.getBigUint64(Number((gva >> 12n) & 0xffn) * 8);
    if ((pte & PTE_INVALID) !== 0n) return { code: PGM.PAGE_TRANSLATION };
    if ((pte & PTE_ZERO) !== 0n) return { code: PGM.TRANSLATION_SPEC };
    const gpa = (pte & ORIGIN) | (gva & 0xfffn);
    if (mode === 'store' && (walk.protect || (pte & PTE_PROTECT) !== 0n))
      return { code: PGM.PROTECTION, dat: true };
    return { gpa };
  };
}
