import {
  enableCapFlagsIgnored,
  idRegisterAcceptsRaisedField,
  powerOffIgnored,
  pvTimeIpaTwice,
  regMaskReservedIgnored,
  smcccFilterPadIgnored,
} from './arm64.ts';
import {
  copiesBeforeLookup,
  cpuidLimitOffByOne,
  getIrqchipFreshStruct,
  irqchipAfterVcpus,
  oneRegHostByteOrder,
  picEdgeWithdrawn,
  setLapicKeepsVersion,
} from './common.ts';
import { fprApartFromVsr } from './ppc64.ts';
import {
  checkOnlySkipsKeyCheck,
  cmpxchgWritesOnMismatch,
  edatIgnored,
  memopMaxSizeOffByOne,
  mpStateWrittenOut,
  runIgnoresDirtyPrefix,
} from './s390.ts';
import type { FaultyBackend } from './faulty.ts';

export const gallery: FaultyBackend[] = [
  copiesBeforeLookup,
  cpuidLimitOffByOne,
  oneRegHostByteOrder,
  irqchipAfterVcpus,
  getIrqchipFreshStruct,
  setLapicKeepsVersion,
  picEdgeWithdrawn,
  idRegisterAcceptsRaisedField,
  regMaskReservedIgnored,
  pvTimeIpaTwice,
  powerOffIgnored,
  smcccFilterPadIgnored,
  enableCapFlagsIgnored,
  memopMaxSizeOffByOne,
  cmpxchgWritesOnMismatch,
  checkOnlySkipsKeyCheck,
  runIgnoresDirtyPrefix,
  edatIgnored,
  mpStateWrittenOut,
  fprApartFromVsr,
];
