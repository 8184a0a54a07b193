// The reference suite against bare mocha running as many empty tests, in the same process.
import Mocha from 'mocha';
import { runSuite } from '../harness/run/runner.ts';
import type { SpecTree } from '../harness/spec/tree.ts';
import { costRatio, measurePairs, median, type Ratio } from './measure.ts';

const Silent = class {} as unknown as Mocha.ReporterConstructor;

async function bareMocha(tests: number): Promise<void> {
  const mocha = new Mocha({ reporter: Silent });
  for (let i = 0; i < tests; i++) mocha.suite.addTest(new Mocha.Test(`empty ${i}`, () => undefined));
  await new Promise<void>((resolve) => mocha.run(() => resolve()));
  mocha.dispose();
}

export async function suiteVsMocha(spec: SpecTree, repetitions: number): Promise<Ratio> {
  let cases = 0;
  /** What the cases' own bodies took (their durations summed), per repetition. */
  const bodies: number[] = [];
  const paired = await measurePairs(
    repetitions,
    async () => {
      const { results } = await runSuite({ backend: 'reference', spec });
      cases = results.totals.total;
      bodies.push(results.cases.reduce((sum, c) => sum + c.durationMs, 0));
    },
    // The plan's size is known once the first suite run has built it.
    () => bareMocha(cases),
  );
  const body = median(bodies);
  return {
    ...costRatio(
      `reference suite (${cases} cases) vs bare mocha (${cases} empty tests)`,
      paired.ours.ms,
      paired.baseline.ms,
      'ms',
      3,
      paired.ratio,
    ),
    note: `the case bodies alone take ${body.toFixed(0)} ms = ${(body / paired.baseline.ms).toFixed(1)}x`,
  };
}
