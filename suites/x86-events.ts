// x86 vCPU events through KVM_{GET,SET}_VCPU_EVENTS: what a new vCPU reports, what a set reads back, the
// checks, the NMI count's cap, the SIPI vector, and the pending interrupt KVM_{GET,SET}_SREGS share.
import type { StructValues } from '../harness/abi/codec.ts';
import { assertOutcome } from '../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator, GeneratedCase, SuiteFamily } from '../harness/plan/types.ts';
import { expectMpState, setMpState, vcpuOf, vmOf } from './fixtures.ts';
import {
  assertRegisters,
  bitmapWith,
  everyField,
  getRegs,
  getSregs,
  getState,
  setSregs,
} from './x86-registers.ts';

type Flag = 'NMI_PENDING' | 'SIPI_VECTOR' | 'SHADOW' | 'SMM' | 'PAYLOAD' | 'TRIPLE_FAULT';
const flag = (ctx: CaseContext, ...names: Flag[]) =>
  names.reduce((all, n) => all | ctx.spec.constant(`KVM_VCPUEVENT_VALID_${n}`, 'x86_64'), 0n);
/** Both interrupt-shadow bits: the one value VMX and SVM both read back as set. */
const SHADOW_BOTH = 3n;

const getEvents = (ctx: CaseContext, vcpu: number, what: string) =>
  getState(ctx, vcpu, 'KVM_GET_VCPU_EVENTS', 'kvm_vcpu_events', what);

/** KVM_SET_VCPU_EVENTS with the given fields; the encoder leaves every other one 0. */
function setEvents(ctx: CaseContext, vcpu: number, values: StructValues) {
  return ctx.kvm.call(vcpu, 'KVM_SET_VCPU_EVENTS', { struct: values });
}

/** What GET reports for no event at all, field by field: zeros, and the flags of the parts it always reports. */
const noEvents = (ctx: CaseContext): StructValues => ({
  ...everyField(ctx, 'kvm_vcpu_events', 'zeros'),
  flags: flag(ctx, 'NMI_PENDING', 'SHADOW', 'SMM'),
});

/** EVENTS-GET-001. */
const fresh: CaseGenerator = () => [
  {
    params: { vcpu: '0' },
    run: async (ctx) => {
      const got = await getEvents(ctx, await vcpuOf(ctx, 'vcpu'), 'a new vCPU');
      assertRegisters(got, noEvents(ctx), 'of a new vCPU');
    },
  },
];

/** EVENTS-GET-002: the pending interrupt through SREGS and through events, and a soft one. */
const interrupt: CaseGenerator = () => [
  {
    params: { via: 'sregs' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const sregs = await getSregs(ctx, vcpu, 'vCPU 0');
      const set = await setSregs(ctx, vcpu, { ...sregs, interrupt_bitmap: bitmapWith(67) });
      assertOutcome(set, { ret: 0 }, 'KVM_SET_SREGS with vector 67 in interrupt_bitmap');
      const got = await getEvents(ctx, vcpu, 'vCPU 0 after KVM_SET_SREGS');
      assertRegisters(got, { 'interrupt.injected': 1n, 'interrupt.nr': 67n }, 'after KVM_SET_SREGS');
    },
  },
  ...[
    { name: 'events', soft: 0n, bitmap: bitmapWith(0x41), injected: 1n },
    { name: 'events-soft', soft: 1n, bitmap: bitmapWith(), injected: 0n },
  ].map(({ name, soft, bitmap, injected }) => ({
    params: { via: name },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const what = `KVM_SET_VCPU_EVENTS injecting vector 0x41${soft ? ' as a soft interrupt' : ''}`;
      const r = await setEvents(ctx, vcpu, {
        'interrupt.injected': 1n,
        'interrupt.nr': 0x41n,
        'interrupt.soft': soft,
      });
      assertOutcome(r, { ret: 0 }, what);
      const got = await getEvents(ctx, vcpu, `vCPU 0 after ${what}`);
      assertRegisters(
        got,
        { 'interrupt.injected': injected, 'interrupt.nr': 0x41n, 'interrupt.soft': 0n },
        `after ${what}`,
      );
      const sregs = await getSregs(ctx, vcpu, `vCPU 0 after ${what}`);
      assertRegisters(sregs, { interrupt_bitmap: bitmap }, `after ${what}`);
    },
  })),
];

