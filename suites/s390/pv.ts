import { assertBytes, assertOutcome, assertValue, expectOf } from '../../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator } from '../../harness/plan/types.ts';
import { encodeStruct } from '../../harness/abi/codec.ts';
import type { CallResult } from '../../harness/session.ts';
import { buffer, flagsOf, guest, memop, pattern, s390, type Guest, type OpName } from './guest.ts';
import { cases, hex, requireCapability } from './plan.ts';

function pvCommand(ctx: CaseContext, g: Guest, cmd: 'KVM_PV_ENABLE' | 'KVM_PV_DISABLE'): Promise<CallResult> {
  return ctx.kvm.call(g.vm, 'KVM_S390_PV_COMMAND', { struct: { cmd: s390(ctx, cmd), flags: 0n } });
}

/** A VM with RAM and a vCPU, converted to protected mode through the real KVM_PV_ENABLE path. */
async function protectedGuest(ctx: CaseContext): Promise<Guest> {
  requireCapability(ctx, 'protected virtualization (KVM_CAP_S390_PROTECTED)');
  const g = await guest(ctx);
  await ctx.kvm.setup(g.vm, 'KVM_S390_PV_COMMAND', {
    struct: { cmd: s390(ctx, 'KVM_PV_ENABLE'), flags: 0n },
  });
  return g;
}

const pvEnable: CaseGenerator = (g) => [
  {
    params: { vcpus: '1' },
    tags: ['needs-pv'],
    run: async (ctx) => {
      const gu = await guest(ctx);
      const r = await pvCommand(ctx, gu, 'KVM_PV_ENABLE');
      const absent = g.ref.rule.capability?.absent;
      if (!ctx.capabilityPresent && absent)
        return assertOutcome(r, absent, 'KVM_PV_ENABLE without PV support');
      assertOutcome(r, expectOf(g), 'KVM_PV_ENABLE');
      assertValue(r.fields.rc as bigint, 1n, 'Ultravisor return code');
    },
  },
];

const pvEnableTwice: CaseGenerator = (g) => [
  {
    params: { enable: 'twice' },
    tags: ['needs-pv'],
    run: async (ctx) => {
      const gu = await protectedGuest(ctx);
      assertOutcome(await pvCommand(ctx, gu, 'KVM_PV_ENABLE'), expectOf(g), 'a second KVM_PV_ENABLE');
    },
  },
];

/** DISABLE converts the VM and its vCPUs back: no SIDA any more, logical memops work again. */
const pvDisable: CaseGenerator = (g) => [
  {
    params: { enable: 'then-disable' },
    tags: ['needs-pv'],
    run: async (ctx) => {
      const gu = await protectedGuest(ctx);
      const r = await pvCommand(ctx, gu, 'KVM_PV_DISABLE');
      assertOutcome(r, expectOf(g), 'KVM_PV_DISABLE of a protected VM');
      assertValue(r.fields.rc as bigint, 1n, 'Ultravisor return code');
      const buf = { buf: await buffer(ctx, 8) };
      const sida = await memop(ctx, gu, { op: 'SIDA_READ', size: 8, buf });
      assertOutcome(sida, { errno: 'EINVAL' }, 'SIDA_READ on the unprotected vCPU');
      const logical = await memop(ctx, gu, { op: 'LOGICAL_READ', size: 8, buf });
      assertOutcome(logical, { ret: 0 }, 'LOGICAL_READ once the VM is unprotected');
      const absolute = await memop(ctx, gu, { op: 'ABSOLUTE_READ', size: 8, buf });
      assertOutcome(absolute, { ret: 0 }, 'VM ABSOLUTE_READ once the VM is unprotected');
    },
  },
];

/** A vCPU created in a protected VM is protected from the start: it has a SIDA. */
const pvVcpuAfterEnable: CaseGenerator = (g) => [
  {
    params: { vcpu: 'created-after-enable' },
    tags: ['needs-pv'],
    run: async (ctx) => {
      const gu = await protectedGuest(ctx);
      const vcpu = await ctx.kvm.setupHandle(gu.vm, 'KVM_CREATE_VCPU', 1n);
      const late = { ...gu, vcpu };
      const data = pattern(8, 3);
      const w = await memop(ctx, late, {
        op: 'SIDA_WRITE',
        size: 8,
        buf: { buf: await buffer(ctx, 8, data) },
      });
      assertOutcome(w, expectOf(g), 'SIDA_WRITE on the new vCPU');
      const r = await memop(ctx, late, { op: 'SIDA_READ', size: 8, buf: { buf: await buffer(ctx, 8) } });
      assertOutcome(r, expectOf(g), 'SIDA_READ on the new vCPU');
      assertBytes(r.spans.buf ?? new Uint8Array(0), data, 'the SIDA bytes read back');
    },
  },
];

const sidaProtected: CaseGenerator = (g) =>
  cases(
    [
      { offset: 0, size: 8 },
      { offset: 0x1c0, size: 64 },
      { offset: 0, size: 4096 },
      { offset: 4095, size: 1 },
    ],
    ({ offset, size }) => ({ offset: hex(offset), size: String(size) }),
    async (ctx, { offset, size }) => {
      const gu = await protectedGuest(ctx);
      const data = pattern(size, 8);
      const sida = { sida_offset: BigInt(offset) };
      const w = await memop(ctx, gu, {
        op: 'SIDA_WRITE',
        size,
        buf: { buf: await buffer(ctx, size, data) },
        extra: sida,
      });
      assertOutcome(w, expectOf(g), `SIDA_WRITE of ${size} at ${hex(offset)}`);
      const r = await memop(ctx, gu, {
        op: 'SIDA_READ',
        size,
        buf: { buf: await buffer(ctx, size) },
        extra: sida,
      });
      assertOutcome(r, expectOf(g), `SIDA_READ of ${size} at ${hex(offset)}`);
      assertBytes(r.spans.buf ?? new Uint8Array(0), data, 'the SIDA bytes read back');
    },
  );

