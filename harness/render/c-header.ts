import { errataText } from './errata.ts';
import { proposalOnly, headerArches, structArches } from '../abi/check/items.ts';
import { hex, toBigInt } from '../spec/int.ts';
import { fieldBytes, scalarBytes } from '../spec/sizes.ts';
import { fieldIndex, leafFields, UPSTREAM, type SpecTree } from '../spec/tree.ts';
import { isNested, nestedLayout } from '../spec/nested.ts';
import type { Arch, FieldDef, MemberDef, NestedDef, RegisterDef, StructLayout } from '../spec/types.ts';

/** What the spec defines for one arch and revision: the input of every renderer. */
export interface ArchView {
  arch: Arch;
  revision: string;
  structs: { name: string; layout: StructLayout }[];
  ioctls: { name: string; number: bigint; doc: ReturnType<SpecTree['ioctl']> }[];
  constants: { name: string; value: bigint }[];
  registers: RegisterDef[];
}

const inRevision = (revisions: string[] | undefined, revision: string) =>
  !revisions || revisions.includes(revision) || (revision !== UPSTREAM && revisions.includes(UPSTREAM));

export function archView(spec: SpecTree, arch: Arch, revision = UPSTREAM): ArchView {
  const structs: ArchView['structs'] = [];
  for (const { doc } of [...spec.structs.values()].sort((a, b) => a.doc.name.localeCompare(b.doc.name))) {
    const own = doc.layouts.filter(
      (l) => (l.revision === revision || l.revision === UPSTREAM) && (!l.arches || l.arches.includes(arch)),
    );
    if (own.length === 0) continue;
    const layout = spec.layout(doc.name, { revision, arch });
    if (structArches(spec, doc, layout).includes(arch)) structs.push({ name: doc.name, layout });
  }
  const ioctls: ArchView['ioctls'] = [];
  for (const { doc } of [...spec.ioctls.values()].sort((a, b) => a.doc.name.localeCompare(b.doc.name))) {
    const proposal = proposalOnly(spec, doc);
    if (!doc.arches.includes(arch) || (proposal && proposal !== revision)) continue;
    ioctls.push({ name: doc.name, number: spec.ioctlNumber(doc.name, arch, { revision }), doc });
  }
  const constants = new Map<string, bigint>();
  for (const { doc } of spec.constantSets.values()) {
    const setArches = headerArches(spec, doc.header);
    for (const def of doc.constants) {
      if (!(def.arches ?? setArches).includes(arch) || !inRevision(def.revisions, revision)) continue;
      for (const name of [def.name, ...(def.aliases ?? [])])
        if (!constants.has(name)) constants.set(name, toBigInt(def.value));
    }
  }
  return {
    arch,
    revision,
    structs: dependenciesFirst(structs),
    ioctls,
    constants: [...constants].map(([name, value]) => ({ name, value })),
    registers: spec.registers(arch),
  };
}

/** The structs in name order, except that a nested struct comes before the first struct that holds it. */
function dependenciesFirst(structs: ArchView['structs']): ArchView['structs'] {
  const byName = new Map(structs.map((s) => [s.name, s]));
  const out: ArchView['structs'] = [];
  const placed = new Set<string>();
  const place = (s: ArchView['structs'][number]) => {
    if (placed.has(s.name)) return;
    placed.add(s.name);
    for (const m of s.layout.fields) {
      const inner = isNested(m) && m.struct !== undefined ? byName.get(m.struct) : undefined;
      if (inner) place(inner);
    }
    out.push(s);
  };
  structs.forEach(place);
  return out;
}

/** A struct or union body in offset order, with the gaps between fields made explicit. */
export type Slot = { field: FieldDef } | { padding: number; offset: number };

export function slots(fields: FieldDef[], start: number, end: number): Slot[] {
  const out: Slot[] = [];
  let at = start;
  for (const field of [...fields].sort((a, b) => a.offset - b.offset)) {
    if (field.offset > at) out.push({ padding: field.offset - at, offset: at });
    out.push({ field });
    at = field.offset + fieldBytes(field);
  }
  if (end > at) out.push({ padding: end - at, offset: at });
  return out;
}

const CTYPE: Record<FieldDef['type'], string> = {
  u8: 'kvmspec_u8',
  u16: 'kvmspec_u16',
  u32: 'kvmspec_u32',
  u64: 'kvmspec_u64',
  s8: 'kvmspec_s8',
  s16: 'kvmspec_s16',
  s32: 'kvmspec_s32',
  s64: 'kvmspec_s64',
};

