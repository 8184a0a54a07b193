/**
 * arm64 feature ID registers: the writable masks KVM_ARM_GET_REG_WRITABLE_MASKS reports, and what
 * KVM_SET_ONE_REG accepts for them. Field cases read the host's mask and value first, so they hold on any
 * kernel: a field the host does not make writable is not-applicable for the writable-field rules. Also
 * MPIDR_EL1, the one identification register whose reset value KVM derives from the vCPU.
 */
import { readUint } from '../harness/abi/codec.ts';
import { assertBytes, assertOutcome, assertTrue, assertValue, expectOf } from '../harness/plan/outcome.ts';
import type {
  CaseContext,
  CaseGenerator,
  GeneratedCase,
  GenerateContext,
  SuiteFamily,
} from '../harness/plan/types.ts';
import { SetupError } from '../harness/session.ts';
import { toBigInt } from '../harness/spec/int.ts';
import type { FieldPolicy, RegisterField } from '../harness/spec/types.ts';
import { getReg64, initVcpu, regId, runToPowerOff, setReg64, setupGuest } from './arm64-guest.ts';
import { vcpuIdLimitOf, vcpuOf, vmOf } from './fixtures.ts';

type Field = RegisterField;

interface IdReg {
  name: string;
  op1: number;
  crm: number;
  op2: number;
  /** The spec's writable fields (spec/registers/arm64.json), with the policies KVM checks them against. */
  fields: readonly Field[];
}

/**
 * Which of the safe and unsafe cases a field gets, when not both (keyed register.field). A field KVM shows as
 * 0 for the fixtures' vCPU (no SVE, no PMU) or that describes a feature the model CPU and most hosts lack has
 * no safe change; a 1-bit field has only one of the two, by its value, so it gets the one the model CPU
 * exhibits. Fields with policy "any" (CLIDR_EL1, whose setter has its own checks) get neither.
 */
const ONLY: Readonly<Record<string, 'safe' | 'unsafe'>> = {
  ...only('unsafe', 'ID_AA64PFR2_EL1', ['FPMR']),
  ...only('unsafe', 'ID_AA64ZFR0_EL1', [
    'SVEver',
    'AES',
    'BitPerm',
    'BF16',
    'B16B16',
    'SHA3',
    'SM4',
    'I8MM',
    'F32MM',
    'F64MM',
  ]),
  ...only('unsafe', 'ID_AA64FPFR0_EL1', ['F8E5M2', 'F8E4M3', 'F8DP2', 'F8DP4', 'F8FMA', 'F8CVT']),
  ...only('unsafe', 'ID_AA64DFR0_EL1', ['PMUVer']),
  ...only('unsafe', 'ID_AA64ISAR0_EL1', ['TME']),
  ...only('unsafe', 'ID_AA64ISAR1_EL1', ['XS', 'LS64']),
  ...only('unsafe', 'ID_AA64ISAR2_EL1', [
    'MOPS',
    'BC',
    'PAC_frac',
    'CLRBHB',
    'SYSREG_128',
    'SYSINSTR_128',
    'PRFMSLC',
    'LUT',
    'ATS1A',
  ]),
  ...only('unsafe', 'ID_AA64MMFR1_EL1', ['nTLBPA', 'CMOW', 'ECBHB']),
  ...only('safe', 'CTR_EL0', ['IDC', 'DIC']),
};

function only(kind: 'safe' | 'unsafe', reg: string, fields: string[]): Record<string, 'safe' | 'unsafe'> {
  return Object.fromEntries(fields.map((f) => [`${reg}.${f}`, kind]));
}

function encoding(id: bigint): { op0: number; op1: number; crn: number; crm: number; op2: number } {
  return {
    op0: Number((id >> 14n) & 3n),
    op1: Number((id >> 11n) & 7n),
    crn: Number((id >> 7n) & 15n),
    crm: Number((id >> 3n) & 15n),
    op2: Number(id & 7n),
  };
}

/** The catalog's feature ID registers (op0 3, op1 0/1/3, CRn 0, CRm 0..7) except MPIDR_EL1, vCPU state. */
function idRegisters(g: GenerateContext): IdReg[] {
  return g.spec
    .registers('arm64')
    .filter((r) => toBigInt(r.id) >> 16n === 0x6030_0000_0013n)
    .map((r) => ({ name: r.name, ...encoding(toBigInt(r.id)), fields: r.fields ?? [] }))
    .filter(
      (r) => r.op0 === 3 && [0, 1, 3].includes(r.op1) && r.crn === 0 && r.crm < 8 && r.name !== 'MPIDR_EL1',
    );
}

