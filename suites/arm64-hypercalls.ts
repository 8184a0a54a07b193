/**
 * arm64 hypercalls and the vCPU attributes that set them up: SMCCC probing, PV time (merged), PV lock (the
 * 2019 proposal, and upstream's NOT_SUPPORTED / ENXIO answers to it) and PSCI SYSTEM_OFF. Guest-side cases
 * touch the guest only through its memory, ONE_REG (PC) and KVM_RUN: the guest loads its own arguments with
 * MOVZ/MOVK, calls HVC #0 and reports results by storing them outside every memslot.
 */
import { readUint, uintToBytes } from '../harness/abi/codec.ts';
import { assertBytes, assertOutcome, assertValue } from '../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator, GenerateContext, SuiteFamily } from '../harness/plan/types.ts';
import type { Outcome } from '../harness/spec/types.ts';
import { toBigInt } from '../harness/spec/int.ts';
import {
  a64,
  answerLoad,
  callThrough,
  expectSystemOff,
  fetch,
  initVcpu,
  loadProgram,
  mov,
  nextReport,
  PVLOCK_GPA,
  PVTIME_GPA,
  RAM_GPA,
  RAM_SIZE,
  regId,
  report,
  runToPowerOff,
  getReg64,
  setupGuest,
  smccc,
  setReg,
  setReg64,
  systemOff,
  u64Init,
  type Guest,
  arm64Constant,
  callsReporting,
  expectReports,
  oneCase,
  SMCCC_NOT_SUPPORTED,
  smcccReg,
} from './arm64-guest.ts';
import { mapRun, memslot, psci02, runInterrupted, setImmediateExit, vcpuOf, vmOf } from './fixtures.ts';

const NOT_SUPPORTED = SMCCC_NOT_SUPPORTED;
const INVALID_GPA = NOT_SUPPORTED;
const c = arm64Constant;
const asReg = smcccReg;
const one = oneCase;
/** 64-byte aligned but outside every memslot. */
const UNBACKED_GPA = 0x2000_0000n;
const PV_STRUCT = 64;

type Group = 'pvtime' | 'pvlock';

function groupOf(g: GenerateContext): Group {
  const group = g.ref.rule.deriveArgs?.group;
  if (group !== 'pvtime' && group !== 'pvlock')
    throw new Error(`${g.ref.rule.id}: deriveArgs.group must be pvtime or pvlock`);
  return group;
}

const GROUPS: Record<Group, { ctrl: string; ipa: string; gpa: bigint }> = {
  pvtime: { ctrl: 'KVM_ARM_VCPU_PVTIME_CTRL', ipa: 'KVM_ARM_VCPU_PVTIME_IPA', gpa: PVTIME_GPA },
  pvlock: { ctrl: 'KVM_ARM_VCPU_PVLOCK_CTRL', ipa: 'KVM_ARM_VCPU_PVLOCK_IPA', gpa: PVLOCK_GPA },
};

/** KVM_SET_DEVICE_ATTR of a group's IPA attribute (or another attribute), value read from a fresh buffer. */
function setIpa(ctx: CaseContext, vcpu: number, group: Group, ipa: bigint | 'invalid', attr?: bigint) {
  const { ctrl, ipa: ipaAttr } = GROUPS[group];
  return ctx.kvm.call(vcpu, 'KVM_SET_DEVICE_ATTR', {
    struct: {
      group: c(ctx, ctrl),
      attr: attr ?? c(ctx, ipaAttr),
      addr: ipa === 'invalid' ? 'invalid' : { buffer: { size: 8, init: u64Init(ctx, ipa) } },
    },
  });
}

async function setIpaOk(ctx: CaseContext, vcpu: number, group: Group, ipa: bigint): Promise<void> {
  assertOutcome(
    await setIpa(ctx, vcpu, group, ipa),
    { ret: 0 },
    `KVM_SET_DEVICE_ATTR ${group} IPA 0x${ipa.toString(16)}`,
  );
}

function getIpa(
  ctx: CaseContext,
  vcpu: number,
  group: Group,
  addr: 'buffer' | 'invalid' = 'buffer',
  attr?: bigint,
) {
  const { ctrl, ipa } = GROUPS[group];
  return ctx.kvm.call(vcpu, 'KVM_GET_DEVICE_ATTR', {
    struct: {
      group: c(ctx, ctrl),
      attr: attr ?? c(ctx, ipa),
      addr: addr === 'invalid' ? 'invalid' : { buffer: { size: 8 } },
    },
  });
}

async function readIpa(ctx: CaseContext, vcpu: number, group: Group): Promise<bigint> {
  const r = await getIpa(ctx, vcpu, group);
  assertOutcome(r, { ret: 0 }, `KVM_GET_DEVICE_ATTR ${group} IPA`);
  const bytes = r.spans.addr;
  if (!bytes) throw new Error('KVM_GET_DEVICE_ATTR returned no value bytes');
  return readUint(bytes, 0, 8, ctx.kvm.endian);
}

const version: CaseGenerator = () =>
  one({ fid: '0x80000000' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const dirty = [1, 2, 3].flatMap((n) => mov(n, 0x1111_2222_3333_0000n | BigInt(n)));
    const words = [
      ...dirty,
      ...smccc(c(ctx, 'ARM_SMCCC_VERSION_FUNC_ID')),
      ...[0, 1, 2, 3].flatMap((r) => report(r, r)),
    ];
    await expectReports(ctx, g, words, [
      ['x0 after SMCCC_VERSION', c(ctx, 'ARM_SMCCC_VERSION_1_1')],
      ['x1 after SMCCC_VERSION', 0n],
      ['x2 after SMCCC_VERSION', 0n],
      ['x3 after SMCCC_VERSION', 0n],
    ]);
  });

const unknown: CaseGenerator = () =>
  [0x8000_00ffn, 0xc500_00ffn].flatMap((fid) =>
    one({ fid: `0x${fid.toString(16)}` }, async (ctx) => {
      const g = await setupGuest(ctx);
      await expectReports(ctx, g, callsReporting([smccc(fid)]), [
        [`x0 after function 0x${fid.toString(16)}`, NOT_SUPPORTED],
      ]);
    }),
  );

