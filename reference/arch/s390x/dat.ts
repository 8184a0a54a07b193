import { PGM } from './pgm.ts';
import type { GuestStorage } from './storage.ts';
import type { AccessMode } from './pgm.ts';
import type { EdatLevel } from './cpu.ts';

/**
 * Walks run on numbers, not BigInts: an ASCE or table entry is read as its table origin's page number
 * (52 bits, exact in a double) and its low word, which holds every flag; virtual addresses are page
 * numbers (see `pageOf`).
 */
export const ASCE_PRIVATE = 0x100n;
const ASCE_REAL = 0x20n;
const DT = (low: number) => (low >> 2) & 3;
const TL = (low: number) => low & 3;
/** Region and segment table entry bits. */
const ENTRY_INVALID = 0x20;
const REGION_TF = (low: number) => (low >> 6) & 3;
/** DAT protection: a segment entry's always, a region entry's under EDAT-1. */
const ENTRY_PROTECT = 0x200;
/** Format control: under EDAT a segment (EDAT-1) or region-third (EDAT-2) entry maps a large frame itself. */
const FORMAT_CONTROL = 0x400;
/** Common segment; for a region-third entry under EDAT-2, common region. */
const ENTRY_COMMON = 0x10;
/** A page table is 2 KiB-aligned: this origin bit says which half of its page it starts in. */
const PAGE_TABLE_HALF = 0x800;
/** Page table entry bits. */
const PTE_ZERO = 0x800;
const PTE_INVALID = 0x400;
const PTE_PROTECT = 0x200;
const PAGES_PER_SEGMENT = 256;
/** A region-third entry's large frame is 2 GiB. */
const PAGES_PER_REGION_THIRD = 2 ** 19;
const PAGE_BYTES = 4096;

/** Table levels from region-first (type 3) down to segment (type 0): index shift in pages and exception code. */
const LEVELS = [
  { pageShift: 41, code: PGM.REGION_FIRST_TRANS },
  { pageShift: 30, code: PGM.REGION_SECOND_TRANS },
  { pageShift: 19, code: PGM.REGION_THIRD_TRANS },
  { pageShift: 8, code: PGM.SEGMENT_TRANSLATION },
] as const;
/** The level whose entries may map a 2 GiB frame. */
const REGION_THIRD = 2;

/**
 * Where a logical page leads: a real page (through a page table, or a real-space ASCE) that prefixing still
 * applies to, an absolute page (a large frame under EDAT, which upstream's walk does not prefix), or the
 * exception.
 */
export type Translation = { real: number } | { absolute: number } | { code: number; dat?: boolean };

/** The 11-bit table index of a virtual page at a level. */
const index = (page: number, level: number) => Math.floor(page / 2 ** LEVELS[level]!.pageShift) % 2048;

/** An ASCE or a table entry: the page its origin field names, and its low word. */
interface Entry {
  page: number;
  low: number;
}

/** The big-endian word at `at`. */
const word = (b: Uint8Array, at: number) =>
  ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/** A doubleword's origin page and low word. */
const entryOf = (b: Uint8Array, at: number): Entry => {
  const low = word(b, at + 4);
  return { page: word(b, at) * 2 ** 20 + (low >>> 12), low };
};

/** Entry `i` of the table at page `table`; undefined outside guest memory. */
function readEntry(storage: GuestStorage, table: number, i: number): Entry | undefined {
  const at = i * 8;
  const bytes = storage.frameBytes(table + Math.floor(at / PAGE_BYTES), at % PAGE_BYTES, 8);
  return bytes && entryOf(bytes, 0);
}

/**
 * The part of a walk fixed by the segment: its page table, or under EDAT the large frame an entry maps, and
 * whether the entries on the way make it DAT-protected; or the exception. A page table outside guest memory
 * is an addressing exception; the 2 KiB table is 2 KiB-aligned, so it never straddles a page and is backed
 * whole or not at all.
 */
type SegmentWalk =
  | { pageTable: Uint8Array; protect: boolean }
  | { largeFrame: number; pagesInFrame: number; protect: boolean }
  | { code: number };
const PAGE_TABLE_BYTES = PAGES_PER_SEGMENT * 8;

/** A large frame's first page: its entry's origin, aligned down to the frame's size. */
const largeFrame = (entry: Entry, pagesInFrame: number, protect: boolean): SegmentWalk => ({
  largeFrame: Math.floor(entry.page / pagesInFrame) * pagesInFrame,
  pagesInFrame,
  protect,
});

