// x86 registers: the general-purpose ones, RIP and RFLAGS through KVM_{GET,SET}_REGS; the special ones through
// KVM_{GET,SET}_SREGS — the reset state, what a set reads back, the checks a set passes before it changes
// anything, and the registers the struct shares with the local APIC; and where a SIPI leaves a vCPU.
import type { StructValues } from '../harness/abi/codec.ts';
import { assertField, assertOutcome, assertValue } from '../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator, SuiteFamily } from '../harness/plan/types.ts';
import { fieldBytes } from '../harness/spec/sizes.ts';
import { fieldIndex } from '../harness/spec/tree.ts';
import { expectMpState, setMpState, vcpuOf, vmOf } from './fixtures.ts';
import { apicRegister, getLapic, setCpuid, type CpuidEntry } from './x86.ts';
import type { CallResult } from '../harness/session.ts';
import type { Outcome } from '../harness/spec/types.ts';

const SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'];
const CR0_PE = 1n;
const CR0_ET = 1n << 4n;
const CR0_NE = 1n << 5n;
const CR0_WP = 1n << 16n;
const CR0_NW = 1n << 29n;
const CR0_CD = 1n << 30n;
const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const CR4_PGE = 1n << 7n;
const EFER_SCE = 1n;
const EFER_LME = 1n << 8n;
const EFER_LMA = 1n << 10n;
/** Protected mode with paging, and what 64-bit mode adds to it. */
const PAGED = CR0_PE | CR0_PG | CR0_ET;
const LONG_MODE = { cr0: PAGED, cr4: CR4_PAE, efer: EFER_LME | EFER_LMA };
const APIC_ENABLE = 1n << 11n;
const APIC_EXTD = 1n << 10n;
const APIC_BSP = 1n << 8n;
const APIC_DEFAULT = 0xfee0_0000n;
const TPR = 0x80;
const PPR = 0xa0;

/** The struct's scalar fields: padding excluded, and the bitmap, which says what is pending, not what was set. */
function registerKeys(ctx: CaseContext): string[] {
  const layout = ctx.spec.layout('kvm_sregs', { arch: ctx.arch, revision: ctx.revision });
  return fieldIndex(layout)
    .list.filter((f) => !f.padding && f.key !== 'interrupt_bitmap')
    .map((f) => f.key);
}

/** Every field of a struct at all zeros or all ones (arrays element by element), by key. */
export function everyField(ctx: CaseContext, struct: string, fill: 'zeros' | 'ones'): StructValues {
  const layout = ctx.spec.layout(struct, { arch: ctx.arch, revision: ctx.revision });
  const values: StructValues = {};
  for (const f of fieldIndex(layout).list) {
    const value = fill === 'ones' ? (1n << BigInt((fieldBytes(f) / (f.count ?? 1)) * 8)) - 1n : 0n;
    values[f.key] = f.count ? new Array<bigint>(f.count).fill(value) : value;
  }
  return values;
}

/**
 * A KVM_GET_* of a vCPU's state struct, which must succeed, into a struct of all-ones bytes, so every field
 * must be written: the fields it returned.
 */
export async function getState(
  ctx: CaseContext,
  vcpu: number,
  ioctl: string,
  struct: string,
  what: string,
): Promise<StructValues> {
  const r = await ctx.kvm.call(vcpu, ioctl, { struct: everyField(ctx, struct, 'ones') });
  assertOutcome(r, { ret: 0 }, `${ioctl} of ${what}`);
  return r.fields;
}

export const getSregs = (ctx: CaseContext, vcpu: number, what: string) =>
  getState(ctx, vcpu, 'KVM_GET_SREGS', 'kvm_sregs', what);

export function setSregs(ctx: CaseContext, vcpu: number, values: StructValues) {
  return ctx.kvm.call(vcpu, 'KVM_SET_SREGS', { struct: values });
}

/** The fields `expected` names, compared one by one with what a KVM_GET_* returned. */
export function assertRegisters(got: StructValues, expected: StructValues, what: string): void {
  for (const [key, value] of Object.entries(expected)) assertField(got[key], value, `${key} ${what}`);
}

export const bitmapWith = (...vectors: number[]) => {
  const words = [0n, 0n, 0n, 0n];
  for (const v of vectors) words[v >> 6]! |= 1n << BigInt(v & 63);
  return words;
};

