import { bytesToUint, uintToBytes } from '../../../harness/abi/codec.ts';
import { fail } from '../../errno.ts';
import type { VmFile } from '../../kernel.ts';

/** KVM's INVALID_GPA: what GET returns and the hypercalls compare against before an IPA was set. */
export const INVALID_GPA = (1n << 64n) - 1n;
/** Both shared structures are 64 bytes and must be 64-byte aligned (pvtime.rst; the PV-lock proposal). */
export const PV_STRUCT_SIZE = 64;
const STOLEN_TIME_OFFSET = 8n;

/**
 * Host time a vCPU thread spends runnable but off the CPU when the model preempts it — the model's
 * `run_delay` (sched_info), which PV time reports to the guest as stolen time.
 */
export const RUN_DELAY_PER_PREEMPTION_NS = 1000n;

/**
 * One vCPU's shared-memory region for a PV interface: set once through the vCPU attribute (ENXIO for another
 * attribute, EFAULT when the value cannot be read, EINVAL when misaligned, EEXIST once set, EINVAL outside
 * every memslot — in that order, arch/arm64/kvm/pvtime.c).
 */
export class PvRegion {
  base = INVALID_GPA;

  constructor(readonly attr: bigint) {}

  has(attr: bigint): bigint {
    return attr === this.attr ? 0n : fail('ENXIO');
  }

  set(vm: VmFile, attr: bigint, read: () => bigint): bigint {
    if (attr !== this.attr) fail('ENXIO');
    const ipa = read();
    if (ipa % BigInt(PV_STRUCT_SIZE) !== 0n) fail('EINVAL');
    if (this.base !== INVALID_GPA) fail('EEXIST');
    if (!vm.memslotAt(ipa)) fail('EINVAL');
    this.base = ipa;
    return 0n;
  }

  get(attr: bigint, write: (value: bigint) => void): bigint {
    if (attr !== this.attr) fail('ENXIO');
    write(this.base);
    return 0n;
  }
}

/** The structures are little-endian whatever the host's byte order (pvtime.rst). */
function putLe64(vm: VmFile, gpa: bigint, value: bigint): void {
  vm.guestView(gpa, 8)?.set(uintToBytes(value, 8, 'little'));
}

/** PV time (merged in 5.5): the stolen-time structure, kept up to date at every vCPU load. */
export class StolenTime extends PvRegion {
  private lastSteal = 0n;

  /** PV_TIME_ST: zero the structure and start counting from now; the IPA, or INVALID_GPA. */
  init(vm: VmFile, runDelay: bigint): bigint {
    if (this.base === INVALID_GPA) return INVALID_GPA;
    this.lastSteal = runDelay;
    vm.guestView(this.base, PV_STRUCT_SIZE)?.fill(0);
    return this.base;
  }

  /** At vCPU load: add the run delay accrued since the last update to the guest's stolen_time. */
  update(vm: VmFile, runDelay: bigint): void {
    if (this.base === INVALID_GPA) return;
    const steal = vm.guestView(this.base + STOLEN_TIME_OFFSET, 8);
    // Upstream skips the update (and keeps last_steal) when the structure is no longer backed.
    if (!steal) return;
    steal.set(uintToBytes(bytesToUint(steal, 'little') + runDelay - this.lastSteal, 8, 'little'));
    this.lastSteal = runDelay;
  }
}

/**
 * PV lock as proposed in 2019 (never merged): the `preempted` word is 0 while the vCPU runs and 1 once it
 * was scheduled out while runnable. The spec takes this reading of the seed's table (see the erratum in
 * spec/hypercalls/PV_LOCK_PREEMPTED.json); an exit to user space is not a preemption and leaves it alone.
 */
export class PvLock extends PvRegion {
  load(vm: VmFile): void {
    if (this.base !== INVALID_GPA) putLe64(vm, this.base, 0n);
  }

  put(vm: VmFile, preempted: boolean): void {
    if (preempted && this.base !== INVALID_GPA) putLe64(vm, this.base, 1n);
  }
}
