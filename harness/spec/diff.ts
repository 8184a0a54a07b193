import { buildPlan, ruleInRevision } from '../plan/plan.ts';
import type { PlannedCase, SuiteFamily } from '../plan/types.ts';
import { archView } from '../render/c-header.ts';
import { compareVersions, hex } from './int.ts';
import { isNested } from './nested.ts';
import { leafFields, UPSTREAM, type RuleRef, type SpecTree } from './tree.ts';
import type { Arch, FieldDef, Rule, StructLayout } from './types.ts';

/** One side of a diff: a spec tree seen at one revision and, optionally, one kernel version. */
export interface SpecSide {
  label: string;
  spec: SpecTree;
  revision: string;
  /** Selects the struct layouts, ioctls and rules of that kernel version; the newest when absent. */
  kernel?: string;
}

export type ChangeKind = 'struct' | 'ioctl' | 'constant' | 'flag' | 'errno' | 'rule';

export interface Change {
  kind: ChangeKind;
  subject: string;
  arches: Arch[];
  details: string[];
  /** Test IDs, from the plans of both sides, whose cases exercise what changed. */
  affects: string[];
}

export interface SpecDiff {
  from: string;
  to: string;
  abi: Change[];
  rules: Change[];
}

/** What one side defines on one arch, with the kernel version applied. */
interface Snapshot {
  structs: Map<string, StructLayout>;
  ioctls: Map<string, bigint>;
  constants: Map<string, bigint>;
}

const atKernel = (side: SpecSide, since?: string, until?: string) =>
  !side.kernel ||
  ((!since || compareVersions(side.kernel, since) >= 0) &&
    (!until || compareVersions(side.kernel, until) < 0));

function snapshot(side: SpecSide, arch: Arch): Snapshot {
  if (!side.spec.arches.includes(arch))
    return { structs: new Map(), ioctls: new Map(), constants: new Map() };
  const view = archView(side.spec, arch, side.revision);
  const sel = { arch, revision: side.revision, ...(side.kernel ? { kernel: side.kernel } : {}) };
  const structs = new Map<string, StructLayout>();
  for (const { name } of view.structs) {
    try {
      structs.set(name, side.spec.layout(name, sel));
    } catch {
      // No layout of this struct exists at the selected kernel version.
    }
  }
  const ioctls = new Map<string, bigint>();
  for (const { name, doc } of view.ioctls) {
    if (!atKernel(side, doc.archSince?.[arch] ?? doc.since)) continue;
    const struct = doc.number.struct;
    if (struct && !structs.has(struct)) continue;
    ioctls.set(name, side.spec.ioctlNumber(name, arch, sel));
  }
  return { structs, ioctls, constants: new Map(view.constants.map((c) => [c.name, c.value])) };
}

/** Every scalar field with where it sits: "" at the top level, "union extra, member logical" inside a union. */
function placedFields(layout: StructLayout): Map<string, { field: FieldDef; place: string }> {
  const out = new Map<string, { field: FieldDef; place: string }>();
  for (const m of layout.fields) {
    if (isNested(m))
      for (const f of leafFields([m]))
        out.set(f.name, { field: f, place: `struct ${m.struct ?? '{…}'} ${m.name}` });
    else if (!('union' in m)) out.set(m.name, { field: m, place: '' });
    else
      for (const member of m.members)
        for (const field of member.fields)
          out.set(field.name, { field, place: `union ${m.union}, member ${member.name}` });
  }
  return out;
}

function describeField({ field, place }: { field: FieldDef; place: string }): string {
  const shape = field.flexible ? '[]' : field.count ? `[${field.count}]` : '';
  return `${field.type}${shape} @${field.offset}${place ? ` (${place})` : ''}`;
}

function structDetails(a: StructLayout | undefined, b: StructLayout | undefined): string[] {
  if (!a || !b) return [a ? 'removed' : 'added'];
  const details: string[] = [];
  if (a.size !== b.size) details.push(`size ${a.size} -> ${b.size}`);
  if (a.align !== b.align) details.push(`align ${a.align} -> ${b.align}`);
  const [fa, fb] = [placedFields(a), placedFields(b)];
  for (const [name, fieldA] of fa) {
    const fieldB = fb.get(name);
    if (!fieldB) details.push(`- ${name}: ${describeField(fieldA)}`);
    else if (describeField(fieldA) !== describeField(fieldB))
      details.push(`~ ${name}: ${describeField(fieldA)} -> ${describeField(fieldB)}`);
  }
  for (const [name, fieldB] of fb) if (!fa.has(name)) details.push(`+ ${name}: ${describeField(fieldB)}`);
  return details;
}

function valueDetails(a: bigint | undefined, b: bigint | undefined): string[] {
  if (a === b) return [];
  if (a === undefined) return [`added: ${hex(b!)}`];
  if (b === undefined) return [`removed (was ${hex(a)})`];
  return [`${hex(a)} -> ${hex(b)}`];
}

