import { bytesToUint, uintToBytes } from '../harness/abi/codec.ts';
import fc from 'fast-check';
import { assertBytes, assertOutcome, assertTrue, assertValue } from '../harness/plan/outcome.ts';
import { checkProperty } from '../harness/plan/property.ts';
import type {
  CaseContext,
  CaseGenerator,
  GeneratedCase,
  GenerateContext,
  SuiteFamily,
} from '../harness/plan/types.ts';
import type { Buf } from '../harness/session.ts';
import { bytesToHex, hex, toBigInt } from '../harness/spec/int.ts';
import type { Outcome, RegisterDef } from '../harness/spec/types.ts';
import { vcpuOf, vmOf } from './fixtures.ts';

const SIZE_SHIFT = 52n;
const SIZE_MASK = 0xfn << SIZE_SHIFT;
const SIZE_NAMES = ['U8', 'U16', 'U32', 'U64', 'U128', 'U256', 'U512', 'U1024', 'U2048'];
/** Filled after the value so a call that writes past KVM_REG_SIZE(id) is caught. */
const GUARD = 0xa5;
const GUARD_BYTES = 8;

export function regBytes(id: bigint): number {
  return 1 << Number((id & SIZE_MASK) >> SIZE_SHIFT);
}

function ruleExpect(g: GenerateContext): Outcome {
  const expect = g.ref.rule.expect;
  if (!expect) throw new Error(`${g.ref.rule.id}: derived cases need the rule's "expect"`);
  return expect;
}

function catalog(g: GenerateContext): RegisterDef[] {
  return g.spec.registers(g.arch).filter((r) => r.access !== 'none');
}

function register(g: GenerateContext, name: string | number | undefined): RegisterDef {
  const all = catalog(g);
  const found = name === undefined ? all[0] : all.find((r) => r.name === name);
  if (!found) throw new Error(`${g.ref.rule.id}: no register ${String(name)} in the ${g.arch} catalog`);
  return found;
}

/** GET into a guarded buffer: returns the value and checks that nothing past KVM_REG_SIZE was touched. */
async function getReg(
  ctx: CaseContext,
  vcpu: number,
  id: bigint,
  hostDependent = false,
): Promise<{ value: Uint8Array; buf: Buf }> {
  const size = regBytes(id);
  const buf = await ctx.kvm.alloc(size + GUARD_BYTES, {
    init: new Uint8Array(size + GUARD_BYTES).fill(GUARD),
  });
  const r = await ctx.kvm.call(
    vcpu,
    'KVM_GET_ONE_REG',
    { struct: { id, addr: { buf, length: size + GUARD_BYTES } } },
    { hostDependent },
  );
  assertOutcome(r, { ret: 0 }, `KVM_GET_ONE_REG ${id.toString(16)}`);
  const bytes = r.spans.addr ?? (await ctx.kvm.read(buf));
  assertBytes(
    bytes.subarray(size),
    new Uint8Array(GUARD_BYTES).fill(GUARD),
    `bytes after the ${size}-byte value`,
  );
  return { value: bytes.slice(0, size), buf };
}

async function setReg(ctx: CaseContext, vcpu: number, id: bigint, value: Uint8Array, hostDependent = false) {
  return ctx.kvm.call(
    vcpu,
    'KVM_SET_ONE_REG',
    {
      struct: {
        id,
        addr: { buffer: { size: value.length, init: bytesToHex(value) } },
      },
    },
    { hostDependent },
  );
}

function perRegister(
  g: GenerateContext,
  filter: (r: RegisterDef) => boolean,
  body: (r: RegisterDef) => GeneratedCase['run'],
): GeneratedCase[] {
  return catalog(g)
    .filter(filter)
    .map((r) => ({ params: { reg: r.name }, run: body(r) }));
}

const readCatalog: CaseGenerator = (g) =>
  perRegister(
    g,
    () => true,
    (r) => async (ctx) => {
      await getReg(ctx, await vcpuOf(ctx), toBigInt(r.id), r.hostDependent ?? false);
    },
  );

