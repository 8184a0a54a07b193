import type { SpecTree } from '../harness/spec/tree.ts';
import type { Arch } from '../harness/spec/types.ts';
import type { VmFile } from './kernel.ts';

export type CapabilityValue = bigint | ((vm: VmFile | null) => bigint);

/**
 * KVM_CHECK_EXTENSION for one arch: the values by capability name (numbers come from the spec);
 * every capability the arch does not list answers 0, as upstream does for unknown numbers.
 */
export function capabilityTable(
  spec: SpecTree,
  arch: Arch,
  values: Record<string, CapabilityValue>,
): (cap: bigint, vm: VmFile | null) => bigint {
  const byNumber = new Map<bigint, CapabilityValue>();
  for (const [name, value] of Object.entries(values)) byNumber.set(spec.constant(name, arch), value);
  return (cap, vm) => {
    const v = byNumber.get(cap);
    if (v === undefined) return 0n;
    return typeof v === 'function' ? v(vm) : v;
  };
}
