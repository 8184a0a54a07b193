/**
 * Driving a real arm64 guest from a case: a few AArch64 instruction words written into a memslot, the PC
 * set with KVM_SET_ONE_REG, and KVM_RUN. The guest reports values by storing them to an address outside
 * every memslot, which KVM turns into KVM_EXIT_MMIO. The same words run on real arm64 KVM and on the
 * reference's interpreter; nothing here is backend-specific.
 */
import { decodeStruct, readUint, uintToBytes } from '../harness/abi/codec.ts';
import { assertOutcome, assertValue } from '../harness/plan/outcome.ts';
import type { CaseContext, GenerateContext, GeneratedCase } from '../harness/plan/types.ts';
import type { Buf, CallOptions } from '../harness/session.ts';
import { bytesToHex, toBigInt } from '../harness/spec/int.ts';
import { mapRun, memslot, psci02, vcpuInitArg } from './fixtures.ts';

/** Guest RAM: 64 KiB at 1 GiB (a multiple of 4 KiB and 64 KiB host pages). */
export const RAM_GPA = 0x4000_0000n;
export const RAM_SIZE = 0x1_0000;
/** Where the PV-time and PV-lock structures go: 64-byte aligned pages of guest RAM. */
export const PVTIME_GPA = RAM_GPA + 0x1000n;
export const PVLOCK_GPA = RAM_GPA + 0x2000n;
/** No memslot covers this address: guest accesses to it exit to user space as MMIO. */
export const MMIO_GPA = 0x1000_0000n;

/** The registers guest programs use: x0..x3 carry SMCCC arguments and results; x5 holds MMIO_GPA. */
const MMIO_BASE_REG = 5;

/** AArch64 instruction words (A64 encodings; instructions are always little-endian). */
export const a64 = {
  movz: (rd: number, imm16: number, hw: number, wide: boolean): number =>
    ((wide ? 0xd280_0000 : 0x5280_0000) | (hw << 21) | (imm16 << 5) | rd) >>> 0,
  movk: (rd: number, imm16: number, hw: number, wide: boolean): number =>
    ((wide ? 0xf280_0000 : 0x7280_0000) | (hw << 21) | (imm16 << 5) | rd) >>> 0,
  hvc: (imm16 = 0): number => (0xd400_0002 | (imm16 << 5)) >>> 0,
  smc: (imm16 = 0): number => (0xd400_0003 | (imm16 << 5)) >>> 0,
  /** STR/LDR Xt (or Wt), [Xn, #offset]: unsigned offset, scaled by the access size. */
  str: (rt: number, rn: number, offset = 0, wide = true): number =>
    ((wide ? 0xf900_0000 : 0xb900_0000) | ((offset / (wide ? 8 : 4)) << 10) | (rn << 5) | rt) >>> 0,
  ldr: (rt: number, rn: number, offset = 0, wide = true): number =>
    ((wide ? 0xf940_0000 : 0xb940_0000) | ((offset / (wide ? 8 : 4)) << 10) | (rn << 5) | rt) >>> 0,
};

/**
 * Loads a constant with MOVZ and MOVK: the W forms for values that fit 32 bits (they clear the upper
 * half), the X forms otherwise, skipping zero halfwords after the first.
 */
export function mov(rd: number, value: bigint): number[] {
  const wide = value > 0xffff_ffffn;
  const halves = wide ? 4 : 2;
  const words = [a64.movz(rd, Number(value & 0xffffn), 0, wide)];
  for (let hw = 1; hw < halves; hw++) {
    const part = Number((value >> BigInt(16 * hw)) & 0xffffn);
    if (part !== 0) words.push(a64.movk(rd, part, hw, wide));
  }
  return words;
}

/** An SMCCC call through HVC #0: x0 = function id, x1.. = arguments. */
export function smccc(fid: bigint, ...args: bigint[]): number[] {
  return callThrough(a64.hvc(0), fid, ...args);
}

/** The registers of an SMCCC call loaded, then `insn`: an HVC or an SMC (which KVM traps, HCR_EL2.TSC). */
export function callThrough(insn: number, fid: bigint, ...args: bigint[]): number[] {
  return [...mov(0, fid), ...args.flatMap((a, i) => mov(i + 1, a)), insn];
}

