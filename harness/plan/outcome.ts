import { AssertionError } from 'chai';
import type { CallResult } from '../session.ts';
import { describeByteDifference } from '../abi/bytes.ts';
import type { FieldValue } from '../abi/codec.ts';
import { hex, toBigInt } from '../spec/int.ts';
import type { Outcome } from '../spec/types.ts';
import type { GenerateContext } from './types.ts';

export function describeResult(r: Pick<CallResult, 'ret' | 'errno'>): string {
  return r.errno ? `ret -1, errno ${r.errno}` : `ret ${r.ret} (${hex(r.ret)})`;
}

export function describeOutcome(o: Outcome): string {
  if (o.errno) return `ret -1, errno ${o.errno}`;
  if (o.errnoAnyOf) return `ret -1, errno one of ${o.errnoAnyOf.join(', ')}`;
  const ret = o.ret;
  if (ret !== undefined && typeof ret === 'object') {
    return `ret in [${ret.min ?? '-inf'}, ${ret.max ?? '+inf'}]`;
  }
  return `ret ${ret === undefined ? '?' : toBigInt(ret)}`;
}

/** Asserts that a call ended as the outcome says, with both sides in the message and on the error. */
export function assertOutcome(r: Pick<CallResult, 'ret' | 'errno'>, o: Outcome, what: string): void {
  let ok: boolean;
  if (o.errno) ok = r.ret === -1n && r.errno === o.errno;
  else if (o.errnoAnyOf) ok = r.ret === -1n && r.errno !== null && o.errnoAnyOf.includes(r.errno);
  else if (o.ret !== undefined && typeof o.ret === 'object') {
    const { min, max } = o.ret;
    ok =
      r.errno === null &&
      (min === undefined || r.ret >= toBigInt(min)) &&
      (max === undefined || r.ret <= toBigInt(max));
  } else ok = r.errno === null && o.ret !== undefined && r.ret === toBigInt(o.ret);
  if (!ok) {
    throw new AssertionError(`${what}: expected ${describeOutcome(o)}, got ${describeResult(r)}`, {
      expected: describeOutcome(o),
      actual: describeResult(r),
    });
  }
}

/** Asserts equality of two integers (register values, counts) with hex in the message. */
export function assertValue(actual: bigint, expected: bigint, what: string): void {
  if (actual !== expected) {
    throw new AssertionError(`${what}: expected ${hex(expected)}, got ${hex(actual)}`, {
      expected: hex(expected),
      actual: hex(actual),
    });
  }
}

/**
 * A decoded struct field against its expected value: an integer, or one per element of an array field. A
 * field of another shape than expected is the case's mistake, not the backend's: a plain Error.
 */
export function assertField(actual: FieldValue | undefined, expected: FieldValue, what: string): void {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length)
      throw new Error(
        `${what}: expected ${expected.length} elements, and the struct's field is not that array`,
      );
    expected.forEach((e, i) => assertValue(actual[i]!, e, `${what}, element ${i}`));
    return;
  }
  if (typeof actual !== 'bigint') throw new Error(`${what}: the struct has no such scalar field`);
  assertValue(actual, expected, what);
}

/**
 * Asserts that two byte strings are equal. Compared as bytes (cases compare up to megabytes of guest
 * memory); only a mismatch is rendered (see `describeByteDifference`).
 */
export function assertBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  if (Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected)) return;
  const d = describeByteDifference(actual, expected);
  const bytes = d.whole ? 'bytes ' : '';
  throw new AssertionError(`${what}: expected ${bytes}${d.theirs}, got ${d.ours}`, {
    expected: d.theirs,
    actual: d.ours,
  });
}

export function assertTrue(condition: boolean, what: string): asserts condition {
  if (!condition) throw new AssertionError(what);
}

/** The outcome a rule states for every case its generator derives (its "expect"). */
export function expectOf(g: GenerateContext): Outcome {
  const e = g.ref.rule.expect;
  if (!e) throw new Error(`${g.ref.rule.id}: derived cases need the rule's "expect"`);
  return e;
}