/**
 * The conduits: SMC #0 answers as HVC #0 does (SMCCC_VERSION, PSCI_VERSION, NOT_SUPPORTED for an id KVM does
 * not know, x1..x3 zeroed each time); an SMC with a non-zero immediate gets NOT_SUPPORTED in x0 alone; an
 * HVC's immediate plays no part.
 */
const CONDUITS: {
  conduit: 'hvc' | 'smc';
  imm: number;
  fn: string | bigint;
  answer: 'smccc-1.1' | 'psci-version' | 'not-supported';
}[] = [
  { conduit: 'smc', imm: 0, fn: 'ARM_SMCCC_VERSION_FUNC_ID', answer: 'smccc-1.1' },
  { conduit: 'smc', imm: 0, fn: 'PSCI_0_2_FN_PSCI_VERSION', answer: 'psci-version' },
  { conduit: 'smc', imm: 0, fn: 0xc500_00ffn, answer: 'not-supported' },
  { conduit: 'smc', imm: 1, fn: 'ARM_SMCCC_VERSION_FUNC_ID', answer: 'not-supported' },
  { conduit: 'smc', imm: 0xffff, fn: 'PSCI_0_2_FN_PSCI_VERSION', answer: 'not-supported' },
  { conduit: 'hvc', imm: 1, fn: 'ARM_SMCCC_VERSION_FUNC_ID', answer: 'smccc-1.1' },
  { conduit: 'hvc', imm: 0xffff, fn: 'PSCI_0_2_FN_PSCI_VERSION', answer: 'psci-version' },
];

const conduits: CaseGenerator = () =>
  CONDUITS.flatMap(({ conduit, imm, fn, answer }) =>
    one(
      { insn: `${conduit}-${imm}`, fn: typeof fn === 'string' ? fn : `0x${fn.toString(16)}` },
      async (ctx) => {
        const g = await setupGuest(ctx);
        const fid = typeof fn === 'bigint' ? fn : c(ctx, fn);
        const args = [1n, 2n, 3n].map((n) => 0x1111_2222_3333_0000n | n);
        const what = `${conduit.toUpperCase()} #${imm} with x0 = 0x${fid.toString(16)}`;
        const expected =
          answer === 'smccc-1.1'
            ? c(ctx, 'ARM_SMCCC_VERSION_1_1')
            : answer === 'psci-version'
              ? await getReg64(ctx, g.vcpu, regId(ctx, 'KVM_REG_ARM_PSCI_VERSION'), 'PSCI_VERSION')
              : NOT_SUPPORTED;
        // Only a reserved SMC leaves x1..x3 alone; every call KVM answers zeroes them.
        const reserved = conduit === 'smc' && imm !== 0;
        const words = [
          ...callThrough(a64[conduit](imm), fid, ...args),
          ...[0, 1, 2, 3].flatMap((r) => report(r, r)),
        ];
        await expectReports(ctx, g, words, [
          [`x0 after ${what}`, expected],
          ...args.map((a, i): [string, bigint] => [`x${i + 1} after ${what}`, reserved ? a : 0n]),
        ]);
      },
    ),
  );

/** Guest STR and LDR inside the memslot: the bytes land in user memory, neighbours untouched, and read back. */
const ramAccess: CaseGenerator = (g) => [
  ...one({ forms: 'str.x+str.w+ldr.x+ldr.w' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const offset = 0x3000;
    await ctx.kvm.write(g.ram, new Uint8Array(16).fill(0xee), offset);
    const words = [
      ...mov(5, RAM_GPA + BigInt(offset)),
      ...mov(6, 0x0102_0304_0506_0708n),
      ...mov(7, 0xffff_ffff_a1b2_c3d4n),
      a64.str(6, 5, 0),
      a64.str(7, 5, 8, false),
      a64.ldr(8, 5, 8),
      a64.ldr(9, 5, 0, false),
      ...report(8, 0),
      ...report(9, 1),
      ...systemOff(ctx),
    ];
    await expectReports(ctx, g, words, [
      ['LDR X8 over the W store and the untouched bytes', 0xeeee_eeee_a1b2_c3d4n],
      ['LDR W9 of the X store (zero-extended)', 0x0506_0708n],
    ]);
    await expectSystemOff(ctx, g, 'the guest after its last report');
    assertBytes(
      await ctx.kvm.read(g.ram, offset, 16),
      Uint8Array.from([8, 7, 6, 5, 4, 3, 2, 1, 0xd4, 0xc3, 0xb2, 0xa1, 0xee, 0xee, 0xee, 0xee]),
      'guest RAM after the stores',
    );
  }),
  ...spBase(g),
];

/**
 * A store with SP as its base lands at the current stack pointer: SP_EL1 in EL1h (the reset mode), SP_EL0
 * (the SP register) in EL1t.
 */
const spBase: CaseGenerator = () =>
  (['sp_el1', 'sp_el0'] as const).flatMap((sp) =>
    one({ base: sp }, async (ctx) => {
      const g = await setupGuest(ctx);
      const offset = sp === 'sp_el1' ? 0x4000 : 0x5000;
      if (sp === 'sp_el0') await setReg(ctx, g.vcpu, 'PSTATE', 0x3c4n);
      await setReg(ctx, g.vcpu, sp === 'sp_el1' ? 'SP_EL1' : 'SP', RAM_GPA + BigInt(offset));
      // The other stack pointer points elsewhere in RAM, so a store through the wrong one is visible.
      await setReg(ctx, g.vcpu, sp === 'sp_el1' ? 'SP' : 'SP_EL1', RAM_GPA + 0x6000n);
      await loadProgram(ctx, g, g.vcpu, [
        ...mov(6, 0x1122_3344_5566_7788n),
        a64.str(6, 31, 16),
        ...systemOff(ctx),
      ]);
      await expectSystemOff(ctx, g, `the guest after its store through ${sp}`);
      assertBytes(
        await ctx.kvm.read(g.ram, offset + 16, 8),
        Uint8Array.from([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]),
        `guest RAM at ${sp} + 16`,
      );
    }),
  );

