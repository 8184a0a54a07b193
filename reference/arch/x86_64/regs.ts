// KVM_{GET,SET}_REGS on x86 (arch/x86/kvm/x86.c: __get_regs, __set_regs, kvm_vcpu_reset): the general-purpose
// registers, RIP and RFLAGS, kept as given but for RFLAGS' fixed bit.
import type { StructValues } from '../../../harness/abi/codec.ts';
import { u64 } from '../../abi.ts';

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
