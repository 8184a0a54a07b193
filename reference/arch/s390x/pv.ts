import { u64 } from '../../abi.ts';
import { Errno, fail } from '../../errno.ts';
import type { ReferenceKernel } from '../../kernel.ts';
import type { S390Cpu } from './cpu.ts';

const PV_ENABLE = 0n;
const PV_DISABLE = 1n;
/** The Ultravisor's "executed" return code, reported in kvm_pv_cmd.rc. */
const UVC_RC_EXECUTED = 1n;
/** A protected vCPU's secure instruction data area: one page. */
const SIDA_SIZE = 4096;

/**
 * Protected virtualization as KVM drives it (arch/s390/kvm/pv.c, kvm-s390.c), with the Ultravisor
 * simulated: it accepts every call. Enabling converts the VM and each vCPU, giving every vCPU a SIDA;
 * disabling converts them back.
 */
export class ProtectedVirtualization {
  enabled = false;
  readonly cpus: S390Cpu[] = [];

  /** A vCPU created while the VM is protected is protected from the start. */
  adopt(cpu: S390Cpu): void {
    this.cpus.push(cpu);
    if (this.enabled) cpu.sida = new Uint8Array(SIDA_SIZE);
  }

  /**
   * KVM_S390_PV_COMMAND: flags must be 0; ENABLE and DISABLE each only from the other state. The struct is
   * copied back after the command, refused or not, so a copy that faults (read-only memory) makes the answer
   * EFAULT whatever the command's own (kvm_arch_vm_ioctl in kvm-s390.c).
   */
  command(kernel: ReferenceKernel, arg: bigint): bigint {
    const { abi, mem } = kernel;
    const cmd = abi.readStruct(mem, arg, 'kvm_pv_cmd');
    if (u64(cmd, 'flags') !== 0n) fail('EINVAL');
    let refused: Errno | undefined;
    try {
      this.handle(u64(cmd, 'cmd'));
      cmd.rc = UVC_RC_EXECUTED;
      cmd.rrc = 0n;
    } catch (err) {
      if (!(err instanceof Errno)) throw err;
      refused = err;
    }
    abi.writeStruct(mem, arg, 'kvm_pv_cmd', cmd);
    if (refused) throw refused;
    return 0n;
  }

  private handle(cmd: bigint): void {
    switch (cmd) {
      case PV_ENABLE:
        if (this.enabled) fail('EINVAL');
        this.enabled = true;
        for (const cpu of this.cpus) cpu.sida = new Uint8Array(SIDA_SIZE);
        break;
      case PV_DISABLE:
        if (!this.enabled) fail('EINVAL');
        this.enabled = false;
        for (const cpu of this.cpus) delete cpu.sida;
        break;
      default:
        fail('ENOTTY');
    }
  }
}
