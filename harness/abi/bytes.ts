import { hexDigits } from '../spec/int.ts';

/** Byte strings up to this length are shown whole; longer ones as a window around the first difference. */
const WHOLE_BYTES = 64;
const WINDOW_BYTES = 16;

/**
 * Two byte strings that differ, as readable hex: whole when both are short, else both lengths and the
 * bytes from the first difference on (guest memory runs to megabytes, and a failure message should not).
 */
export function describeByteDifference(
  ours: Uint8Array,
  theirs: Uint8Array,
): { ours: string; theirs: string; whole: boolean } {
  const hexOf = (b: Uint8Array, from: number, to: number) => hexDigits(b.subarray(from, to));
  if (ours.length <= WHOLE_BYTES && theirs.length <= WHOLE_BYTES) {
    return { ours: hexOf(ours, 0, ours.length), theirs: hexOf(theirs, 0, theirs.length), whole: true };
  }
  let first = 0;
  while (first < ours.length && first < theirs.length && ours[first] === theirs[first]) first++;
  const window = (b: Uint8Array) =>
    `${b.length} bytes, at +0x${first.toString(16)}: ${hexOf(b, first, first + WINDOW_BYTES)}`;
  return { ours: window(ours), theirs: window(theirs), whole: false };
}

/**
 * Zeroed bytes carved from Node's shared allocation pool. V8 gives a fresh small ArrayBuffer its own
 * backing store the first time its `.buffer` is taken (every DataView over a struct image does), which
 * costs about half a microsecond, several times the copy; the pool's slab already has one. The result is a
 * plain Uint8Array over the slab, never a Buffer, whose slice() would alias rather than copy.
 */
export function pooledBytes(size: number): Uint8Array {
  const slab = Buffer.allocUnsafe(size).fill(0);
  return new Uint8Array(slab.buffer, slab.byteOffset, size);
}

/** A copy of `bytes` in pooled memory (see pooledBytes). */
export function pooledCopy(bytes: Uint8Array): Uint8Array {
  const copy = pooledBytes(bytes.length);
  copy.set(bytes);
  return copy;
}
