/**
 * The PSCI calls a guest makes about its vCPUs and the machine (arch/arm64/kvm/psci.c): AFFINITY_INFO, CPU_ON
 * (PSCI 0.2's and KVM's own 0.1 id), MIGRATE_INFO_TYPE and the migration calls, PSCI_FEATURES, the system
 * resets and SYSTEM_SUSPEND. Each case runs a short guest program on vCPU 0, which reports x0 after every
 * call; a second vCPU, initialised powered off, is the target where a case needs one.
 */
import type { CaseContext, CaseGenerator, GeneratedCase, SuiteFamily } from '../harness/plan/types.ts';
import {
  arm64Constant as c,
  callsReporting,
  expectReports,
  expectSystemEvent,
  getReg64,
  loadProgram,
  initVcpu,
  nextReport,
  oneCase,
  programBytes,
  RAM_GPA,
  regId,
  report,
  runToPowerOff,
  setReg64,
  setupGuest,
  smccc,
  SMCCC_NOT_SUPPORTED,
  smcccReg,
  type Guest,
} from './arm64-guest.ts';
import { assertOutcome, assertValue } from '../harness/plan/outcome.ts';
import { expectMpState, mapRun, psci02, setMpState, vcpuOf, vmOf } from './fixtures.ts';

/** PSCI return values (include/uapi/linux/psci.h) and AFFINITY_INFO's answers, as x0 holds them. */
const SUCCESS = 0n;
const INVALID_PARAMETERS = smcccReg(-2n);
const ALREADY_ON = smcccReg(-4n);
const AFFINITY_ON = 0n;
const AFFINITY_OFF = 1n;
/** MIGRATE_INFO_TYPE's answer: a Trusted OS that needs no migration, or none (PSCI_0_2_TOS_MP). */
const TOS_MP = 2n;

/** MPIDR_EL1's affinity fields, Aff3 (bits 39..32) and Aff2..Aff0 (bits 23..0): MPIDR_HWID_BITMASK. */
const AFFINITY_FIELDS = 0xff_00ff_ffffn;
/** An Aff0 no vCPU of the cases' VMs has (they have vCPUs 0 and 1). */
const NO_SUCH_AFF0 = 0xfn;
/** Where a vCPU that CPU_ON powers on starts, and the context id it gets in x0. */
const ENTRY_OFFSET = 0x800n;
const CONTEXT_ID = 0x1234_5678_9abc_def0n;

/** A vCPU's affinity: its MPIDR_EL1 (which user space may have set) without the RES1 and MT/U bits. */
async function affinityOf(ctx: CaseContext, vcpu: number): Promise<{ mpidr: bigint; affinity: bigint }> {
  const mpidr = await getReg64(ctx, vcpu, regId(ctx, 'MPIDR_EL1'), `MPIDR_EL1 of handle ${vcpu}`);
  return { mpidr, affinity: mpidr & AFFINITY_FIELDS };
}

/** vCPU 1 of the guest's VM, initialised with KVM_ARM_VCPU_POWER_OFF and the VM's PSCI feature. */
async function poweredOffVcpu(ctx: CaseContext, g: Guest, features: bigint): Promise<number> {
  const vcpu = await ctx.kvm.setupHandle(g.vm, 'KVM_CREATE_VCPU', 1n);
  await initVcpu(ctx, g.vm, vcpu, features | (1n << c(ctx, 'KVM_ARM_VCPU_POWER_OFF')));
  return vcpu;
}

/** A table of single-call cases: each names its parameters and builds the call from the guest's affinities. */
interface CallCase {
  name: string;
  fn: string;
  /** The call's x1.. from vCPU 0's MPIDR and, with `target`, powered-off vCPU 1's. */
  args: (self: { mpidr: bigint; affinity: bigint }, other: bigint) => bigint[];
  /** Create vCPU 1, powered off, for the call to name. */
  target?: boolean;
  expected: bigint;
}

