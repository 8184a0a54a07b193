import { fail } from '../../errno.ts';
import type { S390Cpu } from './cpu.ts';
import { PGM, type AccessMode } from './pgm.ts';
import type { GuestStorage } from './storage.ts';

export type ArResult = { asce: bigint } | { code: number };

const ALET_RESERVED = 0xfe00_0000n;
const ALET_PRIMARY_LIST = 0x0100_0000n;
const ALE_INVALID = 0x8000_0000n;
const ALE_FETCH_ONLY = 0x0200_0000n;
const ALE_PRIVATE = 0x0100_0000n;
const ASTE_INVALID = 0x8000_0000n;

/**
 * Reads a word of an access-list structure: those are real addresses, prefixed like any other, that KVM
 * reads directly (EFAULT when unbacked).
 */
function word(cpu: S390Cpu, storage: GuestStorage, real: bigint): bigint {
  return storage.readTable(cpu.absolute(real), 4) ?? fail('EFAULT');
}

/**
 * Access-register translation (arch/s390/kvm/gaccess.c): ALET 0 or access register 0 is the primary space,
 * ALET 1 the secondary; any other ALET is looked up in the dispatchable-unit (CR2) or primary (CR5) access
 * list, through the ALE (below 2 GiB) and ASTE with their sequence numbers, the private-ALE authority check, and
 * access-list-controlled protection for stores through a fetch-only entry.
 */
export function arTranslation(cpu: S390Cpu, storage: GuestStorage, ar: number, mode: AccessMode): ArResult {
  const alet = BigInt(cpu.acrs[ar]!);
  if (ar === 0 || alet === 0n) return { asce: cpu.crs[1]! };
  if (alet === 1n) return { asce: cpu.crs[7]! };
  if ((alet & ALET_RESERVED) !== 0n) return { code: PGM.ALET_SPECIFICATION };
  const aldAddr = ((alet & ALET_PRIMARY_LIST) !== 0n ? cpu.crs[5]! : cpu.crs[2]!) & 0x7fff_ffc0n;
  const ald = word(cpu, storage, aldAddr + 16n);
  const alen = alet & 0xffffn;
  const alesn = (alet >> 16n) & 0xffn;
  if (alen / 8n > (ald & 0x7fn)) return { code: PGM.ALEN_TRANSLATION };
  const listOrigin = ((ald >> 7n) & 0xff_ffffn) * 128n;
  // The ALE's real address must stay within 31 bits.
  if (0x7fff_ffffn - listOrigin < alen * 16n) return { code: PGM.ADDRESSING };
  const ale = listOrigin + alen * 16n;
  const ale0 = word(cpu, storage, ale);
  if ((ale0 & ALE_INVALID) !== 0n) return { code: PGM.ALEN_TRANSLATION };
  if (((ale0 >> 16n) & 0xffn) !== alesn) return { code: PGM.ALE_SEQUENCE };
  const aste = ((word(cpu, storage, ale + 8n) >> 6n) & 0x1ff_ffffn) * 64n;
  const aste0 = word(cpu, storage, aste);
  if ((aste0 & ASTE_INVALID) !== 0n) return { code: PGM.ASTE_VALIDITY };
  if (word(cpu, storage, aste + 20n) !== word(cpu, storage, ale + 12n)) return { code: PGM.ASTE_SEQUENCE };
  if ((ale0 & ALE_PRIVATE) !== 0n) {
    const eax = (cpu.crs[8]! >> 16n) & 0xffffn;
    if ((ale0 & 0xffffn) !== eax) {
      const atl = (word(cpu, storage, aste + 4n) >> 4n) & 0xfffn;
      if (eax / 16n > atl) return { code: PGM.EXTENDED_AUTHORITY };
      const ato = ((aste0 >> 2n) & 0x1fff_ffffn) * 4n;
      const authority = storage.bytes(cpu.absolute(ato + eax / 4n), 1)?.[0] ?? fail('EFAULT');
      if ((authority & (0x40 >> (Number(eax & 3n) * 2))) === 0) return { code: PGM.EXTENDED_AUTHORITY };
    }
  }
  if ((ale0 & ALE_FETCH_ONLY) !== 0n && mode === 'store') return { code: PGM.PROTECTION };
  const asce = storage.readTable(cpu.absolute(aste + 8n), 8) ?? fail('EFAULT');
  return { asce };
}