function cField(f: FieldDef, indent: string): string {
  const suffix = f.flexible ? '[]' : f.count ? `[${f.count}]` : '';
  const note = f.pointer ? ' /* user-space address */' : '';
  return `${indent}${CTYPE[f.type]} ${f.name}${suffix};${note}`;
}

function cSlots(list: Slot[], indent: string, padName: () => string): string[] {
  return list.map((s) =>
    'field' in s ? cField(s.field, indent) : `${indent}kvmspec_u8 ${padName()}[${s.padding}];`,
  );
}

const memberEnd = (fields: FieldDef[]) => Math.max(...fields.map((f) => f.offset + fieldBytes(f)));

/** Union members the header must name: those with a field keyed `member.field`. */
function namedMembers(members: MemberDef[]): Set<string> {
  return new Set(
    [...leafFields(members)].flatMap((f) => (f.union && f.key !== f.name ? [f.union.member] : [])),
  );
}

/*
 * Unions and their multi-field members are emitted anonymous (C11), so a field is reached by its own name,
 * except in a member with a field keyed `member.field` (its name is an earlier field's): that member is a
 * named struct, as in C. Explicit padding pins each offset without compiler help. Padding names are
 * numbered per struct because anonymous members share one namespace.
 */
function cMembers(members: MemberDef[], size: number): string[] {
  let pads = 0;
  const padName = () => `kvmspec_pad${pads++}`;
  const plain = members.filter((m): m is FieldDef => !('union' in m) && !isNested(m));
  const unions = members.flatMap((m) => ('union' in m ? [m] : []));
  // A nested struct holds its place as bytes while the slots are laid out, then is named by its type.
  const nested = members.filter(isNested);
  const nestedSlot = (m: NestedDef) => ({
    name: m.name,
    type: 'u8' as const,
    offset: m.offset,
    count: nestedLayout(m).size,
  });
  const lines: string[] = [];
  const named = namedMembers(members);
  const placeholder = (name: string) => `kvmspec_union_${name}`;
  const placeholders = unions.map((u) => ({
    name: placeholder(u.union),
    type: 'u8' as const,
    offset: u.offset,
    count: u.size,
  }));
  for (const slot of slots([...plain, ...placeholders, ...nested.map(nestedSlot)], 0, size)) {
    const inner = 'field' in slot ? nested.find((m) => m.name === slot.field.name) : undefined;
    if (inner?.struct !== undefined) {
      lines.push(`\tstruct ${inner.struct} ${inner.name};`);
      continue;
    }
    if (inner) {
      const body = cSlots(slots(inner.fields, 0, inner.size), '\t\t', padName);
      lines.push('\tstruct {', ...body, `\t} ${inner.name};`);
      continue;
    }
    const union = 'field' in slot ? unions.find((u) => placeholder(u.union) === slot.field.name) : undefined;
    if (!union) {
      lines.push(...cSlots([slot], '\t', padName));
      continue;
    }
    lines.push(`\tunion { /* ${union.union} */`);
    for (const member of union.members) {
      const body = slots(member.fields, union.offset, memberEnd(member.fields));
      const isNamed = named.has(member.name);
      if (body.length === 1 && !isNamed) lines.push(...cSlots(body, '\t\t', padName));
      else
        lines.push(
          `\t\tstruct { /* ${member.name} */`,
          ...cSlots(body, '\t\t\t', padName),
          isNamed ? `\t\t} ${member.name};` : '\t\t};',
        );
    }
    if (union.members.every((m) => memberEnd(m.fields) < union.offset + union.size))
      lines.push(`\t\tkvmspec_u8 ${padName()}[${union.size}];`);
    lines.push('\t};');
  }
  return lines;
}

function cStruct(name: string, layout: StructLayout): string[] {
  const type = `struct ${name}`;
  const body = cMembers(layout.fields, layout.size);
  // A struct aligned beyond its widest field (the spec says so) needs the alignment spelled out.
  const natural = Math.max(...fieldIndex(layout).list.map((f) => scalarBytes(f.type)));
  if (layout.align > natural && body[0]) body[0] = `\t_Alignas(${layout.align}) ${body[0].trimStart()}`;
  const lines = [`${type} {`, ...body, '};'];
  lines.push(`_Static_assert(sizeof(${type}) == ${layout.size}, "size of ${type}");`);
  lines.push(`_Static_assert(_Alignof(${type}) == ${layout.align}, "alignment of ${type}");`);
  const named = namedMembers(layout.fields);
  const paths = layout.fields.flatMap((m) =>
    'union' in m
      ? m.members.flatMap((x) =>
          x.fields.map((f) => ({
            path: named.has(x.name) ? `${x.name}.${f.name}` : f.name,
            offset: f.offset,
          })),
        )
      : [{ path: m.name, offset: m.offset }],
  );
  for (const { path, offset } of paths)
    lines.push(`_Static_assert(offsetof(${type}, ${path}) == ${offset}, "offset of ${type}.${path}");`);
  return lines;
}