/**
 * The registers with fields the suite writes; an ONLY entry naming no such field is an error, so a renamed
 * field cannot silently lose its exception.
 */
function fieldRegisters(g: GenerateContext): IdReg[] {
  const regs = idRegisters(g).filter((r) => r.fields.length > 0);
  for (const key of Object.keys(ONLY)) {
    const [reg, field] = key.split('.');
    if (!regs.some((r) => r.name === reg && r.fields.some((f) => f.name === field)))
      throw new Error(`arm64-idregs: ${key} is not a writable field of the register catalog`);
  }
  return regs;
}

/** An exact field has no safe change; an "any" field no unsafe one and no policy beyond its setter's. */
function casesOf(reg: IdReg, f: Field): ('safe' | 'unsafe')[] {
  if (f.policy === 'any') return [];
  if (f.policy === 'exact') return ['unsafe'];
  const o = ONLY[`${reg.name}.${f.name}`];
  return o ? [o] : ['safe', 'unsafe'];
}

const SPACE_SIZE = 192;
const MASK_BYTES = SPACE_SIZE * 8;
const GUARD = 0xa5;
const GUARD_BYTES = 64;

function sysregId(op1: number, crm: number, op2: number): bigint {
  return 0x6030_0000_0013_0000n | BigInt((3 << 14) | (op1 << 11) | (crm << 3) | op2);
}

/** KVM_ARM_FEATURE_ID_RANGE_IDX for op0 3, CRn 0. */
export function featureIdIndex(op1: number, crm: number, op2: number): number {
  const folded = (op1 & 3) === 3 ? 2 : op1 & 3;
  return (folded << 6) | ((crm & 7) << 3) | op2;
}

/** Calls the ioctl into a guarded buffer; returns the result and the buffer's bytes after the call. */
async function callMasks(
  ctx: CaseContext,
  vm: number,
  extra: { range?: bigint; reserved?: bigint[] } = {},
): Promise<{ r: Awaited<ReturnType<CaseContext['kvm']['call']>>; bytes: Uint8Array }> {
  const buf = await ctx.kvm.alloc(MASK_BYTES + GUARD_BYTES, {
    init: new Uint8Array(MASK_BYTES + GUARD_BYTES).fill(GUARD),
  });
  const r = await ctx.kvm.call(vm, 'KVM_ARM_GET_REG_WRITABLE_MASKS', {
    struct: {
      addr: { buf, length: MASK_BYTES + GUARD_BYTES },
      range: extra.range ?? 0n,
      ...(extra.reserved ? { reserved: extra.reserved } : {}),
    },
  });
  return { r, bytes: r.spans.addr ?? (await ctx.kvm.read(buf)) };
}

async function readMasks(ctx: CaseContext, vm: number): Promise<bigint[]> {
  const { r, bytes } = await callMasks(ctx, vm);
  assertOutcome(r, { ret: 0 }, 'KVM_ARM_GET_REG_WRITABLE_MASKS');
  return Array.from({ length: SPACE_SIZE }, (_, i) => readUint(bytes, i * 8, 8, ctx.kvm.endian));
}

function getId(ctx: CaseContext, vcpu: number, id: bigint): Promise<bigint> {
  return getReg64(ctx, vcpu, id, id.toString(16));
}

function widthOf(f: Field): number {
  return f.width ?? 4;
}

function fieldBits(f: Field): bigint {
  return ((1n << BigInt(widthOf(f))) - 1n) << BigInt(f.shift);
}

/** The field's value, as a signed number for signed fields. */
function fieldOf(value: bigint, f: Field): number {
  const raw = (value & fieldBits(f)) >> BigInt(f.shift);
  return Number(f.signed ? BigInt.asIntN(widthOf(f), raw) : raw);
}

function withField(value: bigint, f: Field, v: number): bigint {
  return (value & ~fieldBits(f)) | (BigInt.asUintN(widthOf(f), BigInt(v)) << BigInt(f.shift));
}

/** The range a field can hold: two's complement for signed fields. */
function rangeOf(f: Field): { lowest: number; highest: number } {
  const w = widthOf(f);
  return f.signed
    ? { lowest: -(2 ** (w - 1)), highest: 2 ** (w - 1) - 1 }
    : { lowest: 0, highest: 2 ** w - 1 };
}