function callCases(items: CallCase[], fixture = 'vcpu-initialized'): GeneratedCase[] {
  return items.flatMap((item) =>
    oneCase({ case: item.name }, async (ctx) => {
      const g = await setupGuest(ctx, fixture);
      const self = await affinityOf(ctx, g.vcpu);
      const features = fixture === 'vcpu-initialized' ? psci02(ctx) : 0n;
      const other = item.target
        ? (await affinityOf(ctx, await poweredOffVcpu(ctx, g, features))).affinity
        : 0n;
      const args = item.args(self, other);
      await expectReports(ctx, g, callsReporting([smccc(c(ctx, item.fn), ...args)]), [
        [`x0 after ${item.fn}(${args.map((a) => `0x${a.toString(16)}`).join(', ')})`, item.expected],
      ]);
    }),
  );
}

const AFFINITY_INFO = 'PSCI_0_2_FN64_AFFINITY_INFO';
const AFFINITY_INFO_32 = 'PSCI_0_2_FN_AFFINITY_INFO';

const affinityInfo: CaseGenerator = () =>
  callCases([
    { name: 'self-level-0', fn: AFFINITY_INFO, args: (s) => [s.affinity, 0n], expected: AFFINITY_ON },
    { name: 'self-level-3', fn: AFFINITY_INFO, args: (s) => [s.affinity, 3n], expected: AFFINITY_ON },
    // Level 1 ignores all eight bits of Aff0, level 3 everything below Aff3: each still finds vCPU 0.
    {
      name: 'other-aff0-level-1',
      fn: AFFINITY_INFO,
      args: (s) => [s.affinity | 0xffn, 1n],
      expected: AFFINITY_ON,
    },
    {
      name: 'other-aff2-level-3',
      fn: AFFINITY_INFO,
      args: (s) => [s.affinity | 0xff_ffffn, 3n],
      expected: AFFINITY_ON,
    },
    {
      name: 'no-vcpu-level-0',
      fn: AFFINITY_INFO,
      args: (s) => [s.affinity | NO_SUCH_AFF0, 0n],
      expected: INVALID_PARAMETERS,
    },
    { name: 'level-4', fn: AFFINITY_INFO, args: (s) => [s.affinity, 4n], expected: INVALID_PARAMETERS },
    { name: 'raw-mpidr', fn: AFFINITY_INFO, args: (s) => [s.mpidr, 0n], expected: INVALID_PARAMETERS },
    // Bit 40 lies outside the affinity fields; the SMC32 call never sees it.
    {
      name: 'bit-40-smc64',
      fn: AFFINITY_INFO,
      args: (s) => [s.affinity | (1n << 40n), 0n],
      expected: INVALID_PARAMETERS,
    },
    {
      name: 'bit-40-smc32',
      fn: AFFINITY_INFO_32,
      args: (s) => [s.affinity | (1n << 40n), 0n],
      expected: AFFINITY_ON,
    },
    { name: 'powered-off', fn: AFFINITY_INFO, args: (_, o) => [o, 0n], target: true, expected: AFFINITY_OFF },
    // At level 1 the cluster holds vCPU 0, which is on, and vCPU 1, which is off: ON.
    {
      name: 'cluster-one-off',
      fn: AFFINITY_INFO,
      args: (_, o) => [o, 1n],
      target: true,
      expected: AFFINITY_ON,
    },
  ]);

const CPU_ON = 'PSCI_0_2_FN64_CPU_ON';
const onArgs = (target: bigint) => [target, RAM_GPA + ENTRY_OFFSET, CONTEXT_ID];

