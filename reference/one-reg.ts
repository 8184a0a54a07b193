import { bytesToUint, uintToBytes } from '../harness/abi/codec.ts';
import { u64 } from './abi.ts';
import { fail } from './errno.ts';
import type { ReferenceKernel } from './kernel.ts';

/** Fields of every ONE_REG id (include/uapi/linux/kvm.h): arch byte, then log2 of the size in bytes. */
export const REG_ARCH_MASK = 0xff00_0000_0000_0000n;
export const REG_SIZE_MASK = 0x00f0_0000_0000_0000n;
export const REG_SIZE_SHIFT = 52n;

export function regSize(id: bigint): number {
  return 1 << Number((id & REG_SIZE_MASK) >> REG_SIZE_SHIFT);
}

/** Copies in struct kvm_one_reg (EFAULT when the struct itself is unreadable). */
export function readOneReg(kernel: ReferenceKernel, arg: bigint): { id: bigint; addr: bigint } {
  const r = kernel.abi.readStruct(kernel.mem, arg, 'kvm_one_reg');
  return { id: u64(r, 'id'), addr: u64(r, 'addr') };
}

/** put_user of a register value of `size` bytes in the arch's byte order. */
export function putRegValue(kernel: ReferenceKernel, addr: bigint, value: bigint, size: number): void {
  kernel.mem.copyToUser(addr, uintToBytes(value, size, kernel.abi.endian));
}

export function getRegValue(kernel: ReferenceKernel, addr: bigint, size: number): bigint {
  return bytesToUint(kernel.mem.copyFromUser(addr, size), kernel.abi.endian);
}

/**
 * KVM_GET_REG_LIST as upstream does it on every arch that has it: read n, always write the required
 * count back, fail with E2BIG when the caller's n is too small, else copy the ids.
 */
export function copyRegList(kernel: ReferenceKernel, arg: bigint, ids: bigint[]): bigint {
  const { mem, abi } = kernel;
  const n = u64(abi.readStruct(mem, arg, 'kvm_reg_list'), 'n');
  abi.writeStruct(mem, arg, 'kvm_reg_list', { n: BigInt(ids.length) });
  if (n < BigInt(ids.length)) fail('E2BIG');
  const header = abi.structSize('kvm_reg_list');
  const bytes = new Uint8Array(ids.length * 8);
  ids.forEach((id, i) => bytes.set(uintToBytes(id, 8, abi.endian), i * 8));
  mem.copyToUser(arg + BigInt(header), bytes);
  return 0n;
}
