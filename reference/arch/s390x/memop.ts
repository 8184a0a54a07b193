import { scalarBytes } from '../../../harness/spec/sizes.ts';
import { fieldIndex } from '../../../harness/spec/tree.ts';
import { fail } from '../../errno.ts';
import type { Abi } from '../../abi.ts';
import type { ReferenceKernel } from '../../kernel.ts';
import { NUM_ACRS, type S390Cpu } from './cpu.ts';
import { keyPermits } from './keys.ts';
import { LogicalView, type LogicalAccess } from './logical.ts';
import { PGM } from './pgm.ts';
import { pageSpans, type GuestStorage } from './storage.ts';

/** KVM_S390_MEM_OP ops and flags (arch/s390/include/uapi/asm/kvm.h). */
export const OP = {
  LOGICAL_READ: 0,
  LOGICAL_WRITE: 1,
  SIDA_READ: 2,
  SIDA_WRITE: 3,
  ABSOLUTE_READ: 4,
  ABSOLUTE_WRITE: 5,
  ABSOLUTE_CMPXCHG: 6,
} as const;
export const F_CHECK_ONLY = 1n;
export const F_INJECT_EXCEPTION = 2n;
export const F_SKEY_PROTECTION = 4n;
/** The 2022 proposal's cmpxchg flag; upstream never merged it. */
export const F_CMPXCHG = 8n;
/** MEM_OP_MAX_SIZE in arch/s390/kvm/kvm-s390.c. */
export const MEM_OP_MAX_SIZE = 65536;
const MAX_KEY = 15;

export interface MemOp {
  gaddr: bigint;
  flags: bigint;
  size: number;
  op: number;
  buf: bigint;
  ar: number;
  key: number;
  sidaOffset: number;
  /** Upstream 6.3+: user pointer to the expected old value. */
  oldAddr: bigint;
  /** The proposal: the expected old value inline (old[0] high, old[1] low). */
  old: bigint[];
}

/** Where one unsigned mem_op field sits in a layout: a u64 (or u64 array), a u32 or a u8. */
interface Slot {
  offset: number;
  width: number;
}

/**
 * The fields the ops read, per layout. The reference models the 5.7+ layouts, which all have these;
 * old_addr (upstream 6.3+) and old (the proposal) exist in one revision each.
 */
interface MemOpSlots {
  gaddr: Slot;
  flags: Slot;
  size: Slot;
  op: Slot;
  buf: Slot;
  ar: Slot;
  key: Slot;
  sidaOffset: Slot;
  oldAddr: Slot | undefined;
  old: Slot | undefined;
}

/**
 * Found once per kernel, whose ABI fixes the layout. Not once per process: a process-wide cache would
 * outlive the kernel that filled it (and mutation testing, which reruns cases in one process, would never
 * run changed code here again).
 */
const slotsByAbi = new WeakMap<Abi, MemOpSlots>();

function memOpSlots(abi: Abi): MemOpSlots {
  let slots = slotsByAbi.get(abi);
  if (!slots) {
    const fields = fieldIndex(abi.layout('kvm_s390_mem_op')).byKey;
    const slot = (name: string) => {
      const f = fields.get(name);
      return f && { offset: f.offset, width: scalarBytes(f.type) };
    };
    slots = {
      gaddr: slot('gaddr')!,
      flags: slot('flags')!,
      size: slot('size')!,
      op: slot('op')!,
      buf: slot('buf')!,
      ar: slot('ar')!,
      key: slot('key')!,
      sidaOffset: slot('sida_offset')!,
      oldAddr: slot('old_addr'),
      old: slot('old'),
    };
    slotsByAbi.set(abi, slots);
  }
  return slots;
}

/** Element `i` of a u64 field; s390x is big-endian, DataView's default. */
const wide = (view: DataView, slot: Slot, i = 0): bigint => view.getBigUint64(slot.offset + i * 8);
/** A u32 or u8 field as a number: no BigInt for the values the ops compare and count with. */
const small = (view: DataView, slot: Slot): number =>
  slot.width === 4 ? view.getUint32(slot.offset) : view.getUint8(slot.offset);

/**
 * Reads the fields the ops use from the argument (EFAULT when unreadable), in the revision's layout;
 * every memop passes through here, so the union's reserved bytes are never decoded.
 */
export function readMemOp(kernel: ReferenceKernel, arg: bigint): MemOp {
  const layout = kernel.abi.layout('kvm_s390_mem_op');
  const slots = memOpSlots(kernel.abi);
  // The fields are read at once, so reading them in place is the copy_from_user of upstream.
  const image = kernel.mem.view(arg, layout.size) ?? fail('EFAULT');
  const view = new DataView(image.buffer, image.byteOffset, layout.size);
  return {
    gaddr: wide(view, slots.gaddr),
    flags: wide(view, slots.flags),
    size: small(view, slots.size),
    op: small(view, slots.op),
    buf: wide(view, slots.buf),
    ar: small(view, slots.ar),
    key: small(view, slots.key),
    sidaOffset: small(view, slots.sidaOffset),
    oldAddr: slots.oldAddr ? wide(view, slots.oldAddr) : 0n,
    old: slots.old ? [wide(view, slots.old, 0), wide(view, slots.old, 1)] : [],
  };
}

/**
 * The checks every logical, absolute and cmpxchg op starts with, in upstream's order: unsupported flags
 * or size 0 (EINVAL), size above the maximum (E2BIG), then the key (EINVAL above 15). Returns the
 * access key, 0 when F_SKEY_PROTECTION is clear.
 */
