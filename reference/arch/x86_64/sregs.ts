// KVM_{GET,SET}_SREGS on x86 (arch/x86/kvm/x86.c: __get_sregs, kvm_is_valid_sregs, __set_sregs_common,
// __set_sregs; lapic.c: kvm_apic_set_base, kvm_lapic_set_tpr). The whole struct is checked before anything
// is set, so a refused call changes nothing. Segment attributes are kept as given: how a vendor module folds
// an unusable or absent segment (VMX drops its attributes) is neither modelled nor tested.
import type { StructValues } from '../../../harness/abi/codec.ts';
import { fail } from '../../errno.ts';
import { u64 } from '../../abi.ts';
import type { InterruptState } from './events.ts';

const SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
const SEGMENT_FIELDS = [
  'base',
  'limit',
  'selector',
  'type',
  'present',
  'dpl',
  'db',
  's',
  'l',
  'g',
  'avl',
  'unusable',
];
const TABLES = ['gdt', 'idt'] as const;

const CR0_PE = 1n;
const CR0_ET = 1n << 4n;
const CR0_NW = 1n << 29n;
const CR0_CD = 1n << 30n;
const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
/**
 * The CR4 bits the model host lets a guest set: VME through OSXMMEXCPT, UMIP, FSGSBASE, OSXSAVE, SMEP, SMAP
 * and PKE (the bits this project's x86 host accepts for a vCPU without guest CPUID). Real hosts differ by
 * their CPU features; the suite sets only bits no CPU defines.
 */
const CR4_ALLOWED =
  0x7ffn | (1n << 11n) | (1n << 16n) | (1n << 18n) | (1n << 20n) | (1n << 21n) | (1n << 22n);
const EFER_LME = 1n << 8n;
const EFER_LMA = 1n << 10n;

const APIC_DEFAULT_BASE = 0xfee0_0000n;
const APIC_BASE_BSP = 1n << 8n;
const APIC_BASE_EXTD = 1n << 10n;
const APIC_BASE_ENABLE = 1n << 11n;
/** kvm_apic_set_base: bits 0-7 and 9 are reserved whatever the guest's CPUID says. */
const APIC_BASE_RESERVED = 0x2ffn;

/** A guest's physical-address width when its CPUID has no leaf 0x80000008 (cpuid_query_maxphyaddr). */
export const DEFAULT_MAXPHYADDR = 36n;
const NR_INTERRUPTS = 256;
const TPR = 0x80;
const PPR = 0xa0;

/** What the rest of the vCPU lends the special registers. */
export interface SregsHost {
  efer: bigint;
  /** The in-kernel local APIC's register page, if the vCPU has one: CR8 is its TPR. */
  readonly lapic: Uint8Array | undefined;
  /** From the guest CPUID: x2APIC support, and the physical-address width. */
  readonly x2apic: boolean;
  readonly maxPhysAddr: bigint;
  /** The external interrupt being delivered, which interrupt_bitmap shows and queues. */
  readonly interrupt: InterruptState;
}

/** Bits at and above the guest's physical-address width, reserved in CR3 and the APIC base. */
const aboveMaxPhysAddr = (width: bigint) => BigInt.asUintN(64, ~0n << width);

export class X86SpecialRegisters {
  /** Segments, GDTR and IDTR by C path (`cs.base`), at kvm_vcpu_reset's values as VMX sets them. */
  private readonly state = new Map<string, bigint>();
  private cr0 = CR0_NW | CR0_CD | CR0_ET;
  private cr2 = 0n;
  private cr3 = 0n;
  private cr4 = 0n;
  /** CR8 of a vCPU without an in-kernel local APIC. */
  private cr8 = 0n;
  private apicBase: bigint;

  constructor(
    private readonly host: SregsHost,
    bootProcessor: boolean,
  ) {
    // Data segments; CS, TR and the LDT are set again below.
    for (const seg of SEGMENTS) this.setSegment(seg, { limit: 0xffffn, present: 1n, s: 1n, type: 3n });
    this.setSegment('cs', {
      selector: 0xf000n,
      base: 0xffff_0000n,
      limit: 0xffffn,
      present: 1n,
      s: 1n,
      type: 0xbn,
    });
    this.setSegment('tr', { limit: 0xffffn, present: 1n, type: 0xbn });
    this.setSegment('ldt', { limit: 0xffffn, present: 1n, type: 2n });
    for (const t of TABLES) {
      this.state.set(`${t}.base`, 0n);
      this.state.set(`${t}.limit`, 0xffffn);
    }
    this.apicBase = APIC_DEFAULT_BASE | APIC_BASE_ENABLE | (bootProcessor ? APIC_BASE_BSP : 0n);
  }