/** A C integer literal that keeps its value whatever the width of int. */
function cLiteral(v: bigint): string {
  if (v < 0n) return `(-${hex(-v)}LL)`;
  return v > 0x7fffffffn ? `${hex(v)}ULL` : hex(v);
}

function cBody(view: ArchView): string[] {
  const lines = [
    `/* Structs (${view.revision} layouts for ${view.arch}), each with its size and offsets asserted. */`,
  ];
  for (const { name, layout } of view.structs) lines.push(...cStruct(name, layout), '');
  lines.push('/* ioctl request numbers. */');
  for (const { name, number } of view.ioctls) lines.push(`#define ${name} ${cLiteral(number)}`);
  lines.push('', '/* Constants: capabilities, flags, register-id fields. */');
  for (const { name, value } of view.constants) lines.push(`#define ${name} ${cLiteral(value)}`);
  lines.push('', '/* ONE_REG register ids of the spec catalog. */');
  for (const reg of view.registers)
    lines.push(`#define KVMSPEC_REG_${reg.name} ${cLiteral(toBigInt(reg.id))}`);
  return lines;
}

/** How a compiler says which arch it targets; only the branch of the arch being compiled for is used. */
const ARCH_TEST: Record<Arch, string> = {
  x86_64: 'defined(__x86_64__)',
  arm64: 'defined(__aarch64__)',
  s390x: 'defined(__s390x__)',
  ppc64le: 'defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)',
};

export interface CHeaderOptions {
  /** One arch: literal values for it alone. Without it, one #if branch per arch of the spec. */
  arch?: Arch;
  revision?: string;
  guard?: string;
}

/** Lines as one C comment block; a comment terminator inside the text is broken up. */
function commentBlock(text: string[]): string[] {
  if (text.length === 0) return [];
  const defused = text.map((l) => ' * ' + l.split('*/').join('* /'));
  return ['/*', ...defused, ' */', ''];
}

/**
 * A self-contained C header generated from the spec: fixed-width typedefs of its own (no <linux/types.h>),
 * every struct with static assertions on its size, alignment and field offsets, ioctl numbers, constants and
 * register ids. It stands in for <linux/kvm.h>; do not include both.
 */
export function renderCHeader(spec: SpecTree, options: CHeaderOptions = {}): string {
  const revision = options.revision ?? UPSTREAM;
  const guard = options.guard ?? 'KVMSPEC_KVM_H';
  const arches = options.arch ? [options.arch] : spec.arches;
  const lines = [
    `/* Generated by kvmspec from spec/ (revision ${revision}${options.arch ? `, ${options.arch}` : ''}). Do not edit. */`,
    `#ifndef ${guard}`,
    `#define ${guard}`,
    '',
    '#include <stddef.h> /* offsetof */',
    '',
    ...commentBlock(errataText(spec)),
    'typedef unsigned char kvmspec_u8;',
    'typedef unsigned short kvmspec_u16;',
    'typedef unsigned int kvmspec_u32;',
    'typedef unsigned long long kvmspec_u64;',
    'typedef signed char kvmspec_s8;',
    'typedef signed short kvmspec_s16;',
    'typedef signed int kvmspec_s32;',
    'typedef signed long long kvmspec_s64;',
    '_Static_assert(sizeof(kvmspec_u16) == 2 && sizeof(kvmspec_u32) == 4 && sizeof(kvmspec_u64) == 8, "fixed-width types");',
    '_Static_assert(_Alignof(kvmspec_u64) == 8, "the KVM ABI aligns 64-bit fields to 8 bytes");',
    '',
  ];
  if (options.arch) lines.push(...cBody(archView(spec, options.arch, revision)));
  else {
    arches.forEach((arch, i) =>
      lines.push(
        `#${i === 0 ? 'if' : 'elif'} ${ARCH_TEST[arch]}`,
        '',
        ...cBody(archView(spec, arch, revision)),
        '',
      ),
    );
    lines.push('#else', '#error "kvmspec: this header has no values for the target architecture"', '#endif');
  }
  lines.push('', `#endif /* ${guard} */`, '');
  return lines.join('\n');
}
