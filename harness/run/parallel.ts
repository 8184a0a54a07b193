import { Worker } from 'node:worker_threads';
import { ErrorCode, KvmspecError, type ErrorCode as Code } from '../errors.ts';
import { mergeResults } from '../report/merge.ts';
import type { Arch } from '../spec/types.ts';
import type { CaseResult, RunResults } from './results.ts';
import { writeReports, type RunOptions, type RunOutcome } from './runner.ts';

/** What a worker runs: plain data, since a factory cannot cross threads — backends go by name. */
export interface WorkerJob {
  options: Omit<RunOptions, 'factory' | 'diff' | 'onCase' | 'spec' | 'families' | 'reports'>;
  processCommand?: string[];
  diff?: string;
}

export type WorkerMessage =
  | { type: 'case'; result: CaseResult }
  | { type: 'done'; results: RunResults; unusable: Arch[] }
  | { type: 'failed'; message: string; code?: string };

const workerUrl = new URL('./worker.ts', import.meta.url).href;
// Workers start without the launcher's TypeScript loader: register it before importing the worker.
const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(workerUrl)}); });`;

function runWorker(
  job: WorkerJob,
  onCase: (r: CaseResult) => void,
): Promise<{ results: RunResults; unusable: Arch[] }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(boot, { eval: true, workerData: job });
    let settled = false;
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'case') onCase(m.result);
      else if (m.type === 'done') {
        settled = true;
        resolve({ results: m.results, unusable: m.unusable });
      } else {
        settled = true;
        reject(new KvmspecError((m.code as Code | undefined) ?? ErrorCode.BackendFailed, m.message));
      }
    });
    worker.on('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.on('exit', (code) => {
      if (!settled)
        reject(
          new KvmspecError(ErrorCode.BackendFailed, `a worker exited with code ${code} before it finished`),
        );
    });
  });
}

/**
 * Runs the plan on `jobs` worker threads, each with a round-robin part of the selection and backends
 * of its own, then merges their results in plan order and writes the reports once, whole.
 */
export async function runParallel(
  jobs: number,
  job: WorkerJob,
  reports: RunOptions['reports'],
  onCase?: RunOptions['onCase'],
): Promise<RunOutcome> {
  let done = 0;
  const started = performance.now();
  const parts = await Promise.all(
    Array.from({ length: jobs }, (_, i) =>
      runWorker(
        {
          ...job,
          options: {
            ...job.options,
            selection: { ...job.options.selection, partition: { index: i + 1, count: jobs } },
          },
        },
        (r) => onCase?.(r, ++done, Number.NaN),
      ),
    ),
  );
  const merged = mergeResults(parts.map((p, i) => ({ file: `worker ${i + 1}`, results: p.results })));
  // Round-robin parts interleave: put the cases back in the order a single run would have them.
  const order = new Map<string, number>();
  parts.forEach((p, w) => p.results.cases.forEach((c, i) => order.set(c.id, i * jobs + w)));
  merged.cases.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  // Workers ran side by side: the run took the wall time, not the sum of theirs.
  merged.durationMs = Math.round(performance.now() - started);
  if (job.diff)
    merged.diff = { against: job.diff, divergent: merged.cases.filter((c) => c.divergences?.length).length };
  writeReports(merged, reports ?? {});
  return { results: merged, unusable: [...new Set(parts.flatMap((p) => p.unusable))] };
}