/** SREGS-GET-002: a new vCPU's registers, the vendor-independent part of kvm_vcpu_reset. */
const reset: CaseGenerator = () => [
  {
    params: { vcpu: '0' },
    run: async (ctx) => {
      const got = await getSregs(ctx, await vcpuOf(ctx, 'vcpu'), 'a new vCPU');
      const expected: StructValues = {
        'cs.selector': 0xf000n,
        'cs.base': 0xffff_0000n,
        'cs.limit': 0xffffn,
        'gdt.base': 0n,
        'gdt.limit': 0xffffn,
        'gdt.padding': [0n, 0n, 0n],
        'idt.base': 0n,
        'idt.limit': 0xffffn,
        'idt.padding': [0n, 0n, 0n],
        cr0: CR0_CD | CR0_NW | CR0_ET,
        cr2: 0n,
        cr3: 0n,
        cr4: 0n,
        cr8: 0n,
        efer: 0n,
        interrupt_bitmap: bitmapWith(),
      };
      for (const seg of SEGMENTS) {
        expected[`${seg}.present`] = 1n;
        expected[`${seg}.s`] = seg === 'tr' || seg === 'ldt' ? 0n : 1n;
        if (seg === 'cs') continue;
        expected[`${seg}.limit`] = 0xffffn;
        expected[`${seg}.base`] = 0n;
        if (seg !== 'tr' && seg !== 'ldt') expected[`${seg}.selector`] = 0n;
      }
      assertRegisters(got, expected, 'of a new vCPU');
    },
  },
];

/** SREGS-GET-003: the APIC base of the boot processor and of another vCPU, with and without an irqchip. */
const apicBaseReset: CaseGenerator = () =>
  (['vm', 'vm-irqchip'] as const).flatMap((fixture) =>
    [0n, 1n].map((id) => ({
      params: { irqchip: fixture === 'vm' ? 'none' : 'in-kernel', vcpu: String(id) },
      run: async (ctx: CaseContext) => {
        const vcpu = await ctx.kvm.setupHandle(await vmOf(ctx, fixture), 'KVM_CREATE_VCPU', id);
        const got = await getSregs(ctx, vcpu, `vCPU ${id}`);
        const bsp = id === 0n ? APIC_BSP : 0n;
        assertField(got.apic_base, APIC_DEFAULT | APIC_ENABLE | bsp, `apic_base of vCPU ${id}`);
      },
    })),
  );

/** A valid state unlike the reset one in every register the roundtrip case compares. */
function longModeState(base: StructValues): StructValues {
  const state: StructValues = { ...base, ...LONG_MODE };
  const segment = (seg: string, values: Record<string, bigint>) => {
    for (const [field, value] of Object.entries(values)) state[`${seg}.${field}`] = value;
  };
  const flat = {
    base: 0n,
    limit: 0xffff_ffffn,
    present: 1n,
    s: 1n,
    dpl: 0n,
    g: 1n,
    avl: 0n,
    l: 0n,
    unusable: 0n,
  };
  segment('cs', { ...flat, selector: 0x8n, type: 0xbn, l: 1n, db: 0n });
  for (const [i, seg] of ['ds', 'es', 'fs', 'gs', 'ss'].entries())
    segment(seg, { ...flat, selector: 0x10n, type: 3n, db: 1n, base: BigInt(i) << 20n, avl: BigInt(i & 1) });
  segment('tr', {
    base: 0x1000n,
    limit: 0x67n,
    selector: 0x18n,
    type: 0xbn,
    present: 1n,
    s: 0n,
    db: 0n,
    g: 0n,
  });
  segment('ldt', {
    base: 0x2000n,
    limit: 0xfffn,
    selector: 0x20n,
    type: 2n,
    present: 1n,
    s: 0n,
    db: 0n,
    g: 0n,
  });
  return Object.assign(state, {
    'gdt.base': 0x3000n,
    'gdt.limit': 0x27n,
    'idt.base': 0x4000n,
    'idt.limit': 0xfffn,
    cr0: PAGED | CR0_NE | CR0_WP,
    cr2: 0xdead_b000n,
    cr3: 0x5000n,
    cr4: CR4_PAE | CR4_PGE,
    efer: EFER_SCE | EFER_LME | EFER_LMA,
    apic_base: APIC_DEFAULT | APIC_ENABLE,
  });
}

/** SREGS-SET-002: a 64-bit state set on vCPU 0 reads back register by register. */
const roundtrip: CaseGenerator = () => [
  {
    params: { state: 'long-mode' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const state = longModeState(await getSregs(ctx, vcpu, 'vCPU 0'));
      assertOutcome(await setSregs(ctx, vcpu, state), { ret: 0 }, 'KVM_SET_SREGS of a 64-bit state');
      const got = await getSregs(ctx, vcpu, 'vCPU 0 after KVM_SET_SREGS');
      const keys = registerKeys(ctx);
      assertRegisters(got, Object.fromEntries(keys.map((k) => [k, state[k]!])), 'after KVM_SET_SREGS');
    },
  },
];

