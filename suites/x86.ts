import { assertOutcome, assertValue } from '../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator, SuiteFamily } from '../harness/plan/types.ts';

const X86_REG_MSR = 0x2030_0002_0000_0000n;

/** Asks for the MSR index list with nmsrs = 0, as VMMs do; returns the count the kernel wrote back. */
async function msrCount(
  ctx: CaseContext,
): Promise<{ system: number; count: bigint; first: Awaited<ReturnType<CaseContext['kvm']['call']>> }> {
  const { system } = await ctx.fixture('system');
  const first = await ctx.kvm.call(system, 'KVM_GET_MSR_INDEX_LIST', { struct: { nmsrs: 0n } });
  return { system, count: first.fields.nmsrs as bigint, first };
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
      const { system, count } = await msrCount(ctx);
      const list = await ctx.kvm.call(system, 'KVM_GET_MSR_INDEX_LIST', {
        struct: { nmsrs: count, indices: new Array<bigint>(Number(count)).fill(0n) },
      });
      assertOutcome(list, { ret: 0 }, `KVM_GET_MSR_INDEX_LIST with nmsrs = ${count}`);
      assertValue(list.fields.nmsrs as bigint, count, 'nmsrs after the full call');
      const { vcpu } = await ctx.fixture('vcpu');
      for (const index of (list.fields.indices as bigint[]).slice(0, Number(count))) {
        const r = await ctx.kvm.call(vcpu!, 'KVM_GET_ONE_REG', {
          struct: { id: X86_REG_MSR | index, addr: { buffer: { size: 8 } } },
        });
        assertOutcome(r, g.ref.rule.expect ?? { ret: 0 }, `KVM_GET_ONE_REG of MSR 0x${index.toString(16)}`);
      }
      ctx.note('msrs', count.toString());
    },
  },
];

export const x86Family: SuiteFamily = {
  generators: { 'x86.msr-list-too-small': tooSmall, 'x86.msr-list-readable': readable },
};