export function validateCommon(mop: MemOp, supported: bigint): number {
  if ((mop.flags & ~supported) !== 0n || mop.size === 0) fail('EINVAL');
  if (mop.size > MEM_OP_MAX_SIZE) fail('E2BIG');
  if ((mop.flags & F_SKEY_PROTECTION) === 0n) return 0;
  if (mop.key > MAX_KEY) fail('EINVAL');
  return mop.key;
}

/** The vCPU ioctl: logical ops through the guest's view, SIDA ops; any other op is EINVAL. */
export function vcpuMemOp(
  kernel: ReferenceKernel,
  cpu: S390Cpu,
  storage: GuestStorage,
  sidaSize: number,
  arg: bigint,
): bigint {
  const mop = readMemOp(kernel, arg);
  switch (mop.op) {
    case OP.LOGICAL_READ:
    case OP.LOGICAL_WRITE:
      return logicalOp(kernel, cpu, storage, mop);
    case OP.SIDA_READ:
    case OP.SIDA_WRITE:
      return sidaOp(kernel, cpu, mop, sidaSize);
    default:
      fail('EINVAL');
  }
}

function logicalOp(kernel: ReferenceKernel, cpu: S390Cpu, storage: GuestStorage, mop: MemOp): bigint {
  const key = validateCommon(mop, F_CHECK_ONLY | F_INJECT_EXCEPTION | F_SKEY_PROTECTION);
  if (mop.ar >= NUM_ACRS) fail('EINVAL');
  if (cpu.sida) fail('EINVAL');
  const store = mop.op === OP.LOGICAL_WRITE;
  const acc: LogicalAccess = {
    gaddr: mop.gaddr,
    size: mop.size,
    ar: mop.ar,
    mode: store ? 'store' : 'fetch',
    key,
  };
  const view = new LogicalView(cpu, storage);
  let pgm;
  if ((mop.flags & F_CHECK_ONLY) !== 0n) pgm = view.check(acc);
  else if (store) pgm = view.write(acc, kernel.mem.copyFromUser(mop.buf, mop.size));
  else {
    const r = view.read(acc);
    if ('data' in r) kernel.mem.copyToUser(mop.buf, r.data);
    else pgm = r;
  }
  if (pgm && (mop.flags & F_INJECT_EXCEPTION) !== 0n) cpu.pendingPgm = pgm;
  return BigInt(pgm?.code ?? 0);
}

/**
 * SIDA ops on a vCPU: flags and size first, then the range against the SIDA size, then whether the vCPU
 * is protected at all; a protected vCPU's SIDA is copied to or from buf.
 */
function sidaOp(kernel: ReferenceKernel, cpu: S390Cpu, mop: MemOp, sidaSize: number): bigint {
  if (mop.flags !== 0n || mop.size === 0) fail('EINVAL');
  const end = mop.size + mop.sidaOffset;
  if (end > 0xffff_ffff) fail('EINVAL');
  if (end > sidaSize) fail('E2BIG');
  if (!cpu.sida) fail('EINVAL');
  if (mop.op === OP.SIDA_READ) kernel.mem.copyToUser(mop.buf, cpu.sida.slice(mop.sidaOffset, end));
  else cpu.sida.set(kernel.mem.copyFromUser(mop.buf, mop.size), mop.sidaOffset);
  return 0n;
}

/** Key-checked access to absolute storage, page by page: 5 for an unbacked page, 4 for a key mismatch. */
function absoluteAccess(
  storage: GuestStorage,
  gaddr: bigint,
  data: Uint8Array,
  store: boolean,
  key: number,
): number {
  for (const { page: frame, start, len, offset } of pageSpans(gaddr, data.length)) {
    const page = storage.frameBytes(frame, start, len);
    if (!page) return PGM.ADDRESSING;
    if (!keyPermits(storage.frameKey(frame), key, store ? 'store' : 'fetch')) return PGM.PROTECTION;
    if (store) page.set(data.subarray(offset, offset + len));
    else data.set(page, offset);
  }
  return 0;
}

/** CHECK_ONLY on absolute storage: with key 0 nothing beyond the start address is checked. */
function checkAbsolute(
  storage: GuestStorage,
  gaddr: bigint,
  size: number,
  store: boolean,
  key: number,
): number {
  if (key === 0) return 0;
  for (const { page: frame } of pageSpans(gaddr, size)) {
    if (!storage.frameBacked(frame)) return PGM.ADDRESSING;
    if (!keyPermits(storage.frameKey(frame), key, store ? 'store' : 'fetch')) return PGM.PROTECTION;
  }
  return 0;
}

/**
 * ABSOLUTE_READ / ABSOLUTE_WRITE on the VM fd: no DAT, no prefixing, no CR0 overrides. The start address
 * is checked first; a read copies to user space only when the guest access succeeded, a write copies from
 * user space before touching the guest.
 */
export function absoluteOp(kernel: ReferenceKernel, storage: GuestStorage, mop: MemOp): bigint {
  const key = validateCommon(mop, F_CHECK_ONLY | F_SKEY_PROTECTION);
  if (!storage.backed(mop.gaddr)) return BigInt(PGM.ADDRESSING);
  const store = mop.op === OP.ABSOLUTE_WRITE;
  if ((mop.flags & F_CHECK_ONLY) !== 0n)
    return BigInt(checkAbsolute(storage, mop.gaddr, mop.size, store, key));
  if (store) {
    const data = kernel.mem.copyFromUser(mop.buf, mop.size);
    return BigInt(absoluteAccess(storage, mop.gaddr, data, true, key));
  }
  const data = new Uint8Array(mop.size);
  const code = absoluteAccess(storage, mop.gaddr, data, false, key);
  if (code === 0) kernel.mem.copyToUser(mop.buf, data);
  return BigInt(code);
}
