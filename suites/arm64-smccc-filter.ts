/**
 * The arm64 SMCCC filter (arch/arm64/kvm/hypercalls.c, Documentation/virt/kvm/devices/vm.rst): ranges of
 * function ids set through KVM_SET_DEVICE_ATTR on the VM fd, each handled by KVM, denied, or forwarded to
 * user space as KVM_EXIT_HYPERCALL. The guest side runs the same small programs as the hypercall cases.
 */
import { bytesToHex } from '../harness/spec/int.ts';
import { encodeStruct } from '../harness/abi/codec.ts';
import { assertOutcome, assertValue } from '../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator, GeneratedCase, SuiteFamily } from '../harness/plan/types.ts';
import type { PointerArg } from '../harness/session.ts';
import type { Outcome } from '../harness/spec/types.ts';
import { vmOf } from './fixtures.ts';
import {
  a64,
  arm64Constant as c,
  assertExit,
  callThrough,
  expectReports,
  getReg64,
  loadProgram,
  nextReport,
  oneCase,
  regId,
  report,
  runOnce,
  setReg64,
  setupGuest,
  SMCCC_NOT_SUPPORTED,
  systemOff,
  type Guest,
} from './arm64-guest.ts';

type Action = 'KVM_SMCCC_FILTER_HANDLE' | 'KVM_SMCCC_FILTER_DENY' | 'KVM_SMCCC_FILTER_FWD_TO_USER';

interface Filter {
  base: bigint;
  nr: bigint;
  /** An action name, or a raw number for the invalid ones. */
  action: Action | bigint;
  /** A non-zero pad byte. */
  dirtyPad?: boolean;
}

/** A function id in the vendor-hypervisor range that KVM does not implement (the PV-lock proposal's). */
const VENDOR_ID = 0xc600_0020n;

/** The filter as kvm_smccc_filter bytes, for a fresh buffer's init. */
function filterBytes(ctx: CaseContext, f: Filter): string {
  const layout = ctx.spec.layout('kvm_smccc_filter', { arch: ctx.arch });
  const pad = new Array<bigint>(15).fill(0n);
  if (f.dirtyPad) pad[14] = 1n;
  const action = typeof f.action === 'bigint' ? f.action : c(ctx, f.action);
  return bytesToHex(encodeStruct(layout, { base: f.base, nr_functions: f.nr, action, pad }, ctx.kvm.endian));
}

/** KVM_SET_DEVICE_ATTR of the VM's SMCCC filter (or another attribute); the caller judges the outcome. */
function setAttr(ctx: CaseContext, vm: number, addr: PointerArg, attr = c(ctx, 'KVM_ARM_VM_SMCCC_FILTER')) {
  return ctx.kvm.call(vm, 'KVM_SET_DEVICE_ATTR', {
    struct: { group: c(ctx, 'KVM_ARM_VM_SMCCC_CTRL'), attr, addr },
  });
}

const setFilter = (ctx: CaseContext, vm: number, f: Filter) =>
  setAttr(ctx, vm, { buffer: { size: 24, init: filterBytes(ctx, f) } });

async function setFilterOk(ctx: CaseContext, vm: number, f: Filter): Promise<void> {
  const what = `SMCCC filter 0x${f.base.toString(16)} + ${f.nr} ${String(f.action)}`;
  assertOutcome(await setFilter(ctx, vm, f), { ret: 0 }, what);
}

const hasAttr: CaseGenerator = () =>
  (
    [
      ['filter', 0n, 0n, { ret: 0 }],
      ['attr-1', 0n, 1n, { errno: 'ENXIO' }],
      ['group-1', 1n, 0n, { errno: 'ENXIO' }],
    ] as const
  ).flatMap(([name, groupOffset, attr, outcome]) =>
    oneCase({ case: name }, async (ctx) => {
      const vm = await vmOf(ctx);
      const group = c(ctx, 'KVM_ARM_VM_SMCCC_CTRL') + groupOffset;
      const r = await ctx.kvm.call(vm, 'KVM_HAS_DEVICE_ATTR', { struct: { group, attr, addr: 'null' } });
      assertOutcome(r, outcome, `KVM_HAS_DEVICE_ATTR group ${group} attr ${attr} on the VM`);
    }),
  );

const DENY: Action = 'KVM_SMCCC_FILTER_DENY';
const FORWARD: Action = 'KVM_SMCCC_FILTER_FWD_TO_USER';