const cpuOn: CaseGenerator = () => [
  ...callCases([
    { name: 'self', fn: CPU_ON, args: (s) => onArgs(s.affinity), expected: ALREADY_ON },
    { name: 'self-smc32', fn: 'PSCI_0_2_FN_CPU_ON', args: (s) => onArgs(s.affinity), expected: ALREADY_ON },
    {
      name: 'no-vcpu',
      fn: CPU_ON,
      args: (s) => onArgs(s.affinity | NO_SUCH_AFF0),
      expected: INVALID_PARAMETERS,
    },
    { name: 'raw-mpidr', fn: CPU_ON, args: (s) => onArgs(s.mpidr), expected: INVALID_PARAMETERS },
    // Bit 40 lies outside the affinity fields; the SMC32 call never sees it, and finds the caller.
    {
      name: 'bit-40-smc64',
      fn: CPU_ON,
      args: (s) => onArgs(s.affinity | (1n << 40n)),
      expected: INVALID_PARAMETERS,
    },
    {
      name: 'bit-40-smc32',
      fn: 'PSCI_0_2_FN_CPU_ON',
      args: (s) => onArgs(s.affinity | (1n << 40n)),
      expected: ALREADY_ON,
    },
  ]),
  ...oneCase({ case: 'powered-off' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const vcpu = await poweredOffVcpu(ctx, g, psci02(ctx));
    const { affinity } = await affinityOf(ctx, vcpu);
    // vCPU 1's program, at its entry address: report x0, the context id CPU_ON handed it.
    await ctx.kvm.write(g.ram, programBytes(report(0, 3)), Number(ENTRY_OFFSET));
    await expectReports(
      ctx,
      g,
      callsReporting([
        smccc(c(ctx, CPU_ON), ...onArgs(affinity)),
        smccc(c(ctx, AFFINITY_INFO), affinity, 0n),
        smccc(c(ctx, CPU_ON), ...onArgs(affinity)),
      ]),
      [
        ['CPU_ON of powered-off vCPU 1', SUCCESS],
        ['AFFINITY_INFO of vCPU 1 after CPU_ON', AFFINITY_ON],
        ['CPU_ON of vCPU 1 again', ALREADY_ON],
      ],
    );
    const target = { ...g, vcpu, run: await mapRun(ctx, g, vcpu) };
    assertValue(await nextReport(ctx, target, 'vCPU 1: x0 at its entry address', 3), CONTEXT_ID, 'vCPU 1 x0');
  }),
];

const KVM_CPU_ON = 'KVM_PSCI_FN_CPU_ON';

const cpuOn01: CaseGenerator = () => [
  ...callCases(
    [
      {
        name: 'psci-0.1-self',
        fn: KVM_CPU_ON,
        args: (s) => onArgs(s.affinity),
        expected: INVALID_PARAMETERS,
      },
      {
        name: 'psci-0.1-powered-off',
        fn: KVM_CPU_ON,
        args: (_, o) => onArgs(o),
        target: true,
        expected: SUCCESS,
      },
    ],
    'vcpu-psci-0.1',
  ),
  ...callCases([
    { name: 'psci-0.2-self', fn: KVM_CPU_ON, args: (s) => onArgs(s.affinity), expected: SMCCC_NOT_SUPPORTED },
  ]),
];

const migrate: CaseGenerator = () =>
  callCases(
    [
      ['PSCI_0_2_FN_MIGRATE_INFO_TYPE', TOS_MP],
      ['PSCI_0_2_FN_MIGRATE', SMCCC_NOT_SUPPORTED],
      ['PSCI_0_2_FN64_MIGRATE', SMCCC_NOT_SUPPORTED],
      ['PSCI_0_2_FN_MIGRATE_INFO_UP_CPU', SMCCC_NOT_SUPPORTED],
      ['PSCI_0_2_FN64_MIGRATE_INFO_UP_CPU', SMCCC_NOT_SUPPORTED],
    ].map(([fn, expected]) => ({
      name: fn as string,
      fn: fn as string,
      args: () => [],
      expected: expected as bigint,
    })),
  );

