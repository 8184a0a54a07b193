import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { BackendProfile } from '../../adapters/backend.ts';
import { ErrorCode, KvmspecError } from '../errors.ts';
import { globToRegExp } from '../glob.ts';
import { defaultExpectationsDir } from '../paths.ts';
import type { Status } from '../plan/types.ts';
import { compareVersions } from '../spec/int.ts';
import { describeAjvErrors, schemaValidator } from '../spec/schemas.ts';
import type { Arch } from '../spec/types.ts';
import type { CaseResult, MatchedExpectation } from './results.ts';

export interface ExpectationCondition {
  arch?: Arch[];
  revision?: string[];
  backendVersion?: string;
  capability?: string;
}

export interface ExpectationEntry {
  /** A test ID, or a glob over IDs where `*` matches within one ID part and `**` across parts. */
  id: string;
  status: Exclude<Status, 'pass'>;
  reason: string;
  link?: string;
  /** YYYY-MM-DD: after this day the entry excuses nothing and fails the run. */
  expires?: string;
  when?: ExpectationCondition;
}

export interface Expectations {
  file?: string;
  backend?: string;
  entries: ExpectationEntry[];
}

/** What applying expectations found beyond per-case verdicts. */
export interface ExpectationReport {
  file?: string;
  /** Entries past their expiry date: each fails the gate until renewed or removed. */
  expired: ExpectationEntry[];
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
  return { file: target, ...(data as Omit<Expectations, 'file'>) };
}

function versionHolds(condition: string, version: string): boolean {
  const m = /^(>=|<=|>|<|=)?(.+)$/.exec(condition);
  if (!m || !/^\d+\.\d+$/.test(version)) return false;
  const c = compareVersions(version, m[2] ?? '');
  switch (m[1] ?? '=') {
    case '>=':
      return c >= 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    case '<':
      return c < 0;
    default:
      return c === 0;
  }
}

/** Whether an entry's `when` holds for a case of this run. */
export function conditionHolds(
  when: ExpectationCondition | undefined,
  arch: Arch,
  revision: string,
  profile: BackendProfile | undefined,
): boolean {
  if (!when) return true;
  if (when.arch && !when.arch.includes(arch)) return false;
  if (when.revision && !when.revision.includes(revision)) return false;
  if (when.backendVersion && !(profile && versionHolds(when.backendVersion, profile.version))) return false;
  if (when.capability && !(profile?.capabilities?.[when.capability] ?? 0)) return false;
  return true;
}

/** Today as YYYY-MM-DD in UTC, the form `expires` is written in. */
export function today(now = new Date()): string {
  return now.toISOString().slice(0, 10);
}

/**
 * Marks each result against the expectations: the entry that matched (first one whose glob and
 * conditions hold and which has not expired), and whether the outcome was unexpected. Expired entries
 * are returned so the gate can fail on them.
 */
export function applyExpectations(
  results: CaseResult[],
  expectations: Expectations,
  context: { revision: string; profiles: Map<Arch, BackendProfile>; now?: Date },
): ExpectationReport {
  const day = today(context.now);
  const expired = expectations.entries.filter((e) => e.expires !== undefined && e.expires < day);
  const live = expectations.entries
    .filter((e) => !expired.includes(e))
    .map((e) => ({ e, re: globToRegExp(e.id) }));
  for (const r of results) {
    const profile = context.profiles.get(r.arch);
    const hit = live.find(
      ({ e, re }) => re.test(r.id) && conditionHolds(e.when, r.arch, context.revision, profile),
    )?.e;
    if (hit) {
      const matched: MatchedExpectation = { pattern: hit.id, status: hit.status, reason: hit.reason };
      if (hit.link) matched.link = hit.link;
      r.expectation = matched;
    }
    const nonPass = r.status === 'fail' || r.status === 'error' || r.status === 'blocked';
    r.unexpected = hit ? r.status !== hit.status : nonPass;
  }
  return { ...(expectations.file ? { file: expectations.file } : {}), expired };
}

/**
 * The expectations file a run proposes: one entry per case that did not pass or skip, keeping the
 * reason (and link, expiry, conditions) of the entry that matched it before; entries that now match
 * nothing but passes are dropped.
 */
export function proposeExpectations(
  results: CaseResult[],
  previous: Expectations,
  backend: string,
): Expectations {
  const byPattern = new Map(previous.entries.map((e) => [e.id, e]));
  const entries: ExpectationEntry[] = [];
  const kept = new Set<string>();
  for (const r of results) {
    if (r.status === 'pass' || r.status === 'skip' || r.status === 'not-applicable') continue;
    const old = r.expectation ? byPattern.get(r.expectation.pattern) : undefined;
    if (old && old.status === r.status) {
      if (!kept.has(old.id)) entries.push(old);
      kept.add(old.id);
      continue;
    }
    const firstLine = (r.message ?? '').split('\n')[0] ?? '';
    entries.push({
      id: r.id,
      status: r.status,
      reason: `unexplained ${r.status}, to be investigated: ${firstLine}`.slice(0, 300),
    });
  }
  return { backend, entries };
}
