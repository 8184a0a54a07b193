import type { SuiteFamily } from '../plan/types.ts';
import type { SpecTree } from '../spec/tree.ts';
import type { Arch } from '../spec/types.ts';
import type { RunResults } from './results.ts';
import { planRun } from './runner.ts';

/** Whether a results file shows a complete, clean run of this spec: what an implementer's claim rests on. */
export interface Verdict {
  conformant: boolean;
  /** The arches the run covered (those its cases name), each checked against the whole plan for it. */
  arches: Arch[];
  revision: string;
  backend: string;
  /** The digest of the spec the run was checked against (this spec's). */
  specDigest: string;
  /** Each reason the run is not a conformance run, one line each; empty when conformant. */
  problems: string[];
}

/** At most this many IDs are named per problem; the count says how many there are. */
const NAMED = 10;

function naming(ids: string[]): string {
  const shown = ids.slice(0, NAMED).join(', ');
  return ids.length > NAMED ? `${shown}, and ${ids.length - NAMED} more` : shown;
}

/**
 * Checks a run against the spec it claims (as a conformance-test submission is checked, not as CI gates
 * on expectations): the same spec digest; every planned case of each arch the run covered, once, and no
 * other; each one passed or was not applicable, on its first attempt; no divergence and no profile claim
 * the backend's own KVM_CHECK_EXTENSION contradicts. An expected failure is still a failure here, and a
 * skipped case was not checked.
 */
export function verifyResults(results: RunResults, spec: SpecTree, families: SuiteFamily[]): Verdict {
  const problems: string[] = [];
  const digest = spec.digest();
  if (results.specDigest !== digest)
    problems.push(
      `the run used another spec (digest ${results.specDigest.slice(0, 12)}, this spec ${digest.slice(0, 12)})`,
    );
  const arches = [...new Set(results.cases.map((c) => c.arch))];
  if (arches.length === 0) problems.push('the run has no cases');
  const planned = planRun(spec, families, arches, results.revision).map((c) => c.id);
  const ran = new Map<string, number>();
  for (const c of results.cases) ran.set(c.id, (ran.get(c.id) ?? 0) + 1);
  const plannedSet = new Set(planned);
  const missing = planned.filter((id) => !ran.has(id));
  const extra = [...ran.keys()].filter((id) => !plannedSet.has(id));
  const twice = [...ran].filter(([, n]) => n > 1).map(([id]) => id);
  if (missing.length > 0) problems.push(`${missing.length} planned cases did not run: ${naming(missing)}`);
  if (extra.length > 0) problems.push(`${extra.length} cases are not in the plan: ${naming(extra)}`);
  if (twice.length > 0) problems.push(`${twice.length} cases appear more than once: ${naming(twice)}`);
  for (const status of ['fail', 'error', 'blocked', 'skip'] as const) {
    const ids = results.cases.filter((c) => c.status === status).map((c) => c.id);
    if (ids.length > 0) problems.push(`${ids.length} cases ended ${status}: ${naming(ids)}`);
  }
  const flaky = results.cases.filter((c) => c.flaky).map((c) => c.id);
  if (flaky.length > 0) problems.push(`${flaky.length} cases passed only on a retry: ${naming(flaky)}`);
  const divergent = results.cases.filter((c) => c.divergences?.length).map((c) => c.id);
  if (divergent.length > 0)
    problems.push(
      `${divergent.length} cases ran differently on ${results.diff?.against ?? 'the other backend'}: ${naming(divergent)}`,
    );
  for (const m of results.profileMismatches)
    problems.push(`the ${m.arch} profile claims ${m.capability}, which KVM_CHECK_EXTENSION contradicts`);
  return {
    conformant: problems.length === 0,
    arches,
    revision: results.revision,
    backend: results.backend,
    specDigest: digest,
    problems,
  };
}