/** The PSCI versions the features cases select through the firmware register. */
const PSCI_VERSIONS = { '1.1': 0x1_0001n, '1.0': 0x1_0000n, '0.2': 0x2n } as const;
type PsciVersion = keyof typeof PSCI_VERSIONS;

/** The ids PSCI_FEATURES calls implemented under every 1.x version. */
const IMPLEMENTED = [
  'PSCI_0_2_FN_PSCI_VERSION',
  'PSCI_0_2_FN_CPU_SUSPEND',
  'PSCI_0_2_FN64_CPU_SUSPEND',
  'PSCI_0_2_FN_CPU_OFF',
  'PSCI_0_2_FN_CPU_ON',
  'PSCI_0_2_FN64_CPU_ON',
  'PSCI_0_2_FN_AFFINITY_INFO',
  'PSCI_0_2_FN64_AFFINITY_INFO',
  'PSCI_0_2_FN_MIGRATE_INFO_TYPE',
  'PSCI_0_2_FN_SYSTEM_OFF',
  'PSCI_0_2_FN_SYSTEM_RESET',
  'PSCI_1_0_FN_PSCI_FEATURES',
  'ARM_SMCCC_VERSION_FUNC_ID',
];
const RESET2 = ['PSCI_1_1_FN_SYSTEM_RESET2', 'PSCI_1_1_FN64_SYSTEM_RESET2'];
const SUSPEND = ['PSCI_1_0_FN_SYSTEM_SUSPEND', 'PSCI_1_0_FN64_SYSTEM_SUSPEND'];
/** Not implemented under any version, SYSTEM_SUSPEND unless the VM enabled it. */
const NOT_IMPLEMENTED = [
  ...SUSPEND,
  'PSCI_0_2_FN_MIGRATE',
  'PSCI_1_0_FN_CPU_FREEZE',
  'ARM_SMCCC_ARCH_FEATURES_FUNC_ID',
];

/**
 * `highWord`: x1 carries the id with its upper half set, which PSCI_FEATURES never looks at. `suspend`: the
 * VM has KVM_CAP_ARM_SYSTEM_SUSPEND enabled.
 */
const FEATURE_CASES: {
  version: PsciVersion;
  fn: string;
  expected: bigint;
  highWord?: boolean;
  suspend?: boolean;
}[] = [
  ...IMPLEMENTED.map((fn) => ({ version: '1.1' as const, fn, expected: SUCCESS })),
  ...RESET2.map((fn) => ({ version: '1.1' as const, fn, expected: SUCCESS })),
  ...RESET2.map((fn) => ({ version: '1.0' as const, fn, expected: SMCCC_NOT_SUPPORTED })),
  ...(['1.1', '1.0'] as const).flatMap((version) =>
    SUSPEND.map((fn) => ({ version, fn, expected: SUCCESS, suspend: true })),
  ),
  { version: '1.0', fn: 'PSCI_0_2_FN_PSCI_VERSION', expected: SUCCESS },
  ...NOT_IMPLEMENTED.map((fn) => ({ version: '1.1' as const, fn, expected: SMCCC_NOT_SUPPORTED })),
  { version: '1.1', fn: 'PSCI_0_2_FN_PSCI_VERSION', expected: SUCCESS, highWord: true },
  { version: '0.2', fn: 'PSCI_0_2_FN_PSCI_VERSION', expected: SMCCC_NOT_SUPPORTED },
];

const HIGH_WORD = 0xffff_ffff_0000_0000n;

const features: CaseGenerator = () =>
  FEATURE_CASES.flatMap(({ version, fn, expected, highWord, suspend }) =>
    oneCase(
      {
        psci: version,
        function: highWord ? `${fn}+high-word` : fn,
        ...(suspend ? { cap: 'system-suspend' } : {}),
      },
      async (ctx) => {
        const g = await setupGuest(ctx);
        await selectVersion(ctx, g, version);
        if (suspend) await enableSystemSuspend(ctx, g, 0n);
        const x1 = c(ctx, fn) | (highWord ? HIGH_WORD : 0n);
        await expectReports(ctx, g, callsReporting([smccc(c(ctx, 'PSCI_1_0_FN_PSCI_FEATURES'), x1)]), [
          [`PSCI_FEATURES(0x${x1.toString(16)}) under PSCI ${version}`, expected],
        ]);
      },
    ),
  );

