import type { SpecTree } from '../../../harness/spec/tree.ts';
import { capabilityTable } from '../../capabilities.ts';
import { fail } from '../../errno.ts';
import type { ArchModel, ArchVcpu, ArchVm, Memslot, VcpuFile } from '../../kernel.ts';
import { getRegValue, putRegValue, readOneReg } from '../../one-reg.ts';

const MiB = 1n << 20n;
/** KVM_S390_PFAULT_TOKEN_INVALID: the pfault token of a fresh vCPU. */
const PFAULT_TOKEN_INVALID = 0xffff_ffff_ffff_ffffn;

/** The s390 ONE_REG registers (arch/s390/kvm/kvm-s390.c): exact ids; anything else is EINVAL. */
const ONE_REGS: readonly { id: bigint; name: string; size: number; reset: bigint }[] = [
  { id: 0x5020_0000_0000_0001n, name: 'TODPR', size: 4, reset: 0n },
  { id: 0x5030_0000_0000_0002n, name: 'EPOCHDIFF', size: 8, reset: 0n },
  { id: 0x5030_0000_0000_0003n, name: 'CPU_TIMER', size: 8, reset: 0n },
  { id: 0x5030_0000_0000_0004n, name: 'CLOCK_COMP', size: 8, reset: 0n },
  { id: 0x5030_0000_0000_0005n, name: 'PFTOKEN', size: 8, reset: PFAULT_TOKEN_INVALID },
  { id: 0x5030_0000_0000_0006n, name: 'PFCOMPARE', size: 8, reset: 0n },
  { id: 0x5030_0000_0000_0007n, name: 'PFSELECT', size: 8, reset: 0n },
  { id: 0x5030_0000_0000_0008n, name: 'PP', size: 8, reset: 0n },
  { id: 0x5030_0000_0000_0009n, name: 'GBEA', size: 8, reset: 1n },
];

class S390Vm implements ArchVm {
  ioctl(): bigint | undefined {
    return undefined;
  }

  /** s390 maps guest memory in 1 MiB segments: the user address and the size must be segment-aligned. */
  prepareMemoryRegion(slot: Memslot): void {
    if (slot.hva % MiB !== 0n || slot.size % MiB !== 0n) fail('EINVAL');
  }

  createVcpu(vcpu: VcpuFile): ArchVcpu {
    return new S390Vcpu(vcpu);
  }
}

class S390Vcpu implements ArchVcpu {
  private readonly regs = new Map<bigint, bigint>(ONE_REGS.map((r) => [r.id, r.reset]));
  constructor(readonly vcpu: VcpuFile) {}

  ioctl(name: string, arg: bigint): bigint | undefined {
    if (name !== 'KVM_GET_ONE_REG' && name !== 'KVM_SET_ONE_REG') return undefined;
    const { kernel } = this.vcpu;
    const { id, addr } = readOneReg(kernel, arg);
    const reg = ONE_REGS.find((r) => r.id === id) ?? fail('EINVAL');
    if (name === 'KVM_GET_ONE_REG') putRegValue(kernel, addr, this.regs.get(id) ?? 0n, reg.size);
    else this.regs.set(id, getRegValue(kernel, addr, reg.size));
    return 0n;
  }
}

export function s390xModel(spec: SpecTree): ArchModel {
  return {
    arch: 's390x',
    kernelVersion: '6.12',
    maxVcpuId: 248,
    vcpuMmapSize: 4096,
    unknownIoctl: { system: 'EINVAL', vm: 'ENOTTY', vcpu: 'ENOTTY' },
    checkExtension: capabilityTable(spec, 's390x', {
      KVM_CAP_USER_MEMORY: 1n,
      KVM_CAP_ONE_REG: 1n,
      KVM_CAP_S390_MEM_OP: 65536n,
      KVM_CAP_S390_MEM_OP_EXTENSION: 3n,
    }),
    createVm: (type) => (type === 0n ? new S390Vm() : fail('EINVAL')),
  };
}
