import { mapRun, memslot } from '../fixtures.ts';
import { decodeStruct, uintToBytes } from '../../harness/abi/codec.ts';
import { assertOutcome } from '../../harness/plan/outcome.ts';
import type { CaseContext } from '../../harness/plan/types.ts';
import { compareVersions } from '../../harness/spec/int.ts';
import {
  SetupError,
  type Buf,
  type CallResult,
  type PointerArg,
  type StructArg,
} from '../../harness/session.ts';

export const MiB = 1 << 20;
export const PAGE = 4096;

/** An s390 VM with one vCPU and RAM at absolute 0, backed by 1 MiB-aligned user memory. */
export interface Guest {
  system: number;
  vm: number;
  vcpu: number;
  ram: Buf;
  ramSize: number;
}

export function s390(ctx: CaseContext, name: string): bigint {
  return ctx.spec.constant(name, 's390x');
}

/** An op or flag newer than the backend's kernel makes the case not applicable there. */
function available(ctx: CaseContext, name: string): bigint {
  const { since } = ctx.spec.constantDef(name, 's390x');
  const version = ctx.profile.version;
  if (since && /^\d+\.\d+$/.test(version) && compareVersions(version, since) < 0)
    ctx.notApplicable(`${name} arrived in Linux ${since}; the backend is ${version}`);
  return s390(ctx, name);
}

export async function guest(ctx: CaseContext, ramSize = MiB): Promise<Guest> {
  const fds = await ctx.fixture('vcpu');
  if (fds.vm === undefined || fds.vcpu === undefined) throw new Error('fixture vcpu opened no vCPU');
  const ram = await ctx.kvm.alloc(ramSize, { alignment: MiB });
  await ctx.kvm.setup(fds.vm, 'KVM_SET_USER_MEMORY_REGION', memslot(0, 0n, BigInt(ramSize), ram));
  return { system: fds.system, vm: fds.vm, vcpu: fds.vcpu, ram, ramSize };
}

export type OpName =
  | 'LOGICAL_READ'
  | 'LOGICAL_WRITE'
  | 'SIDA_READ'
  | 'SIDA_WRITE'
  | 'ABSOLUTE_READ'
  | 'ABSOLUTE_WRITE'
  | 'ABSOLUTE_CMPXCHG';
export type FlagName = 'CHECK_ONLY' | 'INJECT_EXCEPTION' | 'SKEY_PROTECTION' | 'CMPXCHG';

const opValue = (ctx: CaseContext, op: OpName) => available(ctx, `KVM_S390_MEMOP_${op}`);

export function flagsOf(ctx: CaseContext, names: readonly FlagName[]): bigint {
  return names.reduce((acc, n) => acc | available(ctx, `KVM_S390_MEMOP_F_${n}`), 0n);
}

/** The fd an op belongs to: logical and SIDA ops go to the vCPU, absolute ops to the VM. */
const fdOf = (g: Guest, op: OpName) => (op.startsWith('ABSOLUTE') ? g.vm : g.vcpu);

export interface MemOpArgs {
  op: OpName | bigint;
  gaddr?: bigint;
  size: number | bigint;
  flags?: bigint;
  key?: number;
  ar?: number;
  buf?: PointerArg;
  /** Further struct fields by name (old_addr, old, pad1, sida_offset). */
  extra?: StructArg;
}

/** KVM_S390_MEM_OP on the op's own fd unless `fd` says otherwise. */
export function memop(ctx: CaseContext, g: Guest, a: MemOpArgs, fd?: number): Promise<CallResult> {
  const op = typeof a.op === 'bigint' ? a.op : opValue(ctx, a.op);
  const struct: StructArg = {
    gaddr: a.gaddr ?? 0n,
    flags: a.flags ?? 0n,
    size: BigInt(a.size),
    op,
    buf: a.buf ?? 'null',
    ...(a.extra?.sida_offset === undefined ? { ar: BigInt(a.ar ?? 0), key: BigInt(a.key ?? 0) } : {}),
    ...a.extra,
  };
  const target = fd ?? (typeof a.op === 'bigint' ? g.vcpu : fdOf(g, a.op));
  return ctx.kvm.call(target, 'KVM_S390_MEM_OP', { struct: withSpans(struct) });
}

/** Buffers passed whole, so that the call reports their bytes afterwards (r.spans). */
function withSpans(struct: StructArg): StructArg {
  return Object.fromEntries(
    Object.entries(struct).map(([k, v]) => [
      k,
      typeof v === 'object' && !Array.isArray(v) && 'buf' in v && v.length === undefined
        ? { ...v, length: v.buf.size }
        : v,
    ]),
  );
}

/** A user buffer of `size` bytes (zeroed, or with the given content). */
export function buffer(ctx: CaseContext, size: number, init?: Uint8Array): Promise<Buf> {
  return ctx.kvm.alloc(Math.max(size, 1), init ? { init } : {});
}

/** Recognisable bytes: different per seed, never all zero. */
export function pattern(size: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = ((i * 131 + seed * 29 + 7) % 251) + 1;
  return bytes;
}

function expectRet(r: CallResult, ret: number, what: string): void {
  assertOutcome(r, { ret }, what);
}