/**
 * KVM_ENABLE_CAP of KVM_CAP_ARM_SYSTEM_SUSPEND on the guest's VM, which must succeed with flags 0 and fail
 * with EINVAL with any other.
 */
async function enableSystemSuspend(ctx: CaseContext, g: Guest, flags: bigint): Promise<void> {
  const cap = c(ctx, 'KVM_CAP_ARM_SYSTEM_SUSPEND');
  const r = await ctx.kvm.call(g.vm, 'KVM_ENABLE_CAP', { struct: { cap, flags } });
  const what = `KVM_ENABLE_CAP KVM_CAP_ARM_SYSTEM_SUSPEND, flags 0x${flags.toString(16)}`;
  assertOutcome(r, flags === 0n ? { ret: 0 } : { errno: 'EINVAL' }, what);
}

/** Selects a PSCI version through the VM-wide firmware register. */
async function selectVersion(ctx: CaseContext, g: Guest, version: PsciVersion): Promise<void> {
  const set = await setReg64(ctx, g.vcpu, regId(ctx, 'KVM_REG_ARM_PSCI_VERSION'), PSCI_VERSIONS[version]);
  assertOutcome(set, { ret: 0 }, `KVM_SET_ONE_REG PSCI_VERSION = ${version}`);
}

/**
 * A reset call that KVM carries out ends the run with a RESET system event (SYSTEM_RESET2's flagged as such);
 * one it refuses leaves x0 to report, and the guest runs on.
 */
async function expectReset(
  ctx: CaseContext,
  g: Guest,
  call: number[],
  outcome: { refusal: bigint } | { flags: bigint },
  what: string,
) {
  if ('flags' in outcome) {
    await loadProgram(ctx, g, g.vcpu, [...call, ...report(0, 0)]);
    return expectSystemEvent(ctx, g, 'KVM_SYSTEM_EVENT_RESET', what, outcome.flags);
  }
  await expectReports(ctx, g, callsReporting([call]), [[`x0 after ${what}`, outcome.refusal]]);
}

const systemReset: CaseGenerator = () =>
  (['1.1', '0.2'] as const).flatMap((version) =>
    oneCase({ psci: version }, async (ctx) => {
      const g = await setupGuest(ctx);
      await selectVersion(ctx, g, version);
      const what = `SYSTEM_RESET under PSCI ${version}`;
      await expectReset(ctx, g, smccc(c(ctx, 'PSCI_0_2_FN_SYSTEM_RESET')), { flags: 0n }, what);
    }),
  );

