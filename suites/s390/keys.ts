import { assertBytes, assertOutcome, assertTrue, assertValue, expectOf } from '../../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator } from '../../harness/plan/types.ts';
import { read, readBytes, write } from './access.ts';
import {
  flagsOf,
  guest,
  MiB,
  pattern,
  pendingIrqs,
  PAGE,
  s390,
  setKeys,
  setRegs,
  type Guest,
} from './guest.ts';
import { cases, hex } from './plan.ts';

type Path = 'vcpu' | 'vm';
type Op = 'read' | 'write';
const KEYED = 0x1_0000n;

/** Key-controlled protection as the rule states it: key 0, matching ACC, or an unprotected fetch. */
export function keyAllows(storageKey: number, accessKey: number, op: Op): boolean {
  return accessKey === 0 || storageKey >> 4 === accessKey || (op === 'read' && (storageKey & 0x08) === 0);
}

async function keyedAccess(
  ctx: CaseContext,
  g: Guest,
  path: Path,
  op: Op,
  gaddr: bigint,
  size: number,
  key: number,
  extra = 0n,
) {
  const flags = flagsOf(ctx, ['SKEY_PROTECTION']) | extra;
  return op === 'write'
    ? write(ctx, g, path, gaddr, pattern(size, 21), flags, key)
    : read(ctx, g, path, gaddr, size, flags, key);
}

const keyMatrix: CaseGenerator = () => {
  const items = [0x00, 0x10, 0x18, 0x90, 0x98, 0xf8].flatMap((skey) =>
    [0, 1, 9, 15].flatMap((key) =>
      (['vcpu', 'vm'] as const).flatMap((path) =>
        (['read', 'write'] as const).map((op) => ({ skey, key, path, op })),
      ),
    ),
  );
  return cases(
    items,
    ({ skey, key, path, op }) => ({ path, op, skey: hex(skey), key: String(key) }),
    async (ctx, { skey, key, path, op }) => {
      const gu = await guest(ctx);
      await setKeys(ctx, gu, Number(KEYED) / PAGE, [skey]);
      const allowed = keyAllows(skey, key, op);
      const r = await keyedAccess(ctx, gu, path, op, KEYED, 8, key);
      assertOutcome(r, { ret: allowed ? 0 : 4 }, `${path} ${op} with key ${key} on storage key ${hex(skey)}`);
      const mem = await ctx.kvm.read(gu.ram, Number(KEYED), 8);
      if (op === 'write')
        assertBytes(mem, allowed ? pattern(8, 21) : new Uint8Array(8), 'the page after the store');
    },
  );
};

interface OverrideCase {
  name: string;
  cr0: string[];
  skey: number;
  path: Path;
  op: Op;
  gaddr: bigint;
  size: number;
  ret: number;
}

function overrideCases(list: OverrideCase[], gfn: number): ReturnType<CaseGenerator> {
  return cases(
    list,
    ({ name }) => ({ case: name }),
    async (ctx, c) => {
      const gu = await guest(ctx);
      await setKeys(ctx, gu, gfn, [c.skey]);
      const cr0 = c.cr0.reduce((acc, n) => acc | s390(ctx, n), 0n);
      await setRegs(ctx, gu, { 0: cr0 });
      const r = await keyedAccess(ctx, gu, c.path, c.op, c.gaddr, c.size, 2);
      assertOutcome(
        r,
        { ret: c.ret },
        `${c.name}: ${c.path} ${c.op} of ${c.size} at ${hex(c.gaddr)} with key 2`,
      );
    },
  );
}

const FPO = 'S390_CR0_FETCH_PROTECTION_OVERRIDE';
const SPO = 'S390_CR0_STORAGE_PROTECTION_OVERRIDE';

