import type {
  Backend,
  BufferId,
  Handle,
  IoctlArg,
  IoctlResult,
  PointerPatch,
  PointerTarget,
} from '../adapters/backend.ts';
import { decodeStruct, encodeStruct, type Endian, type StructValues } from './abi/codec.ts';
import { hexDigits, hexToBytes } from './spec/int.ts';
import { fieldIndex, type LayoutSelector, type SpecTree } from './spec/tree.ts';
import type { Arch, PointerValue } from './spec/types.ts';

/** A buffer the session allocated; cases pass it around instead of addresses. */
export interface Buf {
  readonly id: BufferId;
  readonly size: number;
}

/** A pointer field's value in a call: a fresh buffer, an existing one, NULL or an invalid address. */
export type PointerArg = PointerValue | { buf: Buf; offset?: number; length?: number };
export type StructArg = Record<string, bigint | bigint[] | PointerArg>;
export type CallArg = bigint | { pointer: PointerArg } | { struct: StructArg; layout?: LayoutSelector };

export interface CallResult {
  ret: bigint;
  errno: string | null;
  /** The struct's fields after the call (struct arguments only). */
  fields: StructValues;
  /**
   * Bytes behind each pointer field (or behind a pointer argument, under "arg") after the call. Read-only:
   * the case's trace keeps these very bytes.
   */
  spans: Record<string, Uint8Array>;
  /** Buffers the call allocated for its pointer fields, by field name, for follow-up calls. */
  bufs: Record<string, Buf>;
}

/** A step whose failure means the case could not be set up: the case is blocked, not failed. */
export class SetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SetupError';
  }
}

/** What an ioctl returned, in comparable form: differential runs compare these call by call. */
export interface CallRecord {
  ioctl: string;
  /** The return value; "fd" for a successful call that creates a file descriptor (numbers differ by backend). */
  ret: string;
  errno: string | null;
  /** The struct image after the call, hex. */
  image?: string;
  /** The bytes behind each pointer field after the call, hex. */
  spans?: Record<string, string>;
  /** The values this call returns differ between hosts: a differential run compares only ret and errno. */
  hostDependent?: boolean;
}

/**
 * A CallRecord as the session keeps it while the case runs: the bytes themselves (the backend's answers,
 * which cases only read). Hex costs about a tenth of a whole suite run and most traces are dropped with
 * their passing case, so only a trace that is asked for is rendered.
 */
type RecordedCall = Omit<CallRecord, 'image' | 'spans'> & {
  image?: Uint8Array;
  spans?: Record<string, Uint8Array>;
};

interface RecordedOp {
  op: string;
  detail: string;
  /** A struct argument's image as sent, shown after the detail. */
  argImage?: Uint8Array;
  result: string;
  call?: RecordedCall;
}

/** One operation as it was sent, for reproducer bundles and differential runs. */
export interface TraceEntry {
  op: string;
  detail: string;
  result: string;
  call?: CallRecord;
}

export interface CallOptions {
  /** The values this call returns are host-dependent (a register whose reset value is the host's). */
  hostDependent?: boolean;
}

/**
 * What a case holds: the backend for one arch, the spec for names and layouts, and everything the case
 * opened, so that `release()` cleans up even when the case fails half-way.
 */
export class KvmSession {
  readonly endian: Endian;
  private readonly recorded: RecordedOp[] = [];
  private readonly handles: Handle[] = [];
  private readonly buffers: Buf[] = [];
  /** The layouts a call uses unless it names others. */
  private readonly selector: LayoutSelector;

  constructor(
    readonly backend: Backend,
    readonly spec: SpecTree,
    readonly arch: Arch,
    readonly revision: string,
  ) {
    this.endian = spec.archInfo(arch).endian;
    this.selector = { arch, revision };
  }

  private record(op: string, detail: string, result: string): void {
    this.recorded.push({ op, detail, result });
  }

