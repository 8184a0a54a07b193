// Nested struct members (kvm_sregs holds eight kvm_segment and two kvm_dtable): each is linked to the layout
// it stands for once the documents are loaded, so that leafFields can spell its fields out as `member.field`.
import type { SpecProblem } from '../errors.ts';
import { fieldBytes, scalarBytes } from './sizes.ts';
import {
  UPSTREAM,
  type FieldDef,
  type Located,
  type MemberDef,
  type NestedDef,
  type SpecDoc,
  type StructDoc,
  type StructLayout,
} from './types.ts';

const linked = new WeakMap<NestedDef, StructLayout>();

/** Tells a nested member from a scalar field (which has a type) and a union (which has members). */
export const isNested = (m: MemberDef): m is NestedDef => !('union' in m) && !('type' in m);

/** An anonymous struct's layout: the outer layout's revision and arches, aligned to its widest field. */
function inlineLayout(
  m: NestedDef & { fields: FieldDef[]; size: number },
  outer: StructLayout,
): StructLayout {
  const align = Math.max(...m.fields.map((f) => scalarBytes(f.type)));
  return {
    revision: outer.revision,
    ...(outer.arches ? { arches: outer.arches } : {}),
    size: m.size,
    align,
    fields: m.fields,
  };
}

/** What is wrong with an anonymous struct's fields, if anything: one outside its size, or two overlapping. */
function inlineProblem(
  m: NestedDef & { fields: FieldDef[]; size: number },
): { pointer: string; message: string } | undefined {
  const taken: { start: number; end: number; name: string }[] = [];
  for (const [i, f] of m.fields.entries()) {
    const end = f.offset + fieldBytes(f);
    if (f.flexible || end > m.size)
      return {
        pointer: `/fields/${i}`,
        message: `${f.name} (bytes ${f.offset}..${end - 1}) lies outside struct ${m.name} (${m.size} bytes)`,
      };
    const clash = taken.find((t) => f.offset < t.end && t.start < end);
    if (clash)
      return { pointer: `/fields/${i}`, message: `${f.name} overlaps ${clash.name} in struct ${m.name}` };
    taken.push({ start: f.offset, end, name: f.name });
  }
  return undefined;
}

/** The layout a nested member stands for, once linkNested has run over its documents (loadSpec and SpecTree run it). */
export function nestedLayout(m: NestedDef): StructLayout {
  const layout = linked.get(m);
  if (!layout) throw new Error(`nested member ${m.name} (struct ${m.struct}) is not linked to a layout`);
  return layout;
}

/**
 * The inner struct's layout for an outer one: of the outer's revision (else upstream's), present on every
 * arch the outer layout names, the newest if several.
 */
function innerLayout(inner: StructDoc, outer: StructLayout): StructLayout | undefined {
  const onArches = inner.layouts.filter(
    (l) => !l.arches || (outer.arches !== undefined && outer.arches.every((a) => l.arches!.includes(a))),
  );
  const own = onArches.filter((l) => l.revision === outer.revision);
  const candidates = own.length > 0 ? own : onArches.filter((l) => l.revision === UPSTREAM);
  return candidates.find((l) => !l.until) ?? candidates[candidates.length - 1];
}

/**
 * Links every nested member of the documents to its layout, and returns what does not resolve: a struct
 * that is not in the spec or has no fitting layout, one that holds a union or flexible array (its fields
 * could not be named by a plain path), or a struct that contains itself.
 */
export function linkNested(docs: readonly Located<SpecDoc>[]): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const structs = new Map<string, StructDoc>();
  for (const { doc } of docs) if (doc.kind === 'struct') structs.set(doc.name, doc);
  for (const { file, doc } of docs) {
    if (doc.kind !== 'struct') continue;
    doc.layouts.forEach((layout, li) =>
      layout.fields.forEach((m, fi) => {
        if (!isNested(m)) return;
        if (m.struct === undefined) {
          const found = inlineProblem(m);
          if (found)
            problems.push({
              file,
              pointer: `/layouts/${li}/fields/${fi}${found.pointer}`,
              message: found.message,
            });
          else linked.set(m, inlineLayout(m, layout));
          return;
        }
        const pointer = `/layouts/${li}/fields/${fi}/struct`;
        const inner = structs.get(m.struct);
        const found = inner && innerLayout(inner, layout);
        if (!found) {
          const where = `revision ${layout.revision}${layout.arches ? ` on ${layout.arches.join(', ')}` : ''}`;
          problems.push({
            file,
            pointer,
            message: inner
              ? `struct ${m.struct} has no layout for ${where}`
              : `no struct named ${m.struct} in the spec`,
          });
          return;
        }
        if (found.fields.some((f) => 'union' in f || ('flexible' in f && f.flexible)))
          problems.push({
            file,
            pointer,
            message: `struct ${m.struct} holds a union or flexible array; it cannot be nested`,
          });
        else linked.set(m, found);
      }),
    );
  }
  for (const { file, doc } of docs) {
    if (doc.kind !== 'struct') continue;
    doc.layouts.forEach((layout, li) => {
      if (containsItself(layout, new Set()))
        problems.push({ file, pointer: `/layouts/${li}`, message: `struct ${doc.name} contains itself` });
    });
  }
  return problems;
}

function containsItself(layout: StructLayout, open: Set<StructLayout>): boolean {
  if (open.has(layout)) return true;
  open.add(layout);
  const cyclic = layout.fields.some((m) => {
    const inner = isNested(m) ? linked.get(m) : undefined;
    return inner !== undefined && containsItself(inner, open);
  });
  open.delete(layout);
  return cyclic;
}