/** A value the field's policy accepts other than the limit, or undefined when there is none. */
function safeValue(f: Field, limit: number): number | undefined {
  const { lowest, highest } = rangeOf(f);
  switch (f.policy) {
    case 'lower-safe':
      return limit - 1 >= Math.max(lowest, f.min ?? lowest) ? limit - 1 : undefined;
    case 'higher-safe':
      return limit < highest ? limit + 1 : undefined;
    case 'exact':
    case 'any':
      // An exact field has none; an "any" field is left to the outside-mask rule.
      return undefined;
  }
}

/**
 * A value the field's policy refuses, or undefined when every value is safe: for a lower-safe field with a
 * floor, the value just below the floor (which plain lower-safe would accept).
 */
function unsafeValue(f: Field, limit: number): number | undefined {
  const { lowest, highest } = rangeOf(f);
  switch (f.policy) {
    case 'lower-safe':
      if (f.min !== undefined && f.min > lowest) return f.min - 1;
      return limit < highest ? limit + 1 : undefined;
    case 'higher-safe':
      return limit > lowest ? limit - 1 : undefined;
    case 'exact':
      return limit < highest ? limit + 1 : limit - 1;
    case 'any':
      return undefined;
  }
}

interface FieldState {
  vm: number;
  vcpu: number;
  id: bigint;
  value: bigint;
  limit: number;
}

/** The host's value and mask for the field; not-applicable when the host does not make it writable. */
async function writableField(ctx: CaseContext, reg: IdReg, f: Field): Promise<FieldState> {
  const vm = await vmOf(ctx, 'vcpu-initialized');
  const vcpu = await vcpuOf(ctx);
  const id = sysregId(reg.op1, reg.crm, reg.op2);
  // The masks and the value are asked for together: one round trip where the channel is slow.
  const [masks, value] = await Promise.all([readMasks(ctx, vm), getId(ctx, vcpu, id)]);
  const mask = masks[featureIdIndex(reg.op1, reg.crm, reg.op2)] ?? 0n;
  const bits = fieldBits(f);
  if ((mask & bits) !== bits) ctx.notApplicable(`${reg.name}.${f.name} is not writable on this host`);
  ctx.note('value', `0x${value.toString(16)}`);
  return { vm, vcpu, id, value, limit: fieldOf(value, f) };
}

/** One case per field that has the `kind` of case (see ONLY). */
function perField(
  g: GenerateContext,
  kind: 'safe' | 'unsafe',
  body: (reg: IdReg, f: Field) => GeneratedCase['run'],
): GeneratedCase[] {
  return fieldRegisters(g).flatMap((reg) =>
    reg.fields
      .filter((f) => casesOf(reg, f).includes(kind))
      .map((f) => ({ params: { reg: reg.name, field: f.name }, run: body(reg, f) })),
  );
}

/** Writes a safe value and reads it back: limit - 1 (or + 1), and for a field with a floor the floor itself. */
const safeField: CaseGenerator = (g) => [
  ...perField(g, 'safe', (reg, f) => safeWrite(g, reg, f, (limit) => safeValue(f, limit))),
  ...fieldRegisters(g).flatMap((reg) =>
    reg.fields
      .filter((f) => f.min !== undefined && casesOf(reg, f).includes('safe'))
      .map((f) => ({
        params: { reg: reg.name, field: f.name, value: 'floor' },
        run: safeWrite(g, reg, f, (limit) => (f.min! < limit ? f.min : undefined)),
      })),
  ),
];

function safeWrite(
  g: GenerateContext,
  reg: IdReg,
  f: Field,
  pick: (limit: number) => number | undefined,
): GeneratedCase['run'] {
  return async (ctx) => {
    const s = await writableField(ctx, reg, f);
    const v = pick(s.limit);
    if (v === undefined)
      return ctx.notApplicable(`${f.policy} ${f.name} = ${s.limit} has no other safe value`);
    const wanted = withField(s.value, f, v);
    assertOutcome(
      await setReg64(ctx, s.vcpu, s.id, wanted),
      expectOf(g),
      `${reg.name}.${f.name} ${s.limit} -> ${v}`,
    );
    assertValue(await getId(ctx, s.vcpu, s.id), wanted, `${reg.name} read back`);
  };
}

const unsafeField: CaseGenerator = (g) =>
  perField(g, 'unsafe', (reg, f) => async (ctx) => {
    const s = await writableField(ctx, reg, f);
    const v = unsafeValue(f, s.limit);
    if (v === undefined) return ctx.notApplicable(`${f.policy} ${f.name} = ${s.limit} has no unsafe value`);
    const r = await setReg64(ctx, s.vcpu, s.id, withField(s.value, f, v));
    assertOutcome(r, expectOf(g), `${reg.name}.${f.name} ${s.limit} -> ${v} (${f.policy})`);
    assertValue(await getId(ctx, s.vcpu, s.id), s.value, `${reg.name} after the refused write`);
  });