  /** Every operation so far, rendered for reports, bundles and differential runs. */
  trace(): TraceEntry[] {
    return this.recorded.map(({ op, detail, argImage, result, call }): TraceEntry => {
      const entry: TraceEntry = {
        op,
        detail: argImage ? `${detail} ${hexDigits(argImage)}` : detail,
        result,
      };
      if (!call) return entry;
      const { image, spans, ...rest } = call;
      const rendered: CallRecord = rest;
      if (image) rendered.image = hexDigits(image);
      if (spans) {
        rendered.spans = {};
        for (const [k, v] of Object.entries(spans)) rendered.spans[k] = hexDigits(v);
      }
      entry.call = rendered;
      return entry;
    });
  }

  async openSystem(): Promise<Handle> {
    const r = await this.backend.open('/dev/kvm');
    this.record('open', '/dev/kvm', 'handle' in r ? `handle ${r.handle}` : r.errno);
    if (!('handle' in r)) throw new SetupError(`open /dev/kvm failed: ${r.errno}`);
    this.handles.push(r.handle);
    return r.handle;
  }

  async alloc(
    size: number,
    options: { alignment?: number; init?: Uint8Array; readonly?: boolean } = {},
  ): Promise<Buf> {
    const id = await this.backend.alloc({ size, ...options });
    this.record('alloc', `${size} bytes${options.readonly ? ' read-only' : ''}`, `buffer ${id}`);
    const buf = { id, size };
    this.buffers.push(buf);
    return buf;
  }

  read(buf: Buf, offset = 0, length = buf.size - offset): Promise<Uint8Array> {
    return this.backend.read(buf.id, offset, length);
  }

  async write(buf: Buf, bytes: Uint8Array, offset = 0): Promise<void> {
    this.record('write', `buffer ${buf.id} +${offset} ${describeBytes(bytes)}`, 'ok');
    await this.backend.write(buf.id, offset, bytes);
  }

  async mmap(handle: Handle, length: number): Promise<Buf> {
    const id = await this.backend.mmap(handle, length, 0);
    this.record('mmap', `handle ${handle} ${length} bytes`, `buffer ${id}`);
    // Unmapped at release like any buffer: a mapping keeps its vCPU, and so its VM, alive in the kernel.
    const buf = { id, size: length };
    this.buffers.push(buf);
    return buf;
  }

  private async target(
    value: PointerArg,
    defaultLength: number,
  ): Promise<{ target: PointerTarget; buf?: Buf }> {
    if (value === 'null') return { target: { kind: 'null' } };
    if (value === 'invalid') return { target: { kind: 'invalid' } };
    if ('buf' in value) {
      const offset = value.offset ?? 0;
      const length = value.length ?? Math.min(defaultLength, value.buf.size - offset);
      return { target: { kind: 'buffer', buffer: value.buf.id, offset, length }, buf: value.buf };
    }
    const { size, init, readonly } = value.buffer;
    const buf = await this.alloc(size, {
      ...(init ? { init: hexToBytes(init) } : {}),
      readonly: readonly ?? false,
    });
    return { target: { kind: 'buffer', buffer: buf.id, offset: 0, length: size }, buf };
  }

