import { assertBytes, assertOutcome, assertValue, expectOf } from '../../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator } from '../../harness/plan/types.ts';
import type { PointerArg } from '../../harness/session.ts';
import {
  buffer,
  DIAG_501,
  getKeys,
  guest,
  MiB,
  PAGE,
  readRun,
  runOnce,
  s390,
  setKeys,
  writeRun,
  type Guest,
} from './guest.ts';
import { mapRun, runInterrupted, setImmediateExit } from '../fixtures.ts';
import { cases, hex } from './plan.ts';

/** Storage-key bits user space sets and reads back: ACC and fetch protection (R and C are hardware's). */
const ACC_F = 0xf8;

const skeysRoundtrip: CaseGenerator = (g) =>
  cases(
    [
      { gfn: 0x10, keys: [0x10] },
      { gfn: 0, keys: Array.from({ length: 16 }, (_, i) => (i << 4) | (i & 1 ? 0x08 : 0)) },
      { gfn: 0x80, keys: Array.from({ length: 128 }, (_, i) => ((i * 37) & 0xf0) | 0x08) },
    ],
    ({ gfn, keys }) => ({ gfn: hex(gfn), count: String(keys.length) }),
    async (ctx, { gfn, keys }) => {
      const gu = await guest(ctx);
      await setKeys(ctx, gu, gfn, keys);
      const got = await getKeys(ctx, gu, gfn, keys.length);
      assertBytes(
        got.map((k) => k & ACC_F),
        Uint8Array.from(keys),
        'keys read back (ACC and F)',
      );
      assertOutcome({ ret: 0n, errno: null }, expectOf(g), 'SET_SKEYS');
    },
  );

interface SkeysCase {
  name: string;
  gfn?: number;
  count?: bigint;
  flags?: bigint;
  keys?: number[];
  data?: PointerArg;
  /** The errno where the rule states none for all of its cases. */
  errno?: string;
}

function skeysCases(
  ioctl: 'KVM_S390_SET_SKEYS' | 'KVM_S390_GET_SKEYS',
  list: SkeysCase[],
  enable: boolean,
): CaseGenerator {
  return (g) =>
    cases(
      list,
      ({ name }) => ({ case: name }),
      async (ctx, c) => {
        const gu = await guest(ctx);
        // GET_SKEYS checks its range only once the process uses storage keys.
        if (enable) await setKeys(ctx, gu, 0, [0x00]);
        const keys = Uint8Array.from(c.keys ?? [0x10]);
        const data = c.data ?? { buf: await buffer(ctx, Math.max(keys.length, Number(c.count ?? 1n)), keys) };
        const r = await ctx.kvm.call(gu.vm, ioctl, {
          struct: {
            start_gfn: BigInt(c.gfn ?? 0),
            count: c.count ?? BigInt(keys.length),
            skeydata_addr: data,
            flags: c.flags ?? 0n,
          },
        });
        assertOutcome(r, c.errno ? { errno: c.errno } : expectOf(g), `${ioctl} ${c.name}`);
      },
    );
}

const MAX = 1n << 20n;
const skeysEinval = skeysCases(
  'KVM_S390_SET_SKEYS',
  [
    { name: 'flags', flags: 1n },
    { name: 'count-0', count: 0n },
    { name: 'count-above-max', count: MAX + 1n, data: 'invalid' },
    { name: 'reserved-bit', keys: [0x11] },
  ],
  false,
);

const skeysEfault = skeysCases(
  'KVM_S390_SET_SKEYS',
  [
    { name: 'unbacked-gfn', gfn: MiB / PAGE },
    { name: 'unbacked-tail', gfn: MiB / PAGE - 1, keys: [0x10, 0x10] },
    { name: 'unreadable-keys', data: 'invalid' },
    // KVM_S390_SKEYS_MAX itself passes the count check: the key array is read next.
    { name: 'count-max-unreadable', count: MAX, data: 'invalid' },
  ],
  false,
);

const skeysGetErrors = skeysCases(
  'KVM_S390_GET_SKEYS',
  [
    { name: 'flags', flags: 1n, errno: 'EINVAL' },
    { name: 'count-0', count: 0n, errno: 'EINVAL' },
    { name: 'unbacked-gfn', gfn: MiB / PAGE, errno: 'EFAULT' },
    { name: 'count-above-max', count: MAX + 1n, data: 'invalid', errno: 'EINVAL' },
    // KVM_S390_SKEYS_MAX itself passes the count check: frame 256 is the first without a memslot.
    { name: 'count-max', count: MAX, data: 'invalid', errno: 'EFAULT' },
  ],
  true,
);

