import { assertBytes, assertOutcome, expectOf } from '../../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator, GeneratedCase } from '../../harness/plan/types.ts';
import { memslot } from '../fixtures.ts';
import type { CallResult } from '../../harness/session.ts';
import {
  buffer,
  DIAG_501,
  enterPsw,
  flagsOf,
  guest,
  memop,
  MiB,
  PAGE,
  pattern,
  s390,
  setKeys,
  type Guest,
  type OpName,
} from './guest.ts';
import { cases, hex } from './plan.ts';

type Path = 'vcpu' | 'vm';
const opFor = (path: Path, write: boolean): OpName =>
  path === 'vcpu' ? (write ? 'LOGICAL_WRITE' : 'LOGICAL_READ') : write ? 'ABSOLUTE_WRITE' : 'ABSOLUTE_READ';

/** Writes `data` at gaddr through a path; returns the call's result. */
export async function write(
  ctx: CaseContext,
  g: Guest,
  path: Path,
  gaddr: bigint,
  data: Uint8Array,
  flags = 0n,
  key = 0,
) {
  const buf = await buffer(ctx, data.length, data);
  return memop(ctx, g, { op: opFor(path, true), gaddr, size: data.length, buf: { buf }, flags, key });
}

/** Reads `size` bytes at gaddr through a path; the bytes are in r.spans.buf. */
export async function read(
  ctx: CaseContext,
  g: Guest,
  path: Path,
  gaddr: bigint,
  size: number,
  flags = 0n,
  key = 0,
) {
  const buf = await buffer(ctx, size);
  return memop(ctx, g, { op: opFor(path, false), gaddr, size, buf: { buf }, flags, key });
}

export const readBytes = (r: CallResult) => r.spans.buf ?? new Uint8Array(0);

/**
 * Two adjacent memslots, the first backed by user memory that runs on past its end, created in either
 * order: a read across the boundary takes each page from the slot that holds it.
 */
function twoSlots(path: Path, upperFirst: boolean): GeneratedCase {
  return {
    params: { slots: '2', created: upperFirst ? 'upper-first' : 'lower-first', read: path },
    run: async (ctx) => {
      const fds = await ctx.fixture('vcpu');
      if (fds.vm === undefined || fds.vcpu === undefined) throw new Error('fixture vcpu opened no vCPU');
      const ram = await ctx.kvm.alloc(2 * MiB, { alignment: MiB });
      const next = await ctx.kvm.alloc(MiB, { alignment: MiB });
      const lower = memslot(0, 0n, BigInt(MiB), ram);
      const upper = memslot(1, BigInt(MiB), BigInt(MiB), next);
      for (const slot of upperFirst ? [upper, lower] : [lower, upper])
        await ctx.kvm.setup(fds.vm, 'KVM_SET_USER_MEMORY_REGION', slot);
      const mine = pattern(16, 8);
      const theirs = pattern(8, 9);
      await ctx.kvm.write(ram, mine, MiB - 8);
      await ctx.kvm.write(next, theirs);
      const g = { system: fds.system, vm: fds.vm, vcpu: fds.vcpu, ram, ramSize: MiB };
      const r = await read(ctx, g, path, BigInt(MiB - 8), 16);
      assertOutcome(r, { ret: 0 }, `${path} read across the boundary of slots 0 and 1`);
      assertBytes(
        readBytes(r),
        new Uint8Array([...mine.subarray(0, 8), ...theirs]),
        'the end of slot 0, then slot 1',
      );
    },
  };
}

const roundtrip: CaseGenerator = (g) => {
  const items = [1, 7, 4096, 4097, 65536].flatMap((size) =>
    (['vcpu', 'vm'] as const).flatMap((by) => (['vcpu', 'vm'] as const).map((back) => ({ size, by, back }))),
  );
  return [
    ...cases(
      items,
      ({ size, by, back }) => ({ size: String(size), write: by, read: back }),
      async (ctx, { size, by, back }) => {
        const gu = await guest(ctx);
        const gaddr = 0x1_2345n;
        const data = pattern(size, size);
        assertOutcome(await write(ctx, gu, by, gaddr, data), expectOf(g), `${by} write of ${size} bytes`);
        const r = await read(ctx, gu, back, gaddr, size);
        assertOutcome(r, expectOf(g), `${back} read of ${size} bytes`);
        assertBytes(readBytes(r), data, `${back} read back what the ${by} path wrote`);
        assertBytes(
          await ctx.kvm.read(gu.ram, Number(gaddr), size),
          data,
          'the memslot holds what was written',
        );
      },
    ),
    ...(['vcpu', 'vm'] as const).flatMap((path) => [twoSlots(path, false), twoSlots(path, true)]),
  ];
};

