import type { SpecTree } from '../../harness/spec/tree.ts';
import type { Arch } from '../../harness/spec/types.ts';
import type { ArchModel } from '../kernel.ts';
import { arm64Model } from './arm64/model.ts';
import { ppc64leModel } from './ppc64le/model.ts';
import { s390xModel } from './s390x/model.ts';
import { x86_64Model } from './x86_64/model.ts';

const models: Record<Arch, (spec: SpecTree) => ArchModel> = {
  arm64: arm64Model,
  s390x: s390xModel,
  x86_64: x86_64Model,
  ppc64le: ppc64leModel,
};

export function archModel(arch: Arch, spec: SpecTree): ArchModel {
  return models[arch](spec);
}