const mmioReport: CaseGenerator = () => [
  ...one({ forms: 'movz+movk.w+x' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const words = [
      ...mov(0, 0x1122_3344_5566_7788n),
      ...mov(1, 0x89ab_cdefn),
      ...mov(2, 0xffff_ffff_ffff_ffffn),
      a64.movz(2, 0x1234, 0, false),
      ...report(0, 0),
      ...report(1, 1),
      ...report(2, 2),
      ...systemOff(ctx),
    ];
    await expectReports(ctx, g, words, [
      ['x0 (MOVZ + 3 MOVK, X form)', 0x1122_3344_5566_7788n],
      ['x1 (MOVZ + MOVK, W form)', 0x89ab_cdefn],
      ['x2 (MOVZ W clears the upper half)', 0x1234n],
    ]);
    await expectSystemOff(ctx, g, 'the guest after its last MMIO store');
  }),
  ...[true, false].flatMap((wide) =>
    one({ load: wide ? 'x' : 'w' }, async (ctx) => {
      const g = await setupGuest(ctx);
      await loadProgram(ctx, g, g.vcpu, [
        ...mov(4, 0xffff_ffff_ffff_ffffn),
        ...fetch(4, 3, wide),
        ...report(4, 0),
      ]);
      const value = 0x0123_4567_89ab_cdefn;
      await answerLoad(ctx, g, `LDR ${wide ? 'X' : 'W'}4 from MMIO`, 3, wide ? 8 : 4, value);
      const seen = await nextReport(ctx, g, 'the loaded register', 0);
      assertValue(
        seen,
        wide ? value : value & 0xffff_ffffn,
        `${wide ? 'X' : 'W'}4 after the completed MMIO load`,
      );
    }),
  ),
];

function functionArg(g: GenerateContext): bigint {
  const f = g.ref.rule.deriveArgs?.function;
  if (f === undefined) throw new Error(`${g.ref.rule.id}: deriveArgs.function is required`);
  return typeof f === 'number' || f.startsWith('0x') ? toBigInt(f) : c(g, f);
}

const archFeatures: CaseGenerator = (g) => {
  const fid = functionArg(g);
  const result = asReg(BigInt(g.ref.rule.deriveArgs?.result ?? 0));
  return one({ function: `0x${fid.toString(16)}` }, async (ctx) => {
    const guest = await setupGuest(ctx);
    await expectReports(ctx, guest, callsReporting([smccc(c(ctx, 'ARM_SMCCC_ARCH_FEATURES_FUNC_ID'), fid)]), [
      [`SMCCC_ARCH_FEATURES(0x${fid.toString(16)})`, result],
    ]);
  });
};

/**
 * A call from a vCPU with KVM's PSCI 0.1 (initialised without KVM_ARM_VCPU_PSCI_0_2): x0 is the rule's result,
 * and the guest runs on to report it (a SYSTEM_OFF that KVM carried out would end the run instead).
 */
const onPsci01: CaseGenerator = (g) => {
  const fid = functionArg(g);
  const result = asReg(toBigInt(g.ref.rule.deriveArgs?.result ?? 0));
  return one({ psci: '0.1', function: `0x${fid.toString(16)}` }, async (ctx) => {
    const guest = await setupGuest(ctx, 'vcpu-psci-0.1');
    await expectReports(ctx, guest, callsReporting([smccc(fid)]), [
      [`x0 after function 0x${fid.toString(16)} on a PSCI 0.1 vCPU`, result],
    ]);
  });
};

const pvtimeProbe: CaseGenerator = () =>
  one({ order: 'arch-features+st+features' }, async (ctx) => {
    const g = await setupGuest(ctx);
    await setIpaOk(ctx, g.vcpu, 'pvtime', PVTIME_GPA);
    const features = c(ctx, 'ARM_SMCCC_HV_PV_TIME_FEATURES');
    const st = c(ctx, 'ARM_SMCCC_HV_PV_TIME_ST');
    await expectReports(
      ctx,
      g,
      callsReporting([
        smccc(c(ctx, 'ARM_SMCCC_ARCH_FEATURES_FUNC_ID'), features),
        smccc(features, st),
        smccc(features, features),
      ]),
      [
        ['SMCCC_ARCH_FEATURES(PV_TIME_FEATURES)', 0n],
        ['PV_TIME_FEATURES(PV_TIME_ST)', 0n],
        ['PV_TIME_FEATURES(PV_TIME_FEATURES)', 0n],
      ],
    );
  });

const pvtimeFeaturesRefused: CaseGenerator = () => [
  ...one({ ipa: 'unset', function: 'st' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const features = c(ctx, 'ARM_SMCCC_HV_PV_TIME_FEATURES');
    await expectReports(ctx, g, callsReporting([smccc(features, c(ctx, 'ARM_SMCCC_HV_PV_TIME_ST'))]), [
      ['PV_TIME_FEATURES(PV_TIME_ST) without an IPA', NOT_SUPPORTED],
    ]);
  }),
  ...[0xc500_0022n, 0n].flatMap((other) =>
    one({ ipa: 'set', function: `0x${other.toString(16)}` }, async (ctx) => {
      const g = await setupGuest(ctx);
      await setIpaOk(ctx, g.vcpu, 'pvtime', PVTIME_GPA);
      await expectReports(ctx, g, callsReporting([smccc(c(ctx, 'ARM_SMCCC_HV_PV_TIME_FEATURES'), other)]), [
        [`PV_TIME_FEATURES(0x${other.toString(16)})`, NOT_SUPPORTED],
      ]);
    }),
  ),
];

const GARBAGE = 0xa5;

const pvtimeSt: CaseGenerator = () =>
  one({ structure: 'prefilled' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const offset = Number(PVTIME_GPA - RAM_GPA);
    await ctx.kvm.write(g.ram, new Uint8Array(PV_STRUCT).fill(GARBAGE), offset);
    await setIpaOk(ctx, g.vcpu, 'pvtime', PVTIME_GPA);
    await expectReports(ctx, g, callsReporting([smccc(c(ctx, 'ARM_SMCCC_HV_PV_TIME_ST'))]), [
      ['PV_TIME_ST', PVTIME_GPA],
    ]);
    const s = await ctx.kvm.read(g.ram, offset, PV_STRUCT);
    assertBytes(s.subarray(0, 8), new Uint8Array(8), 'revision and attributes');
    assertBytes(s.subarray(16), new Uint8Array(PV_STRUCT - 16), 'padding after stolen_time');
  });

