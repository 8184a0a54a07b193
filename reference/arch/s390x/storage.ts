import type { VmFile } from '../../kernel.ts';

export const PAGE_SIZE = 4096n;

/**
 * Guest absolute storage as KVM reaches it: the VM's memslots, page by page, and one storage key per
 * 4 KiB frame (ACC in the high nibble, then F, R, C; a frame whose key was never set has key 0).
 */
export class GuestStorage {
  readonly keys = new Map<bigint, number>();

  constructor(private readonly vm: VmFile) {}

  backed(gpa: bigint): boolean {
    return this.vm.memslotAt(gpa) !== undefined;
  }

  /** The bytes of [gpa, gpa+len) inside one page, or undefined where no memslot backs them. */
  bytes(gpa: bigint, len: number): Uint8Array | undefined {
    return this.vm.guestView(gpa, len);
  }

  key(gpa: bigint): number {
    return this.keys.get(gpa / PAGE_SIZE) ?? 0;
  }

  /** A big-endian doubleword or word of a DAT or access-list table; undefined outside guest memory. */
  readTable(gpa: bigint, size: 4 | 8): bigint | undefined {
    const view = this.bytes(gpa, size);
    if (!view) return undefined;
    const data = new DataView(view.buffer, view.byteOffset, size);
    return size === 8 ? data.getBigUint64(0) : BigInt(data.getUint32(0));
  }
}

/** Splits [addr, addr+size) into per-page fragments; `next` advances the address (with wrap-around). */
export function* pageFragments(
  addr: bigint,
  size: number,
  next: (addr: bigint, len: number) => bigint = (a, len) => a + BigInt(len),
): Generator<{ addr: bigint; len: number; offset: number }> {
  let offset = 0;
  while (offset < size) {
    const len = Math.min(Number(PAGE_SIZE - (addr % PAGE_SIZE)), size - offset);
    yield { addr, len, offset };
    offset += len;
    addr = next(addr, len);
  }
}
