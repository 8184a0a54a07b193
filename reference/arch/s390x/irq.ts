import { encodeStruct } from '../../../harness/abi/codec.ts';
import { u64 } from '../../abi.ts';
import { fail } from '../../errno.ts';
import type { ReferenceKernel } from '../../kernel.ts';
import type { S390Cpu } from './cpu.ts';

/** KVM_S390_PROGRAM_INT, the irq type of a program interruption (include/uapi/linux/kvm.h). */
const PROGRAM_INT = 0xfffe_0001n;

/**
 * KVM_S390_GET_IRQ_STATE (arch/s390/kvm/kvm-s390.c, interrupt.c): len 0 is EINVAL; every pending program
 * interrupt becomes one struct kvm_s390_irq; a buffer too small for them is ENOBUFS. Returns the bytes written.
 */
export function getIrqState(kernel: ReferenceKernel, cpu: S390Cpu, arg: bigint): bigint {
  const { abi, mem } = kernel;
  const s = abi.readStruct(mem, arg, 'kvm_s390_irq_state');
  const len = Number(u64(s, 'len'));
  if (len === 0) fail('EINVAL');
  const layout = abi.spec.layout('kvm_s390_irq', { arch: abi.arch, revision: abi.revision });
  if (cpu.pendingPgm.length * layout.size > len) fail('ENOBUFS');
  const out = new Uint8Array(cpu.pendingPgm.length * layout.size);
  cpu.pendingPgm.forEach((p, i) => {
    const values = {
      type: PROGRAM_INT,
      trans_exc_code: p.teid,
      code: BigInt(p.code),
      exc_access_id: BigInt(p.excAccessId),
    };
    out.set(encodeStruct(layout, values, abi.endian), i * layout.size);
  });
  mem.copyToUser(u64(s, 'buf'), out);
  return BigInt(out.length);
}
