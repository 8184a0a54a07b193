import { pooledCopy } from '../harness/abi/bytes.ts';
import { fail } from './errno.ts';

export const PAGE_SIZE = 4096;
/** Never mapped: what the adapter hands the kernel for an "invalid" pointer. */
export const INVALID_ADDRESS = 0xdead_0000_0000n;
const MAP_BASE = 0x7f00_0000_0000;

interface Mapping {
  /** Bounds as numbers: mappings live below 2^48, where a double is exact (see `find`). */
  base: number;
  end: number;
  bytes: Uint8Array;
  readonly: boolean;
}

/**
 * The user address space of the process calling the reference: what copy_from_user and copy_to_user
 * see. Buffers, struct images and guest RAM all live here at real-looking addresses, so the kernel model
 * faults exactly where a real kernel would (unmapped → EFAULT, read-only on write → EFAULT).
 */
export class UserMemory {
  /** By base address: a mapping is unmapped by the address map() returned for it. */
  private readonly maps = new Map<number, Mapping>();
  private next = MAP_BASE;

  map(bytes: Uint8Array, options: { alignment?: number; readonly?: boolean } = {}): bigint {
    const align = Math.max(options.alignment ?? PAGE_SIZE, PAGE_SIZE);
    const base = Math.ceil(this.next / align) * align;
    // A guard page after every mapping keeps an overrun from landing in a neighbour.
    const span = Math.ceil(Math.max(bytes.length, 1) / PAGE_SIZE) * PAGE_SIZE;
    this.next = base + span + PAGE_SIZE;
    this.maps.set(base, { base, end: base + bytes.length, bytes, readonly: options.readonly ?? false });
    return BigInt(base);
  }

  unmap(base: bigint): void {
    this.maps.delete(Number(base));
  }

  /**
   * The mapping that holds [addr, addr+len), or undefined. Spans across two mappings are not modelled.
   * An address at or above 2^53 may round as a number, but it stays far above every mapping.
   */
  private find(addr: bigint, len: number): Mapping | undefined {
    const start = Number(addr);
    const end = start + len;
    for (const m of this.maps.values()) if (start >= m.base && end <= m.end) return m;
    return undefined;
  }

  copyFromUser(addr: bigint, len: number): Uint8Array {
    if (len === 0) return new Uint8Array(0);
    const m = this.find(addr, len);
    if (!m) fail('EFAULT');
    const off = Number(addr) - m.base;
    return pooledCopy(m.bytes.subarray(off, off + len));
  }

  copyToUser(addr: bigint, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const m = this.find(addr, bytes.length);
    if (!m || m.readonly) fail('EFAULT');
    m.bytes.set(bytes, Number(addr) - m.base);
  }

  /**
   * Direct access, no copy: host-side code (a VMM touching its own RAM, the kernel's memslot view), and
   * kernel code that reads an argument's fields at once.
   */
  view(addr: bigint, len: number): Uint8Array | undefined {
    const m = this.find(addr, len);
    if (!m) return undefined;
    const off = Number(addr) - m.base;
    return m.bytes.subarray(off, off + len);
  }
}