/** EVENTS-SET-001: set, read back; a set without the shadow flag keeps the shadow, and drops a pending exception. */
const roundtrip: CaseGenerator = () => [
  {
    params: { parts: 'exception.interrupt.nmi.shadow' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const state = {
        'exception.injected': 1n,
        'exception.nr': 13n,
        'exception.has_error_code': 1n,
        'exception.error_code': 0x10n,
        'interrupt.injected': 1n,
        'interrupt.nr': 0x30n,
        'interrupt.shadow': SHADOW_BOTH,
        'nmi.injected': 1n,
        'nmi.masked': 1n,
        flags: flag(ctx, 'SHADOW'),
      };
      assertOutcome(await setEvents(ctx, vcpu, state), { ret: 0 }, 'KVM_SET_VCPU_EVENTS');
      const got = await getEvents(ctx, vcpu, 'vCPU 0 after KVM_SET_VCPU_EVENTS');
      // GET reports its own flags, not the ones the set carried.
      const none = noEvents(ctx);
      assertRegisters(got, { ...none, ...state, flags: none.flags! }, 'after KVM_SET_VCPU_EVENTS');
      const pending = { 'exception.pending': 1n, 'exception.nr': 14n, 'interrupt.shadow': 0n };
      const what = 'KVM_SET_VCPU_EVENTS of a pending exception, without the shadow and payload flags';
      assertOutcome(await setEvents(ctx, vcpu, pending), { ret: 0 }, what);
      const after = await getEvents(ctx, vcpu, `vCPU 0 after ${what}`);
      const expected = { ...none, 'exception.nr': 14n, 'interrupt.shadow': SHADOW_BOTH };
      assertRegisters(after, expected, `after ${what}`);
    },
  },
];

/**
 * Cases whose one KVM_SET_VCPU_EVENTS vCPU 0 refuses with EINVAL (nothing changed: an earlier set's exception
 * stays) or takes (its exception reads back).
 */
function attempts(
  list: { name: string; values: (ctx: CaseContext) => StructValues; accepted?: boolean }[],
): CaseGenerator {
  return () =>
    list.map(({ name, values, accepted }) => ({
      params: { set: name },
      run: async (ctx: CaseContext) => {
        const vcpu = await vcpuOf(ctx, 'vcpu');
        const earlier = { 'exception.injected': 1n, 'exception.nr': 6n };
        assertOutcome(await setEvents(ctx, vcpu, earlier), { ret: 0 }, 'KVM_SET_VCPU_EVENTS of a #UD');
        const before = await getEvents(ctx, vcpu, 'vCPU 0');
        const given = values(ctx);
        const r = await setEvents(ctx, vcpu, given);
        assertOutcome(r, accepted ? { ret: 0 } : { errno: 'EINVAL' }, `KVM_SET_VCPU_EVENTS with ${name}`);
        const got = await getEvents(ctx, vcpu, `vCPU 0 after KVM_SET_VCPU_EVENTS with ${name}`);
        const expected = accepted
          ? { 'exception.injected': given['exception.injected']!, 'exception.nr': given['exception.nr']! }
          : before;
        assertRegisters(got, expected, `after ${accepted ? 'the accepted' : 'the refused'} set with ${name}`);
      },
    }));
}

const exceptionOf = (injected: bigint, nr: bigint) => () => ({
  'exception.injected': injected,
  'exception.nr': nr,
});

/** EVENTS-SET-002. */
const exceptionVector = attempts([
  { name: 'injected-32', values: exceptionOf(1n, 32n) },
  { name: 'injected-nmi', values: exceptionOf(1n, 2n) },
  { name: 'injected-31', values: exceptionOf(1n, 31n), accepted: true },
  { name: 'not-injected-nmi', values: exceptionOf(0n, 2n), accepted: true },
]);

/** EVENTS-SET-003: each carries an exception the refusal must not take. */
const flags = attempts([
  { name: 'flag-0x40', values: () => ({ ...exceptionOf(1n, 13n)(), flags: 0x40n }) },
  { name: 'flag-bit-31', values: () => ({ ...exceptionOf(1n, 13n)(), flags: 0x8000_0000n }) },
  {
    name: 'payload-not-enabled',
    values: (ctx) => ({ ...exceptionOf(1n, 13n)(), flags: flag(ctx, 'PAYLOAD') }),
  },
]);