const writeBack: CaseGenerator = (g) =>
  perRegister(
    g,
    () => true,
    (r) => async (ctx) => {
      const vcpu = await vcpuOf(ctx);
      const id = toBigInt(r.id);
      const { value } = await getReg(ctx, vcpu, id, r.hostDependent ?? false);
      assertOutcome(
        await setReg(ctx, vcpu, id, value, r.hostDependent ?? false),
        ruleExpect(g),
        `KVM_SET_ONE_REG ${r.name} with its own value`,
      );
    },
  );

/** A register's value through KVM_GET_ONE_REG, as a number in the vCPU's byte order. */
async function readValue(ctx: CaseContext, vcpu: number, id: bigint, hostDependent = false): Promise<bigint> {
  return bytesToUint((await getReg(ctx, vcpu, id, hostDependent)).value, ctx.kvm.endian);
}

const writeChanged: CaseGenerator = (g) =>
  perRegister(
    g,
    (r) => r.access === 'rw' && r.testValue !== undefined,
    (r) => async (ctx) => {
      const vcpu = await vcpuOf(ctx);
      const id = toBigInt(r.id);
      const size = regBytes(id);
      const wanted = toBigInt(r.testValue ?? '0x0');
      assertOutcome(
        await setReg(ctx, vcpu, id, uintToBytes(wanted, size, ctx.kvm.endian)),
        ruleExpect(g),
        `KVM_SET_ONE_REG ${r.name}`,
      );
      assertValue(await readValue(ctx, vcpu, id), wanted, `${r.name} read back`);
    },
  );

const ALL_64 = (1n << 64n) - 1n;

/** KVM_SET_ONE_REG of a number, which must succeed (`what` names the register in a failure). */
async function writeValue(ctx: CaseContext, vcpu: number, id: bigint, value: bigint, what: string) {
  const w = await setReg(ctx, vcpu, id, uintToBytes(value, regBytes(id), ctx.kvm.endian));
  assertOutcome(w, { ret: 0 }, `KVM_SET_ONE_REG ${what} = ${hex(value)}`);
}

async function writeAndRead(ctx: CaseContext, vcpu: number, id: bigint, value: bigint, what: string) {
  await writeValue(ctx, vcpu, id, value, what);
  return readValue(ctx, vcpu, id);
}

/** LPCR bits KVM-HV lets user space change (kvmppc_set_lpcr): DPFD, ILE, TC, AIL and LD. */
const LPCR_USER_BITS = 0x0070_0000_0000_0000n | 0x0200_0000n | 0x200n | 0x0180_0000n | 0x2_0000n;
const LPCR_ILE = 0x0200_0000n;
const LPCR_AIL = 0x0180_0000n;
const LPCR_AIL_1 = 0x0080_0000n;

/**
 * ppc64 LPCR_64 writes. Every bit flipped: only the user-settable bits may change (each as the host's filter
 * allows), ILE as written, the rest keep their values. AIL 1: refused by every host's filter, so AIL reads
 * back 0 and nothing else changes. AIL 3: the one non-zero value the filter keeps.
 */
