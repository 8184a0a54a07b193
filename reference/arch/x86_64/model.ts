import type { SpecTree } from '../../../harness/spec/tree.ts';
import { decodeStruct, readUint, writeFields, type StructValues } from '../../../harness/abi/codec.ts';
import { u64 } from '../../abi.ts';
import { capabilityTable } from '../../capabilities.ts';
import { fail } from '../../errno.ts';
import type { ArchModel, ArchVcpu, ArchVm, ReferenceKernel, VcpuFile, VmFile } from '../../kernel.ts';
import { copyRegList, getRegValue, putRegValue, readOneReg } from '../../one-reg.ts';
import { IRQCHIP_STATE_OFFSET, X86Irqchip } from './irqchip.ts';
import { LAPIC_PAGE_BYTES, lapicPage, restoreLapic } from './lapic.ts';
import { MSRS, MSR_EFER, signExtend } from './msrs.ts';
import { X86Events, type InterruptState } from './events.ts';
import { X86DebugRegisters, X86Registers } from './regs.ts';
import { HOST_XCR0, X86Xcrs } from './xcrs.ts';
import { DEFAULT_MAXPHYADDR, X86SpecialRegisters, type SregsHost } from './sregs.ts';

// ONE_REG ids on x86 (arch/x86/include/uapi/asm/kvm.h, new in 6.18).
const REG_X86 = 0x2000_0000_0000_0000n;
const REG_SIZE_U64 = 0x0030_0000_0000_0000n;
const RESERVED_BITS = 0x00ff_ff00_0000_0000n & ~0x00f0_0000_0000_0000n; // bits 40..51 minus the size field
const TYPE_MSR = 2n;
const TYPE_KVM = 3n;
const KVM_REG_GUEST_SSP = 0n;
const GUEST_SSP_ID = REG_X86 | REG_SIZE_U64 | (TYPE_KVM << 32n) | KVM_REG_GUEST_SSP;

const MAX_CPUID_ENTRIES = 256;
/** MAX_IO_MSRS: KVM_{GET,SET}_MSRS take fewer entries than this. */
const MAX_IO_MSRS = 256;
const VCPU_TSC_CTRL = 0n;
const VCPU_TSC_OFFSET = 0n;
const CPUID_ENTRY_SIZE = 40;
const CPUID_FLAG_SIGNIFICANT_INDEX = 1n;
/** CPUID.(EAX=7,ECX=0):ECX[7], CET shadow stacks. */
const CPUID_7_ECX_SHSTK = 1n << 7n;
/** CPUID.1:ECX[21], x2APIC. */
const CPUID_1_ECX_X2APIC = 1n << 21n;

/** The MP states besides RUNNABLE that x86 takes, all of them the local APIC's. */
const LAPIC_MP_STATES = ['UNINITIALIZED', 'HALTED', 'AP_RESET_HOLD', 'INIT_RECEIVED', 'SIPI_RECEIVED'];

/** The boot processor's vCPU id: 0 unless KVM_SET_BOOT_CPU_ID (not modelled) moves it. */
const BSP_VCPU_ID = 0n;

class X86Vm implements ArchVm {
  /** KVM_CREATE_IRQCHIP: a PIC and an IOAPIC, and a local APIC in every vCPU created after it. */
  private chips: X86Irqchip | undefined;

  constructor(private readonly vm: VmFile) {}

  get irqchip(): boolean {
    return this.chips !== undefined;
  }

  ioctl(name: string, arg: bigint): bigint | undefined {
    switch (name) {
      case 'KVM_CREATE_IRQCHIP':
        // The argument is never read. An existing irqchip is checked before the vCPUs.
        if (this.irqchip) fail('EEXIST');
        if (this.vm.vcpus.length > 0) fail('EINVAL');
        this.chips = new X86Irqchip(() => this.vm.vcpus.length > 0);
        return 0n;
      case 'KVM_GET_IRQCHIP':
      case 'KVM_SET_IRQCHIP':
        return this.irqchipState(name === 'KVM_SET_IRQCHIP', arg);
      case 'KVM_IRQ_LINE':
      case 'KVM_IRQ_LINE_STATUS':
        return this.irqLine(name === 'KVM_IRQ_LINE_STATUS', arg);
    }
    return undefined;
  }

