// The x86 in-kernel irqchip of a VM: its chips' states (KVM_{GET,SET}_IRQCHIP) and the GSIs KVM_IRQ_LINE and
// KVM_IRQ_LINE_STATUS drive into them.
import type { StructValues } from '../harness/abi/codec.ts';
import { assertField, assertOutcome, assertTrue, assertValue, expectOf } from '../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator, SuiteFamily } from '../harness/plan/types.ts';
import { fieldBytes } from '../harness/spec/sizes.ts';
import { fieldIndex } from '../harness/spec/tree.ts';
import { structBuffer, vmOf } from './fixtures.ts';

/** The chips of the x86 in-kernel irqchip, by chip_id, and the union member that holds each one's state. */
const IRQCHIPS = [
  { name: 'pic-master', id: 0n, member: 'pic' },
  { name: 'pic-slave', id: 1n, member: 'pic' },
  { name: 'ioapic', id: 2n, member: 'ioapic' },
] as const;

const IOAPIC_PINS = 24;
/** Bit 16 masks an IOAPIC redirection entry and a local APIC LVT entry alike. */
export const MASKED = 1n << 16n;
/** A redirection entry's trigger mode (level when set) and its remote IRR (a level request awaiting EOI). */
const REDIR_LEVEL = 1n << 15n;
const REDIR_REMOTE_IRR = 1n << 14n;

/**
 * The keys of a kvm_irqchip union member's fields, by the fields' own names: a decoded struct prefixes a
 * field's name with its member's only where another member used the name first (ioapic.irr).
 */
function memberKeys(ctx: CaseContext, member: string): Map<string, string> {
  return new Map(memberFieldDefs(ctx, member).map((f) => [f.name, f.key]));
}

function memberFieldDefs(ctx: CaseContext, member: string) {
  const layout = ctx.spec.layout('kvm_irqchip', { arch: ctx.arch, revision: ctx.revision });
  return fieldIndex(layout).list.filter((f) => f.union?.member === member);
}

/** The bytes a union member's state takes, from the start of the union (16 for a PIC, 216 for the IOAPIC). */
function memberBytes(ctx: CaseContext, member: string): number {
  const fields = memberFieldDefs(ctx, member);
  const start = Math.min(...fields.map((f) => f.offset));
  return Math.max(...fields.map((f) => f.offset + fieldBytes(f))) - start;
}

/** A union member's state, by field name, from decoded kvm_irqchip fields. */
function memberFields(ctx: CaseContext, fields: StructValues, member: string): StructValues {
  return Object.fromEntries([...memberKeys(ctx, member)].map(([name, key]) => [name, fields[key]!]));
}

/** KVM_GET_IRQCHIP of one chip, which must succeed; `fill` goes in every other byte of the struct. */
async function getIrqchip(ctx: CaseContext, vm: number, id: bigint, fill = 0n) {
  const dummy = memberKeys(ctx, 'dummy').get('dummy')!;
  const r = await ctx.kvm.call(vm, 'KVM_GET_IRQCHIP', {
    struct: { chip_id: id, pad: fill * 0x0101_0101n, [dummy]: new Array<bigint>(512).fill(fill) },
  });
  assertOutcome(r, { ret: 0 }, `KVM_GET_IRQCHIP of chip ${id}`);
  return r.fields;
}

type Chip = (typeof IRQCHIPS)[number];

/** One chip's state, by field name, as KVM_GET_IRQCHIP reads it. */
async function readChip(ctx: CaseContext, vm: number, chip: Chip): Promise<StructValues> {
  return memberFields(ctx, await getIrqchip(ctx, vm, chip.id), chip.member);
}

/** IRQCHIP-VAL-002: the chips as KVM_CREATE_IRQCHIP leaves them. */
const irqchipInitial: CaseGenerator = () =>
  IRQCHIPS.map((chip) => ({
    params: { chip: chip.name },
    run: async (ctx: CaseContext) => {
      const fields = await getIrqchip(ctx, await vmOf(ctx, 'vm-irqchip'), chip.id);
      const state = memberFields(ctx, fields, chip.member);
      const expected: StructValues =
        chip.member === 'pic'
          ? Object.fromEntries(Object.keys(state).map((k) => [k, 0n]))
          : { base_address: 0xfec0_0000n, ioregsel: 0n, id: 0n, irr: 0n };
      if (chip.member === 'pic') expected.elcr_mask = chip.id === 0n ? 0xf8n : 0xden;
      else expected.redirtbl = new Array<bigint>(IOAPIC_PINS).fill(MASKED);
      for (const [field, value] of Object.entries(expected))
        assertField(state[field], value, `${chip.name} ${field}`);
    },
  }));

