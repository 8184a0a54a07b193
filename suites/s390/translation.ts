import { assertBytes, assertOutcome, assertTrue, assertValue, expectOf } from '../../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator } from '../../harness/plan/types.ts';
import { read, readBytes, write } from './access.ts';
import {
  buildSpace,
  CODE,
  enterDat,
  PTE_BIT52,
  PTE_PROTECT,
  regionSecond,
  regionThird,
  SEGMENT_PROTECT,
  TT_REGION_THIRD,
  type Space,
} from './dat.ts';
import {
  buffer,
  DIAG_501,
  enterPsw,
  flagsOf,
  guest,
  memop,
  pattern,
  pendingIrqs,
  s390,
  setKeys,
  setRegs,
  writeRun,
  type Guest,
} from './guest.ts';
import { cases, hex } from './plan.ts';

const ST = 0x4_0000;
const PT = 0x4_4000;
const RTT = 0x4_8000;
const FRAME = 0x6_0000n;
const OTHER_FRAME = 0x3_0000n;
const MAPPED = 0x5000;

const primary = (over: Partial<Space> = {}): Space => ({
  st: ST,
  pt: PT,
  pages: { [MAPPED]: FRAME, [MAPPED + 0x1000]: OTHER_FRAME },
  ...over,
});

/** How a case changes the region-third table: its ASCE table length and entries beside entry 0. */
interface Region {
  tl?: number;
  set?: (origin: bigint) => Record<number, bigint>;
}

/** ASCE designation type region-third (bits 60-61 = 1). */
const ASCE_DT_REGION_THIRD = 0x4n;

async function datGuest(
  ctx: CaseContext,
  space: Space,
  region?: boolean | Region,
  asceBits = 0n,
): Promise<Guest> {
  const g = await guest(ctx);
  let asce = await buildSpace(ctx, g, space);
  if (region) {
    const r = region === true ? {} : region;
    asce = await regionThird(ctx, g, RTT, asce, r.tl, r.set);
  }
  await enterDat(ctx, g, { 1: asce | asceBits });
  return g;
}

const datMap: CaseGenerator = () =>
  cases(
    ['read', 'write', 'scatter', 'scatter-read', 'vm-bypasses-dat', 'region-third', 'real-space'] as const,
    (name) => ({ case: name }),
    async (ctx, name) => {
      // A real-space ASCE (R bit) means no tables: logical addresses are real ones.
      const real = name === 'real-space' ? ASCE_REAL : 0n;
      const g = await datGuest(ctx, primary(), name === 'region-third', real);
      const data = pattern(16, 4);
      if (name === 'real-space') {
        await ctx.kvm.write(g.ram, data, MAPPED);
        const r = await read(ctx, g, 'vcpu', BigInt(MAPPED), 16);
        assertOutcome(r, { ret: 0 }, 'logical read through a real-space ASCE');
        return assertBytes(readBytes(r), data, `real ${hex(MAPPED)}, not the frame the tables map it to`);
      }
      if (name === 'read' || name === 'region-third') {
        await ctx.kvm.write(g.ram, data, Number(FRAME));
        const r = await read(ctx, g, 'vcpu', BigInt(MAPPED), 16);
        assertOutcome(r, { ret: 0 }, `logical read at ${hex(MAPPED)} through DAT`);
        return assertBytes(readBytes(r), data, `the bytes of frame ${hex(FRAME)}`);
      }
      if (name === 'scatter-read') {
        // Two pages in frames that are not adjacent: the read gathers them.
        await ctx.kvm.write(g.ram, data.subarray(0, 8), Number(FRAME) + 0xff8);
        await ctx.kvm.write(g.ram, data.subarray(8), Number(OTHER_FRAME));
        const r = await read(ctx, g, 'vcpu', BigInt(MAPPED + 0xff8), 16);
        assertOutcome(r, { ret: 0 }, `logical read at ${hex(MAPPED + 0xff8)} across two frames`);
        return assertBytes(readBytes(r), data, 'the end of one frame, then the start of the other');
      }
      if (name === 'vm-bypasses-dat') {
        await ctx.kvm.write(g.ram, data, MAPPED);
        const r = await read(ctx, g, 'vm', BigInt(MAPPED), 16);
        assertOutcome(r, { ret: 0 }, 'absolute read');
        return assertBytes(readBytes(r), data, `absolute ${hex(MAPPED)}, not the frame DAT maps it to`);
      }
      const gaddr = BigInt(name === 'scatter' ? MAPPED + 0xff8 : MAPPED);
      assertOutcome(await write(ctx, g, 'vcpu', gaddr, data), { ret: 0 }, `logical write at ${hex(gaddr)}`);
      if (name === 'write')
        return assertBytes(await ctx.kvm.read(g.ram, Number(FRAME), 16), data, 'the mapped frame');
      assertBytes(
        await ctx.kvm.read(g.ram, Number(FRAME) + 0xff8, 8),
        data.subarray(0, 8),
        'the first page of the write',
      );
      assertBytes(
        await ctx.kvm.read(g.ram, Number(OTHER_FRAME), 8),
        data.subarray(8),
        'the second, in another frame',
      );
    },
  );

interface ExceptionCase {
  name: string;
  space: Space;
  region?: boolean | Region;
  asceBits?: bigint;
  gaddr: bigint;
  /** A store instead of a fetch. */
  write?: boolean;
  code: number;
}

const ASCE_REAL = 0x20n;
const ASCE_PRIVATE = 0x100n;
const SEGMENT_COMMON = 0x10n;
/** Region-third entry fields: table offset (TF, bits 56-57) and table length (TL, bits 62-63). */
const rtte = (origin: bigint, tf: number, tl: number) =>
  origin | (BigInt(tf) << 6n) | TT_REGION_THIRD | BigInt(tl);
