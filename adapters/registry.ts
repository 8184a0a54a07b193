import { KvmspecError, ErrorCode } from '../harness/errors.ts';
import type { BackendFactory } from './backend.ts';
import { linuxFactory } from './linux.ts';
import { qemuArm64Factory, qemuArm64Gicv3Factory, qemuPpc64leFactory } from './qemu.ts';
import { referenceFactory } from './reference.ts';

/** Backends by the name `--backend` takes. Each entry is a factory; nothing is started until a run asks. */
const factories: BackendFactory[] = [
  referenceFactory,
  linuxFactory,
  qemuArm64Factory,
  qemuArm64Gicv3Factory,
  qemuPpc64leFactory,
];

export function backendNames(): string[] {
  return factories.map((f) => f.name);
}

export function backendFactory(name: string): BackendFactory {
  const found = factories.find((f) => f.name === name);
  if (!found) {
    throw new KvmspecError(
      ErrorCode.Usage,
      `unknown backend '${name}' (known: ${backendNames().join(', ')})`,
    );
  }
  return found;
}
