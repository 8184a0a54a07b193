import { decodeStruct, writeFields } from '../../../harness/abi/codec.ts';
import { u64 } from '../../abi.ts';
import { fail } from '../../errno.ts';
import type { VcpuFile } from '../../kernel.ts';
import type { S390Cpu } from './cpu.ts';
import { LogicalView } from './logical.ts';
import type { GuestStorage } from './storage.ts';

const EXIT_S390_SIEIC = 13n;
const EXIT_INTERNAL_ERROR = 17n;
/** SIE interception code for an intercepted instruction. */
const ICPT_INSTRUCTION = 4n;
const DIAGNOSE = 0x83;
/** Time-slice ends (arch/s390/kvm/diag.c): KVM yields the host CPU and the guest goes on after them. */
const DIAG_YIELD = new Set([0x44, 0x9c]);
/**
 * Codes KVM handles in the kernel that, with the zero registers of a new vCPU, give the guest a
 * specification exception (pages released from address 0, a pfault block at 0): guest interrupt handling
 * the reference does not run. Every other code with zero registers goes to user space (0x308 with
 * subcode 0 and 0x500 without virtio-ccw notification among them).
 */
const DIAG_SPECIFICATION = new Set([0x10, 0x258]);
/** A guest of nothing but yields runs until a signal upstream; the reference stops after this many. */
const MAX_YIELDS = 1 << 16;

/**
 * The code of a DIAGNOSE: base register plus displacement. The reference keeps no general registers, so
 * they hold 0 as after vCPU creation and the code is the 12-bit displacement.
 */
const diagCode = (insn: Uint8Array) => ((insn[2]! & 0xf) << 8) | insn[3]!;

/**
 * KVM_RUN on s390, as far as the reference executes guests: load the PSW (and a dirty prefix) from kvm_run,
 * start the vCPU,
 * fetch each instruction at the PSW address through the guest's own translation, go on past a yield,
 * and leave on a DIAGNOSE the kernel does not handle (such as 0x501) the way real KVM hands it to user
 * space (SIEIC exit, instruction intercept, PSW past the instruction). Anything else ends the run at once
 * with KVM_EXIT_INTERNAL_ERROR: the reference runs no other guest code.
 */
export function runVcpu(vcpu: VcpuFile, cpu: S390Cpu, storage: GuestStorage): bigint {
  const { kernel } = vcpu;
  const layout = kernel.abi.layout('kvm_run');
  const run = decodeStruct(layout, vcpu.run, kernel.abi.endian);
  // sync_regs: the PSW always, the prefix when user space marked it dirty; then nothing is dirty.
  cpu.pswMask = u64(run, 'psw_mask');
  cpu.pswAddr = u64(run, 'psw_addr');
  if ((u64(run, 'kvm_dirty_regs') & kernel.abi.constant('KVM_SYNC_PREFIX')) !== 0n)
    cpu.loadPrefix(u64(run, 'prefix'));
  cpu.stopped = false;
  const view = new LogicalView(cpu, storage);
  let values: Record<string, bigint> = { exit_reason: EXIT_INTERNAL_ERROR };
  for (let n = 0; n < MAX_YIELDS; n++) {
    const fetched = view.read({ gaddr: cpu.pswAddr, size: 4, ar: 0, mode: 'fetch', key: 0 });
    if (!('data' in fetched) || fetched.data[0] !== DIAGNOSE) break;
    const insn = fetched.data;
    const code = diagCode(insn);
    if (DIAG_SPECIFICATION.has(code)) break;
    cpu.pswAddr = cpu.effective(cpu.pswAddr + 4n);
    if (DIAG_YIELD.has(code)) continue;
    values = {
      exit_reason: EXIT_S390_SIEIC,
      icptcode: ICPT_INSTRUCTION,
      ipa: BigInt((DIAGNOSE << 8) | insn[1]!),
      ipb: BigInt(((insn[2]! << 24) | (insn[3]! << 16)) >>> 0),
    };
    break;
  }
  writeFields(
    layout,
    vcpu.run,
    {
      ...values,
      psw_mask: cpu.pswMask,
      psw_addr: cpu.pswAddr,
      kvm_dirty_regs: 0n,
      prefix: BigInt(cpu.prefix),
    },
    kernel.abi.endian,
  );
  return 0n;
}

/** KVM_S390_SET_INITIAL_PSW: only while the vCPU is stopped; the PSW lands in kvm_run for the next run. */
export function setInitialPsw(vcpu: VcpuFile, cpu: S390Cpu, arg: bigint): bigint {
  const { kernel } = vcpu;
  const psw = kernel.abi.readStruct(kernel.mem, arg, 'kvm_s390_psw');
  if (!cpu.stopped) fail('EBUSY');
  writeFields(
    kernel.abi.layout('kvm_run'),
    vcpu.run,
    { psw_mask: u64(psw, 'mask'), psw_addr: u64(psw, 'addr') },
    kernel.abi.endian,
  );
  return 0n;
}
