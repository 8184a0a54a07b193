import { assertOutcome, assertTrue, assertValue, expectOf } from '../../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator } from '../../harness/plan/types.ts';
import type { CallResult } from '../../harness/session.ts';
import { read, write } from './access.ts';
import {
  buffer,
  flagsOf,
  guest,
  memop,
  pattern,
  pendingIrqs,
  PAGE,
  s390,
  setKeys,
  setRegs,
  type Guest,
  type OpName,
} from './guest.ts';
import { cases, hex } from './plan.ts';

const KEYED = 0x1_0000n;
const FSI_STORE = 0x400n;
const FSI_FETCH = 0x800n;
const TEID_KEY = 0x08n;

interface InjectCase {
  name: string;
  call: (ctx: CaseContext, g: Guest) => Promise<CallResult>;
  code: number;
  teid: bigint;
  ar: number;
}

const INJECT_CASES: InjectCase[] = [
  {
    name: 'addressing',
    call: (ctx, g) => read(ctx, g, 'vcpu', 0x20_0000n, 8, flagsOf(ctx, ['INJECT_EXCEPTION'])),
    code: 5,
    teid: 0n,
    ar: 0,
  },
  {
    name: 'key-store',
    call: (ctx, g) =>
      write(ctx, g, 'vcpu', KEYED + 8n, pattern(8), flagsOf(ctx, ['INJECT_EXCEPTION', 'SKEY_PROTECTION']), 4),
    code: 4,
    teid: KEYED | FSI_STORE | TEID_KEY,
    ar: 0,
  },
  {
    name: 'key-fetch-check-only',
    call: (ctx, g) =>
      read(ctx, g, 'vcpu', KEYED, 8, flagsOf(ctx, ['INJECT_EXCEPTION', 'SKEY_PROTECTION', 'CHECK_ONLY']), 4),
    code: 4,
    teid: KEYED | FSI_FETCH | TEID_KEY,
    ar: 0,
  },
  {
    name: 'key-fetch',
    call: (ctx, g) =>
      read(ctx, g, 'vcpu', KEYED, 8, flagsOf(ctx, ['INJECT_EXCEPTION', 'SKEY_PROTECTION']), 4),
    code: 4,
    teid: KEYED | FSI_FETCH | TEID_KEY,
    ar: 0,
  },
  {
    name: 'access-register-id',
    call: async (ctx, g) => {
      const buf = { buf: await buffer(ctx, 8, pattern(8)) };
      const flags = flagsOf(ctx, ['INJECT_EXCEPTION', 'SKEY_PROTECTION']);
      return memop(ctx, g, { op: 'LOGICAL_WRITE', gaddr: KEYED, size: 8, buf, flags, key: 4, ar: 5 });
    },
    code: 4,
    teid: KEYED | FSI_STORE | TEID_KEY,
    ar: 5,
  },
];

const inject: CaseGenerator = () =>
  cases(
    INJECT_CASES,
    ({ name }) => ({ case: name }),
    async (ctx, c) => {
      const gu = await guest(ctx);
      await setKeys(ctx, gu, Number(KEYED) / PAGE, [0x38]);
      assertOutcome(await c.call(ctx, gu), { ret: c.code }, `${c.name} with INJECT_EXCEPTION`);
      const irqs = await pendingIrqs(ctx, gu);
      assertValue(BigInt(irqs.length), 1n, 'pending interrupts');
      const [irq] = irqs;
      assertTrue(irq !== undefined, 'an interrupt is pending');
      assertValue(irq.type as bigint, s390(ctx, 'KVM_S390_PROGRAM_INT'), 'irq type');
      assertValue(irq.code as bigint, BigInt(c.code), 'program-interruption code');
      assertValue(irq.trans_exc_code as bigint, c.teid, 'translation-exception identification');
      assertValue(irq.exc_access_id as bigint, BigInt(c.ar), 'exception access id');
    },
  );

const NO_INJECT: {
  name: string;
  op: OpName;
  gaddr: bigint;
  size: number;
  flags: ('INJECT_EXCEPTION' | 'CHECK_ONLY')[];
  ret: number | 'EINVAL';
}[] = [
  { name: 'no-flag', op: 'LOGICAL_READ', gaddr: 0x20_0000n, size: 8, flags: [], ret: 5 },
  { name: 'success', op: 'LOGICAL_READ', gaddr: 0n, size: 8, flags: ['INJECT_EXCEPTION'], ret: 0 },
  {
    name: 'errno',
    op: 'LOGICAL_READ',
    gaddr: 0x20_0000n,
    size: 0,
    flags: ['INJECT_EXCEPTION'],
    ret: 'EINVAL',
  },
  { name: 'vm-absolute', op: 'ABSOLUTE_READ', gaddr: 0x10_0000n, size: 8, flags: [], ret: 5 },
  {
    name: 'check-only-success',
    op: 'LOGICAL_WRITE',
    gaddr: 0n,
    size: 8,
    flags: ['INJECT_EXCEPTION', 'CHECK_ONLY'],
    ret: 0,
  },
];

