import { AssertionError } from 'chai';
import fc from 'fast-check';
import type { CaseContext } from './types.ts';

/**
 * Runs a property-based check inside a case with the case's seed (and, on replay, the recorded path),
 * so a failure is reproducible: the seed, the shrunk counterexample's path and the counterexample
 * itself go into the case's result, and `kvmspec replay` feeds them back.
 */
export async function checkProperty<T>(
  ctx: CaseContext,
  arbitrary: fc.Arbitrary<T>,
  predicate: (value: T) => Promise<void>,
  numRuns = 30,
): Promise<void> {
  ctx.note('seed', String(ctx.seed));
  const details = await fc.check(fc.asyncProperty(arbitrary, predicate), {
    seed: ctx.seed,
    numRuns,
    ...(ctx.replayPath ? { path: ctx.replayPath } : {}),
  });
  if (!details.failed) return;
  const counterexample = fc.stringify(details.counterexample);
  ctx.note('path', details.counterexamplePath ?? '');
  ctx.note('counterexample', counterexample);
  const cause = details.errorInstance;
  if (cause instanceof AssertionError) {
    const e = cause as Error & { expected?: unknown; actual?: unknown };
    throw new AssertionError(`${cause.message} (counterexample ${counterexample})`, {
      expected: e.expected,
      actual: e.actual,
    });
  }
  throw cause instanceof Error ? cause : new Error(String(cause));
}