  /** The struct is copied in whole first; GET copies it all back with the chip's state in place. */
  private irqchipState(isSet: boolean, arg: bigint): bigint {
    const { mem, abi } = this.vm.kernel;
    const bytes = mem.copyFromUser(arg, abi.structSize('kvm_irqchip'));
    if (!this.chips) fail('ENXIO');
    const chipId = Number(readUint(bytes, 0, 4, 'little'));
    if (!this.chips.has(chipId)) fail('EINVAL');
    const state = bytes.subarray(IRQCHIP_STATE_OFFSET);
    if (isSet) {
      this.chips.write(chipId, state);
    } else {
      this.chips.read(chipId, state);
      mem.copyToUser(arg, bytes);
    }
    return 0n;
  }

  /**
   * KVM_IRQ_LINE(_STATUS): the struct is copied in before the irqchip is looked for; the status goes back
   * over the GSI only with _STATUS, after the line was driven, so a struct that cannot be written back fails
   * with EFAULT with the line already set.
   */
  private irqLine(withStatus: boolean, arg: bigint): bigint {
    const { mem, abi } = this.vm.kernel;
    const fields = abi.readStruct(mem, arg, 'kvm_irq_level');
    if (!this.chips) fail('ENXIO');
    const level = u64(fields, 'level');
    const status = BigInt(this.chips.driveGsi(u64(fields, 'irq'), level !== 0n));
    if (withStatus) abi.writeStruct(mem, arg, 'kvm_irq_level', { status, level });
    return 0n;
  }

  createVcpu(vcpu: VcpuFile): ArchVcpu {
    return new X86Vcpu(vcpu, this.irqchip);
  }
}

/** A state struct of a vCPU: the struct and how the model reads and sets its values. */
interface StateStruct {
  struct: string;
  get(): StructValues;
  set(values: StructValues): void;
}

class X86Vcpu implements ArchVcpu, SregsHost {
  private readonly msrs = new Map<number, bigint>(MSRS.map((m) => [m.index, m.reset]));
  private guestSsp = 0n;
  private guestHasShstk = false;
  /** From the guest CPUID (KVM_SET_CPUID2), for the APIC base and CR3 checks of KVM_SET_SREGS. */
  x2apic = false;
  maxPhysAddr = DEFAULT_MAXPHYADDR;
  private readonly sregs: X86SpecialRegisters;
  private readonly regs = new X86Registers();
  private readonly debugRegs = new X86DebugRegisters();
  private readonly xcrs = new X86Xcrs();
  /** The XCR0 features the guest CPUID's leaf 0xD offers, of those the host supports (none without CPUID). */
  private guestXcr0 = 0n;
  /** For the special registers and the events: the external interrupt being delivered. */
  readonly interrupt: InterruptState = { injected: false, nr: 0n, soft: false };
  private readonly events: X86Events;
  private tscOffset = 0n;

  private mpState: bigint;
  /** A SIPI that KVM_SET_MP_STATE left pending, delivered when the APIC's events are next accepted. */
  private sipiPending = false;

  /** The local APIC's register page; only a vCPU created after KVM_CREATE_IRQCHIP has one. */
  private readonly lapicRegs: Uint8Array | undefined;

