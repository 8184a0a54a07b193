import type { SpecTree } from '../../../harness/spec/tree.ts';
import { capabilityTable } from '../../capabilities.ts';
import { fail } from '../../errno.ts';
import type { ArchModel, ArchVcpu, ArchVm, VcpuFile } from '../../kernel.ts';
import { getRegValue, putRegValue, readOneReg, regSize } from '../../one-reg.ts';

/** union kvmppc_one_reg is 16 bytes: a larger id is refused before anything else. */
const MAX_REG_BYTES = 16;
const KVM_VM_PPC_HV = 1n;

interface PpcReg {
  id: bigint;
  reset: bigint;
  /** KVM-HV refuses some values: HIOR belongs to KVM-PR and only 0 may be written. */
  accepts?: (value: bigint) => boolean;
  /** What a write leaves in the register, from what it held; the value itself when absent. */
  stored?: (held: bigint, value: bigint) => bigint;
}

const reg = (id: bigint, reset = 0n, accepts?: (v: bigint) => boolean): PpcReg =>
  accepts ? { id, reset, accepts } : { id, reset };

/** LPCR bits (arch/powerpc/include/asm/reg.h). */
const LPCR_DPFD = 0x0070_0000_0000_0000n;
const LPCR_ILE = 0x0200_0000n;
const LPCR_AIL = 0x0180_0000n;
const LPCR_LD = 0x2_0000n;
const LPCR_TC = 0x200n;

/**
 * An LPCR write (kvmppc_set_lpcr, then kvmppc_filter_lpcr_hv): only DPFD, ILE, TC, AIL and LD come from user
 * space; the model guest is radix on POWER9, so TC is dropped, and AIL survives only as 3 (1 and 2 are
 * disallowed); LD stays.
 */
function lpcrStored(held: bigint, value: bigint): bigint {
  const mask = LPCR_DPFD | LPCR_ILE | LPCR_TC | LPCR_AIL | LPCR_LD;
  let lpcr = (held & ~mask) | (value & mask);
  lpcr &= ~LPCR_TC;
  if ((lpcr & LPCR_AIL) !== LPCR_AIL) lpcr &= ~LPCR_AIL;
  return lpcr;
}

/** The KVM-HV registers of the model (arch/powerpc/kvm/book3s_hv.c); ids from arch/powerpc/include/uapi/asm/kvm.h. */
const HV_REGS: readonly PpcReg[] = [
  reg(0x1030_0000_0000_0001n, 0n, (v) => v === 0n), // HIOR
  reg(0x1030_0000_0000_0008n), // DABR
  reg(0x1030_0000_0000_0009n), // DSCR
  reg(0x1030_0000_0000_000an), // PURR
  reg(0x1030_0000_0000_000bn), // SPURR
  reg(0x1030_0000_0000_000cn), // DAR
  reg(0x1020_0000_0000_000dn), // DSISR
  reg(0x1030_0000_0000_000en), // AMR
  reg(0x1030_0000_0000_000fn), // UAMOR
  reg(0x1030_0000_0000_00a8n), // TAR
  reg(0x1030_0000_0000_00b6n), // PPR
  { id: 0x1030_0000_0000_00b5n, reset: 0x40_0000_0054_0413n, stored: lpcrStored }, // LPCR_64
];

class PpcVm implements ArchVm {
  /** POWER9 and later give each virtual core one vCPU: a second vCPU for the same id is refused (book3s_hv.c). */
  admitVcpuId(id: bigint, existing: readonly VcpuFile[]): void {
    if (existing.some((v) => v.id === id)) fail('EINVAL');
  }

  createVcpu(vcpu: VcpuFile): ArchVcpu {
    return new PpcVcpu(vcpu);
  }
}

class PpcVcpu implements ArchVcpu {
  /** Values written so far; a register never written reads its reset value. */
  private readonly values = new Map<bigint, bigint>();
  constructor(readonly vcpu: VcpuFile) {}

  ioctl(name: string, arg: bigint): bigint | undefined {
    if (name !== 'KVM_GET_ONE_REG' && name !== 'KVM_SET_ONE_REG') return undefined;
    const { kernel } = this.vcpu;
    const { id, addr } = readOneReg(kernel, arg);
    const size = regSize(id);
    if (size > MAX_REG_BYTES) fail('EINVAL');
    if (name === 'KVM_GET_ONE_REG') {
      const r = HV_REGS.find((x) => x.id === id) ?? fail('EINVAL');
      putRegValue(kernel, addr, this.values.get(r.id) ?? r.reset, size);
      return 0n;
    }
    // SET copies the value in before it looks at the id (arch/powerpc/kvm/powerpc.c).
    const value = getRegValue(kernel, addr, size);
    const r = HV_REGS.find((x) => x.id === id) ?? fail('EINVAL');
    if (r.accepts && !r.accepts(value)) fail('EINVAL');
    this.values.set(r.id, r.stored ? r.stored(this.values.get(r.id) ?? r.reset, value) : value);
    return 0n;
  }
}

export function ppc64leModel(spec: SpecTree): ArchModel {
  return {
    arch: 'ppc64le',
    kernelVersion: '6.12',
    maxVcpuId: 2048,
    // One page of Debian's 64 KiB-page ppc64el kernels: ppc maps no coalesced-MMIO page (seen live).
    vcpuMmapSize: 65536,
    unknownIoctl: { system: 'EINVAL', vm: 'ENOTTY', vcpu: 'EINVAL' },
    checkExtension: capabilityTable(spec, 'ppc64le', { KVM_CAP_USER_MEMORY: 1n, KVM_CAP_ONE_REG: 1n }),
    createVm: (type) => {
      // Debian builds KVM-HV only: KVM_VM_PPC_PR and unknown types fail.
      if (type !== 0n && type !== KVM_VM_PPC_HV) fail('EINVAL');
      return new PpcVm();
    },
  };
}
