import { fieldBytes, scalarBytes } from '../spec/sizes.ts';
import { pooledBytes } from './bytes.ts';
import { fieldIndex } from '../spec/tree.ts';
import type { FieldDef, StructLayout } from '../spec/types.ts';

export type Endian = 'little' | 'big';
/** A field's value: one integer, or one per element for arrays. */
export type FieldValue = bigint | bigint[];
export type StructValues = Record<string, FieldValue>;

function readScalar(view: DataView, offset: number, type: FieldDef['type'], little: boolean): bigint {
  switch (type) {
    case 'u8':
      return BigInt(view.getUint8(offset));
    case 's8':
      return BigInt(view.getInt8(offset));
    case 'u16':
      return BigInt(view.getUint16(offset, little));
    case 's16':
      return BigInt(view.getInt16(offset, little));
    case 'u32':
      return BigInt(view.getUint32(offset, little));
    case 's32':
      return BigInt(view.getInt32(offset, little));
    case 'u64':
      return view.getBigUint64(offset, little);
    case 's64':
      return view.getBigInt64(offset, little);
  }
}

function writeScalar(
  view: DataView,
  offset: number,
  type: FieldDef['type'],
  value: bigint,
  little: boolean,
): void {
  // Accept both signed and unsigned spellings of a value, as C does on assignment: keep the low bits
  // (setBigUint64 wraps modulo 2^64 itself).
  switch (type) {
    case 'u8':
    case 's8':
      view.setUint8(offset, Number(BigInt.asUintN(8, value)));
      return;
    case 'u16':
    case 's16':
      view.setUint16(offset, Number(BigInt.asUintN(16, value)), little);
      return;
    case 'u32':
    case 's32':
      view.setUint32(offset, Number(BigInt.asUintN(32, value)), little);
      return;
    case 'u64':
    case 's64':
      view.setBigUint64(offset, value, little);
      return;
  }
}

/** Size of an image holding `flexibleCount` elements of the layout's flexible array (if it has one). */
export function imageSize(layout: StructLayout, flexibleCount = 0): number {
  const flex = fieldIndex(layout).flexible;
  return layout.size + (flex ? flexibleCount * scalarBytes(flex.type) : 0);
}

/**
 * Encodes a struct image from field values. Fields left out are zero, as are padding and gaps. A value
 * given for a field the layout lacks is an error: cases must not silently write nothing.
 */
export function encodeStruct(layout: StructLayout, values: StructValues, endian: Endian): Uint8Array {
  const flex = fieldIndex(layout).flexible;
  const flexValue = flex ? values[flex.key] : undefined;
  const flexCount = Array.isArray(flexValue) ? flexValue.length : 0;
  const bytes = pooledBytes(imageSize(layout, flexCount));
  writeFields(layout, bytes, values, endian);
  return bytes;
}

/** Writes the given fields into an existing image (e.g. to change one field of a struct read back). */
export function writeFields(
  layout: StructLayout,
  bytes: Uint8Array,
  values: StructValues,
  endian: Endian,
): void {
  const little = endian === 'little';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields = fieldIndex(layout).byKey;
  for (const [name, value] of Object.entries(values)) {
    const f = fields.get(name);
    if (!f) throw new Error(`struct has no field ${name}`);
    const elems = Array.isArray(value) ? value : [value];
    const capacity = f.flexible ? (bytes.length - f.offset) / scalarBytes(f.type) : (f.count ?? 1);
    if (
      elems.length > capacity ||
      (!Array.isArray(value) && (f.count !== undefined || f.flexible)) ||
      (Array.isArray(value) && f.count === undefined && !f.flexible)
    ) {
      throw new Error(
        `field ${name}: ${Array.isArray(value) ? `${elems.length} elements` : 'a scalar'} does not fit ${f.type}${f.flexible ? '[]' : f.count ? `[${f.count}]` : ''}`,
      );
    }
    elems.forEach((v, i) => writeScalar(view, f.offset + i * scalarBytes(f.type), f.type, v, little));
  }
}

/** Decodes every field (union members all read the same bytes, as in C). Flexible arrays read to the end. */
export function decodeStruct(layout: StructLayout, bytes: Uint8Array, endian: Endian): StructValues {
  if (bytes.length < layout.size)
    throw new Error(`image of ${bytes.length} bytes is shorter than sizeof ${layout.size}`);
  const little = endian === 'little';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: StructValues = {};
  for (const f of fieldIndex(layout).list) {
    const width = scalarBytes(f.type);
    if (f.flexible || f.count !== undefined) {
      const n = f.flexible ? Math.floor((bytes.length - f.offset) / width) : (f.count ?? 1);
      out[f.key] = Array.from({ length: n }, (_, i) =>
        readScalar(view, f.offset + i * width, f.type, little),
      );
    } else {
      out[f.key] = readScalar(view, f.offset, f.type, little);
    }
  }
  return out;
}

/** The pointer fields of a layout with their offsets: the places an adapter patches with real addresses. */
export function pointerFields(layout: StructLayout): FieldDef[] {
  return fieldIndex(layout).list.filter((f) => f.pointer);
}

export function fieldSpan(f: FieldDef): { offset: number; size: number } {
  return { offset: f.offset, size: fieldBytes(f) };
}

/** The scalar type of an unsigned integer of each size. */
const UINT_OF_SIZE = { 1: 'u8', 2: 'u16', 4: 'u32', 8: 'u64' } as const;

/** Reads or writes one unsigned integer of `size` bytes (1, 2, 4, 8) in a given byte order. */
export function readUint(bytes: Uint8Array, offset: number, size: number, endian: Endian): bigint {
  const type = UINT_OF_SIZE[size as 1 | 2 | 4 | 8];
  if (!type) throw new Error(`no integer of ${size} bytes`);
  return readScalar(
    new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    offset,
    type,
    endian === 'little',
  );
}

export function writeUint(
  bytes: Uint8Array,
  offset: number,
  size: number,
  value: bigint,
  endian: Endian,
): void {
  const type = UINT_OF_SIZE[size as 1 | 2 | 4 | 8];
  if (!type) throw new Error(`no integer of ${size} bytes`);
  writeScalar(
    new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    offset,
    type,
    value,
    endian === 'little',
  );
}

/** Encodes a register value (or any integer) into `size` bytes; values wider than 8 bytes use two's halves. */
export function uintToBytes(value: bigint, size: number, endian: Endian): Uint8Array {
  const out = new Uint8Array(size);
  let v = BigInt.asUintN(size * 8, value);
  for (let i = 0; i < size; i++) {
    out[endian === 'little' ? i : size - 1 - i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function bytesToUint(bytes: Uint8Array, endian: Endian): bigint {
  let v = 0n;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[endian === 'little' ? bytes.length - 1 - i : i] ?? 0;
    v = (v << 8n) | BigInt(b);
  }
  return v;
}
