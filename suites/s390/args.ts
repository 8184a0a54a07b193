import { assertOutcome, assertTrue, expectOf } from '../../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator, GenerateContext } from '../../harness/plan/types.ts';
import type { StructArg } from '../../harness/session.ts';
import {
  buffer,
  flagsOf,
  guest,
  memop,
  pattern,
  setKeys,
  type FlagName,
  type Guest,
  type MemOpArgs,
  type OpName,
} from './guest.ts';
import { cases, hex, inRevision, isWrite, memOps, VCPU_OPS, VM_OPS } from './plan.ts';

const SIZE = 8;

/** A call that would succeed but for the parameter a case varies: gaddr 0, 8 bytes, a real buffer. */
async function validArgs(ctx: CaseContext, g: Guest, op: OpName): Promise<MemOpArgs> {
  const buf = { buf: await buffer(ctx, 65536) };
  const extra: StructArg = op === 'ABSOLUTE_CMPXCHG' ? { old_addr: { buf: await buffer(ctx, 16) } } : {};
  return { op, gaddr: 0n, size: SIZE, buf, extra };
}

/** Runs `change(valid args)` for op and checks it against the rule's outcome. */
function variant(
  g: GenerateContext,
  ops: readonly OpName[],
  values: readonly (string | number | bigint)[],
  change: (a: MemOpArgs, value: never, ctx: CaseContext) => MemOpArgs,
  name = 'value',
) {
  const items = ops.flatMap((op) => values.map((value) => ({ op, value })));
  return cases(
    items,
    ({ op, value }) => ({ op, [name]: typeof value === 'string' ? value : hex(value) }),
    async (ctx, { op, value }) => {
      const gu = await guest(ctx);
      const r = await memop(ctx, gu, change(await validArgs(ctx, gu, op), value as never, ctx));
      assertOutcome(r, expectOf(g), `KVM_S390_MEM_OP ${op} with ${name} ${String(value)}`);
    },
  );
}

const sizeZero: CaseGenerator = (g) => variant(g, memOps(g), [0], (a) => ({ ...a, size: 0 }), 'size');

const sizeTooBig: CaseGenerator = (g) =>
  variant(g, memOps(g), [65537, 0x80000, 0xffffffff], (a, size: number) => ({ ...a, size }), 'size');

const sizeBounds: CaseGenerator = (g) =>
  variant(g, [...VCPU_OPS, ...VM_OPS], [1, 65536], (a, size: number) => ({ ...a, size }), 'size');

/** Flag bits an op does not support in this revision. */
function unsupportedBits(g: GenerateContext, op: OpName, candidates: number[]): number[] {
  const supported = new Set<number>(
    op.startsWith('LOGICAL') ? [0, 1, 2] : op === 'ABSOLUTE_CMPXCHG' ? [2] : [0, 2],
  );
  if (op === 'ABSOLUTE_WRITE' && inRevision(g, 'KVM_S390_MEMOP_F_CMPXCHG')) supported.add(3);
  return candidates.filter((b) => !supported.has(b));
}

const unknownFlags: CaseGenerator = (g) => {
  const every = Array.from({ length: 61 }, (_, i) => i + 3);
  return memOps(g).flatMap((op) =>
    variant(
      g,
      [op],
      unsupportedBits(g, op, op === 'LOGICAL_READ' ? every : [3, 4, 8, 31, 32, 63]).map(String),
      (a, bit: string) => ({ ...a, flags: 1n << BigInt(bit) }),
      'bit',
    ),
  );
};

const flagsBeforeSize: CaseGenerator = (g) =>
  variant(g, memOps(g), ['bit63'], (a) => ({ ...a, flags: 1n << 63n, size: 65537 }), 'flags');

const sizeBeforeKey: CaseGenerator = (g) =>
  variant(
    g,
    memOps(g),
    ['key16'],
    (a, _v, ctx) => ({ ...a, size: 65537, key: 16, flags: flagsOf(ctx, ['SKEY_PROTECTION']) }),
    'with',
  );

const keyRange: CaseGenerator = (g) =>
  variant(
    g,
    memOps(g),
    [16, 17, 0x80, 0xff],
    (a, key: number, ctx) => ({ ...a, key, flags: flagsOf(ctx, ['SKEY_PROTECTION']) }),
    'key',
  );