/** Segment index 0x200: past a segment table of length 0 (and of offset 1). */
const SX_200 = 0x2000_0000n;
/** Region-third index 0x200. */
const RTX_200 = 0x200n << 31n;

const EXCEPTIONS: ExceptionCase[] = [
  { name: 'page-invalid', space: primary(), gaddr: 0x7000n, code: 0x11 },
  { name: 'segment-invalid', space: primary(), gaddr: 0x10_0000n, code: 0x10 },
  { name: 'asce-type', space: primary(), gaddr: 0x8000_0000n, code: 0x38 },
  { name: 'segment-table-length', space: primary({ tl: 0 }), gaddr: 0x2000_0000n, code: 0x10 },
  { name: 'pte-bit52', space: primary({ pages: { 0x7000: FRAME | PTE_BIT52 } }), gaddr: 0x7000n, code: 0x12 },
  {
    name: 'ste-table-type',
    space: primary({ segments: { 1: BigInt(PT) | 0x04n } }),
    gaddr: 0x10_0000n,
    code: 0x12,
  },
  {
    name: 'page-table-outside',
    space: primary({ segments: { 1: 0x7f00_0000n } }),
    gaddr: 0x10_0000n,
    code: 5,
  },
  { name: 'frame-outside', space: primary({ pages: { 0x7000: 0x20_0000n } }), gaddr: 0x7000n, code: 5 },
  // A frame address with bits above 32 set (16 TiB): an entry's origin spans both of its words.
  {
    name: 'frame-outside-high',
    space: primary({ pages: { 0x7000: (1n << 44n) | FRAME } }),
    gaddr: 0x7000n,
    code: 5,
  },
  // Segment 0x200's entry lies in the second page of the segment table.
  { name: 'segment-invalid-second-table-page', space: primary(), gaddr: SX_200 + BigInt(MAPPED), code: 0x10 },
  { name: 'region-third-invalid', space: primary(), region: true, gaddr: 0x8000_0000n, code: 0x3b },
  { name: 'region-first-index', space: primary(), region: true, gaddr: 1n << 53n, code: 0x38 },
  // Length checks come before the entry is read: a valid entry past the length still fails.
  {
    name: 'segment-table-length-valid-entry',
    space: primary({ tl: 0, segments: { 0x200: BigInt(PT) } }),
    gaddr: SX_200 + BigInt(MAPPED),
    code: 0x10,
  },
  { name: 'region-second-index', space: primary(), region: true, gaddr: 1n << 42n, code: 0x38 },
  {
    name: 'region-third-length-valid-entry',
    space: primary(),
    region: { tl: 0, set: (o) => ({ 0x200: rtte(o, 0, 3) }) },
    gaddr: RTX_200 + BigInt(MAPPED),
    code: 0x3b,
  },
  {
    name: 'region-third-table-type',
    space: primary(),
    region: { set: (o) => ({ 1: o | 0x08n | 3n }) },
    gaddr: (1n << 31n) + BigInt(MAPPED),
    code: 0x12,
  },
  {
    name: 'region-third-entry-length',
    space: primary({ segments: { 0x200: BigInt(PT) } }),
    region: { set: (o) => ({ 1: rtte(o, 0, 0) }) },
    gaddr: (1n << 31n) + SX_200 + BigInt(MAPPED),
    code: 0x10,
  },
  {
    name: 'region-third-entry-length-boundary',
    space: primary({ segments: { 0x200: BigInt(PT) } }),
    region: { set: (o) => ({ 1: rtte(o, 0, 1) }) },
    gaddr: (1n << 31n) + SX_200 + BigInt(MAPPED),
    code: 0,
  },
  {
    name: 'region-third-entry-offset',
    space: primary(),
    region: { set: (o) => ({ 1: rtte(o, 1, 3) }) },
    gaddr: (1n << 31n) + BigInt(MAPPED),
    code: 0x10,
  },
  {
    name: 'segment-table-outside-via-region',
    space: primary(),
    region: { set: () => ({ 1: rtte(0x7f00_0000n, 0, 3) }) },
    gaddr: (1n << 31n) + BigInt(MAPPED),
    code: 5,
  },

  // Through the region-third entry to segment 2, whose protection only that entry carries.
  {
    name: 'region-third-segment-2',
    space: primary({ segments: { 2: BigInt(PT) | SEGMENT_PROTECT } }),
    region: true,
    gaddr: 0x20_0000n + BigInt(MAPPED),
    write: true,
    code: 4,
  },
  {
    name: 'common-segment-private-space',
    space: primary({ segments: { 1: BigInt(PT) | SEGMENT_COMMON } }),
    asceBits: ASCE_PRIVATE,
    gaddr: 0x10_0000n + BigInt(MAPPED),
    code: 0x12,
  },
  {
    name: 'common-segment',
    space: primary({ segments: { 1: BigInt(PT) | SEGMENT_COMMON } }),
    gaddr: 0x10_0000n + BigInt(MAPPED),
    code: 0,
  },
  { name: 'private-space', space: primary(), asceBits: ASCE_PRIVATE, gaddr: BigInt(MAPPED), code: 0 },
];

