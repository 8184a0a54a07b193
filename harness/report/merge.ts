import { ErrorCode, KvmspecError } from '../errors.ts';
import { totalsOf, type RunResults } from '../run/results.ts';

/**
 * Joins the results of shards (or of runs on different arches) into one: cases in the order given,
 * totals recomputed. The runs must share backend and revision, and no case may appear twice.
 */
export function mergeResults(runs: { file: string; results: RunResults }[]): RunResults {
  const first = runs[0];
  if (!first) throw new KvmspecError(ErrorCode.Usage, 'report merge needs at least one results file');
  const seen = new Map<string, string>();
  for (const { file, results } of runs) {
    if (results.schemaVersion !== 1)
      throw new KvmspecError(
        ErrorCode.Usage,
        `${file}: not a kvmspec results file (schemaVersion ${String(results.schemaVersion)})`,
      );
    if (results.specDigest !== first.results.specDigest)
      throw new KvmspecError(
        ErrorCode.Usage,
        `${file}: ran spec ${results.specDigest.slice(0, 12)}, ${first.file} spec ${first.results.specDigest.slice(0, 12)}`,
      );
    if (results.backend !== first.results.backend || results.revision !== first.results.revision) {
      throw new KvmspecError(
        ErrorCode.Usage,
        `${file}: backend ${results.backend}/${results.revision} differs from ${first.file}'s ${first.results.backend}/${first.results.revision}`,
      );
    }
    for (const c of results.cases) {
      const other = seen.get(c.id);
      if (other) throw new KvmspecError(ErrorCode.Usage, `${c.id} is in both ${other} and ${file}`);
      seen.set(c.id, file);
    }
  }
  const cases = runs.flatMap((r) => r.results.cases);
  const profiles = new Map(
    runs.flatMap((r) => r.results.profiles).map((p) => [`${p.arch}/${p.implementation}/${p.version}`, p]),
  );
  const expired = new Map(runs.flatMap((r) => r.results.expectations.expired).map((e) => [e.id, e]));
  return {
    ...first.results,
    profiles: [...profiles.values()],
    profileMismatches: runs.flatMap((r) => r.results.profileMismatches),
    expectations: { ...first.results.expectations, expired: [...expired.values()] },
    startedAt: runs.map((r) => r.results.startedAt).sort()[0] ?? first.results.startedAt,
    durationMs: runs.reduce((t, r) => t + r.results.durationMs, 0),
    totals: totalsOf(cases),
    cases,
  };
}