/** For every catalogued ID register: flip the lowest and the highest bit outside the host's mask. */
const outsideMask: CaseGenerator = (g) =>
  idRegisters(g).flatMap((reg) =>
    (['lowest', 'highest'] as const).map((which) => ({
      params: { reg: reg.name, bit: which },
      run: async (ctx: CaseContext) => {
        const vm = await vmOf(ctx, 'vcpu-initialized');
        const vcpu = await vcpuOf(ctx);
        const mask = (await readMasks(ctx, vm))[featureIdIndex(reg.op1, reg.crm, reg.op2)] ?? 0n;
        const free = Array.from({ length: 64 }, (_, b) => b).filter((b) => ((mask >> BigInt(b)) & 1n) === 0n);
        const bit = which === 'lowest' ? free[0] : free[free.length - 1];
        if (bit === undefined) return ctx.notApplicable(`every bit of ${reg.name} is writable`);
        const id = sysregId(reg.op1, reg.crm, reg.op2);
        const before = await getId(ctx, vcpu, id);
        const r = await setReg64(ctx, vcpu, id, before ^ (1n << BigInt(bit)));
        assertOutcome(r, expectOf(g), `${reg.name} with bit ${bit} (outside the mask) flipped`);
        assertValue(await getId(ctx, vcpu, id), before, `${reg.name} after the refused write`);
      },
    })),
  );

/** The first field of each register the host makes writable and that has a safe change. */
async function firstSafeChange(
  ctx: CaseContext,
  reg: IdReg,
  policy?: FieldPolicy,
): Promise<{ f: Field; s: FieldState; v: number }> {
  const vm = await vmOf(ctx, 'vcpu-initialized');
  const vcpu = await vcpuOf(ctx);
  const mask = (await readMasks(ctx, vm))[featureIdIndex(reg.op1, reg.crm, reg.op2)] ?? 0n;
  const id = sysregId(reg.op1, reg.crm, reg.op2);
  const value = await getId(ctx, vcpu, id);
  for (const f of reg.fields) {
    if (policy && f.policy !== policy) continue;
    if ((mask & fieldBits(f)) !== fieldBits(f)) continue;
    const v = safeValue(f, fieldOf(value, f));
    if (v !== undefined) return { f, s: { vm, vcpu, id, value, limit: fieldOf(value, f) }, v };
  }
  return ctx.notApplicable(`no writable ${policy ?? ''} field of ${reg.name} has a safe change on this host`);
}

const perRegister = (
  g: GenerateContext,
  body: (reg: IdReg) => GeneratedCase['run'],
  params: Record<string, string> = {},
): GeneratedCase[] =>
  fieldRegisters(g)
    .filter((reg) => reg.fields.some((f) => casesOf(reg, f).includes('safe')))
    .map((reg) => ({
      params: { reg: reg.name, ...params },
      run: body(reg),
    }));

const raiseBack: CaseGenerator = (g) =>
  perRegister(g, (reg) => async (ctx) => {
    const { f, s, v } = await firstSafeChange(ctx, reg, 'lower-safe');
    const lowered = await setReg64(ctx, s.vcpu, s.id, withField(s.value, f, v));
    if (lowered.errno) throw new SetupError(`lowering ${reg.name}.${f.name} failed with ${lowered.errno}`);
    assertOutcome(
      await setReg64(ctx, s.vcpu, s.id, s.value),
      expectOf(g),
      `${reg.name}.${f.name} back up to ${s.limit}`,
    );
    assertValue(await getId(ctx, s.vcpu, s.id), s.value, `${reg.name} read back`);
  });

/** A second initialised vCPU in the same VM. */
async function secondVcpu(ctx: CaseContext, vm: number): Promise<number> {
  const vcpu = await ctx.kvm.setupHandle(vm, 'KVM_CREATE_VCPU', 1n);
  await initVcpu(ctx, vm, vcpu);
  return vcpu;
}