const datExceptions: CaseGenerator = () => [
  ...cases(
    EXCEPTIONS,
    ({ name }) => ({ case: name }),
    async (ctx, c) => {
      const g = await datGuest(ctx, c.space, c.region, c.asceBits);
      const r = c.write
        ? await write(ctx, g, 'vcpu', c.gaddr, pattern(8))
        : await read(ctx, g, 'vcpu', c.gaddr, 8);
      assertOutcome(
        r,
        { ret: c.code },
        `${c.name}: logical ${c.write ? 'write' : 'read'} at ${hex(c.gaddr)}`,
      );
    },
  ),
  {
    // A region-third table outside guest memory, designated by the secondary ASCE: code runs in the
    // primary space and the access reaches the secondary one through ALET 1 in access-register mode.
    params: { case: 'region-third-table-outside' },
    run: async (ctx) => {
      const g = await guest(ctx);
      const p = await buildSpace(ctx, g, primary());
      const outside = 0x7f00_0000n | ASCE_DT_REGION_THIRD | 3n;
      await enterDat(ctx, g, { 1: p, 7: outside }, 'access-register', { 2: 1 });
      const buf = { buf: await buffer(ctx, 8) };
      const r = await memop(ctx, g, { op: 'LOGICAL_READ', gaddr: BigInt(MAPPED), size: 8, ar: 2, buf });
      assertOutcome(r, { ret: 5 }, `read at ${hex(MAPPED)} through a region-third table outside memory`);
    },
  },
  {
    params: { case: 'page-invalid-injected' },
    run: async (ctx) => {
      const g = await datGuest(ctx, primary());
      const r = await write(ctx, g, 'vcpu', 0x7008n, pattern(8), flagsOf(ctx, ['INJECT_EXCEPTION']));
      assertOutcome(r, { ret: 0x11 }, 'store to an invalid page');
      const [irq] = await pendingIrqs(ctx, g);
      assertTrue(irq !== undefined, 'a program interrupt is pending');
      assertValue(irq.code as bigint, 0x11n, 'program-interruption code');
      assertValue(
        irq.trans_exc_code as bigint,
        0x7000n | 0x400n,
        'TEID: page address and store, no protection bits',
      );
    },
  },
];

const PROTECTION = [
  { name: 'page-store', space: primary({ pages: { [MAPPED]: FRAME | PTE_PROTECT } }), write: true, ret: 4 },
  { name: 'page-fetch', space: primary({ pages: { [MAPPED]: FRAME | PTE_PROTECT } }), write: false, ret: 0 },
  {
    name: 'segment-store',
    space: primary({ segments: { 0: BigInt(PT) | SEGMENT_PROTECT } }),
    write: true,
    ret: 4,
  },
  {
    name: 'segment-fetch',
    space: primary({ segments: { 0: BigInt(PT) | SEGMENT_PROTECT } }),
    write: false,
    ret: 0,
  },
];

const datProtection: CaseGenerator = () => [
  ...cases(
    PROTECTION,
    ({ name }) => ({ case: name }),
    async (ctx, c) => {
      const g = await datGuest(ctx, c.space);
      const r = c.write
        ? await write(ctx, g, 'vcpu', BigInt(MAPPED), pattern(8))
        : await read(ctx, g, 'vcpu', BigInt(MAPPED), 8);
      assertOutcome(r, { ret: c.ret }, `${c.name} at ${hex(MAPPED)}`);
      if (c.write)
        assertBytes(await ctx.kvm.read(g.ram, Number(FRAME), 8), new Uint8Array(8), 'the protected frame');
    },
  ),
  {
    params: { case: 'teid' },
    run: async (ctx) => {
      const g = await datGuest(ctx, PROTECTION[0]!.space);
      const r = await write(ctx, g, 'vcpu', BigInt(MAPPED), pattern(8), flagsOf(ctx, ['INJECT_EXCEPTION']));
      assertOutcome(r, { ret: 4 }, 'store to a DAT-protected page');
      const [irq] = await pendingIrqs(ctx, g);
      assertTrue(irq !== undefined, 'a program interrupt is pending');
      assertValue(irq.trans_exc_code as bigint, BigInt(MAPPED) | 0x400n | 0x04n, 'TEID: page, store, bit 61');
    },
  },
];

/** Enhanced-DAT entry bits: format control (a large frame, bit 53), P (bit 54), common region (bit 59). */
const FORMAT_CONTROL = 0x400n;
const ENTRY_PROTECT = 0x200n;
const COMMON_REGION = 0x10n;
/** Logical addresses in segment 1 and in region-third entry 1, where the cases' large frames sit. */
const SEGMENT_1 = 0x10_0000n;
const REGION_1 = 1n << 31n;
/** Inside RAM, away from the code page and the tables: where an access through a frame at 0 lands. */
const IN_FRAME = 0x7_0000n;

interface EdatCase {
  name: string;
  /** CR0 bit 40. */
  edat: boolean;
  space?: Partial<Space>;
  /** Region-third entries beside entry 0, given the segment table's origin. */
  region?: (origin: bigint) => Record<number, bigint>;
  asceBits?: bigint;
  gaddr: bigint;
  write?: boolean;
  ret: number;
  /** The absolute address an access that succeeds reaches. */
  lands?: bigint;
}