/** Errnos a rule can require: its outcome, its vectors', its capability's absent arm. */
function ruleErrnos(rule: Rule): string[] {
  const outcomes = [rule.expect, rule.capability?.absent, ...(rule.vectors ?? []).map((v) => v.expect)];
  return [
    ...new Set(outcomes.flatMap((o) => [...(o?.errno ? [o.errno] : []), ...(o?.errnoAnyOf ?? [])])),
  ].sort();
}

/**
 * The revision a document is seen in: a proposal revises only the documents that declare it; every other
 * document is seen as upstream, as struct layouts and constants are, so a proposal's view changes only
 * what the proposal touches.
 */
export function revisionFor(doc: RuleRef['doc'], revision: string): string {
  return (doc.revisions ?? []).some((r) => r.name === revision) ? revision : UPSTREAM;
}

function visibleRules(side: SpecSide): Map<string, RuleRef> {
  return new Map(
    side.spec
      .rules()
      .filter(
        (ref) =>
          ruleInRevision(ref, revisionFor(ref.doc, side.revision)) &&
          atKernel(side, ref.rule.since, ref.rule.until),
      )
      .map((ref) => [ref.rule.id, ref]),
  );
}

const sortedSet = <T>(xs: Iterable<T>) => [...new Set(xs)].sort();

function ruleDetails(a: RuleRef | undefined, b: RuleRef | undefined): string[] {
  if (!a || !b) return [`${a ? 'removed' : 'added'}: ${(a ?? b)!.rule.statement}`];
  const [ra, rb] = [a.rule, b.rule];
  const details: string[] = [];
  if (ra.statement !== rb.statement) details.push(`statement: ${ra.statement}`, `        -> ${rb.statement}`);
  const fields: [string, (r: Rule, ref: RuleRef) => unknown][] = [
    ['arches', (r, ref) => r.arches ?? ref.doc.arches],
    ['capability', (r) => r.capability],
    ['since', (r) => r.since],
    ['until', (r) => r.until],
    ['revisions', (r) => r.revisions],
    ['errnos', (r) => ruleErrnos(r)],
    ['expect', (r) => r.expect],
    ['derive', (r) => [r.derive, r.deriveArgs]],
    ['vectors', (r) => r.vectors],
  ];
  for (const [name, get] of fields) {
    const [va, vb] = [JSON.stringify(get(ra, a)), JSON.stringify(get(rb, b))];
    if (va !== vb) details.push(`${name}: ${va ?? 'none'} -> ${vb ?? 'none'}`);
  }
  return details;
}

/** Which rules touch a struct, an ioctl or a constant: by the ioctl they call or by naming it. */
function rulesTouching(sides: SpecSide[], kind: ChangeKind, subject: string): Set<string> {
  const ids = new Set<string>();
  const word = new RegExp(`\\b${subject}\\b`);
  for (const side of sides) {
    for (const { rule, doc } of side.spec.rules()) {
      const ioctls = new Set([doc.name, ...(rule.vectors ?? []).flatMap((v) => (v.ioctl ? [v.ioctl] : []))]);
      const touches =
        kind === 'struct'
          ? [...ioctls].some((n) => side.spec.ioctls.get(n)?.doc.number.struct === subject)
          : kind === 'ioctl'
            ? ioctls.has(subject)
            : word.test(JSON.stringify(rule));
      if (touches) ids.add(rule.id);
    }
  }
  return ids;
}

/** Groups equal changes found on several arches into one change naming all of them. */
function merge(changes: Change[]): Change[] {
  const byKey = new Map<string, Change>();
  for (const c of changes) {
    const key = JSON.stringify([c.kind, c.subject, c.details]);
    const seen = byKey.get(key);
    if (seen) seen.arches = sortedSet([...seen.arches, ...c.arches]);
    else byKey.set(key, { ...c, arches: [...c.arches] });
  }
  return [...byKey.values()];
}

function compareMaps<T>(
  kind: ChangeKind,
  arch: Arch,
  a: Map<string, T>,
  b: Map<string, T>,
  details: (x: T | undefined, y: T | undefined) => string[],
  kindOf: (name: string) => ChangeKind = () => kind,
): Change[] {
  const out: Change[] = [];
  for (const name of sortedSet([...a.keys(), ...b.keys()])) {
    const d = details(a.get(name), b.get(name));
    if (d.length > 0)
      out.push({ kind: kindOf(name), subject: name, arches: [arch], details: d, affects: [] });
  }
  return out;
}

/** Flags are the constants named *_F_* or *FLAG*: they change what a call accepts, not just a value. */
const constantKind = (name: string): ChangeKind => (/_F_|FLAG/.test(name) ? 'flag' : 'constant');