const busyAfterRun: CaseGenerator = (g) =>
  (['same-vcpu', 'other-vcpu'] as const).flatMap((via) =>
    perRegister(
      g,
      (reg) => async (ctx) => {
        const { f, s, v } = await firstSafeChange(ctx, reg);
        const writer = via === 'same-vcpu' ? s.vcpu : await secondVcpu(ctx, s.vm);
        await runToPowerOff(ctx, await setupGuest(ctx));
        // Read again: the first run may have changed the register (PFR0.GIC without an in-kernel GICv3).
        const current = await getId(ctx, writer, s.id);
        const r = await setReg64(ctx, writer, s.id, withField(current, f, v));
        assertOutcome(r, expectOf(g), `${reg.name}.${f.name} ${s.limit} -> ${v} after KVM_RUN`);
        assertValue(await getId(ctx, writer, s.id), current, `${reg.name} after the refused write`);
      },
      { via },
    ),
  );

/** The value read after KVM_RUN: the first run may change it (PFR0.GIC without an in-kernel GICv3). */
const sameAfterRun: CaseGenerator = (g) =>
  perRegister(g, (reg) => async (ctx) => {
    const vcpu = await vcpuOf(ctx);
    const id = sysregId(reg.op1, reg.crm, reg.op2);
    await runToPowerOff(ctx, await setupGuest(ctx));
    const value = await getId(ctx, vcpu, id);
    assertOutcome(
      await setReg64(ctx, vcpu, id, value),
      expectOf(g),
      `${reg.name} with its own value after KVM_RUN`,
    );
  });

const survivesInit: CaseGenerator = (g) =>
  perRegister(g, (reg) => async (ctx) => {
    const { f, s, v } = await firstSafeChange(ctx, reg);
    const wanted = withField(s.value, f, v);
    assertOutcome(await setReg64(ctx, s.vcpu, s.id, wanted), expectOf(g), `${reg.name}.${f.name} -> ${v}`);
    await initVcpu(ctx, s.vm, s.vcpu);
    assertValue(await getId(ctx, s.vcpu, s.id), wanted, `${reg.name} after KVM_ARM_VCPU_INIT`);
  });

const vmWide: CaseGenerator = (g) =>
  perRegister(g, (reg) => async (ctx) => {
    const { f, s, v } = await firstSafeChange(ctx, reg);
    const other = await secondVcpu(ctx, s.vm);
    const wanted = withField(s.value, f, v);
    assertOutcome(
      await setReg64(ctx, s.vcpu, s.id, wanted),
      expectOf(g),
      `${reg.name}.${f.name} -> ${v} via vCPU 0`,
    );
    assertValue(await getId(ctx, other, s.id), wanted, `${reg.name} read through vCPU 1`);
  });

/**
 * MPIDR_EL1 after KVM_ARM_VCPU_INIT: the vCPU id's bits 3..0 in Aff0, bits 11..4 in Aff1, bit 31 (RES1) set.
 * Ids 0, 1 and 7 are below every host's vCPU limit (8 when the host's GIC is a GICv2); 17, the first with
 * Aff1, is not applicable on a host whose limit (KVM_CAP_MAX_VCPU_ID on the VM) it reaches.
 */
const mpidrReset: CaseGenerator = () =>
  [0n, 1n, 7n, 17n].map((id) => ({
    params: { vcpu_id: String(id) },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx);
      if (id >= 8n) {
        const limit = await vcpuIdLimitOf(ctx, vm);
        if (id >= limit) return ctx.notApplicable(`the host's vCPU id limit is ${limit}`);
      }
      const vcpu = await ctx.kvm.setupHandle(vm, 'KVM_CREATE_VCPU', id);
      await initVcpu(ctx, vm, vcpu);
      const want = (1n << 31n) | (((id >> 4n) & 0xffn) << 8n) | (id & 0xfn);
      assertValue(await getId(ctx, vcpu, regId(ctx, 'MPIDR_EL1')), want, `MPIDR_EL1 of vCPU ${id}`);
    },
  }));

/** CLIDR_EL1 with its ICB field (bits 32:30) changed: valid wherever the value was (LoC, LoUIS and LoUU kept). */
const otherClidr = (clidr: bigint) => clidr ^ (1n << 30n);

/**
 * A value written to each register, then a second KVM_ARM_VCPU_INIT: the vCPU-scoped feature ID registers
 * keep it, ordinary state is reset: TPIDR_EL1, and CSSELR_EL1, which sits at CRn 0 like them but at op1 2,
 * outside the feature ID space.
 */
