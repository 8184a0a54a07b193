// KVM_{GET,SET}_XCRS on x86 (arch/x86/kvm/x86.c: kvm_vcpu_ioctl_x86_{get,set}_xcrs, __kvm_set_xcr): XCR0, the
// one extended control register, as a host with XSAVE has it. The entries are u64 pairs in the spec: index and
// reserved word, then value.
import type { StructValues } from '../../../harness/abi/codec.ts';
import { u64 } from '../../abi.ts';
import { fail } from '../../errno.ts';

const KVM_MAX_XCRS = 16n;
const XCR_XFEATURE_ENABLED_MASK = 0n;
const FP = 1n;
const SSE = 1n << 1n;
const YMM = 1n << 2n;
const BNDREGS = 1n << 3n;
const BNDCSR = 1n << 4n;
/** AVX-512's three components: the opmask registers and the two halves of the ZMM state. */
const AVX512 = 0x7n << 5n;
/** AMX's two components: tile configuration and tile data. */
const XTILE = 0x3n << 17n;
/** What the model host's XSAVE supports: x87, SSE, AVX and AVX-512. */
export const HOST_XCR0 = FP | SSE | YMM | AVX512;

export class X86Xcrs {
  private xcr0 = FP;

  /** One XCR reported, XCR0; the other entries and the padding zeroed. */
  get(): StructValues {
    const xcrs = new Array<bigint>(32).fill(0n);
    xcrs[0] = XCR_XFEATURE_ENABLED_MASK;
    xcrs[1] = this.xcr0;
    return { nr_xcrs: 1n, flags: 0n, xcrs };
  }

  /** The first entry for XCR0 among the first nr_xcrs is applied, if valid for the guest; others are skipped. */
  set(values: StructValues, guestSupported: bigint): void {
    const n = u64(values, 'nr_xcrs');
    if (n > KVM_MAX_XCRS || u64(values, 'flags') !== 0n) fail('EINVAL');
    const words = values.xcrs as bigint[];
    for (let i = 0; i < Number(n); i++) {
      if ((words[2 * i]! & 0xffff_ffffn) !== XCR_XFEATURE_ENABLED_MASK) continue;
      const xcr0 = words[2 * i + 1]!;
      if (!validXcr0(xcr0, guestSupported)) fail('EINVAL');
      this.xcr0 = xcr0;
      return;
    }
  }
}

/** __kvm_set_xcr's checks on XCR0: x87 on, AVX only with SSE, only offered features, whole MPX, AVX-512, AMX. */
function validXcr0(xcr0: bigint, guestSupported: bigint): boolean {
  const whole = (mask: bigint) => (xcr0 & mask) === 0n || (xcr0 & mask) === mask;
  if ((xcr0 & FP) === 0n || ((xcr0 & YMM) !== 0n && (xcr0 & SSE) === 0n)) return false;
  if ((xcr0 & ~(guestSupported | FP)) !== 0n) return false;
  if (!whole(BNDREGS | BNDCSR) || !whole(AVX512) || !whole(XTILE)) return false;
  return (xcr0 & AVX512) === 0n || (xcr0 & YMM) !== 0n;
}