/** IRQCHIP-VAL-003: the bytes around the chip's state come back as they went in. */
const irqchipUntouched: CaseGenerator = () =>
  IRQCHIPS.map((chip) => ({
    params: { chip: chip.name },
    run: async (ctx: CaseContext) => {
      const fields = await getIrqchip(ctx, await vmOf(ctx, 'vm-irqchip'), chip.id, 0xa5n);
      assertValue(fields.chip_id as bigint, chip.id, 'chip_id');
      assertValue(fields.pad as bigint, 0xa5a5_a5a5n, 'pad');
      const after = (memberFields(ctx, fields, 'dummy').dummy as bigint[]).slice(
        memberBytes(ctx, chip.member),
      );
      assertTrue(
        after.every((b) => b === 0xa5n),
        `the union's ${after.length} bytes past the ${chip.name} state come back as passed`,
      );
    },
  }));

/** A state per chip with nothing pending, every other field set to something other than its initial value. */
const IRQCHIP_STATES: Record<string, StructValues> = {
  pic: {
    imr: 0x5an,
    priority_add: 3n,
    irq_base: 0x20n,
    read_reg_select: 1n,
    poll: 1n,
    special_mask: 1n,
    init_state: 2n,
    auto_eoi: 1n,
    rotate_on_auto_eoi: 1n,
    special_fully_nested_mode: 1n,
    init4: 1n,
    elcr: 0x10n,
    elcr_mask: 0x12n,
  },
  ioapic: {
    base_address: 0x1000n,
    ioregsel: 7n,
    id: 5n,
    redirtbl: Array.from(
      { length: IOAPIC_PINS },
      (_, pin) =>
        // Masked and unmasked, edge and level; a vector per pin; remote IRR never set.
        (pin % 2 === 0 ? MASKED : 0n) | (pin % 3 === 0 ? REDIR_LEVEL : 0n) | BigInt(0x30 + pin),
    ),
  },
};

/** IRQCHIP-VAL-004: a state set with nothing pending reads back as set. */
const irqchipSetGet: CaseGenerator = () =>
  IRQCHIPS.map((chip) => ({
    params: { chip: chip.name },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx, 'vm-irqchip');
      const state = IRQCHIP_STATES[chip.member]!;
      await setChip(ctx, vm, chip, state);
      const read = await readChip(ctx, vm, chip);
      for (const [field, value] of Object.entries(state))
        assertField(read[field], value, `${chip.name} ${field} read back`);
    },
  }));

/** KVM_SET_IRQCHIP of one chip, which must succeed, with its state given by field name. */
async function setChip(ctx: CaseContext, vm: number, chip: Chip, state: StructValues): Promise<void> {
  const keys = memberKeys(ctx, chip.member);
  const struct = Object.fromEntries(Object.entries(state).map(([name, v]) => [keys.get(name)!, v]));
  const r = await ctx.kvm.call(vm, 'KVM_SET_IRQCHIP', { struct: { chip_id: chip.id, ...struct } });
  assertOutcome(r, { ret: 0 }, `KVM_SET_IRQCHIP of the ${chip.name}`);
}

/** Changes some fields of a chip's state, by name, keeping the rest as KVM_GET_IRQCHIP reads it. */
async function changeChip(ctx: CaseContext, vm: number, chip: Chip, changes: StructValues): Promise<void> {
  const state = await readChip(ctx, vm, chip);
  await setChip(ctx, vm, chip, { ...state, ...changes });
}

/** KVM_IRQ_LINE_STATUS, which must succeed: the status it reports. */
async function driveGsi(ctx: CaseContext, vm: number, gsi: number, level: number): Promise<bigint> {
  const r = await ctx.kvm.call(vm, 'KVM_IRQ_LINE_STATUS', {
    struct: { irq: BigInt(gsi), level: BigInt(level) },
  });
  assertOutcome(r, { ret: 0 }, `KVM_IRQ_LINE_STATUS of GSI ${gsi} at level ${level}`);
  return r.fields.status as bigint;
}

/** One drive of a line, the status it must report, and chip fields (by name) that must read so after it. */
interface Step {
  level: number;
  status: bigint;
  fields: StructValues;
}

