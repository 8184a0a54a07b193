// x86 MSRs through KVM_GET_MSRS and KVM_SET_MSRS: the whole index list in one call, agreeing with ONE_REG;
// where a call stops when an entry fails; the entry limit; and the write-back only GET does.
import type { StructValues } from '../harness/abi/codec.ts';
import { assertField, assertOutcome, assertTrue, assertValue } from '../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator, SuiteFamily } from '../harness/plan/types.ts';
import type { CallResult } from '../harness/session.ts';
import { structBuffer, vcpuOf } from './fixtures.ts';
import { msrIndices, readReg, X86_REG_MSR } from './x86.ts';

const MSR_STAR = 0xc000_0081n;
const MSR_LSTAR = 0xc000_0082n;
const MSR_EFER = 0xc000_0080n;
/** An index no CPU defines. */
const MSR_NONE = 0xdead_beefn;
/** KVM takes fewer entries than this (MAX_IO_MSRS). */
const MAX_IO_MSRS = 256;

interface Entry {
  index: bigint;
  reserved?: bigint;
  data?: bigint;
}

/** kvm_msrs' entries as the spec's u64 pairs: index | reserved << 32, then data. */
const entryWords = (entries: Entry[]) =>
  entries.flatMap((e) => [e.index | ((e.reserved ?? 0n) << 32n), e.data ?? 0n]);

/** The entries a call returned, from the decoded struct. */
function entriesOf(fields: StructValues): Required<Entry>[] {
  const words = fields.entries as bigint[];
  return Array.from({ length: words.length / 2 }, (_, i) => ({
    index: words[2 * i]! & 0xffff_ffffn,
    reserved: words[2 * i]! >> 32n,
    data: words[2 * i + 1]!,
  }));
}