const noInject: CaseGenerator = () =>
  cases(
    NO_INJECT,
    ({ name }) => ({ case: name }),
    async (ctx, c) => {
      const gu = await guest(ctx);
      const r = await memop(ctx, gu, {
        op: c.op,
        gaddr: c.gaddr,
        size: c.size,
        flags: flagsOf(ctx, c.flags),
        buf: { buf: await buffer(ctx, 8) },
      });
      assertOutcome(r, typeof c.ret === 'number' ? { ret: c.ret } : { errno: c.ret }, `${c.name}`);
      assertValue(BigInt((await pendingIrqs(ctx, gu)).length), 0n, 'pending interrupts');
    },
  );

const SIDA_OPS = ['SIDA_READ', 'SIDA_WRITE'] as const;

function sidaCases(
  list: { name: string; offset: number; size: number; flags?: 'CHECK_ONLY' }[],
): CaseGenerator {
  return (g) =>
    cases(
      SIDA_OPS.flatMap((op) => list.map((c) => ({ op, c }))),
      ({ op, c }) => ({ op, case: c.name }),
      async (ctx, { op, c }) => {
        const gu = await guest(ctx);
        const r = await memop(ctx, gu, {
          op,
          size: c.size,
          flags: c.flags ? flagsOf(ctx, [c.flags]) : 0n,
          buf: { buf: await buffer(ctx, Math.max(c.size, 8)) },
          extra: { sida_offset: BigInt(c.offset) },
        });
        assertOutcome(
          r,
          expectOf(g),
          `${op} ${c.name}: offset ${hex(c.offset)} size ${c.size} on an ordinary vCPU`,
        );
      },
    );
}

const sidaEinval = sidaCases([
  { name: 'not-protected', offset: 0x1c0, size: 8 },
  // GBEA, which shares the SIDA designation's field, resets to 1: the range check allows two pages.
  { name: 'not-protected-second-page', offset: 0x1ff8, size: 8 },
  { name: 'flag', offset: 0, size: 8, flags: 'CHECK_ONLY' },
  { name: 'size-0', offset: 0, size: 0 },
  { name: 'overflow', offset: 0xffff_fff8, size: 16 },
]);

const sidaE2big = sidaCases([
  { name: 'offset-64KiB', offset: 0x1_0000, size: 8 },
  { name: 'past-two-pages', offset: 0x1ff9, size: 8 },
  // offset + size = 0xffffffff does not wrap 32 bits: too big, not an overflow.
  { name: 'end-at-4GiB', offset: 0xffff_fff7, size: 8 },
  { name: 'size-64KiB', offset: 0, size: 0x1_0000 },
]);

/** Two injecting memops, then GET_IRQ_STATE with room for one irq, exactly one, or a byte less. */
const irqStatePending: CaseGenerator = () =>
  cases(
    [
      { name: 'len-8-irqs', irqs: 8, less: 0 },
      { name: 'len-1-irq', irqs: 1, less: 0 },
      { name: 'len-short', irqs: 1, less: 1, errno: 'ENOBUFS' },
    ],
    ({ name }) => ({ case: name }),
    async (ctx, c) => {
      const size = ctx.spec.layout('kvm_s390_irq', { arch: ctx.arch, revision: ctx.revision }).size;
      const room = c.irqs * size - c.less;
      const gu = await guest(ctx);
      const flags = flagsOf(ctx, ['INJECT_EXCEPTION']);
      const buf = { buf: await buffer(ctx, 8) };
      const unbacked = { op: 'LOGICAL_READ' as const, gaddr: 0x20_0000n, size: 8, flags, buf };
      assertOutcome(await memop(ctx, gu, unbacked), { ret: 5 }, 'read of an unbacked page');
      await setRegs(ctx, gu, { 0: s390(ctx, 'S390_CR0_LAP') });
      const lap = { ...unbacked, op: 'LOGICAL_WRITE' as const, gaddr: 0n };
      assertOutcome(await memop(ctx, gu, lap), { ret: 4 }, 'store to 0 under low-address protection');
      const r = await ctx.kvm.call(gu.vcpu, 'KVM_S390_GET_IRQ_STATE', {
        struct: { buf: { buffer: { size: 8 * size } }, len: BigInt(room) },
      });
      if (c.errno) return assertOutcome(r, { errno: c.errno }, `GET_IRQ_STATE with len ${room}`);
      assertOutcome(r, { ret: size }, `GET_IRQ_STATE with len ${room}: one program interrupt`);
      const [irq] = await pendingIrqs(ctx, gu);
      assertValue(irq!.code as bigint, 4n, 'the later injection replaced the earlier one');
    },
  );

export const injectGenerators: Record<string, CaseGenerator> = {
  inject,
  'irq-state-pending': irqStatePending,
  'no-inject': noInject,
  'sida-einval': sidaEinval,
  'sida-e2big': sidaE2big,
};