  /** Calls an ioctl by its spec name; the request number is the arch's encoding from the spec. */
  async call(
    handle: Handle,
    name: string,
    arg: CallArg = 0n,
    options: CallOptions = {},
  ): Promise<CallResult> {
    const doc = this.spec.ioctl(name);
    const layoutChoice = typeof arg === 'object' && 'struct' in arg ? arg.layout : undefined;
    const selector: LayoutSelector = layoutChoice
      ? { arch: this.arch, revision: this.revision, ...layoutChoice }
      : this.selector;
    const request = this.spec.ioctlNumber(name, this.arch, selector);
    const bufs: Record<string, Buf> = {};
    const spanNames: string[] = [];
    let ioctlArg: IoctlArg;
    let layout;
    if (typeof arg === 'bigint') {
      ioctlArg = { kind: 'int', value: arg };
    } else if ('pointer' in arg) {
      const { target, buf } = await this.target(arg.pointer, buf0Size(arg.pointer));
      if (buf) bufs.arg = buf;
      if (target.kind === 'buffer') spanNames.push('arg');
      ioctlArg = { kind: 'pointer', target };
    } else {
      if (!doc.number.struct) throw new Error(`${name} takes no struct`);
      layout = this.spec.layout(doc.number.struct, selector);
      const scalars: StructValues = {};
      const pointers: PointerPatch[] = [];
      const fields = fieldIndex(layout).byKey;
      for (const [field, value] of Object.entries(arg.struct)) {
        const def = fields.get(field);
        if (!def) throw new Error(`struct ${doc.number.struct} has no field ${field}`);
        if (typeof value === 'bigint' || Array.isArray(value)) {
          scalars[field] = value;
          continue;
        }
        if (!def.pointer) throw new Error(`field ${field} is not a pointer`);
        const { target, buf } = await this.target(value, buf0Size(value));
        if (buf) bufs[field] = buf;
        if (target.kind === 'buffer') spanNames.push(field);
        pointers.push({ offset: def.offset, target });
      }
      ioctlArg = { kind: 'struct', image: encodeStruct(layout, scalars, this.endian), pointers };
    }
    const result: IoctlResult = await this.backend.ioctl(handle, request, ioctlArg);
    // A new VM or vCPU fd belongs to the case like any other: release() closes it.
    if (doc.createsFd && result.errno === null && result.ret >= 0n) this.handles.push(Number(result.ret));
    const spans: Record<string, Uint8Array> = {};
    spanNames.forEach((n, i) => {
      const bytes = result.spans[i];
      if (bytes) spans[n] = bytes;
    });
    // Built field by field: conditional object spreads cost about a microsecond each in Node 20.
    const call: RecordedCall = {
      ioctl: name,
      ret: doc.createsFd && result.errno === null ? 'fd' : result.ret.toString(),
      errno: result.errno,
    };
    if (result.image) call.image = result.image;
    if (spanNames.length > 0) call.spans = { ...spans };
    if (options.hostDependent) call.hostDependent = true;
    const op: RecordedOp = {
      op: 'ioctl',
      detail: `${name} on handle ${handle} ${describeArg(ioctlArg)}`,
      result: result.errno ?? `ret ${result.ret}`,
      call,
    };
    if (ioctlArg.kind === 'struct') op.argImage = ioctlArg.image;
    this.recorded.push(op);
    return {
      ret: result.ret,
      errno: result.errno,
      fields: layout && result.image ? decodeStruct(layout, result.image, this.endian) : {},
      spans,
      bufs,
    };
  }

  /** A call that is part of setting a case up: anything but success blocks the case. */
  async setup(handle: Handle, name: string, arg: CallArg = 0n): Promise<CallResult> {
    const r = await this.call(handle, name, arg);
    if (r.ret < 0n) throw new SetupError(`${name} failed with ${r.errno}`);
    return r;
  }

  /** A call whose result is a new file descriptor (KVM_CREATE_VM, KVM_CREATE_VCPU). */
  async setupHandle(handle: Handle, name: string, arg: bigint): Promise<Handle> {
    const r = await this.setup(handle, name, arg);
    return Number(r.ret);
  }

  /**
   * Closes everything the case opened, newest first, as a VMM exiting would. The requests are issued
   * together (a backend answers in order), so a backend behind a slow channel — an agent in an emulated
   * machine — pays its round trip once rather than once per file and buffer.
   */
  async release(): Promise<void> {
    const done = await Promise.allSettled([
      ...this.handles
        .splice(0)
        .reverse()
        .map((h) => this.backend.close(h)),
      ...this.buffers
        .splice(0)
        .reverse()
        .map((b) => this.backend.free(b.id)),
    ]);
    const failed = done.find((d) => d.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

function buf0Size(value: PointerArg): number {
  return typeof value === 'object' && 'buffer' in value ? value.buffer.size : 0;
}

function describeArg(arg: IoctlArg): string {
  switch (arg.kind) {
    case 'int':
      return `int 0x${arg.value.toString(16)}`;
    case 'pointer':
      return `pointer ${arg.target.kind}`;
    case 'struct':
      return 'struct';
  }
}

/** Bytes written to a buffer, for the trace: whole when short; a guest RAM image by its length and start. */
function describeBytes(bytes: Uint8Array): string {
  const hex = hexDigits(bytes.subarray(0, 32));
  return bytes.length <= 32 ? hex : `${bytes.length} bytes ${hex}...`;
}
