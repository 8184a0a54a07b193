// KVM_{GET,SET}_REGS and KVM_{GET,SET}_DEBUGREGS on x86 (arch/x86/kvm/x86.c: __get_regs, __set_regs,
// kvm_vcpu_ioctl_x86_{get,set}_debugregs, kvm_vcpu_reset): the general-purpose registers, RIP and RFLAGS, kept
// as given but for RFLAGS' fixed bit; and the debug registers, checked, then kept as given.
import type { StructValues } from '../../../harness/abi/codec.ts';
import { u64 } from '../../abi.ts';
import { fail } from '../../errno.ts';

const NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
] as const; // prettier-ignore
/** RFLAGS bit 1, which reads 1 whatever is written (X86_EFLAGS_FIXED). */
const RFLAGS_FIXED = 0x2n;

export class X86Registers {
  private readonly values = new Map<string, bigint>(NAMES.map((n) => [n, 0n]));

  /**
   * kvm_vcpu_reset: RIP at the reset vector's offset, RFLAGS with only its fixed bit, and RDX the processor
   * signature — CPUID leaf 1's EAX, or 0x600 without one, as a new vCPU always is.
   */
  constructor() {
    this.values.set('rdx', 0x600n);
    this.values.set('rip', 0xfff0n);
    this.values.set('rflags', RFLAGS_FIXED);
  }

  get(): StructValues {
    return Object.fromEntries(this.values);
  }

  set(values: StructValues): void {
    for (const n of NAMES) this.values.set(n, u64(values, n));
    this.values.set('rflags', u64(values, 'rflags') | RFLAGS_FIXED);
  }

  set rip(value: bigint) {
    this.values.set('rip', value);
  }
}

/** DR6 and DR7 at reset: their bits that read as 1 with nothing to report or enabled. */
const DR6_RESET = 0xffff_0ff0n;
const DR7_RESET = 0x400n;

export class X86DebugRegisters {
  private db = [0n, 0n, 0n, 0n];
  private dr6 = DR6_RESET;
  private dr7 = DR7_RESET;

  /** A zeroed struct with the registers: flags and reserved words read 0. */
  get(): StructValues {
    return { db: [...this.db], dr6: this.dr6, dr7: this.dr7 };
  }

  /** Flags must be 0, and DR6 and DR7 32-bit (kvm_dr6_valid, kvm_dr7_valid); the reserved words are not read. */
  set(values: StructValues): void {
    const [dr6, dr7] = [u64(values, 'dr6'), u64(values, 'dr7')];
    if (u64(values, 'flags') !== 0n || dr6 >> 32n !== 0n || dr7 >> 32n !== 0n) fail('EINVAL');
    this.db = [...(values.db as bigint[])];
    this.dr6 = dr6;
    this.dr7 = dr7;
  }
}
