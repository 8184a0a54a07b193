import { decodeStruct, encodeStruct, type Endian, type StructValues } from '../harness/abi/codec.ts';
import type { SpecTree } from '../harness/spec/tree.ts';
import type { Arch, StructLayout } from '../harness/spec/types.ts';
import type { UserMemory } from './usermem.ts';

/**
 * The ABI the reference speaks, taken from the spec (numbers, layouts, byte order) so that the reference
 * and the suite can never disagree about encodings — only about behaviour, which the reference models
 * on its own from upstream's source.
 */
export class Abi {
  readonly endian: Endian;
  private readonly names = new Map<bigint, string>();
  /** Layouts by struct name: the arch and revision never change, so each is looked up once. */
  private readonly layouts = new Map<string, StructLayout>();

  constructor(
    readonly spec: SpecTree,
    readonly arch: Arch,
    readonly revision: string,
  ) {
    this.endian = spec.archInfo(arch).endian;
    // Only the ioctls the spec gives this arch: another arch's struct may have no layout here.
    for (const [name, { doc }] of spec.ioctls) {
      if (doc.arches.includes(arch)) this.names.set(spec.ioctlNumber(name, arch, { revision }), name);
    }
  }

  /** The spec name of a request number, or undefined for numbers the spec does not know. */
  ioctlName(request: bigint): string | undefined {
    return this.names.get(request);
  }

  constant(name: string): bigint {
    return this.spec.constant(name, this.arch);
  }

  layout(struct: string): StructLayout {
    let layout = this.layouts.get(struct);
    if (!layout) {
      layout = this.spec.layout(struct, { arch: this.arch, revision: this.revision });
      this.layouts.set(struct, layout);
    }
    return layout;
  }

  readStruct(mem: UserMemory, addr: bigint, struct: string): StructValues {
    const layout = this.layout(struct);
    return decodeStruct(layout, mem.copyFromUser(addr, layout.size), this.endian);
  }

  writeStruct(mem: UserMemory, addr: bigint, struct: string, values: StructValues): void {
    const layout = this.layout(struct);
    mem.copyToUser(addr, encodeStruct(layout, values, this.endian));
  }

  structSize(struct: string): number {
    return this.layout(struct).size;
  }
}

export function u64(values: StructValues, field: string): bigint {
  const v = values[field];
  if (typeof v !== 'bigint') throw new Error(`field ${field} is not a scalar`);
  return v;
}
