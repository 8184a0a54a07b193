/** TypeScript views of the spec documents; spec/schema/*.schema.json is the authority these mirror. */

export type Arch = 'x86_64' | 'arm64' | 's390x' | 'ppc64le';
export const ARCHES: readonly Arch[] = ['arm64', 's390x', 'x86_64', 'ppc64le'];
/** The revision every spec element has: what upstream Linux merged. */
export const UPSTREAM = 'upstream';
export type FdKind = 'system' | 'vm' | 'vcpu';
/** Hex strings ("0x1f", "-0x1") or plain integers, as written in the JSON. */
export type IntLike = number | string;

export interface Source {
  seed?: string;
  upstream?: string;
  thread?: string;
  live?: string;
  note?: string;
}

export interface Outcome {
  ret?: IntLike | { min?: IntLike; max?: IntLike };
  errno?: string;
  errnoAnyOf?: string[];
  note?: string;
}

export interface PointerBuffer {
  buffer: { size: number; init?: string; readonly?: boolean };
}
export type PointerValue = 'null' | 'invalid' | PointerBuffer;
/** An integer, an array of them, or a pointer target ('null' and 'invalid' are among the strings). */
export type FieldValue = IntLike | IntLike[] | PointerBuffer;

export interface Vector {
  params: Record<string, string>;
  arches?: Arch[];
  fixture: string;
  fd?: FdKind;
  ioctl?: string;
  arg?: { int?: IntLike; pointer?: 'null' | 'invalid'; struct?: Record<string, FieldValue> };
  expect: Outcome & { fields?: Record<string, IntLike | IntLike[]>; buffers?: Record<string, string> };
}

export interface CapabilityRef {
  name: string;
  bit?: number;
  absent?: Outcome;
}

export interface Rule {
  id: string;
  /** The API this rule's test IDs name where it is not its document's (a VM-fd use of a vCPU ioctl). */
  api?: string;
  statement: string;
  sources: Source[];
  arches?: Arch[];
  capability?: CapabilityRef;
  since?: string;
  until?: string;
  revisions?: string[];
  tags?: string[];
  hostDependent?: boolean;
  timeoutMs?: number;
  vectors?: Vector[];
  derive?: string;
  deriveArgs?: Record<string, string | number>;
  expect?: Outcome;
}

export interface Erratum {
  id: string;
  statement: string;
  reading: string;
  why: string;
  sources: Source[];
}

export interface RevisionInfo {
  name: string;
  summary: string;
  merged?: boolean;
  sources: Source[];
}

export interface ArchInfo {
  endian: 'little' | 'big';
  ioctlEncoding: string;
  kernelArch: 'x86' | 'arm64' | 's390' | 'powerpc';
  regArch: string;
  sources: Source[];
}

export interface IoctlEncoding {
  sizeBits: number;
  dirBits: number;
  dir: { none: number; read: number; write: number };
  sources: Source[];
}

export interface ArchesDoc {
  kind: 'arches';
  arches: Record<Arch, ArchInfo>;
  ioctlEncodings: Record<string, IoctlEncoding>;
}

export type Scalar = 'u8' | 'u16' | 'u32' | 'u64' | 's8' | 's16' | 's32' | 's64';

export interface FieldDef {
  name: string;
  type: Scalar;
  offset: number;
  count?: number;
  flexible?: boolean;
  pointer?: boolean;
  padding?: boolean;
  doc?: string;
}

export interface UnionDef {
  union: string;
  offset: number;
  size: number;
  doc?: string;
  members: { name: string; fields: FieldDef[] }[];
}

/**
 * A member that is itself a struct, its fields reached as `name.field`: one of the spec's by name (kvm_sregs'
 * segments), or an anonymous one given inline (kvm_vcpu_events' `struct { … } exception`).
 */
export type NestedDef = { name: string; offset: number; doc?: string } & (
  | { struct: string; size?: undefined; fields?: undefined }
  | { struct?: undefined; size: number; fields: FieldDef[] }
);

export type MemberDef = FieldDef | UnionDef | NestedDef;

export interface StructLayout {
  revision: string;
  since?: string;
  until?: string;
  arches?: Arch[];
  size: number;
  align: number;
  fields: MemberDef[];
}

export interface StructDoc {
  kind: 'struct';
  name: string;
  summary?: string;
  header?: string;
  sources: Source[];
  errata?: Erratum[];
  layouts: StructLayout[];
}

/** Shared by ioctl and hypercall documents: the parts that carry rules. */
export interface RuledDoc {
  name: string;
  api: string;
  arches: Arch[];
  since?: string;
  summary: string;
  returns: string;
  sources: Source[];
  errata?: Erratum[];
  revisions?: RevisionInfo[];
  rules: Rule[];
}

export interface IoctlDoc extends RuledDoc {
  kind: 'ioctl';
  section?: string;
  number: {
    dir: 'none' | 'read' | 'write' | 'readwrite';
    type: string;
    nr: string;
    struct?: string;
    size?: number;
  };
  fds: FdKind[];
  createsFd?: boolean;
  capability?: CapabilityRef;
  archSince?: Partial<Record<Arch, string>>;
  parameters: string;
}

export interface HypercallDoc extends RuledDoc {
  kind: 'hypercall';
  functionId: string;
  conduit?: 'hvc' | 'smc';
  merged?: boolean;
  arguments?: { register: string; name: string; doc?: string }[];
}

export interface ConstantDef {
  name: string;
  value: IntLike;
  arches?: Arch[];
  since?: string;
  revisions?: string[];
  aliases?: string[];
  inHeaders?: boolean;
  doc?: string;
}

export interface ConstantsDoc {
  kind: 'constants';
  name: string;
  summary?: string;
  header?: string;
  sources: Source[];
  constants: ConstantDef[];
}

export interface RegisterDef {
  name: string;
  id: string;
  since?: string;
  access?: 'rw' | 'ro' | 'none';
  writeErrno?: string;
  testValue?: string;
  anyValue?: boolean;
  hostDependent?: boolean;
  doc?: string;
  /** The writable fields of a feature ID register (arm64); the writable mask is their union. */
  fields?: RegisterField[];
}

/** How a written field value may differ from the limit (the value the fresh VM reads). */
export type FieldPolicy = 'lower-safe' | 'higher-safe' | 'exact' | 'any';

export interface RegisterField {
  name: string;
  shift: number;
  /** 4 when absent. */
  width?: number;
  /** Two's complement: 0xf (not implemented) is below 0. */
  signed?: boolean;
  policy: FieldPolicy;
  /** The lowest value a lower-safe field accepts, when the kernel checks one. */
  min?: number;
  doc?: string;
}

export interface RegistersDoc {
  kind: 'registers';
  arch: Arch;
  summary?: string;
  sources: Source[];
  registers: RegisterDef[];
}

export type SpecDoc = ArchesDoc | StructDoc | IoctlDoc | HypercallDoc | ConstantsDoc | RegistersDoc;
export type SpecKind = SpecDoc['kind'];

/** A document with the path it came from (relative to the spec root, with forward slashes). */
export interface Located<T> {
  file: string;
  doc: T;
}