type Change = (s: StructValues) => void;
const or =
  (field: string, bits: bigint): Change =>
  (s) => {
    s[field] = (s[field] as bigint) | bits;
  };

/** How a `changes` case readies vCPU 0 before its change: a guest CPUID, and a state to start from. */
interface Start {
  cpuid?: { entries: CpuidEntry[]; what: string };
  state?: Change;
}

/**
 * Cases whose one change to vCPU 0's registers KVM_SET_SREGS refuses (EINVAL, nothing changed) or accepts
 * (the change reads back), each starting from the reset state or the one `start` sets.
 */
function changes(
  list: { name: string; change: Change; accepted?: boolean }[],
  start: Start = {},
): CaseGenerator {
  return () =>
    list.map(({ name, change, accepted }) => ({
      params: { change: name },
      run: async (ctx: CaseContext) => {
        const vcpu = await vcpuOf(ctx, 'vcpu');
        if (start.cpuid)
          assertOutcome(await setCpuid(ctx, vcpu, start.cpuid.entries), { ret: 0 }, start.cpuid.what);
        const before = await getSregs(ctx, vcpu, 'vCPU 0');
        if (start.state) {
          start.state(before);
          assertOutcome(
            await setSregs(ctx, vcpu, before),
            { ret: 0 },
            `KVM_SET_SREGS of the state before ${name}`,
          );
        }
        const changed = { ...before };
        change(changed);
        const r = await setSregs(ctx, vcpu, changed);
        assertOutcome(r, accepted ? { ret: 0 } : { errno: 'EINVAL' }, `KVM_SET_SREGS with ${name}`);
        const expected = accepted ? changed : before;
        const got = await getSregs(ctx, vcpu, `vCPU 0 after KVM_SET_SREGS with ${name}`);
        assertRegisters(
          got,
          Object.fromEntries(registerKeys(ctx).map((k) => [k, expected[k]!])),
          `after ${accepted ? 'the accepted' : 'the refused'} KVM_SET_SREGS with ${name}`,
        );
      },
    }));
}

/** A guest CPUID with x2APIC (leaf 1 ECX bit 21) and 39 physical-address bits (leaf 0x80000008, announced). */
const X2APIC_39_BITS: NonNullable<Start['cpuid']> = {
  entries: [
    { fn: 1n, ecx: 1n << 21n },
    { fn: 0x8000_0000n, eax: 0x8000_0008n },
    { fn: 0x8000_0008n, eax: 39n | (48n << 8n) },
  ],
  what: 'KVM_SET_CPUID2 with x2APIC and 39 physical-address bits',
};

/** SREGS-SET-003. */
const cr0Invalid = changes([
  { name: 'cr0-bit-32', change: or('cr0', 1n << 32n) },
  { name: 'cr0-bit-63', change: or('cr0', 1n << 63n) },
  { name: 'nw-without-cd', change: (s) => void (s.cr0 = (s.cr0 as bigint) & ~CR0_CD) },
  { name: 'pg-without-pe', change: or('cr0', CR0_PG) },
]);

/** SREGS-SET-004. */
const cr4Reserved = changes([{ name: 'cr4-bit-63', change: or('cr4', 1n << 63n) }]);

const longModeOn: Change = (s) => Object.assign(s, LONG_MODE);

/** SREGS-SET-005. */
const longMode = changes([
  { name: 'lma-without-paging', change: or('efer', EFER_LME | EFER_LMA) },
  { name: 'paging-lme-without-lma', change: (s) => Object.assign(s, LONG_MODE, { efer: EFER_LME }) },
  { name: 'paging-lme-lma-without-pae', change: (s) => Object.assign(s, LONG_MODE, { cr4: 0n }) },
  { name: 'cs-l-outside-long-mode', change: or('cs.l', 1n) },
  { name: 'paging-lma-without-lme', change: (s) => Object.assign(s, LONG_MODE, { efer: EFER_LMA }) },
  { name: 'lme-without-paging', change: or('efer', EFER_LME), accepted: true },
]);

