import type { Handle } from '../../adapters/backend.ts';
import type { BackendProfile } from '../../adapters/backend.ts';
import type { KvmSession } from '../session.ts';
import type { RuleRef, SpecTree } from '../spec/tree.ts';
import type { Arch } from '../spec/types.ts';

/** Every case ends in exactly one of these; only `pass` counts as passed. */
export type Status = 'pass' | 'fail' | 'error' | 'skip' | 'not-applicable' | 'blocked';
export const STATUSES: readonly Status[] = ['pass', 'fail', 'error', 'skip', 'not-applicable', 'blocked'];

/** The file descriptors a fixture opened for a case. */
export interface Fds {
  system: Handle;
  vm?: Handle;
  vcpu?: Handle;
}

export interface CaseContext {
  kvm: KvmSession;
  spec: SpecTree;
  arch: Arch;
  revision: string;
  profile: BackendProfile;
  /** Whether the rule's capability is present on this backend (true when the rule names none). */
  capabilityPresent: boolean;
  /** This case's seed for anything random (property-based cases): recorded in its result, replayable. */
  seed: number;
  /** On replay, the fast-check path of the counterexample to re-run directly. */
  replayPath?: string;
  fixture(name: string): Promise<Fds>;
  /** Attaches a value to the case's result (a property-based seed, a probed host value). */
  note(key: string, value: string): void;
  notApplicable(reason: string): never;
  skip(reason: string): never;
}

export type CaseBody = (ctx: CaseContext) => Promise<void>;

/** What a generator yields: the parameters that name the case, and its body. */
export interface GeneratedCase {
  params: Record<string, string>;
  tags?: string[];
  run: CaseBody;
}

export interface GenerateContext {
  spec: SpecTree;
  arch: Arch;
  revision: string;
  ref: RuleRef;
}

/** Derives the cases of a rule from the spec; registered under the name the rule's `derive` gives. */
export type CaseGenerator = (g: GenerateContext) => Iterable<GeneratedCase>;

export type Fixture = (ctx: CaseContext) => Promise<Fds>;

/** What a family of suites contributes: generators by derive name, and named fixtures. */
export interface SuiteFamily {
  generators: Record<string, CaseGenerator>;
  fixtures?: Record<string, Fixture>;
}

export interface PlannedCase {
  id: string;
  api: string;
  rule: string;
  arch: Arch;
  params: Record<string, string>;
  tags: string[];
  /** The spec file that owns the rule (spec-relative), for JUnit classnames and reports. */
  file: string;
  ref: RuleRef;
  /** The revision the case runs in: the run's, where the case's document declares it, else upstream. */
  revision: string;
  timeoutMs?: number;
  run: CaseBody;
}

/** Thrown by ctx.notApplicable / ctx.skip; the engine turns it into the status. */
export class CaseVerdict extends Error {
  constructor(
    readonly status: 'skip' | 'not-applicable',
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'CaseVerdict';
  }
}
