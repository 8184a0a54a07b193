import Mocha from 'mocha';
import type { PlannedCase } from '../plan/types.ts';
import type { CaseResult } from './results.ts';

/**
 * Declares the plan as mocha suites (API › arch › case) whose tests run each case through `runCase`.
 * The engine's result is the record; mocha only sequences, times out, and reports progress. A case that
 * did not pass still fails or skips in mocha so mocha's own reporters and exit code stay meaningful.
 */
export function declarePlan(
  root: Mocha.Suite,
  plan: PlannedCase[],
  runCase: (c: PlannedCase) => Promise<CaseResult>,
  results: Map<string, CaseResult>,
  timeoutMs: number,
): void {
  const suites = new Map<string, Mocha.Suite>();
  const suiteFor = (parent: Mocha.Suite, key: string, title: string) => {
    let s = suites.get(key);
    if (!s) {
      s = Mocha.Suite.create(parent, title);
      suites.set(key, s);
    }
    return s;
  };
  for (const c of plan) {
    const suite = suiteFor(suiteFor(root, c.api, c.api), `${c.api}/${c.arch}`, c.arch);
    const test = new Mocha.Test(c.id, async function (this: Mocha.Context) {
      const r = await runCase(c);
      if (!results.has(c.id)) results.set(c.id, r);
      if (r.status === 'skip' || r.status === 'not-applicable') this.skip();
      if (r.status !== 'pass') throw new Error(`${r.status}: ${r.message ?? ''}`);
    });
    test.timeout(c.timeoutMs ?? timeoutMs);
    suite.addTest(test);
  }
}