const ACCESSES: { op: 'read' | 'write'; check: boolean }[] = [
  { op: 'read', check: false },
  { op: 'write', check: false },
  { op: 'read', check: true },
  { op: 'write', check: true },
];
const accessName = (a: { op: string; check: boolean }) => (a.check ? `check-${a.op}` : a.op);

async function access(
  ctx: CaseContext,
  g: Guest,
  path: Path,
  a: { op: string; check: boolean },
  gaddr: bigint,
  size: number,
) {
  const flags = a.check ? flagsOf(ctx, ['CHECK_ONLY']) : 0n;
  return a.op === 'write'
    ? write(ctx, g, path, gaddr, pattern(size), flags)
    : read(ctx, g, path, gaddr, size, flags);
}

const outside: CaseGenerator = (g) => {
  const items = [
    ...[0x10_0000n, 0x20_0000n, 0xff_f000n].map((gaddr) => ({ path: 'vcpu' as const, gaddr })),
    ...[0x10_0000n, 0x100_0000n, 0xffff_ffff_ffff_f000n].map((gaddr) => ({ path: 'vm' as const, gaddr })),
  ].flatMap((x) => ACCESSES.map((a) => ({ ...x, a })));
  return cases(
    items,
    ({ path, gaddr, a }) => ({ path, access: accessName(a), gaddr: hex(gaddr) }),
    async (ctx, { path, gaddr, a }) => {
      const gu = await guest(ctx);
      assertOutcome(
        await access(ctx, gu, path, a, gaddr, 8),
        expectOf(g),
        `${path} ${accessName(a)} at ${hex(gaddr)}`,
      );
    },
  );
};

/** Two pages starting at the last page of RAM: the second one is unbacked. */
const crossingEnd: CaseGenerator = (g) =>
  cases(
    (['vcpu', 'vm'] as const).flatMap((path) => (['read', 'write'] as const).map((op) => ({ path, op }))),
    ({ path, op }) => ({ path, op }),
    async (ctx, { path, op }) => {
      const gu = await guest(ctx);
      const gaddr = BigInt(MiB - PAGE);
      const data = pattern(2 * PAGE, 5);
      if (op === 'read') {
        // The backed page holds data, so a read that copied it out would show.
        await ctx.kvm.write(gu.ram, data.subarray(0, PAGE), MiB - PAGE);
        const r = await read(ctx, gu, path, gaddr, 2 * PAGE);
        assertOutcome(r, expectOf(g), `${path} read across the end of RAM`);
        assertBytes(readBytes(r), new Uint8Array(2 * PAGE), 'a failed read leaves buf untouched');
        return;
      }
      assertOutcome(
        await write(ctx, gu, path, gaddr, data),
        expectOf(g),
        `${path} write across the end of RAM`,
      );
      // A VM absolute write stores page by page; a vCPU logical write translates all pages first.
      const expected = path === 'vm' ? data.subarray(0, PAGE) : new Uint8Array(PAGE);
      assertBytes(
        await ctx.kvm.read(gu.ram, MiB - PAGE, PAGE),
        expected,
        'the last backed page after the write',
      );
    },
  );

/** A fresh vCPU addresses 24 bits: its logical addresses wrap at 16 MiB, the VM's absolute ones do not. */
const amode24: CaseGenerator = () =>
  cases(
    [
      { name: 'logical-16MiB+x', path: 'vcpu' as const, gaddr: 0x100_2345n, alias: 0x2345 },
      { name: 'logical-high-bits', path: 'vcpu' as const, gaddr: 0xffff_ffff_ff00_2345n, alias: 0x2345 },
      { name: 'absolute-16MiB+x', path: 'vm' as const, gaddr: 0x100_2345n, alias: -1 },
      { name: 'logical-wrap', path: 'vcpu' as const, gaddr: 0xff_fffen, alias: 0xff_fffe },
    ],
    ({ name }) => ({ address: name }),
    async (ctx, { path, gaddr, alias }) => {
      const wrapCase = alias === 0xff_fffe;
      const gu = await guest(ctx, wrapCase ? 16 * MiB : MiB);
      const data = pattern(4, 9);
      const r = await write(ctx, gu, path, gaddr, data);
      if (alias < 0) return assertOutcome(r, { ret: 5 }, `VM absolute write at ${hex(gaddr)}`);
      assertOutcome(r, { ret: 0 }, `vCPU logical write at ${hex(gaddr)} in 24-bit mode`);
      if (wrapCase) {
        assertBytes(await ctx.kvm.read(gu.ram, alias, 2), data.subarray(0, 2), 'the bytes below 16 MiB');
        assertBytes(await ctx.kvm.read(gu.ram, 0, 2), data.subarray(2), 'the bytes wrapped to absolute 0');
      } else assertBytes(await ctx.kvm.read(gu.ram, alias, 4), data, `the bytes at ${hex(alias)}`);
    },
  );

