import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, KvmspecError } from '../errors.ts';
import { globToRegExp } from '../glob.ts';
import { defaultExpectationsDir } from '../paths.ts';
import { describeAjvErrors, schemaValidator } from '../spec/schemas.ts';
import type { Status } from '../plan/types.ts';
import type { CaseResult, MatchedExpectation } from './results.ts';

export interface ExpectationEntry {
  /** A test ID, or a glob over IDs where `*` matches within one ID part and `**` across parts. */
  id: string;
  status: Exclude<Status, 'pass'>;
  reason: string;
  link?: string;
}

export interface Expectations {
  file?: string;
  entries: ExpectationEntry[];
}

/** Reads expectations/<backend>.json (or a given file); no file means no expected non-passes. */
export function loadExpectations(backend: string, file?: string): Expectations {
  const target = file ?? path.join(defaultExpectationsDir, `${backend}.json`);
  if (!existsSync(target)) {
    if (file) throw new KvmspecError(ErrorCode.ExpectationsInvalid, `${file}: no such expectations file`);
    return { entries: [] };
  }
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(target, 'utf8'));
  } catch (err) {
    throw new KvmspecError(
      ErrorCode.ExpectationsInvalid,
      `${target}: not valid JSON: ${(err as Error).message}`,
    );
  }
  const validate = schemaValidator('expectations.schema.json');
  if (!validate(data)) {
    const problems = describeAjvErrors(validate.errors).map((e) => `${target}#${e.pointer}: ${e.message}`);
    throw new KvmspecError(ErrorCode.ExpectationsInvalid, problems.join('\n'));
  }
  return { file: target, entries: (data as { entries: ExpectationEntry[] }).entries };
}

/** Marks each result against the expectations: matched entry, and whether the outcome was unexpected. */
export function applyExpectations(results: CaseResult[], expectations: Expectations): void {
  const compiled = expectations.entries.map((e) => ({ e, re: globToRegExp(e.id) }));
  for (const r of results) {
    const hit = compiled.find(({ re }) => re.test(r.id))?.e;
    if (hit) {
      const matched: MatchedExpectation = { pattern: hit.id, status: hit.status, reason: hit.reason };
      if (hit.link) matched.link = hit.link;
      r.expectation = matched;
    }
    const nonPass = r.status === 'fail' || r.status === 'error' || r.status === 'blocked';
    r.unexpected = hit ? r.status !== hit.status : nonPass;
  }
}