  /** `lapic`: the VM had an in-kernel irqchip when this vCPU was created, so it has a local APIC. */
  constructor(
    readonly vcpu: VcpuFile,
    lapic: boolean,
  ) {
    // kvm_arch_vcpu_create: with a local APIC, an AP waits for INIT and SIPI; the boot processor runs.
    this.mpState = this.state(lapic && vcpu.id !== BSP_VCPU_ID ? 'UNINITIALIZED' : 'RUNNABLE');
    this.lapicRegs = lapic ? lapicPage(vcpu.id, vcpu.id === BSP_VCPU_ID) : undefined;
    this.sregs = new X86SpecialRegisters(this, vcpu.id === BSP_VCPU_ID);
    const flag = (name: string) => vcpu.kernel.abi.constant(`KVM_VCPUEVENT_VALID_${name}`);
    this.events = new X86Events(this.interrupt, flag, lapic);
  }

  /** For the special registers: EFER is the MSR's value whichever way it is set. */
  get efer(): bigint {
    return this.msrs.get(MSR_EFER) ?? 0n;
  }

  set efer(value: bigint) {
    this.msrs.set(MSR_EFER, value);
  }

  /** For the special registers: CR8 is this page's TPR when the vCPU has a local APIC. */
  get lapic(): Uint8Array | undefined {
    return this.lapicRegs;
  }

  /**
   * The vCPU state that KVM_GET_<NAME> writes as a whole struct and KVM_SET_<NAME> reads whole before any
   * check, by <NAME>.
   */
  private readonly stateStructs: Record<string, StateStruct> = {
    REGS: { struct: 'kvm_regs', get: () => this.regs.get(), set: (v) => this.regs.set(v) },
    SREGS: { struct: 'kvm_sregs', get: () => this.sregs.get(), set: (v) => this.sregs.set(v) },
    DEBUGREGS: {
      struct: 'kvm_debugregs',
      get: () => this.debugRegs.get(),
      set: (v) => this.debugRegs.set(v),
    },
    XCRS: { struct: 'kvm_xcrs', get: () => this.xcrs.get(), set: (v) => this.xcrs.set(v, this.guestXcr0) },
    VCPU_EVENTS: { struct: 'kvm_vcpu_events', get: () => this.events.get(), set: (v) => this.events.set(v) },
  };

  /** KVM_GET_* and KVM_SET_* of a state struct, or undefined for any other ioctl. */
  private stateIoctl(name: string, arg: bigint): bigint | undefined {
    const [, op, what] = /^KVM_(GET|SET)_(.+)$/.exec(name) ?? [];
    const state = what === undefined ? undefined : this.stateStructs[what];
    if (!state) return undefined;
    const { abi, mem } = this.vcpu.kernel;
    if (op === 'SET') state.set(abi.readStruct(mem, arg, state.struct));
    else abi.writeStruct(mem, arg, state.struct, state.get());
    return 0n;
  }

  /** KVM_GET_LAPIC writes the page out without reading it; KVM_SET_LAPIC restores it (`restoreLapic`). */
  private lapicState(isSet: boolean, arg: bigint): bigint {
    const regs = this.lapicRegs ?? fail('EINVAL');
    const { mem } = this.vcpu.kernel;
    if (isSet) restoreLapic(regs, mem.copyFromUser(arg, LAPIC_PAGE_BYTES));
    else mem.copyToUser(arg, regs);
    return 0n;
  }

  private state(name: string): bigint {
    return this.vcpu.kernel.abi.constant(`KVM_MP_STATE_${name}`);
  }

  /**
   * kvm_apic_accept_events first: a pending SIPI starts a vCPU in INIT_RECEIVED at the SIPI's vector and is
   * dropped otherwise. No PV unhalt is modelled, so HALTED reads HALTED.
   */
  getMpState(): { state: bigint } {
    if (this.sipiPending) {
      this.sipiPending = false;
      if (this.mpState === this.state('INIT_RECEIVED')) {
        this.mpState = this.state('RUNNABLE');
        // kvm_vcpu_deliver_sipi_vector, with the local APIC's vector (KVM_SET_VCPU_EVENTS can set it).
        this.sregs.pointCsAt(this.events.sipiVector);
        this.regs.rip = 0n;
      }
    }
    return { state: this.mpState };
  }