const fetchOverride: CaseGenerator = () => [
  ...overrideCases(
    [
      {
        name: 'within-2048',
        cr0: [FPO],
        skey: 0x18,
        path: 'vcpu',
        op: 'read',
        gaddr: 0x100n,
        size: 16,
        ret: 0,
      },
      {
        name: 'ends-at-2048',
        cr0: [FPO],
        skey: 0x18,
        path: 'vcpu',
        op: 'read',
        gaddr: 2032n,
        size: 16,
        ret: 0,
      },
      {
        name: 'crosses-2048',
        cr0: [FPO],
        skey: 0x18,
        path: 'vcpu',
        op: 'read',
        gaddr: 2040n,
        size: 16,
        ret: 4,
      },
      { name: 'at-2048', cr0: [FPO], skey: 0x18, path: 'vcpu', op: 'read', gaddr: 2048n, size: 8, ret: 4 },
      {
        name: 'override-off',
        cr0: [],
        skey: 0x18,
        path: 'vcpu',
        op: 'read',
        gaddr: 0x100n,
        size: 16,
        ret: 4,
      },
      {
        name: 'vm-absolute',
        cr0: [FPO],
        skey: 0x18,
        path: 'vm',
        op: 'read',
        gaddr: 0x100n,
        size: 16,
        ret: 4,
      },
      { name: 'store', cr0: [FPO], skey: 0x18, path: 'vcpu', op: 'write', gaddr: 0x100n, size: 16, ret: 4 },
    ],
    0,
  ),
  // The override covers addresses below 2048, not the first 2048 bytes of every page.
  ...overrideCases(
    [
      {
        name: 'page-1-start',
        cr0: [FPO],
        skey: 0x18,
        path: 'vcpu',
        op: 'read',
        gaddr: 0x1000n,
        size: 16,
        ret: 4,
      },
    ],
    1,
  ),
];

const storageOverride: CaseGenerator = () =>
  overrideCases(
    [
      { name: 'acc9-fetch', cr0: [SPO], skey: 0x98, path: 'vcpu', op: 'read', gaddr: KEYED, size: 8, ret: 0 },
      {
        name: 'acc9-store',
        cr0: [SPO],
        skey: 0x98,
        path: 'vcpu',
        op: 'write',
        gaddr: KEYED,
        size: 8,
        ret: 0,
      },
      { name: 'vm-fetch', cr0: [SPO], skey: 0x98, path: 'vm', op: 'read', gaddr: KEYED, size: 8, ret: 4 },
      { name: 'vm-store', cr0: [SPO], skey: 0x98, path: 'vm', op: 'write', gaddr: KEYED, size: 8, ret: 4 },
      {
        name: 'acc8-store',
        cr0: [SPO],
        skey: 0x88,
        path: 'vcpu',
        op: 'write',
        gaddr: KEYED,
        size: 8,
        ret: 4,
      },
      { name: 'override-off', cr0: [], skey: 0x98, path: 'vcpu', op: 'write', gaddr: KEYED, size: 8, ret: 4 },
    ],
    Number(KEYED) / PAGE,
  );