const RESET2_CASES: { name: string; version: PsciVersion; fn: string; type: bigint; refusal?: bigint }[] = [
  { name: 'warm', version: '1.1', fn: 'PSCI_1_1_FN64_SYSTEM_RESET2', type: 0n },
  { name: 'warm-smc32', version: '1.1', fn: 'PSCI_1_1_FN_SYSTEM_RESET2', type: 0n },
  { name: 'vendor', version: '1.1', fn: 'PSCI_1_1_FN64_SYSTEM_RESET2', type: 0x8000_0000n },
  { name: 'vendor-last', version: '1.1', fn: 'PSCI_1_1_FN64_SYSTEM_RESET2', type: 0xffff_ffffn },
  {
    name: 'type-1',
    version: '1.1',
    fn: 'PSCI_1_1_FN64_SYSTEM_RESET2',
    type: 1n,
    refusal: INVALID_PARAMETERS,
  },
  {
    name: 'type-0x7fffffff',
    version: '1.1',
    fn: 'PSCI_1_1_FN64_SYSTEM_RESET2',
    type: 0x7fff_ffffn,
    refusal: INVALID_PARAMETERS,
  },
  // KVM keeps x1's low 32 bits in both forms: 0x1_00000000 is a warm reset, 0x1_00000001 type 1.
  { name: 'high-word-warm', version: '1.1', fn: 'PSCI_1_1_FN64_SYSTEM_RESET2', type: 1n << 32n },
  {
    name: 'high-word-type-1',
    version: '1.1',
    fn: 'PSCI_1_1_FN64_SYSTEM_RESET2',
    type: (1n << 32n) | 1n,
    refusal: INVALID_PARAMETERS,
  },
  {
    name: 'psci-1.0',
    version: '1.0',
    fn: 'PSCI_1_1_FN64_SYSTEM_RESET2',
    type: 0n,
    refusal: SMCCC_NOT_SUPPORTED,
  },
  {
    name: 'psci-1.0-smc32',
    version: '1.0',
    fn: 'PSCI_1_1_FN_SYSTEM_RESET2',
    type: 0n,
    refusal: SMCCC_NOT_SUPPORTED,
  },
  {
    name: 'psci-0.2',
    version: '0.2',
    fn: 'PSCI_1_1_FN64_SYSTEM_RESET2',
    type: 0n,
    refusal: SMCCC_NOT_SUPPORTED,
  },
];

const systemReset2: CaseGenerator = () =>
  RESET2_CASES.flatMap(({ name, version, fn, type, refusal }) =>
    oneCase({ case: name }, async (ctx) => {
      const g = await setupGuest(ctx);
      await selectVersion(ctx, g, version);
      const what = `${fn}(0x${type.toString(16)}) under PSCI ${version}`;
      const reset2 = { flags: c(ctx, 'KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2') };
      await expectReset(ctx, g, smccc(c(ctx, fn), type), refusal === undefined ? reset2 : { refusal }, what);
    }),
  );

/** What user space did about KVM_CAP_ARM_SYSTEM_SUSPEND: nothing, enabled it, or asked with flags 1. */
type SuspendCap = 'off' | 'enabled' | 'refused';

const SUSPEND_CASES: {
  name: string;
  version: PsciVersion;
  fn: string;
  cap: SuspendCap;
  /** x1's upper half is set too (the context id in x2 always has one). */
  highWord?: boolean;
  /** vCPU 1 exists and is on, which KVM does not check. */
  otherVcpuOn?: boolean;
}[] = [
  { name: 'smc64', version: '1.1', fn: 'PSCI_1_0_FN64_SYSTEM_SUSPEND', cap: 'enabled' },
  { name: 'smc32', version: '1.1', fn: 'PSCI_1_0_FN_SYSTEM_SUSPEND', cap: 'enabled', highWord: true },
  { name: 'psci-1.0', version: '1.0', fn: 'PSCI_1_0_FN64_SYSTEM_SUSPEND', cap: 'enabled' },
  {
    name: 'other-vcpu-on',
    version: '1.1',
    fn: 'PSCI_1_0_FN64_SYSTEM_SUSPEND',
    cap: 'enabled',
    otherVcpuOn: true,
  },
  { name: 'psci-0.2', version: '0.2', fn: 'PSCI_1_0_FN64_SYSTEM_SUSPEND', cap: 'enabled' },
  { name: 'cap-off', version: '1.1', fn: 'PSCI_1_0_FN64_SYSTEM_SUSPEND', cap: 'off' },
  { name: 'cap-off-smc32', version: '1.1', fn: 'PSCI_1_0_FN_SYSTEM_SUSPEND', cap: 'off' },
  { name: 'cap-refused', version: '1.1', fn: 'PSCI_1_0_FN64_SYSTEM_SUSPEND', cap: 'refused' },
];

