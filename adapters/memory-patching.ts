import type { Endian } from '../harness/abi/codec.ts';
import type { PointerPatch } from './backend.ts';

const nothingToRestore = () => undefined;

/**
 * Writes real addresses into a struct image's pointer fields and, after the call, puts back the bytes
 * the case sent — unless the kernel changed a field, which the case must then see. Shared by every
 * adapter that places struct images in real (or simulated) user memory.
 */
export function patchPointers(
  image: Uint8Array,
  patches: PointerPatch[],
  addressOf: (p: PointerPatch) => bigint,
  endian: Endian,
): () => void {
  if (patches.length === 0) return nothingToRestore;
  const little = endian === 'little';
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const saved = patches.map((p) => {
    const original = view.getBigUint64(p.offset, little);
    const address = addressOf(p);
    view.setBigUint64(p.offset, address, little);
    return { offset: p.offset, original, address };
  });
  return () => {
    for (const { offset, original, address } of saved)
      if (view.getBigUint64(offset, little) === address) view.setBigUint64(offset, original, little);
  };
}