/** SREGS-SET-006: CR3 in 64-bit mode, at the default width and at the one a guest CPUID gives; and outside it. */
const cr3Width: CaseGenerator = (g) => [
  ...changes(
    [
      { name: 'long-mode-cr3-bit-36', change: or('cr3', 1n << 36n) },
      { name: 'long-mode-cr3-bit-35', change: or('cr3', 1n << 35n), accepted: true },
    ],
    { state: longModeOn },
  )(g),
  ...changes(
    [
      { name: 'width-39-cr3-bit-39', change: or('cr3', 1n << 39n) },
      { name: 'width-39-cr3-bit-38', change: or('cr3', 1n << 38n), accepted: true },
    ],
    { state: longModeOn, cpuid: X2APIC_39_BITS },
  )(g),
  // Leaf 0x80000008 without leaf 0x80000000 reaching it is not looked at: the width stays 36.
  ...changes([{ name: 'unannounced-width-39-cr3-bit-36', change: or('cr3', 1n << 36n) }], {
    state: longModeOn,
    cpuid: {
      entries: X2APIC_39_BITS.entries.filter((e) => e.fn !== 0x8000_0000n),
      what: 'KVM_SET_CPUID2 with leaf 0x80000008 (39 bits) but no leaf 0x80000000',
    },
  })(g),
  ...changes([{ name: 'legacy-cr3-bit-62', change: or('cr3', 1n << 62n), accepted: true }])(g),
];

const setApicBase =
  (value: bigint): Change =>
  (s) =>
    void (s.apic_base = value);

/** SREGS-SET-007. */
const apicBase = changes([
  { name: 'bit-0', change: or('apic_base', 1n) },
  { name: 'bit-9', change: or('apic_base', 1n << 9n) },
  { name: 'x2apic-without-cpuid', change: or('apic_base', APIC_EXTD) },
  { name: 'x2apic-without-enable', change: setApicBase(APIC_DEFAULT | APIC_EXTD) },
  { name: 'bit-36', change: or('apic_base', 1n << 36n) },
  { name: 'bit-35', change: or('apic_base', 1n << 35n), accepted: true },
  { name: 'disabled', change: setApicBase(APIC_DEFAULT | APIC_BSP), accepted: true },
  { name: 'moved', change: setApicBase(0xfed0_0000n | APIC_ENABLE | APIC_BSP), accepted: true },
  { name: 'bsp-cleared', change: setApicBase(APIC_DEFAULT | APIC_ENABLE), accepted: true },
]);

/** SREGS-SET-007 with x2APIC and 39 physical-address bits in the guest CPUID. */
const apicBaseWithCpuid = changes(
  [
    { name: 'x2apic', change: or('apic_base', APIC_EXTD), accepted: true },
    { name: 'x2apic-without-enable', change: setApicBase(APIC_DEFAULT | APIC_EXTD) },
    { name: 'width-39-bit-39', change: or('apic_base', 1n << 39n) },
    { name: 'width-39-bit-38', change: or('apic_base', 1n << 38n), accepted: true },
  ],
  { cpuid: X2APIC_39_BITS },
);

/** SREGS-SET-008: CR8 alone, and CR8 as the local APIC's TPR. */
const cr8: CaseGenerator = () => [
  {
    params: { lapic: 'none' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const state = await getSregs(ctx, vcpu, 'vCPU 0');
      assertOutcome(await setSregs(ctx, vcpu, { ...state, cr8: 5n }), { ret: 0 }, 'KVM_SET_SREGS with CR8 5');
      assertField((await getSregs(ctx, vcpu, 'vCPU 0')).cr8, 5n, 'CR8 set to 5');
      assertOutcome(
        await setSregs(ctx, vcpu, { ...state, cr8: 15n }),
        { ret: 0 },
        'KVM_SET_SREGS with CR8 15',
      );
      assertField((await getSregs(ctx, vcpu, 'vCPU 0')).cr8, 15n, 'CR8 set to 15');
      assertOutcome(await setSregs(ctx, vcpu, { ...state, cr8: 5n }), { ret: 0 }, 'KVM_SET_SREGS with CR8 5');
      assertOutcome(
        await setSregs(ctx, vcpu, { ...state, cr8: 0x10n }),
        { ret: 0 },
        'KVM_SET_SREGS with CR8 0x10',
      );
      assertField((await getSregs(ctx, vcpu, 'vCPU 0')).cr8, 5n, 'CR8 after a set of 0x10');
    },
  },
  {
    params: { lapic: 'in-kernel' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu-irqchip');
      const state = await getSregs(ctx, vcpu, 'vCPU 0');
      assertOutcome(await setSregs(ctx, vcpu, { ...state, cr8: 3n }), { ret: 0 }, 'KVM_SET_SREGS with CR8 3');
      const page = await getLapic(ctx, vcpu, 'vCPU 0 after CR8 3');
      assertValue(apicRegister(page, TPR), 0x30n, 'the TPR after KVM_SET_SREGS with CR8 3');
      assertValue(
        apicRegister(page, PPR),
        0x30n,
        'the PPR after KVM_SET_SREGS with CR8 3 (nothing in service)',
      );
      page.setUint32(TPR, 0xa7, true);
      const regs = Array.from(new Uint8Array(page.buffer), BigInt);
      assertOutcome(
        await ctx.kvm.call(vcpu, 'KVM_SET_LAPIC', { struct: { regs } }),
        { ret: 0 },
        'KVM_SET_LAPIC',
      );
      assertField((await getSregs(ctx, vcpu, 'vCPU 0')).cr8, 0xan, 'CR8 after KVM_SET_LAPIC with TPR 0xa7');
    },
  },
];