/** KVM_S390_SET_SKEYS for consecutive frames from `gfn`. */
export async function setKeys(ctx: CaseContext, g: Guest, gfn: number, keys: number[]): Promise<void> {
  const data = await buffer(ctx, keys.length, Uint8Array.from(keys));
  await ctx.kvm.setup(g.vm, 'KVM_S390_SET_SKEYS', {
    struct: { start_gfn: BigInt(gfn), count: BigInt(keys.length), skeydata_addr: { buf: data }, flags: 0n },
  });
}

export async function getKeys(ctx: CaseContext, g: Guest, gfn: number, count: number): Promise<Uint8Array> {
  const r = await ctx.kvm.setup(g.vm, 'KVM_S390_GET_SKEYS', {
    struct: {
      start_gfn: BigInt(gfn),
      count: BigInt(count),
      skeydata_addr: { buffer: { size: count } },
      flags: 0n,
    },
  });
  return r.spans.skeydata_addr ?? new Uint8Array(0);
}

/** Changes control and access registers through KVM_GET_SREGS + KVM_SET_SREGS. */
export async function setRegs(
  ctx: CaseContext,
  g: Guest,
  crs: Record<number, bigint>,
  acrs: Record<number, number> = {},
): Promise<void> {
  const cur = await ctx.kvm.setup(g.vcpu, 'KVM_GET_SREGS', { struct: {} });
  const crv = [...(cur.fields.crs as bigint[])];
  const acv = [...(cur.fields.acrs as bigint[])];
  for (const [i, v] of Object.entries(crs)) crv[Number(i)] = v;
  for (const [i, v] of Object.entries(acrs)) acv[Number(i)] = BigInt(v);
  await ctx.kvm.setup(g.vcpu, 'KVM_SET_SREGS', { struct: { crs: crv, acrs: acv } });
}

/** DIAGNOSE 0x501 with R1/R3 0 and base 0: the instruction upstream's selftests leave the guest with. */
export const DIAG_501 = Uint8Array.of(0x83, 0x00, 0x05, 0x01);

/**
 * Gives the vCPU a PSW the way real KVM takes it: KVM_S390_SET_INITIAL_PSW with the address of a
 * DIAGNOSE 0x501 (already in guest memory), then KVM_RUN, which must exit with the DIAGNOSE intercept.
 */
export async function enterPsw(ctx: CaseContext, g: Guest, mask: bigint, addr: bigint): Promise<void> {
  await ctx.kvm.setup(g.vcpu, 'KVM_S390_SET_INITIAL_PSW', { struct: { mask, addr } });
  const run = await runOnce(ctx, g);
  if (run.exit_reason !== s390(ctx, 'KVM_EXIT_S390_SIEIC') || run.icptcode !== 4n)
    throw new SetupError(
      `KVM_RUN did not stop at the DIAGNOSE 0x501 (exit reason ${String(run.exit_reason)})`,
    );
}

/** The vCPU's kvm_run. */
const runArea = (ctx: CaseContext, g: Guest): Promise<Buf> => mapRun(ctx, g, g.vcpu);

/** Writes 64-bit kvm_run fields by name (the prefix and kvm_dirty_regs a KVM_RUN loads, for instance). */
export async function writeRun(ctx: CaseContext, g: Guest, fields: Record<string, bigint>): Promise<void> {
  const run = await runArea(ctx, g);
  for (const [name, value] of Object.entries(fields)) {
    const { offset } = ctx.spec.field('kvm_run', name, { arch: ctx.arch, revision: ctx.revision });
    await ctx.kvm.write(run, uintToBytes(value, 8, ctx.kvm.endian), offset);
  }
}

/** KVM_RUN (must return 0) and the decoded kvm_run. */
export async function runOnce(ctx: CaseContext, g: Guest): Promise<Record<string, bigint | bigint[]>> {
  const r = await ctx.kvm.call(g.vcpu, 'KVM_RUN', 0n);
  expectRet(r, 0, 'KVM_RUN');
  return readRun(ctx, g);
}

export async function readRun(ctx: CaseContext, g: Guest): Promise<Record<string, bigint | bigint[]>> {
  const layout = ctx.spec.layout('kvm_run', { arch: ctx.arch, revision: ctx.revision });
  return decodeStruct(layout, await ctx.kvm.read(await runArea(ctx, g), 0, layout.size), ctx.kvm.endian);
}

/** The program interrupts pending on the vCPU, from KVM_S390_GET_IRQ_STATE. */
export async function pendingIrqs(ctx: CaseContext, g: Guest): Promise<Record<string, bigint | bigint[]>[]> {
  const layout = ctx.spec.layout('kvm_s390_irq', { arch: ctx.arch, revision: ctx.revision });
  const len = layout.size * 8;
  const r = await ctx.kvm.setup(g.vcpu, 'KVM_S390_GET_IRQ_STATE', {
    struct: { buf: { buffer: { size: len } }, len: BigInt(len) },
  });
  const bytes = r.spans.buf ?? new Uint8Array(0);
  return Array.from({ length: Number(r.ret) / layout.size }, (_, i) =>
    decodeStruct(layout, bytes.subarray(i * layout.size, (i + 1) * layout.size), ctx.kvm.endian),
  );
}