const lpcrMasked: CaseGenerator = (g) => {
  const r = register(g, 'KVM_REG_PPC_LPCR_64');
  return (['every-bit-flipped', 'ail-1', 'ail-3'] as const).map((write) => ({
    params: { write },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx);
      const id = toBigInt(r.id);
      const before = await readValue(ctx, vcpu, id, true);
      const ail = { 'ail-1': LPCR_AIL_1, 'ail-3': LPCR_AIL } as const;
      const written = write === 'every-bit-flipped' ? ~before & ALL_64 : (before & ~LPCR_AIL) | ail[write];
      const w = await setReg(ctx, vcpu, id, uintToBytes(written, 8, ctx.kvm.endian), true);
      assertOutcome(w, { ret: 0 }, `KVM_SET_ONE_REG LPCR_64 = ${hex(written)}`);
      const after = await readValue(ctx, vcpu, id, true);
      ctx.note('LPCR', `${hex(before)} -> ${hex(after)}`);
      if (write === 'ail-1') return assertValue(after, before & ~LPCR_AIL, 'LPCR_64 after AIL 1');
      if (write === 'ail-3') return assertValue(after, written, 'LPCR_64 after AIL 3');
      assertValue(
        after & ~LPCR_USER_BITS,
        before & ~LPCR_USER_BITS,
        `LPCR_64 outside the user bits (${hex(LPCR_USER_BITS)})`,
      );
      assertValue(after & LPCR_ILE, written & LPCR_ILE, 'LPCR_64.ILE');
    },
  }));
};

/**
 * ppc64 KVM-HV registers that store something other than the value written (book3s_hv.c): the timebase
 * offset rounded up to 2^24 (wrapping at 2^64), the watchpoint controls without their hypervisor bit, a
 * hypervisor-privilege CIABR without privilege, PSSCR's guest-visible bits, DPDES's own-doorbell bit.
 */
const PPC_ADJUSTED: readonly [string, bigint, bigint][] = [
  ['TB_OFFSET', 0x1n, 0x100_0000n],
  ['TB_OFFSET', 0x100_0001n, 0x200_0000n],
  ['TB_OFFSET', 0xffff_ffff_ff00_0001n, 0n],
  ['DAWRX', ALL_64, ALL_64 & ~0x4n],
  ['DAWRX1', ALL_64, ALL_64 & ~0x4n],
  ['DABRX', 0xffff_ffffn, 0xffff_fffbn],
  ['CIABR', 0x1003n, 0x1000n],
  ['CIABR', 0x1001n, 0x1001n],
  ['PSSCR', ALL_64, 0xf000_0000_0000_03ffn],
  ['DPDES', 0xffn, 0x1n],
];

const ppcAdjusted: CaseGenerator = (g) =>
  PPC_ADJUSTED.map(([name, written, stored]) => {
    const r = register(g, `KVM_REG_PPC_${name}`);
    return {
      params: { reg: r.name, written: hex(written) },
      run: async (ctx: CaseContext) => {
        const back = await writeAndRead(ctx, await vcpuOf(ctx), toBigInt(r.id), written, r.name);
        assertValue(back, stored, `${r.name} read back after writing ${hex(written)}`);
      },
    };
  });

/**
 * ppc64 FPR n is doubleword 1 of VSR n (bytes 8-15 of its little-endian image): a VSR write shows in the FPR,
 * an FPR write changes only that half of the VSR. VR0 is a register apart (VSX register 32, not VSR0).
 */
const ppcFprInVsr: CaseGenerator = (g) => {
  const vsrPattern = 0x0011_2233_4455_6677_8899_aabb_ccdd_eeffn;
  const fprValue = 0x0123_4567_89ab_cdefn;
  const id = (name: string) => toBigInt(register(g, `KVM_REG_PPC_${name}`).id);
  return [
    ...[0, 31].flatMap((n) =>
      (['vsr-then-fpr', 'fpr-then-vsr'] as const).map((order) => ({
        params: { n: String(n), order },
        run: async (ctx: CaseContext) => {
          const vcpu = await vcpuOf(ctx);
          const vsr = id(`VSR${n}`);
          const fpr = id(`FPR${n}`);
          await writeValue(ctx, vcpu, vsr, vsrPattern, `VSR${n}`);
          if (order === 'vsr-then-fpr')
            return assertValue(
              await readValue(ctx, vcpu, fpr),
              vsrPattern >> 64n,
              `FPR${n} after a VSR${n} write`,
            );
          await writeValue(ctx, vcpu, fpr, fprValue, `FPR${n}`);
          const want = (fprValue << 64n) | (vsrPattern & ALL_64);
          assertValue(await readValue(ctx, vcpu, vsr), want, `VSR${n} after an FPR${n} write`);
        },
      })),
    ),
    {
      params: { n: '0', order: 'vr-apart' },
      run: async (ctx: CaseContext) => {
        const vcpu = await vcpuOf(ctx);
        await writeValue(ctx, vcpu, id('VSR0'), vsrPattern, 'VSR0');
        await writeValue(ctx, vcpu, id('VR0'), ~vsrPattern & ((1n << 128n) - 1n), 'VR0');
        assertValue(await readValue(ctx, vcpu, id('VSR0')), vsrPattern, 'VSR0 after a VR0 write');
      },
    },
  ];
};