/** SREGS-SET-009: the queued interrupt, as three sets in a row leave it. */
const interrupt: CaseGenerator = () => [
  {
    params: { vectors: '70-200.none.33' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const state = await getSregs(ctx, vcpu, 'vCPU 0');
      const steps: [number[], number, string][] = [
        [[70, 200], 70, 'vectors 70 and 200'],
        [[], 70, 'an empty bitmap'],
        [[33], 33, 'vector 33'],
      ];
      for (const [vectors, pending, what] of steps) {
        const r = await setSregs(ctx, vcpu, { ...state, interrupt_bitmap: bitmapWith(...vectors) });
        assertOutcome(r, { ret: 0 }, `KVM_SET_SREGS with ${what}`);
        const got = await getSregs(ctx, vcpu, `vCPU 0 after ${what}`);
        assertField(got.interrupt_bitmap, bitmapWith(pending), `interrupt_bitmap after ${what}`);
      }
    },
  },
];

const GPRS = [
  'rax',
  'rbx',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'rsp',
  'rbp',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
];

export const getRegs = (ctx: CaseContext, vcpu: number, what: string) =>
  getState(ctx, vcpu, 'KVM_GET_REGS', 'kvm_regs', what);

/** REGS-GET-001: a new vCPU's registers, with RDX the signature KVM uses without CPUID leaf 1. */
const regsReset: CaseGenerator = () => [
  {
    params: { vcpu: '0' },
    run: async (ctx) => {
      const got = await getRegs(ctx, await vcpuOf(ctx, 'vcpu'), 'a new vCPU');
      const expected: StructValues = Object.fromEntries(GPRS.map((n) => [n, 0n]));
      Object.assign(expected, { rdx: 0x600n, rip: 0xfff0n, rflags: 0x2n });
      assertRegisters(got, expected, 'of a new vCPU');
    },
  },
];

/** REGS-SET-001: every register set reads back; RFLAGS written without its fixed bit 1 reads it set. */
const regsRoundtrip: CaseGenerator = () =>
  [
    { name: 'rflags-0', rflags: 0n, reads: 0x2n },
    { name: 'rflags-if-zf-pf', rflags: 0x246n, reads: 0x246n },
  ].map(({ name, rflags, reads }) => ({
    params: { values: name },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const values: StructValues = Object.fromEntries(
        GPRS.map((n, i) => [n, 0x0101_0101_0101_0101n * BigInt(i + 1) + BigInt(i)]),
      );
      Object.assign(values, { rip: 0x8000_0000_0000_1234n, rflags });
      assertOutcome(await ctx.kvm.call(vcpu, 'KVM_SET_REGS', { struct: values }), { ret: 0 }, 'KVM_SET_REGS');
      const got = await getRegs(ctx, vcpu, 'vCPU 0 after KVM_SET_REGS');
      assertRegisters(
        got,
        { ...values, rflags: reads },
        `after KVM_SET_REGS with RFLAGS 0x${rflags.toString(16)}`,
      );
    },
  }));

/**
 * MP_STATE-VAL-008: an AP taken from INIT_RECEIVED by a SIPI starts at the vector (0: no guest sent one),
 * with RIP 0 and the registers set before it kept.
 */
const sipiRegisters: CaseGenerator = () => [
  {
    params: { vector: '0' },
    run: async (ctx) => {
      const ap = await ctx.kvm.setupHandle(await vmOf(ctx, 'vm-irqchip'), 'KVM_CREATE_VCPU', 1n);
      await setMpState(ctx, ap, 'INIT_RECEIVED', 'vCPU 1');
      const regs = { ...(await getRegs(ctx, ap, 'vCPU 1')), rax: 7n, rip: 0x1234n };
      assertOutcome(await ctx.kvm.call(ap, 'KVM_SET_REGS', { struct: regs }), { ret: 0 }, 'KVM_SET_REGS');
      const sregs = await getSregs(ctx, ap, 'vCPU 1 before the SIPI');
      await setMpState(ctx, ap, 'SIPI_RECEIVED', 'vCPU 1');
      await expectMpState(ctx, ap, 'RUNNABLE', 'vCPU 1 after the SIPI');
      const after = await getSregs(ctx, ap, 'vCPU 1 after the SIPI');
      const cs: StructValues = { ...sregs, 'cs.selector': 0n, 'cs.base': 0n };
      assertRegisters(after, Object.fromEntries(registerKeys(ctx).map((k) => [k, cs[k]!])), 'after the SIPI');
      assertRegisters(
        await getRegs(ctx, ap, 'vCPU 1 after the SIPI'),
        { ...regs, rip: 0n },
        'after the SIPI',
      );
    },
  },
];