const CRS = Array.from({ length: 16 }, (_, i) => 0x0101_0101_0101_0101n * BigInt(i + 1));
const ACRS = Array.from({ length: 16 }, (_, i) => BigInt(0x1000_0000 + i));

const sregsRoundtrip: CaseGenerator = (g) => [
  {
    params: { regs: 'all' },
    run: async (ctx) => {
      const gu = await guest(ctx);
      const r = await ctx.kvm.call(gu.vcpu, 'KVM_SET_SREGS', { struct: { crs: CRS, acrs: ACRS } });
      assertOutcome(r, expectOf(g), 'KVM_SET_SREGS');
      const got = await ctx.kvm.setup(gu.vcpu, 'KVM_GET_SREGS', { struct: {} });
      (got.fields.crs as bigint[]).forEach((v, i) => assertValue(v, CRS[i]!, `CR${i}`));
      (got.fields.acrs as bigint[]).forEach((v, i) => assertValue(v, ACRS[i]!, `AR${i}`));
    },
  },
];

const sregsFresh: CaseGenerator = (g) => [
  {
    params: { vcpu: 'fresh' },
    run: async (ctx) => {
      const gu = await guest(ctx);
      const r = await ctx.kvm.call(gu.vcpu, 'KVM_GET_SREGS', { struct: {} });
      assertOutcome(r, expectOf(g), 'KVM_GET_SREGS');
      (r.fields.acrs as bigint[]).forEach((v, i) => assertValue(v, 0n, `AR${i}`));
    },
  },
];

const PSW_64 = (ctx: Parameters<typeof s390>[0]) =>
  s390(ctx, 'S390_PSW_MASK_EA') | s390(ctx, 'S390_PSW_MASK_BA');

const pswInitial: CaseGenerator = (g) => [
  {
    params: { psw: '64-bit' },
    run: async (ctx) => {
      const gu = await guest(ctx);
      const mask = PSW_64(ctx);
      const r = await ctx.kvm.call(gu.vcpu, 'KVM_S390_SET_INITIAL_PSW', { struct: { mask, addr: 0x1000n } });
      assertOutcome(r, expectOf(g), 'KVM_S390_SET_INITIAL_PSW on a new vCPU');
      const run = await readRun(ctx, gu);
      assertValue(run.psw_mask as bigint, mask, 'kvm_run.psw_mask');
      assertValue(run.psw_addr as bigint, 0x1000n, 'kvm_run.psw_addr');
    },
  },
];

const pswBusy: CaseGenerator = (g) => [
  {
    params: { after: 'KVM_RUN' },
    run: async (ctx) => {
      const gu = await guest(ctx);
      await ctx.kvm.write(gu.ram, DIAG_501, 0x1000);
      await ctx.kvm.setup(gu.vcpu, 'KVM_S390_SET_INITIAL_PSW', { struct: { mask: 0n, addr: 0x1000n } });
      await runOnce(ctx, gu);
      const r = await ctx.kvm.call(gu.vcpu, 'KVM_S390_SET_INITIAL_PSW', {
        struct: { mask: 0n, addr: 0x1000n },
      });
      assertOutcome(r, expectOf(g), 'KVM_S390_SET_INITIAL_PSW after KVM_RUN');
    },
  },
];

interface DiagCase {
  name: string;
  r1r3: number;
  /** Where the DIAGNOSE that exits stands. */
  addr: bigint;
  wide: boolean;
  bd: number;
  /** Codes of DIAGNOSEs run before it, from the start PSW on. */
  before?: number[];
}

