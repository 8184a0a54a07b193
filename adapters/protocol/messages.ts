/**
 * The stdio protocol's messages (version 2), as TypeScript types, and the conversions between them and
 * the adapter contract's values. docs/protocol.md describes the same messages for implementers;
 * spec/schema/protocol/*.schema.json is their formal definition.
 */
import { hex } from '../../harness/spec/int.ts';
import type { BackendProfile, IoctlArg, PointerPatch, PointerTarget } from '../backend.ts';

export const PROTOCOL_VERSION = 2;

export interface Handshake {
  kvmspec: 'backend';
  protocol: number;
  profile: BackendProfile;
}

export type WireArg =
  { int: string } | { pointer: PointerTarget } | { struct: { image: string; pointers: PointerPatch[] } };

/** Each request without its seq; the client numbers them. */
export type RequestBody =
  | { op: 'open'; path: string }
  | { op: 'ioctl'; handle: number; request: string; arg: WireArg }
  | { op: 'close'; handle: number }
  | { op: 'alloc'; buffer: number; size: number; alignment?: number; init?: string; readonly?: boolean }
  | { op: 'read'; buffer: number; offset: number; length: number }
  | { op: 'write'; buffer: number; offset: number; data: string }
  | { op: 'free'; buffer: number }
  | { op: 'mmap'; buffer: number; handle: number; length: number; offset: number }
  | { op: 'shutdown' };

export type Op = RequestBody['op'];
export type Request = RequestBody & { seq: number };
export type RequestOf<O extends Op> = Extract<RequestBody, { op: O }>;
export const OPS: readonly Op[] = [
  'open',
  'ioctl',
  'close',
  'alloc',
  'read',
  'write',
  'free',
  'mmap',
  'shutdown',
];

/** What a successful response carries besides `seq` and `ok`, per op. */
export interface OkResults {
  open: { handle: number } | { errno: string };
  ioctl: { ret: number; errno: string | null; image?: string; spans: string[] };
  close: Record<never, never>;
  alloc: Record<never, never>;
  read: { data: string };
  write: Record<never, never>;
  free: Record<never, never>;
  mmap: Record<never, never>;
  shutdown: Record<never, never>;
}

export type ErrorKind = 'backend' | 'skip' | 'unsupported';
export interface Failure {
  seq: number | null;
  ok: false;
  error: { kind: ErrorKind; message: string };
}
export type Response = Failure | ({ seq: number; ok: true } & OkResults[Op]);

/** The response schema's definition that a successful answer to `op` must match. */
export function okSchemaDef(op: Op): string {
  switch (op) {
    case 'open':
    case 'ioctl':
    case 'read':
      return `ok-${op}`;
    case 'close':
    case 'alloc':
    case 'write':
    case 'free':
    case 'mmap':
    case 'shutdown':
      return 'ok-empty';
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function encodeBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Strict: Node's own decoder skips characters it does not know, which would hide a peer's bug. */
export function decodeBytes(text: string): Uint8Array {
  if (text.length % 4 !== 0 || !BASE64.test(text)) throw new RangeError('malformed base64');
  const decoded = Buffer.from(text, 'base64');
  return new Uint8Array(decoded.buffer.slice(decoded.byteOffset, decoded.byteOffset + decoded.byteLength));
}

export function encodeU64(value: bigint): string {
  return hex(value);
}

export function decodeU64(text: string): bigint {
  return text.startsWith('-') ? -BigInt(text.slice(1)) : BigInt(text);
}

export function encodeArg(arg: IoctlArg): WireArg {
  switch (arg.kind) {
    case 'int':
      return { int: encodeU64(arg.value) };
    case 'pointer':
      return { pointer: arg.target };
    case 'struct':
      return { struct: { image: encodeBytes(arg.image), pointers: arg.pointers } };
  }
}

export function decodeArg(wire: WireArg): IoctlArg {
  if ('int' in wire) return { kind: 'int', value: decodeU64(wire.int) };
  if ('pointer' in wire) return { kind: 'pointer', target: wire.pointer };
  return { kind: 'struct', image: decodeBytes(wire.struct.image), pointers: wire.struct.pointers };
}

/** How many spans an ioctl response must carry: one per buffer target in the argument, in order. */
export function bufferTargetCount(arg: IoctlArg): number {
  switch (arg.kind) {
    case 'int':
      return 0;
    case 'pointer':
      return arg.target.kind === 'buffer' ? 1 : 0;
    case 'struct':
      return arg.pointers.filter((p) => p.target.kind === 'buffer').length;
  }
}
