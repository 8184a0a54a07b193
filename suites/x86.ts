import { bytesToUint, uintToBytes } from '../harness/abi/codec.ts';
import { assertOutcome, assertTrue, assertValue } from '../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator, SuiteFamily } from '../harness/plan/types.ts';
import { bytesToHex } from '../harness/spec/int.ts';
import { expectMpState, setMpState, vcpuOf, vmOf } from './fixtures.ts';
import { MASKED } from './x86-irqchip.ts';

export const X86_REG_MSR = 0x2030_0002_0000_0000n;
/** KVM_X86_REG_KVM(KVM_REG_GUEST_SSP) and the next, undefined, KVM register. */
const GUEST_SSP = 0x2030_0003_0000_0000n;
const KVM_REG_AFTER_SSP = GUEST_SSP + 1n;
const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1n;
/** CPUID.(EAX=7,ECX=0):ECX[7], CET shadow stacks (SHSTK). */
const SHSTK = 1n << 7n;
const CPUID_ENTRY_WORDS = 10;

export interface CpuidEntry {
  fn: bigint;
  index?: bigint;
  flags?: bigint;
  eax?: bigint;
  ecx?: bigint;
}

/** struct kvm_cpuid_entry2 as the spec's 32-bit words: function, index, flags, eax, ebx, ecx, edx, padding. */
function cpuidWords(entries: CpuidEntry[]): bigint[] {
  return entries.flatMap((e) => {
    const w = new Array<bigint>(CPUID_ENTRY_WORDS).fill(0n);
    w[0] = e.fn;
    w[1] = e.index ?? 0n;
    w[2] = e.flags ?? 0n;
    w[3] = e.eax ?? 0n;
    w[5] = e.ecx ?? 0n;
    return w;
  });
}

export function setCpuid(ctx: CaseContext, vcpu: number, entries: CpuidEntry[]) {
  return ctx.kvm.call(vcpu, 'KVM_SET_CPUID2', {
    struct: { nent: BigInt(entries.length), entries: cpuidWords(entries) },
  });
}

/** KVM_GET_REG_LIST with room for four ids: the ids listed. */
async function regList(ctx: CaseContext, vcpu: number): Promise<bigint[]> {
  const r = await ctx.kvm.call(
    vcpu,
    'KVM_GET_REG_LIST',
    { struct: { n: 4n, reg: [0n, 0n, 0n, 0n] } },
    { hostDependent: true },
  );
  assertOutcome(r, { ret: 0 }, 'KVM_GET_REG_LIST with n = 4');
  return (r.fields.reg as bigint[]).slice(0, Number(r.fields.n));
}

/** A u64 as the hex init of an 8-byte buffer, in x86's byte order. */
function le64(value: bigint): string {
  return bytesToHex(uintToBytes(value, 8, 'little'));
}

function oneReg(ctx: CaseContext, vcpu: number, op: 'get' | 'set', id: bigint, value = 0n) {
  const init = le64(value);
  return ctx.kvm.call(vcpu, op === 'get' ? 'KVM_GET_ONE_REG' : 'KVM_SET_ONE_REG', {
    struct: { id, addr: { buffer: op === 'get' ? { size: 8 } : { size: 8, init } } },
  });
}

export async function readReg(ctx: CaseContext, vcpu: number, id: bigint, what: string): Promise<bigint> {
  const r = await oneReg(ctx, vcpu, 'get', id);
  assertOutcome(r, { ret: 0 }, `KVM_GET_ONE_REG ${what}`);
  const bytes = r.spans.addr;
  if (!bytes) throw new Error('KVM_GET_ONE_REG returned no value bytes');
  return bytesToUint(bytes.subarray(0, 8), ctx.kvm.endian);
}

/** Asks for the MSR index list with nmsrs = 0, as VMMs do; returns the count the kernel wrote back. */
async function msrCount(
  ctx: CaseContext,
): Promise<{ system: number; count: bigint; first: Awaited<ReturnType<CaseContext['kvm']['call']>> }> {
  const { system } = await ctx.fixture('system');
  const first = await ctx.kvm.call(system, 'KVM_GET_MSR_INDEX_LIST', { struct: { nmsrs: 0n } });
  return { system, count: first.fields.nmsrs as bigint, first };
}