/** Filters the set refuses, and why: each case sets one on a fresh VM. */
const INVALID: { name: string; filter: Filter | 'invalid-addr' | 'other-attr'; outcome: Outcome }[] = [
  {
    name: 'pad',
    filter: { base: VENDOR_ID, nr: 1n, action: DENY, dirtyPad: true },
    outcome: { errno: 'EINVAL' },
  },
  { name: 'nr-0', filter: { base: VENDOR_ID, nr: 0n, action: DENY }, outcome: { errno: 'EINVAL' } },
  {
    name: 'past-4g',
    filter: { base: 0xffff_ff00n, nr: 0x101n, action: DENY },
    outcome: { errno: 'EINVAL' },
  },
  { name: 'to-4g', filter: { base: 0xffff_ff00n, nr: 0x100n, action: DENY }, outcome: { ret: 0 } },
  { name: 'action-3', filter: { base: VENDOR_ID, nr: 1n, action: 3n }, outcome: { errno: 'EINVAL' } },
  { name: 'invalid-addr', filter: 'invalid-addr', outcome: { errno: 'EFAULT' } },
  { name: 'other-attr', filter: 'other-attr', outcome: { errno: 'ENXIO' } },
];

const setInvalid: CaseGenerator = () =>
  INVALID.flatMap(({ name, filter, outcome }) =>
    oneCase({ case: name }, async (ctx) => {
      const vm = await vmOf(ctx);
      const r =
        filter === 'invalid-addr'
          ? await setAttr(ctx, vm, 'invalid')
          : filter === 'other-attr'
            ? await setAttr(ctx, vm, { buffer: { size: 24 } }, 1n)
            : await setFilter(ctx, vm, filter);
      assertOutcome(r, outcome, `KVM_SET_DEVICE_ATTR SMCCC filter: ${name}`);
    }),
  );

/** Two filters in a row: the second one's outcome is the case's. */
const OVERLAPS: { name: string; first?: Filter; second: Filter; outcome: Outcome }[] = [
  {
    name: 'overlap',
    first: { base: VENDOR_ID, nr: 0x10n, action: DENY },
    second: { base: VENDOR_ID + 0xfn, nr: 0x10n, action: FORWARD },
    outcome: { errno: 'EEXIST' },
  },
  {
    name: 'adjacent',
    first: { base: VENDOR_ID, nr: 0x10n, action: DENY },
    second: { base: VENDOR_ID + 0x10n, nr: 0x10n, action: FORWARD },
    outcome: { ret: 0 },
  },
  {
    name: 'arch-smc32-first-filter',
    second: { base: 0x8000_ff00n, nr: 0x200n, action: DENY },
    outcome: { errno: 'EEXIST' },
  },
  {
    name: 'arch-smc64',
    first: { base: VENDOR_ID, nr: 1n, action: DENY },
    second: { base: 0xc000_0000n, nr: 1n, action: FORWARD },
    outcome: { errno: 'EEXIST' },
  },
  { name: 'after-arch-smc32', second: { base: 0x8001_0000n, nr: 0x10n, action: DENY }, outcome: { ret: 0 } },
];

const setOverlap: CaseGenerator = () =>
  OVERLAPS.flatMap(({ name, first, second, outcome }) =>
    oneCase({ case: name }, async (ctx) => {
      const vm = await vmOf(ctx);
      if (first) await setFilterOk(ctx, vm, first);
      assertOutcome(await setFilter(ctx, vm, second), outcome, `the SMCCC filter: ${name}`);
    }),
  );

const setAfterRun: CaseGenerator = () =>
  (
    [
      ['valid', { base: VENDOR_ID, nr: 1n, action: DENY }, { errno: 'EBUSY' }],
      ['pad', { base: VENDOR_ID, nr: 1n, action: DENY, dirtyPad: true }, { errno: 'EINVAL' }],
    ] as const
  ).flatMap(([name, filter, outcome]) =>
    oneCase({ filter: name }, async (ctx) => {
      const g = await setupGuest(ctx);
      await loadProgram(ctx, g, g.vcpu, report(0, 0));
      await nextReport(ctx, g, 'the guest before the filter', 0);
      assertOutcome(await setFilter(ctx, g.vm, filter), outcome, `a ${name} SMCCC filter after KVM_RUN`);
    }),
  );

/** PSCI_VERSION's answer when KVM handles it: the firmware register's value (PSCI-VAL-002). */
const psciVersion = (ctx: CaseContext, g: Guest) =>
  getReg64(ctx, g.vcpu, regId(ctx, 'KVM_REG_ARM_PSCI_VERSION'), 'PSCI_VERSION');

type Conduit = 'hvc' | 'smc';

/**
 * A filter of one function id, then the guest's call of it (through HVC #0 unless the conduit says SMC #0):
 * `denied` calls answer NOT_SUPPORTED.
 */
const DENIALS: { name: string; fn: string; action: Action; denied: boolean; conduit?: Conduit }[] = [
  { name: 'psci-version-denied', fn: 'PSCI_0_2_FN_PSCI_VERSION', action: DENY, denied: true },
  {
    name: 'psci-version-denied-smc',
    fn: 'PSCI_0_2_FN_PSCI_VERSION',
    action: DENY,
    denied: true,
    conduit: 'smc',
  },
  // MIGRATE_INFO_TYPE answers 2 when KVM handles it (PSCI-VAL-008).
  { name: 'migrate-info-type-denied', fn: 'PSCI_0_2_FN_MIGRATE_INFO_TYPE', action: DENY, denied: true },
  {
    name: 'psci-version-handled',
    fn: 'PSCI_0_2_FN_PSCI_VERSION',
    action: 'KVM_SMCCC_FILTER_HANDLE',
    denied: false,
  },
];

