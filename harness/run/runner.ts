import Mocha from 'mocha';
import {
  BackendError,
  type Backend,
  type BackendFactory,
  type BackendProfile,
} from '../../adapters/backend.ts';
import { backendFactory } from '../../adapters/registry.ts';
import { families as defaultFamilies } from '../../suites/index.ts';
import { ErrorCode, KvmspecError } from '../errors.ts';
import { buildPlan } from '../plan/plan.ts';
import { selectCases, type Selection } from '../plan/select.ts';
import type { Fixture, PlannedCase, SuiteFamily } from '../plan/types.ts';
import { renderJunit } from '../report/junit.ts';
import { renderKtap } from '../report/ktap.ts';
import { renderSummary } from '../report/summary.ts';
import { renderTap } from '../report/tap.ts';
import { writeReportsAtomically } from '../report/write.ts';
import { loadSpec } from '../spec/loader.ts';
import type { SpecTree } from '../spec/tree.ts';
import type { Arch } from '../spec/types.ts';
import { SetupError } from '../session.ts';
import { compareCase } from './diff.ts';
import { verifyProfile, type ProfileMismatch } from './profile-check.ts';
import { BackendUnusableError, caseSeed, executeCase, type BackendProvider } from './execute.ts';
import { writeBundles } from './bundle.ts';
import { applyExpectations, loadExpectations } from './expectations.ts';
import { declarePlan } from './mocha-tree.ts';
import {
  identityOf,
  totalsOf,
  traceWorthKeeping,
  type Attempt,
  type CaseResult,
  type RunResults,
} from './results.ts';

export const TOOL_VERSION = '0.1.0';
export const DEFAULT_TIMEOUT_MS = 10_000;

export interface ReportPaths {
  junit?: string;
  json?: string;
  tap?: string;
  ktap?: string;
  /** Markdown for a CI summary (GitHub's step summary), kept under its size limit. */
  summary?: string;
  /** A folder for one reproducer bundle per failing case. */
  bundles?: string;
}

export interface RunOptions {
  backend: string;
  /** A factory to use instead of the registry's (tests inject faulty backends this way). */
  factory?: BackendFactory;
  arches?: Arch[];
  revision?: string;
  /** Narrows the plan: ID and rule globs, tags, a shard. */
  selection?: Selection;
  spec?: SpecTree;
  families?: SuiteFamily[];
  expectationsFile?: string;
  reports?: ReportPaths;
  timeoutMs?: number;
  /** The run seed; each case's seed derives from it and the case ID. Default 0: the same seeds every run. */
  seed?: number;
  /** Replaying a bundle: the fast-check path of its counterexample. */
  replayPath?: string;
  /** Differential mode: every case also runs on this backend, and each divergence is reported. */
  diff?: { backend: string; factory: BackendFactory };
  /**
   * Runs a case that ended unexpectedly (or diverged) again, up to this many more times (default 0). It
   * counts as unexpected only when every attempt was; one that comes right on a retry is reported with
   * that attempt's result, marked flaky, with every attempt listed.
   */
  retries?: number;
  /** Receives one line per finished case (the CLI shows progress on a TTY). */
  onCase?: (result: CaseResult, done: number, total: number) => void;
}

export interface RunOutcome {
  results: RunResults;
  /** Arches whose backend could not be created at all. */
  unusable: Arch[];
}

/** The cases of a run: the spec's plan for the arches and revision, narrowed by the selection. */
export function planRun(
  spec: SpecTree,
  families: SuiteFamily[],
  arches: Arch[],
  revision: string,
  selection: Selection = {},
): PlannedCase[] {
  return selectCases(buildPlan(spec, families, { arches, revision }), selection);
}

function unrunResult(c: PlannedCase, status: 'error' | 'blocked', message: string, seed: number): CaseResult {
  return {
    ...identityOf(c),
    seed,
    status,
    durationMs: 0,
    message,
    notes: {},
    trace: [],
    unexpected: true,
  };
}

/** Creates each arch's backend on first use; a creation failure is remembered and reported per case. */
export function lazyProvider(
  factory: BackendFactory,
  revision: string,
): BackendProvider & { created: Map<Arch, Promise<Backend>>; failures: Map<Arch, string> } {
  const created = new Map<Arch, Promise<Backend>>();
  const failures = new Map<Arch, string>();
  return {
    created,
    failures,
    backend(arch) {
      let b = created.get(arch);
      if (!b) {
        b = factory.create({ arch, revision }).catch((err: unknown) => {
          const message = `backend '${factory.name}' for ${arch} is unusable: ${err instanceof Error ? err.message : String(err)}`;
          failures.set(arch, message);
          throw new BackendUnusableError(message, { cause: err });
        });
        created.set(arch, b);
      }
      return b;
    },
  };
}

