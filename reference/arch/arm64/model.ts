import type { SpecTree } from '../../../harness/spec/tree.ts';
import { u64 } from '../../abi.ts';
import { capabilityTable } from '../../capabilities.ts';
import { fail } from '../../errno.ts';
import type { ArchModel, ArchVcpu, ArchVm, VcpuFile, VmFile } from '../../kernel.ts';
import { copyRegList, getRegValue, putRegValue, readOneReg, regSize, REG_SIZE_MASK } from '../../one-reg.ts';
import { SYSREGS, sysregId, type SysregDesc } from './sysregs.ts';

/** KVM_ARM_TARGET_GENERIC_V8: what KVM_ARM_PREFERRED_TARGET answers on every current host. */
const TARGET_GENERIC_V8 = 5n;
const FEATURE_POWER_OFF = 0;
const FEATURE_PSCI_0_2 = 2;
/** Features the model host supports (no SVE, PMU, pointer auth, AArch32 EL1 or nested virt). */
const SUPPORTED_FEATURES = (1n << BigInt(FEATURE_POWER_OFF)) | (1n << BigInt(FEATURE_PSCI_0_2));
/** Feature bits upstream 6.12 knows at all (KVM_VCPU_MAX_FEATURES); others are rejected as unknown. */
const KNOWN_FEATURES = 0xffn;

const COPROC_MASK = 0x0fff_0000n;
const COPROC_CORE = 0x0010_0000n;
const COPROC_FW = 0x0014_0000n;
const COPROC_FW_FEAT_BMAP = 0x0016_0000n;
const ARM64_ID_HIGH = 0x6000_0000n;

/** PSTATE at reset: EL1h with D, A, I and F masked (arch/arm64/kvm/reset.c). */
const PSTATE_RESET = 0x3c5n;
const PSTATE_MODE_MASK = 0xfn;
const VALID_AARCH64_MODES = new Set([0x0n, 0x4n, 0x5n]);

/** struct kvm_regs viewed as 32-bit words: which word starts which register, and its size. */
const CORE_WORDS = 216;
function coreRegSize(word: number): number | undefined {
  if (word < 0x44 + 2 * 7 && word % 2 === 0) return 8; // x0..x30, sp, pc, pstate, sp_el1, elr_el1, spsr[5]
  if (word >= 0x54 && word < 0xd4 && (word - 0x54) % 4 === 0) return 16; // v0..v31
  if (word === 0xd4 || word === 0xd5) return 4; // fpsr, fpcr
  return undefined;
}

const FW_PSCI_VERSION = 0n;
const PSCI_VERSIONS = new Set([0x2n, 0x1_0000n, 0x1_0001n]);
const PSCI_LATEST = 0x1_0001n;
/** Hypercall service bitmaps: STD (TRNG), STD_HYP (PV time), VENDOR_HYP (features, PTP). */
const FW_BITMAP_DEFAULTS: readonly bigint[] = [0x1n, 0x1n, 0x3n];

class Arm64Vm implements ArchVm {
  /** ID registers are VM-wide: one value per register for every vCPU of the VM. */
  readonly idRegs = new Map<string, bigint>(
    SYSREGS.filter((d) => d.kind === 'id').map((d) => [d.name, d.reset]),
  );
  constructor(readonly vm: VmFile) {}

  ioctl(name: string, arg: bigint): bigint | undefined {
    const { kernel } = this.vm;
    switch (name) {
      case 'KVM_ARM_PREFERRED_TARGET':
        kernel.abi.writeStruct(kernel.mem, arg, 'kvm_vcpu_init', { target: TARGET_GENERIC_V8 });
        return 0n;
      default:
        return undefined;
    }
  }

  createVcpu(vcpu: VcpuFile): ArchVcpu {
    return new Arm64Vcpu(vcpu, this);
  }
}

class Arm64Vcpu implements ArchVcpu {
  private initialized = false;
  private readonly core = new Map<number, bigint>();
  private readonly sysregs = new Map<string, bigint>();
  private readonly fw = new Map<bigint, bigint>();

  constructor(
    readonly vcpu: VcpuFile,
    readonly vm: Arm64Vm,
  ) {
    this.reset();
  }