/** Two pages, the second with a key the access key does not match. */
const keyTerminated: CaseGenerator = () => [
  ...cases(
    [
      { path: 'vcpu' as const, op: 'write' as const },
      { path: 'vm' as const, op: 'write' as const },
      { path: 'vcpu' as const, op: 'read' as const },
    ],
    ({ path, op }) => ({ path, op }),
    async (ctx, { path, op }) => {
      const gu = await guest(ctx);
      await setKeys(ctx, gu, Number(KEYED) / PAGE, [0x10, 0x28]);
      const inject = path === 'vcpu' ? flagsOf(ctx, ['INJECT_EXCEPTION']) : 0n;
      const r = await keyedAccess(ctx, gu, path, op, KEYED, 2 * PAGE, 1, inject);
      assertOutcome(r, { ret: 4 }, `${path} ${op} of two pages, the second protected`);
      if (op === 'read')
        return assertBytes(readBytes(r), new Uint8Array(2 * PAGE), 'buf after the failed read');
      const mem = await ctx.kvm.read(gu.ram, Number(KEYED), 2 * PAGE);
      const data = pattern(2 * PAGE, 21);
      assertBytes(mem.subarray(0, PAGE), data.subarray(0, PAGE), 'the first page was stored');
      assertBytes(mem.subarray(PAGE), new Uint8Array(PAGE), 'the protected page was not');
      if (path !== 'vcpu') return;
      const [irq] = await pendingIrqs(ctx, gu);
      assertTrue(irq !== undefined, 'a program interrupt is pending');
      // Terminated: the page address and the store indicator, no protection-type bits.
      assertValue(
        irq.trans_exc_code as bigint,
        (KEYED + BigInt(PAGE)) | 0x400n,
        'TEID of the terminated store',
      );
    },
  ),
  {
    // Every page is translated before any key is checked: the unbacked second page decides.
    params: { path: 'vcpu', op: 'read', case: 'protected-then-unbacked' },
    run: async (ctx) => {
      const gu = await guest(ctx);
      const lastPage = BigInt(MiB - PAGE);
      await setKeys(ctx, gu, Number(lastPage) / PAGE, [0x18]);
      const r = await keyedAccess(ctx, gu, 'vcpu', 'read', lastPage + 0xff8n, 16, 2);
      assertOutcome(r, { ret: 5 }, 'read with key 2 from a 0x18 page into the first page past RAM');
    },
  },
];

const checkOnlyKey: CaseGenerator = (g) =>
  cases(
    [
      { path: 'vcpu' as const, op: 'read' as const, skey: 0x38 },
      { path: 'vcpu' as const, op: 'write' as const, skey: 0x30 },
      { path: 'vm' as const, op: 'read' as const, skey: 0x38 },
      { path: 'vm' as const, op: 'write' as const, skey: 0x30 },
    ],
    ({ path, op, skey }) => ({ path, op, skey: hex(skey) }),
    async (ctx, { path, op, skey }) => {
      const gu = await guest(ctx);
      await setKeys(ctx, gu, Number(KEYED) / PAGE, [skey]);
      const r = await keyedAccess(ctx, gu, path, op, KEYED, 8, 4, flagsOf(ctx, ['CHECK_ONLY']));
      assertOutcome(r, expectOf(g), `${path} CHECK_ONLY ${op} with key 4 on ${hex(skey)}`);
      assertBytes(await ctx.kvm.read(gu.ram, Number(KEYED), 8), new Uint8Array(8), 'memory after CHECK_ONLY');
    },
  );

const vmCheckKey0: CaseGenerator = () =>
  cases(
    [
      { name: 'key0-crossing-end', key: 0, gaddr: 0xf_fff8n, ret: 0 },
      { name: 'key0-start-unbacked', key: 0, gaddr: 0x10_0000n, ret: 5 },
      { name: 'key1-crossing-end', key: 1, gaddr: 0xf_fff8n, ret: 5 },
    ],
    ({ name }) => ({ case: name }),
    async (ctx, c) => {
      const gu = await guest(ctx);
      await setKeys(ctx, gu, 0xff, [0x10]);
      const flags = flagsOf(ctx, c.key ? ['CHECK_ONLY', 'SKEY_PROTECTION'] : ['CHECK_ONLY']);
      const r = await read(ctx, gu, 'vm', c.gaddr, 16, flags, c.key);
      assertOutcome(r, { ret: c.ret }, `VM CHECK_ONLY read of 16 at ${hex(c.gaddr)} with key ${c.key}`);
    },
  );

export const keyGenerators: Record<string, CaseGenerator> = {
  'key-matrix': keyMatrix,
  'fetch-override': fetchOverride,
  'storage-override': storageOverride,
  'key-terminated': keyTerminated,
  'check-only-key': checkOnlyKey,
  'vm-check-key0': vmCheckKey0,
};