const stolenTime: CaseGenerator = () =>
  one({ reads: '3' }, async (ctx) => {
    const g = await setupGuest(ctx);
    await setIpaOk(ctx, g.vcpu, 'pvtime', PVTIME_GPA);
    const read = (slot: number) => [...mov(7, PVTIME_GPA), a64.ldr(6, 7, 8), ...report(6, slot)];
    await loadProgram(ctx, g, g.vcpu, [
      ...smccc(c(ctx, 'ARM_SMCCC_HV_PV_TIME_ST')),
      ...read(0),
      ...read(1),
      ...read(2),
    ]);
    let last = 0n;
    for (let i = 0; i < 3; i++) {
      const steal = await nextReport(ctx, g, `stolen_time read ${i}`, i);
      if (steal < last) assertValue(steal, last, `stolen_time read ${i} (must not decrease)`);
      last = steal;
      ctx.note(`stolen_time ${i}`, steal.toString());
    }
    const s = await ctx.kvm.read(g.ram, Number(PVTIME_GPA - RAM_GPA), 8);
    assertBytes(s, new Uint8Array(8), 'revision and attributes after the runs');
  });

/** More instructions than the reference's time slice (256), so a stretch of them can be preempted there. */
const FILLER = 272;
const STOLEN_MARK = 0x1_0000_0000n;
const PADDING_MARK = 0x5a5a_5a5a_5a5a_5a5an;

/** x7 = the structure's IPA; x9 and x10 = the marks the guest stores into stolen_time and the padding. */
const stolenTimeRegs = (ipa: bigint) => [...mov(7, ipa), ...mov(9, STOLEN_MARK), ...mov(10, PADDING_MARK)];

/** A stretch of instructions that change nothing the case looks at, then a report of stolen_time (x7 + 8). */
const readAfterFiller = (slot: number) => [
  ...new Array<number>(FILLER).fill(a64.movz(11, slot, 0, true)),
  a64.ldr(6, 7, 8),
  ...report(6, slot),
];

/**
 * KVM adds the time the vCPU waited to the stolen_time in guest memory and writes nothing else: a value the
 * guest stored there after PV_TIME_ST never reads back smaller, while the padding and the bytes before the
 * structure keep what was written there.
 */
const stolenTimeGuestValue: CaseGenerator = () =>
  one({ stored: `0x${STOLEN_MARK.toString(16)}` }, async (ctx) => {
    const g = await setupGuest(ctx);
    const before = new Uint8Array(8).fill(GARBAGE);
    const offset = Number(PVTIME_GPA - RAM_GPA);
    await ctx.kvm.write(g.ram, before, offset - 8);
    await setIpaOk(ctx, g.vcpu, 'pvtime', PVTIME_GPA);
    const reads = 3;
    await loadProgram(ctx, g, g.vcpu, [
      ...smccc(c(ctx, 'ARM_SMCCC_HV_PV_TIME_ST')),
      ...stolenTimeRegs(PVTIME_GPA),
      a64.str(9, 7, 8),
      a64.str(10, 7, 16),
      ...Array.from({ length: reads }, (_, i) => readAfterFiller(i)).flat(),
    ]);
    let last = STOLEN_MARK;
    for (let i = 0; i < reads; i++) {
      const steal = await nextReport(ctx, g, `stolen_time read ${i}`, i);
      if (steal < last) assertValue(steal, last, `stolen_time read ${i} (never below the last value)`);
      last = steal;
      ctx.note(`stolen_time ${i} above the stored value`, (steal - STOLEN_MARK).toString());
    }
    const s = await ctx.kvm.read(g.ram, offset - 8, 8 + PV_STRUCT);
    assertBytes(s.subarray(0, 8), before, 'the 8 bytes before the structure');
    assertBytes(s.subarray(8, 16), new Uint8Array(8), 'revision and attributes');
    assertBytes(s.subarray(24, 32), uintToBytes(PADDING_MARK, 8, 'little'), 'the padding the guest wrote');
    assertBytes(s.subarray(32), new Uint8Array(PV_STRUCT - 24), 'the rest of the padding');
  });

/** The structure in a memslot of its own, deleted after PV_TIME_ST: KVM skips the update and runs on. */
const UNBACKED_PVTIME_GPA = 0x5000_0000n;

const stolenTimeUnbacked: CaseGenerator = () =>
  one({ memslot: 'deleted' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const pvRam = await ctx.kvm.alloc(RAM_SIZE, { alignment: RAM_SIZE });
    await ctx.kvm.setup(
      g.vm,
      'KVM_SET_USER_MEMORY_REGION',
      memslot(1, UNBACKED_PVTIME_GPA, BigInt(RAM_SIZE), pvRam),
    );
    await setIpaOk(ctx, g.vcpu, 'pvtime', UNBACKED_PVTIME_GPA);
    const st = smccc(c(ctx, 'ARM_SMCCC_HV_PV_TIME_ST'));
    await loadProgram(ctx, g, g.vcpu, [...st, ...report(0, 0), ...st, ...report(0, 1)]);
    assertValue(await nextReport(ctx, g, 'PV_TIME_ST', 0), UNBACKED_PVTIME_GPA, 'PV_TIME_ST');
    await ctx.kvm.setup(g.vm, 'KVM_SET_USER_MEMORY_REGION', memslot(1, UNBACKED_PVTIME_GPA, 0n, pvRam));
    assertValue(
      await nextReport(ctx, g, 'PV_TIME_ST after the memslot was deleted', 1),
      UNBACKED_PVTIME_GPA,
      'PV_TIME_ST after the memslot was deleted',
    );
  });

/**
 * Each hypercall bitmap reads back what user space wrote before the first KVM_RUN: 0, then its default; after
 * the VM ran, writing the value it holds succeeds.
 */
const bitmapReadback: CaseGenerator = () =>
  ['KVM_REG_ARM_STD_BMAP', 'KVM_REG_ARM_STD_HYP_BMAP', 'KVM_REG_ARM_VENDOR_HYP_BMAP'].flatMap((name) =>
    one({ reg: name }, async (ctx) => {
      const g = await setupGuest(ctx);
      const id = regId(ctx, name);
      const read = (what: string) => getReg64(ctx, g.vcpu, id, `${name} ${what}`);
      const write = async (value: bigint): Promise<void> => {
        const r = await setReg64(ctx, g.vcpu, id, value);
        assertOutcome(r, { ret: 0 }, `KVM_SET_ONE_REG ${name} = 0x${value.toString(16)}`);
      };
      const initial = await read('by default');
      ctx.note('default', `0x${initial.toString(16)}`);
      await write(0n);
      assertValue(await read('after writing 0'), 0n, `${name} after writing 0`);
      await write(initial);
      assertValue(
        await read('after writing the default back'),
        initial,
        `${name} after writing the default back`,
      );
      // Once the VM has run only a change is refused (EBUSY): the value it holds is still accepted.
      await runToPowerOff(ctx, g);
      await write(initial);
    }),
  );