const LOW_WORD = 0xffff_ffffn;

/**
 * SYSTEM_SUSPEND either ends the run with a SUSPEND event and every register as the guest left it (x1..x3
 * narrowed by the SMC32 form), from where a plain KVM_RUN resumes after the HVC; or answers NOT_SUPPORTED.
 */
const systemSuspend: CaseGenerator = () =>
  SUSPEND_CASES.flatMap(({ name, version, fn, cap, highWord, otherVcpuOn }) =>
    oneCase({ case: name }, async (ctx) => {
      const g = await setupGuest(ctx);
      await selectVersion(ctx, g, version);
      if (cap !== 'off') await enableSystemSuspend(ctx, g, cap === 'refused' ? 1n : 0n);
      if (otherVcpuOn) await initVcpu(ctx, g.vm, await ctx.kvm.setupHandle(g.vm, 'KVM_CREATE_VCPU', 1n));
      const fid = c(ctx, fn);
      const args = [RAM_GPA + ENTRY_OFFSET + (highWord ? HIGH_WORD : 0n), CONTEXT_ID];
      const what = `${fn}(${args.map((a) => `0x${a.toString(16)}`).join(', ')}) under PSCI ${version}, capability ${cap}`;
      if (cap !== 'enabled' || version === '0.2') {
        await expectReports(ctx, g, callsReporting([smccc(fid, ...args)]), [
          [`x0 after ${what}`, SMCCC_NOT_SUPPORTED],
        ]);
        return;
      }
      await loadProgram(ctx, g, g.vcpu, [...smccc(fid, ...args), ...report(0, 0)]);
      await expectSystemEvent(ctx, g, 'KVM_SYSTEM_EVENT_SUSPEND', what, 'no-data');
      const kept = fid === c(ctx, 'PSCI_1_0_FN_SYSTEM_SUSPEND') ? args.map((a) => a & LOW_WORD) : args;
      for (const [reg, value] of [
        ['X0', fid],
        ['X1', kept[0]!],
        ['X2', kept[1]!],
      ] as const)
        assertValue(
          await getReg64(ctx, g.vcpu, regId(ctx, reg), reg),
          value,
          `${reg} at the exit of ${what}`,
        );
      assertValue(await nextReport(ctx, g, `x0 after resuming ${what}`), fid, `x0 after resuming ${what}`);
    }),
  );

type MpState = 'RUNNABLE' | 'STOPPED' | 'SUSPENDED';

/**
 * vCPU 1, initialised (powered off with `off`), set to `state`; then vCPU 0 asks AFFINITY_INFO and CPU_ON
 * about it, and vCPU 1's state is read again.
 */
const MP_STATE_PSCI: { name: string; off: boolean; state: MpState; on: boolean; after: MpState }[] = [
  { name: 'stopped-is-off', off: false, state: 'STOPPED', on: false, after: 'RUNNABLE' },
  { name: 'runnable-is-on', off: true, state: 'RUNNABLE', on: true, after: 'RUNNABLE' },
  { name: 'suspended-is-on', off: false, state: 'SUSPENDED', on: true, after: 'SUSPENDED' },
];

