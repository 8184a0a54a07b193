import { errataText } from './errata.ts';
import { hex } from '../spec/int.ts';
import { isNested, nestedLayout } from '../spec/nested.ts';
import { fieldBytes, scalarBytes } from '../spec/sizes.ts';
import { UPSTREAM, type SpecTree } from '../spec/tree.ts';
import type {
  Arch,
  FdKind,
  FieldDef,
  IoctlDoc,
  MemberDef,
  NestedDef,
  StructLayout,
  UnionDef,
} from '../spec/types.ts';
import { archView, slots, type Slot } from './c-header.ts';

/** The syzkaller resource for each kind of KVM file descriptor, and the one an fd-creating ioctl on it returns. */
const RESOURCE: Record<FdKind, string> = { system: 'fd_kvm', vm: 'fd_kvmvm', vcpu: 'fd_kvmcpu' };
const CREATES: Partial<Record<FdKind, string>> = { system: RESOURCE.vm, vm: RESOURCE.vcpu };
// One ioctl callable on several fds becomes one call per fd; syzkaller needs a distinct name for each.
const CALL_SUFFIX: Record<FdKind, string> = { system: '', vm: '_VM', vcpu: '_CPU' };
const INT: Record<number, string> = { 1: 'int8', 2: 'int16', 4: 'int32', 8: 'int64' };

function fieldType(f: FieldDef): string {
  const base = f.pointer ? 'ptr64[inout, array[int8]]' : (INT[scalarBytes(f.type)] ?? 'int8');
  if (f.flexible) return `array[${base}]`;
  return f.count ? `array[${base}, ${f.count}]` : base;
}

function fieldLines(list: Slot[], pads: () => string): string[] {
  return list.map((s) =>
    'field' in s
      ? `\t${s.field.name}\t${fieldType(s.field)}`
      : `\t${pads()}\tarray[const[0, int8], ${s.padding}]`,
  );
}

/*
 * Every struct is [packed] with its padding spelled out, so each field sits at the spec's offset whatever
 * alignment syzkaller would otherwise apply. A union becomes a union type of its own, sized by the spec; a
 * union member with several fields becomes a struct type.
 */
function structBlocks(name: string, layout: StructLayout): string[] {
  let pads = 0;
  const pad = () => `pad${pads++}`;
  const blocks: string[] = [];
  const unions = layout.fields.filter((m): m is UnionDef => 'union' in m);
  const unionType = (u: UnionDef) => `${name}_${u.union}`;
  for (const u of unions) {
    const members = u.members.map((member) => {
      const [only] = member.fields;
      if (member.fields.length === 1 && only && only.offset === u.offset)
        return `\t${only.name}\t${fieldType(only)}`;
      const type = `${unionType(u)}_${member.name}`;
      const end = Math.max(...member.fields.map((f) => f.offset + fieldBytes(f)));
      blocks.push(`${type} {`, ...fieldLines(slots(member.fields, u.offset, end), pad), '} [packed]', '');
      return `\t${member.name}\t${type}`;
    });
    blocks.push(`${unionType(u)} [`, ...members, `] [size[${u.size}]]`, '');
  }
  const nested = layout.fields.filter(isNested);
  // An anonymous nested struct becomes a struct type of its own, as a union's multi-field member does.
  const nestedType = (m: NestedDef) => m.struct ?? `${name}_${m.name}`;
  for (const m of nested)
    if (m.struct === undefined)
      blocks.push(`${nestedType(m)} {`, ...fieldLines(slots(m.fields, 0, m.size), pad), '} [packed]', '');
  const asField = (m: MemberDef): FieldDef =>
    'union' in m
      ? { name: `kvmspec_union_${m.union}`, type: 'u8', offset: m.offset, count: m.size }
      : isNested(m)
        ? { name: m.name, type: 'u8', offset: m.offset, count: nestedLayout(m).size }
        : m;
  const body = slots(layout.fields.map(asField), 0, layout.size).map((s) => {
    const inner = 'field' in s ? nested.find((m) => m.name === s.field.name) : undefined;
    if (inner) return `\t${inner.name}\t${nestedType(inner)}`;
    const union = 'field' in s ? unions.find((u) => `kvmspec_union_${u.union}` === s.field.name) : undefined;
    return union ? `\t${union.union}\t${unionType(union)}` : fieldLines([s], pad)[0];
  });
  blocks.push(`${name} {`, ...body.filter((l): l is string => l !== undefined), '} [packed]', '');
  return blocks;
}

function argType(doc: IoctlDoc): string {
  const { dir, struct, size } = doc.number;
  if (dir === 'none') return 'intptr';
  const direction = dir === 'write' ? 'in' : dir === 'read' ? 'out' : 'inout';
  const target = struct ?? (size ? (INT[size] ?? `array[int8, ${size}]`) : 'array[int8]');
  return `ptr[${direction}, ${target}]`;
}

function ioctlCalls(doc: IoctlDoc, number: bigint): string[] {
  return doc.fds.map((fd, i) => {
    const name = `ioctl$${doc.name}${i === 0 ? '' : CALL_SUFFIX[fd]}`;
    const returns = doc.createsFd ? ` ${CREATES[fd] ?? 'fd'}` : '';
    return `${name}(fd ${RESOURCE[fd]}, cmd const[${hex(number)}], arg ${argType(doc)})${returns}`;
  });
}

export interface SyzlangOptions {
  /** Which arch's ioctl numbers to write (syzkaller keeps one description file per arch). Default x86_64. */
  arch?: Arch;
  revision?: string;
}

/**
 * syzkaller descriptions of the spec's ioctls: the three KVM fd resources, an openat of /dev/kvm, one ioctl
 * call per ioctl and fd kind with its literal request number and argument type, and every struct it takes.
 */
export function renderSyzlang(spec: SpecTree, options: SyzlangOptions = {}): string {
  const arch = options.arch ?? 'x86_64';
  const view = archView(spec, arch, options.revision ?? UPSTREAM);
  // The structs the ioctls take, and those nested in them (archView lists a nested struct before its user).
  const used = new Set(view.ioctls.flatMap(({ doc }) => (doc.number.struct ? [doc.number.struct] : [])));
  for (const { name, layout } of [...view.structs].reverse())
    if (used.has(name)) for (const m of layout.fields) if (isNested(m) && m.struct) used.add(m.struct);
  const lines = [
    `# Generated by kvmspec from spec/ (revision ${view.revision}, ${arch}). Do not edit.`,
    '# Request numbers are literal, so no .const file is needed for them.',
    '',
    ...errataText(spec).map((l) => `# ${l}`),
    ...Object.values(RESOURCE).map((r) => `resource ${r}[fd]`),
    '',
    `openat$kvm(fd const[AT_FDCWD], file ptr[in, string["/dev/kvm"]], flags const[O_RDWR], mode const[0]) ${RESOURCE.system}`,
    '',
    ...view.ioctls.flatMap(({ doc, number }) => ioctlCalls(doc, number)),
    '',
  ];
  for (const { name, layout } of view.structs) if (used.has(name)) lines.push(...structBlocks(name, layout));
  return lines.join('\n');
}