/** Loads register `reg` (X or W) from MMIO_GPA + 8 * slot: one KVM_EXIT_MMIO that user space answers. */
export function fetch(reg: number, slot = 0, wide = true): number[] {
  return [...mov(MMIO_BASE_REG, MMIO_GPA), a64.ldr(reg, MMIO_BASE_REG, 8 * slot, wide)];
}

/** Stores register `reg` to MMIO_GPA + 8 * slot: one KVM_EXIT_MMIO per store. */
export function report(reg: number, slot = 0): number[] {
  return [...mov(MMIO_BASE_REG, MMIO_GPA), a64.str(reg, MMIO_BASE_REG, 8 * slot)];
}

/** A constant of the spec, as arm64 numbers it. */
export const arm64Constant = (ctx: CaseContext | GenerateContext, name: string): bigint =>
  ctx.spec.constant(name, 'arm64');

/** SMCCC's NOT_SUPPORTED (-1) as x0 holds it. */
export const SMCCC_NOT_SUPPORTED = (1n << 64n) - 1n;

/** The guest's view of an SMCCC return value: a signed result as the 64-bit register holds it. */
export const smcccReg = (v: bigint): bigint => BigInt.asUintN(64, v);

/** A generator's single case. */
export const oneCase = (params: Record<string, string>, run: GeneratedCase['run']): GeneratedCase[] => [
  { params, run },
];

export interface Guest {
  system: number;
  vm: number;
  vcpu: number;
  ram: Buf;
  run: Buf;
}

/** The decoded kvm_run after an exit. */
export type RunState = Record<string, bigint | bigint[]>;

/** The id of a register of the arm64 catalog, by name. */
export function regId(ctx: CaseContext, name: string): bigint {
  const reg = ctx.spec.registers('arm64').find((r) => r.name === name);
  if (!reg) throw new Error(`no ${name} in the arm64 register catalog`);
  return toBigInt(reg.id);
}

/** An initialised vCPU with 64 KiB of RAM at RAM_GPA and its kvm_run mapped. */
export async function setupGuest(ctx: CaseContext, fixture = 'vcpu-initialized'): Promise<Guest> {
  // Steps that need nothing of each other are asked for together: over a slow channel (an agent in QEMU)
  // every round trip saved is about a millisecond a case.
  const [fds, ram] = await Promise.all([
    ctx.fixture(fixture),
    ctx.kvm.alloc(RAM_SIZE, { alignment: RAM_SIZE }),
  ]);
  if (fds.vm === undefined || fds.vcpu === undefined) throw new Error(`fixture ${fixture} opened no vCPU`);
  const guest = { system: fds.system, vm: fds.vm, vcpu: fds.vcpu, ram };
  const [, run] = await Promise.all([
    ctx.kvm.setup(fds.vm, 'KVM_SET_USER_MEMORY_REGION', memslot(0, RAM_GPA, BigInt(RAM_SIZE), ram)),
    mapRun(ctx, guest, fds.vcpu),
  ]);
  return { ...guest, run };
}

/**
 * KVM_ARM_VCPU_INIT with the preferred target and PSCI 0.2, as every VMM initialises a vCPU (a setup step),
 * or with the `features` given.
 */
export async function initVcpu(
  ctx: CaseContext,
  vm: number,
  vcpu: number,
  features = psci02(ctx),
): Promise<void> {
  await ctx.kvm.setup(vcpu, 'KVM_ARM_VCPU_INIT', await vcpuInitArg(ctx, vm, features));
}

/** Instruction words as guest memory holds them (A64 instructions are little-endian). */
export function programBytes(words: number[]): Uint8Array {
  const code = new Uint8Array(words.length * 4);
  const view = new DataView(code.buffer);
  words.forEach((w, i) => view.setUint32(i * 4, w, true));
  return code;
}

/** Writes the program at the start of RAM and points PC at it. */
export async function loadProgram(ctx: CaseContext, g: Guest, vcpu: number, words: number[]): Promise<void> {
  await Promise.all([ctx.kvm.write(g.ram, programBytes(words)), setReg(ctx, vcpu, 'PC', RAM_GPA)]);
}

