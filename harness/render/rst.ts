import { proposalOnly } from '../abi/check/items.ts';
import { ruleInRevision } from '../plan/plan.ts';
import { revisionFor } from '../spec/diff.ts';
import { isNested, nestedLayout } from '../spec/nested.ts';
import { fieldBytes } from '../spec/sizes.ts';
import { UPSTREAM, type SpecTree } from '../spec/tree.ts';
import type {
  Arch,
  Erratum,
  FdKind,
  FieldDef,
  HypercallDoc,
  IoctlDoc,
  MemberDef,
  Rule,
  StructLayout,
} from '../spec/types.ts';

/** What to render: one revision, optionally one arch. Both renderers of spec pages share it. */
export interface SpecViewOptions {
  arch?: Arch;
  revision?: string;
}

const FD_TYPE: Record<FdKind, string> = { system: 'system ioctl', vm: 'vm ioctl', vcpu: 'vcpu ioctl' };

/** api.rst names architectures by kernel directory and says "all" when every one has the ioctl. */
function architectures(spec: SpecTree, arches: Arch[]): string {
  if (spec.arches.every((a) => arches.includes(a))) return 'all';
  return arches.map((a) => spec.archInfo(a).kernelArch).join(', ');
}

/** The field list under an api.rst heading, in api.rst's order. */
export function fieldList(spec: SpecTree, doc: IoctlDoc | HypercallDoc): [string, string][] {
  if (doc.kind === 'ioctl') {
    return [
      ['Capability', doc.capability?.name ?? 'basic'],
      ['Architectures', architectures(spec, doc.arches)],
      ['Type', doc.fds.map((fd) => FD_TYPE[fd]).join(', ')],
      ['Parameters', doc.parameters],
      ['Returns', doc.returns],
    ];
  }
  const args = (doc.arguments ?? []).map((a) => `${a.register} = ${a.name}`).join(', ');
  return [
    ['Function ID', doc.functionId],
    ['Architectures', architectures(spec, doc.arches)],
    ['Type', `hypercall (${doc.conduit ?? 'hvc'})`],
    ['Parameters', args || 'none'],
    ['Returns', doc.returns],
  ];
}

/** Sections sort numerically ("4.9" before "4.10"); documents without one come last, by name. */
export function bySection(a: IoctlDoc | HypercallDoc, b: IoctlDoc | HypercallDoc): number {
  const key = (d: IoctlDoc | HypercallDoc) =>
    d.kind === 'ioctl' && d.section ? d.section.split('.').map(Number) : [Infinity];
  const [ka, kb] = [key(a), key(b)];
  for (let i = 0; i < Math.max(ka.length, kb.length); i++) {
    const diff = (ka[i] ?? 0) - (kb[i] ?? 0);
    if (diff !== 0 && !Number.isNaN(diff)) return diff;
  }
  return a.name.localeCompare(b.name);
}

export function heading(doc: IoctlDoc | HypercallDoc): string {
  return doc.kind === 'ioctl' && doc.section ? `${doc.section} ${doc.name}` : doc.name;
}

/** The ioctls and hypercalls of a revision (and arch), each with the rules that hold there, in section order. */
export function ruledDocs(
  spec: SpecTree,
  options: SpecViewOptions,
): { doc: IoctlDoc | HypercallDoc; rules: Rule[] }[] {
  const revision = options.revision ?? UPSTREAM;
  const inView = (arches: Arch[]) => !options.arch || arches.includes(options.arch);
  const docs = [...spec.ioctls.values(), ...spec.hypercalls.values()]
    .map(({ doc }) => doc)
    .filter((doc) => inView(doc.arches))
    .filter((doc) => doc.kind !== 'ioctl' || [undefined, revision].includes(proposalOnly(spec, doc)))
    .sort(bySection);
  return docs.map((doc) => ({
    doc,
    rules: doc.rules.filter(
      (rule) =>
        inView(rule.arches ?? doc.arches) &&
        ruleInRevision({ rule, doc, file: '', pointer: '' }, revisionFor(doc, revision)),
    ),
  }));
}

/** The struct an ioctl takes, once per distinct layout across the arches in view, with the arches it holds on. */
export function structLayouts(
  spec: SpecTree,
  doc: IoctlDoc,
  options: SpecViewOptions,
): { name: string; layout: StructLayout; arches: Arch[] }[] {
  const name = doc.number.struct;
  if (!name) return [];
  const out: { name: string; layout: StructLayout; arches: Arch[] }[] = [];
  for (const arch of options.arch ? [options.arch] : doc.arches) {
    const layout = spec.layout(name, { arch, revision: options.revision ?? UPSTREAM });
    const seen = out.find((o) => o.layout === layout);
    if (seen) seen.arches.push(arch);
    else out.push({ name, layout, arches: [arch] });
  }
  return out;
}

function cField(f: FieldDef): string {
  const suffix = f.flexible ? '[]' : f.count ? `[${f.count}]` : '';
  const comment = f.doc ? `\t/* ${f.doc.replace(/\*\//g, '* /')} */` : '';
  return `__${f.type} ${f.name}${suffix};${comment}`;
}

