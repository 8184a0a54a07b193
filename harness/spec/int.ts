import type { IntLike } from './types.ts';

/** Spec integers are JSON numbers or hex strings ("0x...", "-0x..."); all arithmetic on them is BigInt. */
export function toBigInt(v: IntLike): bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new RangeError(`integer ${v} is not exact; write it as a hex string`);
    return BigInt(v);
  }
  return v.startsWith('-') ? -BigInt(v.slice(1)) : BigInt(v);
}

export function hex(v: bigint | number): string {
  const b = BigInt(v);
  return b < 0n ? `-0x${(-b).toString(16)}` : `0x${b.toString(16)}`;
}

/** Parses a hex string of raw bytes ("0x0102") into bytes, most significant first as written. */
export function hexToBytes(text: string): Uint8Array {
  const digits = text.replace(/^0x/, '');
  if (digits.length % 2 !== 0) throw new RangeError(`byte string ${text} has an odd number of digits`);
  return Uint8Array.from(Buffer.from(digits, 'hex'));
}

/** Bytes as hex digits, no prefix, read in place (traces and failure messages render megabytes of them). */
export function hexDigits(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function bytesToHex(bytes: Uint8Array): string {
  return `0x${hexDigits(bytes)}`;
}

/** Kernel versions "major.minor" compare numerically. */
export function compareVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am - bm || an - bn;
}