const EDAT_1: EdatCase[] = [
  {
    name: 'segment-frame',
    edat: true,
    space: { segments: { 1: FORMAT_CONTROL } },
    gaddr: SEGMENT_1 + IN_FRAME,
    ret: 0,
    lands: IN_FRAME,
  },
  {
    name: 'segment-frame-write',
    edat: true,
    space: { segments: { 1: FORMAT_CONTROL } },
    gaddr: SEGMENT_1 + IN_FRAME + 8n,
    write: true,
    ret: 0,
    lands: IN_FRAME + 8n,
  },
  // The entry's ACCF-validity, access-control and fetch-protection bits (16..12, 11): KVM checks the
  // storage key of the frame, never these, and they are no part of the frame address.
  {
    name: 'segment-frame-accf-ignored',
    edat: true,
    space: { segments: { 1: FORMAT_CONTROL | 0x1_f800n } },
    gaddr: SEGMENT_1 + IN_FRAME,
    ret: 0,
    lands: IN_FRAME,
  },
  // The same entry names a page table too: without EDAT that is all it does.
  {
    name: 'format-control-without-edat',
    edat: false,
    space: { segments: { 1: BigInt(PT) | FORMAT_CONTROL } },
    gaddr: SEGMENT_1 + BigInt(MAPPED),
    ret: 0,
    lands: FRAME,
  },
  {
    name: 'segment-frame-protected-store',
    edat: true,
    space: { segments: { 1: FORMAT_CONTROL | ENTRY_PROTECT } },
    gaddr: SEGMENT_1 + IN_FRAME,
    write: true,
    ret: 4,
  },
  {
    name: 'segment-frame-protected-fetch',
    edat: true,
    space: { segments: { 1: FORMAT_CONTROL | ENTRY_PROTECT } },
    gaddr: SEGMENT_1 + IN_FRAME,
    ret: 0,
    lands: IN_FRAME,
  },
  {
    name: 'segment-frame-outside',
    edat: true,
    space: { segments: { 1: 0x7f00_0000n | FORMAT_CONTROL } },
    gaddr: SEGMENT_1,
    ret: 5,
  },
  {
    name: 'region-protected-store',
    edat: true,
    region: (o) => ({ 1: rtte(o, 0, 3) | ENTRY_PROTECT }),
    gaddr: REGION_1 + BigInt(MAPPED),
    write: true,
    ret: 4,
  },
  // The same store through a region entry without P.
  {
    name: 'region-store',
    edat: true,
    region: (o) => ({ 1: rtte(o, 0, 3) }),
    gaddr: REGION_1 + BigInt(MAPPED),
    write: true,
    ret: 0,
    lands: FRAME,
  },
  {
    name: 'region-protected-store-without-edat',
    edat: false,
    region: (o) => ({ 1: rtte(o, 0, 3) | ENTRY_PROTECT }),
    gaddr: REGION_1 + BigInt(MAPPED),
    write: true,
    ret: 0,
    lands: FRAME,
  },
];

const EDAT_2: EdatCase[] = [
  {
    name: 'region-frame-write',
    edat: true,
    region: () => ({ 1: FORMAT_CONTROL | TT_REGION_THIRD }),
    gaddr: REGION_1 + IN_FRAME + 8n,
    write: true,
    ret: 0,
    lands: IN_FRAME + 8n,
  },
  // A private space with EDAT on: only a region-third entry's common-region bit is refused.
  {
    name: 'private-space',
    edat: true,
    region: (o) => ({ 1: rtte(o, 0, 3) }),
    asceBits: ASCE_PRIVATE,
    gaddr: REGION_1 + BigInt(MAPPED),
    ret: 0,
    lands: FRAME,
  },
  {
    name: 'region-frame',
    edat: true,
    region: () => ({ 1: FORMAT_CONTROL | TT_REGION_THIRD }),
    gaddr: REGION_1 + IN_FRAME,
    ret: 0,
    lands: IN_FRAME,
  },
  {
    name: 'format-control-without-edat',
    edat: false,
    region: (o) => ({ 1: rtte(o, 0, 3) | FORMAT_CONTROL }),
    gaddr: REGION_1 + BigInt(MAPPED),
    ret: 0,
    lands: FRAME,
  },
  {
    name: 'region-frame-protected-store',
    edat: true,
    region: () => ({ 1: FORMAT_CONTROL | ENTRY_PROTECT | TT_REGION_THIRD }),
    gaddr: REGION_1 + IN_FRAME,
    write: true,
    ret: 4,
  },
  // A frame address at 1 TiB: the origin's bits in the entry's high word.
  {
    name: 'region-frame-outside',
    edat: true,
    region: () => ({ 1: (1n << 40n) | FORMAT_CONTROL | TT_REGION_THIRD }),
    gaddr: REGION_1,
    ret: 5,
  },
  {
    name: 'common-region-private-space',
    edat: true,
    region: (o) => ({ 1: rtte(o, 0, 3) | COMMON_REGION }),
    asceBits: ASCE_PRIVATE,
    gaddr: REGION_1 + BigInt(MAPPED),
    ret: 0x12,
  },
  {
    name: 'common-region',
    edat: true,
    region: (o) => ({ 1: rtte(o, 0, 3) | COMMON_REGION }),
    gaddr: REGION_1 + BigInt(MAPPED),
    ret: 0,
    lands: FRAME,
  },
  {
    name: 'common-region-private-space-without-edat',
    edat: false,
    region: (o) => ({ 1: rtte(o, 0, 3) | COMMON_REGION }),
    asceBits: ASCE_PRIVATE,
    gaddr: REGION_1 + BigInt(MAPPED),
    ret: 0,
    lands: FRAME,
  },
];

/**
 * One access through tables with large-frame, protection or common-region bits, with CR0's EDAT bit as the
 * case says (set after KVM_RUN entered DAT: KVM_SET_SREGS reaches the SIE block directly). Where it
 * succeeds, a read returns and a write leaves the bytes at the absolute address the case names.
 */
async function edatAccess(ctx: CaseContext, c: EdatCase): Promise<void> {
  const g = await datGuest(ctx, primary(c.space), c.region ? { set: c.region } : undefined, c.asceBits);
  if (c.edat) await setRegs(ctx, g, { 0: s390(ctx, 'S390_CR0_EDAT') });
  const data = pattern(16, 17);
  const what = `${c.name}: logical ${c.write ? 'write' : 'read'} at ${hex(c.gaddr)}, EDAT ${c.edat ? 'on' : 'off'}`;
  if (c.write) {
    assertOutcome(await write(ctx, g, 'vcpu', c.gaddr, data), { ret: c.ret }, what);
    if (c.lands !== undefined)
      assertBytes(await ctx.kvm.read(g.ram, Number(c.lands), 16), data, `absolute ${hex(c.lands)}`);
    return;
  }
  if (c.lands !== undefined) await ctx.kvm.write(g.ram, data, Number(c.lands));
  const r = await read(ctx, g, 'vcpu', c.gaddr, 16);
  assertOutcome(r, { ret: c.ret }, what);
  if (c.lands !== undefined) assertBytes(readBytes(r), data, `the bytes at absolute ${hex(c.lands)}`);
}