/** Fields in the spec's (upstream's) order; bytes the spec leaves undescribed become a comment, not a name. */
function cBody(fields: FieldDef[], start: number, indent: string): string[] {
  const lines: string[] = [];
  let at = start;
  for (const f of fields) {
    if (f.offset > at) lines.push(`${indent}/* ${f.offset - at} bytes of padding */`);
    lines.push(`${indent}${cField(f)}`);
    at = Math.max(at, f.offset + fieldBytes(f));
  }
  return lines;
}

function cMembers(members: MemberDef[], size: number): string[] {
  const lines: string[] = [];
  let at = 0;
  for (const m of members) {
    if (isNested(m)) {
      if (m.offset > at) lines.push(`\t/* ${m.offset - at} bytes of padding */`);
      if (m.struct !== undefined) lines.push(`\tstruct ${m.struct} ${m.name};`);
      else lines.push('\tstruct {', ...cBody(m.fields, 0, '\t\t'), `\t} ${m.name};`);
      at = m.offset + nestedLayout(m).size;
      continue;
    }
    if (!('union' in m)) {
      lines.push(...cBody([m], at, '\t'));
      at = Math.max(at, m.offset + fieldBytes(m));
      continue;
    }
    if (m.offset > at) lines.push(`\t/* ${m.offset - at} bytes of padding */`);
    lines.push(`\tunion {\t/* ${m.union} */`);
    for (const member of m.members) {
      const only = member.fields.length === 1 ? member.fields[0] : undefined;
      if (only && only.offset === m.offset) lines.push(...cBody([only], m.offset, '\t\t'));
      else lines.push('\t\tstruct {', ...cBody(member.fields, m.offset, '\t\t\t'), `\t\t} ${member.name};`);
    }
    lines.push('\t};');
    at = m.offset + m.size;
  }
  if (size > at) lines.push(`\t/* ${size - at} bytes of padding */`);
  return lines;
}

/** A struct in C as api.rst shows it: __u64-style types, unions inline, upstream's member order. */
export function cStruct(name: string, layout: StructLayout): string[] {
  return [`struct ${name} {`, ...cMembers(layout.fields, layout.size), '};'];
}

/** A rule's conditions in words: where and when it holds. */
export function ruleQualifiers(rule: Rule): string[] {
  const q: string[] = [];
  if (rule.arches) q.push(`arches: ${rule.arches.join(', ')}`);
  if (rule.capability)
    q.push(
      `needs ${rule.capability.name}${rule.capability.bit !== undefined ? ` bit ${rule.capability.bit}` : ''}`,
    );
  if (rule.since) q.push(`since ${rule.since}`);
  if (rule.until) q.push(`until ${rule.until}`);
  if (rule.revisions) q.push(`revisions: ${rule.revisions.join(', ')}`);
  return q;
}

/** Errata of an ioctl or hypercall and of the struct it takes. */
export function errataOf(spec: SpecTree, doc: IoctlDoc | HypercallDoc): Erratum[] {
  const struct = doc.kind === 'ioctl' && doc.number.struct ? spec.structs.get(doc.number.struct) : undefined;
  return [...(doc.errata ?? []), ...(struct?.doc.errata ?? [])];
}

/** Keeps prose literal: inline markup characters and trailing-underscore references are escaped. */
function rstText(text: string): string {
  return text.replace(/[\\*`|]/g, (c) => `\\${c}`).replace(/_(?=$|[\s.,;:)])/g, '\\_');
}

function rstSection(spec: SpecTree, doc: IoctlDoc | HypercallDoc, rules: Rule[], options: SpecViewOptions) {
  const title = heading(doc);
  const lines = [title, '-'.repeat(title.length), ''];
  for (const [label, value] of fieldList(spec, doc)) lines.push(`:${label}: ${rstText(value)}`);
  lines.push('', rstText(doc.summary), '');
  if (doc.kind === 'ioctl') {
    for (const { name, layout, arches } of structLayouts(spec, doc, options)) {
      const where = arches.length === doc.arches.length ? [] : [`/* layout on ${arches.join(', ')} */`];
      lines.push('::', '', ...[...where, ...cStruct(name, layout)].map((l) => `  ${l}`), '');
    }
  }
  if (rules.length > 0) lines.push('Rules:', '');
  for (const rule of rules) {
    const q = ruleQualifiers(rule);
    lines.push(
      `- \`\`${rule.id}\`\`: ${rstText(rule.statement)}${q.length ? ` (${rstText(q.join('; '))})` : ''}`,
    );
  }
  const errata = errataOf(spec, doc);
  if (errata.length > 0) lines.push('', 'Errata:', '');
  for (const e of errata) {
    lines.push(
      `- \`\`${e.id}\`\`: ${rstText(e.statement)}`,
      `  Reading: ${rstText(e.reading)} Why: ${rstText(e.why)}`,
    );
  }
  lines.push('', '');
  return lines;
}

/**
 * The spec as api.rst sections: numbered heading, the field list in api.rst's order, the struct in C,
 * then every rule as prose with its ID and the errata, so a section can go into a kernel patch as is.
 */
export function renderRst(spec: SpecTree, options: SpecViewOptions = {}): string {
  const revision = options.revision ?? UPSTREAM;
  const lines = [
    `.. Generated by kvmspec from spec/ (revision ${revision}${options.arch ? `, ${options.arch}` : ''}).`,
    '',
  ];
  for (const { doc, rules } of ruledDocs(spec, options)) lines.push(...rstSection(spec, doc, rules, options));
  return `${lines.join('\n').trimEnd()}\n`;
}