const vcpuScopedSurviveInit: CaseGenerator = () =>
  (
    [
      ['MPIDR_EL1', (v: bigint) => v | 0x3n, true],
      ['CLIDR_EL1', otherClidr, true],
      ['TPIDR_EL1', (v: bigint) => v ^ 0xffn, false],
      ['CSSELR_EL1', (v: bigint) => v ^ 0x1n, false],
    ] as const
  ).map(([name, change, kept]) => ({
    params: { reg: name },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx, 'vcpu-initialized');
      const vcpu = await vcpuOf(ctx);
      const id = regId(ctx, name);
      const reset = await getId(ctx, vcpu, id);
      const written = change(reset);
      assertOutcome(await setReg64(ctx, vcpu, id, written), { ret: 0 }, `KVM_SET_ONE_REG ${name}`);
      await initVcpu(ctx, vm, vcpu);
      const what = `${name} after a second KVM_ARM_VCPU_INIT`;
      assertValue(await getId(ctx, vcpu, id), kept ? written : reset, what);
    },
  }));

/** CLIDR_EL1 written through vCPU 0 leaves vCPU 1's as it was. */
const clidrPerVcpu: CaseGenerator = () => [
  {
    params: { via: 'vcpu-0' },
    run: async (ctx) => {
      const vm = await vmOf(ctx, 'vcpu-initialized');
      const vcpu = await vcpuOf(ctx);
      const id = regId(ctx, 'CLIDR_EL1');
      const other = await secondVcpu(ctx, vm);
      const theirs = await getId(ctx, other, id);
      const written = otherClidr(await getId(ctx, vcpu, id));
      assertOutcome(
        await setReg64(ctx, vcpu, id, written),
        { ret: 0 },
        'KVM_SET_ONE_REG CLIDR_EL1 via vCPU 0',
      );
      assertValue(await getId(ctx, vcpu, id), written, 'CLIDR_EL1 of vCPU 0');
      assertValue(await getId(ctx, other, id), theirs, 'CLIDR_EL1 of vCPU 1');
    },
  },
];

/** After KVM_RUN, CLIDR_EL1 still takes a new value (a VM-wide ID register refuses one: ARM_IDREG-ERR-003). */
const clidrAfterRun: CaseGenerator = () => [
  {
    params: { when: 'after-run' },
    run: async (ctx) => {
      const g = await setupGuest(ctx);
      const id = regId(ctx, 'CLIDR_EL1');
      const written = otherClidr(await getId(ctx, g.vcpu, id));
      await runToPowerOff(ctx, g);
      assertOutcome(
        await setReg64(ctx, g.vcpu, id, written),
        { ret: 0 },
        'KVM_SET_ONE_REG CLIDR_EL1 after KVM_RUN',
      );
      assertValue(await getId(ctx, g.vcpu, id), written, 'CLIDR_EL1 read back');
    },
  },
];

/** CTR_EL0.IDC (bit 28): no data cache clean to the point of unification is needed for coherence. */
const CTR_IDC = 1n << 28n;
/** CLIDR_EL1's LoUIS (23:21), LoC (26:24) and LoUU (29:27). */
const CLIDR_LOUIS = 0x7n << 21n;
const CLIDR_LOC = 0x7n << 24n;
const CLIDR_LOUU = 0x7n << 27n;

/**
 * A CLIDR_EL1 value that implies IDC (no cache level to clean to), written with the VM's CTR_EL0.IDC kept or
 * lowered to 0 first: the setter looks at the host's CTR_EL0, so both are accepted where the host has IDC.
 */
const clidrImpliesIdc: CaseGenerator = () =>
  (['1', '0'] as const).flatMap((idc) =>
    (
      [
        ['loc-0', CLIDR_LOC],
        ['louis-louu-0', CLIDR_LOUIS | CLIDR_LOUU],
      ] as const
    ).map(([levels, cleared]) => ({
      params: { 'ctr-idc': idc, clidr: levels },
      run: async (ctx: CaseContext) => {
        const vcpu = await vcpuOf(ctx);
        const ctr = regId(ctx, 'CTR_EL0');
        const held = await getId(ctx, vcpu, ctr);
        if ((held & CTR_IDC) === 0n) return ctx.notApplicable("the host's CTR_EL0 has no IDC to lower");
        if (idc === '0') {
          const lowered = held & ~CTR_IDC;
          assertOutcome(
            await setReg64(ctx, vcpu, ctr, lowered),
            { ret: 0 },
            'KVM_SET_ONE_REG CTR_EL0.IDC = 0',
          );
          assertValue(await getId(ctx, vcpu, ctr), lowered, 'CTR_EL0 read back');
        }
        const id = regId(ctx, 'CLIDR_EL1');
        const before = await getId(ctx, vcpu, id);
        const written = before & ~cleared;
        const what = `KVM_SET_ONE_REG CLIDR_EL1 = 0x${written.toString(16)} (${levels}) with the VM's CTR_EL0.IDC ${idc}`;
        assertOutcome(await setReg64(ctx, vcpu, id, written), { ret: 0 }, what);
        assertValue(await getId(ctx, vcpu, id), written, 'CLIDR_EL1 read back');
      },
    })),
  );

