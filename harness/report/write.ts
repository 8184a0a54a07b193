import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, KvmspecError } from '../errors.ts';

/**
 * Writes every report whole or not at all: each goes to a temporary file beside its target first, and
 * only when all of them are written are they renamed into place, so a reader never sees half a report.
 */
export function writeReportsAtomically(files: { path: string; content: string }[]): void {
  const staged: { tmp: string; target: string }[] = [];
  try {
    for (const f of files) {
      mkdirSync(path.dirname(path.resolve(f.path)), { recursive: true });
      const tmp = `${f.path}.tmp-${process.pid}`;
      writeFileSync(tmp, f.content);
      staged.push({ tmp, target: f.path });
    }
    for (const s of staged) renameSync(s.tmp, s.target);
  } catch (err) {
    for (const s of staged) rmSync(s.tmp, { force: true });
    throw new KvmspecError(ErrorCode.ReportWrite, `could not write reports: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
