import { assertBytes, assertOutcome, assertTrue, assertValue, expectOf } from '../../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator } from '../../harness/plan/types.ts';
import type { CallResult, PointerArg } from '../../harness/session.ts';
import {
  buffer,
  flagsOf,
  guest,
  memop,
  pattern,
  PAGE,
  setKeys,
  type FlagName,
  type Guest,
  type OpName,
} from './guest.ts';
import { cases, hex, requireCapability } from './plan.ts';

const SIZES = [1, 2, 4, 8, 16];
const TARGET = 0x2_0000n;
const gaddrFor = (size: number) => TARGET + BigInt(size * 5);

/** How a case keys its access: the frame's storage key, the access key, and whether SKEY is on. */
interface Keying {
  name: string;
  skey: number;
  key: number;
  skeyFlag: boolean;
}
const ALLOWED: Keying[] = [
  { name: 'no-skey-flag', skey: 0x30, key: 4, skeyFlag: false },
  { name: 'key0', skey: 0x30, key: 0, skeyFlag: true },
  { name: 'acc-match-fetch-protected', skey: 0x38, key: 3, skeyFlag: true },
];
const REFUSED: Keying[] = [
  { name: 'acc-mismatch', skey: 0x30, key: 4, skeyFlag: true },
  { name: 'fetch-protected', skey: 0x38, key: 4, skeyFlag: true },
];

interface Prepared {
  g: Guest;
  current: Uint8Array;
  value: Uint8Array;
}

/** RAM with a known value at the target, keys set, and the value the case swaps in. */
async function prepare(ctx: CaseContext, size: number, k: Keying): Promise<Prepared> {
  requireCapability(ctx, 'storage-key checked cmpxchg (KVM_CAP_S390_MEM_OP_EXTENSION bit 1)');
  const g = await guest(ctx);
  await setKeys(ctx, g, Number(TARGET) / PAGE, [k.skey]);
  const current = pattern(size, 1);
  await ctx.kvm.write(g.ram, current, Number(gaddrFor(size)));
  return { g, current, value: pattern(size, 2) };
}

const flip = (b: Uint8Array) => b.map((x, i) => (i === b.length - 1 ? x ^ 0xff : x));

function upstreamCall(
  ctx: CaseContext,
  p: Prepared,
  size: number,
  k: Keying,
  old: Uint8Array,
  gaddr = gaddrFor(size),
  extraFlags: FlagName[] = [],
  oldReadonly = false,
) {
  return (async () => {
    const flags = flagsOf(ctx, [...(k.skeyFlag ? (['SKEY_PROTECTION'] as const) : []), ...extraFlags]);
    const buf = { buf: await buffer(ctx, size, p.value) };
    const oldAddr = { buf: await ctx.kvm.alloc(size, { init: old, readonly: oldReadonly }) };
    return memop(ctx, p.g, {
      op: 'ABSOLUTE_CMPXCHG',
      gaddr,
      size,
      buf,
      flags,
      key: k.key,
      extra: { old_addr: oldAddr },
    });
  })();
}

const memoryAt = (ctx: CaseContext, p: Prepared, size: number) =>
  ctx.kvm.read(p.g.ram, Number(gaddrFor(size)), size);

function matrix(keyings: Keying[]) {
  return SIZES.flatMap((size) => keyings.map((k) => ({ size, k })));
}

/** The matrix, plus one 8-byte call whose *old_addr is read-only: KVM writes it only on a mismatch. */
const withReadonlyOld = (keyings: Keying[]) => [
  ...matrix(keyings).map((x) => ({ ...x, readonly: false })),
  { size: 8, k: keyings[0]!, readonly: true },
];
const matrixParams = ({ size, k, readonly }: { size: number; k: Keying; readonly: boolean }) => ({
  size: String(size),
  keys: k.name,
  ...(readonly ? { old_addr: 'read-only' } : {}),
});

const cmpxchgMatch: CaseGenerator = () =>
  cases(withReadonlyOld(ALLOWED), matrixParams, async (ctx, { size, k, readonly }) => {
    const p = await prepare(ctx, size, k);
    const r = await upstreamCall(ctx, p, size, k, p.current, undefined, [], readonly);
    assertOutcome(r, { ret: 0 }, `cmpxchg of ${size} bytes with the expected value`);
    assertBytes(await memoryAt(ctx, p, size), p.value, 'memory holds the new value');
    assertBytes(r.spans.old_addr ?? new Uint8Array(0), p.current, '*old_addr is left alone');
  });

