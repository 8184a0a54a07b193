import { compareVersions, toBigInt } from '../../spec/int.ts';
import { fieldBytes } from '../../spec/sizes.ts';
import { leafFields, UPSTREAM, type KeyedField, type SpecTree } from '../../spec/tree.ts';
import type { Arch, IoctlDoc, StructDoc, StructLayout } from '../../spec/types.ts';

/** Why an item is not compared with a header, or `compare` when it is. */
export type Disposition =
  { kind: 'compare' | 'newer' | 'computed' | 'superseded' } | { kind: 'proposal'; revision: string };

/** How the probe reads an item from the headers: a C expression, or a macro that may be absent. */
export type Probe = { kind: 'expr'; candidates: string[] } | { kind: 'macro'; name: string };

/** One value of the spec that a header can confirm: a struct size, field offset or size, ioctl number or constant. */
export interface CheckItem {
  label: string;
  file: string;
  pointer: string;
  expected: bigint;
  probe: Probe;
  disposition: Disposition;
  /** Set for ONE_REG catalog entries: their names need not be header macros, and a live kernel can confirm them. */
  registerId?: bigint;
}

/** The headers being checked against: which arch they describe and the kernel version they come from. */
export interface HeaderTarget {
  arch: Arch;
  version: string;
}

const isNewer = (since: string | undefined, version: string) =>
  since !== undefined && compareVersions(since, version) > 0;

function layoutDisposition(layout: StructLayout, target: HeaderTarget): Disposition {
  if (layout.revision !== UPSTREAM) return { kind: 'proposal', revision: layout.revision };
  if (isNewer(layout.since, target.version)) return { kind: 'newer' };
  if (layout.until && compareVersions(target.version, layout.until) >= 0) return { kind: 'superseded' };
  return { kind: 'compare' };
}

/**
 * C spellings of a field's access path, most likely first. An anonymous union (or anonymous struct inside one)
 * is reached by the bare name, named ones need their prefix; a field keyed `member.field` (its name is taken
 * by an earlier field) never by the bare name, which is the other field's.
 */
function fieldPaths(f: KeyedField): string[] {
  if (!f.union) return [f.name];
  const { name: union, member } = f.union;
  return [
    ...(f.key === f.name ? [f.name] : []),
    `${member}.${f.name}`,
    `${union}.${f.name}`,
    `${union}.${member}.${f.name}`,
  ];
}

/** The arches whose headers hold a file: all for a generic header, one kernel arch for arch/<name>/... */
export function headerArches(spec: SpecTree, header: string | undefined): Arch[] {
  const kernelArch = header ? /^arch\/([^/]+)\//.exec(header)?.[1] : undefined;
  return kernelArch ? spec.arches.filter((a) => spec.archInfo(a).kernelArch === kernelArch) : spec.arches;
}

/** The arches a struct exists on: its layout's own list, else those of the ioctls that pass it, else its header's. */
export function structArches(spec: SpecTree, doc: StructDoc, layout: StructLayout): Arch[] {
  if (layout.arches) return layout.arches;
  const users = [...spec.ioctls.values()].filter(({ doc: ioctl }) => ioctl.number.struct === doc.name);
  return users.length > 0 ? users.flatMap(({ doc: ioctl }) => ioctl.arches) : headerArches(spec, doc.header);
}

function structItems(spec: SpecTree, target: HeaderTarget): CheckItem[] {
  const items: CheckItem[] = [];
  for (const { file, doc } of spec.structs.values()) {
    doc.layouts.forEach((layout, li) => {
      if (!structArches(spec, doc, layout).includes(target.arch)) return;
      const base = `/layouts/${li}`;
      const disposition = layoutDisposition(layout, target);
      const type = `struct ${doc.name}`;
      const common = { file, disposition };
      items.push({
        ...common,
        label: `sizeof(${type})`,
        pointer: `${base}/size`,
        expected: BigInt(layout.size),
        probe: { kind: 'expr', candidates: [`sizeof(${type})`] },
      });
      for (const field of leafFields(layout.fields)) {
        const pointer = field.jsonPointer;
        const paths = fieldPaths(field);
        items.push({
          ...common,
          label: `offsetof(${type}, ${field.name})`,
          pointer: `${base}${pointer}/offset`,
          expected: BigInt(field.offset),
          probe: { kind: 'expr', candidates: paths.map((p) => `__builtin_offsetof(${type}, ${p})`) },
        });
        // A flexible array has no size; every other field's size pins its type and element count.
        if (!field.flexible)
          items.push({
            ...common,
            label: `sizeof(${type}.${field.name})`,
            pointer: `${base}${pointer}/${field.count ? 'count' : 'type'}`,
            expected: BigInt(fieldBytes(field)),
            probe: { kind: 'expr', candidates: paths.map((p) => `sizeof(((${type} *)0)->${p})`) },
          });
      }
    });
  }
  return items;
}

/** An ioctl exists only in a proposal when its struct has no upstream layout, or (without a struct) no rule is upstream's. */
export function proposalOnly(spec: SpecTree, doc: IoctlDoc): string | undefined {
  const layouts = doc.number.struct ? (spec.structs.get(doc.number.struct)?.doc.layouts ?? []) : [];
  const revisions =
    layouts.length > 0 ? layouts.map((l) => l.revision) : doc.rules.flatMap((r) => r.revisions ?? [UPSTREAM]);
  return revisions.includes(UPSTREAM) ? undefined : revisions[0];
}