/**
 * The MSR indices KVM_GET_MSR_INDEX_LIST reports, asked for with room for all of them (the count a first,
 * empty call gave); the call must succeed and write that count back. The host's list: cases need none of
 * their own.
 */
export async function msrIndices(ctx: CaseContext): Promise<bigint[]> {
  const { system, count } = await msrCount(ctx);
  const list = await ctx.kvm.call(system, 'KVM_GET_MSR_INDEX_LIST', {
    struct: { nmsrs: count, indices: new Array<bigint>(Number(count)).fill(0n) },
  });
  assertOutcome(list, { ret: 0 }, `KVM_GET_MSR_INDEX_LIST with nmsrs = ${count}`);
  assertValue(list.fields.nmsrs as bigint, count, 'nmsrs after the full call');
  return (list.fields.indices as bigint[]).slice(0, Number(count));
}

const tooSmall: CaseGenerator = (g) => [
  {
    params: { nmsrs: '0' },
    run: async (ctx) => {
      const { count, first } = await msrCount(ctx);
      assertOutcome(first, g.ref.rule.expect ?? { errno: 'E2BIG' }, 'KVM_GET_MSR_INDEX_LIST with nmsrs = 0');
      ctx.note('msrs', count.toString());
    },
  },
];

const readable: CaseGenerator = (g) => [
  {
    params: { msrs: 'all' },
    run: async (ctx) => {
      const indices = await msrIndices(ctx);
      const vcpu = await vcpuOf(ctx, 'vcpu');
      for (const index of indices) {
        const r = await ctx.kvm.call(vcpu, 'KVM_GET_ONE_REG', {
          struct: { id: X86_REG_MSR | index, addr: { buffer: { size: 8 } } },
        });
        assertOutcome(r, g.ref.rule.expect ?? { ret: 0 }, `KVM_GET_ONE_REG of MSR 0x${index.toString(16)}`);
      }
      ctx.note('msrs', String(indices.length));
    },
  },
];

/** The largest table KVM takes: 256 entries (distinct leaves of the hypervisor range). */
const cpuidMax: CaseGenerator = () => [
  {
    params: { nent: '256' },
    run: async (ctx) => {
      const entries = Array.from({ length: 256 }, (_, i) => ({ fn: 0x4000_0100n + BigInt(i) }));
      assertOutcome(
        await setCpuid(ctx, await vcpuOf(ctx, 'vcpu'), entries),
        { ret: 0 },
        'KVM_SET_CPUID2 of 256 entries',
      );
    },
  },
];

/** Tables whose SHSTK bit is anywhere but leaf 7 subleaf 0: GUEST_SSP stays absent. */
const sspAbsent: CaseGenerator = () =>
  (
    [
      ['leaf-7-subleaf-1', [{ fn: 7n, index: 1n, flags: KVM_CPUID_FLAG_SIGNIFCANT_INDEX, ecx: SHSTK }]],
      ['leaf-6', [{ fn: 6n, ecx: SHSTK }]],
      [
        'leaf-7-neighbours',
        [{ fn: 7n, flags: KVM_CPUID_FLAG_SIGNIFCANT_INDEX, ecx: (SHSTK << 1n) | (SHSTK >> 1n) }],
      ],
    ] as const
  ).map(([table, entries]) => ({
    params: { table },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      assertOutcome(await setCpuid(ctx, vcpu, [...entries]), { ret: 0 }, `KVM_SET_CPUID2 (${table})`);
      assertValue(BigInt((await regList(ctx, vcpu)).length), 0n, 'registers listed');
      assertOutcome(await oneReg(ctx, vcpu, 'get', GUEST_SSP), { errno: 'EINVAL' }, 'GET GUEST_SSP');
      assertOutcome(await oneReg(ctx, vcpu, 'set', GUEST_SSP), { errno: 'EINVAL' }, 'SET GUEST_SSP');
    },
  }));

