import { u64 } from '../../abi.ts';
import { fail } from '../../errno.ts';
import type { ReferenceKernel } from '../../kernel.ts';
import type { AccessMode } from './pgm.ts';
import { PAGE_SIZE, type GuestStorage } from './storage.ts';

/** Storage-key byte: ACC in bits 0-3, fetch protection in bit 4; bit 7 must stay zero when set by user space. */
const KEY_FETCH_PROTECTION = 0x08;
const KEY_RESERVED = 0x01;
/** The ACC value the storage-protection override lets through. */
const SPO_ACC = 9;
const SKEYS_MAX = 1n << 20n;
const GET_SKEYS_NONE = 1n;

export interface KeyOverrides {
  /** CR0 fetch-protection override applicable and the fetch lies within effective 0..2047. */
  fetch: boolean;
  /** CR0 storage-protection override set. */
  storage: boolean;
}

/** Key-controlled protection (arch/s390/kvm/gaccess.c): may `accessKey` fetch or store this frame? */
export function keyPermits(
  storageKey: number,
  accessKey: number,
  mode: AccessMode,
  overrides?: KeyOverrides,
): boolean {
  if (accessKey === 0) return true;
  const acc = storageKey >> 4;
  if (acc === accessKey) return true;
  if (mode === 'fetch' && ((storageKey & KEY_FETCH_PROTECTION) === 0 || overrides?.fetch)) return true;
  return overrides?.storage === true && acc === SPO_ACC;
}

/** Storage keys are a property of the calling process's mm: once enabled, for every VM it owns. */
const processesUsingKeys = new WeakSet<ReferenceKernel>();

function readArgs(kernel: ReferenceKernel, arg: bigint) {
  const a = kernel.abi.readStruct(kernel.mem, arg, 'kvm_s390_skeys');
  return {
    start: u64(a, 'start_gfn'),
    count: u64(a, 'count'),
    data: u64(a, 'skeydata_addr'),
    flags: u64(a, 'flags'),
  };
}

/** KVM_S390_SET_SKEYS (arch/s390/kvm/kvm-s390.c): validate, copy the keys in, enable keys, then set frame by frame. */
export function setSkeys(kernel: ReferenceKernel, storage: GuestStorage, arg: bigint): bigint {
  const { start, count, data, flags } = readArgs(kernel, arg);
  if (flags !== 0n) fail('EINVAL');
  if (count < 1n || count > SKEYS_MAX) fail('EINVAL');
  const keys = kernel.mem.copyFromUser(data, Number(count));
  processesUsingKeys.add(kernel);
  keys.forEach((key, i) => {
    const gfn = start + BigInt(i);
    if (!storage.backed(gfn * PAGE_SIZE)) fail('EFAULT');
    if ((key & KEY_RESERVED) !== 0) fail('EINVAL');
    storage.keys.set(Number(gfn), key);
  });
  return 0n;
}

/** KVM_S390_GET_SKEYS: answers KVM_S390_GET_SKEYS_NONE while the process uses no keys. */
export function getSkeys(kernel: ReferenceKernel, storage: GuestStorage, arg: bigint): bigint {
  const { start, count, data, flags } = readArgs(kernel, arg);
  if (flags !== 0n) fail('EINVAL');
  if (!processesUsingKeys.has(kernel)) return GET_SKEYS_NONE;
  if (count < 1n || count > SKEYS_MAX) fail('EINVAL');
  const keys = new Uint8Array(Number(count));
  keys.forEach((_, i) => {
    const gpa = (start + BigInt(i)) * PAGE_SIZE;
    if (!storage.backed(gpa)) fail('EFAULT');
    keys[i] = storage.key(gpa);
  });
  kernel.mem.copyToUser(data, keys);
  return 0n;
}
