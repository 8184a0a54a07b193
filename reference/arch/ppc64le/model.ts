import type { SpecTree } from '../../../harness/spec/tree.ts';
import { capabilityTable } from '../../capabilities.ts';
import { fail } from '../../errno.ts';
import type { ArchModel, ArchVcpu, ArchVm, VcpuFile, VmFile } from '../../kernel.ts';
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
  /** One register for the whole VM rather than one per vCPU. */
  vmWide?: boolean;
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

/** DAWRX_HYP and DABRX_HYP: a user-space write never arms a hypervisor-mode watchpoint. */
const WATCH_HYP = 0x4n;
/** CIABR's privilege field; 3 means hypervisor, which a write disables. */
const CIABR_PRIV = 0x3n;
/** The PSSCR bits a guest may see (PSSCR_GUEST_VIS). */
const PSSCR_GUEST_VIS = 0xf000_0000_0000_03ffn;
const TB_OFFSET_ALIGN = 1n << 24n;
const U64_MASK = (1n << 64n) - 1n;
/** The logical PVRs a POWER9 host accepts as ARCH_COMPAT: 2.05, 2.06, 2.06+, 2.07, 3.00; 0 for none. */
const ARCH_COMPAT_VALUES = new Set([
  0n,
  0x0f00_0001n,
  0x0f00_0002n,
  0x0f10_0003n,
  0x0f00_0004n,
  0x0f00_0005n,
]);

const adjusted = (id: bigint, reset: bigint, stored: (value: bigint) => bigint): PpcReg => ({
  id,
  reset,
  stored: (_held, value) => stored(value),
});

/** ONE_REG ids by size and index: KVM_REG_PPC | KVM_REG_SIZE_U64 (U32, U128) | index. */
const u64 = (index: number) => 0x1030_0000_0000_0000n | BigInt(index);
const u32 = (index: number) => 0x1020_0000_0000_0000n | BigInt(index);
const u128 = (index: number) => 0x1040_0000_0000_0000n | BigInt(index);

const TB_OFFSET = u64(0x9c);
const DEC_EXPIRY = u64(0xbe);

/** The model host's timebase: POWER's 512 MHz, counted from a monotonic clock (get_tb()). */
const hostTimebase = () => (process.hrtime.bigint() * 512n) / 1000n;

/** KVM_REG_PPC_FPR0 and VSR0: FPR n is doubleword 1 of VSR n (bytes 8-15 of its little-endian image). */
const FPR0 = u64(0x20);
const VSR0 = u128(0x60);
const DOUBLEWORD = 64n;

/**
 * The KVM-HV registers of the model (arch/powerpc/kvm/book3s_hv.c, book3s.c, powerpc.c); ids from
 * arch/powerpc/include/uapi/asm/kvm.h. A POWER9 guest: DPDES is the vCPU's own doorbell bit.
 */
const HV_REGS: readonly PpcReg[] = [
  reg(u64(0x01), 0n, (v) => v === 0n), // HIOR
  ...[0x08, 0x09, 0x0a, 0x0b, 0x0c].map((i) => reg(u64(i))), // DABR, DSCR, PURR, SPURR, DAR
  reg(u32(0x0d)), // DSISR
  ...[0x0e, 0x0f].map((i) => reg(u64(i))), // AMR, UAMOR
  reg(u64(0x10), 0x8000_0000n), // MMCR0: counters frozen (MMCR0_FC) at creation
  ...[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17].map((i) => reg(u64(i))), // MMCR1, MMCRA, MMCR2, MMCRS, SIAR, SDAR, SIER
  ...Array.from({ length: 8 }, (_, i) => reg(u32(0x18 + i))), // PMC1..8
  ...Array.from({ length: 32 }, (_, i) => reg(u128(0x40 + i))), // VR0..31
  ...Array.from({ length: 32 }, (_, i) => reg(u128(0x60 + i))), // VSR0..31 (FPR0..31 live inside them)
  reg(u64(0x80)), // FPSCR
  reg(u32(0x81)), // VSCR
  reg(u64(0x82)), // VPA_ADDR: recorded, checked only when the vCPU runs
  adjusted(TB_OFFSET, 0n, (v) => (v + TB_OFFSET_ALIGN - 1n) & ~(TB_OFFSET_ALIGN - 1n) & U64_MASK),
  reg(u32(0x9d)), // SPMC1
  reg(u32(0x9e)), // SPMC2
  reg(u64(0x9f)), // IAMR
  reg(u64(0xa3)), // FSCR
  reg(u32(0xa4)), // PSPB
  ...[0xa5, 0xa6, 0xa7, 0xa8].map((i) => reg(u64(i))), // EBBHR, EBBRR, BESCR, TAR
  adjusted(u64(0xa9), 0n, (v) => v & 1n), // DPDES
  reg(u64(0xaa)), // DAWR
  adjusted(u64(0xab), 0n, (v) => v & ~WATCH_HYP), // DAWRX
  adjusted(u64(0xac), 0n, (v) => ((v & CIABR_PRIV) === CIABR_PRIV ? v & ~CIABR_PRIV : v)), // CIABR
  ...[0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3].map((i) => reg(u64(i))), // IC, VTB, CSIGR, TACR, TCSCR, PID, ACOP
  reg(u32(0xb4)), // VRSAVE
  { id: u64(0xb5), reset: 0x40_0000_0054_0413n, stored: lpcrStored }, // LPCR_64
  reg(u64(0xb6)), // PPR
  reg(u32(0xb7), 0n, (v) => ARCH_COMPAT_VALUES.has(v)), // ARCH_COMPAT
  adjusted(u32(0xb8), 0n, (v) => v & ~WATCH_HYP), // DABRX
  reg(u64(0xb9)), // WORT
  reg(u64(0xbc)), // TIDR
  adjusted(u64(0xbd), 0n, (v) => v & PSSCR_GUEST_VIS), // PSSCR
  reg(DEC_EXPIRY),
  reg(u32(0xbf)), // ONLINE
  { id: u64(0xc0), reset: 0n, vmWide: true }, // PTCR: the nested hypervisor's, kvm->arch.l1_ptcr
  ...[0xc2, 0xc3, 0xc4].map((i) => reg(u64(i))), // SIER2, SIER3, DAWR1
  adjusted(u64(0xc5), 0n, (v) => v & ~WATCH_HYP), // DAWRX1
];