/**
 * ID_AA64DFR0_EL1.PMUVer (bits 11:8) written as 0xf, IMPLEMENTATION DEFINED: taken as 0 before the checks.
 * The rewrite is that register's own: the same nibble of ID_AA64ISAR0_EL1 (SHA1) at 0xf is refused.
 */
const pmuVerImpDef: CaseGenerator = () =>
  (['ID_AA64DFR0_EL1', 'ID_AA64ISAR0_EL1'] as const).map((name) => ({
    params: { reg: name, 'bits-11-8': '0xf' },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx);
      const id = regId(ctx, name);
      const value = await getId(ctx, vcpu, id);
      const nibble = (value >> 8n) & 0xfn;
      const dfr0 = name === 'ID_AA64DFR0_EL1';
      if (dfr0 && nibble !== 0n) return ctx.notApplicable(`the vCPU has a PMU (PMUVer ${nibble})`);
      const r = await setReg64(ctx, vcpu, id, value | (0xfn << 8n));
      assertOutcome(
        r,
        dfr0 ? { ret: 0 } : { errno: 'EINVAL' },
        `KVM_SET_ONE_REG ${name} with bits 11:8 at 0xf`,
      );
      assertValue(await getId(ctx, vcpu, id), value, `${name} read back`);
    },
  }));

/** After the VM's first KVM_RUN, with no in-kernel GIC created: ID_AA64PFR0_EL1.GIC (bits 27:24) reads 0. */
const gicHiddenAfterRun: CaseGenerator = () => [
  {
    params: { irqchip: 'none' },
    run: async (ctx) => {
      const g = await setupGuest(ctx);
      const id = regId(ctx, 'ID_AA64PFR0_EL1');
      ctx.note('GIC before KVM_RUN', String(((await getId(ctx, g.vcpu, id)) >> 24n) & 0xfn));
      await runToPowerOff(ctx, g);
      assertValue(((await getId(ctx, g.vcpu, id)) >> 24n) & 0xfn, 0n, 'ID_AA64PFR0_EL1.GIC after KVM_RUN');
    },
  },
];

const masksLayout: CaseGenerator = () => [
  {
    params: { array: 'guarded' },
    run: async (ctx) => {
      const vm = await vmOf(ctx);
      const { r, bytes } = await callMasks(ctx, vm);
      assertOutcome(r, { ret: 0 }, 'KVM_ARM_GET_REG_WRITABLE_MASKS');
      assertBytes(
        bytes.subarray(MASK_BYTES),
        new Uint8Array(GUARD_BYTES).fill(GUARD),
        'bytes after the 192 masks',
      );
      const untouched = Array.from({ length: SPACE_SIZE }, (_, i) => i).filter((i) =>
        bytes.subarray(i * 8, i * 8 + 8).every((b) => b === GUARD),
      );
      assertTrue(untouched.length === 0, `mask entries left as they were: ${untouched.join(', ')}`);
    },
  },
];

const masksNameRegisters: CaseGenerator = () => [
  {
    params: { entries: '192' },
    run: async (ctx) => {
      const vm = await vmOf(ctx, 'vcpu-initialized');
      const vcpu = await vcpuOf(ctx);
      const masks = await readMasks(ctx, vm);
      let nonZero = 0;
      for (let i = 0; i < SPACE_SIZE; i++) {
        if (masks[i] === 0n) continue;
        nonZero++;
        const op1 = [0, 1, 3][i >> 6] ?? 0;
        await getId(ctx, vcpu, sysregId(op1, (i >> 3) & 7, i & 7));
      }
      assertValue(masks[featureIdIndex(0, 0, 5)] ?? 0n, 0n, 'mask of MPIDR_EL1 (index 5)');
      ctx.note('non-zero masks', String(nonZero));
    },
  },
];