const mpState: CaseGenerator = () => [
  ...(['RUNNABLE', 'STOPPED', 'SUSPENDED'] as const).flatMap((state) =>
    oneCase({ case: `set-${state.toLowerCase()}` }, async (ctx) => {
      const vcpu = await vcpuOf(ctx);
      await setMpState(ctx, vcpu, state, 'vCPU 0');
      await expectMpState(ctx, vcpu, state, `vCPU 0 after KVM_SET_MP_STATE ${state}`);
    }),
  ),
  // KVM_ARM_VCPU_INIT sets the state afresh: RUNNABLE, or STOPPED with KVM_ARM_VCPU_POWER_OFF.
  ...(['STOPPED', 'SUSPENDED'] as const).flatMap((state) =>
    oneCase({ case: `reinit-${state.toLowerCase()}` }, async (ctx) => {
      const [vm, vcpu] = [await vmOf(ctx, 'vcpu-initialized'), await vcpuOf(ctx)];
      await setMpState(ctx, vcpu, state, 'vCPU 0');
      await initVcpu(ctx, vm, vcpu);
      await expectMpState(ctx, vcpu, 'RUNNABLE', `vCPU 0 set ${state}, then initialised again`);
    }),
  ),
  ...oneCase({ case: 'init-power-off' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const vcpu = await poweredOffVcpu(ctx, g, psci02(ctx));
    await expectMpState(ctx, vcpu, 'STOPPED', 'vCPU 1, initialised with KVM_ARM_VCPU_POWER_OFF');
    await expectMpState(ctx, g.vcpu, 'RUNNABLE', 'vCPU 0, initialised without it');
  }),
  ...MP_STATE_PSCI.flatMap(({ name, off, state, on, after }) =>
    oneCase({ case: name }, async (ctx) => {
      const g = await setupGuest(ctx);
      const vcpu = off
        ? await poweredOffVcpu(ctx, g, psci02(ctx))
        : await ctx.kvm.setupHandle(g.vm, 'KVM_CREATE_VCPU', 1n);
      if (!off) await initVcpu(ctx, g.vm, vcpu);
      await setMpState(ctx, vcpu, state, 'vCPU 1');
      const { affinity } = await affinityOf(ctx, vcpu);
      await expectReports(
        ctx,
        g,
        callsReporting([
          smccc(c(ctx, AFFINITY_INFO), affinity, 0n),
          smccc(c(ctx, CPU_ON), ...onArgs(affinity)),
        ]),
        [
          [`AFFINITY_INFO of vCPU 1 set ${state}`, on ? AFFINITY_ON : AFFINITY_OFF],
          [`CPU_ON of vCPU 1 set ${state}`, on ? ALREADY_ON : SUCCESS],
        ],
      );
      await expectMpState(ctx, vcpu, after, `vCPU 1 set ${state}, after CPU_ON`);
    }),
  ),
  ...oneCase({ case: 'system-off' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const vcpu = await ctx.kvm.setupHandle(g.vm, 'KVM_CREATE_VCPU', 1n);
    await initVcpu(ctx, g.vm, vcpu);
    await runToPowerOff(ctx, g);
    await expectMpState(ctx, g.vcpu, 'STOPPED', 'vCPU 0 after its SYSTEM_OFF');
    await expectMpState(ctx, vcpu, 'STOPPED', "vCPU 1 after vCPU 0's SYSTEM_OFF");
  }),
  ...oneCase({ case: 'system-suspend' }, async (ctx) => {
    const g = await setupGuest(ctx);
    await enableSystemSuspend(ctx, g, 0n);
    await loadProgram(ctx, g, g.vcpu, smccc(c(ctx, 'PSCI_1_0_FN64_SYSTEM_SUSPEND'), RAM_GPA, 0n));
    await expectSystemEvent(ctx, g, 'KVM_SYSTEM_EVENT_SUSPEND', 'SYSTEM_SUSPEND', 'no-data');
    await expectMpState(ctx, g.vcpu, 'RUNNABLE', 'vCPU 0 at its SYSTEM_SUSPEND exit');
  }),
];

export const arm64Psci: SuiteFamily = {
  generators: {
    'arm64-psci.affinity-info': affinityInfo,
    'arm64-psci.cpu-on': cpuOn,
    'arm64-psci.cpu-on-0-1': cpuOn01,
    'arm64-psci.migrate': migrate,
    'arm64-psci.features': features,
    'arm64-psci.system-reset': systemReset,
    'arm64-psci.system-reset2': systemReset2,
    'arm64-psci.system-suspend': systemSuspend,
    'arm64-psci.mp-state': mpState,
  },
};
