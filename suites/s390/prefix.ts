/**
 * Prefixing: a vCPU's real addresses 0..8191 and the two pages at its prefix trade places on the way to
 * absolute storage (arch/s390/kvm/gaccess.h, kvm_s390_real_to_abs). The prefix reaches KVM through
 * kvm_run.s.regs.prefix and KVM_SYNC_PREFIX at KVM_RUN. VM absolute ops are never prefixed.
 */
import { assertBytes, assertOutcome, assertValue } from '../../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator } from '../../harness/plan/types.ts';
import { read, readBytes, write } from './access.ts';
import { buildSpace, CODE, enterDat } from './dat.ts';
import {
  DIAG_501,
  enterPsw,
  flagsOf,
  guest,
  PAGE,
  pattern,
  readRun,
  runOnce,
  s390,
  setKeys,
  setRegs,
  writeRun,
  type Guest,
} from './guest.ts';
import { cases, hex } from './plan.ts';

/** The prefix the cases load: page-pair aligned, inside the 1 MiB of RAM, away from code and tables. */
const PREFIX = 0x4_2000;
/** What the cases write into s.regs.prefix: high word and low bits KVM drops around PREFIX. */
const PREFIX_AS_WRITTEN = 0xffff_ffff_0000_0000n | BigInt(PREFIX) | 0x1fffn;
/** A DIAGNOSE 0x501 outside both prefix areas, where a DAT-off PSW starts. */
const REAL_CODE = 0x3000;
const LOW = 2 * PAGE;

/** A 64-bit, DAT-off PSW. */
const mask64 = (ctx: CaseContext) => s390(ctx, 'S390_PSW_MASK_EA') | s390(ctx, 'S390_PSW_MASK_BA');

interface Storage {
  /** Absolute 0..8191, the prefix area and the page after the low pair, as the case wrote them. */
  low: Uint8Array;
  area: Uint8Array;
  page2: Uint8Array;
}

/** Distinct bytes at absolute 0, at the prefix and at page 2, then the prefix loaded by KVM_RUN. */
async function prefixedGuest(ctx: CaseContext, dat = false): Promise<{ g: Guest; s: Storage }> {
  const g = await guest(ctx);
  const s = { low: pattern(LOW, 1), area: pattern(LOW, 2), page2: pattern(PAGE, 3) };
  await ctx.kvm.write(g.ram, s.low, 0);
  await ctx.kvm.write(g.ram, s.area, PREFIX);
  await ctx.kvm.write(g.ram, s.page2, LOW);
  await writeRun(ctx, g, { prefix: PREFIX_AS_WRITTEN, kvm_dirty_regs: s390(ctx, 'KVM_SYNC_PREFIX') });
  if (dat) {
    // Virtual 0x5000 maps real 0, 0x6000 real PREFIX; the code page is identity-mapped, so its real
    // address is prefixed too and the DIAGNOSE must sit where the prefix puts it.
    const asce = await buildSpace(ctx, g, {
      st: 0x1_0000,
      pt: 0x2_0000,
      pages: { 0x5000: 0n, 0x6000: BigInt(PREFIX) },
    });
    await ctx.kvm.write(g.ram, DIAG_501, PREFIX + Number(CODE));
    await enterDat(ctx, g, { 1: asce });
    // enterDat's own DIAGNOSE at absolute CODE overwrote part of the low pair.
    s.low.set(DIAG_501, Number(CODE));
  } else {
    await ctx.kvm.write(g.ram, DIAG_501, REAL_CODE);
    await enterPsw(ctx, g, mask64(ctx), BigInt(REAL_CODE));
  }
  return { g, s };
}

function expectRead(r: Awaited<ReturnType<typeof read>>, want: Uint8Array, what: string): void {
  assertOutcome(r, { ret: 0 }, what);
  assertBytes(readBytes(r), want, `${what}: bytes`);
}

const REAL_ACCESSES = [
  'read-real-0',
  'read-real-prefix',
  'read-across-8k',
  'write-real-0',
  'absolute-0',
  'lap-real-0',
  'lap-real-prefix',
] as const;

