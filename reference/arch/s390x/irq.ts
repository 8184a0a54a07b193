import { encodeStruct } from '../../../harness/abi/codec.ts';
import { u64 } from '../../abi.ts';
import { fail } from '../../errno.ts';
import type { ReferenceKernel } from '../../kernel.ts';
import type { S390Cpu } from './cpu.ts';

/** KVM_S390_PROGRAM_INT, the irq type of a program interruption (include/uapi/linux/kvm.h). */
const PROGRAM_INT = 0xfffe_0001n;

/**
 * KVM_S390_GET_IRQ_STATE (arch/s390/kvm/kvm-s390.c, interrupt.c): len 0 is EINVAL; a pending program
 * interrupt becomes one struct kvm_s390_irq, ENOBUFS when len cannot hold it. Returns the bytes written.
 */
export function getIrqState(kernel: ReferenceKernel, cpu: S390Cpu, arg: bigint): bigint {
  const { abi, mem } = kernel;
  const s = abi.readStruct(mem, arg, 'kvm_s390_irq_state');
  const len = Number(u64(s, 'len'));
  if (len === 0) fail('EINVAL');
  const pgm = cpu.pendingPgm;
  if (!pgm) return 0n;
  const layout = abi.layout('kvm_s390_irq');
  if (layout.size > len) fail('ENOBUFS');
  const values = {
    type: PROGRAM_INT,
    trans_exc_code: pgm.teid,
    code: BigInt(pgm.code),
    exc_access_id: BigInt(pgm.excAccessId),
  };
  mem.copyToUser(u64(s, 'buf'), encodeStruct(layout, values, abi.endian));
  return BigInt(layout.size);
}
