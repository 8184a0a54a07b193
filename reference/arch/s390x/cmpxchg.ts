import { writeFields } from '../../../harness/abi/codec.ts';
import { fail, type ErrnoName } from '../../errno.ts';
import type { ReferenceKernel } from '../../kernel.ts';
import { keyPermits } from './keys.ts';
import { F_CHECK_ONLY, F_CMPXCHG, F_SKEY_PROTECTION, validateCommon, type MemOp } from './memop.ts';
import { PGM } from './pgm.ts';
import type { GuestStorage } from './storage.ts';

const QUAD = 16;
/** For sizes of at least 1: the mem_op checks reject size 0 first. */
const isPowerOfTwo = (n: number) => (n & (n - 1)) === 0;

type Exchange = { code: number; swapped: boolean; current: Uint8Array } | { errno: ErrnoName };

/**
 * The key-checked atomic compare-and-swap on absolute storage (arch/s390/kvm/gaccess.c): alignment,
 * then size, then the key (a store), then the comparison. `current` is what memory held.
 */
function exchange(
  storage: GuestStorage,
  gaddr: bigint,
  old: Uint8Array,
  value: Uint8Array,
  key: number,
): Exchange {
  const size = old.length;
  if ((gaddr & BigInt(size - 1)) !== 0n) return { errno: 'EINVAL' };
  if (!isPowerOfTwo(size)) return { errno: 'EINVAL' };
  // The caller found gaddr backed, and an aligned operand of at most 16 bytes stays within its page.
  const mem = storage.bytes(gaddr, size)!;
  if (!keyPermits(storage.key(gaddr), key, 'store'))
    return { code: PGM.PROTECTION, swapped: false, current: old };
  const current = mem.slice();
  const swapped = current.every((b, i) => b === old[i]);
  if (swapped) mem.set(value);
  return { code: 0, swapped, current };
}

/**
 * Upstream ABSOLUTE_CMPXCHG (6.3): the new value from buf, the expected one from old_addr; on anything
 * but a swap the value found (unchanged on early errors) goes back to old_addr. No success report.
 */
export function upstreamCmpxchg(kernel: ReferenceKernel, storage: GuestStorage, mop: MemOp): bigint {
  const key = validateCommon(mop, F_SKEY_PROTECTION);
  if (mop.size > QUAD) fail('EINVAL');
  const value = kernel.mem.copyFromUser(mop.buf, mop.size);
  const old = kernel.mem.copyFromUser(mop.oldAddr, mop.size);
  if (!storage.backed(mop.gaddr)) return BigInt(PGM.ADDRESSING);
  const r = exchange(storage, mop.gaddr, old, value, key);
  const swapped = 'swapped' in r && r.swapped;
  if (!swapped) kernel.mem.copyToUser(mop.oldAddr, 'current' in r ? r.current : old);
  return 'errno' in r ? fail(r.errno) : BigInt(r.code);
}

/** The proposal's operand: the low `size` bytes of the big-endian quadword old[0]:old[1]. */
function operand(old: bigint[], size: number): Uint8Array {
  const quad = new Uint8Array(QUAD);
  const view = new DataView(quad.buffer);
  view.setBigUint64(0, old[0] ?? 0n);
  view.setBigUint64(8, old[1] ?? 0n);
  return quad.slice(QUAD - size);
}

function quadWords(bytes: Uint8Array): bigint[] {
  const quad = new Uint8Array(QUAD);
  quad.set(bytes, QUAD - bytes.length);
  const view = new DataView(quad.buffer);
  return [view.getBigUint64(0), view.getBigUint64(8)];
}

/**
 * The 2022 proposal: ABSOLUTE_WRITE with F_CMPXCHG. The expected value is inline in old[2]; the value
 * found is returned there, and F_CMPXCHG is cleared in flags when the exchange happened — both written
 * back into the caller's struct.
 */
export function proposalCmpxchg(
  kernel: ReferenceKernel,
  storage: GuestStorage,
  mop: MemOp,
  arg: bigint,
): bigint {
  const key = validateCommon(mop, F_CHECK_ONLY | F_SKEY_PROTECTION | F_CMPXCHG);
  if (mop.size > QUAD || !isPowerOfTwo(mop.size)) fail('EINVAL');
  const value = kernel.mem.copyFromUser(mop.buf, mop.size);
  if (!storage.backed(mop.gaddr)) return BigInt(PGM.ADDRESSING);
  const r = exchange(storage, mop.gaddr, operand(mop.old, mop.size), value, key);
  if ('errno' in r) fail(r.errno);
  if (r.code !== 0) return BigInt(r.code);
  const layout = kernel.abi.layout('kvm_s390_mem_op');
  const image = kernel.mem.copyFromUser(arg, layout.size);
  const flags = r.swapped ? mop.flags & ~F_CMPXCHG : mop.flags;
  writeFields(layout, image, { flags, old: quadWords(r.current) }, kernel.abi.endian);
  kernel.mem.copyToUser(arg, image);
  return 0n;
}