export const getDebugRegs = (ctx: CaseContext, vcpu: number, what: string) =>
  getState(ctx, vcpu, 'KVM_GET_DEBUGREGS', 'kvm_debugregs', what);

const DEBUG_RESET = { db: [0n, 0n, 0n, 0n], dr6: 0xffff_0ff0n, dr7: 0x400n, flags: 0n };

/** DEBUGREGS-GET-001: a new vCPU's debug registers; the rest of the struct zeroed. */
const debugRegsReset: CaseGenerator = () => [
  {
    params: { vcpu: '0' },
    run: async (ctx) => {
      const got = await getDebugRegs(ctx, await vcpuOf(ctx, 'vcpu'), 'a new vCPU');
      assertRegisters(got, { ...DEBUG_RESET, reserved: new Array<bigint>(9).fill(0n) }, 'of a new vCPU');
    },
  },
];

/** DEBUGREGS-SET-001: values with no fixed bit, all 32 bits, a non-canonical DR2; reserved words not checked. */
const debugRegsRoundtrip: CaseGenerator = () =>
  [
    { name: 'breakpoints', dr6: 0xffff_0ff1n, dr7: 0x401n },
    { name: 'dr6-dr7-zero', dr6: 0n, dr7: 0n },
    { name: 'dr6-dr7-all-32-bits', dr6: 0xffff_ffffn, dr7: 0xffff_ffffn },
  ].map(({ name, dr6, dr7 }) => ({
    params: { values: name },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const db = [0x1000n, 0xffff_ffff_8000_1000n, 0x8000_0000_0000_0000n, 3n];
      const values = { db, dr6, dr7, flags: 0n, reserved: new Array<bigint>(9).fill(5n) };
      assertOutcome(
        await ctx.kvm.call(vcpu, 'KVM_SET_DEBUGREGS', { struct: values }),
        { ret: 0 },
        'KVM_SET_DEBUGREGS',
      );
      const got = await getDebugRegs(ctx, vcpu, `vCPU 0 after KVM_SET_DEBUGREGS (${name})`);
      assertRegisters(got, { db, dr6, dr7, flags: 0n }, `after KVM_SET_DEBUGREGS (${name})`);
    },
  }));

/** DEBUGREGS-SET-002: each refused set carries a DR0 that must not be taken. */
const debugRegsInvalid: CaseGenerator = () =>
  [
    { name: 'flags-1', change: { flags: 1n } },
    { name: 'dr6-bit-32', change: { dr6: 1n << 32n } },
    { name: 'dr7-bit-32', change: { dr7: 1n << 32n } },
    { name: 'dr7-bit-63', change: { dr7: 1n << 63n } },
  ].map(({ name, change }) => ({
    params: { set: name },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const values = { ...DEBUG_RESET, db: [0x1234n, 0n, 0n, 0n], ...change };
      const r = await ctx.kvm.call(vcpu, 'KVM_SET_DEBUGREGS', { struct: values });
      assertOutcome(r, { errno: 'EINVAL' }, `KVM_SET_DEBUGREGS with ${name}`);
      const got = await getDebugRegs(ctx, vcpu, `vCPU 0 after the refused ${name}`);
      assertRegisters(got, DEBUG_RESET, `after the refused KVM_SET_DEBUGREGS with ${name}`);
    },
  }));

/** kvm_xcrs' sixteen entries as the spec's u64 pairs: index | reserved << 32, then value. */
function xcrWords(entries: { xcr: bigint; value: bigint; reserved?: bigint }[]): bigint[] {
  const words = new Array<bigint>(32).fill(0n);
  entries.forEach((e, i) => {
    words[2 * i] = e.xcr | ((e.reserved ?? 0n) << 32n);
    words[2 * i + 1] = e.value;
  });
  return words;
}

const setXcrs = (
  ctx: CaseContext,
  vcpu: number,
  entries: { xcr: bigint; value: bigint }[],
  extra: StructValues = {},
) =>
  ctx.kvm.call(vcpu, 'KVM_SET_XCRS', {
    struct: { nr_xcrs: BigInt(entries.length), xcrs: xcrWords(entries), ...extra },
  });

async function expectXcr0(ctx: CaseContext, vcpu: number, value: bigint, what: string): Promise<void> {
  const got = await getState(ctx, vcpu, 'KVM_GET_XCRS', 'kvm_xcrs', `vCPU 0 ${what}`);
  assertRegisters(got, { nr_xcrs: 1n, flags: 0n, xcrs: xcrWords([{ xcr: 0n, value }]) }, what);
}