function errnoChanges(a: Map<string, RuleRef>, b: Map<string, RuleRef>): Change[] {
  const errnosOf = (rules: Map<string, RuleRef>) => {
    const byIoctl = new Map<string, { arches: Set<Arch>; errnos: Set<string> }>();
    for (const { doc, rule } of rules.values()) {
      const entry = byIoctl.get(doc.name) ?? { arches: new Set(doc.arches), errnos: new Set() };
      for (const e of ruleErrnos(rule)) entry.errnos.add(e);
      byIoctl.set(doc.name, entry);
    }
    return byIoctl;
  };
  const [ea, eb] = [errnosOf(a), errnosOf(b)];
  const out: Change[] = [];
  for (const name of sortedSet([...ea.keys(), ...eb.keys()])) {
    const [sa, sb] = [ea.get(name)?.errnos ?? new Set<string>(), eb.get(name)?.errnos ?? new Set<string>()];
    const details = [
      ...sortedSet([...sa].filter((e) => !sb.has(e))).map((e) => `- ${e}`),
      ...sortedSet([...sb].filter((e) => !sa.has(e))).map((e) => `+ ${e}`),
    ];
    const arches = sortedSet([...(ea.get(name)?.arches ?? []), ...(eb.get(name)?.arches ?? [])]);
    if (details.length > 0) out.push({ kind: 'errno', subject: name, arches, details, affects: [] });
  }
  return out;
}

/** Rules whose own errnos include one that changed for the ioctl. */
function rulesWithErrnos(sides: Map<string, RuleRef>[], ioctl: string, details: string[]): Set<string> {
  const changed = new Set(details.map((d) => d.slice(2)));
  const ids = new Set<string>();
  for (const rules of sides)
    for (const { doc, rule } of rules.values())
      if (doc.name === ioctl && ruleErrnos(rule).some((e) => changed.has(e))) ids.add(rule.id);
  return ids;
}

/**
 * The ABI changes (struct layouts, ioctl numbers, constants and flags, the errnos each ioctl's rules
 * require) and the rule changes from side a to side b, each naming the test IDs it affects.
 */
export function diffSpecs(a: SpecSide, b: SpecSide, families: SuiteFamily[]): SpecDiff {
  const arches = sortedSet([...a.spec.arches, ...b.spec.arches]);
  const plans = [a, b].map((s) =>
    buildPlan(s.spec, families, { arches: s.spec.arches, revision: s.revision }),
  );
  const casesOf = (rules: Set<string>, on: Arch[]) =>
    sortedSet(
      plans.flatMap((plan: PlannedCase[]) =>
        plan.filter((c) => rules.has(c.rule) && on.includes(c.arch)).map((c) => c.id),
      ),
    );

  const abi: Change[] = [];
  for (const arch of arches) {
    const [sa, sb] = [snapshot(a, arch), snapshot(b, arch)];
    abi.push(...compareMaps('struct', arch, sa.structs, sb.structs, structDetails));
    abi.push(...compareMaps('ioctl', arch, sa.ioctls, sb.ioctls, valueDetails));
    abi.push(...compareMaps('constant', arch, sa.constants, sb.constants, valueDetails, constantKind));
  }
  const [ra, rb] = [visibleRules(a), visibleRules(b)];
  const merged = merge(abi);
  for (const c of merged) c.affects = casesOf(rulesTouching([a, b], c.kind, c.subject), c.arches);
  const errnos = errnoChanges(ra, rb);
  for (const c of errnos) c.affects = casesOf(rulesWithErrnos([ra, rb], c.subject, c.details), c.arches);

  const rules: Change[] = [];
  for (const id of sortedSet([...ra.keys(), ...rb.keys()])) {
    const [refA, refB] = [ra.get(id), rb.get(id)];
    const details = ruleDetails(refA, refB);
    if (details.length === 0) continue;
    const ref = (refB ?? refA)!;
    const on = ref.rule.arches ?? ref.doc.arches;
    rules.push({
      kind: 'rule',
      subject: id,
      arches: sortedSet(on),
      details,
      affects: casesOf(new Set([id]), on),
    });
  }
  const order: ChangeKind[] = ['struct', 'ioctl', 'flag', 'constant', 'errno'];
  const abiSorted = [...merged, ...errnos].sort(
    (x, y) => order.indexOf(x.kind) - order.indexOf(y.kind) || x.subject.localeCompare(y.subject),
  );
  return { from: a.label, to: b.label, abi: abiSorted, rules };
}

function formatChange(c: Change): string[] {
  return [
    `  ${c.kind} ${c.subject} [${c.arches.join(', ')}]`,
    ...c.details.map((d) => `    ${d}`),
    `    affects ${c.affects.length} test ID${c.affects.length === 1 ? '' : 's'}${c.affects.length ? ':' : ''}`,
    ...c.affects.map((id) => `      ${id}`),
  ];
}

export function formatDiff(d: SpecDiff): string {
  const lines = [`spec diff: ${d.from} -> ${d.to}`, '', `ABI changes (${d.abi.length}):`];
  for (const c of d.abi) lines.push(...formatChange(c));
  lines.push('', `rule changes (${d.rules.length}):`);
  for (const c of d.rules) lines.push(...formatChange(c));
  return `${lines.join('\n')}\n`;
}
