import { arTranslation } from './access-registers.ts';
import {
  AS_ACCESS_REGISTER,
  CR0_FETCH_PROTECTION_OVERRIDE,
  CR0_LOW_ADDRESS_PROTECTION,
  CR0_STORAGE_PROTECTION_OVERRIDE,
  type S390Cpu,
} from './cpu.ts';
import { ASCE_PRIVATE, translator } from './dat.ts';
import { keyPermits } from './keys.ts';
import { PGM, programException, type AccessMode, type Pgm, type ProtectionType } from './pgm.ts';
import { addressOf, pageSpans, type GuestStorage, type PageSpan } from './storage.ts';

export interface LogicalAccess {
  gaddr: bigint;
  size: number;
  ar: number;
  mode: AccessMode;
  /** The access key (0 when the memop has no F_SKEY_PROTECTION). */
  key: number;
}

/** Low addresses 0..511 and 4096..4607, the ones low-address protection covers. */
const isLowAddress = (span: PageSpan) => span.page <= 1 && span.start < 512;
/** Fetch-protection override covers fetches entirely within effective addresses 0..2047. */
const inFetchOverrideRange = (span: PageSpan) => span.page === 0 && span.start + span.len <= 2048;

/**
 * A vCPU logical access (arch/s390/kvm/gaccess.c): the address space from the PSW (access registers in AR
 * mode), then every page checked — low-address protection, DAT, backing — before a byte moves; the key
 * check happens page by page during the copy, so a store can fail after changing earlier pages.
 */
export class LogicalView {
  constructor(
    private readonly cpu: S390Cpu,
    private readonly storage: GuestStorage,
  ) {}

  private site(acc: LogicalAccess, at: PageSpan | bigint, prot?: ProtectionType, terminated = false) {
    const gva = typeof at === 'bigint' ? at : addressOf(at.page, at.start);
    return { gva, ar: acc.ar, mode: acc.mode, as: this.cpu.addressSpace, prot, terminated };
  }

  private asce(acc: LogicalAccess): { asce: bigint } | Pgm {
    const { cpu } = this;
    if (!cpu.dat) return { asce: 0n };
    if (cpu.addressSpace !== AS_ACCESS_REGISTER) return { asce: cpu.asceOf(cpu.addressSpace) };
    const r = arTranslation(cpu, this.storage, acc.ar, acc.mode);
    return 'asce' in r ? r : programException(r.code, this.site(acc, acc.gaddr, 'access-list'));
  }

  /** The key check of one access: the CR0 overrides are fixed for it, only the fetch range varies by page. */
  private keyCheck(acc: LogicalAccess, asce: bigint): (span: PageSpan) => boolean {
    const { cpu, storage } = this;
    const privateSpace = cpu.dat && (asce & ASCE_PRIVATE) !== 0n;
    // keyPermits consults the fetch override for fetches only.
    const fetchOverride = cpu.cr0(CR0_FETCH_PROTECTION_OVERRIDE) && !privateSpace;
    const storageOverride = cpu.cr0(CR0_STORAGE_PROTECTION_OVERRIDE);
    const withFetchOverride = { fetch: true, storage: storageOverride };
    const withoutFetchOverride = { fetch: false, storage: storageOverride };
    return (span) =>
      keyPermits(
        storage.frameKey(span.frame),
        acc.key,
        acc.mode,
        fetchOverride && inFetchOverrideRange(span) ? withFetchOverride : withoutFetchOverride,
      );
  }

  /** Translates and checks every page; with `checkKey` (CHECK_ONLY) also the key of each page. */
  private pages(
    acc: LogicalAccess,
    checkKey: boolean,
  ): { permits: (span: PageSpan) => boolean; spans: PageSpan[] } | Pgm {
    const { cpu, storage } = this;
    const space = this.asce(acc);
    if ('code' in space) return space;
    const lap = cpu.cr0(CR0_LOW_ADDRESS_PROTECTION) && !(cpu.dat && (space.asce & ASCE_PRIVATE) !== 0n);
    const translate = cpu.dat ? translator(storage, space.asce, acc.mode, cpu.edat) : undefined;
    const permits = this.keyCheck(acc, space.asce);
    const spans = pageSpans(cpu.effective(acc.gaddr), acc.size, cpu.addressPages);
    for (const span of spans) {
      if (acc.mode === 'store' && lap && isLowAddress(span))
        return programException(PGM.PROTECTION, this.site(acc, span, 'low-address'));
      // DAT (or its absence) gives a real page, which prefixing makes absolute, or under EDAT an absolute
      // large frame; keys and backing are the absolute frame's.
      const t = translate ? translate(span.page) : { real: span.page };
      if ('code' in t) return programException(t.code, this.site(acc, span, t.dat ? 'dat' : undefined));
      span.frame = 'absolute' in t ? t.absolute : cpu.absolutePage(t.real);
      if (!storage.frameBacked(span.frame)) return programException(PGM.ADDRESSING, this.site(acc, span));
      if (checkKey && !permits(span)) return programException(PGM.PROTECTION, this.site(acc, span, 'key'));
    }
    return { permits, spans };
  }

  /** CHECK_ONLY: the program interruption the access would raise, or undefined. */
  check(acc: LogicalAccess): Pgm | undefined {
    const r = this.pages(acc, true);
    return 'code' in r ? r : undefined;
  }

  /**
   * A fetch changes nothing, so every page's key can be checked before a byte moves; the data is then a
   * view of guest memory when the pages are contiguous there, else a copy gathered page by page.
   */
  read(acc: LogicalAccess): { data: Uint8Array } | Pgm {
    const r = this.pages(acc, false);
    if ('code' in r) return r;
    const denied = r.spans.find((span) => !r.permits(span));
    if (denied) return programException(PGM.PROTECTION, this.site(acc, denied, 'key'));
    const first = r.spans[0]!;
    const contiguous = r.spans.every((span, i) => span.frame === first.frame + i);
    const whole = contiguous ? this.storage.frameBytes(first.frame, first.start, acc.size) : undefined;
    if (whole) return { data: whole };
    const data = new Uint8Array(acc.size);
    for (const span of r.spans)
      data.set(this.storage.frameBytes(span.frame, span.start, span.len)!, span.offset);
    return { data };
  }

  /** A store checks each page's key as it goes: a refusal after the first page leaves earlier pages changed. */
  write(acc: LogicalAccess, data: Uint8Array): Pgm | undefined {
    const r = this.pages(acc, false);
    if ('code' in r) return r;
    for (const [i, span] of r.spans.entries()) {
      if (!r.permits(span)) return programException(PGM.PROTECTION, this.site(acc, span, 'key', i > 0));
      this.storage
        .frameBytes(span.frame, span.start, span.len)!
        .set(data.subarray(span.offset, span.offset + span.len));
    }
    return undefined;
  }
}
