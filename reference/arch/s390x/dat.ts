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
 * Dynamic address translation of one logical address through an ASCE (arch/s390/kvm/gaccess.c, without
 * EDAT large pages): the walk from the ASCE's designation type down to the page table, with the
 * architecture's exception for each way it can fail. Tables live in guest memory; a table outside it is
 * an addressing exception.
 */
export function translate(storage: GuestStorage, asce: bigint, gva: bigint, mode: AccessMode): Translation {
  if ((asce & ASCE_REAL) !== 0n) return { gpa: gva };
  let level = 3 - DT(asce);
  // Index bits above the designated table must be zero.
  for (let upper = 0; upper < level; upper++) if (index(gva, upper) !== 0) return { code: PGM.ASCE_TYPE };
  if (index(gva, level) >> 9 > TL(asce)) return { code: LEVELS[level]!.code };
  let ptr = (asce & ORIGIN) + BigInt(index(gva, level)) * 8n;
  let protect = false;
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
  protect ||= (ste & SEGMENT_PROTECT) !== 0n;
  const pte = storage.readTable((ste & PAGE_TABLE_ORIGIN) + ((gva >> 12n) & 0xffn) * 8n, 8);
  if (pte === undefined) return { code: PGM.ADDRESSING };
  if ((pte & PTE_INVALID) !== 0n) return { code: PGM.PAGE_TRANSLATION };
  if ((pte & PTE_ZERO) !== 0n) return { code: PGM.TRANSLATION_SPEC };
  protect ||= (pte & PTE_PROTECT) !== 0n;
  const gpa = (pte & ORIGIN) | (gva & 0xfffn);
  if (mode === 'store' && protect) return { code: PGM.PROTECTION, dat: true };
  if (!storage.backed(gpa)) return { code: PGM.ADDRESSING };
  return { gpa };
}
