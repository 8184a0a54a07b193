import type { SpecProblem } from '../errors.ts';
import { isNested, linkNested, nestedLayout } from './nested.ts';
import { fieldBytes, scalarBytes } from './sizes.ts';
import { fieldIndex, leafFields } from './tree.ts';
import type { FieldDef, HypercallDoc, IoctlDoc, Located, MemberDef, SpecDoc, StructDoc } from './types.ts';

/** Cross-file checks that JSON Schema cannot express. `display` turns a spec-relative path into what users see. */
export function checkSemantics(docs: Located<SpecDoc>[], display: (file: string) => string): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const report = (file: string, pointer: string, message: string) =>
    problems.push({ file: display(file), pointer, message });

  const arches = docs.filter((d) => d.doc.kind === 'arches');
  if (arches.length !== 1)
    report(arches[1]?.file ?? '.', '', `expected exactly one arches document, found ${arches.length}`);

  const byKindName = new Map<string, string>();
  for (const { file, doc } of docs) {
    if (doc.kind === 'arches' || doc.kind === 'registers') continue;
    const key = `${doc.kind}:${doc.name}`;
    const other = byKindName.get(key);
    if (other) report(file, '/name', `${doc.kind} ${doc.name} is already defined in ${display(other)}`);
    else byKindName.set(key, file);
  }

  const structs = new Map<string, StructDoc>();
  const ioctls = new Map<string, IoctlDoc>();
  const constants = new Set<string>();
  for (const { doc } of docs) {
    if (doc.kind === 'struct') structs.set(doc.name, doc);
    if (doc.kind === 'ioctl') ioctls.set(doc.name, doc);
    if (doc.kind === 'constants')
      for (const c of doc.constants) for (const n of [c.name, ...(c.aliases ?? [])]) constants.add(n);
  }

  const unlinked = linkNested(docs);
  for (const p of unlinked) report(p.file, p.pointer, p.message);
  const ruleIds = new Map<string, string>();
  for (const { file, doc } of docs) {
    // While a nested member does not link (or a struct contains itself), no nesting struct has fields to check.
    const nests = doc.kind === 'struct' && doc.layouts.some((l) => l.fields.some(isNested));
    if (doc.kind === 'struct' && !(nests && unlinked.length > 0)) checkStruct(doc, file, report);
    if (doc.kind === 'ioctl' || doc.kind === 'hypercall') {
      checkRuled(doc, file, report, { structs, ioctls, constants });
      doc.rules.forEach((rule, i) => {
        const other = ruleIds.get(rule.id);
        if (other)
          report(file, `/rules/${i}/id`, `duplicate rule ID ${rule.id} (first in ${display(other)})`);
        else ruleIds.set(rule.id, file);
      });
    }
  }
  return problems;
}

type Report = (file: string, pointer: string, message: string) => void;