function stdHypBitmap(ctx: CaseContext, vcpu: number, value: bigint) {
  return setReg64(ctx, vcpu, regId(ctx, 'KVM_REG_ARM_STD_HYP_BMAP'), value);
}

/** The guest's PSCI_VERSION against the firmware register: as read by default, or after user space wrote it. */
const psciVersion: CaseGenerator = () =>
  (['default', '0x10000', '0x2'] as const).flatMap((set) =>
    one({ version: set }, async (ctx) => {
      const g = await setupGuest(ctx);
      const id = regId(ctx, 'KVM_REG_ARM_PSCI_VERSION');
      if (set !== 'default') {
        const r = await setReg64(ctx, g.vcpu, id, toBigInt(set));
        assertOutcome(r, { ret: 0 }, `KVM_SET_ONE_REG PSCI_VERSION = ${set}`);
      }
      const held = await getReg64(ctx, g.vcpu, id, 'PSCI_VERSION');
      if (set !== 'default') assertValue(held, toBigInt(set), 'the firmware register after the write');
      ctx.note('firmware register', `0x${held.toString(16)}`);
      await expectReports(ctx, g, callsReporting([smccc(c(ctx, 'PSCI_0_2_FN_PSCI_VERSION'))]), [
        ['PSCI_VERSION', held],
      ]);
    }),
  );

/**
 * PSCI_VERSION by the vCPU's PSCI feature: a vCPU initialised without KVM_ARM_VCPU_PSCI_0_2 has PSCI 0.1 (it
 * reads 0x1, KVM_ARM_PSCI_0_1, and takes only that), one with it takes only 0.2 and later versions.
 */
/** KVM_ARM_PSCI_0_1 (include/kvm/arm_psci.h): major 0, minor 1. */
const PSCI_0_1 = 0x1n;

const psciVersionByFeature: CaseGenerator = () =>
  (
    [
      ['0.1', 'get', undefined, { ret: 0 }],
      ['0.1', 'set', PSCI_0_1, { ret: 0 }],
      ['0.1', 'set', 0x1_0000n, { errno: 'EINVAL' }],
      ['0.2', 'set', PSCI_0_1, { errno: 'EINVAL' }],
    ] as const
  ).flatMap(([psci, op, value, outcome]) =>
    one({ psci, op: value === undefined ? op : `${op}-0x${value.toString(16)}` }, async (ctx) => {
      const vm = await vmOf(ctx);
      const vcpu = await ctx.kvm.setupHandle(vm, 'KVM_CREATE_VCPU', 0n);
      await initVcpu(ctx, vm, vcpu, psci === '0.2' ? psci02(ctx) : 0n);
      const id = regId(ctx, 'KVM_REG_ARM_PSCI_VERSION');
      const before = await getReg64(ctx, vcpu, id, `PSCI_VERSION of a PSCI ${psci} vCPU`);
      if (value === undefined) return assertValue(before, PSCI_0_1, `PSCI_VERSION of a PSCI ${psci} vCPU`);
      const what = `KVM_SET_ONE_REG PSCI_VERSION = 0x${value.toString(16)} on a PSCI ${psci} vCPU`;
      assertOutcome(await setReg64(ctx, vcpu, id, value), outcome, what);
      const after = await getReg64(ctx, vcpu, id, 'PSCI_VERSION after the write');
      assertValue(after, 'ret' in outcome ? value : before, 'PSCI_VERSION after the write');
    }),
  );

/** PSCI_VERSION is VM-wide: written through vCPU 0, it reads back through vCPU 1 and after vCPU 0 is reset. */
const psciVersionVmWide: CaseGenerator = () =>
  one({ version: '0x10000' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const id = regId(ctx, 'KVM_REG_ARM_PSCI_VERSION');
    const version = 0x1_0000n;
    const r = await setReg64(ctx, g.vcpu, id, version);
    assertOutcome(r, { ret: 0 }, 'KVM_SET_ONE_REG PSCI_VERSION = 1.0 through vCPU 0');
    const other = await ctx.kvm.setupHandle(g.vm, 'KVM_CREATE_VCPU', 1n);
    await initVcpu(ctx, g.vm, other);
    await initVcpu(ctx, g.vm, g.vcpu);
    for (const [vcpu, what] of [
      [other, 'through vCPU 1'],
      [g.vcpu, 'through vCPU 0 after its KVM_ARM_VCPU_INIT'],
    ] as const) {
      assertValue(await getReg64(ctx, vcpu, id, `PSCI_VERSION ${what}`), version, `PSCI_VERSION ${what}`);
    }
  });

/**
 * The values a workaround register's write is tested with, each with whether KVM accepts it on a host whose
 * level (what GET reports) is `host`. WORKAROUND_1 and _3 take any level up to the host's; WORKAROUND_2 folds
 * NOT_AVAIL and UNKNOWN (0, 1) to NOT_AVAIL and AVAIL, NOT_REQUIRED and AVAIL|ENABLED (2, 3, 0x12) to
 * NOT_REQUIRED (3), which the host must have.
 */
function workaroundWrites(n: number, host: bigint): [bigint, boolean][] {
  if (n !== 2) return [0n, host, host + 1n].map((v) => [v, v <= host]);
  return [0n, 1n, 2n, 3n, 0x12n].map((v) => [v, v < 2n || host >= 3n]);
}

const workaroundLevels: CaseGenerator = () =>
  [1, 2, 3].flatMap((n) =>
    one({ reg: `WORKAROUND_${n}` }, async (ctx) => {
      const vcpu = await vcpuOf(ctx);
      const name = `KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_${n}`;
      const id = regId(ctx, name);
      const level = (what: string) => getReg64(ctx, vcpu, id, `${name} ${what}`, { hostDependent: true });
      const host = await level('(the host level)');
      ctx.note('host level', String(host));
      for (const [value, accepted] of workaroundWrites(n, host)) {
        const r = await setReg64(ctx, vcpu, id, value, { hostDependent: true });
        const what = `${name} = 0x${value.toString(16)} on a host at level ${host}`;
        assertOutcome(r, accepted ? { ret: 0 } : { errno: 'EINVAL' }, `KVM_SET_ONE_REG ${what}`);
        assertValue(await level(`after writing 0x${value.toString(16)}`), host, `${name} after the write`);
      }
    }),
  );