/** Drives `gsi` through `steps` on `vm`, checking each step's status and `chip`'s fields after it. */
async function driveSteps(
  ctx: CaseContext,
  vm: number,
  gsi: number,
  chip: Chip,
  steps: Step[],
): Promise<void> {
  for (const [i, step] of steps.entries()) {
    const what = `step ${i + 1}: GSI ${gsi} driven ${step.level ? 'high' : 'low'}`;
    assertValue(await driveGsi(ctx, vm, gsi, step.level), step.status, `status after ${what}`);
    const state = await readChip(ctx, vm, chip);
    for (const [field, value] of Object.entries(step.fields))
      assertField(state[field], value, `${chip.name} ${field} after ${what}`);
  }
}

/** The PIC that takes GSI 0-7 (master) or 8-15 (slave), and the GSI's input bit on it. */
const picOf = (gsi: number) => ({ chip: IRQCHIPS[gsi >> 3]!, bit: BigInt(1 << (gsi & 7)) });

/** Cases on PIC inputs: for each GSI, `changes` made to its PIC's state, then `steps` driven on the GSI. */
const picInputCases =
  (gsis: number[], changes: (bit: bigint) => StructValues, steps: (bit: bigint) => Step[]): CaseGenerator =>
  () =>
    gsis.map((gsi) => ({
      params: { gsi: String(gsi) },
      run: async (ctx: CaseContext) => {
        const vm = await vmOf(ctx, 'vm-irqchip');
        const { chip, bit } = picOf(gsi);
        const change = changes(bit);
        if (Object.keys(change).length > 0) await changeChip(ctx, vm, chip, change);
        await driveSteps(ctx, vm, gsi, chip, steps(bit));
      },
    }));

/** IRQ_LINE-VAL-002: an edge-triggered PIC input requests on rising edges; the IOAPIC pin is masked. */
const picEdge = picInputCases(
  [3, 12], // one input of each PIC, neither the cascade input
  () => ({}),
  (bit) => [
    // The masked IOAPIC pin answers -1 (left out of the status), then 0 while its request stands.
    { level: 1, status: 1n, fields: { irr: bit, last_irr: bit } },
    { level: 1, status: 1n, fields: { irr: bit, last_irr: bit } },
    // Both chips answer 1 for a lowered line; the PIC keeps the request.
    { level: 0, status: 2n, fields: { irr: bit, last_irr: 0n } },
    // A rising edge with the request still pending is coalesced.
    { level: 1, status: 0n, fields: { irr: bit, last_irr: bit } },
  ],
);

/** IRQ_LINE-VAL-003: a level-triggered PIC input (ELCR) follows the line. */
const picLevel = picInputCases(
  [5, 9],
  (bit) => ({ elcr: bit }),
  (bit) => [
    { level: 1, status: 1n, fields: { irr: bit, last_irr: bit } },
    { level: 1, status: 0n, fields: { irr: bit, last_irr: bit } },
    { level: 0, status: 2n, fields: { irr: 0n, last_irr: 0n } },
  ],
);

/** IRQ_LINE-VAL-004: an input masked in IMR records the request but answers -1, left out of the status. */
const picMasked = picInputCases(
  [1, 10],
  (bit) => ({ imr: bit }),
  (bit) => [
    { level: 1, status: -1n, fields: { irr: bit, last_irr: bit } },
    // Lowered, the masked PIC's -1 is left out and the IOAPIC's 1 stands alone.
    { level: 0, status: 1n, fields: { irr: bit, last_irr: 0n } },
  ],
);

const CASCADE_BIT = 1n << 2n;

/**
 * IRQ_LINE-VAL-005: GSI 12 (slave input 4) against slave states that do and do not let it through. Priority
 * counts from `priority_add`: with 3, input 3 ranks first, input 4 second and input 0 sixth.
 */
const CASCADES: { name: string; slave: StructValues; signalled: boolean }[] = [
  { name: 'fresh', slave: {}, signalled: true },
  { name: 'masked', slave: { imr: 1n << 4n }, signalled: false },
  { name: 'higher-in-service', slave: { isr: 1n }, signalled: false },
  { name: 'same-in-service', slave: { isr: 1n << 4n }, signalled: false },
  { name: 'rotated-lower-in-service', slave: { priority_add: 3n, isr: 1n }, signalled: true },
];

