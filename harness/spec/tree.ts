import { createHash } from 'node:crypto';
import { compareVersions, toBigInt } from './int.ts';
import { isNested, linkNested, nestedLayout } from './nested.ts';
import type {
  Arch,
  ArchInfo,
  ArchesDoc,
  ConstantDef,
  ConstantsDoc,
  FieldDef,
  HypercallDoc,
  IoctlDoc,
  Located,
  MemberDef,
  RegistersDoc,
  Rule,
  SpecDoc,
  StructDoc,
  StructLayout,
} from './types.ts';
import { UPSTREAM } from './types.ts';

/** A rule with where it lives: the document that owns it and its JSON pointer there. */
export interface RuleRef {
  rule: Rule;
  doc: IoctlDoc | HypercallDoc;
  file: string;
  pointer: string;
}

export interface LayoutSelector {
  revision?: string;
  arch?: Arch;
  /** Kernel version whose layout is wanted; the newest layout when absent. */
  kernel?: string;
}

export { UPSTREAM };

/**
 * A scalar field of a layout and the key cases name it by: its own name, or `member.name` for a union
 * member's field whose name an earlier field of the struct already has (kvm_run has a `flags` of its own,
 * and another in the system-event and hypercall exits; C reaches each through its path). With it, where it
 * sits: its JSON pointer within the layout and, inside a union, the union and member names.
 */
export type KeyedField = FieldDef & {
  readonly key: string;
  readonly jsonPointer: string;
  readonly union?: { readonly name: string; readonly member: string };
};

/**
 * Yields every scalar field of a layout, union members and nested structs included, each with its key. A
 * nested struct's field is named and keyed by its C path (`cs.base`) at its offset in the outer struct; its
 * JSON pointer is the nested member's.
 */
export function* leafFields(members: MemberDef[]): Generator<KeyedField> {
  const taken = new Set<string>();
  for (const [i, m] of members.entries()) {
    if (isNested(m)) {
      for (const f of leafFields(nestedLayout(m).fields)) {
        const path = `${m.name}.${f.name}`;
        taken.add(path);
        yield { ...f, name: path, key: path, offset: m.offset + f.offset, jsonPointer: `/fields/${i}` };
      }
      continue;
    }
    if (!('union' in m)) {
      taken.add(m.name);
      yield { ...m, key: m.name, jsonPointer: `/fields/${i}` };
      continue;
    }
    for (const [mi, member] of m.members.entries())
      for (const [fi, f] of member.fields.entries()) {
        const key = taken.has(f.name) ? `${member.name}.${f.name}` : f.name;
        taken.add(key);
        const union = { name: m.union, member: member.name };
        yield { ...f, key, jsonPointer: `/fields/${i}/members/${mi}/fields/${fi}`, union };
      }
  }
}

/** The scalar fields of a layout, by key and in order, and its flexible array if it has one. */
export interface FieldIndex {
  list: readonly KeyedField[];
  byKey: ReadonlyMap<string, KeyedField>;
  flexible: KeyedField | undefined;
}

const fieldIndexes = new WeakMap<StructLayout, FieldIndex>();

/** The layout's FieldIndex, built once per layout (cases encode and decode structs on every call). */
export function fieldIndex(layout: StructLayout): FieldIndex {
  let index = fieldIndexes.get(layout);
  if (!index) {
    const list = [...leafFields(layout.fields)];
    index = { list, byKey: new Map(list.map((f) => [f.key, f])), flexible: list.find((f) => f.flexible) };
    fieldIndexes.set(layout, index);
  }
  return index;
}

/**
 * The loaded, checked spec: lookups by name, and the ABI arithmetic derived from it. The tree never
 * changes after loading, so derived values (layouts, request numbers) are computed once per selector.
 */
export class SpecTree {
  readonly structs = new Map<string, Located<StructDoc>>();
  readonly ioctls = new Map<string, Located<IoctlDoc>>();
  readonly hypercalls = new Map<string, Located<HypercallDoc>>();
  readonly constantSets = new Map<string, Located<ConstantsDoc>>();
  readonly registerCatalogs = new Map<Arch, Located<RegistersDoc>>();
  private readonly archesDoc: Located<ArchesDoc>;
  private readonly constantsByName = new Map<string, { def: ConstantDef; set: string }[]>();
  private readonly layouts = new Map<string, StructLayout>();
  private readonly ioctlNumbers = new Map<string, bigint>();

  constructor(
    readonly root: string,
    readonly docs: Located<SpecDoc>[],
  ) {
    // loadSpec has reported what does not link; a tree built by hand fails where an unlinked member is used.
    linkNested(docs);
    let arches: Located<ArchesDoc> | undefined;
    for (const located of docs) {
      const { doc, file } = located;
      switch (doc.kind) {
        case 'arches':
          arches = { file, doc };
          break;
        case 'struct':
          this.structs.set(doc.name, { file, doc });
          break;
        case 'ioctl':
          this.ioctls.set(doc.name, { file, doc });
          break;
        case 'hypercall':
          this.hypercalls.set(doc.name, { file, doc });
          break;
        case 'constants':
          this.constantSets.set(doc.name, { file, doc });
          for (const def of doc.constants) {
            for (const name of [def.name, ...(def.aliases ?? [])]) {
              const list = this.constantsByName.get(name) ?? [];
              list.push({ def, set: doc.name });
              this.constantsByName.set(name, list);
            }
          }
          break;
        case 'registers':
          this.registerCatalogs.set(doc.arch, { file, doc });
          break;
      }
    }
    if (!arches) throw new Error('spec tree has no arches document');
    this.archesDoc = arches;
  }