/** What SMCCC_ARCH_FEATURES answers for a workaround at each firmware-register level (SMCCC return codes). */
function workaroundAnswer(n: number, level: bigint): bigint {
  // ARCH_WORKAROUND_2 numbers its levels NOT_AVAIL 0, UNKNOWN 1, AVAIL 2, NOT_REQUIRED 3 and answers
  // NOT_REQUIRED (-2) for the last; the others number them 0, 1, 2 and answer 1 (unaffected).
  const [avail, notRequired, unaffected] = n === 2 ? [2n, 3n, asReg(-2n)] : [1n, 2n, 1n];
  if (level === notRequired) return unaffected;
  return level === avail ? 0n : NOT_SUPPORTED;
}

/** The guest's SMCCC_ARCH_FEATURES(ARCH_WORKAROUND_n) against the level the firmware register reports. */
const workaroundFeatures: CaseGenerator = () =>
  [1, 2, 3].flatMap((n) =>
    one({ workaround: String(n) }, async (ctx) => {
      const g = await setupGuest(ctx);
      const name = `KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_${n}`;
      const level = await getReg64(ctx, g.vcpu, regId(ctx, name), name, { hostDependent: true });
      ctx.note('host level', String(level));
      const call = smccc(c(ctx, 'ARM_SMCCC_ARCH_FEATURES_FUNC_ID'), c(ctx, `ARM_SMCCC_ARCH_WORKAROUND_${n}`));
      await expectReports(ctx, g, callsReporting([call]), [
        [`SMCCC_ARCH_FEATURES(ARCH_WORKAROUND_${n}) at level ${level}`, workaroundAnswer(n, level)],
      ]);
    }),
  );

/** The three PV-time answers a guest gets when it probes and asks for the structure. */
function pvtimeCalls(ctx: CaseContext): number[][] {
  const features = c(ctx, 'ARM_SMCCC_HV_PV_TIME_FEATURES');
  const st = c(ctx, 'ARM_SMCCC_HV_PV_TIME_ST');
  return [smccc(c(ctx, 'ARM_SMCCC_ARCH_FEATURES_FUNC_ID'), features), smccc(features, st), smccc(st)];
}

const pvtimeHidden: CaseGenerator = () =>
  one({ std_hyp: '0' }, async (ctx) => {
    const g = await setupGuest(ctx);
    assertOutcome(await stdHypBitmap(ctx, g.vcpu, 0n), { ret: 0 }, 'KVM_SET_ONE_REG STD_HYP bitmap = 0');
    await setIpaOk(ctx, g.vcpu, 'pvtime', PVTIME_GPA);
    await expectReports(ctx, g, callsReporting(pvtimeCalls(ctx)), [
      ['SMCCC_ARCH_FEATURES(PV_TIME_FEATURES) with PV_TIME hidden', NOT_SUPPORTED],
      ['PV_TIME_FEATURES(PV_TIME_ST) with PV_TIME hidden', NOT_SUPPORTED],
      ['PV_TIME_ST with PV_TIME hidden', NOT_SUPPORTED],
    ]);
  });

const bitmapLocked: CaseGenerator = () =>
  (['unsupported-bit', 'after-run'] as const).flatMap((which) =>
    one({ case: which }, async (ctx) => {
      const g = await setupGuest(ctx);
      await setIpaOk(ctx, g.vcpu, 'pvtime', PVTIME_GPA);
      await loadProgram(ctx, g, g.vcpu, [...report(0, 0), ...callsReporting(pvtimeCalls(ctx))]);
      if (which === 'after-run') await nextReport(ctx, g, 'the first exit', 0);
      const r = await stdHypBitmap(ctx, g.vcpu, which === 'after-run' ? 0n : 1n << 63n);
      assertOutcome(
        r,
        { errno: which === 'after-run' ? 'EBUSY' : 'EINVAL' },
        `KVM_SET_ONE_REG STD_HYP bitmap (${which})`,
      );
      if (which === 'unsupported-bit') await nextReport(ctx, g, 'the first exit', 0);
      const answers = [0n, 0n, PVTIME_GPA];
      for (const [i, want] of answers.entries())
        assertValue(
          await nextReport(ctx, g, `PV-time call ${i}`, i),
          want,
          `PV-time call ${i} after the refused bitmap change`,
        );
    }),
  );

const pvtimeStUnset: CaseGenerator = () =>
  one({ ipa: 'unset' }, async (ctx) => {
    const g = await setupGuest(ctx);
    await expectReports(ctx, g, callsReporting([smccc(c(ctx, 'ARM_SMCCC_HV_PV_TIME_ST'))]), [
      ['PV_TIME_ST without an IPA', NOT_SUPPORTED],
    ]);
  });

const pvlockAbsent: CaseGenerator = (g) => {
  const fid = functionArg(g);
  return (['arch-features', 'call'] as const).flatMap((probe) =>
    one({ probe }, async (ctx) => {
      const guest = await setupGuest(ctx);
      const call =
        probe === 'arch-features'
          ? smccc(c(ctx, 'ARM_SMCCC_ARCH_FEATURES_FUNC_ID'), fid)
          : smccc(fid, c(ctx, 'ARM_SMCCC_HV_PV_LOCK_PREEMPTED'));
      await expectReports(ctx, guest, callsReporting([call]), [
        [`${probe} of 0x${fid.toString(16)}`, NOT_SUPPORTED],
      ]);
    }),
  );
};

const pvlockProbe: CaseGenerator = () =>
  one({ order: 'arch-features+preempted+features+other' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const features = c(ctx, 'ARM_SMCCC_HV_PV_LOCK_FEATURES');
    const preempted = c(ctx, 'ARM_SMCCC_HV_PV_LOCK_PREEMPTED');
    await expectReports(
      ctx,
      g,
      callsReporting([
        smccc(c(ctx, 'ARM_SMCCC_ARCH_FEATURES_FUNC_ID'), features),
        smccc(features, preempted),
        smccc(features, features),
        smccc(features, 0xc600_0022n),
      ]),
      [
        ['SMCCC_ARCH_FEATURES(PV_LOCK_FEATURES)', 0n],
        ['PV_LOCK_FEATURES(PV_LOCK_PREEMPTED)', 0n],
        ['PV_LOCK_FEATURES(PV_LOCK_FEATURES)', 0n],
        ['PV_LOCK_FEATURES(0xc6000022)', NOT_SUPPORTED],
      ],
    );
  });