function ioctlItems(spec: SpecTree, target: HeaderTarget): CheckItem[] {
  const items: CheckItem[] = [];
  for (const { file, doc } of spec.ioctls.values()) {
    if (!doc.arches.includes(target.arch)) continue;
    const since = doc.archSince?.[target.arch] ?? doc.since;
    const proposal = proposalOnly(spec, doc);
    const structNewer = doc.number.struct
      ? spec.structs.get(doc.number.struct)?.doc.layouts.every((l) => isNewer(l.since, target.version))
      : false;
    const disposition: Disposition = proposal
      ? { kind: 'proposal', revision: proposal }
      : { kind: isNewer(since, target.version) || structNewer ? 'newer' : 'compare' };
    items.push({
      label: doc.name,
      file,
      pointer: '/number',
      // The struct size in the number is that of the layout of these headers' version (or of the proposal).
      expected: spec.ioctlNumber(
        doc.name,
        target.arch,
        disposition.kind === 'proposal'
          ? { revision: disposition.revision }
          : disposition.kind === 'compare'
            ? { kernel: target.version }
            : {},
      ),
      probe: { kind: 'macro', name: doc.name },
      disposition,
    });
  }
  return items;
}

function constantItems(spec: SpecTree, target: HeaderTarget): CheckItem[] {
  const items: CheckItem[] = [];
  for (const { file, doc } of spec.constantSets.values()) {
    const setArches = headerArches(spec, doc.header);
    doc.constants.forEach((def, ci) => {
      if (!(def.arches ?? setArches).includes(target.arch)) return;
      const proposal = def.revisions && !def.revisions.includes(UPSTREAM) ? def.revisions[0] : undefined;
      const disposition: Disposition = proposal
        ? { kind: 'proposal', revision: proposal }
        : {
            kind:
              def.inHeaders === false ? 'computed' : isNewer(def.since, target.version) ? 'newer' : 'compare',
          };
      [def.name, ...(def.aliases ?? [])].forEach((name, ni) =>
        items.push({
          label: name,
          file,
          pointer: ni === 0 ? `/constants/${ci}/value` : `/constants/${ci}/aliases/${ni - 1}`,
          expected: toBigInt(def.value),
          probe: { kind: 'macro', name },
          disposition,
        }),
      );
    });
  }
  return items;
}

/*
 * arm64 core and FP/SIMD register ids are not macros: the ABI defines each as the u32 index of its member in
 * struct kvm_regs (KVM_REG_ARM_CORE_REG) plus a size code. These catalog names map to that member, so the
 * headers can compute the whole id.
 */
const ARM64_CORE_MEMBERS: [RegExp, (n: string) => string][] = [
  [/^X(\d+)$/, (n) => `regs.regs[${n}]`],
  [/^SP$/, () => 'regs.sp'],
  [/^PC$/, () => 'regs.pc'],
  [/^PSTATE$/, () => 'regs.pstate'],
  [/^SP_EL1$/, () => 'sp_el1'],
  [/^ELR_EL1$/, () => 'elr_el1'],
  [/^SPSR(\d+)$/, (n) => `spsr[${n}]`],
  [/^V(\d+)$/, (n) => `fp_regs.vregs[${n}]`],
  [/^FPSR$/, () => 'fp_regs.fpsr'],
  [/^FPCR$/, () => 'fp_regs.fpcr'],
];

function registerProbe(spec: SpecTree, arch: Arch, name: string): Probe {
  if (spec.archInfo(arch).kernelArch === 'arm64') {
    for (const [pattern, member] of ARM64_CORE_MEMBERS) {
      const match = pattern.exec(name);
      if (!match) continue;
      const path = member(match[1] ?? '');
      const size = `sizeof(((struct kvm_regs *)0)->${path})`;
      const sizeCode = `(${size} == 16 ? KVM_REG_SIZE_U128 : ${size} == 8 ? KVM_REG_SIZE_U64 : KVM_REG_SIZE_U32)`;
      return {
        kind: 'expr',
        candidates: [`(KVM_REG_ARM64 | KVM_REG_ARM_CORE | ${sizeCode} | KVM_REG_ARM_CORE_REG(${path}))`],
      };
    }
  }
  return { kind: 'macro', name };
}

function registerItems(spec: SpecTree, target: HeaderTarget): CheckItem[] {
  const catalog = spec.registerCatalogs.get(target.arch);
  if (!catalog) return [];
  return catalog.doc.registers.map((reg, i) => ({
    label: reg.name,
    file: catalog.file,
    pointer: `/registers/${i}/id`,
    expected: toBigInt(reg.id),
    probe: registerProbe(spec, target.arch, reg.name),
    disposition: { kind: isNewer(reg.since, target.version) ? 'newer' : 'compare' },
    registerId: toBigInt(reg.id),
  }));
}

/** Every ABI value of the spec that headers for `target` could confirm, with how each is to be treated. */
export function checkItems(spec: SpecTree, target: HeaderTarget): CheckItem[] {
  return [
    ...structItems(spec, target),
    ...ioctlItems(spec, target),
    ...constantItems(spec, target),
    ...registerItems(spec, target),
  ];
}