/** EVENTS-SET-004: refused, with the exception the struct carried already set. */
const tripleFault: CaseGenerator = () => [
  {
    params: { enabled: 'no' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const values = {
        ...exceptionOf(1n, 13n)(),
        'triple_fault.pending': 1n,
        flags: flag(ctx, 'TRIPLE_FAULT'),
      };
      const r = await setEvents(ctx, vcpu, values);
      assertOutcome(
        r,
        { errno: 'EINVAL' },
        'KVM_SET_VCPU_EVENTS with a triple fault, the capability not enabled',
      );
      const got = await getEvents(ctx, vcpu, 'vCPU 0 after the refused triple fault');
      assertRegisters(
        got,
        { 'exception.injected': 1n, 'exception.nr': 13n, 'triple_fault.pending': 0n },
        'after the refused triple fault',
      );
    },
  },
];

/** EVENTS-SET-005: the count as each set leaves it. */
const nmiPending: CaseGenerator = () => [
  {
    params: { sets: 'count-1.count-5.masked-5.injected-5.no-flag' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const count = flag(ctx, 'NMI_PENDING');
      const steps: [string, StructValues, bigint][] = [
        ['1 NMI', { 'nmi.pending': 1n, flags: count }, 1n],
        ['5 NMIs', { 'nmi.pending': 5n, flags: count }, 2n],
        ['5 NMIs, masked', { 'nmi.pending': 5n, 'nmi.masked': 1n, flags: count }, 1n],
        ['5 NMIs, one injected', { 'nmi.pending': 5n, 'nmi.injected': 1n, flags: count }, 1n],
        ['0 NMIs without the flag', { 'nmi.injected': 1n }, 1n],
      ];
      for (const [what, values, reads] of steps) {
        assertOutcome(await setEvents(ctx, vcpu, values), { ret: 0 }, `KVM_SET_VCPU_EVENTS with ${what}`);
        const got = await getEvents(ctx, vcpu, `vCPU 0 after ${what}`);
        assertRegisters(got, { 'nmi.pending': reads }, `after KVM_SET_VCPU_EVENTS with ${what}`);
      }
    },
  },
];

/** vCPU 1 of a VM with an irqchip, in INIT_RECEIVED, given SIPI vector 0x12 through KVM_SET_VCPU_EVENTS. */
async function apAwaitingSipi(ctx: CaseContext): Promise<number> {
  const ap = await ctx.kvm.setupHandle(await vmOf(ctx, 'vm-irqchip'), 'KVM_CREATE_VCPU', 1n);
  await setMpState(ctx, ap, 'INIT_RECEIVED', 'vCPU 1');
  const r = await setEvents(ctx, ap, { sipi_vector: 0x12n, flags: flag(ctx, 'SIPI_VECTOR') });
  assertOutcome(r, { ret: 0 }, 'KVM_SET_VCPU_EVENTS with SIPI vector 0x12');
  return ap;
}

/** A SIPI through KVM_SET_MP_STATE(SIPI_RECEIVED): the AP runs, its CS at vector 0x12's segment. */
async function expectSipiToVector12(ctx: CaseContext, ap: number): Promise<void> {
  await setMpState(ctx, ap, 'SIPI_RECEIVED', 'vCPU 1');
  await expectMpState(ctx, ap, 'RUNNABLE', 'vCPU 1 after the SIPI');
  const sregs = await getSregs(ctx, ap, 'vCPU 1 after the SIPI');
  assertRegisters(sregs, { 'cs.selector': 0x1200n, 'cs.base': 0x12000n }, 'after a SIPI with vector 0x12');
}

/** EVENTS-SET-006: vector 0x12 for an AP with a local APIC, not replaced without the flag; ignored without one. */
const sipiVector: CaseGenerator = (): GeneratedCase[] => [
  {
    params: { lapic: 'in-kernel' },
    run: async (ctx) => {
      const ap = await apAwaitingSipi(ctx);
      await expectSipiToVector12(ctx, ap);
      assertRegisters(await getRegs(ctx, ap, 'vCPU 1 after the SIPI'), { rip: 0n }, 'after the SIPI');
      assertRegisters(await getEvents(ctx, ap, 'vCPU 1'), { sipi_vector: 0n }, 'reported');
    },
  },
  {
    params: { lapic: 'in-kernel', flag: 'absent-later' },
    run: async (ctx) => {
      const ap = await apAwaitingSipi(ctx);
      const without = await setEvents(ctx, ap, { sipi_vector: 0x34n });
      assertOutcome(without, { ret: 0 }, 'KVM_SET_VCPU_EVENTS with 0x34 in sipi_vector but not the flag');
      await expectSipiToVector12(ctx, ap);
    },
  },
  {
    params: { lapic: 'none' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const r = await setEvents(ctx, vcpu, { sipi_vector: 0x12n, flags: flag(ctx, 'SIPI_VECTOR') });
      assertOutcome(r, { ret: 0 }, 'KVM_SET_VCPU_EVENTS with SIPI vector 0x12 and no local APIC');
    },
  },
];