/** 31-bit mode (PSW BA without EA): bit 0 of a 32-bit logical address is dropped, bits up to 2 GiB stay. */
const amode31: CaseGenerator = () =>
  cases(
    [
      { name: 'bit-0-dropped', gaddr: 0x8000_2345n, ret: 0 },
      { name: 'above-16MiB', gaddr: 0x0100_2345n, ret: 5 },
    ],
    ({ name }) => ({ address: name }),
    async (ctx, c) => {
      const gu = await guest(ctx);
      await ctx.kvm.write(gu.ram, DIAG_501, PAGE);
      await enterPsw(ctx, gu, s390(ctx, 'S390_PSW_MASK_BA'), BigInt(PAGE));
      const data = pattern(4, 10);
      const r = await write(ctx, gu, 'vcpu', c.gaddr, data);
      assertOutcome(r, { ret: c.ret }, `31-bit logical write at ${hex(c.gaddr)}`);
      if (c.ret === 0) assertBytes(await ctx.kvm.read(gu.ram, 0x2345, 4), data, 'the bytes at 0x2345');
    },
  );

interface Scenario {
  name: string;
  gaddr: bigint;
  size: number;
  /** Storage keys to set from frame 0x10 on, and the access key. */
  keys?: number[];
  key?: number;
}

const SCENARIOS: Scenario[] = [
  { name: 'inside', gaddr: 0x1_0000n, size: 64 },
  { name: 'two-pages', gaddr: 0x1_0ff0n, size: 32 },
  { name: 'unbacked', gaddr: 0x20_0000n, size: 8 },
  { name: 'crossing-end', gaddr: BigInt(MiB - 8), size: 16 },
  { name: 'key-match', gaddr: 0x1_0000n, size: 8, keys: [0x30], key: 3 },
  { name: 'key-mismatch', gaddr: 0x1_0000n, size: 8, keys: [0x30], key: 4 },
  { name: 'fetch-protected', gaddr: 0x1_0000n, size: 8, keys: [0x38], key: 4 },
  { name: 'second-page-key', gaddr: 0x1_0ff8n, size: 16, keys: [0x40, 0x30], key: 4 },
];

/** CHECK_ONLY first, then the real access: same result, and the check changed nothing. */
const checkOnlyAgrees: CaseGenerator = () => {
  // A VM CHECK_ONLY with key 0 looks at the start address only (KEY-006): not comparable past the end.
  const items = SCENARIOS.flatMap((s) =>
    (['vcpu', 'vm'] as const).flatMap((path) => (['read', 'write'] as const).map((op) => ({ s, path, op }))),
  ).filter(({ s, path }) => !(path === 'vm' && s.name === 'crossing-end'));
  return cases(
    items,
    ({ s, path, op }) => ({ path, op, scenario: s.name }),
    async (ctx, { s, path, op }) => {
      const gu = await guest(ctx);
      if (s.keys) await setKeys(ctx, gu, 0x10, s.keys);
      const skey = s.key !== undefined ? flagsOf(ctx, ['SKEY_PROTECTION']) : 0n;
      const check = flagsOf(ctx, ['CHECK_ONLY']) | skey;
      const data = pattern(s.size, 11);
      const before = await ctx.kvm.read(gu.ram, 0, MiB);
      const checked =
        op === 'write'
          ? await write(ctx, gu, path, s.gaddr, data, check, s.key)
          : await read(ctx, gu, path, s.gaddr, s.size, check, s.key);
      assertBytes(await ctx.kvm.read(gu.ram, 0, MiB), before, 'guest memory after CHECK_ONLY');
      if (op === 'read') assertBytes(readBytes(checked), new Uint8Array(s.size), 'buf after CHECK_ONLY');
      const real =
        op === 'write'
          ? await write(ctx, gu, path, s.gaddr, data, skey, s.key)
          : await read(ctx, gu, path, s.gaddr, s.size, skey, s.key);
      const what = `${path} ${op} ${s.name}: CHECK_ONLY said ${checked.errno ?? checked.ret}`;
      assertOutcome(real, checked.errno ? { errno: checked.errno } : { ret: Number(checked.ret) }, what);
    },
  );
};

export const accessGenerators: Record<string, CaseGenerator> = {
  roundtrip,
  outside,
  'crossing-end': crossingEnd,
  'amode-24': amode24,
  'amode-31': amode31,
  'check-only-agrees': checkOnlyAgrees,
};