const masksStatic: CaseGenerator = () => [
  {
    params: { when: 'no-vcpu+initialized+after-run' },
    run: async (ctx) => {
      const vm = await vmOf(ctx);
      const before = await readMasks(ctx, vm);
      const guest = await setupGuest(ctx);
      const initialized = await readMasks(ctx, vm);
      await runToPowerOff(ctx, guest);
      const after = await readMasks(ctx, vm);
      for (let i = 0; i < SPACE_SIZE; i++) {
        assertValue(initialized[i] ?? 0n, before[i] ?? 0n, `mask ${i} once a vCPU exists`);
        assertValue(after[i] ?? 0n, before[i] ?? 0n, `mask ${i} after KVM_RUN`);
      }
    },
  },
];

/** Each named register's mask is at its KVM_ARM_FEATURE_ID_IDX_* constant and is non-zero. */
const masksIndex: CaseGenerator = (g) =>
  String(g.ref.rule.deriveArgs?.registers ?? '')
    .split(',')
    .map((name) => ({
      params: { reg: name },
      run: async (ctx: CaseContext) => {
        const index = Number(ctx.spec.constant(`KVM_ARM_FEATURE_ID_IDX_${name}`, 'arm64'));
        const vm = await vmOf(ctx);
        const mask = (await readMasks(ctx, vm))[index] ?? 0n;
        assertTrue(mask !== 0n, `mask ${index} (${name}) is non-zero`);
        ctx.note('mask', `0x${mask.toString(16)}`);
      },
    }));

function refused(
  g: GenerateContext,
  params: Record<string, string>,
  extra: { range?: bigint; reserved?: bigint[] },
): GeneratedCase {
  return {
    params,
    run: async (ctx) => {
      const vm = await vmOf(ctx);
      const { r, bytes } = await callMasks(ctx, vm, extra);
      assertOutcome(
        r,
        expectOf(g),
        `KVM_ARM_GET_REG_WRITABLE_MASKS ${Object.entries(params)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
      );
      assertBytes(bytes, new Uint8Array(MASK_BYTES + GUARD_BYTES).fill(GUARD), 'the mask array');
    },
  };
}

const masksBadRange: CaseGenerator = (g) =>
  [1n, 2n, 0x8000_0000n].map((range) => refused(g, { range: `0x${range.toString(16)}` }, { range }));

const masksReserved: CaseGenerator = (g) =>
  Array.from({ length: 13 }, (_, i) => {
    const reserved = new Array<bigint>(13).fill(0n);
    reserved[i] = 1n;
    return refused(g, { reserved: String(i) }, { reserved });
  });

const masksFault: CaseGenerator = (g) =>
  (['null', 'invalid', 'readonly'] as const).map((addr) => ({
    params: { addr },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx);
      const target = addr === 'readonly' ? { buffer: { size: MASK_BYTES, readonly: true } } : addr;
      const r = await ctx.kvm.call(vm, 'KVM_ARM_GET_REG_WRITABLE_MASKS', {
        struct: { addr: target, range: 0n },
      });
      assertOutcome(r, expectOf(g), `KVM_ARM_GET_REG_WRITABLE_MASKS into a ${addr} array`);
    },
  }));

export const arm64IdRegs: SuiteFamily = {
  generators: {
    'arm64-idregs.masks-layout': masksLayout,
    'arm64-idregs.masks-name-registers': masksNameRegisters,
    'arm64-idregs.masks-static': masksStatic,
    'arm64-idregs.masks-index': masksIndex,
    'arm64-idregs.masks-bad-range': masksBadRange,
    'arm64-idregs.masks-reserved': masksReserved,
    'arm64-idregs.masks-fault': masksFault,
    'arm64-idregs.safe-field': safeField,
    'arm64-idregs.unsafe-field': unsafeField,
    'arm64-idregs.outside-mask': outsideMask,
    'arm64-idregs.raise-back': raiseBack,
    'arm64-idregs.busy-after-run': busyAfterRun,
    'arm64-idregs.same-after-run': sameAfterRun,
    'arm64-idregs.survives-init': survivesInit,
    'arm64-idregs.vm-wide': vmWide,
    'arm64-idregs.mpidr-reset': mpidrReset,
    'arm64-idregs.vcpu-scoped-survive-init': vcpuScopedSurviveInit,
    'arm64-idregs.clidr-per-vcpu': clidrPerVcpu,
    'arm64-idregs.clidr-after-run': clidrAfterRun,
    'arm64-idregs.clidr-implies-idc': clidrImpliesIdc,
    'arm64-idregs.pmuver-imp-def': pmuVerImpDef,
    'arm64-idregs.gic-hidden-after-run': gicHiddenAfterRun,
  },
};
