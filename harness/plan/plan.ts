import { ErrorCode, KvmspecError } from '../errors.ts';
import type { RuleRef, SpecTree } from '../spec/tree.ts';
import type { Arch } from '../spec/types.ts';
import type { CaseGenerator, GeneratedCase, PlannedCase, SuiteFamily } from './types.ts';
import { vectorBody } from './vectors.ts';

const ID_PART = /^[A-Za-z0-9_.+=,:-]+$/;

export interface PlanOptions {
  arches: Arch[];
  revision: string;
}

/** Test ID: `<API>/<rule>/<arch>[/<k=v,...>]`, parameters in the order the generator gives them. */
export function caseId(api: string, rule: string, arch: Arch, params: Record<string, string>): string {
  const tail = Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return [api, rule, arch, ...(tail ? [tail] : [])].join('/');
}

/**
 * A rule applies to a revision unless it lists revisions and that one is not among them. A revision
 * belongs to the documents that declare it: for every other document the run is upstream, so selecting
 * one proposal never drops the upstream rules of unrelated APIs.
 */
export function ruleInRevision(ref: RuleRef, revision: string): boolean {
  return !ref.rule.revisions || ref.rule.revisions.includes(effectiveRevision(ref, revision));
}

/** The revision a document runs in: the selected one if the document declares it, else upstream. */
export function effectiveRevision(ref: RuleRef, revision: string): string {
  return (ref.doc.revisions ?? []).some((r) => r.name === revision) ? revision : 'upstream';
}

/** The API a rule's test IDs name: its own where it says, else its document's. */
export const apiOf = (ref: RuleRef): string => ref.rule.api ?? ref.doc.api;

function ruleArches(ref: RuleRef): Arch[] {
  return ref.rule.arches ?? ref.doc.arches;
}

function* casesOfRule(
  ref: RuleRef,
  arch: Arch,
  spec: SpecTree,
  revision: string,
  generators: Record<string, CaseGenerator>,
): Generator<GeneratedCase> {
  for (const v of ref.rule.vectors ?? []) {
    if (v.arches && !v.arches.includes(arch)) continue;
    yield { params: v.params, tags: ['vector'], run: vectorBody(ref, v) };
  }
  if (ref.rule.derive) {
    const gen = generators[ref.rule.derive];
    if (!gen) {
      throw new KvmspecError(
        ErrorCode.PlanInvalid,
        `${ref.file}#${ref.pointer}/derive: no case generator named '${ref.rule.derive}' in suites/`,
      );
    }
    yield* gen({ spec, arch, revision, ref });
  }
}

/**
 * The plan: every case the spec yields for the arches and revision, in spec order. IDs are checked
 * here — ASCII, well-formed and unique — so a duplicate is a plan error, never a silently merged result.
 */
export function buildPlan(spec: SpecTree, families: SuiteFamily[], options: PlanOptions): PlannedCase[] {
  const generators = Object.assign({}, ...families.map((f) => f.generators)) as Record<string, CaseGenerator>;
  const plan: PlannedCase[] = [];
  const seen = new Map<string, string>();
  for (const ref of spec.rules()) {
    if (!ruleInRevision(ref, options.revision)) continue;
    for (const arch of options.arches) {
      if (!ruleArches(ref).includes(arch)) continue;
      const revision = effectiveRevision(ref, options.revision);
      for (const c of casesOfRule(ref, arch, spec, revision, generators)) {
        for (const [k, v] of Object.entries(c.params)) {
          if (!ID_PART.test(k) || !ID_PART.test(v) || k.includes('=') || v.includes(',')) {
            throw new KvmspecError(
              ErrorCode.PlanInvalid,
              `${ref.rule.id}: parameter ${k}=${v} is not a stable ASCII ID part`,
            );
          }
        }
        const api = apiOf(ref);
        const id = caseId(api, ref.rule.id, arch, c.params);
        const other = seen.get(id);
        if (other !== undefined) {
          throw new KvmspecError(
            ErrorCode.PlanInvalid,
            `duplicate test ID ${id} (from ${ref.file} and ${other})`,
          );
        }
        seen.set(id, ref.file);
        plan.push({
          id,
          api,
          rule: ref.rule.id,
          arch,
          params: c.params,
          tags: [...(ref.rule.tags ?? []), ...(c.tags ?? [])],
          file: ref.file,
          ref,
          revision,
          ...(ref.rule.timeoutMs !== undefined ? { timeoutMs: ref.rule.timeoutMs } : {}),
          run: c.run,
        });
      }
    }
  }
  return plan;
}

/** Rules that yield no case on any arch in any revision they belong to. */
export function uncoveredRules(spec: SpecTree, families: SuiteFamily[]): RuleRef[] {
  const revisions = new Set(['upstream']);
  for (const ref of spec.rules()) for (const r of ref.rule.revisions ?? []) revisions.add(r);
  const covered = new Set<string>();
  for (const revision of revisions) {
    for (const c of buildPlan(spec, families, { arches: spec.arches, revision })) covered.add(c.rule);
  }
  return spec.rules().filter((ref) => !covered.has(ref.rule.id));
}