const picCascade: CaseGenerator = () =>
  CASCADES.map(({ name, slave, signalled }) => ({
    params: { slave: name },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx, 'vm-irqchip');
      const [master, slaveChip] = IRQCHIPS;
      if (Object.keys(slave).length > 0) await changeChip(ctx, vm, slaveChip, slave);
      await driveGsi(ctx, vm, 12, 1);
      const state = await readChip(ctx, vm, master);
      assertValue(state.irr as bigint, signalled ? CASCADE_BIT : 0n, 'master irr after GSI 12 was raised');
      assertValue(state.last_irr as bigint, 0n, 'master last_irr after GSI 12 was raised (a pulse)');
    },
  }));

/** Changes IOAPIC redirection entries, by pin, keeping the rest of its state. */
async function setRedirections(ctx: CaseContext, vm: number, entries: Record<number, bigint>): Promise<void> {
  const ioapic = IRQCHIPS[2];
  const state = await readChip(ctx, vm, ioapic);
  const table = [...(state.redirtbl as bigint[])];
  for (const [pin, entry] of Object.entries(entries)) table[Number(pin)] = entry;
  await setChip(ctx, vm, ioapic, { ...state, redirtbl: table });
}

/**
 * IRQ_LINE-VAL-006: IOAPIC pins that deliver nothing, on GSIs only the IOAPIC takes: masked (edge- and
 * level-triggered), and unmasked but awaiting an EOI (remote IRR) in a VM whose vCPU could take it.
 */
const IOAPIC_HELD: { name: string; entry: bigint; fixture: string }[] = [
  { name: 'masked-edge', entry: MASKED, fixture: 'vm-irqchip' },
  { name: 'masked-level', entry: MASKED | REDIR_LEVEL, fixture: 'vm-irqchip' },
  { name: 'awaiting-eoi', entry: 0x31n | REDIR_LEVEL | REDIR_REMOTE_IRR, fixture: 'vcpu-irqchip' },
];

const ioapicHeld: CaseGenerator = () =>
  IOAPIC_HELD.map(({ name, entry, fixture }) => ({
    params: { pin: name },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx, fixture);
      const gsi = 21;
      const bit = 1n << BigInt(gsi);
      await setRedirections(ctx, vm, { [gsi]: entry });
      await driveSteps(ctx, vm, gsi, IRQCHIPS[2], [
        { level: 1, status: -1n, fields: { irr: bit } },
        // An edge already requested is coalesced; a level-triggered pin is serviced, to no effect, again.
        { level: 1, status: entry & REDIR_LEVEL ? -1n : 0n, fields: { irr: bit } },
        { level: 0, status: 1n, fields: { irr: 0n } },
      ]);
    },
  }));

/** IRQ_LINE-VAL-007: unmasked IOAPIC pins in a VM without vCPUs: nobody takes the request. */
const ioapicUndelivered: CaseGenerator = () =>
  (['edge', 'level'] as const).map((trigger) => ({
    params: { trigger },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx, 'vm-irqchip');
      const gsi = 17;
      const bit = 1n << BigInt(gsi);
      const entry = 0x30n | (trigger === 'level' ? REDIR_LEVEL : 0n);
      await setRedirections(ctx, vm, { [gsi]: entry });
      const ioapic = IRQCHIPS[2];
      const redirection = async () => ((await readChip(ctx, vm, ioapic)).redirtbl as bigint[])[gsi]!;
      if (trigger === 'edge') {
        await driveSteps(ctx, vm, gsi, ioapic, [
          // Handed on for delivery: hidden from irr.
          { level: 1, status: -1n, fields: { irr: 0n } },
          // Raised again, the request is requested anew, coalesced with the one held, and shown.
          { level: 1, status: 0n, fields: { irr: bit } },
          { level: 0, status: 1n, fields: { irr: 0n } },
        ]);
        assertValue(await redirection(), entry, `redirection entry ${gsi} afterwards`);
      } else {
        await driveSteps(ctx, vm, gsi, ioapic, [{ level: 1, status: -1n, fields: { irr: bit } }]);
        assertValue(
          await redirection(),
          entry | REDIR_REMOTE_IRR,
          `redirection entry ${gsi}: remote IRR set`,
        );
        await driveSteps(ctx, vm, gsi, ioapic, [{ level: 1, status: -1n, fields: { irr: bit } }]);
      }
    },
  }));