class PpcVm implements ArchVm {
  /** The VM-wide registers' values. */
  readonly values = new Map<bigint, bigint>();

  constructor(private readonly vm: VmFile) {}

  /** POWER9 and later give each virtual core one vCPU: a second vCPU for the same id is refused (book3s_hv.c). */
  admitVcpuId(id: bigint, existing: readonly VcpuFile[]): void {
    if (existing.some((v) => v.id === id)) fail('EINVAL');
  }

  /** KVM_IRQ_LINE goes to an in-kernel XICS or XIVE device, which the model never has: ENXIO once read. */
  ioctl(name: string, arg: bigint): bigint | undefined {
    if (name !== 'KVM_IRQ_LINE') return undefined;
    const { mem, abi } = this.vm.kernel;
    abi.readStruct(mem, arg, 'kvm_irq_level');
    return fail('ENXIO');
  }

  createVcpu(vcpu: VcpuFile): ArchVcpu {
    return new PpcVcpu(vcpu, this);
  }
}

class PpcVcpu implements ArchVcpu {
  /** Values written so far; a register never written reads its reset value. */
  private readonly values = new Map<bigint, bigint>();
  constructor(
    readonly vcpu: VcpuFile,
    private readonly vm: PpcVm,
  ) {}

  private store(r: PpcReg): Map<bigint, bigint> {
    return r.vmWide ? this.vm.values : this.values;
  }

  private held(r: PpcReg): bigint {
    return this.store(r).get(r.id) ?? r.reset;
  }

  ioctl(name: string, arg: bigint): bigint | undefined {
    // The model runs no ppc64 guest: of KVM_RUN it answers only the immediate exit.
    if (name === 'KVM_RUN') return this.vcpu.immediateExit ? fail('EINTR') : undefined;
    if (name !== 'KVM_GET_ONE_REG' && name !== 'KVM_SET_ONE_REG') return undefined;
    const { kernel } = this.vcpu;
    const { id, addr } = readOneReg(kernel, arg);
    const size = regSize(id);
    if (size > MAX_REG_BYTES) fail('EINVAL');
    // FPR n is not a register of its own: it is doubleword 1 of VSR n.
    const fpr = id - FPR0 >= 0n && id - FPR0 < 32n ? find(VSR0 + (id - FPR0)) : undefined;
    if (name === 'KVM_GET_ONE_REG') {
      const value = fpr ? this.held(fpr) >> DOUBLEWORD : this.held(find(id));
      putRegValue(kernel, addr, value, size);
      return 0n;
    }
    // SET copies the value in before it looks at the id (arch/powerpc/kvm/powerpc.c).
    const value = getRegValue(kernel, addr, size);
    if (fpr) {
      this.store(fpr).set(fpr.id, (this.held(fpr) & U64_MASK) | (value << DOUBLEWORD));
      return 0n;
    }
    const r = find(id);
    if (r.accepts && !r.accepts(value)) fail('EINVAL');
    const stored = r.stored ? r.stored(this.held(r), value) : value;
    this.store(r).set(r.id, stored);
    // A vCPU whose DEC_EXPIRY was never set gets one at the first non-zero TB_OFFSET: now, in guest timebase.
    if (r.id === TB_OFFSET && stored !== 0n && this.held(find(DEC_EXPIRY)) === 0n)
      this.values.set(DEC_EXPIRY, (hostTimebase() + stored) & U64_MASK);
    return 0n;
  }
}

const HV_REGS_BY_ID = new Map(HV_REGS.map((r) => [r.id, r]));

/** The register an id names, or EINVAL (kvmppc_get_one_reg_hv's default). */
function find(id: bigint): PpcReg {
  return HV_REGS_BY_ID.get(id) ?? fail('EINVAL');
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
    createVm: (type, vm) => {
      // Debian builds KVM-HV only: KVM_VM_PPC_PR and unknown types fail.
      if (type !== 0n && type !== KVM_VM_PPC_HV) fail('EINVAL');
      return new PpcVm(vm);
    },
  };
}