/** SHSTK in the table: GUEST_SSP is listed and reachable, until a table without SHSTK removes it. */
const sspPresent: CaseGenerator = () => [
  {
    params: { table: 'shstk' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const shstk = [{ fn: 7n, flags: KVM_CPUID_FLAG_SIGNIFCANT_INDEX, ecx: SHSTK }];
      assertOutcome(await setCpuid(ctx, vcpu, shstk), { ret: 0 }, 'KVM_SET_CPUID2 with SHSTK');
      const listed = await regList(ctx, vcpu);
      if (listed.length === 0) ctx.notApplicable('the host KVM does not virtualise shadow stacks');
      assertValue(BigInt(listed.length), 1n, 'registers listed');
      assertValue(listed[0] ?? 0n, GUEST_SSP, 'the listed id');
      assertValue(await readReg(ctx, vcpu, GUEST_SSP, 'GUEST_SSP'), 0n, 'GUEST_SSP after reset');
      for (const [value, what] of [
        [0x7f00_0000_1002n, 'not 4-byte aligned'],
        [0x8000_0000_0000_0000n, 'non-canonical'],
      ] as const) {
        assertOutcome(await oneReg(ctx, vcpu, 'set', GUEST_SSP, value), { errno: 'EINVAL' }, `SET ${what}`);
      }
      assertOutcome(await oneReg(ctx, vcpu, 'get', KVM_REG_AFTER_SSP), { errno: 'EINVAL' }, 'KVM register 1');
      const ssp = 0xffff_8000_0000_1000n;
      assertOutcome(await oneReg(ctx, vcpu, 'set', GUEST_SSP, ssp), { ret: 0 }, 'SET GUEST_SSP');
      assertValue(await readReg(ctx, vcpu, GUEST_SSP, 'GUEST_SSP'), ssp, 'GUEST_SSP read back');
      assertOutcome(await setCpuid(ctx, vcpu, [{ fn: 0n }]), { ret: 0 }, 'KVM_SET_CPUID2 without SHSTK');
      assertValue(BigInt((await regList(ctx, vcpu)).length), 0n, 'registers listed after');
      assertOutcome(await oneReg(ctx, vcpu, 'get', GUEST_SSP), { errno: 'EINVAL' }, 'GET GUEST_SSP after');
    },
  },
];

/** SYSENTER_ESP/EIP: a non-canonical write is taken and stored made canonical. */
const msrCanonicalized: CaseGenerator = () =>
  (
    [
      ['IA32_SYSENTER_ESP', 0x175n],
      ['IA32_SYSENTER_EIP', 0x176n],
    ] as const
  ).map(([name, index]) => ({
    params: { msr: name },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const id = X86_REG_MSR | index;
      // Bit 63 alone: not canonical at 48 or 57 bits, and both sign extensions give 0.
      assertOutcome(await oneReg(ctx, vcpu, 'set', id, 1n << 63n), { ret: 0 }, `SET ${name}`);
      assertValue(await readReg(ctx, vcpu, id, name), 0n, `${name} read back`);
    },
  }));

/** EFER.LMA follows the vCPU's mode: a host-initiated write cannot set it. */
const eferLma: CaseGenerator = () => [
  {
    params: { value: 'lme-lma' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const id = X86_REG_MSR | 0xc000_0080n;
      assertOutcome(await oneReg(ctx, vcpu, 'set', id, 0x500n), { ret: 0 }, 'SET EFER = LME|LMA');
      const efer = await readReg(ctx, vcpu, id, 'EFER');
      assertTrue((efer & 0x400n) === 0n, `EFER.LMA stays clear (read 0x${efer.toString(16)})`);
      assertValue(efer & 0x100n, 0x100n, 'EFER.LME');
    },
  },
];

/** KVM_VCPU_TSC_CTRL and its one attribute, KVM_VCPU_TSC_OFFSET (arch/x86/include/uapi/asm/kvm.h). */
const TSC_CTRL = 0n;
const TSC_OFFSET = 0n;

function tscAttr(
  ctx: CaseContext,
  vcpu: number,
  op: 'KVM_GET_DEVICE_ATTR' | 'KVM_SET_DEVICE_ATTR',
  options: { attr?: bigint; value?: bigint; addr?: 'invalid' } = {},
) {
  const init = options.value === undefined ? undefined : le64(options.value);
  return ctx.kvm.call(vcpu, op, {
    struct: {
      group: TSC_CTRL,
      attr: options.attr ?? TSC_OFFSET,
      addr: options.addr ?? { buffer: init === undefined ? { size: 8 } : { size: 8, init } },
    },
  });
}