const keyValid: CaseGenerator = (g) =>
  variant(
    g,
    ['LOGICAL_READ', 'ABSOLUTE_READ'],
    Array.from({ length: 16 }, (_, k) => k),
    (a, key: number, ctx) => ({ ...a, key, flags: flagsOf(ctx, ['SKEY_PROTECTION']) }),
    'key',
  );

/** Without F_SKEY_PROTECTION a key field that would be refused or mismatch has no effect on a store. */
const keyIgnored: CaseGenerator = (g) =>
  cases(
    (['LOGICAL_WRITE', 'ABSOLUTE_WRITE'] as const).flatMap((op) => [2, 16, 0xff].map((key) => ({ op, key }))),
    ({ op, key }) => ({ op, key: hex(key) }),
    async (ctx, { op, key }) => {
      const gu = await guest(ctx);
      await setKeys(ctx, gu, 0, [0x18]);
      const r = await memop(ctx, gu, { ...(await validArgs(ctx, gu, op)), key });
      assertOutcome(r, expectOf(g), `${op} to storage key 0x18 with key field ${key} and no SKEY flag`);
    },
  );

const arRange: CaseGenerator = (g) => [
  ...variant(g, VCPU_OPS, [16, 17, 0x80, 0xff], (a, ar: number) => ({ ...a, ar }), 'ar'),
  ...variant(
    g,
    VCPU_OPS,
    ['16+CHECK_ONLY'],
    (a, _v, ctx) => ({ ...a, ar: 16, buf: 'null', flags: flagsOf(ctx, ['CHECK_ONLY']) }),
    'ar',
  ),
];

const arValid: CaseGenerator = (g) =>
  variant(
    g,
    ['LOGICAL_READ'],
    Array.from({ length: 16 }, (_, ar) => ar),
    (a, ar: number) => ({ ...a, ar }),
    'ar',
  );

const arIgnoredVm: CaseGenerator = (g) =>
  variant(g, VM_OPS, [16, 0xff], (a, ar: number) => ({ ...a, ar }), 'ar');

/** Op values each fd refuses: the other fd's ops, and numbers no op has. */
const opDispatch: CaseGenerator = (g) => {
  const vcpuBad = [4, 5, 6, 7, 8, 0xff, 0xffffffff];
  const vmBad = [0, 1, 2, 3, 7, 0xffffffff, ...(inRevision(g, 'KVM_S390_MEMOP_ABSOLUTE_CMPXCHG') ? [] : [6])];
  const items = [
    ...vcpuBad.map((op) => ({ fd: 'vcpu' as const, op })),
    ...vmBad.map((op) => ({ fd: 'vm' as const, op })),
  ];
  return cases(
    items,
    ({ fd, op }) => ({ fd, op: hex(op) }),
    async (ctx, { fd, op }) => {
      const gu = await guest(ctx);
      const args = { ...(await validArgs(ctx, gu, 'LOGICAL_READ')), op: BigInt(op) };
      const r = await memop(ctx, gu, args, fd === 'vm' ? gu.vm : gu.vcpu);
      assertOutcome(r, expectOf(g), `op ${hex(op)} on the ${fd} fd`);
    },
  );
};

function combos(names: readonly FlagName[]): FlagName[][] {
  return Array.from({ length: 1 << names.length }, (_, m) => names.filter((_, i) => (m >> i) & 1));
}

const comboName = (c: FlagName[]) => (c.length ? c.join('+') : 'none');

function flagCombos(g: GenerateContext, ops: readonly OpName[], sets: FlagName[][]) {
  return variant(
    g,
    ops,
    sets.map(comboName),
    (a, name: string, ctx) => ({
      ...a,
      flags: flagsOf(ctx, name === 'none' ? [] : (name.split('+') as FlagName[])),
    }),
    'flags',
  );
}

const vcpuFlagCombos: CaseGenerator = (g) =>
  flagCombos(g, VCPU_OPS, combos(['CHECK_ONLY', 'INJECT_EXCEPTION', 'SKEY_PROTECTION']));

const vmFlagCombos: CaseGenerator = (g) => flagCombos(g, VM_OPS, combos(['CHECK_ONLY', 'SKEY_PROTECTION']));