  private setSegment(seg: string, values: Partial<Record<string, bigint>>): void {
    for (const f of SEGMENT_FIELDS) this.state.set(`${seg}.${f}`, values[f] ?? 0n);
  }

  private get lapicView(): DataView | undefined {
    const page = this.host.lapic;
    return page && new DataView(page.buffer, page.byteOffset, page.byteLength);
  }

  /** __get_sregs: zeroed struct, the registers, and the queued interrupt as its one bitmap bit. */
  get(): StructValues {
    const values: StructValues = Object.fromEntries(this.state);
    const tpr = this.lapicView?.getUint32(TPR, true);
    const bitmap = [0n, 0n, 0n, 0n];
    const { injected, soft, nr } = this.host.interrupt;
    if (injected && !soft) bitmap[Number(nr >> 6n)] = 1n << (nr & 63n);
    return Object.assign(values, {
      cr0: this.cr0,
      cr2: this.cr2,
      cr3: this.cr3,
      cr4: this.cr4,
      cr8: tpr === undefined ? this.cr8 : BigInt((tpr >> 4) & 0xf),
      efer: this.host.efer,
      apic_base: this.apicBase,
      interrupt_bitmap: bitmap,
    });
  }

  /** kvm_is_valid_sregs, then kvm_apic_set_base's checks, then everything at once (__set_sregs). */
  set(values: StructValues): void {
    const v = (field: string) => u64(values, field);
    const [cr0, cr3, cr4, efer, apicBase] = [v('cr0'), v('cr3'), v('cr4'), v('efer'), v('apic_base')];
    if ((efer & EFER_LME) !== 0n && (cr0 & CR0_PG) !== 0n) {
      // 64-bit mode: PAE and LMA on, and CR3 a legal guest-physical address.
      if ((cr4 & CR4_PAE) === 0n || (efer & EFER_LMA) === 0n) fail('EINVAL');
      if ((cr3 & aboveMaxPhysAddr(this.host.maxPhysAddr)) !== 0n) fail('EINVAL');
    } else if ((efer & EFER_LMA) !== 0n || v('cs.l') !== 0n) {
      fail('EINVAL');
    }
    if ((cr4 & ~CR4_ALLOWED) !== 0n) fail('EINVAL');
    if (cr0 >> 32n !== 0n) fail('EINVAL');
    if ((cr0 & CR0_NW) !== 0n && (cr0 & CR0_CD) === 0n) fail('EINVAL');
    if ((cr0 & CR0_PG) !== 0n && (cr0 & CR0_PE) === 0n) fail('EINVAL');

    if (apicBase !== this.apicBase) {
      const reserved =
        aboveMaxPhysAddr(this.host.maxPhysAddr) |
        APIC_BASE_RESERVED |
        (this.host.x2apic ? 0n : APIC_BASE_EXTD);
      const extdWithoutEnable = (apicBase & (APIC_BASE_EXTD | APIC_BASE_ENABLE)) === APIC_BASE_EXTD;
      if ((apicBase & reserved) !== 0n || extdWithoutEnable) fail('EINVAL');
    }

    for (const key of this.state.keys()) this.state.set(key, v(key));
    this.cr0 = cr0;
    this.cr2 = v('cr2');
    this.cr3 = cr3;
    this.cr4 = cr4;
    this.host.efer = efer;
    this.apicBase = apicBase;
    this.setCr8(v('cr8'));
    // __set_sregs: the lowest vector in the bitmap is queued; an empty bitmap leaves a queued one alone.
    const bitmap = values.interrupt_bitmap as bigint[];
    const vector = Array.from({ length: NR_INTERRUPTS }, (_, i) => i).find(
      (i) => ((bitmap[i >> 6]! >> BigInt(i & 63)) & 1n) !== 0n,
    );
    if (vector !== undefined)
      Object.assign(this.host.interrupt, { injected: true, nr: BigInt(vector), soft: false });
  }

  /** kvm_vcpu_deliver_sipi_vector: CS selector and base from the SIPI's vector, its other fields kept. */
  pointCsAt(vector: bigint): void {
    this.state.set('cs.selector', vector << 8n);
    this.state.set('cs.base', vector << 12n);
  }

  /** kvm_set_cr8: a value above 15 is refused, which KVM_SET_SREGS ignores; with a local APIC it is the TPR. */
  private setCr8(cr8: bigint): void {
    if (cr8 > 0xfn) return;
    const lapic = this.lapicView;
    if (!lapic) {
      this.cr8 = cr8;
      return;
    }
    // kvm_lapic_set_tpr: TPR, then PPR from it (nothing is ever in service in the model).
    lapic.setUint32(TPR, Number(cr8) << 4, true);
    lapic.setUint32(PPR, Number(cr8) << 4, true);
  }
}
