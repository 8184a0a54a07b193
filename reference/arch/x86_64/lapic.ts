// A vCPU's local APIC page as KVM_{GET,SET}_LAPIC pass it (arch/x86/kvm/lapic.c): as a new vCPU's reset
// leaves it and as a restore leaves it. The model delivers no interrupt to a local APIC, so nothing here is
// ever pending or in service.

/** The local APIC page KVM_{GET,SET}_LAPIC pass, and the registers the model gives values (xAPIC offsets). */
export const LAPIC_PAGE_BYTES = 1024;
const APIC_ID = 0x20;
const APIC_LVR = 0x30;
const APIC_TASKPRI = 0x80;
const APIC_PROCPRI = 0xa0;
const APIC_DFR = 0xe0;
const APIC_SPIV = 0xf0;
const APIC_LVT0 = 0x350;
const APIC_TMCCT = 0x390;
/** Timer, thermal, performance counter, LINT0, LINT1, error: six LVT entries (no CMCI without MCG_CMCI_P). */
const APIC_LVTS = [0x320, 0x330, 0x340, 0x350, 0x360, 0x370];
/** APIC version 0x14 with the number of LVT entries less one in bits 23:16. */
const APIC_VERSION = 0x14 | ((APIC_LVTS.length - 1) << 16);
const APIC_LVT_MASKED = 0x1_0000;
const APIC_DM_EXTINT = 0x700;

/** kvm_lapic_reset: what a new vCPU's local APIC holds. */
export function lapicPage(vcpuId: bigint, bootProcessor: boolean): Uint8Array {
  const page = new Uint8Array(LAPIC_PAGE_BYTES);
  const view = new DataView(page.buffer);
  const set = (offset: number, value: number) => view.setUint32(offset, value >>> 0, true);
  set(APIC_ID, Number(vcpuId) << 24); // bits 31:24 hold the xAPIC ID: a larger vCPU id keeps its low 8 bits
  set(APIC_LVR, APIC_VERSION);
  set(APIC_DFR, 0xffff_ffff);
  set(APIC_SPIV, 0xff);
  for (const lvt of APIC_LVTS) set(lvt, APIC_LVT_MASKED);
  // KVM_X86_QUIRK_LINT0_REENABLED: the boot processor's LINT0 takes ExtINT, as a PC's BIOS leaves it.
  if (bootProcessor) set(APIC_LVT0, APIC_DM_EXTINT);
  return page;
}

/**
 * KVM_SET_LAPIC: the page is copied in as given, then the version set again, PPR recomputed (TPR while nothing
 * is in service) and the timer's current count cleared (0 with no timer running).
 */
export function restoreLapic(regs: Uint8Array, page: Uint8Array): void {
  regs.set(page);
  const view = new DataView(regs.buffer, regs.byteOffset, regs.byteLength);
  view.setUint32(APIC_LVR, APIC_VERSION, true);
  view.setUint32(APIC_PROCPRI, view.getUint32(APIC_TASKPRI, true) & 0xff, true);
  view.setUint32(APIC_TMCCT, 0, true);
}
