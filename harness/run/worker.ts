/**
 * A worker thread of a parallel run: runs its partition of the plan with backends of its own (KVM ties
 * a VM to the process and thread that made it) and posts each result, then the whole run, back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { processFactory } from '../../adapters/process.ts';
import { backendFactory } from '../../adapters/registry.ts';
import type { WorkerJob, WorkerMessage } from './parallel.ts';
import { runSuite } from './runner.ts';

const job = workerData as WorkerJob;
const post = (m: WorkerMessage) => parentPort?.postMessage(m);
const factoryOf = (name: string) =>
  name === 'process' ? processFactory({ command: job.processCommand ?? [] }) : backendFactory(name);

try {
  const { results, unusable } = await runSuite({
    ...job.options,
    factory: factoryOf(job.options.backend),
    ...(job.diff ? { diff: { backend: job.diff, factory: factoryOf(job.diff) } } : {}),
    onCase: (result) => post({ type: 'case', result }),
  });
  post({ type: 'done', results, unusable });
} catch (err) {
  post({
    type: 'failed',
    message: err instanceof Error ? err.message : String(err),
    code: (err as { code?: string }).code,
  });
}