/**
 * EVENTS-SET-005: the cap applies to NMIs already waiting when a set comes: 5 set while masked are 1 once the
 * next set (which unmasks, without the flag) arrives, not 2 as the unmasked cap would leave them.
 */
const nmiPendingAcrossSets: CaseGenerator = () => [
  {
    params: { sets: 'masked-5.unmasked' },
    run: async (ctx) => {
      const vcpu = await vcpuOf(ctx, 'vcpu');
      const first = { 'nmi.pending': 5n, 'nmi.masked': 1n, flags: flag(ctx, 'NMI_PENDING') };
      assertOutcome(await setEvents(ctx, vcpu, first), { ret: 0 }, 'KVM_SET_VCPU_EVENTS with 5 NMIs, masked');
      assertOutcome(
        await setEvents(ctx, vcpu, {}),
        { ret: 0 },
        'KVM_SET_VCPU_EVENTS unmasking, without the flag',
      );
      const got = await getEvents(ctx, vcpu, 'vCPU 0 after both sets');
      assertRegisters(got, { 'nmi.pending': 1n, 'nmi.masked': 0n }, 'after 5 masked NMIs, then unmasking');
    },
  },
];

/**
 * EVENTS-SET-008, for hosts without SMM: each refused part after an exception the struct carries was taken,
 * on the boot processor and on an AP in INIT_RECEIVED; the SMM part all zero is taken, as is one without the flag.
 */
const smmAbsent: CaseGenerator = () =>
  [
    { name: 'smm', field: 'smi.smm', ap: false },
    { name: 'smi-pending', field: 'smi.pending', ap: false },
    { name: 'smm-inside-nmi', field: 'smi.smm_inside_nmi', ap: false },
    { name: 'smi-pending-init-received', field: 'smi.pending', ap: true },
    { name: 'all-zero', field: undefined, ap: false, accepted: true },
    { name: 'smm-without-flag', field: 'smi.smm', ap: false, accepted: true, unflagged: true },
  ].map(({ name, field, ap, accepted, unflagged }) => ({
    params: { smi: name },
    run: async (ctx: CaseContext) => {
      if (ctx.capabilityPresent)
        ctx.notApplicable('the host has SMM (KVM_CAP_X86_SMM), which is not covered');
      const vm = await vmOf(ctx, 'vm-irqchip');
      const vcpu = await ctx.kvm.setupHandle(vm, 'KVM_CREATE_VCPU', ap ? 1n : 0n);
      if (ap) await setMpState(ctx, vcpu, 'INIT_RECEIVED', 'vCPU 1');
      const values: StructValues = {
        'exception.injected': 1n,
        'exception.nr': 13n,
        flags: unflagged ? 0n : flag(ctx, 'SMM'),
      };
      if (field) values[field] = 1n;
      const what = `${field ? `${field} = 1` : 'the SMM part all zero'}${unflagged ? ' without the SMM flag' : ''}`;
      const r = await setEvents(ctx, vcpu, values);
      assertOutcome(r, accepted ? { ret: 0 } : { errno: 'EINVAL' }, `KVM_SET_VCPU_EVENTS with ${what}`);
      const got = await getEvents(ctx, vcpu, `the vCPU after ${what}`);
      assertRegisters(got, { 'exception.injected': 1n, 'exception.nr': 13n, 'smi.smm': 0n }, `after ${what}`);
    },
  }));

export const x86Events: SuiteFamily = {
  generators: {
    'x86-events.fresh': fresh,
    'x86-events.interrupt': interrupt,
    'x86-events.roundtrip': roundtrip,
    'x86-events.exception-vector': exceptionVector,
    'x86-events.flags': flags,
    'x86-events.triple-fault': tripleFault,
    'x86-events.nmi-pending': nmiPending,
    'x86-events.nmi-pending-across-sets': nmiPendingAcrossSets,
    'x86-events.sipi-vector': sipiVector,
    'x86-events.smm-absent': smmAbsent,
  },
};