/** Sets a 64-bit register of the arm64 catalog through KVM_SET_ONE_REG (a setup step). */
export async function setReg(ctx: CaseContext, vcpu: number, name: string, value: bigint): Promise<void> {
  await ctx.kvm.setup(vcpu, 'KVM_SET_ONE_REG', {
    struct: { id: regId(ctx, name), addr: { buffer: { size: 8, init: u64Init(ctx, value) } } },
  });
}

/** A 64-bit value as the hex init of an 8-byte buffer, in the vCPU's byte order. */
export function u64Init(ctx: CaseContext, value: bigint): string {
  return bytesToHex(uintToBytes(value, 8, ctx.kvm.endian));
}

/** KVM_SET_ONE_REG of a 64-bit register from a fresh buffer; the caller judges the outcome. */
export function setReg64(ctx: CaseContext, vcpu: number, id: bigint, value: bigint, options?: CallOptions) {
  return ctx.kvm.call(
    vcpu,
    'KVM_SET_ONE_REG',
    { struct: { id, addr: { buffer: { size: 8, init: u64Init(ctx, value) } } } },
    options,
  );
}

/** KVM_GET_ONE_REG of a 64-bit register, which must succeed (`what` names it in a failure): its value. */
export async function getReg64(
  ctx: CaseContext,
  vcpu: number,
  id: bigint,
  what: string,
  options?: CallOptions,
): Promise<bigint> {
  const r = await ctx.kvm.call(
    vcpu,
    'KVM_GET_ONE_REG',
    { struct: { id, addr: { buffer: { size: 8 } } } },
    options,
  );
  assertOutcome(r, { ret: 0 }, `KVM_GET_ONE_REG ${what}`);
  const bytes = r.spans.addr;
  if (!bytes) throw new Error('KVM_GET_ONE_REG returned no value bytes');
  return readUint(bytes, 0, 8, ctx.kvm.endian);
}

/** KVM_RUN of the guest's vCPU (which must return 0), then its kvm_run decoded. */
export async function runOnce(ctx: CaseContext, g: Guest): Promise<RunState> {
  const layout = ctx.spec.layout('kvm_run', { arch: ctx.arch, revision: ctx.revision });
  // The read goes out with the run, not after its answer: a backend answers in order, so it reads kvm_run
  // as the exit left it, and a slow channel pays one round trip per exit instead of two.
  const [r, bytes] = await Promise.all([
    ctx.kvm.call(g.vcpu, 'KVM_RUN', 0n),
    ctx.kvm.read(g.run, 0, layout.size),
  ]);
  assertOutcome(r, { ret: 0 }, 'KVM_RUN');
  return decodeStruct(layout, bytes, ctx.kvm.endian);
}

function exitName(ctx: CaseContext, reason: bigint): string {
  for (const name of [
    'KVM_EXIT_MMIO',
    'KVM_EXIT_SYSTEM_EVENT',
    'KVM_EXIT_HYPERCALL',
    'KVM_EXIT_INTERNAL_ERROR',
  ])
    if (ctx.spec.constant(name, 'arm64') === reason) return name;
  return `exit reason ${reason}`;
}

/** The exit KVM_RUN ended with must be `name`; a failure names the exit it was. */
export function assertExit(ctx: CaseContext, s: RunState, name: string, what: string): void {
  const reason = s.exit_reason as bigint;
  if (reason !== ctx.spec.constant(name, 'arm64'))
    assertValue(reason, ctx.spec.constant(name, 'arm64'), `${what}: exit reason (${exitName(ctx, reason)})`);
}

/** Runs until the guest's next MMIO store; checks it is an 8-byte write to MMIO_GPA + 8 * slot; returns the data. */
export async function nextReport(ctx: CaseContext, g: Guest, what: string, slot = 0): Promise<bigint> {
  const s = await runOnce(ctx, g);
  assertExit(ctx, s, 'KVM_EXIT_MMIO', what);
  assertValue(s.phys_addr as bigint, MMIO_GPA + 8n * BigInt(slot), `${what}: MMIO address`);
  assertValue(s.len as bigint, 8n, `${what}: MMIO length`);
  assertValue(s.is_write as bigint, 1n, `${what}: MMIO is_write`);
  return (s.data as bigint[]).reduceRight((v, b) => (v << 8n) | b, 0n);
}