  /** The local APIC's states need an in-kernel local APIC; SIPI_RECEIVED becomes INIT_RECEIVED and a SIPI. */
  setMpState(state: bigint): void {
    const apicState = LAPIC_MP_STATES.some((n) => this.state(n) === state);
    if (state !== this.state('RUNNABLE') && !(apicState && this.lapicRegs)) fail('EINVAL');
    if (state === this.state('SIPI_RECEIVED')) {
      this.mpState = this.state('INIT_RECEIVED');
      this.sipiPending = true;
    } else {
      this.mpState = state;
    }
  }

  ioctl(name: string, arg: bigint): bigint | undefined {
    const { kernel } = this.vcpu;
    const state = this.stateIoctl(name, arg);
    if (state !== undefined) return state;
    switch (name) {
      case 'KVM_GET_ONE_REG':
      case 'KVM_SET_ONE_REG':
        return this.oneReg(name === 'KVM_SET_ONE_REG', arg);
      case 'KVM_GET_REG_LIST':
        // Only KVM-defined registers are listed, never MSRs; GUEST_SSP exists iff the guest has SHSTK.
        return copyRegList(kernel, arg, this.guestHasShstk ? [GUEST_SSP_ID] : []);
      case 'KVM_SET_CPUID2':
        return this.setCpuid(arg);
      case 'KVM_GET_LAPIC':
      case 'KVM_SET_LAPIC':
        return this.lapicState(name === 'KVM_SET_LAPIC', arg);
      case 'KVM_GET_MSRS':
      case 'KVM_SET_MSRS':
        return this.msrIo(name === 'KVM_SET_MSRS', arg);
      case 'KVM_HAS_DEVICE_ATTR':
      case 'KVM_GET_DEVICE_ATTR':
      case 'KVM_SET_DEVICE_ATTR':
        return this.deviceAttr(name, arg);
      case 'KVM_RUN':
        // The model runs no x86 guest: of KVM_RUN it answers only the immediate exit.
        return this.vcpu.immediateExit ? fail('EINTR') : undefined;
    }
    return undefined;
  }

  /** vCPU attributes: x86 knows only the TSC group, with its one attribute, the TSC offset (x86.c). */
  private deviceAttr(name: string, arg: bigint): bigint {
    const { kernel } = this.vcpu;
    const attr = kernel.abi.readStruct(kernel.mem, arg, 'kvm_device_attr');
    if (u64(attr, 'group') !== VCPU_TSC_CTRL || u64(attr, 'attr') !== VCPU_TSC_OFFSET) fail('ENXIO');
    const addr = u64(attr, 'addr');
    if (name === 'KVM_GET_DEVICE_ATTR') putRegValue(kernel, addr, this.tscOffset, 8);
    else if (name === 'KVM_SET_DEVICE_ATTR') this.tscOffset = getRegValue(kernel, addr, 8);
    return 0n;
  }