  /** vCPU reset (KVM_ARM_VCPU_INIT): core and ordinary state back to reset; VM-wide ID registers untouched. */
  private reset(): void {
    this.core.clear();
    this.core.set(0x42, PSTATE_RESET);
    for (const d of SYSREGS) if (d.kind !== 'id') this.sysregs.set(d.name, d.reset);
    this.sysregs.set('MPIDR_EL1', 0x8000_0000n | (this.vcpu.id & 0xffn));
    if (this.fw.size === 0) {
      this.fw.set(FW_PSCI_VERSION, PSCI_LATEST);
      for (const n of [1n, 2n, 3n]) this.fw.set(n, 1n);
    }
  }

  ioctl(name: string, arg: bigint): bigint | undefined {
    switch (name) {
      case 'KVM_ARM_VCPU_INIT':
        return this.init(arg);
      case 'KVM_GET_ONE_REG':
      case 'KVM_SET_ONE_REG': {
        if (!this.initialized) fail('ENOEXEC');
        const { id, addr } = readOneReg(this.vcpu.kernel, arg);
        return name === 'KVM_GET_ONE_REG' ? this.get(id, addr) : this.set(id, addr);
      }
      case 'KVM_GET_REG_LIST':
        if (!this.initialized) fail('ENOEXEC');
        return copyRegList(this.vcpu.kernel, arg, this.regIds());
      default:
        return undefined;
    }
  }

  private init(arg: bigint): bigint {
    const { kernel } = this.vcpu;
    const values = kernel.abi.readStruct(kernel.mem, arg, 'kvm_vcpu_init');
    if (u64(values, 'target') !== TARGET_GENERIC_V8) fail('EINVAL');
    const features = values.features as bigint[];
    if (features.slice(1).some((f) => f !== 0n)) fail('ENOENT');
    const f0 = features[0] ?? 0n;
    if ((f0 & ~KNOWN_FEATURES) !== 0n) fail('ENOENT');
    if ((f0 & ~SUPPORTED_FEATURES) !== 0n) fail('EINVAL');
    this.reset();
    this.initialized = true;
    return 0n;
  }

  /** Every id GET_REG_LIST reports: core, firmware, hypercall bitmaps, then system registers. */
  private regIds(): bigint[] {
    const ids: bigint[] = [];
    for (let word = 0; word < CORE_WORDS; word++) {
      const size = coreRegSize(word);
      if (size) ids.push(0x6000_0000_0010_0000n | (BigInt(Math.log2(size)) << 52n) | BigInt(word));
    }
    for (const n of this.fw.keys()) ids.push(0x6030_0000_0014_0000n | n);
    FW_BITMAP_DEFAULTS.forEach((_, n) => ids.push(0x6030_0000_0016_0000n | BigInt(n)));
    for (const d of SYSREGS) ids.push(sysregId(d));
    return ids;
  }

  private get(id: bigint, addr: bigint): bigint {
    const { kernel } = this.vcpu;
    if ((id & ~REG_SIZE_MASK) >> 32n !== ARM64_ID_HIGH) fail('EINVAL');
    switch (id & COPROC_MASK) {
      case COPROC_CORE: {
        const { word, size } = this.coreReg(id);
        putRegValue(kernel, addr, this.readCore(word, size), size);
        return 0n;
      }
      case COPROC_FW: {
        const value = this.fw.get(id & 0xffffn);
        if (value === undefined || regSize(id) !== 8) fail('ENOENT');
        putRegValue(kernel, addr, value, 8);
        return 0n;
      }
      case COPROC_FW_FEAT_BMAP: {
        const value = this.bitmap(id);
        putRegValue(kernel, addr, value, 8);
        return 0n;
      }
      default: {
        const d = this.sysreg(id);
        putRegValue(kernel, addr, this.readSysreg(d), 8);
        return 0n;
      }
    }
  }