/** Where the not-prefixed case puts the prefix: inside RAM, clear of the tables and of IN_FRAME. */
const EDAT_PREFIX = 0x8_0000;

const edat1: CaseGenerator = () => [
  ...cases(EDAT_1, ({ name }) => ({ case: name }), edatAccess),
  {
    // A protected large frame is DAT protection like a protected page: TEID bit 61 with the page address.
    params: { case: 'segment-frame-teid' },
    run: async (ctx) => {
      const g = await datGuest(ctx, primary({ segments: { 1: FORMAT_CONTROL | ENTRY_PROTECT } }));
      await setRegs(ctx, g, { 0: s390(ctx, 'S390_CR0_EDAT') });
      const gaddr = SEGMENT_1 + IN_FRAME;
      const r = await write(ctx, g, 'vcpu', gaddr, pattern(8), flagsOf(ctx, ['INJECT_EXCEPTION']));
      assertOutcome(r, { ret: 4 }, 'store to a DAT-protected 1 MiB frame');
      const [irq] = await pendingIrqs(ctx, g);
      assertTrue(irq !== undefined, 'a program interrupt is pending');
      assertValue(irq.trans_exc_code as bigint, gaddr | 0x400n | 0x04n, 'TEID: page, store, bit 61');
    },
  },
  {
    // A large frame at absolute 0 with a non-zero prefix: its first pages are absolute 0..8191, not the
    // prefix area a page-table walk to real 0 would reach (MEM_OP-PFX-002).
    params: { case: 'segment-frame-not-prefixed' },
    run: async (ctx) => {
      const g = await guest(ctx);
      const asce = await buildSpace(ctx, g, primary({ segments: { 1: FORMAT_CONTROL } }));
      await writeRun(ctx, g, { prefix: BigInt(EDAT_PREFIX), kvm_dirty_regs: s390(ctx, 'KVM_SYNC_PREFIX') });
      // The code page is identity-mapped through a page table, so its real address is prefixed.
      await ctx.kvm.write(g.ram, DIAG_501, EDAT_PREFIX + Number(CODE));
      await enterDat(ctx, g, { 0: s390(ctx, 'S390_CR0_EDAT'), 1: asce });
      const low = pattern(16, 18);
      await ctx.kvm.write(g.ram, low, 0x100);
      await ctx.kvm.write(g.ram, pattern(16, 19), EDAT_PREFIX + 0x100);
      const r = await read(ctx, g, 'vcpu', SEGMENT_1 + 0x100n, 16);
      assertOutcome(r, { ret: 0 }, `logical read at ${hex(SEGMENT_1 + 0x100n)} through a 1 MiB frame at 0`);
      assertBytes(readBytes(r), low, 'the bytes at absolute 0x100, not at the prefix area');
    },
  },
];

/** Where the region-second case puts its table: after the region-third table, clear of the frames. */
const RST = 0x4_c000;

const edat2: CaseGenerator = () => [
  ...cases(EDAT_2, ({ name }) => ({ case: name }), edatAccess),
  {
    // A region-second entry has no format-control or common-region bit: with them set, EDAT on and a
    // private space, the walk goes on through the region-third table as ever.
    params: { case: 'region-second-entry-bits' },
    run: async (ctx) => {
      const g = await guest(ctx);
      const third = await regionThird(ctx, g, RTT, await buildSpace(ctx, g, primary()));
      const asce = await regionSecond(ctx, g, RST, third, FORMAT_CONTROL | COMMON_REGION);
      await enterDat(ctx, g, { 0: s390(ctx, 'S390_CR0_EDAT'), 1: asce | ASCE_PRIVATE });
      const data = pattern(16, 20);
      await ctx.kvm.write(g.ram, data, Number(FRAME));
      const r = await read(ctx, g, 'vcpu', BigInt(MAPPED), 16);
      assertOutcome(r, { ret: 0 }, `logical read at ${hex(MAPPED)} through a region-second table`);
      assertBytes(readBytes(r), data, `the bytes of frame ${hex(FRAME)}`);
    },
  },
];

/** Primary space maps MAPPED to FRAME, the secondary space (CR7) to SECONDARY_FRAME. */
const SECONDARY_FRAME = 0x7_0000n;

async function arGuest(ctx: CaseContext, acrs: Record<number, number>): Promise<Guest> {
  const g = await guest(ctx);
  const p = await buildSpace(ctx, g, primary());
  const s = await buildSpace(ctx, g, { st: 0x5_0000, pt: 0x5_4000, pages: { [MAPPED]: SECONDARY_FRAME } });
  await enterDat(ctx, g, { 1: p, 7: s }, 'access-register', acrs);
  return g;
}

interface ArCase {
  name: string;
  ar: number;
  acrs: Record<number, number>;
  frame: bigint;
  write: boolean;
}