  /** kvm_vcpu_ioctl_set_cpuid2 and kvm_set_cpuid (cpuid.c); the model host supports shadow stacks. */
  private setCpuid(arg: bigint): bigint {
    const { kernel } = this.vcpu;
    const nent = Number(u64(kernel.abi.readStruct(kernel.mem, arg, 'kvm_cpuid2'), 'nent'));
    if (nent > MAX_CPUID_ENTRIES) fail('E2BIG');
    const header = kernel.abi.structSize('kvm_cpuid2');
    const bytes = kernel.mem.copyFromUser(arg + BigInt(header), nent * CPUID_ENTRY_SIZE);
    const entries = Array.from({ length: nent }, (_, i) => {
      const word = (n: number) => readUint(bytes, i * CPUID_ENTRY_SIZE + 4 * n, 4, 'little');
      return { fn: word(0), index: word(1), flags: word(2), eax: word(3), ecx: word(5), edx: word(6) };
    });
    // kvm_find_cpuid_entry_index: the first entry of the leaf whose index matches or does not matter.
    const find = (fn: bigint, index: bigint) =>
      entries.find(
        (e) => e.fn === fn && ((e.flags & CPUID_FLAG_SIGNIFICANT_INDEX) === 0n || e.index === index),
      );
    // kvm_check_cpuid: the canonical-address checks know only 48- and 57-bit virtual addresses.
    const vaBits = ((find(0x8000_0008n, 0n)?.eax ?? 0n) >> 8n) & 0xffn;
    if (vaBits !== 0n && vaBits !== 48n && vaBits !== 57n) fail('EINVAL');
    this.guestHasShstk = ((find(7n, 0n)?.ecx ?? 0n) & CPUID_7_ECX_SHSTK) !== 0n;
    this.x2apic = ((find(1n, 0n)?.ecx ?? 0n) & CPUID_1_ECX_X2APIC) !== 0n;
    // guest_supported_xcr0: leaf 0xD subleaf 0's EDX:EAX, limited to what the host supports.
    const xsave = find(0xdn, 0n);
    this.guestXcr0 = (((xsave?.edx ?? 0n) << 32n) | (xsave?.eax ?? 0n)) & HOST_XCR0;
    // cpuid_query_maxphyaddr: leaf 0x80000008's EAX[7:0] if leaf 0x80000000 says it exists, else 36 bits.
    const hasLeaf = (find(0x8000_0000n, 0n)?.eax ?? 0n) >= 0x8000_0008n;
    const physBits = hasLeaf ? (find(0x8000_0008n, 0n)?.eax ?? 0n) & 0xffn : 0n;
    this.maxPhysAddr = physBits === 0n ? DEFAULT_MAXPHYADDR : physBits;
    return 0n;
  }

  /** kvm_get_set_one_reg: arch, reserved bits, type, size, then the host-initiated MSR access. */
  private oneReg(isSet: boolean, arg: bigint): bigint {
    const { kernel } = this.vcpu;
    const { id, addr } = readOneReg(kernel, arg);
    if ((id & 0xff00_0000_0000_0000n) !== REG_X86) fail('EINVAL');
    if ((id & RESERVED_BITS) !== 0n) fail('EINVAL');
    const type = (id >> 32n) & 0xffn;
    const index = id & 0xffff_ffffn;
    let ssp = false;
    if (type === TYPE_KVM) {
      if (index !== KVM_REG_GUEST_SSP || !this.guestHasShstk) fail('EINVAL');
      ssp = true;
    } else if (type !== TYPE_MSR) {
      fail('EINVAL');
    }
    if ((id & 0x00f0_0000_0000_0000n) !== REG_SIZE_U64) fail('EINVAL');
    if (isSet) {
      const value = getRegValue(kernel, addr, 8);
      if (ssp) {
        // __kvm_set_msr: the SSP must be canonical and 4-byte aligned.
        if ((value & 3n) !== 0n || signExtend(value) !== value) fail('EINVAL');
        this.guestSsp = value;
      } else if (!this.writeMsr(index, value)) {
        fail('EINVAL');
      }
      return 0n;
    }
    const value = ssp ? this.guestSsp : this.readMsr(index);
    if (value === undefined) fail('EINVAL');
    putRegValue(kernel, addr, value, 8);
    return 0n;
  }

  /** A host-initiated MSR read (kvm_get_msr_ignored_check): undefined for an MSR the model does not have. */
  private readMsr(index: bigint): bigint | undefined {
    return this.msrs.get(Number(index));
  }

  /** A host-initiated MSR write (kvm_set_msr_ignored_check): false when refused. */
  private writeMsr(index: bigint, value: bigint): boolean {
    const msr = MSRS.find((m) => BigInt(m.index) === index);
    const stored = msr?.store(value, this.msrs.get(msr.index) ?? msr.reset);
    if (!msr || stored === undefined) return false;
    this.msrs.set(msr.index, stored);
    return true;
  }