const pvlockPreemptedIpa: CaseGenerator = () =>
  one({ ipa: 'unset-then-set' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const call = smccc(c(ctx, 'ARM_SMCCC_HV_PV_LOCK_PREEMPTED'));
    const unknownFid = 0xc600_00ffn;
    await loadProgram(ctx, g, g.vcpu, callsReporting([call, call, smccc(unknownFid)]));
    assertValue(
      await nextReport(ctx, g, 'PV_LOCK_PREEMPTED before the IPA is set', 0),
      NOT_SUPPORTED,
      'PV_LOCK_PREEMPTED without an IPA',
    );
    await setIpaOk(ctx, g.vcpu, 'pvlock', PVLOCK_GPA);
    assertValue(
      await nextReport(ctx, g, 'PV_LOCK_PREEMPTED after the IPA is set', 1),
      PVLOCK_GPA,
      'PV_LOCK_PREEMPTED',
    );
    assertValue(
      await nextReport(ctx, g, 'an unknown function after the IPA is set', 2),
      NOT_SUPPORTED,
      `function 0x${unknownFid.toString(16)} with the PV-lock IPA set`,
    );
  });

async function writePreempted(ctx: CaseContext, g: Guest, value: bigint): Promise<void> {
  await ctx.kvm.write(g.ram, uintToBytes(value, 8, 'little'), Number(PVLOCK_GPA - RAM_GPA));
}

const pvlockRunning: CaseGenerator = () =>
  [0n, 1n].flatMap((initial) =>
    one({ initial: String(initial) }, async (ctx) => {
      const g = await setupGuest(ctx);
      await writePreempted(ctx, g, initial);
      await setIpaOk(ctx, g.vcpu, 'pvlock', PVLOCK_GPA);
      await expectReports(
        ctx,
        g,
        [...mov(7, PVLOCK_GPA), a64.ldr(6, 7, 0), ...report(6, 0)],
        [['preempted as the running guest reads it', 0n]],
      );
    }),
  );

const pvlockAfterExit: CaseGenerator = () =>
  (['mmio', 'system-off'] as const).flatMap((exit) =>
    one({ exit }, async (ctx) => {
      const g = await setupGuest(ctx);
      await writePreempted(ctx, g, 1n);
      await setIpaOk(ctx, g.vcpu, 'pvlock', PVLOCK_GPA);
      if (exit === 'mmio') await expectReports(ctx, g, report(0, 0), [['x0', 0n]]);
      else await runToPowerOff(ctx, g);
      const bytes = await ctx.kvm.read(g.ram, Number(PVLOCK_GPA - RAM_GPA), 8);
      assertValue(
        readUint(bytes, 0, 8, 'little'),
        0n,
        `preempted after KVM_RUN returned to user space (${exit})`,
      );
    }),
  );

const systemOffCase: CaseGenerator = () =>
  one({ psci: '0.2' }, async (ctx) => {
    const g = await setupGuest(ctx);
    await loadProgram(ctx, g, g.vcpu, systemOff(ctx));
    await expectSystemOff(ctx, g, 'PSCI SYSTEM_OFF');
  });

const setIpaCases: CaseGenerator = (g) => {
  const group = groupOf(g);
  const expect = g.ref.rule.expect ?? { ret: 0 };
  return [
    ...one({ vcpu: 'first' }, async (ctx) => {
      const guest = await setupGuest(ctx);
      assertOutcome(
        await setIpa(ctx, guest.vcpu, group, GROUPS[group].gpa),
        expect,
        `KVM_SET_DEVICE_ATTR ${group} IPA`,
      );
      assertValue(await readIpa(ctx, guest.vcpu, group), GROUPS[group].gpa, `${group} IPA read back`);
    }),
    ...one({ vcpu: 'second' }, async (ctx) => {
      const guest = await setupGuest(ctx);
      const other = await ctx.kvm.setupHandle(guest.vm, 'KVM_CREATE_VCPU', 1n);
      const second = GROUPS[group].gpa + BigInt(PV_STRUCT);
      await setIpaOk(ctx, guest.vcpu, group, GROUPS[group].gpa);
      assertOutcome(
        await setIpa(ctx, other, group, second),
        expect,
        `KVM_SET_DEVICE_ATTR ${group} IPA on vCPU 1`,
      );
      assertValue(await readIpa(ctx, guest.vcpu, group), GROUPS[group].gpa, `${group} IPA of vCPU 0`);
      assertValue(await readIpa(ctx, other, group), second, `${group} IPA of vCPU 1`);
    }),
  ];
};

interface SetError {
  params: string;
  before?: bigint;
  ipa: bigint | 'invalid';
  attr?: bigint;
  expect: Outcome;
  after?: bigint;
}

/** The SET checks in upstream's order; each case is built so that only the check it names can fire first. */
const setErrors: CaseGenerator = (g) => {
  const group = groupOf(g);
  const base = GROUPS[group].gpa;
  const table: SetError[] = [
    { params: 'attr-1+bad-addr', ipa: 'invalid', attr: 1n, expect: { errno: 'ENXIO' } },
    { params: 'bad-addr', ipa: 'invalid', expect: { errno: 'EFAULT' } },
    { params: 'misaligned', ipa: base + 8n, expect: { errno: 'EINVAL' } },
    { params: 'misaligned-after-set', before: base, ipa: base + 8n, expect: { errno: 'EINVAL' } },
    { params: 'set-twice', before: base, ipa: base, expect: { errno: 'EEXIST' } },
    { params: 'set-twice-unbacked', before: base, ipa: UNBACKED_GPA, expect: { errno: 'EEXIST' } },
    { params: 'unbacked', ipa: UNBACKED_GPA, expect: { errno: 'EINVAL' }, after: base },
  ];
  return table.map((t) => ({
    params: { case: t.params },
    run: async (ctx: CaseContext) => {
      const guest = await setupGuest(ctx);
      if (t.before !== undefined) await setIpaOk(ctx, guest.vcpu, group, t.before);
      const r = await setIpa(ctx, guest.vcpu, group, t.ipa, t.attr);
      assertOutcome(r, t.expect, `KVM_SET_DEVICE_ATTR ${group} (${t.params})`);
      assertValue(
        await readIpa(ctx, guest.vcpu, group),
        t.before ?? INVALID_GPA,
        `${group} IPA after the refused SET`,
      );
      if (t.after !== undefined) await setIpaOk(ctx, guest.vcpu, group, t.after);
    },
  }));
};