/** ppc64 PTCR is the VM's, TB_OFFSET the vCPU's own (one vCPU per virtual core): vCPU 1 reads what vCPU 0 wrote, or not. */
const ppcVmWide: CaseGenerator = (g) =>
  (
    [
      ['PTCR', 0x1_0000n, true],
      ['TB_OFFSET', 0x500_0000n, false],
    ] as const
  ).map(([name, value, shared]) => {
    const r = register(g, `KVM_REG_PPC_${name}`);
    return {
      params: { reg: r.name },
      run: async (ctx: CaseContext) => {
        const vm = await vmOf(ctx, 'vcpu-initialized');
        const vcpu = await vcpuOf(ctx);
        const other = await ctx.kvm.setupHandle(vm, 'KVM_CREATE_VCPU', 1n);
        const id = toBigInt(r.id);
        const before = await readValue(ctx, other, id);
        await writeValue(ctx, vcpu, id, value, `${r.name} through vCPU 0`);
        const seen = await readValue(ctx, other, id);
        assertValue(seen, shared ? value : before, `${r.name} through vCPU 1`);
      },
    };
  });

/**
 * TB_OFFSET values the DEC_EXPIRY cases write: 2^62, above any host timebase, so DEC_EXPIRY shows the offset
 * was added; and one that rounds up to 2^64, which wraps to 0.
 */
const TB_OFFSET = 1n << 62n;
const TB_OFFSET_WRAPPING = ALL_64 - 0x10n;
/** An upper bound on any host's timebase: 2^60 ticks is 71 years at 512 MHz. */
const TIMEBASE_BOUND = 1n << 60n;

/**
 * ppc64 DEC_EXPIRY and the first TB_OFFSET write: while DEC_EXPIRY is 0, a TB_OFFSET that rounds to a non-zero
 * value sets it to the host timebase plus that offset (a time in guest timebase at the write); a DEC_EXPIRY
 * user space set first, or one an earlier write set, stays.
 */
const ppcDecExpiry: CaseGenerator = (g) => {
  const dec = toBigInt(register(g, 'KVM_REG_PPC_DEC_EXPIRY').id);
  const tb = toBigInt(register(g, 'KVM_REG_PPC_TB_OFFSET').id);
  return (['first-tb-offset', 'expiry-set-first', 'second-tb-offset', 'tb-offset-wraps-to-0'] as const).map(
    (order) => ({
      params: { order },
      run: async (ctx: CaseContext) => {
        const vcpu = await vcpuOf(ctx);
        assertValue(await readValue(ctx, vcpu, dec), 0n, 'DEC_EXPIRY of a new vCPU');
        if (order === 'expiry-set-first') await writeValue(ctx, vcpu, dec, 0x1234n, 'DEC_EXPIRY');
        const offset = order === 'tb-offset-wraps-to-0' ? TB_OFFSET_WRAPPING : TB_OFFSET;
        await writeValue(ctx, vcpu, tb, offset, 'TB_OFFSET');
        // The host timebase at the write is the host's: only its range is checked.
        const after = await readValue(ctx, vcpu, dec, true);
        ctx.note('DEC_EXPIRY', hex(after));
        if (order === 'expiry-set-first') return assertValue(after, 0x1234n, 'DEC_EXPIRY after TB_OFFSET');
        if (order === 'tb-offset-wraps-to-0') return assertValue(after, 0n, 'DEC_EXPIRY after TB_OFFSET 0');
        assertTrue(
          after > TB_OFFSET && after < TB_OFFSET + TIMEBASE_BOUND,
          `DEC_EXPIRY after TB_OFFSET ${hex(TB_OFFSET)} is that offset plus a host timebase (read ${hex(after)})`,
        );
        if (order === 'first-tb-offset') return;
        await writeValue(ctx, vcpu, tb, TB_OFFSET << 1n, 'TB_OFFSET again');
        assertValue(await readValue(ctx, vcpu, dec, true), after, 'DEC_EXPIRY after a second TB_OFFSET');
      },
    }),
  );
};