const cmpxchgMismatch: CaseGenerator = () =>
  cases(withReadonlyOld(ALLOWED), matrixParams, async (ctx, { size, k, readonly }) => {
    const p = await prepare(ctx, size, k);
    const old = flip(p.current);
    const r = await upstreamCall(ctx, p, size, k, old, undefined, [], readonly);
    assertBytes(await memoryAt(ctx, p, size), p.current, 'memory is unchanged');
    if (readonly) return assertOutcome(r, { errno: 'EFAULT' }, 'the current value cannot reach *old_addr');
    assertOutcome(r, { ret: 0 }, `cmpxchg of ${size} bytes with a different expected value`);
    assertBytes(r.spans.old_addr ?? new Uint8Array(0), p.current, '*old_addr receives the current value');
  });

const cmpxchgKey: CaseGenerator = () =>
  cases(
    matrix(REFUSED).flatMap((x) => [true, false].map((match) => ({ ...x, match }))),
    ({ size, k, match }) => ({ size: String(size), keys: k.name, values: match ? 'match' : 'mismatch' }),
    async (ctx, { size, k, match }) => {
      const p = await prepare(ctx, size, k);
      const r = await upstreamCall(ctx, p, size, k, match ? p.current : flip(p.current));
      assertOutcome(r, { ret: 4 }, `cmpxchg with key ${k.key} on storage key ${hex(k.skey)}`);
      assertBytes(await memoryAt(ctx, p, size), p.current, 'memory is unchanged');
    },
  );

const NO_KEYS: Keying = { name: 'none', skey: 0, key: 0, skeyFlag: false };

/** A cmpxchg whose only fault is the parameter the case varies. */
function variantCases(
  list: {
    name: string;
    size: number;
    gaddr?: bigint;
    flags?: FlagName[];
    buf?: PointerArg;
    oldAddr?: PointerArg;
    outcome?: { ret: number } | { errno: string };
  }[],
): CaseGenerator {
  return (g) =>
    cases(
      list,
      ({ name }) => ({ case: name }),
      async (ctx, c) => {
        const p = await prepare(ctx, Math.min(c.size, 16), NO_KEYS);
        const buf = c.buf ?? { buf: await buffer(ctx, c.size, pattern(c.size, 2)) };
        const oldAddr = c.oldAddr ?? { buf: await buffer(ctx, c.size, pattern(c.size, 1)) };
        const r = await memop(ctx, p.g, {
          op: 'ABSOLUTE_CMPXCHG',
          gaddr: c.gaddr ?? TARGET,
          size: c.size,
          buf,
          flags: flagsOf(ctx, c.flags ?? []),
          extra: { old_addr: oldAddr },
        });
        assertOutcome(r, c.outcome ?? expectOf(g), `cmpxchg ${c.name}`);
      },
    );
}

const cmpxchgMisaligned = variantCases(
  [2, 4, 8, 16].flatMap((size) =>
    [...new Set([1, size / 2])].map((off) => ({
      name: `size${size}+${off}`,
      size,
      gaddr: TARGET + BigInt(off),
    })),
  ),
);

const cmpxchgSizes = variantCases([
  ...[3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 17, 32, 4096, 65536].map((size) => ({
    name: `size${size}`,
    size,
    outcome: { errno: 'EINVAL' },
  })),
  { name: 'size0', size: 0, outcome: { errno: 'EINVAL' } },
  { name: 'size65537', size: 65537, outcome: { errno: 'E2BIG' } },
]);

const cmpxchgAddressFirst = variantCases([
  { name: 'misaligned-unbacked', size: 8, gaddr: 0x10_0001n },
  { name: 'size3-unbacked', size: 3, gaddr: 0x10_0000n },
  { name: 'size16-misaligned-unbacked', size: 16, gaddr: 0x20_0008n },
]);

const cmpxchgFlags = variantCases([
  { name: 'CHECK_ONLY', size: 8, flags: ['CHECK_ONLY'] },
  { name: 'INJECT_EXCEPTION', size: 8, flags: ['INJECT_EXCEPTION'] },
  { name: 'CHECK_ONLY+SKEY_PROTECTION', size: 8, flags: ['CHECK_ONLY', 'SKEY_PROTECTION'] },
]);

const cmpxchgEfault = variantCases([
  { name: 'buf-invalid', size: 8, buf: 'invalid' },
  { name: 'old_addr-invalid', size: 8, oldAddr: 'invalid' },
  { name: 'old_addr-null', size: 8, oldAddr: 'null' },
]);

/** The proposal's old[2]: the value right-aligned in a big-endian quadword, high half first. */
function toQuad(bytes: Uint8Array): bigint[] {
  const quad = new Uint8Array(16);
  quad.set(bytes, 16 - bytes.length);
  const view = new DataView(quad.buffer);
  return [view.getBigUint64(0), view.getBigUint64(8)];
}