const vmInject: CaseGenerator = (g) =>
  flagCombos(
    g,
    VM_OPS,
    combos(['CHECK_ONLY', 'SKEY_PROTECTION']).map((c): FlagName[] => ['INJECT_EXCEPTION', ...c]),
  );

const nullBuf: CaseGenerator = (g) =>
  variant(g, [...VCPU_OPS, ...VM_OPS], ['null'], (a) => ({ ...a, buf: 'null' }), 'buf');

const nullBufCheckOnly: CaseGenerator = (g) =>
  variant(
    g,
    [...VCPU_OPS, ...VM_OPS],
    ['null'],
    (a, _v, ctx) => ({ ...a, buf: 'null', flags: flagsOf(ctx, ['CHECK_ONLY']) }),
    'buf',
  );

/** Junk in every byte the op does not use: pad1 and old_addr upstream, old[] in the proposal. */
function junk(g: GenerateContext): StructArg {
  const word = 0x5a5a_5a5a_5a5a_5a5an;
  return inRevision(g, 'KVM_S390_MEMOP_F_CMPXCHG')
    ? { old: [word, word] }
    : { pad1: Array.from({ length: 6 }, () => 0x5an), old_addr: word };
}

const reservedIgnored: CaseGenerator = (g) =>
  cases(
    [...VCPU_OPS, ...VM_OPS],
    (op) => ({ op, reserved: 'junk' }),
    async (ctx, op) => {
      const gu = await guest(ctx);
      const data = pattern(SIZE, 3);
      const src = await buffer(ctx, SIZE, data);
      const args = { ...(await validArgs(ctx, gu, op)), extra: junk(g), buf: { buf: src } };
      const r = await memop(ctx, gu, args);
      assertOutcome(r, expectOf(g), `${op} with junk in the unused bytes`);
      const ram = await ctx.kvm.read(gu.ram, 0, SIZE);
      if (isWrite(op)) assertTrue(Buffer.from(ram).equals(Buffer.from(data)), `${op} wrote its data`);
    },
  );

/** Which comes first, the guest access or the user copy, with an unbacked address and an invalid buf. */
const copyOrder: CaseGenerator = () => {
  const items: { op: OpName; at: 'unbacked' | 'backed'; ret: number | 'EFAULT' }[] = [
    { op: 'LOGICAL_READ', at: 'unbacked', ret: 5 },
    { op: 'LOGICAL_READ', at: 'backed', ret: 'EFAULT' },
    { op: 'LOGICAL_WRITE', at: 'unbacked', ret: 'EFAULT' },
    { op: 'ABSOLUTE_READ', at: 'unbacked', ret: 5 },
    { op: 'ABSOLUTE_WRITE', at: 'unbacked', ret: 5 },
    { op: 'ABSOLUTE_WRITE', at: 'backed', ret: 'EFAULT' },
  ];
  return cases(
    items,
    ({ op, at }) => ({ op, gaddr: at, buf: 'invalid' }),
    async (ctx, { op, at, ret }) => {
      const gu = await guest(ctx);
      const gaddr = at === 'backed' ? 0n : 0x20_0000n;
      const r = await memop(ctx, gu, { op, gaddr, size: SIZE, buf: 'invalid' });
      assertOutcome(
        r,
        typeof ret === 'number' ? { ret } : { errno: ret },
        `${op} at ${at} ${hex(gaddr)} with an invalid buf`,
      );
    },
  );
};

export const argGenerators: Record<string, CaseGenerator> = {
  'size-zero': sizeZero,
  'size-too-big': sizeTooBig,
  'size-bounds': sizeBounds,
  'unknown-flags': unknownFlags,
  'flags-before-size': flagsBeforeSize,
  'size-before-key': sizeBeforeKey,
  'key-range': keyRange,
  'key-valid': keyValid,
  'key-ignored': keyIgnored,
  'ar-range': arRange,
  'ar-valid': arValid,
  'ar-ignored-vm': arIgnoredVm,
  'op-dispatch': opDispatch,
  'vcpu-flag-combos': vcpuFlagCombos,
  'vm-flag-combos': vmFlagCombos,
  'vm-inject': vmInject,
  'null-buf': nullBuf,
  'null-buf-check-only': nullBufCheckOnly,
  'reserved-ignored': reservedIgnored,
  'copy-order': copyOrder,
};
