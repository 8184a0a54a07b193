import fc from 'fast-check';
import { assertBytes, assertOutcome } from '../../harness/plan/outcome.ts';
import { checkProperty } from '../../harness/plan/property.ts';
import type { CaseGenerator } from '../../harness/plan/types.ts';
import { read, readBytes, write } from './access.ts';
import { buildSpace, enterDat } from './dat.ts';
import { buffer, flagsOf, guest, memop, PAGE, setKeys } from './guest.ts';
import { keyAllows } from './keys.ts';
import { requireCapability } from './plan.ts';

const BASE = 0x1_0000;
const FRAMES = 6;

/** Random keyed writes, read back through either path: stored pages are exactly the ones before the first refusal. */
const propertyRoundtrip: CaseGenerator = () => [
  {
    params: { property: 'keyed-write-read' },
    tags: ['property'],
    run: async (ctx) => {
      const g = await guest(ctx);
      const arb = fc.record({
        by: fc.constantFrom('vcpu' as const, 'vm' as const),
        back: fc.constantFrom('vcpu' as const, 'vm' as const),
        offset: fc.integer({ min: 0, max: 3 * PAGE }),
        size: fc.integer({ min: 1, max: 2 * PAGE }),
        skeys: fc.array(fc.integer({ min: 0, max: 31 }), { minLength: FRAMES, maxLength: FRAMES }),
        key: fc.integer({ min: 0, max: 15 }),
        data: fc.integer({ min: 1, max: 250 }),
      });
      await checkProperty(ctx, arb, async (c) => {
        const keys = c.skeys.map((k) => ((k >> 1) << 4) | (k & 1 ? 0x08 : 0));
        await ctx.kvm.write(g.ram, new Uint8Array(FRAMES * PAGE), BASE);
        await setKeys(ctx, g, BASE / PAGE, keys);
        const data = Uint8Array.from({ length: c.size }, (_, i) => ((i + c.data) % 255) + 1);
        const start = BASE + c.offset;
        const first = Math.floor(start / PAGE) - BASE / PAGE;
        const last = Math.floor((start + c.size - 1) / PAGE) - BASE / PAGE;
        let refused = -1;
        for (let f = first; f <= last && refused < 0; f++)
          if (!keyAllows(keys[f]!, c.key, 'write')) refused = f;
        const flags = flagsOf(ctx, ['SKEY_PROTECTION']);
        const r = await write(ctx, g, c.by, BigInt(start), data, flags, c.key);
        assertOutcome(r, { ret: refused < 0 ? 0 : 4 }, `${c.by} write with key ${c.key}`);
        const stored = refused < 0 ? c.size : Math.max(0, (BASE / PAGE + refused) * PAGE - start);
        const expected = new Uint8Array(c.size);
        expected.set(data.subarray(0, stored));
        const back = await read(ctx, g, c.back, BigInt(start), c.size);
        assertOutcome(back, { ret: 0 }, `${c.back} read back with key 0`);
        assertBytes(readBytes(back), expected, `${c.back} read of what the ${c.by} write stored`);
      });
    },
  },
];

/** Random cmpxchg operands: memory changes exactly when the expected value equals it. */
const propertyCmpxchg: CaseGenerator = () => [
  {
    params: { property: 'cmpxchg' },
    tags: ['property'],
    run: async (ctx) => {
      requireCapability(ctx, 'storage-key checked cmpxchg (KVM_CAP_S390_MEM_OP_EXTENSION bit 1)');
      const g = await guest(ctx);
      const arb = fc.constantFrom(1, 2, 4, 8, 16).chain((size) =>
        fc.record({
          size: fc.constant(size),
          slot: fc.integer({ min: 0, max: PAGE / size - 1 }),
          mem: fc.uint8Array({ minLength: size, maxLength: size }),
          other: fc.uint8Array({ minLength: size, maxLength: size }),
          value: fc.uint8Array({ minLength: size, maxLength: size }),
          same: fc.boolean(),
        }),
      );
      await checkProperty(
        ctx,
        arb,
        async (c) => {
          const gaddr = 0x2_0000 + c.slot * c.size;
          await ctx.kvm.write(g.ram, c.mem, gaddr);
          const old = c.same ? c.mem : c.other;
          const swaps = Buffer.from(old).equals(Buffer.from(c.mem));
          const r = await memop(ctx, g, {
            op: 'ABSOLUTE_CMPXCHG',
            gaddr: BigInt(gaddr),
            size: c.size,
            buf: { buf: await buffer(ctx, c.size, c.value) },
            extra: { old_addr: { buf: await buffer(ctx, c.size, old) } },
          });
          assertOutcome(r, { ret: 0 }, `cmpxchg of ${c.size} bytes`);
          assertBytes(
            await ctx.kvm.read(g.ram, gaddr, c.size),
            swaps ? c.value : c.mem,
            'memory after cmpxchg',
          );
          assertBytes(r.spans.old_addr ?? new Uint8Array(0), c.mem, '*old_addr after cmpxchg');
        },
        40,
      );
    },
  },
];

const LOGICAL = 0x5000;
const MAPPED_PAGES = 8;

/** Random page tables: a logical read returns the bytes of whichever frames the tables name. */
const propertyTranslation: CaseGenerator = () => [
  {
    params: { property: 'random-page-tables' },
    tags: ['property', 'needs-run'],
    run: async (ctx) => {
      const g = await guest(ctx);
      const space = { st: 0x4_0000, pt: 0x4_4000 };
      await enterDat(ctx, g, { 1: await buildSpace(ctx, g, space) });
      const arb = fc.record({
        frames: fc.uniqueArray(fc.integer({ min: 0x60, max: 0x9f }), {
          minLength: MAPPED_PAGES,
          maxLength: MAPPED_PAGES,
        }),
        offset: fc.integer({ min: 0, max: MAPPED_PAGES * PAGE - 1 }),
        size: fc.integer({ min: 1, max: 3 * PAGE }),
      });
      await checkProperty(
        ctx,
        arb,
        async (c) => {
          const size = Math.min(c.size, MAPPED_PAGES * PAGE - c.offset);
          const pages = Object.fromEntries(c.frames.map((f, i) => [LOGICAL + i * PAGE, BigInt(f * PAGE)]));
          await buildSpace(ctx, g, { ...space, pages });
          const expected = new Uint8Array(size);
          for (let at = 0; at < size;) {
            const page = Math.floor((c.offset + at) / PAGE);
            const within = (c.offset + at) % PAGE;
            const len = Math.min(PAGE - within, size - at);
            const frame = c.frames[page]! * PAGE;
            const bytes = Uint8Array.from({ length: len }, (_, i) => ((frame + within + i) * 7) % 251);
            await ctx.kvm.write(g.ram, bytes, frame + within);
            expected.set(bytes, at);
            at += len;
          }
          const r = await read(ctx, g, 'vcpu', BigInt(LOGICAL + c.offset), size);
          assertOutcome(r, { ret: 0 }, `logical read of ${size} at ${LOGICAL + c.offset}`);
          assertBytes(readBytes(r), expected, 'the bytes of the mapped frames');
        },
        25,
      );
    },
  },
];

export const propertyGenerators: Record<string, CaseGenerator> = {
  'property-roundtrip': propertyRoundtrip,
  'property-cmpxchg': propertyCmpxchg,
  'property-translation': propertyTranslation,
};