const sidaProtectedE2big: CaseGenerator = (g) =>
  cases(
    (['SIDA_READ', 'SIDA_WRITE'] as const).flatMap((op) =>
      [
        { offset: 4095, size: 2 },
        { offset: 0, size: 4097 },
      ].map((c) => ({ op, ...c })),
    ),
    ({ op, offset, size }) => ({ op, offset: hex(offset), size: String(size) }),
    async (ctx, { op, offset, size }) => {
      const gu = await protectedGuest(ctx);
      const r = await memop(ctx, gu, {
        op,
        size,
        buf: { buf: await buffer(ctx, size) },
        extra: { sida_offset: BigInt(offset) },
      });
      assertOutcome(r, expectOf(g), `${op} of ${size} at ${hex(offset)} on a protected vCPU`);
    },
  );

/** A protected vCPU's SIDA ops still take no flags and no size 0. */
const sidaProtectedEinval: CaseGenerator = (g) =>
  cases(
    (['SIDA_READ', 'SIDA_WRITE'] as const).flatMap((op) =>
      [
        { name: 'flag', size: 8, flags: ['CHECK_ONLY'] as const },
        { name: 'size-0', size: 0, flags: [] as const },
      ].map((c) => ({ op, ...c })),
    ),
    ({ op, name }) => ({ op, case: name }),
    async (ctx, { op, size, flags }) => {
      const gu = await protectedGuest(ctx);
      const r = await memop(ctx, gu, {
        op,
        size,
        flags: flagsOf(ctx, [...flags]),
        buf: { buf: await buffer(ctx, 8) },
      });
      assertOutcome(r, expectOf(g), `${op} of ${size} bytes on a protected vCPU`);
    },
  );

const pvRejects: CaseGenerator = (g) =>
  cases(
    [
      { op: 'LOGICAL_READ', flags: [] },
      { op: 'LOGICAL_WRITE', flags: [] },
      { op: 'LOGICAL_READ', flags: ['CHECK_ONLY'] },
      { op: 'ABSOLUTE_READ', flags: [] },
      { op: 'ABSOLUTE_WRITE', flags: [] },
      { op: 'ABSOLUTE_READ', flags: ['INJECT_EXCEPTION'] },
    ] as { op: OpName; flags: ('CHECK_ONLY' | 'INJECT_EXCEPTION')[] }[],
    ({ op, flags }) => ({ op, flags: flags.join('+') || 'none' }),
    async (ctx, { op, flags }) => {
      const gu = await protectedGuest(ctx);
      const r = await memop(ctx, gu, {
        op,
        size: 8,
        flags: flagsOf(ctx, flags),
        buf: { buf: await buffer(ctx, 8) },
      });
      assertOutcome(r, expectOf(g), `${op} on a protected guest`);
    },
  );

/**
 * KVM copies kvm_pv_cmd back after handling the command, whatever the outcome; only a bad flag (checked
 * before) returns without the copy. So the struct in read-only memory turns every handled command into
 * EFAULT, and in writable memory the error stands with rc and rrc as user space left them.
 */
const pvCopyBack: CaseGenerator = (g) =>
  cases(
    [
      { cmd: 'unknown', readonly: true },
      { cmd: 'unknown', readonly: false },
      { cmd: 'bad-flags', readonly: true },
    ] as const,
    ({ cmd, readonly }) => ({ cmd, arg: readonly ? 'read-only' : 'writable' }),
    async (ctx, { cmd, readonly }) => {
      requireCapability(ctx, 'protected virtualization (KVM_CAP_S390_PROTECTED)');
      const gu = await guest(ctx);
      const layout = ctx.spec.layout('kvm_pv_cmd', { arch: ctx.arch, revision: ctx.revision });
      const values = { cmd: 0x100n, flags: cmd === 'bad-flags' ? 1n : 0n, rc: 0x1234n, rrc: 0x5678n };
      const init = encodeStruct(layout, values, ctx.kvm.endian);
      const arg = await ctx.kvm.alloc(layout.size, { init, readonly });
      const r = await ctx.kvm.call(gu.vm, 'KVM_S390_PV_COMMAND', { pointer: { buf: arg } });
      const expected =
        readonly && cmd === 'unknown' ? expectOf(g) : { errno: cmd === 'unknown' ? 'ENOTTY' : 'EINVAL' };
      assertOutcome(
        r,
        expected,
        `KVM_S390_PV_COMMAND (${cmd}) in ${readonly ? 'read-only' : 'writable'} memory`,
      );
      assertBytes(await ctx.kvm.read(arg), init, 'the kvm_pv_cmd afterwards');
    },
  );

export const pvGenerators: Record<string, CaseGenerator> = {
  'pv-enable': pvEnable,
  'pv-enable-twice': pvEnableTwice,
  'pv-disable': pvDisable,
  'pv-vcpu-after-enable': pvVcpuAfterEnable,
  'sida-protected': sidaProtected,
  'sida-protected-e2big': sidaProtectedE2big,
  'sida-protected-einval': sidaProtectedEinval,
  'pv-rejects': pvRejects,
  'pv-copy-back': pvCopyBack,
};