/**
 * Runs until the guest loads from MMIO_GPA + 8 * slot (an exit with is_write 0 and the load's size), then leaves
 * `value` in kvm_run.mmio.data for the next KVM_RUN to hand to the guest.
 */
export async function answerLoad(
  ctx: CaseContext,
  g: Guest,
  what: string,
  slot: number,
  len: number,
  value: bigint,
): Promise<void> {
  const s = await runOnce(ctx, g);
  assertExit(ctx, s, 'KVM_EXIT_MMIO', what);
  assertValue(s.phys_addr as bigint, MMIO_GPA + 8n * BigInt(slot), `${what}: MMIO address`);
  assertValue(s.len as bigint, BigInt(len), `${what}: MMIO length`);
  assertValue(s.is_write as bigint, 0n, `${what}: MMIO is_write`);
  const data = ctx.spec.field('kvm_run', 'data', { arch: ctx.arch, revision: ctx.revision });
  await ctx.kvm.write(g.run, uintToBytes(value, 8, 'little'), data.offset);
}

/**
 * Runs until a system event (PSCI SYSTEM_OFF, SYSTEM_RESET, SYSTEM_SUSPEND): KVM_EXIT_SYSTEM_EVENT of the
 * given type and data.
 */
export async function expectSystemEvent(
  ctx: CaseContext,
  g: Guest,
  type: 'KVM_SYSTEM_EVENT_SHUTDOWN' | 'KVM_SYSTEM_EVENT_RESET' | 'KVM_SYSTEM_EVENT_SUSPEND',
  what: string,
  /** SHUTDOWN and RESET events carry one data word, their flags; a SUSPEND event carries none. */
  flags: bigint | 'no-data' = 0n,
): Promise<void> {
  const s = await runOnce(ctx, g);
  assertExit(ctx, s, 'KVM_EXIT_SYSTEM_EVENT', what);
  assertValue(s.type as bigint, ctx.spec.constant(type, 'arm64'), `${what}: system event type`);
  if (flags === 'no-data') {
    assertValue(s.ndata as bigint, 0n, `${what}: system event ndata (no data words)`);
    return;
  }
  assertValue(s.ndata as bigint, 1n, `${what}: system event ndata (one flags word)`);
  assertValue(s['system_event.flags'] as bigint, flags, `${what}: system event flags`);
}

/** Runs until PSCI SYSTEM_OFF: KVM_EXIT_SYSTEM_EVENT with type SHUTDOWN. */
export function expectSystemOff(ctx: CaseContext, g: Guest, what: string): Promise<void> {
  return expectSystemEvent(ctx, g, 'KVM_SYSTEM_EVENT_SHUTDOWN', what);
}

/** PSCI SYSTEM_OFF from the guest. */
export function systemOff(ctx: CaseContext): number[] {
  return smccc(ctx.spec.constant('PSCI_0_2_FN_SYSTEM_OFF', 'arm64'));
}

/** Runs a guest that only powers off: the VM has run from then on. */
export async function runToPowerOff(ctx: CaseContext, g: Guest): Promise<void> {
  await loadProgram(ctx, g, g.vcpu, systemOff(ctx));
  await expectSystemOff(ctx, g, 'a guest that powers off');
}

/** A guest program: the calls, each followed by a report of x0 in its own slot. */
export function callsReporting(calls: number[][]): number[] {
  return calls.flatMap((call, slot) => [...call, ...report(0, slot)]);
}

/** Runs a program whose every report the case checks in order against `expected`. */
export async function expectReports(
  ctx: CaseContext,
  g: Guest,
  words: number[],
  expected: [string, bigint][],
): Promise<void> {
  await loadProgram(ctx, g, g.vcpu, words);
  for (const [i, [what, value]] of expected.entries())
    assertValue(await nextReport(ctx, g, what, i), value, what);
}