const arMode: CaseGenerator = () => [
  ...cases<ArCase>(
    [
      { name: 'ar0-is-primary', ar: 0, acrs: { 0: 1 }, frame: FRAME, write: false },
      { name: 'alet0-primary', ar: 1, acrs: { 1: 0 }, frame: FRAME, write: false },
      { name: 'alet1-secondary', ar: 2, acrs: { 2: 1 }, frame: SECONDARY_FRAME, write: false },
      { name: 'alet1-secondary-store', ar: 2, acrs: { 2: 1 }, frame: SECONDARY_FRAME, write: true },
    ],
    ({ name }) => ({ case: name }),
    async (ctx, c) => {
      const g = await arGuest(ctx, c.acrs);
      const data = pattern(16, 6);
      const buf = { buf: await buffer(ctx, 16, c.write ? data : undefined) };
      if (!c.write) await ctx.kvm.write(g.ram, data, Number(c.frame));
      const r = await memop(ctx, g, {
        op: c.write ? 'LOGICAL_WRITE' : 'LOGICAL_READ',
        gaddr: BigInt(MAPPED),
        size: 16,
        ar: c.ar,
        buf,
      });
      assertOutcome(r, { ret: 0 }, `${c.name}: access through AR ${c.ar}`);
      const got = c.write ? await ctx.kvm.read(g.ram, Number(c.frame), 16) : readBytes(r);
      assertBytes(got, data, `the bytes of frame ${hex(c.frame)}`);
    },
  ),
  {
    // With DAT off an access is real: access-register mode consults no access register.
    params: { case: 'dat-off-ignores-ars' },
    run: async (ctx) => {
      const g = await guest(ctx);
      await setRegs(ctx, g, {}, { 3: 0x8000_0000 });
      await ctx.kvm.write(g.ram, DIAG_501, Number(CODE));
      const as = s390(ctx, 'S390_PSW_MASK_AS') & (1n << 46n);
      await enterPsw(ctx, g, s390(ctx, 'S390_PSW_MASK_EA') | s390(ctx, 'S390_PSW_MASK_BA') | as, CODE);
      const data = pattern(16, 15);
      await ctx.kvm.write(g.ram, data, MAPPED);
      const buf = { buf: await buffer(ctx, 16) };
      const r = await memop(ctx, g, { op: 'LOGICAL_READ', gaddr: BigInt(MAPPED), size: 16, ar: 3, buf });
      assertOutcome(r, { ret: 0 }, 'read through AR 3 holding a reserved ALET, DAT off');
      assertBytes(readBytes(r), data, `real ${hex(MAPPED)}`);
    },
  },
];

const arAletSpec: CaseGenerator = (g) =>
  cases(
    [0x8000_0000, 0x0200_0000],
    (alet) => ({ alet: hex(alet) }),
    async (ctx, alet) => {
      const gu = await arGuest(ctx, { 3: alet });
      const r = await memop(ctx, gu, {
        op: 'LOGICAL_READ',
        gaddr: BigInt(MAPPED),
        size: 8,
        ar: 3,
        buf: { buf: await buffer(ctx, 8) },
      });
      assertOutcome(r, expectOf(g), `read through AR 3 holding ALET ${hex(alet)}`);
    },
  );

/** Access-list structures in guest memory: the DUCT at CR2, its access list, one ALE and its ASTE. */
const DUCT = 0x9000;
const ACCESS_LIST = 0xa000;
const ASTE = 0xb000;
/** The authority table a private ALE's ASTE designates (ATO in 4-byte units). */
const AUTHORITY_TABLE = 0xc000;
const ALET_PRIMARY_LIST = 0x0100_0000;
const ALE_INVALID = 0x8000_0000;
const ALE_FETCH_ONLY = 0x0200_0000;
const ALE_PRIVATE = 0x0100_0000;

interface AccessListCase {
  name: string;
  alet: number;
  /** The access-list designation in the DUCT (default: the list at ACCESS_LIST, length 0). */
  ald?: number;
  ale0?: number;
  aste0?: number;
  /** ASTE word 1: the authority-table length in bits 16-27. */
  aste1?: number;
  aleAstesn?: number;
  /** The extended authorization index in CR8 bits 32-47. */
  eax?: number;
  /** The authority-table byte that holds the EAX's two bits. */
  authority?: number;
  /** ALET bit 7: the access list comes from CR5 and CR2 designates nothing useful. */
  primaryList?: boolean;
  /**
   * The vCPU's prefix is DUCT_PREFIX, so the DUCT's real address reaches absolute DUCT - DUCT_PREFIX: the
   * structures are real storage, prefixed like any real address (and the code page moves the other way).
   */
  prefixed?: boolean;
  write?: boolean;
  /** With INJECT_EXCEPTION: the exception access id must name the access register. */
  inject?: boolean;
  /** The TEID the injected exception carries (none for the access-list codes). */
  teid?: bigint;
  ret?: number;
  errno?: string;
}

/** A prefix whose two pages hold the DUCT (real 0x9000 reaches absolute 0x1000, real 0x1000 absolute 0x9000). */
const DUCT_PREFIX = 0x8000;
const ALEN = 2;
const ALESN = 5;
const ASTESN = 7;
const aletOf = (alesn: number, alen: number) => (alesn << 16) | alen;
const ALET = aletOf(ALESN, ALEN);
/** EAX 0x15: ATL must be at least 1 (EAX/16), its bits are in table byte 5 (EAX/4), mask 0x10. */
const EAX = 0x15;
const PRIVATE_ALE = ALE_PRIVATE | (ALESN << 16) | 3;
const WITH_TABLE = { ale0: PRIVATE_ALE, eax: EAX, aste0: AUTHORITY_TABLE, aste1: 1 << 4 };