/**
 * IRQCHIP-VAL-005: restored requests are raised again (IOAPIC pins 0-23 only) and the slave's output
 * signalled (PIC); a PIC's restore leaves the IOAPIC alone.
 */
const irqchipSetPending: CaseGenerator = () => [
  {
    params: { chip: 'pic-slave' },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx, 'vm-irqchip');
      const [master, slave, ioapic] = IRQCHIPS;
      // An unmasked edge pin raised twice: the first request is handed on, the second shows in irr.
      const pin = 17;
      await setRedirections(ctx, vm, { [pin]: 0x30n });
      for (const status of [-1n, 0n])
        assertValue(await driveGsi(ctx, vm, pin, 1), status, `status of GSI ${pin} raised`);
      await changeChip(ctx, vm, slave, { irr: 1n << 4n });
      const state = await readChip(ctx, vm, master);
      assertValue(state.irr as bigint, CASCADE_BIT, 'master irr after a slave state with a request');
      assertValue(state.last_irr as bigint, 0n, 'master last_irr after a slave state with a request');
      const pending = await readChip(ctx, vm, ioapic);
      assertValue(pending.irr as bigint, 1n << BigInt(pin), "IOAPIC irr after the slave's restore");
    },
  },
  {
    params: { chip: 'ioapic' },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx, 'vm-irqchip');
      const ioapic = IRQCHIPS[2];
      const [edge, level, masked] = [17, 18, 20];
      const state = await readChip(ctx, vm, ioapic);
      const table = [...(state.redirtbl as bigint[])];
      table[edge] = 0x30n;
      table[level] = 0x31n | REDIR_LEVEL;
      const pins = (list: number[]) => list.reduce((irr, pin) => irr | (1n << BigInt(pin)), 0n);
      // Bits 24 and 31 name no pin: the restore drops them.
      await setChip(ctx, vm, ioapic, { ...state, irr: pins([edge, level, masked, 24, 31]), redirtbl: table });
      const read = await readChip(ctx, vm, ioapic);
      assertValue(read.irr as bigint, pins([level, masked]), 'IOAPIC irr after the restore');
      const entries = read.redirtbl as bigint[];
      assertValue(entries[edge]!, table[edge], `redirection entry ${edge} (edge) after the restore`);
      assertValue(entries[level]!, table[level] | REDIR_REMOTE_IRR, `redirection entry ${level} (level)`);
    },
  },
];

/**
 * IRQ_LINE-VAL-001 and IRQ_LINE-ERR-003: GSI 11 raised through a struct in read-only memory. KVM_IRQ_LINE
 * never writes it; KVM_IRQ_LINE_STATUS fails writing the status back. Either way the request stands.
 */
const readOnlyStruct =
  (ioctl: 'KVM_IRQ_LINE' | 'KVM_IRQ_LINE_STATUS'): CaseGenerator =>
  (g) => [
    {
      params: { arg: 'read-only' },
      run: async (ctx: CaseContext) => {
        const vm = await vmOf(ctx, 'vm-irqchip');
        const gsi = 11;
        const values = { irq: BigInt(gsi), level: 1n };
        const arg = await structBuffer(ctx, 'kvm_irq_level', values, { readonly: true });
        const r = await ctx.kvm.call(vm, ioctl, { pointer: { buf: arg } });
        assertOutcome(r, expectOf(g), `${ioctl} of GSI ${gsi} in read-only memory`);
        const { chip, bit } = picOf(gsi);
        const state = await readChip(ctx, vm, chip);
        assertValue(state.irr as bigint, bit, `${chip.name} irr: the request stands`);
      },
    },
  ];

export const x86Irqchip: SuiteFamily = {
  generators: {
    'x86.irqchip-initial': irqchipInitial,
    'x86.irqchip-untouched': irqchipUntouched,
    'x86.irqchip-set-get': irqchipSetGet,
    'x86.irqchip-set-pending': irqchipSetPending,
    'x86.irq-line-readonly': readOnlyStruct('KVM_IRQ_LINE'),
    'x86.irq-line-status-readonly': readOnlyStruct('KVM_IRQ_LINE_STATUS'),
    'x86.irq-line-pic-edge': picEdge,
    'x86.irq-line-pic-level': picLevel,
    'x86.irq-line-pic-masked': picMasked,
    'x86.irq-line-cascade': picCascade,
    'x86.irq-line-ioapic-held': ioapicHeld,
    'x86.irq-line-ioapic-undelivered': ioapicUndelivered,
  },
};
