import { readUint, writeUint, type Endian } from '../harness/abi/codec.ts';
import type { PointerPatch } from './backend.ts';

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
  const saved = patches.map((p) => ({
    p,
    original: image.slice(p.offset, p.offset + 8),
    address: addressOf(p),
  }));
  for (const { p, address } of saved) writeUint(image, p.offset, 8, address, endian);
  return () => {
    for (const { p, original, address } of saved) {
      if (readUint(image, p.offset, 8, endian) === address) image.set(original, p.offset);
    }
  };
}