/** ppc64 ARCH_COMPAT takes only a logical PVR the host supports (or 0): anything else is refused, nothing changes. */
const ppcArchCompat: CaseGenerator = (g) => {
  const r = register(g, 'KVM_REG_PPC_ARCH_COMPAT');
  const written = 0x1234n;
  return [
    {
      params: { reg: r.name, written: hex(written) },
      run: async (ctx: CaseContext) => {
        const vcpu = await vcpuOf(ctx);
        const id = toBigInt(r.id);
        const before = await getReg(ctx, vcpu, id);
        const w = await setReg(ctx, vcpu, id, uintToBytes(written, regBytes(id), ctx.kvm.endian));
        assertOutcome(w, ruleExpect(g), `KVM_SET_ONE_REG ${r.name} = ${hex(written)}`);
        assertBytes((await getReg(ctx, vcpu, id)).value, before.value, `${r.name} after the refused write`);
      },
    },
  ];
};

const readOnly: CaseGenerator = (g) =>
  perRegister(
    g,
    (r) => r.access === 'ro' && r.writeErrno !== undefined && r.testValue !== undefined,
    (r) => async (ctx) => {
      const vcpu = await vcpuOf(ctx);
      const id = toBigInt(r.id);
      const before = await getReg(ctx, vcpu, id);
      const changed = uintToBytes(toBigInt(r.testValue ?? '0x0'), regBytes(id), ctx.kvm.endian);
      assertOutcome(
        await setReg(ctx, vcpu, id, changed),
        { errno: r.writeErrno ?? 'EINVAL' },
        `KVM_SET_ONE_REG ${r.name}`,
      );
      const after = await getReg(ctx, vcpu, id);
      assertBytes(after.value, before.value, `${r.name} after the refused write`);
    },
  );

/** Random values through SET and back through GET, on the registers that take any value. */
const randomRoundTrip: CaseGenerator = (g) => {
  const regs = catalog(g).filter((r) => r.anyValue);
  if (regs.length === 0) return [];
  return [
    {
      params: { registers: 'any-value' },
      run: async (ctx) => {
        const vcpu = await vcpuOf(ctx);
        const arbitrary = fc.integer({ min: 0, max: regs.length - 1 }).chain((i) => {
          const id = toBigInt(regs[i]?.id ?? '0x0');
          return fc.record({
            reg: fc.constant(i),
            value: fc.bigInt({ min: 0n, max: (1n << BigInt(regBytes(id) * 8)) - 1n }),
          });
        });
        await checkProperty(ctx, arbitrary, async ({ reg, value }) => {
          const r = regs[reg];
          if (!r) throw new Error(`no register ${reg}`);
          const id = toBigInt(r.id);
          assertOutcome(
            await setReg(ctx, vcpu, id, uintToBytes(value, regBytes(id), ctx.kvm.endian)),
            ruleExpect(g),
            `KVM_SET_ONE_REG ${r.name}`,
          );
          assertValue(await readValue(ctx, vcpu, id), value, `${r.name} read back`);
        });
      },
    },
  ];
};

