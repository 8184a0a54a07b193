// The x86 in-kernel irqchip of a VM: the two PICs and the IOAPIC (arch/x86/kvm/i8259.c, ioapic.c), their
// states as KVM_{GET,SET}_IRQCHIP pass them, and the GSIs KVM_IRQ_LINE drives through the default routing
// (arch/x86/kvm/irq.c). Delivery from the IOAPIC to local APICs is modelled only where there is none: in a VM
// without vCPUs. With vCPUs, a request that would reach them is reported as not modelled.
import { readUint, writeUint } from '../../../harness/abi/codec.ts';
import { NotModelled } from '../../errno.ts';

/** struct kvm_irqchip: chip_id, pad, then the chip's state in a 512-byte union. */
export const IRQCHIP_STATE_OFFSET = 8;

/** struct kvm_pic_state, byte by byte. */
const PIC_STATE_SIZE = 16;
const PIC_LAST_IRR = 0;
const PIC_IRR = 1;
const PIC_IMR = 2;
const PIC_ISR = 3;
const PIC_PRIORITY_ADD = 4;
const PIC_ELCR = 14;
const PIC_ELCR_MASK = 15;
/** The master's input the slave signals on. */
const CASCADE_PIN = 2;
const PIC_PINS = 16;

/** struct kvm_ioapic_state. */
const IOAPIC_STATE_SIZE = 216;
const IOAPIC_IRR = 16;
const IOAPIC_REDIRTBL = 24;
const IOAPIC_PINS = 24;
const IOAPIC_DEFAULT_BASE = 0xfec0_0000n;
const REDIR_REMOTE_IRR = 1n << 14n;
const REDIR_LEVEL = 1n << 15n;
const REDIR_MASKED = 1n << 16n;

const CHIP_PIC_MASTER = 0;
const CHIP_PIC_SLAVE = 1;
const CHIP_IOAPIC = 2;

/** kvm_pic_state as kvm_create_pic leaves it: zeroed until the guest initialises it, but for the ELCR mask. */
function picState(elcrMask: number): Uint8Array {
  const state = new Uint8Array(PIC_STATE_SIZE);
  state[PIC_ELCR_MASK] = elcrMask;
  return state;
}

/** kvm_ioapic_reset: the default base address and every pin masked. */
function ioapicState(): Uint8Array {
  const state = new Uint8Array(IOAPIC_STATE_SIZE);
  writeUint(state, 0, 8, IOAPIC_DEFAULT_BASE, 'little');
  for (let pin = 0; pin < IOAPIC_PINS; pin++)
    writeUint(state, IOAPIC_REDIRTBL + 8 * pin, 8, REDIR_MASKED, 'little');
  return state;
}

/** The highest priority (0 highest, 8 none) among `mask`'s bits, counted from the PIC's rotation. */
function priority(pic: Uint8Array, mask: number): number {
  if (mask === 0) return 8;
  let p = 0;
  while ((mask & (1 << ((p + pic[PIC_PRIORITY_ADD]!) & 7))) === 0) p++;
  return p;
}

/**
 * Whether a PIC has an input to signal: a request not masked and above everything in service. (Only the
 * slave's is needed: the master's output goes to a vCPU, whose interrupt acceptance the model leaves out.)
 */
function signalling(pic: Uint8Array): boolean {
  return priority(pic, pic[PIC_IRR]! & ~pic[PIC_IMR]!) < priority(pic, pic[PIC_ISR]!);
}

/**
 * One PIC input driven to `high`: level-triggered inputs (ELCR) follow the line; edge-triggered ones request
 * on a rising edge only. 1 for a new request, 0 for one already pending, -1 when the input is masked (the
 * request is recorded all the same).
 */
function drivePicInput(pic: Uint8Array, input: number, high: boolean): number {
  const bit = 1 << input;
  let result = 1;
  if (pic[PIC_ELCR]! & bit) {
    if (high) {
      result = pic[PIC_IRR]! & bit ? 0 : 1;
      pic[PIC_IRR]! |= bit;
      pic[PIC_LAST_IRR]! |= bit;
    } else {
      pic[PIC_IRR]! &= ~bit;
      pic[PIC_LAST_IRR]! &= ~bit;
    }
  } else if (high) {
    if ((pic[PIC_LAST_IRR]! & bit) === 0) {
      result = pic[PIC_IRR]! & bit ? 0 : 1;
      pic[PIC_IRR]! |= bit;
    }
    pic[PIC_LAST_IRR]! |= bit;
  } else {
    pic[PIC_LAST_IRR]! &= ~bit;
  }
  return pic[PIC_IMR]! & bit ? -1 : result;
}

export class X86Irqchip {
  /** The chips' states by chip_id: PIC master, PIC slave, IOAPIC. */
  private readonly chips = [picState(0xf8), picState(0xde), ioapicState()];
  /** Edge-triggered IOAPIC requests handed on for delivery: still in irr, but hidden from KVM_GET_IRQCHIP. */
  private irrDelivered = 0;