/** DAT off: real addresses through the vCPU, absolute ones through the VM. */
const prefixReal: CaseGenerator = () =>
  cases(
    REAL_ACCESSES,
    (access) => ({ access }),
    async (ctx, access) => {
      const { g, s } = await prefixedGuest(ctx);
      switch (access) {
        case 'read-real-0':
          return expectRead(await read(ctx, g, 'vcpu', 0n, LOW), s.area, 'LOGICAL_READ of real 0..8191');
        case 'read-real-prefix':
          return expectRead(
            await read(ctx, g, 'vcpu', BigInt(PREFIX), LOW),
            s.low,
            'LOGICAL_READ at the prefix',
          );
        case 'read-across-8k': {
          const want = Uint8Array.from([...s.area.subarray(0x1800), ...s.page2.subarray(0, 0x800)]);
          return expectRead(
            await read(ctx, g, 'vcpu', 0x1800n, 0x1000),
            want,
            'LOGICAL_READ of real 0x1800..0x27ff',
          );
        }
        case 'write-real-0': {
          const data = pattern(16, 9);
          assertOutcome(await write(ctx, g, 'vcpu', 0x100n, data), { ret: 0 }, 'LOGICAL_WRITE at real 0x100');
          assertBytes(await ctx.kvm.read(g.ram, PREFIX + 0x100, 16), data, 'absolute prefix + 0x100');
          return assertBytes(
            await ctx.kvm.read(g.ram, 0x100, 16),
            s.low.subarray(0x100, 0x110),
            'absolute 0x100',
          );
        }
        case 'absolute-0':
          return expectRead(await read(ctx, g, 'vm', 0n, LOW), s.low, 'ABSOLUTE_READ of absolute 0..8191');
        // Low-address protection judges the address before prefixing: real 0x100 is protected although it
        // reaches the prefix area, and the prefix area's real address is not, although it reaches 0x100.
        case 'lap-real-0':
        case 'lap-real-prefix': {
          await setRegs(ctx, g, { 0: s390(ctx, 'S390_CR0_LAP') });
          const gaddr = access === 'lap-real-0' ? 0x100n : BigInt(PREFIX + 0x100);
          const expected = access === 'lap-real-0' ? Number(s390(ctx, 'PGM_PROTECTION')) : 0;
          const r = await write(ctx, g, 'vcpu', gaddr, pattern(16, 9));
          return assertOutcome(r, { ret: expected }, `LOGICAL_WRITE at real ${hex(gaddr)} under LAP`);
        }
      }
    },
  );

/**
 * The real address a page table gives is prefixed like any other, and the storage key an access checks is
 * the absolute frame's: key 6 may not fetch from the fetch-protected frame at the prefix (ACC 5), through
 * real 0, while the VM reads absolute 0 (key 0) with it.
 */
const prefixDat: CaseGenerator = () =>
  cases(
    ['dat-real-0', 'dat-real-prefix', 'key-of-absolute-frame'] as const,
    (access) => ({ access }),
    async (ctx, access) => {
      if (access === 'key-of-absolute-frame') {
        const { g } = await prefixedGuest(ctx);
        await setKeys(ctx, g, PREFIX / PAGE, [0x58, 0x58]);
        const flags = flagsOf(ctx, ['SKEY_PROTECTION']);
        const vcpu = await read(ctx, g, 'vcpu', 0n, 16, flags, 6);
        assertOutcome(
          vcpu,
          { ret: Number(s390(ctx, 'PGM_PROTECTION')) },
          'LOGICAL_READ of real 0 with key 6',
        );
        const vm = await read(ctx, g, 'vm', 0n, 16, flags, 6);
        return assertOutcome(vm, { ret: 0 }, 'ABSOLUTE_READ of absolute 0 with key 6');
      }
      const { g, s } = await prefixedGuest(ctx, true);
      if (access === 'dat-real-0')
        return expectRead(
          await read(ctx, g, 'vcpu', 0x5000n, PAGE),
          s.area.subarray(0, PAGE),
          'LOGICAL_READ of virtual 0x5000 (real 0)',
        );
      return expectRead(
        await read(ctx, g, 'vcpu', 0x6000n, PAGE),
        s.low.subarray(0, PAGE),
        'LOGICAL_READ of virtual 0x6000 (real prefix)',
      );
    },
  );

/**
 * KVM_RUN loads the prefix only when kvm_dirty_regs has KVM_SYNC_PREFIX, keeps bits 0x7fffe000 of its low
 * word, clears kvm_dirty_regs, and stores the prefix it holds back into s.regs.prefix.
 */
const prefixSync: CaseGenerator = () =>
  cases(
    ['dirty', 'not-dirty'] as const,
    (load) => ({ load }),
    async (ctx, load) => {
      const { g, s } = await prefixedGuest(ctx);
      const after = await readRun(ctx, g);
      assertValue(after.prefix as bigint, BigInt(PREFIX), 's.regs.prefix after KVM_RUN');
      assertValue(after.kvm_dirty_regs as bigint, 0n, 'kvm_dirty_regs after KVM_RUN');
      if (load === 'dirty') return;
      // A second run with another prefix in s.regs but nothing dirty keeps the loaded one.
      await ctx.kvm.write(g.ram, DIAG_501, REAL_CODE + 4);
      await writeRun(ctx, g, { prefix: 0x6_0000n });
      const again = await runOnce(ctx, g);
      assertValue(
        again.prefix as bigint,
        BigInt(PREFIX),
        `s.regs.prefix after a run with ${hex(0x6_0000)} not dirty`,
      );
      expectRead(await read(ctx, g, 'vcpu', 0n, LOW), s.area, 'LOGICAL_READ of real 0..8191 after that run');
    },
  );

export const prefixGenerators: Record<string, CaseGenerator> = {
  'prefix-real': prefixReal,
  'prefix-dat': prefixDat,
  'prefix-sync': prefixSync,
};
