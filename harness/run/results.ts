import type { BackendProfile } from '../../adapters/backend.ts';
import type { TraceEntry } from '../session.ts';
import type { Arch } from '../spec/types.ts';
import type { PlannedCase, Status } from '../plan/types.ts';
import type { Divergence } from './diff.ts';
import type { ExpectationReport } from './expectations.ts';
import type { ProfileMismatch } from './profile-check.ts';

/** An expectations-file entry that matched a case. */
export interface MatchedExpectation {
  pattern: string;
  status: Status;
  reason: string;
  link?: string;
}

/** Whether a run meets its expectations: no unexpected result, expired entry, divergence or false claim. */
export function runIsAsExpected(
  results: Pick<RunResults, 'totals' | 'expectations' | 'diff' | 'profileMismatches'>,
): boolean {
  return (
    results.totals.unexpected === 0 &&
    results.expectations.expired.length === 0 &&
    !results.diff?.divergent &&
    results.profileMismatches.length === 0
  );
}

/** One run of a case, as a retried case lists them. */
export interface Attempt {
  status: Status;
  durationMs: number;
  message?: string;
}

/** A retried case's attempts as every report shows them: their statuses in order, `fail → pass`. */
export function attemptStatuses(c: Pick<CaseResult, 'attempts'>, separator = ' → '): string {
  return (c.attempts ?? []).map((a) => a.status).join(separator);
}

/** One case's result, as every report writes it. */
export interface CaseResult {
  id: string;
  api: string;
  rule: string;
  arch: Arch;
  params: Record<string, string>;
  file: string;
  status: Status;
  durationMs: number;
  /** The seed the case ran with (see CaseContext.seed). */
  seed: number;
  message?: string;
  expected?: string;
  actual?: string;
  notes: Record<string, string>;
  /**
   * The operations the case made, kept only where they help find a problem (see `traceWorthKeeping`):
   * the runner drops a passing case's trace as soon as the case (and its differential twin) is done,
   * so a run of thousands of cases neither holds nor writes every byte of guest memory it touched.
   */
  trace?: TraceEntry[];
  expectation?: MatchedExpectation;
  /** With --diff: where the other backend ran this case differently. */
  divergences?: Divergence[];
  /** With --retries, for a case that went wrong at first: every attempt, in order (this result is one of them). */
  attempts?: Attempt[];
  /** Went wrong, then came right on a retry: this is the attempt that came right. */
  flaky?: true;
  /** Not as the expectations say: a non-pass without an entry, or a pass/status the entry did not foresee. */
  unexpected: boolean;
}

export interface RunResults {
  schemaVersion: 1;
  tool: { name: 'kvmspec'; version: string };
  backend: string;
  revision: string;
  /** The run seed (`--seed`); case seeds derive from it. */
  seed: number;
  /** sha256 of the spec tree the run used, so a replay can tell whether the spec changed since. */
  specDigest: string;
  profiles: BackendProfile[];
  /** Claimed capabilities that the backend's own KVM_CHECK_EXTENSION contradicts. */
  profileMismatches: ProfileMismatch[];
  expectations: ExpectationReport;
  /** With --diff: the backend every case was also run on, and how many cases diverged. */
  diff?: { against: string; divergent: number };
  startedAt: string;
  durationMs: number;
  totals: Record<Status, number> & { total: number; unexpected: number };
  cases: CaseResult[];
}

/** The fields of a result that come from the planned case itself. */
export function identityOf(
  c: PlannedCase,
): Pick<CaseResult, 'id' | 'api' | 'rule' | 'arch' | 'params' | 'file'> {
  return { id: c.id, api: c.api, rule: c.rule, arch: c.arch, params: c.params, file: c.file };
}

export function totalsOf(cases: CaseResult[]): RunResults['totals'] {
  const totals = {
    total: cases.length,
    unexpected: 0,
    pass: 0,
    fail: 0,
    error: 0,
    skip: 0,
    'not-applicable': 0,
    blocked: 0,
  };
  for (const c of cases) {
    totals[c.status]++;
    if (c.unexpected) totals.unexpected++;
  }
  return totals;
}

/** A case keeps its trace when it did not pass or ran differently on the other backend. */
export function traceWorthKeeping(c: CaseResult): boolean {
  return c.status !== 'pass' || (c.divergences?.length ?? 0) > 0;
}
