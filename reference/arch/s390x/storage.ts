import type { VmFile } from '../../kernel.ts';

export const PAGE_SIZE = 4096n;
const PAGE_BYTES = 4096;

/**
 * A frame or page number as a plain number: a 64-bit address has a 52-bit page number, exact in a double,
 * so the page-by-page loops of a guest access run on numbers rather than on BigInts.
 */
export const pageOf = (addr: bigint): number => Number(addr >> 12n);

/** The address of byte `start` of page `page`. */
export const addressOf = (page: number, start = 0): bigint => (BigInt(page) << 12n) | BigInt(start);

/**
 * One page's part of an access: the page, where in it the part starts, its length, its offset in the
 * access, and the absolute frame behind the page (the page itself until a logical access translates it).
 */
export interface PageSpan {
  page: number;
  start: number;
  len: number;
  offset: number;
  frame: number;
}

/**
 * Splits [addr, addr+size) into per-page spans. Page numbers wrap at `spacePages` (the addressing mode's
 * size in pages, for logical addresses); absolute addresses do not wrap.
 */
export function pageSpans(addr: bigint, size: number, spacePages = Infinity): PageSpan[] {
  const spans: PageSpan[] = [];
  let page = pageOf(addr);
  let start = Number(addr & 0xfffn);
  for (let offset = 0; offset < size;) {
    const len = Math.min(PAGE_BYTES - start, size - offset);
    spans.push({ page, start, len, offset, frame: page });
    offset += len;
    start = 0;
    page = (page + 1) % spacePages;
  }
  return spans;
}

/**
 * Guest absolute storage as KVM reaches it: the VM's memslots, page by page, and one storage key per
 * 4 KiB frame (ACC in the high nibble, then F, R, C; a frame whose key was never set has key 0).
 */
export class GuestStorage {
  /** Storage keys by frame number. */
  readonly keys = new Map<number, number>();

  constructor(private readonly vm: VmFile) {}

  backed(gpa: bigint): boolean {
    return this.vm.memslotAt(gpa) !== undefined;
  }

  frameBacked(frame: number): boolean {
    return this.vm.memslotAtFrame(frame) !== undefined;
  }

  /** The bytes of [gpa, gpa+len) inside one page, or undefined where no memslot backs them. */
  bytes(gpa: bigint, len: number): Uint8Array | undefined {
    return this.vm.guestView(gpa, len);
  }

  /** The bytes of a span of one frame, or undefined where no memslot backs them. */
  frameBytes(frame: number, start: number, len: number): Uint8Array | undefined {
    return this.vm.guestView(addressOf(frame, start), len);
  }

  key(gpa: bigint): number {
    return this.frameKey(pageOf(gpa));
  }

  frameKey(frame: number): number {
    return this.keys.get(frame) ?? 0;
  }

  /** A big-endian doubleword or word of a DAT or access-list table; undefined outside guest memory. */
  readTable(gpa: bigint, size: 4 | 8): bigint | undefined {
    const view = this.bytes(gpa, size);
    if (!view) return undefined;
    const data = new DataView(view.buffer, view.byteOffset, size);
    return size === 8 ? data.getBigUint64(0) : BigInt(data.getUint32(0));
  }
}