/**
 * One mocha pass over planned cases: mocha sequences them and enforces each one's timeout; every case
 * gets exactly one result, in plan order, even when mocha never ran it (a failed hook, an aborted runner).
 */
async function runPass(
  plan: PlannedCase[],
  runCase: (c: PlannedCase) => Promise<CaseResult>,
  options: { timeoutMs: number; runSeed: number; onCase?: RunOptions['onCase'] },
): Promise<CaseResult[]> {
  const mocha = new Mocha({
    reporter: class Silent {} as unknown as Mocha.ReporterConstructor,
    timeout: options.timeoutMs,
  });
  const results = new Map<string, CaseResult>();
  declarePlan(mocha.suite, plan, runCase, results, options.timeoutMs);
  const byId = new Map(plan.map((c) => [c.id, c]));
  let hookFailure: string | undefined;
  let done = 0;
  await new Promise<void>((resolve) => {
    const runner = mocha.run(() => resolve());
    runner.on('fail', (test: Mocha.Runnable, err: Error) => {
      if (test instanceof Mocha.Hook) {
        hookFailure ??= `${test.fullTitle()}: ${err.message}`;
        return;
      }
      // A case mocha cut off (its timeout) is an error now; whatever its body does later is ignored.
      const c = byId.get(test.title);
      if (c && !results.has(c.id))
        results.set(
          c.id,
          unrunResult(c, 'error', `timed out: ${err.message}`, caseSeed(options.runSeed, c.id)),
        );
    });
    runner.on('test end', (test: Mocha.Test) => {
      done++;
      const r = results.get(test.title);
      if (r) options.onCase?.(r, done, plan.length);
    });
  });
  // Mocha installs process-wide error listeners per run; drop them so repeated runs do not pile up.
  mocha.dispose();
  return plan.map(
    (c): CaseResult =>
      results.get(c.id) ??
      unrunResult(
        c,
        'blocked',
        `not run: ${hookFailure ?? 'the runner stopped before this case'}`,
        caseSeed(options.runSeed, c.id),
      ),
  );
}

/** A case worth another attempt: not as its expectations say, or not as the other backend ran it. */
const wentWrong = (r: CaseResult) => r.unexpected || (r.divergences?.length ?? 0) > 0;

const attemptOf = (r: CaseResult): Attempt => ({
  status: r.status,
  durationMs: r.durationMs,
  ...(r.message !== undefined ? { message: r.message } : {}),
});

/**
 * Up to `retries` further passes over the cases that went wrong in every attempt so far (WPT's
 * "retry unexpected"): a case that comes right is replaced, in place, by that attempt, marked flaky; one
 * that never does keeps its first result. Either way every attempt is listed, in order.
 */
async function retryWrong(
  plan: PlannedCase[],
  cases: CaseResult[],
  retries: number,
  judge: (results: CaseResult[]) => void,
  rerun: (plan: PlannedCase[]) => Promise<CaseResult[]>,
): Promise<void> {
  for (let round = 0; round < retries; round++) {
    const wrong = cases.flatMap((r, i) => (wentWrong(r) ? [i] : []));
    if (wrong.length === 0) return;
    // `cases` is in plan order: result i is plan[i]'s.
    const again = await rerun(wrong.map((i) => plan[i]!));
    judge(again);
    again.forEach((r, k) => {
      const i = wrong[k]!;
      const first = cases[i]!;
      const attempts = [...(first.attempts ?? [attemptOf(first)]), attemptOf(r)];
      if (wentWrong(r)) first.attempts = attempts;
      else cases[i] = { ...r, attempts, flaky: true };
    });
  }
}

/**
 * Runs the suite against one backend: plan, execute through mocha, apply expectations, run again what went
 * wrong (with `retries`), and write every requested report whole. Every planned case appears exactly once
 * in the results.
 */