const ACCESS_LIST_CASES: AccessListCase[] = [
  { name: 'ale-valid', alet: ALET, ret: 0 },
  { name: 'ale-valid-store', alet: ALET, write: true, ret: 0 },
  { name: 'primary-list', alet: ALET | ALET_PRIMARY_LIST, primaryList: true, ret: 0 },
  { name: 'duct-prefixed', alet: ALET, prefixed: true, ret: 0 },
  { name: 'alen-beyond-list', alet: aletOf(ALESN, 8), ret: 0x29 },
  { name: 'alen-beyond-list-injected', alet: aletOf(ALESN, 8), inject: true, ret: 0x29 },
  // The ALE address (list origin + 16 * ALEN) must stay below 2 GiB; past that, an addressing exception.
  { name: 'ale-beyond-2g', alet: aletOf(ALESN, 8), ald: 0x7fff_ffff, ret: 5 },
  // Access-list structures are read as real storage: one outside guest memory fails the ioctl.
  { name: 'ale-unreadable', alet: aletOf(ALESN, 7), ald: 0x7fff_ffff, errno: 'EFAULT' },
  { name: 'ale-invalid', alet: ALET, ale0: ALE_INVALID | (ALESN << 16), ret: 0x29 },
  { name: 'ale-sequence', alet: aletOf(ALESN + 1, ALEN), ret: 0x2a },
  { name: 'aste-invalid', alet: ALET, aste0: ALE_INVALID, ret: 0x2b },
  { name: 'aste-sequence', alet: ALET, aleAstesn: ASTESN + 1, ret: 0x2c },
  { name: 'fetch-only-store', alet: ALET, ale0: ALE_FETCH_ONLY | (ALESN << 16), write: true, ret: 4 },
  { name: 'fetch-only-fetch', alet: ALET, ale0: ALE_FETCH_ONLY | (ALESN << 16), ret: 0 },
  // Access-list-controlled protection: page, store, TEID bits 60 and 61, AS 1 (access-register mode).
  {
    name: 'fetch-only-store-injected',
    alet: ALET,
    ale0: ALE_FETCH_ONLY | (ALESN << 16),
    write: true,
    inject: true,
    teid: BigInt(MAPPED) | 0x400n | 0x0cn | 1n,
    ret: 4,
  },
  { name: 'extended-authority', alet: ALET, ale0: PRIVATE_ALE, ret: 0x2d },
  // The ALEAX matches the EAX: no authority check, although the table would refuse.
  { name: 'private-own-eax', alet: ALET, ...WITH_TABLE, ale0: ALE_PRIVATE | (ALESN << 16) | EAX, ret: 0 },
  { name: 'authority-granted', alet: ALET, ...WITH_TABLE, authority: 0x10, ret: 0 },
  { name: 'authority-bit-clear', alet: ALET, ...WITH_TABLE, authority: 0xef, ret: 0x2d },
  { name: 'authority-beyond-atl', alet: ALET, ...WITH_TABLE, aste1: 0, authority: 0x10, ret: 0x2d },
  { name: 'authority-unreadable', alet: ALET, ...WITH_TABLE, aste0: 0x10_0000, errno: 'EFAULT' },
];

function words(values: number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setUint32(i * 4, v >>> 0));
  return bytes;
}

const arAccessList: CaseGenerator = () =>
  cases(
    ACCESS_LIST_CASES,
    ({ name }) => ({ case: name }),
    async (ctx, c) => {
      const g = await guest(ctx);
      const p = await buildSpace(ctx, g, primary());
      const secondary = await buildSpace(ctx, g, {
        st: 0x5_0000,
        pt: 0x5_4000,
        pages: { [MAPPED]: SECONDARY_FRAME },
      });
      // The DUCT's access-list designation: origin in 128-byte units, length 0 (ALENs 0..7).
      const duct = c.prefixed ? DUCT - DUCT_PREFIX : DUCT;
      await ctx.kvm.write(g.ram, words([c.ald ?? (ACCESS_LIST / 128) << 7]), duct + 16);
      if (c.prefixed) {
        await ctx.kvm.write(g.ram, DIAG_501, DUCT_PREFIX + Number(CODE));
        await writeRun(ctx, g, { prefix: BigInt(DUCT_PREFIX), kvm_dirty_regs: s390(ctx, 'KVM_SYNC_PREFIX') });
      }
      const ale = [c.ale0 ?? ALESN << 16, 0, (ASTE / 64) << 6, c.aleAstesn ?? ASTESN];
      await ctx.kvm.write(g.ram, words(ale), ACCESS_LIST + ALEN * 16);
      const hi = Number(secondary >> 32n);
      const lo = Number(secondary & 0xffff_ffffn);
      await ctx.kvm.write(g.ram, words([c.aste0 ?? 0, c.aste1 ?? 0, hi, lo, 0, ASTESN]), ASTE);
      if (c.authority !== undefined)
        await ctx.kvm.write(g.ram, Uint8Array.of(c.authority), AUTHORITY_TABLE + (EAX >> 2));
      // CR2 at 0x100 designates an empty list there, so only CR5 leads to the ALE.
      const lists: Record<number, bigint> = c.primaryList
        ? { 2: 0x100n, 5: BigInt(DUCT) }
        : { 2: BigInt(DUCT) };
      const crs = { 1: p, ...lists, 8: BigInt(c.eax ?? 0) << 16n };
      await enterDat(ctx, g, crs, 'access-register', { 4: c.alet });
      const data = pattern(16, 12);
      await ctx.kvm.write(g.ram, data, Number(SECONDARY_FRAME));
      const buf = { buf: await buffer(ctx, 16, c.write ? data : undefined) };
      const op = c.write ? 'LOGICAL_WRITE' : 'LOGICAL_READ';
      const flags = c.inject ? flagsOf(ctx, ['INJECT_EXCEPTION']) : 0n;
      const r = await memop(ctx, g, { op, gaddr: BigInt(MAPPED), size: 16, ar: 4, buf, flags });
      const expected = c.errno ? { errno: c.errno } : { ret: c.ret ?? 0 };
      assertOutcome(r, expected, `${c.name}: ${op} through AR 4 holding ALET ${hex(c.alet)}`);
      if (c.ret === 0) assertBytes(readBytes(r), data, 'the bytes of the space the ASTE designates');
      if (!c.inject) return;
      const [irq] = await pendingIrqs(ctx, g);
      assertTrue(irq !== undefined, 'a program interrupt is pending');
      assertValue(irq.exc_access_id as bigint, 4n, 'exception access id');
      assertValue(irq.trans_exc_code as bigint, c.teid ?? 0n, 'TEID');
    },
  );