const runDiag: CaseGenerator = (g) =>
  cases<DiagCase>(
    [
      { name: '24-bit', r1r3: 0x00, addr: 0x1000n, wide: false, bd: 0x0501 },
      { name: '64-bit-r1r3', r1r3: 0x12, addr: 0x8_0000n, wide: true, bd: 0x0501 },
      // Other codes the kernel does not handle leave the same way; base register 0 holds 0.
      { name: 'code-0x502', r1r3: 0x00, addr: 0x1000n, wide: false, bd: 0x0502 },
      { name: 'code-0x001', r1r3: 0x00, addr: 0x1000n, wide: false, bd: 0x0001 },
      { name: 'code-0xfff-base-r9', r1r3: 0x00, addr: 0x1000n, wide: false, bd: 0x9fff },
      // Handled in the kernel, but with subcode 0 (IPL functions) or no virtio-ccw notification they too go out.
      { name: 'code-0x308', r1r3: 0x00, addr: 0x1000n, wide: false, bd: 0x0308 },
      { name: 'code-0x500', r1r3: 0x00, addr: 0x1000n, wide: false, bd: 0x0500 },
      // Time-slice ends (to anyone, or to vCPU 0, itself) stay in the kernel: the guest goes on to the next.
      { name: 'after-0x44', r1r3: 0x00, addr: 0x1008n, wide: false, bd: 0x0501, before: [0x44] },
      { name: 'after-0x9c-0x44', r1r3: 0x00, addr: 0x1008n, wide: true, bd: 0x0501, before: [0x9c, 0x44] },
    ],
    ({ name }) => ({ psw: name }),
    async (ctx, c) => {
      const gu = await guest(ctx);
      const diag = (bd: number, r1r3 = 0) => [0x83, r1r3, bd >> 8, bd & 0xff];
      const before = c.before ?? [];
      const insn = Uint8Array.from([...before.flatMap((bd) => diag(bd)), ...diag(c.bd, c.r1r3)]);
      const start = c.addr - BigInt(4 * before.length);
      await ctx.kvm.write(gu.ram, insn, Number(start));
      const mask = c.wide ? PSW_64(ctx) : 0n;
      await ctx.kvm.setup(gu.vcpu, 'KVM_S390_SET_INITIAL_PSW', { struct: { mask, addr: start } });
      const r = await ctx.kvm.call(gu.vcpu, 'KVM_RUN', 0n);
      assertOutcome(r, expectOf(g), 'KVM_RUN');
      const run = await readRun(ctx, gu);
      assertValue(run.exit_reason as bigint, s390(ctx, 'KVM_EXIT_S390_SIEIC'), 'exit reason');
      assertValue(run.icptcode as bigint, 4n, 'interception code');
      assertValue(run.ipa as bigint, BigInt(0x8300 | c.r1r3), 'ipa');
      assertValue(run.ipb as bigint, BigInt(c.bd) << 16n, 'ipb');
      assertValue(run.psw_addr as bigint, c.addr + 4n, 'PSW address after the exit');
    },
  );

type MpState = 'STOPPED' | 'OPERATING' | 'CHECK_STOP';

/**
 * KVM_GET_MP_STATE on s390: the state is the call's return value and the struct, sent as all ones, stays
 * as it was (or the pointer is not even looked at).
 */
async function expectMpState(
  ctx: CaseContext,
  vcpu: number,
  state: MpState,
  arg: PointerArg | 'struct',
  what: string,
) {
  const r = await ctx.kvm.call(
    vcpu,
    'KVM_GET_MP_STATE',
    arg === 'struct' ? { struct: { mp_state: 0xffff_ffffn } } : { pointer: arg },
  );
  assertOutcome(r, { ret: Number(s390(ctx, `KVM_MP_STATE_${state}`)) }, `KVM_GET_MP_STATE of ${what}`);
  if (arg === 'struct') assertValue(r.fields.mp_state as bigint, 0xffff_ffffn, 'kvm_mp_state after the call');
}

function setMpState(ctx: CaseContext, vcpu: number, state: MpState) {
  return ctx.kvm.call(vcpu, 'KVM_SET_MP_STATE', { struct: { mp_state: s390(ctx, `KVM_MP_STATE_${state}`) } });
}

/** A DIAGNOSE 0x501 at `addr` and a 64-bit PSW pointing at it: a KVM_RUN that runs exits there. */
async function diagnoseGuest(ctx: CaseContext, addr = 0x1000) {
  const gu = await guest(ctx);
  await ctx.kvm.write(gu.ram, DIAG_501, addr);
  await ctx.kvm.setup(gu.vcpu, 'KVM_S390_SET_INITIAL_PSW', {
    struct: { mask: PSW_64(ctx), addr: BigInt(addr) },
  });
  return gu;
}

/** KVM_RUN, which either runs to the DIAGNOSE or, for a stopped vCPU under user control, fails with EINVAL. */
async function expectRun(ctx: CaseContext, gu: Guest, runs: boolean, what: string): Promise<void> {
  const r = await ctx.kvm.call(gu.vcpu, 'KVM_RUN', 0n);
  assertOutcome(r, runs ? { ret: 0 } : { errno: 'EINVAL' }, `KVM_RUN ${what}`);
  if (runs)
    assertValue((await readRun(ctx, gu)).icptcode as bigint, 4n, `interception code of KVM_RUN ${what}`);
}