  /** sha256 over every document (by file), so results and bundles can say which spec they ran. */
  digest(): string {
    const hash = createHash('sha256');
    for (const { file, doc } of [...this.docs].sort((a, b) => a.file.localeCompare(b.file))) {
      hash.update(file).update('\0').update(JSON.stringify(doc)).update('\0');
    }
    return hash.digest('hex');
  }

  archInfo(arch: Arch): ArchInfo {
    return this.archesDoc.doc.arches[arch];
  }

  get arches(): Arch[] {
    return Object.keys(this.archesDoc.doc.arches) as Arch[];
  }

  /** Every rule of every ioctl and hypercall, in file order. */
  rules(): RuleRef[] {
    const out: RuleRef[] = [];
    for (const { file, doc } of [...this.ioctls.values(), ...this.hypercalls.values()]) {
      doc.rules.forEach((rule, i) => out.push({ rule, doc, file, pointer: `/rules/${i}` }));
    }
    return out;
  }

  ioctl(name: string): IoctlDoc {
    const found = this.ioctls.get(name);
    if (!found) throw new Error(`spec has no ioctl ${name}`);
    return found.doc;
  }

  hypercall(name: string): HypercallDoc {
    const found = this.hypercalls.get(name);
    if (!found) throw new Error(`spec has no hypercall ${name}`);
    return found.doc;
  }

  /** The definitions of a constant that hold on an arch (all of them without one). */
  private constantsFor(name: string, arch?: Arch): ConstantDef[] {
    return (this.constantsByName.get(name) ?? [])
      .filter(({ def }) => !arch || !def.arches || def.arches.includes(arch))
      .map(({ def }) => def);
  }

  constantDef(name: string, arch?: Arch): ConstantDef {
    const first = this.constantsFor(name, arch)[0];
    if (!first) throw new Error(`spec has no constant ${name}${arch ? ` for ${arch}` : ''}`);
    return first;
  }

  constant(name: string, arch?: Arch): bigint {
    return toBigInt(this.constantDef(name, arch).value);
  }

  /** Whether the spec defines the constant, on `arch` if one is given. */
  hasConstant(name: string, arch?: Arch): boolean {
    return this.constantsFor(name, arch).length > 0;
  }

  registers(arch: Arch): RegistersDoc['registers'] {
    return this.registerCatalogs.get(arch)?.doc.registers ?? [];
  }

  /**
   * The layout of a struct for a revision, arch and kernel version. A revision that does not redefine the
   * struct uses upstream's layout; without a kernel version the newest layout wins.
   */
  layout(structName: string, sel: LayoutSelector = {}): StructLayout {
    const key = `${structName}|${sel.revision ?? ''}|${sel.arch ?? ''}|${sel.kernel ?? ''}`;
    let layout = this.layouts.get(key);
    if (!layout) {
      layout = this.findLayout(structName, sel);
      this.layouts.set(key, layout);
    }
    return layout;
  }

  private findLayout(structName: string, sel: LayoutSelector): StructLayout {
    const found = this.structs.get(structName);
    if (!found) throw new Error(`spec has no struct ${structName}`);
    const forArch = found.doc.layouts.filter((l) => !sel.arch || !l.arches || l.arches.includes(sel.arch));
    const byRevision = (rev: string) => forArch.filter((l) => l.revision === rev);
    const candidates =
      byRevision(sel.revision ?? UPSTREAM).length > 0
        ? byRevision(sel.revision ?? UPSTREAM)
        : byRevision(UPSTREAM);
    const inRange = candidates.filter(
      (l) =>
        !sel.kernel ||
        ((!l.since || compareVersions(sel.kernel, l.since) >= 0) &&
          (!l.until || compareVersions(sel.kernel, l.until) < 0)),
    );
    const newest = inRange.find((l) => !l.until) ?? inRange[inRange.length - 1];
    if (!newest) throw new Error(`struct ${structName} has no layout for ${JSON.stringify(sel)}`);
    return newest;
  }

  field(structName: string, fieldName: string, sel: LayoutSelector = {}): FieldDef {
    const f = fieldIndex(this.layout(structName, sel)).byKey.get(fieldName);
    if (f) return f;
    throw new Error(`struct ${structName} has no field ${fieldName}`);
  }

  /** The ioctl request number on an arch: the _IOC encoding of that arch's family, size from the spec's struct. */
  ioctlNumber(name: string, arch: Arch, sel: LayoutSelector = {}): bigint {
    const key = `${name}|${arch}|${sel.revision ?? ''}|${sel.kernel ?? ''}`;
    let request = this.ioctlNumbers.get(key);
    if (request === undefined) {
      request = this.encodeIoctlNumber(name, arch, sel);
      this.ioctlNumbers.set(key, request);
    }
    return request;
  }

  private encodeIoctlNumber(name: string, arch: Arch, sel: LayoutSelector): bigint {
    const { number } = this.ioctl(name);
    const encoding = this.archesDoc.doc.ioctlEncodings[this.archInfo(arch).ioctlEncoding];
    if (!encoding) throw new Error(`arch ${arch} names an unknown ioctl encoding`);
    const size = number.struct ? this.layout(number.struct, { ...sel, arch }).size : (number.size ?? 0);
    if (size >= 1 << encoding.sizeBits)
      throw new Error(`${name}: size ${size} does not fit the ${arch} size field`);
    const dir =
      number.dir === 'none'
        ? encoding.dir.none
        : number.dir === 'read'
          ? encoding.dir.read
          : number.dir === 'write'
            ? encoding.dir.write
            : encoding.dir.read | encoding.dir.write;
    const sizeShift = 16;
    const dirShift = sizeShift + encoding.sizeBits;
    return (
      (BigInt(dir) << BigInt(dirShift)) |
      (BigInt(size) << BigInt(sizeShift)) |
      (toBigInt(number.type) << 8n) |
      toBigInt(number.nr)
    );
  }
}