/** KVM_SET_CPUID2, which must succeed, with a leaf 0xD that offers the XCR0 states `eax` names. */
async function offerXsave(ctx: CaseContext, vcpu: number, eax: bigint, what: string): Promise<void> {
  const entries: CpuidEntry[] = [{ fn: 0xdn, index: 0n, flags: 1n, eax }];
  assertOutcome(await setCpuid(ctx, vcpu, entries), { ret: 0 }, `KVM_SET_CPUID2 offering ${what}`);
}
const X87 = 1n;
const X87_SSE = 3n;
const X87_SSE_AVX = 7n;
/** AVX-512's three states: opmask, the upper halves of ZMM0-15, ZMM16-31. */
const AVX512 = 0xe0n;

/** XCRS-GET-001: a new vCPU's one XCR, the rest of the struct zeroed. */
const xcrsReset: CaseGenerator = () => [
  {
    params: { vcpu: '0' },
    run: async (ctx) => {
      const got = await getState(ctx, await vcpuOf(ctx, 'vcpu'), 'KVM_GET_XCRS', 'kvm_xcrs', 'a new vCPU');
      const expected = { nr_xcrs: 1n, flags: 0n, xcrs: xcrWords([{ xcr: 0n, value: X87 }]) };
      assertRegisters(got, { ...expected, padding: new Array<bigint>(16).fill(0n) }, 'of a new vCPU');
    },
  },
];

/** XCRS-SET-001: XCR0 values against the guest CPUID; each refused one leaves the value before it. */
const xcr0: CaseGenerator = () => [
  {
    params: { cpuid: 'none' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      for (const value of [X87_SSE, 0n]) {
        const r = await setXcrs(ctx, vcpu, [{ xcr: 0n, value }]);
        assertOutcome(r, { errno: 'EINVAL' }, `KVM_SET_XCRS with XCR0 ${value} and no guest CPUID`);
        await expectXcr0(ctx, vcpu, X87, `after the refused XCR0 ${value}`);
      }
      assertOutcome(
        await setXcrs(ctx, vcpu, [{ xcr: 0n, value: X87 }]),
        { ret: 0 },
        'KVM_SET_XCRS with XCR0 1',
      );
    },
  },
  {
    params: { cpuid: 'x87-sse' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      await offerXsave(ctx, vcpu, X87_SSE, 'x87 and SSE');
      assertOutcome(
        await setXcrs(ctx, vcpu, [{ xcr: 0n, value: X87_SSE }]),
        { ret: 0 },
        'KVM_SET_XCRS with XCR0 3',
      );
      await expectXcr0(ctx, vcpu, X87_SSE, 'after XCR0 3');
      for (const value of [1n << 62n, 2n]) {
        const r = await setXcrs(ctx, vcpu, [{ xcr: 0n, value }]);
        assertOutcome(
          r,
          { errno: 'EINVAL' },
          `KVM_SET_XCRS with XCR0 0x${value.toString(16)}, offering x87 and SSE`,
        );
        await expectXcr0(ctx, vcpu, X87_SSE, `after the refused XCR0 0x${value.toString(16)}`);
      }
    },
  },
  {
    params: { cpuid: 'x87-sse-avx' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      await offerXsave(ctx, vcpu, X87_SSE_AVX, 'x87, SSE and AVX');
      const avx = await setXcrs(ctx, vcpu, [{ xcr: 0n, value: X87_SSE_AVX }]);
      if (avx.errno === 'EINVAL') ctx.notApplicable("the host's XSAVE has no AVX state");
      assertOutcome(avx, { ret: 0 }, 'KVM_SET_XCRS with XCR0 7');
      const r = await setXcrs(ctx, vcpu, [{ xcr: 0n, value: X87 | (X87_SSE_AVX & ~X87_SSE) }]);
      assertOutcome(r, { errno: 'EINVAL' }, 'KVM_SET_XCRS with XCR0 5: AVX without SSE');
      await expectXcr0(ctx, vcpu, X87_SSE_AVX, 'after the refused XCR0 5');
    },
  },
];