/** From the ASCE's designation type down to the segment-table entry, with each way that can fail. */
function walkToSegment(
  storage: GuestStorage,
  asce: Entry,
  privateSpace: boolean,
  page: number,
  edat: EdatLevel,
): SegmentWalk {
  let level = 3 - DT(asce.low);
  // Index bits above the designated table must be zero.
  for (let upper = 0; upper < level; upper++) if (index(page, upper) !== 0) return { code: PGM.ASCE_TYPE };
  if (index(page, level) >> 9 > TL(asce.low)) return { code: LEVELS[level]!.code };
  let entry = readEntry(storage, asce.page, index(page, level));
  let protect = false;
  for (; level < 3; level++) {
    if (!entry) return { code: PGM.ADDRESSING };
    if ((entry.low & ENTRY_INVALID) !== 0) return { code: LEVELS[level]!.code };
    if (DT(entry.low) !== 3 - level) return { code: PGM.TRANSLATION_SPEC };
    const entryProtects = edat >= 1 && (entry.low & ENTRY_PROTECT) !== 0;
    if (level === REGION_THIRD && edat === 2) {
      if ((entry.low & ENTRY_COMMON) !== 0 && privateSpace) return { code: PGM.TRANSLATION_SPEC };
      if ((entry.low & FORMAT_CONTROL) !== 0)
        return largeFrame(entry, PAGES_PER_REGION_THIRD, protect || entryProtects);
    }
    const next = index(page, level + 1);
    if (next >> 9 < REGION_TF(entry.low) || next >> 9 > TL(entry.low))
      return { code: LEVELS[level + 1]!.code };
    protect ||= entryProtects;
    entry = readEntry(storage, entry.page, next);
  }
  const ste = entry;
  if (!ste) return { code: PGM.ADDRESSING };
  if ((ste.low & ENTRY_INVALID) !== 0) return { code: PGM.SEGMENT_TRANSLATION };
  if (DT(ste.low) !== 0) return { code: PGM.TRANSLATION_SPEC };
  if ((ste.low & ENTRY_COMMON) !== 0 && privateSpace) return { code: PGM.TRANSLATION_SPEC };
  protect ||= (ste.low & ENTRY_PROTECT) !== 0;
  // Without EDAT-1 the format-control bit is ignored: the entry designates a page table all the same.
  if (edat >= 1 && (ste.low & FORMAT_CONTROL) !== 0) return largeFrame(ste, PAGES_PER_SEGMENT, protect);
  const pageTable = storage.frameBytes(ste.page, ste.low & PAGE_TABLE_HALF, PAGE_TABLE_BYTES);
  if (!pageTable) return { code: PGM.ADDRESSING };
  return { pageTable, protect };
}

/**
 * Dynamic address translation of logical pages through an ASCE (arch/s390/kvm/gaccess.c, guest_translate),
 * with enhanced DAT as CR0 and the VM's facilities allow it, and the architecture's exception for each
 * way a walk can fail. Tables live in guest memory; a table outside it is an addressing exception.
 * Upstream walks every page from the top; pages of one segment share everything above the page table, so
 * one access reuses that part of the walk (no table changes while an access translates). Pages and frames
 * are numbers (see `pageOf`). Prefixing a real frame and checking that a frame is backed are the caller's.
 */
export function translator(
  storage: GuestStorage,
  asce: bigint,
  mode: AccessMode,
  edat: EdatLevel,
): (page: number) => Translation {
  if ((asce & ASCE_REAL) !== 0n) return (page) => ({ real: page });
  const designation = { page: Number(asce >> 12n), low: Number(asce & 0xfffn) };
  const privateSpace = (asce & ASCE_PRIVATE) !== 0n;
  let last: { segment: number; walk: SegmentWalk } | undefined;
  return (page) => {
    const segment = Math.floor(page / PAGES_PER_SEGMENT);
    if (last?.segment !== segment)
      last = { segment, walk: walkToSegment(storage, designation, privateSpace, page, edat) };
    const { walk } = last;
    if ('code' in walk) return { code: walk.code };
    if ('largeFrame' in walk) {
      if (mode === 'store' && walk.protect) return { code: PGM.PROTECTION, dat: true };
      return { absolute: walk.largeFrame + (page % walk.pagesInFrame) };
    }
    const pte = entryOf(walk.pageTable, (page % PAGES_PER_SEGMENT) * 8);
    if ((pte.low & PTE_INVALID) !== 0) return { code: PGM.PAGE_TRANSLATION };
    if ((pte.low & PTE_ZERO) !== 0) return { code: PGM.TRANSLATION_SPEC };
    if (mode === 'store' && (walk.protect || (pte.low & PTE_PROTECT) !== 0))
      return { code: PGM.PROTECTION, dat: true };
    return { real: pte.page };
  };
}