  private set(id: bigint, addr: bigint): bigint {
    const { kernel } = this.vcpu;
    if ((id & ~REG_SIZE_MASK) >> 32n !== ARM64_ID_HIGH) fail('EINVAL');
    switch (id & COPROC_MASK) {
      case COPROC_CORE: {
        const { word, size } = this.coreReg(id);
        const value = getRegValue(kernel, addr, size);
        if (word === 0x42 && !VALID_AARCH64_MODES.has(value & PSTATE_MODE_MASK)) fail('EINVAL');
        this.writeCore(word, size, value);
        return 0n;
      }
      case COPROC_FW: {
        if (regSize(id) !== 8 || !this.fw.has(id & 0xffffn)) fail('ENOENT');
        const value = getRegValue(kernel, addr, 8);
        if ((id & 0xffffn) === FW_PSCI_VERSION) {
          if (!PSCI_VERSIONS.has(value)) fail('EINVAL');
          this.fw.set(FW_PSCI_VERSION, value);
        } else if ((value & ~0xfn) !== 0n || value > (this.fw.get(id & 0xffffn) ?? 0n)) {
          // A workaround level may be lowered (a migration target claims less) but never raised above the
          // host's; the host's level is what reads back.
          fail('EINVAL');
        }
        return 0n;
      }
      case COPROC_FW_FEAT_BMAP: {
        const current = this.bitmap(id);
        const value = getRegValue(kernel, addr, 8);
        if ((value & ~current) !== 0n) fail('EINVAL');
        return 0n;
      }
      default: {
        // System-register writes read the user value before looking the register up.
        const value = getRegValue(kernel, addr, 8);
        const d = this.sysreg(id);
        this.writeSysreg(d, value);
        return 0n;
      }
    }
  }

  private coreReg(id: bigint): { word: number; size: number } {
    const word = Number(id & 0xffffn);
    if (word >= CORE_WORDS) fail('ENOENT');
    const size = coreRegSize(word);
    if (size === undefined || size !== regSize(id)) fail('EINVAL');
    return { word, size };
  }

  private readCore(word: number, size: number): bigint {
    return (this.core.get(word) ?? 0n) & ((1n << BigInt(size * 8)) - 1n);
  }

  private writeCore(word: number, size: number, value: bigint): void {
    this.core.set(word, value & ((1n << BigInt(size * 8)) - 1n));
  }

  private bitmap(id: bigint): bigint {
    const n = Number(id & 0xffffn);
    const value = FW_BITMAP_DEFAULTS[n];
    if (value === undefined || regSize(id) !== 8) fail('ENOENT');
    return value;
  }

  private sysreg(id: bigint): SysregDesc {
    if (regSize(id) !== 8) fail('ENOENT');
    const d = SYSREGS.find((s) => sysregId(s) === id);
    return d ?? fail('ENOENT');
  }

  private readSysreg(d: SysregDesc): bigint {
    return d.kind === 'id' ? (this.vm.idRegs.get(d.name) ?? d.reset) : (this.sysregs.get(d.name) ?? d.reset);
  }

  private writeSysreg(d: SysregDesc, value: bigint): void {
    if (d.kind === 'id') {
      const current = this.vm.idRegs.get(d.name) ?? d.reset;
      if (value === current) return;
      if (this.vcpu.vm.hasRun) fail('EBUSY');
      // Without the writable-mask model a changed ID value is never safe.
      fail('EINVAL');
    }
    this.sysregs.set(d.name, value);
  }
}

export function arm64Model(spec: SpecTree): ArchModel {
  return {
    arch: 'arm64',
    kernelVersion: '6.12',
    maxVcpuId: 512,
    vcpuMmapSize: 2 * 4096,
    unknownIoctl: { system: 'EINVAL', vm: 'EINVAL', vcpu: 'EINVAL' },
    checkExtension: capabilityTable(spec, 'arm64', {
      KVM_CAP_USER_MEMORY: 1n,
      KVM_CAP_ONE_REG: 1n,
      KVM_CAP_ARM_SUPPORTED_REG_MASK_RANGES: 1n,
    }),
    createVm: (type, vm) => {
      // The low byte selects the IPA size (0 = default 40 bits); every other bit is reserved.
      if ((type & ~0xffn) !== 0n) fail('EINVAL');
      const ipa = type & 0xffn;
      if (ipa !== 0n && (ipa < 32n || ipa > 48n)) fail('EINVAL');
      return new Arm64Vm(vm);
    },
  };
}