export async function runSuite(options: RunOptions): Promise<RunOutcome> {
  const spec = options.spec ?? loadSpec();
  const families = options.families ?? defaultFamilies;
  const factory = options.factory ?? backendFactory(options.backend);
  const revision = options.revision ?? 'upstream';
  const runSeed = options.seed ?? 0;
  const supported = factory.arches();
  const arches = options.arches ?? supported;
  const foreign = arches.filter((a) => !supported.includes(a));
  if (foreign.length > 0) {
    throw new KvmspecError(
      ErrorCode.Usage,
      `backend '${factory.name}' cannot run ${foreign.join(', ')} (it serves ${supported.join(', ')})`,
    );
  }
  const expectations = loadExpectations(options.backend, options.expectationsFile);
  const plan = planRun(spec, families, arches, revision, options.selection);
  const fixtures = Object.assign({}, ...families.map((f) => f.fixtures ?? {})) as Record<string, Fixture>;
  const provider = lazyProvider(factory, revision);
  const startedAt = new Date();
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  const execution = {
    spec,
    fixtures,
    seed: runSeed,
    ...(options.replayPath !== undefined ? { replayPath: options.replayPath } : {}),
  };
  const other = options.diff ? lazyProvider(options.diff.factory, revision) : undefined;
  const runCase = async (c: PlannedCase): Promise<CaseResult> => {
    // Without a second backend a passing case's trace is never rendered; a differential run compares
    // both traces call by call first.
    if (!other) return executeCase(c, { ...execution, provider, keepTrace: traceWorthKeeping });
    const r = await executeCase(c, { ...execution, provider });
    const theirs = await executeCase(c, { ...execution, provider: other });
    r.divergences = compareCase(r, theirs, c.ref.rule.hostDependent ?? false);
    if (!traceWorthKeeping(r)) r.trace = undefined;
    return r;
  };
  // Start every backend the plan needs before the first case, so a slow start (a QEMU boot) never eats
  // into a case's timeout; a backend that cannot start is reported by each of its cases.
  const planArches = [...new Set(plan.map((c) => c.arch))];
  await Promise.allSettled(
    planArches.flatMap((a) => [provider.backend(a), ...(other ? [other.backend(a)] : [])]),
  );
  const cases = await runPass(plan, runCase, {
    timeoutMs,
    runSeed,
    ...(options.onCase ? { onCase: options.onCase } : {}),
  });
  const profiles = new Map<Arch, BackendProfile>();
  for (const [arch, b] of provider.created) {
    const backend = await b.catch(() => undefined);
    if (backend) profiles.set(arch, backend.profile);
  }
  const judge = (rs: CaseResult[]) => applyExpectations(rs, expectations, { revision, profiles });
  const expectationReport = judge(cases);
  await retryWrong(plan, cases, options.retries ?? 0, judge, (again) =>
    runPass(again, runCase, { timeoutMs, runSeed }),
  );
  const profileMismatches: ProfileMismatch[] = [];
  for (const [arch, b] of provider.created) {
    // Creation failures are already in the cases' results.
    const backend = await b.catch(() => undefined);
    if (!backend) continue;
    try {
      profileMismatches.push(...(await verifyProfile(backend, spec, arch, revision)));
    } catch (err) {
      // A backend that fails the probe (broken, or no /dev/kvm) has failed or blocked cases too; anything
      // else is the harness's own bug, and must not pass for a clean profile.
      if (!(err instanceof BackendError || err instanceof SetupError)) throw err;
    } finally {
      await backend.dispose().catch(() => undefined);
    }
  }
  for (const b of other?.created.values() ?? [])
    await b.then((backend) => backend.dispose()).catch(() => undefined);
  const runResults: RunResults = {
    schemaVersion: 1,
    tool: { name: 'kvmspec', version: TOOL_VERSION },
    backend: factory.name,
    revision,
    seed: runSeed,
    specDigest: spec.digest(),
    profileMismatches,
    ...(options.diff
      ? {
          diff: {
            against: options.diff.backend,
            divergent: cases.filter((c) => c.divergences?.length).length,
          },
        }
      : {}),
    profiles: [...profiles.values()],
    expectations: expectationReport,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - started),
    totals: totalsOf(cases),
    cases,
  };
  writeReports(runResults, options.reports ?? {});
  return { results: runResults, unusable: [...provider.failures.keys()] };
}

export function writeReports(results: RunResults, paths: ReportPaths): void {
  const files: { path: string; content: string }[] = [];
  if (paths.json) files.push({ path: paths.json, content: `${JSON.stringify(results, null, 2)}\n` });
  if (paths.junit) files.push({ path: paths.junit, content: renderJunit(results) });
  if (paths.tap) files.push({ path: paths.tap, content: renderTap(results) });
  if (paths.ktap) files.push({ path: paths.ktap, content: renderKtap(results) });
  if (paths.summary) files.push({ path: paths.summary, content: renderSummary(results) });
  if (files.length > 0) writeReportsAtomically(files);
  if (paths.bundles) writeBundles(results, paths.bundles);
}
