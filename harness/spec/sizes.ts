// Byte sizes of the spec's scalar types and fields, which the loader, the codec and the renderers all need.
import type { FieldDef } from './types.ts';

const scalarSize: Record<FieldDef['type'], number> = {
  u8: 1,
  s8: 1,
  u16: 2,
  s16: 2,
  u32: 4,
  s32: 4,
  u64: 8,
  s64: 8,
};

export function fieldBytes(f: FieldDef): number {
  return scalarSize[f.type] * (f.flexible ? 0 : (f.count ?? 1));
}

export function scalarBytes(type: FieldDef['type']): number {
  return scalarSize[type];
}
