import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { BackendProfile } from '../../adapters/backend.ts';
import { ErrorCode, KvmspecError } from '../errors.ts';
import { writeReportsAtomically } from '../report/write.ts';
import type { TraceEntry } from '../session.ts';
import type { CaseResult, RunResults } from './results.ts';

/** Everything needed to see a failure again, on this backend or any other. */
export interface Bundle {
  kvmspec: 'bundle';
  version: 1;
  id: string;
  rule: string;
  arch: CaseResult['arch'];
  revision: string;
  backend: string;
  profile?: BackendProfile;
  specDigest: string;
  /** The run seed; the case's own seed derives from it and the ID. */
  runSeed: number;
  caseSeed: number;
  /** For property-based cases: the counterexample's path, replayed directly. */
  path?: string;
  status: CaseResult['status'];
  message?: string;
  expected?: string;
  actual?: string;
  notes: Record<string, string>;
  /** The operations the case made, in order, with what each returned. */
  trace: TraceEntry[];
  replay: string;
}

/** A file name from a test ID: readable, and unique because the ID's characters map one to one. */
export function bundleFileName(id: string): string {
  return `${id.replace(/[^A-Za-z0-9_.-]/g, (c) => `~${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}.json`;
}

/**
 * Writes one bundle per failing or erroring case into `dir`, after removing the bundles an earlier run
 * left there, so the folder always describes the latest run.
 */
export function writeBundles(results: RunResults, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (f.endsWith('.json')) rmSync(path.join(dir, f));
  const files = results.cases
    .filter((c) => c.status === 'fail' || c.status === 'error')
    .map((c) => {
      const file = path.join(dir, bundleFileName(c.id));
      const bundle: Bundle = {
        kvmspec: 'bundle',
        version: 1,
        id: c.id,
        rule: c.rule,
        arch: c.arch,
        revision: results.revision,
        backend: results.backend,
        ...(results.profiles.find((p) => p.arch === c.arch)
          ? { profile: results.profiles.find((p) => p.arch === c.arch) }
          : {}),
        specDigest: results.specDigest,
        runSeed: results.seed,
        caseSeed: c.seed,
        ...(c.notes.path ? { path: c.notes.path } : {}),
        status: c.status,
        ...(c.message !== undefined ? { message: c.message } : {}),
        ...(c.expected !== undefined ? { expected: c.expected } : {}),
        ...(c.actual !== undefined ? { actual: c.actual } : {}),
        notes: c.notes,
        trace: c.trace ?? [],
        replay: `kvmspec replay ${file} --backend ${results.backend}`,
      };
      return { path: file, content: `${JSON.stringify(bundle, null, 2)}\n` };
    });
  if (files.length > 0) writeReportsAtomically(files);
  return files.map((f) => f.path);
}

export function readBundle(file: string): Bundle {
  let data: Partial<Bundle>;
  try {
    data = JSON.parse(readFileSync(file, 'utf8')) as Partial<Bundle>;
  } catch (err) {
    throw new KvmspecError(ErrorCode.Usage, `${file}: cannot read bundle: ${(err as Error).message}`);
  }
  if (data.kvmspec !== 'bundle' || data.version !== 1 || typeof data.id !== 'string') {
    throw new KvmspecError(ErrorCode.Usage, `${file}: not a kvmspec reproducer bundle`);
  }
  return data as Bundle;
}
