// KVM_{GET,SET}_VCPU_EVENTS on x86 (arch/x86/kvm/x86.c: kvm_vcpu_ioctl_x86_get_vcpu_events,
// kvm_vcpu_ioctl_x86_set_vcpu_events, process_nmi). The model host has no SMM, and a VM never has
// KVM_CAP_EXCEPTION_PAYLOAD or KVM_CAP_X86_TRIPLE_FAULT_EVENT enabled (the reference does not enable them).
import type { StructValues } from '../../../harness/abi/codec.ts';
import { u64 } from '../../abi.ts';
import { fail } from '../../errno.ts';

/** The external interrupt being delivered: KVM_SET_SREGS' interrupt_bitmap and kvm_vcpu_events both reach it. */
export interface InterruptState {
  injected: boolean;
  nr: bigint;
  soft: boolean;
}

const NMI_VECTOR = 2n;
/** KVM_VCPUEVENT_VALID_* by name, as the spec's constants give them. */
type Flag = 'NMI_PENDING' | 'SIPI_VECTOR' | 'SHADOW' | 'SMM' | 'PAYLOAD' | 'TRIPLE_FAULT';
const FLAGS: readonly Flag[] = ['NMI_PENDING', 'SIPI_VECTOR', 'SHADOW', 'SMM', 'PAYLOAD', 'TRIPLE_FAULT'];

export class X86Events {
  private exception = { injected: 0n, nr: 0n, hasErrorCode: 0n, errorCode: 0n, payload: 0n };
  private shadow = 0n;
  private nmi = { injected: 0n, masked: 0n, pending: 0n, queued: 0n };
  /** The local APIC's SIPI vector: what a SIPI points the vCPU at. */
  sipiVector = 0n;

  constructor(
    readonly interrupt: InterruptState,
    private readonly flag: (name: Flag) => bigint,
    private readonly hasLapic: boolean,
  ) {}

  /** process_nmi: queued NMIs join the pending ones, at most 2, or 1 while NMIs are masked or one is injected. */
  private processNmi(): void {
    const limit = this.nmi.masked !== 0n || this.nmi.injected !== 0n ? 1n : 2n;
    const pending = this.nmi.pending + this.nmi.queued;
    this.nmi.pending = pending < limit ? pending : limit;
    this.nmi.queued = 0n;
  }

  /** A zeroed struct with the state; the SIPI vector is never reported. */
  get(): StructValues {
    this.processNmi();
    const { exception: e, interrupt: i, nmi } = this;
    return {
      'exception.injected': e.injected,
      'exception.nr': e.nr,
      'exception.has_error_code': e.hasErrorCode,
      'exception.error_code': e.errorCode,
      'interrupt.injected': i.injected && !i.soft ? 1n : 0n,
      'interrupt.nr': i.nr,
      'interrupt.shadow': this.shadow,
      'nmi.injected': nmi.injected,
      'nmi.pending': nmi.pending,
      'nmi.masked': nmi.masked,
      flags: this.flag('NMI_PENDING') | this.flag('SHADOW') | this.flag('SMM'),
      exception_payload: e.payload,
    };
  }

  /**
   * The checks that refuse the struct before anything changes, then the state part by part; the SMM and
   * triple-fault parts come last and can still refuse it, with the rest already set.
   */
  set(values: StructValues): void {
    const v = (field: string) => u64(values, field);
    const flags = v('flags');
    const known = FLAGS.reduce((all, name) => all | this.flag(name), 0n);
    if ((flags & ~known) !== 0n || (flags & this.flag('PAYLOAD')) !== 0n) fail('EINVAL');
    // Without payloads enabled, a pending exception and its payload are not taken.
    const injected = v('exception.injected');
    const nr = v('exception.nr');
    if (injected !== 0n && (nr > 31n || nr === NMI_VECTOR)) fail('EINVAL');
    this.processNmi();
    this.exception = {
      injected,
      nr,
      hasErrorCode: v('exception.has_error_code'),
      errorCode: v('exception.error_code'),
      payload: v('exception_payload'),
    };
    Object.assign(this.interrupt, {
      injected: v('interrupt.injected') !== 0n,
      nr: v('interrupt.nr'),
      soft: v('interrupt.soft') !== 0n,
    });
    if ((flags & this.flag('SHADOW')) !== 0n) this.shadow = v('interrupt.shadow');
    this.nmi.injected = v('nmi.injected');
    if ((flags & this.flag('NMI_PENDING')) !== 0n)
      Object.assign(this.nmi, { pending: 0n, queued: v('nmi.pending') });
    this.nmi.masked = v('nmi.masked');
    if ((flags & this.flag('SIPI_VECTOR')) !== 0n && this.hasLapic) this.sipiVector = v('sipi_vector');
    // No SMM on the model host: entering it, an SMI or an NMI inside SMM is refused, with the rest set (a
    // vCPU in INIT_RECEIVED has no check of its own before: this host's 6.18 took the rest there too).
    const smm = ['smi.smm', 'smi.pending', 'smi.smm_inside_nmi'].some((f) => v(f) !== 0n);
    if ((flags & this.flag('SMM')) !== 0n && smm) fail('EINVAL');
    if ((flags & this.flag('TRIPLE_FAULT')) !== 0n) fail('EINVAL');
  }
}
