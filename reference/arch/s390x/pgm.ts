/**
 * Program-interruption codes a guest access can end with (arch/s390/include/asm/kvm_host.h), and the
 * translation-exception identification (TEID) KVM records with them (arch/s390/kvm/gaccess.c).
 */
export const PGM = {
  PROTECTION: 0x04,
  ADDRESSING: 0x05,
  SEGMENT_TRANSLATION: 0x10,
  PAGE_TRANSLATION: 0x11,
  TRANSLATION_SPEC: 0x12,
  ALET_SPECIFICATION: 0x28,
  ALEN_TRANSLATION: 0x29,
  ALE_SEQUENCE: 0x2a,
  ASTE_VALIDITY: 0x2b,
  ASTE_SEQUENCE: 0x2c,
  EXTENDED_AUTHORITY: 0x2d,
  ASCE_TYPE: 0x38,
  REGION_FIRST_TRANS: 0x39,
  REGION_SECOND_TRANS: 0x3a,
  REGION_THIRD_TRANS: 0x3b,
} as const;

/** Which protection mechanism refused a store or fetch; each sets its own TEID bits. */
export type ProtectionType = 'low-address' | 'key' | 'access-list' | 'dat';

/** A program interruption as KVM queues it: code, TEID and exception access id. */
export interface Pgm {
  code: number;
  teid: bigint;
  excAccessId: number;
}

export type AccessMode = 'fetch' | 'store';

const TEID_B56 = 0x80n;
const TEID_B60 = 0x08n;
const TEID_B61 = 0x04n;
const FSI_STORE = 1n << 10n;
const FSI_FETCH = 2n << 10n;

const PROTECTION_BITS: Record<ProtectionType, bigint> = {
  'low-address': TEID_B56,
  key: TEID_B60,
  'access-list': TEID_B60 | TEID_B61,
  dat: TEID_B61,
};

const WITH_ADDRESS = new Set<number>([
  PGM.PROTECTION,
  PGM.ASCE_TYPE,
  PGM.PAGE_TRANSLATION,
  PGM.REGION_FIRST_TRANS,
  PGM.REGION_SECOND_TRANS,
  PGM.REGION_THIRD_TRANS,
  PGM.SEGMENT_TRANSLATION,
]);

const WITH_ACCESS_ID = new Set<number>([
  ...WITH_ADDRESS,
  PGM.ALEN_TRANSLATION,
  PGM.ALE_SEQUENCE,
  PGM.ASTE_VALIDITY,
  PGM.ASTE_SEQUENCE,
  PGM.EXTENDED_AUTHORITY,
]);

export interface ExceptionSite {
  /** The effective address of the failing page. */
  gva: bigint;
  ar: number;
  mode: AccessMode;
  /** The PSW's address-space control, reported in the TEID's low bits. */
  as: number;
  prot?: ProtectionType;
  /** A store that already changed earlier pages: protection bits cleared ("terminated"). */
  terminated?: boolean;
}

/**
 * Builds the interruption KVM would record: protection codes carry the protection type (or nothing when
 * terminated), protection and translation codes the page address, fetch/store indicator and AS, and
 * those plus the access-list codes the access register number.
 */
export function programException(code: number, site: ExceptionSite): Pgm {
  let teid = 0n;
  if (code === PGM.PROTECTION && site.prot && !site.terminated) teid |= PROTECTION_BITS[site.prot];
  if (WITH_ADDRESS.has(code)) {
    teid |= site.gva & ~0xfffn;
    teid |= site.mode === 'store' ? FSI_STORE : FSI_FETCH;
    teid |= BigInt(site.as);
  }
  return { code, teid, excAccessId: WITH_ACCESS_ID.has(code) ? site.ar : 0 };
}
