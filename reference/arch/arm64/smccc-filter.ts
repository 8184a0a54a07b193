import type { Abi } from '../../abi.ts';
import { fail } from '../../errno.ts';

/**
 * The VM's SMCCC filter (arch/arm64/kvm/hypercalls.c, kvm->arch.smccc_filter): ranges of 32-bit function ids,
 * each with what KVM does with a guest's call into it. Without a range for a call, KVM handles it.
 */
export class SmcccFilter {
  private readonly ranges: { start: number; end: number; action: bigint }[] = [];
  readonly handle: bigint;
  readonly deny: bigint;
  readonly forward: bigint;

  constructor(abi: Abi) {
    this.handle = abi.constant('KVM_SMCCC_FILTER_HANDLE');
    this.deny = abi.constant('KVM_SMCCC_FILTER_DENY');
    this.forward = abi.constant('KVM_SMCCC_FILTER_FWD_TO_USER');
  }

  /**
   * KVM_ARM_VM_SMCCC_FILTER (kvm_smccc_set_filter): the checks of the struct itself, then the VM's state; the
   * first filter reserves SMCCC's architecture calls (SMC32 and SMC64) for KVM, so no range can cover them.
   */
  set(filter: { base: bigint; nr: bigint; action: bigint; pad: bigint[] }, vmHasRun: boolean): void {
    if (filter.pad.some((b) => b !== 0n)) fail('EINVAL');
    // u32 arithmetic, as in C: nr 0 or a range past 0xffffffff wraps below its start.
    const start = Number(filter.base);
    const end = (start + Number(filter.nr) - 1) >>> 0;
    if (end < start || filter.action > this.forward) fail('EINVAL');
    if (vmHasRun) fail('EBUSY');
    if (this.ranges.length === 0)
      for (const base of [0x8000_0000, 0xc000_0000])
        this.ranges.push({ start: base, end: base + 0xffff, action: this.handle });
    if (this.ranges.some((r) => start <= r.end && r.start <= end)) fail('EEXIST');
    this.ranges.push({ start, end, action: filter.action });
  }

  /** What KVM does with a call of `fid` (its low 32 bits). */
  action(fid: bigint): bigint {
    const id = Number(fid);
    return this.ranges.find((r) => r.start <= id && id <= r.end)?.action ?? this.handle;
  }
}