  /** `hasVcpus`: whether the VM has vCPUs now, each with a local APIC an IOAPIC request could reach. */
  constructor(private readonly hasVcpus: () => boolean) {}

  /** Whether chip_id names a chip. */
  has(chipId: number): boolean {
    return chipId in this.chips;
  }

  /** KVM_GET_IRQCHIP: a chip's state into `out`; the IOAPIC's irr without the edges handed on. */
  read(chipId: number, out: Uint8Array): void {
    const chip = this.chips[chipId]!;
    out.set(chip);
    if (chipId === CHIP_IOAPIC)
      writeUint(out, IOAPIC_IRR, 4, BigInt((this.ioapicIrr & ~this.irrDelivered) >>> 0), 'little');
  }

  /**
   * KVM_SET_IRQCHIP: a chip's state as given, then what a restore re-evaluates. The IOAPIC's requests are
   * raised again pin by pin (kvm_set_ioapic), and for any chip the slave PIC's output is signalled to the
   * master again (kvm_pic_update_irq).
   */
  write(chipId: number, state: Uint8Array): void {
    const chip = this.chips[chipId]!;
    chip.set(state.subarray(0, chip.length));
    if (chipId === CHIP_IOAPIC) {
      const requests = this.ioapicIrr;
      this.ioapicIrr = 0;
      this.irrDelivered = 0;
      for (let pin = 0; pin < IOAPIC_PINS; pin++) if (requests & (1 << pin)) this.driveIoapicInput(pin, true);
    }
    this.cascade();
  }

  /**
   * KVM_IRQ_LINE: drives a GSI through the default routing (GSIs 0-15 to a PIC input and the IOAPIC pin of
   * that number, 16-23 to the IOAPIC only) and answers the status KVM_IRQ_LINE_STATUS reports: -1 when no
   * chip took it (no route, masked, nobody to deliver to), else the sum of what the chips answered. Each
   * input follows the level given: userspace is the only source of requests modelled (there is no PIT).
   */
  driveGsi(gsi: bigint, high: boolean): number {
    if (gsi >= BigInt(IOAPIC_PINS)) return -1;
    const pin = Number(gsi);
    const answers = [this.driveIoapicInput(pin, high)];
    if (pin < PIC_PINS) {
      answers.push(drivePicInput(this.chips[pin >> 3]!, pin & 7, high));
      this.cascade();
    }
    return answers.reduce((status, r) => (r < 0 ? status : r + Math.max(status, 0)), -1);
  }

  /** pic_update_irq: a slave with an input to signal pulses the master's cascade input. */
  private cascade(): void {
    if (!signalling(this.chips[CHIP_PIC_SLAVE]!)) return;
    const master = this.chips[CHIP_PIC_MASTER]!;
    drivePicInput(master, CASCADE_PIN, true);
    drivePicInput(master, CASCADE_PIN, false);
  }

  /** ioapic_set_irq: 1 for a lowered line, 0 for a request coalesced with one pending, else the delivery's. */
  private driveIoapicInput(pin: number, high: boolean): number {
    const bit = 1 << pin;
    if (!high) {
      this.ioapicIrr &= ~bit;
      return 1;
    }
    const before = this.ioapicIrr;
    this.ioapicIrr |= bit;
    if (!(this.redirection(pin) & REDIR_LEVEL)) {
      this.irrDelivered &= ~bit;
      if (before === this.ioapicIrr) return 0;
    }
    return this.service(pin);
  }

  /**
   * ioapic_service: a masked entry, or a level-triggered one still awaiting its EOI, delivers nothing (-1).
   * Otherwise the request goes to the local APICs its entry names; with no vCPU there are none (-1), and a
   * level-triggered entry still waits for an EOI, as upstream marks it on any non-zero answer.
   */
  private service(pin: number): number {
    const entry = this.redirection(pin);
    if (entry & REDIR_MASKED || (entry & REDIR_LEVEL && entry & REDIR_REMOTE_IRR)) return -1;
    if (this.hasVcpus()) throw new NotModelled('delivery of IOAPIC requests to local APICs');
    if (entry & REDIR_LEVEL) this.setRedirection(pin, entry | REDIR_REMOTE_IRR);
    else this.irrDelivered |= 1 << pin;
    return -1;
  }

  private get ioapicIrr(): number {
    return Number(readUint(this.chips[CHIP_IOAPIC]!, IOAPIC_IRR, 4, 'little'));
  }

  private set ioapicIrr(value: number) {
    writeUint(this.chips[CHIP_IOAPIC]!, IOAPIC_IRR, 4, BigInt(value >>> 0), 'little');
  }

  private redirection(pin: number): bigint {
    return readUint(this.chips[CHIP_IOAPIC]!, IOAPIC_REDIRTBL + 8 * pin, 8, 'little');
  }

  private setRedirection(pin: number, entry: bigint): void {
    writeUint(this.chips[CHIP_IOAPIC]!, IOAPIC_REDIRTBL + 8 * pin, 8, entry, 'little');
  }
}