const LAP_CASES = [
  { name: 'store-0', gaddr: 0n, size: 1, op: 'write', ret: 4 },
  { name: 'store-511', gaddr: 511n, size: 1, op: 'write', ret: 4 },
  { name: 'store-512', gaddr: 512n, size: 1, op: 'write', ret: 0 },
  { name: 'store-4096', gaddr: 4096n, size: 8, op: 'write', ret: 4 },
  { name: 'store-4607', gaddr: 4607n, size: 1, op: 'write', ret: 4 },
  { name: 'store-4608', gaddr: 4608n, size: 8, op: 'write', ret: 0 },
  { name: 'store-8192', gaddr: 8192n, size: 8, op: 'write', ret: 0 },
  { name: 'store-500-crossing-512', gaddr: 500n, size: 20, op: 'write', ret: 4 },
  { name: 'fetch-0', gaddr: 0n, size: 8, op: 'read', ret: 0 },
  { name: 'vm-store-0', gaddr: 0n, size: 8, op: 'vm-write', ret: 0 },
  { name: 'off-store-0', gaddr: 0n, size: 8, op: 'write', ret: 0, off: true },
] as const;

const lap: CaseGenerator = () => [
  ...cases(
    LAP_CASES,
    ({ name }) => ({ case: name }),
    async (ctx, c) => {
      const g = await guest(ctx);
      if (!('off' in c)) await setRegs(ctx, g, { 0: s390(ctx, 'S390_CR0_LAP') });
      const r =
        c.op === 'read'
          ? await read(ctx, g, 'vcpu', c.gaddr, c.size)
          : await write(ctx, g, c.op === 'vm-write' ? 'vm' : 'vcpu', c.gaddr, pattern(c.size));
      assertOutcome(r, { ret: c.ret }, `${c.name} with low-address protection ${'off' in c ? 'off' : 'on'}`);
    },
  ),
  {
    params: { case: 'teid' },
    run: async (ctx) => {
      const g = await guest(ctx);
      await setRegs(ctx, g, { 0: s390(ctx, 'S390_CR0_LAP') });
      const r = await write(ctx, g, 'vcpu', 0x1000n, pattern(8), flagsOf(ctx, ['INJECT_EXCEPTION']));
      assertOutcome(r, { ret: 4 }, 'store to 4096 under low-address protection');
      const [irq] = await pendingIrqs(ctx, g);
      assertTrue(irq !== undefined, 'a program interrupt is pending');
      assertValue(irq.trans_exc_code as bigint, 0x1000n | 0x400n | 0x80n, 'TEID: page, store, bit 56');
    },
  },
];

/** The home space (CR13) maps MAPPED to its own frame. */
const HOME_FRAME = 0x7_8000n;

/** Primary (CR1), secondary (CR7) and home (CR13) spaces map MAPPED apart; the PSW's AS picks one. */
const datSpaces: CaseGenerator = (g) =>
  cases(
    [
      { space: 'primary' as const, frame: FRAME },
      { space: 'secondary' as const, frame: SECONDARY_FRAME },
      { space: 'home' as const, frame: HOME_FRAME },
    ],
    ({ space }) => ({ space }),
    async (ctx, c) => {
      const gu = await guest(ctx);
      const p = await buildSpace(ctx, gu, primary());
      const s = await buildSpace(ctx, gu, {
        st: 0x5_0000,
        pt: 0x5_4000,
        pages: { [MAPPED]: SECONDARY_FRAME },
      });
      const h = await buildSpace(ctx, gu, { st: 0x8_0000, pt: 0x8_4000, pages: { [MAPPED]: HOME_FRAME } });
      await enterDat(ctx, gu, { 1: p, 7: s, 13: h }, c.space);
      const data = pattern(16, 14);
      await ctx.kvm.write(gu.ram, data, Number(c.frame));
      const r = await read(ctx, gu, 'vcpu', BigInt(MAPPED), 16);
      assertOutcome(r, expectOf(g), `read of ${hex(MAPPED)} in the ${c.space} space`);
      assertBytes(readBytes(r), data, `the bytes of frame ${hex(c.frame)}`);
    },
  );

/**
 * Page 0 mapped to itself, fetch-protected with ACC 3, and CR0 with low-address protection and the
 * fetch-protection override: in a private space neither control applies.
 */
const privateSpace: CaseGenerator = () =>
  cases(
    [
      { name: 'store-low-address', asceBits: 0n, write: true, ret: 4 },
      { name: 'store-low-address-private', asceBits: ASCE_PRIVATE, write: true, ret: 0 },
      { name: 'fetch-override', asceBits: 0n, write: false, ret: 0 },
      { name: 'fetch-override-private', asceBits: ASCE_PRIVATE, write: false, ret: 4 },
    ],
    ({ name }) => ({ case: name }),
    async (ctx, c) => {
      const g = await datGuest(ctx, primary({ pages: { 0: 0n } }), false, c.asceBits);
      await setKeys(ctx, g, 0, [0x38]);
      const cr0 = s390(ctx, 'S390_CR0_LAP') | s390(ctx, 'S390_CR0_FETCH_PROTECTION_OVERRIDE');
      await setRegs(ctx, g, { 0: cr0 });
      const flags = flagsOf(ctx, ['SKEY_PROTECTION']);
      const r = c.write
        ? await write(ctx, g, 'vcpu', 0x100n, pattern(8), flags, 3)
        : await read(ctx, g, 'vcpu', 0x100n, 8, flags, 4);
      assertOutcome(r, { ret: c.ret }, `${c.name}: ${c.write ? 'store' : 'fetch'} at 0x100`);
    },
  );

export const translationGenerators: Record<string, CaseGenerator> = {
  'private-space': privateSpace,
  'dat-spaces': datSpaces,
  'dat-map': datMap,
  'dat-exceptions': datExceptions,
  'dat-protection': datProtection,
  'edat-1': edat1,
  'edat-2': edat2,
  'ar-mode': arMode,
  'ar-alet-spec': arAletSpec,
  'ar-access-list': arAccessList,
  lap,
};
