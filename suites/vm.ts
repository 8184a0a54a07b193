import { assertOutcome } from '../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator, GenerateContext, SuiteFamily } from '../harness/plan/types.ts';
import { memslot } from './fixtures.ts';
import type { Outcome } from '../harness/spec/types.ts';

const MiB = 1 << 20;
/** 1 MiB-aligned RAM satisfies every arch (s390 maps guest memory in 1 MiB segments). */
const RAM_ALIGN = MiB;

function expectOf(g: GenerateContext): Outcome {
  const e = g.ref.rule.expect;
  if (!e) throw new Error(`${g.ref.rule.id}: derived cases need the rule's "expect"`);
  return e;
}

async function vmOf(ctx: CaseContext): Promise<number> {
  const { vm } = await ctx.fixture('vm');
  if (vm === undefined) throw new Error('fixture vm opened no VM');
  return vm;
}

const duplicateVcpu: CaseGenerator = (g) => [
  {
    params: { id: '0' },
    run: async (ctx) => {
      const { vm } = await ctx.fixture('vcpu');
      const r = await ctx.kvm.call(vm!, 'KVM_CREATE_VCPU', 0n);
      assertOutcome(r, expectOf(g), 'second KVM_CREATE_VCPU with id 0');
    },
  },
];

const valid: CaseGenerator = (g) => [
  {
    params: { size: '1MiB' },
    run: async (ctx) => {
      const ram = await ctx.kvm.alloc(MiB, { alignment: RAM_ALIGN });
      const r = await ctx.kvm.call(
        await vmOf(ctx),
        'KVM_SET_USER_MEMORY_REGION',
        memslot(0, 0n, BigInt(MiB), ram),
      );
      assertOutcome(r, expectOf(g), 'KVM_SET_USER_MEMORY_REGION of 1 MiB at 0');
    },
  },
];

const unalignedSize: CaseGenerator = (g) => [
  {
    params: { size: '1MiB+1' },
    run: async (ctx) => {
      const ram = await ctx.kvm.alloc(2 * MiB, { alignment: RAM_ALIGN });
      const r = await ctx.kvm.call(
        await vmOf(ctx),
        'KVM_SET_USER_MEMORY_REGION',
        memslot(0, 0n, BigInt(MiB + 1), ram),
      );
      assertOutcome(r, expectOf(g), 'KVM_SET_USER_MEMORY_REGION with size 1 MiB + 1');
    },
  },
];

const s390Segment: CaseGenerator = (g) =>
  (
    [
      ['addr', 4096, MiB],
      ['size', 0, MiB + 4096],
    ] as const
  ).map(([what, offset, size]) => ({
    params: { misaligned: what },
    run: async (ctx: CaseContext) => {
      const ram = await ctx.kvm.alloc(3 * MiB, { alignment: RAM_ALIGN });
      const r = await ctx.kvm.call(
        await vmOf(ctx),
        'KVM_SET_USER_MEMORY_REGION',
        memslot(0, 0n, BigInt(size), ram, offset),
      );
      assertOutcome(
        r,
        expectOf(g),
        `KVM_SET_USER_MEMORY_REGION with a page- but not segment-aligned ${what}`,
      );
    },
  }));

const overlap: CaseGenerator = (g) => [
  {
    params: { slots: '0+1' },
    run: async (ctx) => {
      const vm = await vmOf(ctx);
      const ram = await ctx.kvm.alloc(2 * MiB, { alignment: RAM_ALIGN });
      await ctx.kvm.setup(vm, 'KVM_SET_USER_MEMORY_REGION', memslot(0, 0n, BigInt(2 * MiB), ram));
      const other = await ctx.kvm.alloc(MiB, { alignment: RAM_ALIGN });
      const r = await ctx.kvm.call(
        vm,
        'KVM_SET_USER_MEMORY_REGION',
        memslot(1, BigInt(MiB), BigInt(MiB), other),
      );
      assertOutcome(r, expectOf(g), 'a second slot over the first one');
    },
  },
];

export const vmFamily: SuiteFamily = {
  generators: {
    'vm.duplicate-vcpu': duplicateVcpu,
    'memslot.valid': valid,
    'memslot.unaligned-size': unalignedSize,
    'memslot.s390-segment': s390Segment,
    'memslot.overlap': overlap,
  },
};
