import type { Backend } from '../../adapters/backend.ts';
import { KvmSession } from '../session.ts';
import type { SpecTree } from '../spec/tree.ts';
import type { Arch } from '../spec/types.ts';

/** A capability whose claimed value is not what KVM_CHECK_EXTENSION answers. */
export interface ProfileMismatch {
  arch: Arch;
  capability: string;
  /** What the profile claims; absent when it claims nothing for a capability the backend has. */
  claimed?: number;
  probed: number;
}

/**
 * Checks a backend's claimed capabilities against what it probes: every claimed value must be what
 * KVM_CHECK_EXTENSION answers, and every spec capability it answers non-zero must be claimed. Backends
 * that claim nothing are not checked.
 */
export async function verifyProfile(
  backend: Backend,
  spec: SpecTree,
  arch: Arch,
  revision: string,
): Promise<ProfileMismatch[]> {
  const claimed = backend.profile.capabilities;
  if (!claimed) return [];
  // The capabilities the spec defines for this arch (some uapi headers define a number only where it applies).
  const known = (spec.constantSets.get('capabilities')?.doc.constants ?? [])
    .map((c) => c.name)
    .filter((name) => spec.hasConstant(name, arch));
  const session = new KvmSession(backend, spec, arch, revision);
  const mismatches: ProfileMismatch[] = [];
  try {
    const system = await session.openSystem();
    for (const name of new Set([...known, ...Object.keys(claimed)])) {
      if (!spec.hasConstant(name, arch)) {
        mismatches.push({ arch, capability: name, claimed: claimed[name] ?? 0, probed: 0 });
        continue;
      }
      const r = await session.call(system, 'KVM_CHECK_EXTENSION', spec.constant(name, arch));
      const probed = r.errno === null ? Number(r.ret) : 0;
      const claim = claimed[name];
      if (claim === undefined ? probed !== 0 : claim !== probed) {
        mismatches.push({
          arch,
          capability: name,
          ...(claim !== undefined ? { claimed: claim } : {}),
          probed,
        });
      }
    }
  } finally {
    await session.release();
  }
  return mismatches;
}