/**
 * The TSC offset attribute: SET and GET of it succeed (the value read back is not compared: upstream returns
 * the offset set, but the x86 host's out-of-tree kvm_pvm vendor module keeps no TSC offset and reads 0);
 * another attribute of the group is ENXIO for GET and SET; an inaccessible addr is EFAULT.
 */
const tscOffset: CaseGenerator = () => [
  {
    params: { case: 'set-get' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const set = await tscAttr(ctx, vcpu, 'KVM_SET_DEVICE_ATTR', { value: 0xffff_ff00_1234_5000n });
      assertOutcome(set, { ret: 0 }, 'SET TSC offset');
      assertOutcome(await tscAttr(ctx, vcpu, 'KVM_GET_DEVICE_ATTR'), { ret: 0 }, 'GET TSC offset');
    },
  },
  ...(['KVM_GET_DEVICE_ATTR', 'KVM_SET_DEVICE_ATTR'] as const).flatMap((op) => [
    {
      params: { case: 'other-attr', op: op.slice(4, 7).toLowerCase() },
      run: async (ctx: CaseContext) => {
        const r = await tscAttr(ctx, await vcpuOf(ctx, 'vcpu'), op, { attr: 1n, value: 0n });
        assertOutcome(r, { errno: 'ENXIO' }, `${op} of TSC attribute 1`);
      },
    },
    {
      params: { case: 'bad-addr', op: op.slice(4, 7).toLowerCase() },
      run: async (ctx: CaseContext) => {
        const r = await tscAttr(ctx, await vcpuOf(ctx, 'vcpu'), op, { addr: 'invalid' });
        assertOutcome(r, { errno: 'EFAULT' }, `${op} of the TSC offset through an invalid addr`);
      },
    },
  ]),
];

/** MP_STATE-VAL-005: with an in-kernel irqchip, vCPU 0 (the boot processor) runs and vCPU 1 waits for INIT. */
const irqchipMpInitial: CaseGenerator = () => [
  {
    params: { vcpus: '0+1' },
    run: async (ctx) => {
      const ap = await ctx.kvm.setupHandle(await vmOf(ctx, 'vcpu-irqchip'), 'KVM_CREATE_VCPU', 1n);
      await expectMpState(ctx, await vcpuOf(ctx, 'vcpu-irqchip'), 'RUNNABLE', 'vCPU 0');
      await expectMpState(ctx, ap, 'UNINITIALIZED', 'vCPU 1');
    },
  },
];

/** A KVM_MP_STATE_* suffix as a test-ID parameter: INIT_RECEIVED → init-received. */
const stateParam = (state: string) => state.toLowerCase().replaceAll('_', '-');

/** The states a vCPU with an in-kernel local APIC keeps as set. */
const APIC_STATES = ['UNINITIALIZED', 'INIT_RECEIVED', 'HALTED', 'AP_RESET_HOLD', 'RUNNABLE'];

/** MP_STATE-VAL-006: each state set reads back, after a different state was set first. */
const irqchipMpSet: CaseGenerator = () =>
  APIC_STATES.map((state, i) => ({
    params: { state: stateParam(state) },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx, 'vcpu-irqchip');
      const before = APIC_STATES[(i + 1) % APIC_STATES.length]!;
      await setMpState(ctx, vcpu, before, 'vCPU 0');
      await setMpState(ctx, vcpu, state, 'vCPU 0');
      await expectMpState(ctx, vcpu, state, `vCPU 0 set ${before}, then ${state}`);
    },
  }));

/** States set after SIPI_RECEIVED, and what the next GET reads. */
const AFTER_SIPI: { then: string[]; reads: string }[] = [
  { then: [], reads: 'RUNNABLE' },
  { then: ['INIT_RECEIVED'], reads: 'RUNNABLE' },
  { then: ['HALTED'], reads: 'HALTED' },
  { then: ['HALTED', 'INIT_RECEIVED'], reads: 'RUNNABLE' },
];