const getCases: CaseGenerator = (g) => {
  const group = groupOf(g);
  return [
    ...one({ ipa: 'unset' }, async (ctx) => {
      const guest = await setupGuest(ctx);
      assertValue(await readIpa(ctx, guest.vcpu, group), INVALID_GPA, `${group} IPA before any SET`);
    }),
    ...one({ attr: '1' }, async (ctx) => {
      const guest = await setupGuest(ctx);
      assertOutcome(
        await getIpa(ctx, guest.vcpu, group, 'buffer', 1n),
        { errno: 'ENXIO' },
        `KVM_GET_DEVICE_ATTR ${group} attr 1`,
      );
    }),
    ...one({ addr: 'invalid' }, async (ctx) => {
      const guest = await setupGuest(ctx);
      assertOutcome(
        await getIpa(ctx, guest.vcpu, group, 'invalid'),
        { errno: 'EFAULT' },
        `KVM_GET_DEVICE_ATTR ${group} into an invalid addr`,
      );
    }),
  ];
};

/** What a KVM_RUN with immediate_exit still does before it returns EINTR. */
const immediateExit: CaseGenerator = () => [
  ...one({ case: 'mmio-load' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const load = fetch(4, 3);
    await loadProgram(ctx, g, g.vcpu, [...load, ...report(4, 0)]);
    const value = 0x0123_4567_89ab_cdefn;
    await answerLoad(ctx, g, 'LDR X4 from MMIO', 3, 8, value);
    await setImmediateExit(ctx, g.run, 1);
    await runInterrupted(ctx, g.vcpu, 'after the MMIO load exit');
    assertValue(
      await getReg64(ctx, g.vcpu, regId(ctx, 'X4'), 'X4'),
      value,
      'X4 after the interrupted KVM_RUN',
    );
    const pastLoad = RAM_GPA + 4n * BigInt(load.length);
    assertValue(
      await getReg64(ctx, g.vcpu, regId(ctx, 'PC'), 'PC'),
      pastLoad,
      'PC after the interrupted KVM_RUN',
    );
    await setImmediateExit(ctx, g.run, 0);
    assertValue(await nextReport(ctx, g, 'X4 after the next KVM_RUN', 0), value, 'X4 the guest reports');
  }),
  // The hypercall bitmaps lock at the VM's first run (PV_TIME-ERR-002): an interrupted first KVM_RUN is one.
  ...one({ case: 'first-run' }, async (ctx) => {
    const g = await setupGuest(ctx);
    await setImmediateExit(ctx, g.run, 1);
    await runInterrupted(ctx, g.vcpu, "as the VM's first KVM_RUN");
    assertOutcome(
      await stdHypBitmap(ctx, g.vcpu, 0n),
      { errno: 'EBUSY' },
      'KVM_SET_ONE_REG STD_HYP bitmap after it',
    );
  }),
  ...one({ case: 'powered-off' }, async (ctx) => {
    const vm = await vmOf(ctx);
    const vcpu = await ctx.kvm.setupHandle(vm, 'KVM_CREATE_VCPU', 0n);
    await initVcpu(ctx, vm, vcpu, psci02(ctx) | (1n << c(ctx, 'KVM_ARM_VCPU_POWER_OFF')));
    await setImmediateExit(ctx, await mapRun(ctx, await ctx.fixture('system'), vcpu), 1);
    await runInterrupted(ctx, vcpu, 'of a vCPU initialised powered off');
  }),
];

export const arm64Hypercalls: SuiteFamily = {
  generators: {
    'arm64-hypercalls.version': version,
    'arm64-hypercalls.unknown': unknown,
    'arm64-hypercalls.conduits': conduits,
    'arm64-hypercalls.immediate-exit': immediateExit,
    'arm64-hypercalls.mmio-report': mmioReport,
    'arm64-hypercalls.ram-access': ramAccess,
    'arm64-hypercalls.arch-features': archFeatures,
    'arm64-hypercalls.pvtime-probe': pvtimeProbe,
    'arm64-hypercalls.pvtime-features-refused': pvtimeFeaturesRefused,
    'arm64-hypercalls.pvtime-st': pvtimeSt,
    'arm64-hypercalls.stolen-time': stolenTime,
    'arm64-hypercalls.stolen-time-guest-value': stolenTimeGuestValue,
    'arm64-hypercalls.stolen-time-unbacked': stolenTimeUnbacked,
    'arm64-hypercalls.bitmap-readback': bitmapReadback,
    'arm64-hypercalls.pvtime-st-unset': pvtimeStUnset,
    'arm64-hypercalls.pvtime-hidden': pvtimeHidden,
    'arm64-hypercalls.bitmap-locked': bitmapLocked,
    'arm64-hypercalls.pvlock-absent': pvlockAbsent,
    'arm64-hypercalls.pvlock-probe': pvlockProbe,
    'arm64-hypercalls.pvlock-preempted-ipa': pvlockPreemptedIpa,
    'arm64-hypercalls.pvlock-running': pvlockRunning,
    'arm64-hypercalls.pvlock-after-exit': pvlockAfterExit,
    'arm64-hypercalls.system-off': systemOffCase,
    'arm64-hypercalls.psci-01-vcpu': onPsci01,
    'arm64-hypercalls.psci-version': psciVersion,
    'arm64-hypercalls.psci-version-vm-wide': psciVersionVmWide,
    'arm64-hypercalls.psci-version-by-feature': psciVersionByFeature,
    'arm64-hypercalls.workaround-levels': workaroundLevels,
    'arm64-hypercalls.workaround-features': workaroundFeatures,
    'arm64-pv.set-ipa': setIpaCases,
    'arm64-pv.set-errors': setErrors,
    'arm64-pv.get': getCases,
  },
};
