import type { CaseGenerator, SuiteFamily } from '../harness/plan/types.ts';
import { accessGenerators } from './s390/access.ts';
import { argGenerators } from './s390/args.ts';
import { cmpxchgGenerators } from './s390/cmpxchg.ts';
import { injectGenerators } from './s390/inject.ts';
import { keyGenerators } from './s390/keys.ts';
import { prefixGenerators } from './s390/prefix.ts';
import { propertyGenerators } from './s390/properties.ts';
import { pvGenerators } from './s390/pv.ts';
import { stateGenerators } from './s390/state.ts';
import { translationGenerators } from './s390/translation.ts';

const groups: Record<string, CaseGenerator>[] = [
  argGenerators,
  accessGenerators,
  keyGenerators,
  injectGenerators,
  cmpxchgGenerators,
  translationGenerators,
  prefixGenerators,
  stateGenerators,
  propertyGenerators,
  pvGenerators,
];

/** s390 guest memory: KVM_S390_MEM_OP and the ioctls its cases set guest state with, as `s390-memop.<name>`. */
export const s390Memop: SuiteFamily = {
  generators: Object.fromEntries(
    groups.flatMap((group) => Object.entries(group)).map(([name, gen]) => [`s390-memop.${name}`, gen]),
  ),
};