/**
 * MP_STATE-VAL-007: SIPI_RECEIVED is taken, and the SIPI stays pending across other SETs until the next GET,
 * which starts the vCPU (RUNNABLE) if it is in INIT_RECEIVED and drops the SIPI otherwise.
 */
const irqchipMpSipi: CaseGenerator = () =>
  AFTER_SIPI.map(({ then, reads }) => ({
    params: { then: then.map(stateParam).join('+') || 'nothing' },
    run: async (ctx: CaseContext) => {
      const ap = await ctx.kvm.setupHandle(await vmOf(ctx, 'vm-irqchip'), 'KVM_CREATE_VCPU', 1n);
      const sets = ['SIPI_RECEIVED', ...then];
      for (const state of sets) await setMpState(ctx, ap, state, 'vCPU 1');
      await expectMpState(ctx, ap, reads, `vCPU 1 set ${sets.join(', ')}`);
      if (reads !== 'RUNNABLE') {
        // That GET dropped the SIPI, so INIT_RECEIVED now stays.
        await setMpState(ctx, ap, 'INIT_RECEIVED', 'vCPU 1');
        await expectMpState(
          ctx,
          ap,
          'INIT_RECEIVED',
          `vCPU 1 set ${sets.join(', ')}, read, set INIT_RECEIVED`,
        );
      }
    },
  }));

/** States of other arches, and the first number no arch uses. */
const NOT_X86_STATES = ['STOPPED', 'CHECK_STOP', 'OPERATING', 'LOAD', 'SUSPENDED', '11'];

/** MP_STATE-ERR-004: refused with EINVAL even with a local APIC, and the vCPU stays HALTED. */
const irqchipMpRefused: CaseGenerator = () =>
  NOT_X86_STATES.map((state) => ({
    params: { state: stateParam(state) },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx, 'vcpu-irqchip');
      await setMpState(ctx, vcpu, 'HALTED', 'vCPU 0');
      const value = /^\d+$/.test(state)
        ? BigInt(state)
        : ctx.spec.constant(`KVM_MP_STATE_${state}`, ctx.arch);
      const r = await ctx.kvm.call(vcpu, 'KVM_SET_MP_STATE', { struct: { mp_state: value } });
      assertOutcome(r, { errno: 'EINVAL' }, `KVM_SET_MP_STATE ${state}`);
      await expectMpState(ctx, vcpu, 'HALTED', `vCPU 0 after the refused ${state}`);
    },
  }));

/** The local APIC page kvm_lapic_state carries: a 32-bit register every 16 bytes, at its xAPIC offset. */
const LAPIC_PAGE_BYTES = 1024;
const LAPIC_REGISTER_STRIDE = 16;

/** A register of the page, by xAPIC offset. */
export const apicRegister = (page: DataView, offset: number) => BigInt(page.getUint32(offset, true));

/** KVM_GET_LAPIC, which must succeed, into a struct of 0xaa bytes: the page it wrote. */
export async function getLapic(ctx: CaseContext, vcpu: number, what: string): Promise<DataView> {
  const r = await ctx.kvm.call(vcpu, 'KVM_GET_LAPIC', {
    struct: { regs: new Array<bigint>(LAPIC_PAGE_BYTES).fill(0xaan) },
  });
  assertOutcome(r, { ret: 0 }, `KVM_GET_LAPIC of ${what}`);
  const page = Uint8Array.from(r.fields.regs as bigint[], Number);
  // Each register takes the first 4 bytes of its 16; KVM writes the rest of the page too, as zeros.
  assertTrue(
    page.every((b, i) => i % LAPIC_REGISTER_STRIDE < 4 || b === 0),
    `KVM_GET_LAPIC of ${what} writes the bytes between registers`,
  );
  return new DataView(page.buffer);
}

/** Registers by xAPIC offset, as the hex the assertion messages name them by. */
const apicReg = (offset: number) => `APIC register 0x${offset.toString(16)}`;

