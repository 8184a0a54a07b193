// The mocha spec Stryker runs for each mutant of reference/: the whole conformance plan against the
// in-process reference, one mocha test per case and per revision, so per-test coverage lets Stryker run
// only the cases that reach a mutant. A mutant is killed when any case stops passing, whatever it ends as.
import type { Backend } from '../../adapters/backend.ts';
import { createReferenceBackend } from '../../adapters/reference.ts';
import { buildPlan } from '../../harness/plan/plan.ts';
import type { Fixture, PlannedCase } from '../../harness/plan/types.ts';
import { executeCase } from '../../harness/run/execute.ts';
import type { CaseResult } from '../../harness/run/results.ts';
import { declarePlan } from '../../harness/run/mocha-tree.ts';
import { DEFAULT_TIMEOUT_MS } from '../../harness/run/runner.ts';
import { loadSpec } from '../../harness/spec/loader.ts';
import { UPSTREAM } from '../../harness/spec/tree.ts';
import { ARCHES, type Arch } from '../../harness/spec/types.ts';
import { families } from '../../suites/index.ts';

const spec = loadSpec();
const fixtures = Object.assign({}, ...families.map((f) => f.fixtures ?? {})) as Record<string, Fixture>;
/** Every revision some rule names: proposal code in the reference is only reached by its revision's run. */
const revisions = [
  UPSTREAM,
  ...new Set(spec.rules().flatMap((r) => (r.rule.revisions ?? []).filter((v) => v !== UPSTREAM))),
];

for (const revision of revisions) {
  describe(`reference conformance (${revision})`, function () {
    // A fresh reference per case: Stryker re-runs tests without re-running this file, so a backend kept
    // between cases would keep the model built before the mutant was switched on (its construction code
    // would be reached by no run).
    const provider = {
      backend(arch: Arch): Promise<Backend> {
        return Promise.resolve(createReferenceBackend(spec, arch, revision));
      },
    };
    const plan = buildPlan(spec, families, { arches: [...ARCHES], revision });
    const execution = { spec, revision, fixtures, seed: 0, provider };
    // The reference passes every case (Stryker's first, unmutated run checks that), so any other status is
    // the mutant's doing: a case that now finds a feature absent (not applicable) kills it, as a failure does.
    const mustPass = async (c: PlannedCase): Promise<CaseResult> => {
      const r = await executeCase(c, execution);
      return r.status === 'pass' ? r : { ...r, status: 'fail', message: `${r.status}: ${r.message ?? ''}` };
    };
    declarePlan(this, plan, mustPass, new Map(), DEFAULT_TIMEOUT_MS);
  });
}