function checkStruct(doc: StructDoc, file: string, report: Report): void {
  doc.layouts.forEach((layout, li) => {
    const base = `/layouts/${li}`;
    const keys = new Set<string>();
    const occupied: { start: number; end: number; name: string }[] = [];
    const claim = (start: number, end: number, name: string, pointer: string) => {
      const clash = occupied.find((o) => start < o.end && o.start < end);
      if (clash)
        report(
          file,
          pointer,
          `${name} (bytes ${start}..${end - 1}) overlaps ${clash.name} (bytes ${clash.start}..${clash.end - 1})`,
        );
      occupied.push({ start, end, name });
    };
    // Names: every key leafFields gives must be new (a union member's field may share a name taken outside
    // its member, and is keyed member.field), and no member may name two fields alike.
    const memberFields = new Set<string>();
    for (const f of leafFields(layout.fields)) {
      const inMember = f.union && `${f.union.name}/${f.union.member}/${f.name}`;
      if (keys.has(f.key) || (inMember !== undefined && memberFields.has(inMember)))
        report(file, `${base}${f.jsonPointer}/name`, `field name ${f.name} is used twice`);
      keys.add(f.key);
      if (inMember !== undefined) memberFields.add(inMember);
    }
    const checkField = (f: FieldDef, pointer: string, limit: { start: number; end: number }) => {
      const size = fieldBytes(f);
      if (f.offset % scalarBytes(f.type) !== 0)
        report(
          file,
          `${pointer}/offset`,
          `offset ${f.offset} is not aligned to ${f.type} (${scalarBytes(f.type)} bytes)`,
        );
      if (f.offset < limit.start || f.offset + size > limit.end)
        report(
          file,
          pointer,
          `${f.name} (bytes ${f.offset}..${f.offset + size - 1}) lies outside ${limit.start}..${limit.end - 1}`,
        );
      if (f.flexible && f.offset !== layout.size)
        report(
          file,
          `${pointer}/offset`,
          `flexible array ${f.name} must start at the struct's end (${layout.size})`,
        );
    };
    layout.fields.forEach((m: MemberDef, fi) => {
      const pointer = `${base}/fields/${fi}`;
      if (isNested(m)) {
        const inner = nestedLayout(m);
        claim(m.offset, m.offset + inner.size, m.name, pointer);
        if (m.offset % inner.align !== 0)
          report(
            file,
            `${pointer}/offset`,
            `offset ${m.offset} is not aligned to struct ${m.struct ?? m.name} (${inner.align})`,
          );
        if (m.offset + inner.size > layout.size)
          report(
            file,
            pointer,
            `${m.name} (struct ${m.struct ?? '{…}'}, ${inner.size} bytes) ends beyond the struct size ${layout.size}`,
          );
      } else if ('union' in m) {
        claim(m.offset, m.offset + m.size, `union ${m.union}`, pointer);
        if (m.offset + m.size > layout.size)
          report(file, pointer, `union ${m.union} ends beyond the struct size ${layout.size}`);
        m.members.forEach((member, mi) => {
          const inner: { start: number; end: number; name: string }[] = [];
          member.fields.forEach((f, ffi) => {
            const fp = `${pointer}/members/${mi}/fields/${ffi}`;
            checkField(f, fp, { start: m.offset, end: m.offset + m.size });
            const end = f.offset + fieldBytes(f);
            const clash = inner.find((o) => f.offset < o.end && o.start < end);
            if (clash)
              report(file, fp, `${f.name} overlaps ${clash.name} within union member ${member.name}`);
            inner.push({ start: f.offset, end, name: f.name });
          });
        });
      } else {
        checkField(m, pointer, { start: 0, end: m.flexible ? m.offset : layout.size });
        if (!m.flexible) claim(m.offset, m.offset + fieldBytes(m), m.name, pointer);
      }
    });
    const maxAlign = Math.max(...fieldIndex(layout).list.map((f) => scalarBytes(f.type)));
    if (layout.align < maxAlign)
      report(file, `${base}/align`, `align ${layout.align} is below the widest field (${maxAlign})`);
    if (layout.size % layout.align !== 0)
      report(file, `${base}/size`, `size ${layout.size} is not a multiple of align ${layout.align}`);
  });
}

function checkRuled(
  doc: IoctlDoc | HypercallDoc,
  file: string,
  report: Report,
  known: { structs: Map<string, StructDoc>; ioctls: Map<string, IoctlDoc>; constants: Set<string> },
): void {
  const revisions = new Set(['upstream', ...(doc.revisions ?? []).map((r) => r.name)]);
  if (doc.kind === 'ioctl') {
    if (doc.number.struct && !known.structs.has(doc.number.struct))
      report(file, '/number/struct', `no struct named ${doc.number.struct} in the spec`);
    if (doc.capability && !known.constants.has(doc.capability.name))
      report(file, '/capability/name', `no constant named ${doc.capability.name} in the spec`);
  }
  doc.rules.forEach((rule, ri) => {
    const rp = `/rules/${ri}`;
    for (const arch of rule.arches ?? []) {
      if (!doc.arches.includes(arch))
        report(file, `${rp}/arches`, `${arch} is not one of the document's arches`);
    }
    (rule.revisions ?? []).forEach((rev, i) => {
      if (!revisions.has(rev))
        report(file, `${rp}/revisions/${i}`, `revision ${rev} is not declared in /revisions`);
    });
    if (rule.capability && !known.constants.has(rule.capability.name))
      report(file, `${rp}/capability/name`, `no constant named ${rule.capability.name} in the spec`);
    rule.vectors?.forEach((v, vi) => {
      const vp = `${rp}/vectors/${vi}`;
      const ioctlName = v.ioctl ?? (doc.kind === 'ioctl' ? doc.name : undefined);
      const target = ioctlName ? known.ioctls.get(ioctlName) : undefined;
      if (!target) {
        report(file, `${vp}/ioctl`, `no ioctl named ${String(ioctlName)} in the spec`);
        return;
      }
      for (const arch of v.arches ?? []) {
        if (!(rule.arches ?? doc.arches).includes(arch))
          report(file, `${vp}/arches`, `${arch} is outside the rule's arches`);
      }
      const structName = target.number.struct;
      if (v.arg?.struct) {
        const layout = structName ? known.structs.get(structName)?.layouts[0] : undefined;
        if (!layout) {
          report(file, `${vp}/arg/struct`, `${target.name} takes no struct`);
          return;
        }
        const names = fieldIndex(layout).byKey;
        for (const key of Object.keys(v.arg.struct)) {
          if (!names.has(key))
            report(file, `${vp}/arg/struct/${key}`, `struct ${structName} has no field ${key}`);
        }
      }
    });
  });
}