/** LAPIC-VAL-001: the page of a new vCPU: the boot processor, an AP, and one whose id has more than 8 bits. */
const lapicInitial: CaseGenerator = () =>
  [0n, 5n, 300n].map((id) => ({
    params: { vcpu: String(id) },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx, 'vm-irqchip');
      const vcpu = await ctx.kvm.setupHandle(vm, 'KVM_CREATE_VCPU', id);
      const got = await getLapic(ctx, vcpu, `vCPU ${id}`);
      // By xAPIC offset; every register not named reads 0.
      const expected = new Map<number, bigint>([
        [0x20, (id & 0xffn) << 24n],
        [0x30, 0x5_0014n],
        [0xe0, 0xffff_ffffn],
        [0xf0, 0xffn],
      ]);
      for (const lvt of [0x320, 0x330, 0x340, 0x350, 0x360, 0x370]) expected.set(lvt, MASKED);
      if (id === 0n) expected.set(0x350, 0x700n);
      for (let offset = 0; offset < LAPIC_PAGE_BYTES; offset += LAPIC_REGISTER_STRIDE)
        assertValue(
          apicRegister(got, offset),
          expected.get(offset) ?? 0n,
          `${apicReg(offset)} of vCPU ${id}`,
        );
    },
  }));

/** Registers written by LAPIC-VAL-002's case, and what each must read back as (the written value unless given). */
const LAPIC_WRITES: { offset: number; value: bigint; reads?: bigint }[] = [
  { offset: 0x20, value: 7n << 24n },
  { offset: 0x30, value: 0x1_2345n, reads: 0x5_0014n },
  { offset: 0x80, value: 0x20n },
  { offset: 0xa0, value: 0x99n, reads: 0x20n },
  { offset: 0xd0, value: 3n << 24n },
  { offset: 0xe0, value: 0x0fff_ffffn },
  { offset: 0xf0, value: 0x1ffn },
  { offset: 0x280, value: 0x40n },
  { offset: 0x300, value: 0x4041n },
  { offset: 0x310, value: 2n << 24n },
  { offset: 0x360, value: 0x1_0040n },
  { offset: 0x390, value: 0x1234n, reads: 0n },
  { offset: 0x3e0, value: 0xbn },
];

/** LAPIC-VAL-002: a page written with KVM_SET_LAPIC reads back as written, but for the version and PPR. */
const lapicSetGet: CaseGenerator = () => [
  {
    params: { vcpu: '5' },
    run: async (ctx) => {
      const vcpu = await ctx.kvm.setupHandle(await vmOf(ctx, 'vm-irqchip'), 'KVM_CREATE_VCPU', 5n);
      const page = await getLapic(ctx, vcpu, 'vCPU 5');
      for (const { offset, value } of LAPIC_WRITES) page.setUint32(offset, Number(value), true);
      const regs = Array.from(new Uint8Array(page.buffer), BigInt);
      const set = await ctx.kvm.call(vcpu, 'KVM_SET_LAPIC', { struct: { regs } });
      assertOutcome(set, { ret: 0 }, 'KVM_SET_LAPIC');
      const got = await getLapic(ctx, vcpu, 'vCPU 5 after KVM_SET_LAPIC');
      for (const { offset, value, reads } of LAPIC_WRITES)
        assertValue(
          apicRegister(got, offset),
          reads ?? value,
          `${apicReg(offset)} written as 0x${value.toString(16)}`,
        );
    },
  },
];

export const x86Family: SuiteFamily = {
  generators: {
    'x86.msr-list-too-small': tooSmall,
    'x86.msr-list-readable': readable,
    'x86.cpuid-max': cpuidMax,
    'x86.ssp-absent': sspAbsent,
    'x86.ssp-present': sspPresent,
    'x86.msr-canonicalized': msrCanonicalized,
    'x86.efer-lma': eferLma,
    'x86.tsc-offset': tscOffset,
    'x86.irqchip-mp-initial': irqchipMpInitial,
    'x86.irqchip-mp-set': irqchipMpSet,
    'x86.irqchip-mp-sipi': irqchipMpSipi,
    'x86.irqchip-mp-refused': irqchipMpRefused,
    'x86.lapic-initial': lapicInitial,
    'x86.lapic-set-get': lapicSetGet,
  },
};