/** Ids of every other arch's first catalogued register, sent to this arch's vCPU. */
const wrongArch: CaseGenerator = (g) =>
  g.spec.arches
    .filter((a) => a !== g.arch)
    .flatMap((other) => {
      const foreign = g.spec.registers(other)[0];
      if (!foreign) return [];
      return [
        {
          params: { from: other, reg: foreign.name },
          run: async (ctx: CaseContext) => {
            const id = toBigInt(foreign.id);
            const r = await ctx.kvm.call(await vcpuOf(ctx), 'KVM_GET_ONE_REG', {
              struct: { id, addr: { buffer: { size: regBytes(id) } } },
            });
            assertOutcome(r, ruleExpect(g), `KVM_GET_ONE_REG of ${other} id ${id.toString(16)}`);
          },
        },
      ];
    });

/** The same register index with every other defined size code. */
const sizeCodes: CaseGenerator = (g) => {
  const base = register(g, g.ref.rule.deriveArgs?.register);
  const id = toBigInt(base.id);
  const own = Number((id & SIZE_MASK) >> SIZE_SHIFT);
  return SIZE_NAMES.flatMap((name, code) =>
    code === own
      ? []
      : [
          {
            params: { reg: base.name, size: name },
            run: async (ctx: CaseContext) => {
              const resized = (id & ~SIZE_MASK) | (BigInt(code) << SIZE_SHIFT);
              const r = await ctx.kvm.call(await vcpuOf(ctx), 'KVM_GET_ONE_REG', {
                struct: { id: resized, addr: { buffer: { size: 1 << code } } },
              });
              assertOutcome(r, ruleExpect(g), `KVM_GET_ONE_REG ${base.name} as ${name}`);
            },
          },
        ],
  );
};

/** GET and SET of a readable register with addr NULL, unmapped, or (GET) read-only. */
const badAddr: CaseGenerator = (g) => {
  const reg =
    catalog(g).find((r) => r.access === 'rw' && r.testValue !== undefined) ?? register(g, undefined);
  const id = toBigInt(reg.id);
  const size = regBytes(id);
  const variants: [string, string, 'null' | 'invalid' | 'readonly'][] = [
    ['KVM_GET_ONE_REG', 'get', 'null'],
    ['KVM_GET_ONE_REG', 'get', 'invalid'],
    ['KVM_GET_ONE_REG', 'get', 'readonly'],
    ['KVM_SET_ONE_REG', 'set', 'null'],
    ['KVM_SET_ONE_REG', 'set', 'invalid'],
  ];
  return variants.map(([ioctl, op, addr]) => ({
    params: { op, reg: reg.name, addr },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx);
      const target = addr === 'readonly' ? { buffer: { size, readonly: true } } : addr;
      const r = await ctx.kvm.call(vcpu, ioctl, { struct: { id, addr: target } });
      assertOutcome(r, ruleExpect(g), `${ioctl} ${reg.name} with a ${addr} addr`);
    },
  }));
};

/** Reads the register list the way every VMM does: ask with n = 0, then with room for all. */
export async function listRegisters(ctx: CaseContext, vcpu: number): Promise<bigint[]> {
  const probe = await ctx.kvm.call(vcpu, 'KVM_GET_REG_LIST', { struct: { n: 0n } }, { hostDependent: true });
  const n = probe.fields.n as bigint;
  if (probe.errno === null) return [];
  assertOutcome(probe, { errno: 'E2BIG' }, 'KVM_GET_REG_LIST with n = 0');
  const full = await ctx.kvm.call(
    vcpu,
    'KVM_GET_REG_LIST',
    { struct: { n, reg: new Array<bigint>(Number(n)).fill(0n) } },
    { hostDependent: true },
  );
  assertOutcome(full, { ret: 0 }, `KVM_GET_REG_LIST with n = ${n}`);
  return (full.fields.reg as bigint[]).slice(0, Number(full.fields.n));
}