const mpState: CaseGenerator = () => [
  ...cases(
    ['struct', 'invalid'] as const,
    (arg) => ({ vcpu: 'new', arg }),
    async (ctx, arg) => {
      const gu = await guest(ctx);
      await expectMpState(ctx, gu.vcpu, 'STOPPED', arg, 'a new vCPU');
    },
  ),
  ...cases(
    ['run-starts', 'set-operating', 'set-stopped', 'refused-set', 'other-vcpu'] as const,
    (name) => ({ case: name }),
    async (ctx, name) => {
      const gu = await diagnoseGuest(ctx);
      switch (name) {
        case 'run-starts':
          // Without KVM_SET_MP_STATE, KVM_RUN starts the vCPU, which stays OPERATING.
          await expectRun(ctx, gu, true, 'of a new vCPU');
          return expectMpState(ctx, gu.vcpu, 'OPERATING', 'struct', 'a vCPU that ran');
        case 'set-operating':
          assertOutcome(
            await setMpState(ctx, gu.vcpu, 'OPERATING'),
            { ret: 0 },
            'KVM_SET_MP_STATE OPERATING',
          );
          await expectMpState(ctx, gu.vcpu, 'OPERATING', 'struct', 'a vCPU set OPERATING');
          return expectRun(ctx, gu, true, 'of a vCPU set OPERATING');
        case 'set-stopped':
          await expectRun(ctx, gu, true, 'of a new vCPU');
          assertOutcome(await setMpState(ctx, gu.vcpu, 'STOPPED'), { ret: 0 }, 'KVM_SET_MP_STATE STOPPED');
          await expectMpState(ctx, gu.vcpu, 'STOPPED', 'struct', 'a vCPU set STOPPED');
          return expectRun(ctx, gu, false, 'of a vCPU set STOPPED');
        case 'refused-set':
          // The refused call still hands the CPU states to user space: the new vCPU stays stopped.
          assertOutcome(
            await setMpState(ctx, gu.vcpu, 'CHECK_STOP'),
            { errno: 'ENXIO' },
            'KVM_SET_MP_STATE CHECK_STOP',
          );
          return expectRun(ctx, gu, false, 'of a new vCPU after a refused KVM_SET_MP_STATE');
        case 'other-vcpu': {
          // User control is the VM's: a call on vCPU 1 leaves new vCPU 0 stopped.
          const other = await ctx.kvm.setupHandle(gu.vm, 'KVM_CREATE_VCPU', 1n);
          assertOutcome(await setMpState(ctx, other, 'OPERATING'), { ret: 0 }, 'KVM_SET_MP_STATE on vCPU 1');
          return expectRun(ctx, gu, false, 'of vCPU 0 after KVM_SET_MP_STATE on vCPU 1');
        }
      }
    },
  ),
];

/** immediate_exit comes first on s390: before the stopped-vCPU check and before the dirty registers sync. */
const immediateExit: CaseGenerator = () =>
  cases(
    ['stopped-user-control', 'dirty-prefix'] as const,
    (name) => ({ case: name }),
    async (ctx, name) => {
      // The DIAGNOSE lies outside both prefix areas, so the prefix the second case loads does not move it.
      const gu = await diagnoseGuest(ctx, 0x8000);
      const run = await mapRun(ctx, gu, gu.vcpu);
      const syncPrefix = s390(ctx, 'KVM_SYNC_PREFIX');
      if (name === 'stopped-user-control')
        assertOutcome(await setMpState(ctx, gu.vcpu, 'STOPPED'), { ret: 0 }, 'KVM_SET_MP_STATE STOPPED');
      else await writeRun(ctx, gu, { prefix: 0x2_0000n, kvm_dirty_regs: syncPrefix });
      await setImmediateExit(ctx, run, 1);
      await runInterrupted(
        ctx,
        gu.vcpu,
        name === 'stopped-user-control' ? 'of a stopped vCPU' : 'of a dirty prefix',
      );
      await setImmediateExit(ctx, run, 0);
      if (name === 'stopped-user-control') return expectRun(ctx, gu, false, 'of the stopped vCPU without it');
      assertValue(
        (await readRun(ctx, gu)).kvm_dirty_regs as bigint,
        syncPrefix,
        'kvm_dirty_regs after EINTR',
      );
      await expectRun(ctx, gu, true, 'without immediate_exit');
      const after = await readRun(ctx, gu);
      assertValue(after.kvm_dirty_regs as bigint, 0n, 'kvm_dirty_regs after the run');
      assertValue(after.prefix as bigint, 0x2_0000n, 'the prefix the run loaded');
    },
  );

export const stateGenerators: Record<string, CaseGenerator> = {
  'skeys-roundtrip': skeysRoundtrip,
  'skeys-einval': skeysEinval,
  'skeys-efault': skeysEfault,
  'skeys-get-errors': skeysGetErrors,
  'sregs-roundtrip': sregsRoundtrip,
  'sregs-fresh': sregsFresh,
  'psw-initial': pswInitial,
  'psw-busy': pswBusy,
  'run-diag': runDiag,
  'mp-state': mpState,
  'immediate-exit': immediateExit,
};