function msrIo(
  ctx: CaseContext,
  vcpu: number,
  op: 'KVM_GET_MSRS' | 'KVM_SET_MSRS',
  entries: Entry[],
): Promise<CallResult> {
  return ctx.kvm.call(vcpu, op, { struct: { nmsrs: BigInt(entries.length), entries: entryWords(entries) } });
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/**
 * X86_MSR-VAL-002: the whole list in one KVM_GET_MSRS, each value the one KVM_GET_ONE_REG reads. The list and
 * the values are the host's (the rule is host-dependent). KVM_GET_MSRS runs twice, then ONE_REG: an MSR the
 * two calls agree on must read the same through ONE_REG; one that moved between them (the TSC) must not read
 * lower. The ONE_REG reads come last, so the calls of hosts with different lists line up but for that run.
 */
const getAll: CaseGenerator = () => [
  {
    params: { msrs: 'all' },
    run: async (ctx) => {
      const indices = await msrIndices(ctx);
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const [first, second] = [await getMsrs(ctx, vcpu, indices), await getMsrs(ctx, vcpu, indices)];
      for (const [i, index] of indices.entries()) {
        const viaOneReg = await readReg(ctx, vcpu, X86_REG_MSR | index, `MSR ${hex(index)}`);
        const [a, b] = [first[i]!, second[i]!];
        const what = `MSR ${hex(index)}: KVM_GET_MSRS read ${hex(a)}, then ${hex(b)}; KVM_GET_ONE_REG ${hex(viaOneReg)}`;
        if (a === b) assertValue(viaOneReg, a, what);
        else assertTrue(a < b && b <= viaOneReg, `${what}, which should not go back`);
      }
      ctx.note('msrs', String(indices.length));
    },
  },
];

/** KVM_GET_MSRS of the given MSRs, which must read them all: their values. */
async function getMsrs(ctx: CaseContext, vcpu: number, indices: bigint[]): Promise<bigint[]> {
  const r = await msrIo(
    ctx,
    vcpu,
    'KVM_GET_MSRS',
    indices.map((index) => ({ index })),
  );
  assertOutcome(r, { ret: indices.length }, `KVM_GET_MSRS of all ${indices.length} listed MSRs`);
  return entriesOf(r.fields).map((e) => e.data);
}

/** X86_MSR-VAL-003: EFER, an unknown MSR, STAR — the call stops at the second. */
const getStops: CaseGenerator = () => [
  {
    params: { entries: 'efer.none.star' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const given = [
        { index: MSR_EFER, reserved: 1n, data: 0x5555n },
        { index: MSR_NONE, reserved: 2n, data: 0x7777n },
        { index: MSR_STAR, reserved: 3n, data: 0x9999n },
      ];
      const r = await msrIo(ctx, vcpu, 'KVM_GET_MSRS', given);
      assertOutcome(r, { ret: 1 }, 'KVM_GET_MSRS of EFER, an unknown MSR and STAR');
      const efer = await readReg(ctx, vcpu, X86_REG_MSR | MSR_EFER, 'EFER');
      const expected = [{ ...given[0]!, data: efer }, { ...given[1]!, data: 0n }, given[2]!];
      entriesOf(r.fields).forEach((e, i) =>
        assertField(
          [e.index, e.reserved, e.data],
          [expected[i]!.index, expected[i]!.reserved, expected[i]!.data],
          `entry ${i} (index, reserved, data) after the call`,
        ),
      );
    },
  },
];

/** X86_MSR-VAL-004: LSTAR, a non-canonical LSTAR, STAR — two writes, the first taken; from a read-only struct. */
const setStops: CaseGenerator = () => [
  {
    params: { entries: 'lstar.non-canonical-lstar.star' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const entries = [
        { index: MSR_LSTAR, data: 0xffff_8000_0000_1000n },
        { index: MSR_LSTAR, data: 0x8000_0000_0000_0000n },
        { index: MSR_STAR, data: 0x0023_0010_0000_0000n },
      ];
      const readonly = await structBuffer(
        ctx,
        'kvm_msrs',
        { nmsrs: 3n, entries: entryWords(entries) },
        { readonly: true },
      );
      const r = await ctx.kvm.call(vcpu, 'KVM_SET_MSRS', { pointer: { buf: readonly } });
      assertOutcome(
        r,
        { ret: 1 },
        'KVM_SET_MSRS of LSTAR, a non-canonical LSTAR and STAR (read-only struct)',
      );
      const got = await msrIo(ctx, vcpu, 'KVM_GET_MSRS', [{ index: MSR_LSTAR }, { index: MSR_STAR }]);
      assertOutcome(got, { ret: 2 }, 'KVM_GET_MSRS of LSTAR and STAR');
      const [lstar, star] = entriesOf(got.fields);
      assertValue(lstar!.data, entries[0]!.data, 'LSTAR: the first entry was written');
      assertValue(star!.data, 0n, 'STAR: the entry after the refused one was not written');
    },
  },
];

/** X86_MSR-ERR-002: 256 entries are refused before any is read (none follow the count); 255 are taken. */
const tooMany: CaseGenerator = () => [
  {
    params: { nmsrs: '256' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const r = await ctx.kvm.call(vcpu, 'KVM_GET_MSRS', { struct: { nmsrs: BigInt(MAX_IO_MSRS) } });
      assertOutcome(r, { errno: 'E2BIG' }, `KVM_GET_MSRS with nmsrs = ${MAX_IO_MSRS} and no entries`);
      const s = await ctx.kvm.call(vcpu, 'KVM_SET_MSRS', { struct: { nmsrs: 0xffff_ffffn } });
      assertOutcome(s, { errno: 'E2BIG' }, 'KVM_SET_MSRS with nmsrs = 0xffffffff and no entries');
    },
  },
  {
    params: { nmsrs: '255' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const entries = new Array<Entry>(MAX_IO_MSRS - 1).fill({ index: MSR_STAR });
      const r = await msrIo(ctx, vcpu, 'KVM_GET_MSRS', entries);
      assertOutcome(r, { ret: MAX_IO_MSRS - 1 }, 'KVM_GET_MSRS of STAR 255 times');
    },
  },
];

/** X86_MSR-ERR-003: GET into a read-only struct cannot write the entries back. */
const getEfault: CaseGenerator = () => [
  {
    params: { struct: 'read-only' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const readonly = await structBuffer(
        ctx,
        'kvm_msrs',
        { nmsrs: 1n, entries: entryWords([{ index: MSR_STAR }]) },
        { readonly: true },
      );
      const r = await ctx.kvm.call(vcpu, 'KVM_GET_MSRS', { pointer: { buf: readonly } });
      assertOutcome(r, { errno: 'EFAULT' }, 'KVM_GET_MSRS of STAR into a read-only struct');
    },
  },
];

export const x86Msrs: SuiteFamily = {
  generators: {
    'x86-msrs.get-all': getAll,
    'x86-msrs.get-stops': getStops,
    'x86-msrs.set-stops': setStops,
    'x86-msrs.too-many': tooMany,
    'x86-msrs.get-efault': getEfault,
  },
};