/** XCRS-SET-001: AVX-512's states only together and with AVX, once the host and the guest CPUID have them. */
const xcr0Avx512: CaseGenerator = () => [
  {
    params: { cpuid: 'x87-sse-avx-avx512' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      await offerXsave(ctx, vcpu, X87_SSE_AVX | AVX512, 'x87, SSE, AVX and AVX-512');
      const all = await setXcrs(ctx, vcpu, [{ xcr: 0n, value: X87_SSE_AVX | AVX512 }]);
      if (all.errno === 'EINVAL') ctx.notApplicable("the host's XSAVE has no AVX-512 state");
      assertOutcome(all, { ret: 0 }, 'KVM_SET_XCRS with XCR0 0xe7');
      for (const [value, what] of [
        [X87_SSE_AVX | (AVX512 & (1n << 5n)), 'the opmask state alone'],
        [X87_SSE_AVX | (AVX512 & ~(1n << 7n)), 'two of three AVX-512 states'],
        [X87_SSE | AVX512, 'AVX-512 without AVX'],
      ] as const) {
        const r = await setXcrs(ctx, vcpu, [{ xcr: 0n, value }]);
        assertOutcome(r, { errno: 'EINVAL' }, `KVM_SET_XCRS with XCR0 0x${value.toString(16)}: ${what}`);
        await expectXcr0(ctx, vcpu, X87_SSE_AVX | AVX512, `after the refused XCR0 0x${value.toString(16)}`);
      }
    },
  },
];

/** XCRS-SET-002: the entry count, flags, and which entry counts; with x87 and SSE offered. */
const xcrsEntries: CaseGenerator = () => [
  {
    params: { entries: 'count.flags.order' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      await offerXsave(ctx, vcpu, X87_SSE, 'x87 and SSE');
      const xcr0 = (value: bigint) => ({ xcr: 0n, value });
      const step = async (what: string, call: () => Promise<CallResult>, expect: Outcome, reads: bigint) => {
        assertOutcome(await call(), expect, `KVM_SET_XCRS with ${what}`);
        await expectXcr0(ctx, vcpu, reads, `after KVM_SET_XCRS with ${what}`);
      };
      await step(
        '17 entries',
        () => setXcrs(ctx, vcpu, [], { nr_xcrs: 17n, xcrs: xcrWords([xcr0(X87_SSE)]) }),
        { errno: 'EINVAL' },
        X87,
      );
      await step(
        'flags 1',
        () => setXcrs(ctx, vcpu, [xcr0(X87_SSE)], { flags: 1n }),
        { errno: 'EINVAL' },
        X87,
      );
      await step(
        '16 entries',
        () => setXcrs(ctx, vcpu, [], { nr_xcrs: 16n, xcrs: xcrWords([xcr0(X87_SSE)]) }),
        { ret: 0 },
        X87_SSE,
      );
      await step('no entry', () => setXcrs(ctx, vcpu, []), { ret: 0 }, X87_SSE);
      await step('XCR 1 only', () => setXcrs(ctx, vcpu, [{ xcr: 1n, value: X87 }]), { ret: 0 }, X87_SSE);
      await step(
        'XCR0 1, then an invalid XCR0 0',
        () => setXcrs(ctx, vcpu, [xcr0(X87), xcr0(0n)]),
        { ret: 0 },
        X87,
      );
      await step(
        'an invalid XCR0 0, then XCR0 3',
        () => setXcrs(ctx, vcpu, [xcr0(0n), xcr0(X87_SSE)]),
        { errno: 'EINVAL' },
        X87,
      );
      const one = { nr_xcrs: 1n, xcrs: xcrWords([{ xcr: 0n, value: X87_SSE, reserved: 9n }, xcr0(X87)]) };
      await step(
        'nr_xcrs 1 of two entries (reserved word 9)',
        () => setXcrs(ctx, vcpu, [], one),
        { ret: 0 },
        X87_SSE,
      );
    },
  },
];

export const x86Registers: SuiteFamily = {
  generators: {
    'x86-xcrs.reset': xcrsReset,
    'x86-xcrs.xcr0': xcr0,
    'x86-xcrs.xcr0-avx512': xcr0Avx512,
    'x86-xcrs.entries': xcrsEntries,
    'x86-debugregs.reset': debugRegsReset,
    'x86-debugregs.roundtrip': debugRegsRoundtrip,
    'x86-debugregs.invalid': debugRegsInvalid,
    'x86-regs.reset': regsReset,
    'x86-regs.roundtrip': regsRoundtrip,
    'x86-regs.sipi': sipiRegisters,
    'x86-sregs.reset': reset,
    'x86-sregs.apic-base-reset': apicBaseReset,
    'x86-sregs.roundtrip': roundtrip,
    'x86-sregs.cr0-invalid': cr0Invalid,
    'x86-sregs.cr4-reserved': cr4Reserved,
    'x86-sregs.long-mode': longMode,
    'x86-sregs.cr3-width': cr3Width,
    'x86-sregs.apic-base': apicBase,
    'x86-sregs.apic-base-cpuid': apicBaseWithCpuid,
    'x86-sregs.cr8': cr8,
    'x86-sregs.interrupt': interrupt,
  },
};