  /**
   * KVM_{GET,SET}_MSRS (msr_io): the count, E2BIG from 256 entries, all entries copied in, then one access
   * per entry until one fails (a failed read zeroes that entry's data); GET copies every entry back.
   */
  private msrIo(isSet: boolean, arg: bigint): bigint {
    const { mem, abi } = this.vcpu.kernel;
    const nmsrs = Number(u64(abi.readStruct(mem, arg, 'kvm_msrs'), 'nmsrs'));
    if (nmsrs >= MAX_IO_MSRS) fail('E2BIG');
    const entry = abi.layout('kvm_msr_entry');
    const at = arg + BigInt(abi.structSize('kvm_msrs'));
    const entries = mem.copyFromUser(at, nmsrs * entry.size);
    let done = 0;
    for (; done < nmsrs; done++) {
      const bytes = entries.subarray(done * entry.size, (done + 1) * entry.size);
      const fields = decodeStruct(entry, bytes, abi.endian);
      if (isSet) {
        if (!this.writeMsr(u64(fields, 'index'), u64(fields, 'data'))) break;
        continue;
      }
      const value = this.readMsr(u64(fields, 'index'));
      writeFields(entry, bytes, { data: value ?? 0n }, abi.endian);
      if (value === undefined) break;
    }
    if (!isSet) mem.copyToUser(at, entries);
    return BigInt(done);
  }
}

/** KVM_GET_MSR_INDEX_LIST (system ioctl): nmsrs in, the count always written back, E2BIG when too small. */
function msrIndexList(arg: bigint, kernel: ReferenceKernel): bigint {
  const { mem, abi } = kernel;
  const n = u64(abi.readStruct(mem, arg, 'kvm_msr_list'), 'nmsrs');
  abi.writeStruct(mem, arg, 'kvm_msr_list', { nmsrs: BigInt(MSRS.length) });
  if (n < BigInt(MSRS.length)) fail('E2BIG');
  const bytes = new Uint8Array(MSRS.length * 4);
  const view = new DataView(bytes.buffer);
  MSRS.forEach((m, i) => view.setUint32(i * 4, m.index, true));
  mem.copyToUser(arg + BigInt(abi.structSize('kvm_msr_list')), bytes);
  return 0n;
}

/** KVM_MAX_VCPU_IDS: KVM_CAP_MAX_VCPU_ID, and the first id KVM_CREATE_VCPU refuses (4096 on 6.18 hosts). */
const MAX_VCPU_IDS = 4096;

export function x86_64Model(spec: SpecTree): ArchModel {
  return {
    arch: 'x86_64',
    kernelVersion: '6.18',
    maxVcpuId: MAX_VCPU_IDS,
    // KVM_MEM_SLOTS_NUM less the 3 private slots x86 keeps (arch/x86/include/asm/kvm_host.h).
    userMemslots: 32764,
    vcpuMmapSize: 3 * 4096,
    unknownIoctl: { system: 'EINVAL', vm: 'ENOTTY', vcpu: 'EINVAL' },
    checkExtension: capabilityTable(spec, 'x86_64', {
      KVM_CAP_IRQCHIP: 1n,
      KVM_CAP_IRQ_INJECT_STATUS: 1n,
      KVM_CAP_DEBUGREGS: 1n,
      KVM_CAP_XCRS: 1n,
      KVM_CAP_USER_MEMORY: 1n,
      KVM_CAP_MP_STATE: 1n,
      KVM_CAP_ONE_REG: 1n,
      KVM_CAP_MAX_VCPU_ID: BigInt(MAX_VCPU_IDS),
    }),
    createVm: (type, vm: VmFile) => (type === 0n ? new X86Vm(vm) : fail('EINVAL')),
    systemIoctl: (name, arg, kernel) =>
      name === 'KVM_GET_MSR_INDEX_LIST' ? msrIndexList(arg, kernel) : undefined,
  };
}