async function proposalCall(
  ctx: CaseContext,
  p: Prepared,
  size: number,
  k: Keying,
  old: Uint8Array,
  op: OpName = 'ABSOLUTE_WRITE',
  gaddr = gaddrFor(size),
): Promise<CallResult> {
  const flags = flagsOf(ctx, ['CMPXCHG', ...(k.skeyFlag ? (['SKEY_PROTECTION'] as const) : [])]);
  const buf = { buf: await buffer(ctx, size, p.value) };
  return memop(ctx, p.g, {
    op,
    gaddr,
    size,
    buf,
    flags,
    key: k.key,
    extra: { old: toQuad(old) },
  });
}

function proposalOutcome(ctx: CaseContext, r: CallResult, swapped: boolean, found: Uint8Array): void {
  assertOutcome(r, { ret: 0 }, 'F_CMPXCHG write');
  const cmpxchg = flagsOf(ctx, ['CMPXCHG']);
  const flags = r.fields.flags as bigint;
  assertTrue(
    ((flags & cmpxchg) === 0n) === swapped,
    `F_CMPXCHG ${swapped ? 'cleared' : 'still set'} in flags (got ${hex(flags)})`,
  );
  const old = r.fields.old as bigint[];
  const want = toQuad(found);
  assertValue(old[0] ?? 0n, want[0]!, 'old[0] after the call');
  assertValue(old[1] ?? 0n, want[1]!, 'old[1] after the call');
}

const proposalMatch: CaseGenerator = () =>
  cases(
    matrix([ALLOWED[0]!, ALLOWED[2]!]),
    ({ size, k }) => ({ size: String(size), keys: k.name }),
    async (ctx, { size, k }) => {
      const p = await prepare(ctx, size, k);
      proposalOutcome(ctx, await proposalCall(ctx, p, size, k, p.current), true, p.current);
      assertBytes(await memoryAt(ctx, p, size), p.value, 'memory holds the new value');
    },
  );

const proposalMismatch: CaseGenerator = () =>
  cases(
    matrix([ALLOWED[0]!, ALLOWED[2]!]),
    ({ size, k }) => ({ size: String(size), keys: k.name }),
    async (ctx, { size, k }) => {
      const p = await prepare(ctx, size, k);
      proposalOutcome(ctx, await proposalCall(ctx, p, size, k, flip(p.current)), false, p.current);
      assertBytes(await memoryAt(ctx, p, size), p.current, 'memory is unchanged');
    },
  );

const proposalSizes: CaseGenerator = (g) => [
  ...cases(
    [3, 5, 17, 32],
    (size) => ({ size: String(size) }),
    async (ctx, size) => {
      const p = await prepare(ctx, 16, NO_KEYS);
      const r = await proposalCall(
        ctx,
        { ...p, value: pattern(size, 2) },
        size,
        NO_KEYS,
        pattern(Math.min(size, 16), 1),
      );
      assertOutcome(r, expectOf(g), `F_CMPXCHG with size ${size}`);
    },
  ),
  {
    params: { size: '8', gaddr: 'misaligned' },
    run: async (ctx) => {
      const p = await prepare(ctx, 8, NO_KEYS);
      const r = await proposalCall(ctx, p, 8, NO_KEYS, p.current, 'ABSOLUTE_WRITE', gaddrFor(8) + 4n);
      assertOutcome(r, expectOf(g), 'F_CMPXCHG of 8 bytes at a 4-byte boundary');
    },
  },
];

const proposalFlagOps: CaseGenerator = (g) =>
  cases(
    ['ABSOLUTE_READ', 'LOGICAL_WRITE'] as const,
    (op) => ({ op }),
    async (ctx, op) => {
      const p = await prepare(ctx, 8, NO_KEYS);
      const r = await proposalCall(ctx, p, 8, NO_KEYS, p.current, op);
      assertOutcome(r, expectOf(g), `F_CMPXCHG on ${op}`);
    },
  );

export const cmpxchgGenerators: Record<string, CaseGenerator> = {
  'cmpxchg-match': cmpxchgMatch,
  'cmpxchg-mismatch': cmpxchgMismatch,
  'cmpxchg-misaligned': cmpxchgMisaligned,
  'cmpxchg-sizes': cmpxchgSizes,
  'cmpxchg-address-first': cmpxchgAddressFirst,
  'cmpxchg-key': cmpxchgKey,
  'cmpxchg-flags': cmpxchgFlags,
  'cmpxchg-efault': cmpxchgEfault,
  'proposal-match': proposalMatch,
  'proposal-mismatch': proposalMismatch,
  'proposal-sizes': proposalSizes,
  'proposal-flag-ops': proposalFlagOps,
};
