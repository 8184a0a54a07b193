import type { Abi } from '../../abi.ts';
import { psciCall, PsciIds, type PsciCaller, type PsciOutcome } from './psci.ts';
import type { SmcccFilter } from './smccc-filter.ts';

/** What the SMCCC handler needs from the calling vCPU (arch/arm64/kvm/hypercalls.c, pvtime.c). */
export interface SmcccCaller extends PsciCaller {
  /** The proposal-2019-pvlock revision is in effect (upstream never merged PV lock). */
  readonly pvlock: boolean;
  /** The STD_HYP hypercall bitmap still has its PV_TIME bit. */
  readonly pvTimeAllowed: boolean;
  /** The host's level of ARCH_WORKAROUND_n, as its firmware register reports it. */
  workaroundLevel(n: 1 | 2 | 3): bigint;
  stolenTimeSet(): boolean;
  /** PV_TIME_ST: set up the structure, return its IPA or all-ones. */
  stolenTimeInit(): bigint;
  pvlockBase(): bigint;
  /** The VM's SMCCC filter, consulted before anything else. */
  readonly filter: SmcccFilter;
}

/**
 * The x0 a call returns to the guest, a system event (PSCI), or a call the filter forwards to user space, which
 * KVM_RUN hands over as KVM_EXIT_HYPERCALL without answering it.
 */
export type SmcccOutcome = PsciOutcome | { forwarded: bigint };

/** SMCCC_RET_NOT_SUPPORTED (-1) as x0 holds it. */
export const NOT_SUPPORTED = (1n << 64n) - 1n;
const SUCCESS = 0n;

/** SMCCC_ARCH_WORKAROUND_RET_UNAFFECTED and SMCCC_RET_NOT_REQUIRED, as x0 holds them. */
const UNAFFECTED = 1n;
const NOT_REQUIRED = (1n << 64n) - 2n;

/**
 * SMCCC_ARCH_FEATURES of a workaround, from the host state its firmware register reports: NOT_AVAIL (and
 * _2's UNKNOWN) is not supported, AVAIL supported, NOT_REQUIRED "unaffected" — which _2 says as NOT_REQUIRED.
 */
function workaroundAnswer(n: 1 | 2 | 3, caller: SmcccCaller): bigint {
  const level = caller.workaroundLevel(n);
  const [avail, notRequired] = n === 2 ? [2n, 3n] : [1n, 2n];
  if (level === notRequired) return n === 2 ? NOT_REQUIRED : UNAFFECTED;
  return level === avail ? SUCCESS : NOT_SUPPORTED;
}

/** SMCCC function ids by their spec constant names: the reference takes numbers from the spec. */
export class SmcccIds {
  readonly version: bigint;
  readonly archFeatures: bigint;
  readonly pvTimeFeatures: bigint;
  readonly pvTimeSt: bigint;
  readonly pvLockFeatures: bigint;
  readonly pvLockPreempted: bigint;
  readonly version11: bigint;
  readonly workarounds: readonly [bigint, bigint, bigint];
  readonly psci: PsciIds;

  constructor(abi: Abi) {
    this.version = abi.constant('ARM_SMCCC_VERSION_FUNC_ID');
    this.archFeatures = abi.constant('ARM_SMCCC_ARCH_FEATURES_FUNC_ID');
    this.pvTimeFeatures = abi.constant('ARM_SMCCC_HV_PV_TIME_FEATURES');
    this.pvTimeSt = abi.constant('ARM_SMCCC_HV_PV_TIME_ST');
    this.pvLockFeatures = abi.constant('ARM_SMCCC_HV_PV_LOCK_FEATURES');
    this.pvLockPreempted = abi.constant('ARM_SMCCC_HV_PV_LOCK_PREEMPTED');
    this.version11 = abi.constant('ARM_SMCCC_VERSION_1_1');
    this.workarounds = [1, 2, 3].map((n) => abi.constant(`ARM_SMCCC_ARCH_WORKAROUND_${n}`)) as [
      bigint,
      bigint,
      bigint,
    ];
    this.psci = new PsciIds(abi);
  }
}

/**
 * One HVC or SMC #0 from the guest: x0 is the function id (its low 32 bits), x1..x3 the arguments; the HVC
 * immediate plays no part (arch/arm64/kvm/handle_exit.c hands every HVC, and every SMC #0, to the SMCCC
 * handler). Every call KVM answers sets x0 and zeroes x1..x3. What the handler does not know itself goes to
 * PSCI, which answers NOT_SUPPORTED for an id it does not know either.
 */
export function smcccCall(
  ids: SmcccIds,
  caller: SmcccCaller,
  [x0, x1, x2, x3]: readonly bigint[],
): SmcccOutcome {
  const fid = x0! & 0xffff_ffffn;
  const arg = x1! & 0xffff_ffffn;
  const action = caller.filter.action(fid);
  if (action === caller.filter.deny) return NOT_SUPPORTED;
  if (action === caller.filter.forward) return { forwarded: fid };
  switch (fid) {
    case ids.version:
      return ids.version11;
    case ids.archFeatures: {
      const workaround = ids.workarounds.indexOf(arg);
      if (workaround >= 0) return workaroundAnswer((workaround + 1) as 1 | 2 | 3, caller);
      if (arg === ids.pvTimeFeatures) return caller.pvTimeAllowed ? SUCCESS : NOT_SUPPORTED;
      if (arg === ids.pvLockFeatures && caller.pvlock) return SUCCESS;
      return NOT_SUPPORTED;
    }
    case ids.pvTimeFeatures:
      if (!caller.pvTimeAllowed) return NOT_SUPPORTED;
      return (arg === ids.pvTimeFeatures || arg === ids.pvTimeSt) && caller.stolenTimeSet()
        ? SUCCESS
        : NOT_SUPPORTED;
    case ids.pvTimeSt:
      return caller.pvTimeAllowed ? caller.stolenTimeInit() : NOT_SUPPORTED;
  }
  if (caller.pvlock && fid === ids.pvLockFeatures)
    return arg === ids.pvLockFeatures || arg === ids.pvLockPreempted ? SUCCESS : NOT_SUPPORTED;
  if (caller.pvlock && fid === ids.pvLockPreempted) return caller.pvlockBase();
  return psciCall(ids.psci, caller, fid, [x1!, x2!, x3!]);
}