async function guestCall(
  ctx: CaseContext,
  g: Guest,
  fid: bigint,
  expected: bigint,
  what: string,
  conduit: Conduit,
) {
  const dirty = [1n, 2n, 3n];
  await expectReports(
    ctx,
    g,
    [...callThrough(a64[conduit](0), fid, ...dirty), ...[0, 1, 2, 3].flatMap((r) => report(r, r))],
    [[`x0 after ${what}`, expected], ...[1, 2, 3].map((r): [string, bigint] => [`x${r} after ${what}`, 0n])],
  );
}

const deny: CaseGenerator = () => [
  ...DENIALS.flatMap(({ name, fn, action, denied, conduit = 'hvc' }) =>
    oneCase({ case: name }, async (ctx) => {
      const g = await setupGuest(ctx);
      await setFilterOk(ctx, g.vm, { base: c(ctx, fn), nr: 1n, action });
      const expected = denied ? SMCCC_NOT_SUPPORTED : await psciVersion(ctx, g);
      await guestCall(ctx, g, c(ctx, fn), expected, fn, conduit);
    }),
  ),
  // A filter elsewhere leaves PSCI_VERSION to KVM.
  ...oneCase({ case: 'uncovered' }, async (ctx) => {
    const g = await setupGuest(ctx);
    await setFilterOk(ctx, g.vm, { base: VENDOR_ID, nr: 1n, action: DENY });
    const fn = 'PSCI_0_2_FN_PSCI_VERSION';
    await guestCall(ctx, g, c(ctx, fn), await psciVersion(ctx, g), fn, 'hvc');
  }),
];

/**
 * Runs until the guest's forwarded call: KVM_EXIT_HYPERCALL with the function id, and flags that say the
 * conduit (KVM_HYPERCALL_EXIT_SMC for an SMC; an AArch64 instruction is never 16-bit).
 */
async function expectForwarded(
  ctx: CaseContext,
  g: Guest,
  fid: bigint,
  what: string,
  conduit: Conduit = 'hvc',
): Promise<void> {
  const s = await runOnce(ctx, g);
  assertExit(ctx, s, 'KVM_EXIT_HYPERCALL', what);
  assertValue(s.nr as bigint, fid, `${what}: hypercall.nr`);
  const flags = conduit === 'smc' ? c(ctx, 'KVM_HYPERCALL_EXIT_SMC') : 0n;
  assertValue(s['hypercall.flags'] as bigint, flags, `${what}: hypercall.flags (an AArch64 ${conduit})`);
}

const forward: CaseGenerator = (): GeneratedCase[] => [
  ...(['hvc', 'smc'] as const).flatMap((conduit) =>
    oneCase({ case: conduit === 'hvc' ? 'vendor-call' : 'vendor-call-smc' }, async (ctx) => {
      const g = await setupGuest(ctx);
      await setFilterOk(ctx, g.vm, { base: VENDOR_ID, nr: 1n, action: FORWARD });
      // The guest calls with x1 = 0x11, then reports x0 and x1: user space answered x0, x1 is untouched.
      const call = callThrough(a64[conduit](0), VENDOR_ID, 0x11n);
      await loadProgram(ctx, g, g.vcpu, [...call, ...report(0, 0), ...report(1, 1)]);
      await expectForwarded(ctx, g, VENDOR_ID, 'the forwarded call', conduit);
      const answer = 0x1234_5678n;
      assertOutcome(await setReg64(ctx, g.vcpu, regId(ctx, 'X0'), answer), { ret: 0 }, 'KVM_SET_ONE_REG X0');
      assertValue(await nextReport(ctx, g, 'x0 after the forwarded call', 0), answer, 'x0 user space set');
      assertValue(
        await nextReport(ctx, g, 'x1 after the forwarded call', 1),
        0x11n,
        'x1 as the guest left it',
      );
    }),
  ),
  ...oneCase({ case: 'system-off' }, async (ctx) => {
    const g = await setupGuest(ctx);
    const off = c(ctx, 'PSCI_0_2_FN_SYSTEM_OFF');
    await setFilterOk(ctx, g.vm, { base: off, nr: 1n, action: FORWARD });
    await loadProgram(ctx, g, g.vcpu, systemOff(ctx));
    await expectForwarded(ctx, g, off, 'the forwarded SYSTEM_OFF');
  }),
];

export const arm64SmcccFilter: SuiteFamily = {
  generators: {
    'arm64-smccc-filter.has-attr': hasAttr,
    'arm64-smccc-filter.set-invalid': setInvalid,
    'arm64-smccc-filter.set-overlap': setOverlap,
    'arm64-smccc-filter.set-after-run': setAfterRun,
    'arm64-smccc-filter.deny': deny,
    'arm64-smccc-filter.forward': forward,
  },
};