const regListTooSmall: CaseGenerator = (g) =>
  (['0', 'count-1'] as const).map((which) => ({
    params: { n: which },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx);
      const count = BigInt((await listRegisters(ctx, vcpu)).length);
      assertTrue(count > 0n, 'the vCPU lists at least one register');
      const n = which === '0' ? 0n : count - 1n;
      const r = await ctx.kvm.call(vcpu, 'KVM_GET_REG_LIST', {
        struct: { n, reg: new Array<bigint>(Number(n)).fill(0n) },
      });
      assertOutcome(r, ruleExpect(g), `KVM_GET_REG_LIST with n = ${n}`);
      assertValue(r.fields.n as bigint, count, 'n written back');
      ctx.note('registers', count.toString());
    },
  }));

const regListComplete: CaseGenerator = (g) => [
  {
    params: { n: 'count+4' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx);
      const ids = await listRegisters(ctx, vcpu);
      const room = ids.length + 4;
      const r = await ctx.kvm.call(vcpu, 'KVM_GET_REG_LIST', {
        struct: { n: BigInt(room), reg: new Array<bigint>(room).fill(0n) },
      });
      assertOutcome(r, ruleExpect(g), `KVM_GET_REG_LIST with n = ${room}`);
      assertValue(r.fields.n as bigint, BigInt(ids.length), 'n after the call');
      const listed = (r.fields.reg as bigint[]).slice(0, ids.length);
      assertTrue(new Set(listed).size === listed.length, 'listed ids are distinct');
      const arch = toBigInt(ctx.spec.archInfo(ctx.arch).regArch);
      const foreign = listed.filter((id) => (id & 0xff00_0000_0000_0000n) !== arch);
      assertTrue(
        foreign.length === 0,
        `every listed id has the ${ctx.arch} arch field (first foreign: ${foreign[0]?.toString(16)})`,
      );
      ctx.note('registers', String(ids.length));
    },
  },
];

const regListReadListed: CaseGenerator = () => [
  {
    params: { ids: 'all' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx);
      // Asked for together: the reads are independent and a backend answers in order, so the kernel sees
      // the same ioctls in the same order, and a backend behind a slow channel (QEMU) pays a few round
      // trips instead of a few per register.
      const ids = await listRegisters(ctx, vcpu);
      await Promise.all(ids.map((id) => getReg(ctx, vcpu, id, true)));
    },
  },
];

const regListCatalogListed: CaseGenerator = (g) => [
  {
    params: { catalog: g.arch },
    run: async (ctx) => {
      const listed = new Set(await listRegisters(ctx, await vcpuOf(ctx)));
      const missing = ctx.spec.registers(ctx.arch).filter((r) => !listed.has(toBigInt(r.id)));
      assertTrue(
        missing.length === 0,
        `catalogued registers missing from the list: ${missing.map((r) => r.name).join(', ')}`,
      );
    },
  },
];

export const oneReg: SuiteFamily = {
  generators: {
    'one-reg.read-catalog': readCatalog,
    'one-reg.write-back': writeBack,
    'one-reg.write-changed': writeChanged,
    'one-reg.lpcr-masked': lpcrMasked,
    'one-reg.ppc-adjusted': ppcAdjusted,
    'one-reg.ppc-fpr-in-vsr': ppcFprInVsr,
    'one-reg.ppc-arch-compat': ppcArchCompat,
    'one-reg.ppc-vm-wide': ppcVmWide,
    'one-reg.ppc-dec-expiry': ppcDecExpiry,
    'one-reg.read-only': readOnly,
    'one-reg.random-roundtrip': randomRoundTrip,
    'one-reg.wrong-arch': wrongArch,
    'one-reg.size-codes': sizeCodes,
    'one-reg.bad-addr': badAddr,
    'reg-list.too-small': regListTooSmall,
    'reg-list.complete': regListComplete,
    'reg-list.read-listed': regListReadListed,
    'reg-list.catalog-listed': regListCatalogListed,
  },
};
