import { AssertionError } from 'chai';
import { BackendError, BackendSkip, type Backend } from '../../adapters/backend.ts';
import { KvmSession, SetupError } from '../session.ts';
import { compareVersions } from '../spec/int.ts';
import type { RuleRef, SpecTree } from '../spec/tree.ts';
import type { Arch } from '../spec/types.ts';
import {
  CaseVerdict,
  type CaseContext,
  type Fds,
  type Fixture,
  type PlannedCase,
  type Status,
} from '../plan/types.ts';
import { identityOf, type CaseResult } from './results.ts';

/** Gives cases their backend (one per arch, created on first use) and caches capability probes. */
export interface BackendProvider {
  backend(arch: Arch): Promise<Backend>;
}

export interface ExecuteOptions {
  spec: SpecTree;
  provider: BackendProvider;
  fixtures: Record<string, Fixture>;
  /** The run's seed; each case's seed is derived from it and the case ID. */
  seed: number;
  /** Replaying a bundle: the property path to re-run, for the case being replayed. */
  replayPath?: string;
  /**
   * Whether a finished case's trace is rendered into its result (default: always). Rendering is the hex
   * of every byte the case exchanged, so a run that keeps only failing traces says so here.
   */
  keepTrace?: (result: CaseResult) => boolean;
}

/** A case's seed: a 31-bit hash of the run seed and the ID, so one case's seed never depends on others. */
export function caseSeed(runSeed: number, id: string): number {
  let h = (0x811c9dc5 ^ runSeed) >>> 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return h & 0x7fffffff;
}

/** The backend could not be created: every case of that arch is an error with this cause. */
export class BackendUnusableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendUnusableError';
  }
}

const capabilityCache = new WeakMap<Backend, Map<string, boolean>>();

/** Probes a rule's capability with KVM_CHECK_EXTENSION on a fresh system fd; a bit, if named, must be set. */
async function capabilityPresent(
  ref: RuleRef,
  backend: Backend,
  spec: SpecTree,
  arch: Arch,
  revision: string,
): Promise<boolean> {
  const cap = ref.rule.capability;
  if (!cap) return true;
  const key = `${cap.name}/${cap.bit ?? ''}`;
  const cache = capabilityCache.get(backend) ?? new Map<string, boolean>();
  capabilityCache.set(backend, cache);
  const known = cache.get(key);
  if (known !== undefined) return known;
  const probe = new KvmSession(backend, spec, arch, revision);
  try {
    const system = await probe.openSystem();
    const r = await probe.call(system, 'KVM_CHECK_EXTENSION', spec.constant(cap.name, arch));
    const present =
      r.errno === null && r.ret > 0n && (cap.bit === undefined || (r.ret & (1n << BigInt(cap.bit))) !== 0n);
    cache.set(key, present);
    return present;
  } finally {
    await probe.release();
  }
}

function asText(v: unknown): string {
  return typeof v === 'string'
    ? v
    : JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x));
}

function classify(err: unknown): { status: Status; message: string; expected?: string; actual?: string } {
  if (err instanceof CaseVerdict) return { status: err.status, message: err.reason };
  if (err instanceof BackendSkip) return { status: 'skip', message: err.message };
  if (err instanceof SetupError) return { status: 'blocked', message: `setup failed: ${err.message}` };
  if (err instanceof BackendUnusableError) return { status: 'error', message: err.message };
  if (err instanceof BackendError) return { status: 'error', message: `backend error: ${err.message}` };
  if (err instanceof AssertionError) {
    const e = err as Error & { expected?: unknown; actual?: unknown };
    return {
      status: 'fail',
      message: err.message,
      ...(e.expected !== undefined ? { expected: asText(e.expected) } : {}),
      ...(e.actual !== undefined ? { actual: asText(e.actual) } : {}),
    };
  }
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return { status: 'error', message: `harness error: ${message}` };
}

/** Runs one planned case to its result. Never throws: every way a case can end is a status. */
export async function executeCase(c: PlannedCase, options: ExecuteOptions): Promise<CaseResult> {
  const started = performance.now();
  const notes: Record<string, string> = {};
  const seed = caseSeed(options.seed, c.id);
  let session: KvmSession | undefined;
  let outcome: ReturnType<typeof classify> = { status: 'pass', message: '' };
  try {
    const backend = await options.provider.backend(c.arch);
    const { profile } = backend;
    const since = c.ref.rule.since;
    if (since && /^\d+\.\d+$/.test(profile.version) && compareVersions(profile.version, since) < 0) {
      throw new CaseVerdict('not-applicable', `rule since Linux ${since}; the backend is ${profile.version}`);
    }
    session = new KvmSession(backend, options.spec, c.arch, c.revision);
    const present = await capabilityPresent(c.ref, backend, options.spec, c.arch, c.revision);
    const opened = new Map<string, Promise<Fds>>();
    const kvm = session;
    const ctx: CaseContext = {
      kvm,
      spec: options.spec,
      arch: c.arch,
      revision: c.revision,
      profile,
      capabilityPresent: present,
      seed,
      ...(options.replayPath !== undefined ? { replayPath: options.replayPath } : {}),
      fixture: (name) => {
        const known = opened.get(name);
        if (known) return known;
        const fixture = options.fixtures[name];
        if (!fixture) throw new Error(`no fixture named '${name}' in suites/`);
        const made = fixture(ctx);
        opened.set(name, made);
        return made;
      },
      note: (key, value) => {
        notes[key] = value;
      },
      notApplicable: (reason) => {
        throw new CaseVerdict('not-applicable', reason);
      },
      skip: (reason) => {
        throw new CaseVerdict('skip', reason);
      },
    };
    await c.run(ctx);
  } catch (err) {
    outcome = classify(err);
  } finally {
    try {
      await session?.release();
    } catch (err) {
      if (outcome.status === 'pass') outcome = classify(err);
    }
  }
  const result: CaseResult = {
    ...identityOf(c),
    status: outcome.status,
    durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    ...(outcome.message ? { message: outcome.message } : {}),
    ...(outcome.expected !== undefined ? { expected: outcome.expected } : {}),
    ...(outcome.actual !== undefined ? { actual: outcome.actual } : {}),
    seed,
    notes,
    unexpected: false,
  };
  if (options.keepTrace?.(result) ?? true) result.trace = session?.trace() ?? [];
  return result;
}
