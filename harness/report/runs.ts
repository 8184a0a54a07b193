import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, KvmspecError } from '../errors.ts';
import type { Status } from '../plan/types.ts';
import type { RunResults } from '../run/results.ts';

/** The parts of a results file the review tools read; older files without newer fields still load. */
export type RunData = Pick<RunResults, 'backend' | 'revision' | 'profiles' | 'startedAt' | 'cases'>;

/** A run as the review tools show it: a label unique among the runs compared, and where it came from. */
export interface LabelledRun {
  label: string;
  file: string;
  results: RunData;
}

function readRun(file: string): RunData {
  let data: Partial<RunResults>;
  try {
    data = JSON.parse(readFileSync(file, 'utf8')) as Partial<RunResults>;
  } catch (err) {
    throw new KvmspecError(ErrorCode.Usage, `cannot read results ${file}: ${(err as Error).message}`);
  }
  if (data.schemaVersion !== 1 || !Array.isArray(data.cases) || typeof data.backend !== 'string')
    throw new KvmspecError(ErrorCode.Usage, `${file} is not a kvmspec results file (schemaVersion 1)`);
  return {
    backend: data.backend,
    revision: data.revision ?? 'upstream',
    profiles: data.profiles ?? [],
    startedAt: data.startedAt ?? '',
    cases: data.cases,
  };
}

/** Reads results files in the order given; runs of the same backend are told apart by their file. */
export function readRuns(files: string[]): LabelledRun[] {
  const runs = files.map((file) => ({ file, results: readRun(file) }));
  return runs.map(({ file, results }) => {
    const twins = runs.filter((r) => r.results.backend === results.backend).length;
    const where = path.relative(process.cwd(), path.resolve(file)) || file;
    return { label: twins > 1 ? `${results.backend} (${where})` : results.backend, file, results };
  });
}

/** Each case's status per run (undefined where the run has no such case), IDs sorted. */
export function statusMatrix(runs: LabelledRun[]): { id: string; statuses: (Status | undefined)[] }[] {
  const byRun = runs.map((r) => new Map(r.results.cases.map((c) => [c.id, c.status])));
  const ids = [...new Set(runs.flatMap((r) => r.results.cases.map((c) => c.id)))].sort();
  return ids.map((id) => ({ id, statuses: byRun.map((m) => m.get(id)) }));
}

/**
 * A status change: a case that at least two runs have and whose status differs between them. A case
 * only one run has (another arch, a filtered run) is not a change, just not compared.
 */
export function isStatusChange(statuses: (Status | undefined)[]): boolean {
  const present = statuses.filter((s): s is Status => s !== undefined);
  return present.length >= 2 && new Set(present).size > 1;
}
