import type { SuiteFamily } from '../harness/plan/types.ts';
import { arm64Hypercalls } from './arm64-hypercalls.ts';
import { arm64IdRegs } from './arm64-idregs.ts';
import { arm64Psci } from './arm64-psci.ts';
import { arm64SmcccFilter } from './arm64-smccc-filter.ts';
import { fixtures } from './fixtures.ts';
import { oneReg } from './one-reg.ts';
import { s390Memop } from './s390-memop.ts';
import { vmFamily } from './vm.ts';
import { x86Family } from './x86.ts';
import { x86Events } from './x86-events.ts';
import { x86Irqchip } from './x86-irqchip.ts';
import { x86Msrs } from './x86-msrs.ts';
import { x86Registers } from './x86-registers.ts';

/** Every family of case generators, plus the shared fixtures. Adding an API adds its family here. */
export const families: SuiteFamily[] = [
  { generators: {}, fixtures },
  oneReg,
  vmFamily,
  x86Family,
  x86Events,
  x86Irqchip,
  x86Msrs,
  x86Registers,
  arm64IdRegs,
  arm64Hypercalls,
  arm64Psci,
  arm64SmcccFilter,
  s390Memop,
];
