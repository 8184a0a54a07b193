/**
 * A deliberately tiny AArch64 interpreter: enough for a case to drive a guest with the same instruction
 * words it would write for real arm64 KVM. It knows MOVZ/MOVK (W and X), LDR/STR with an unsigned
 * immediate offset (W and X), HVC and SMC. Everything else stops the run with an error exit, where real
 * hardware would raise an exception inside the guest — the suite never relies on that.
 */
import { bytesToUint, uintToBytes } from '../../../harness/abi/codec.ts';

export interface GuestCpu {
  x(n: number): bigint;
  setX(n: number, value: bigint): void;
  /** The stack pointer of the current exception level (base register 31 of a load or store). */
  sp(): bigint;
  pc: bigint;
}

export interface GuestMemory {
  /** Host view of guest-physical memory, or undefined where no memslot backs it. */
  view(gpa: bigint, len: number): Uint8Array | undefined;
}

/** A data access outside every memslot: the exit KVM_EXIT_MMIO reports; PC still points at the access. */
export interface MmioAccess {
  addr: bigint;
  len: number;
  isWrite: boolean;
  /** The stored value (writes). */
  data: bigint;
  /** The register a load fills when user space completes it. */
  rt: number;
}

export type GuestStop =
  /** An HVC, or an SMC that KVM traps (HCR_EL2.TSC), with its 16-bit immediate. */
  | { kind: 'call'; conduit: 'hvc' | 'smc'; imm: number }
  | { kind: 'mmio'; access: MmioAccess }
  | { kind: 'error'; reason: string }
  | { kind: 'budget' };

const XZR = 31;
const MASK64 = (1n << 64n) - 1n;

function setReg(cpu: GuestCpu, rd: number, value: bigint): void {
  if (rd !== XZR) cpu.setX(rd, value & MASK64);
}

/** MOVZ / MOVK, 32- and 64-bit; a W destination clears the upper half of the X register. */
function moveWide(cpu: GuestCpu, insn: number): boolean {
  const sf = insn >>> 31;
  const opc = (insn >>> 29) & 3;
  const hw = (insn >>> 21) & 3;
  const imm = BigInt((insn >>> 5) & 0xffff);
  const rd = insn & 31;
  if ((opc !== 2 && opc !== 3) || (sf === 0 && hw > 1)) return false;
  const shift = BigInt(16 * hw);
  const width = sf ? 64n : 32n;
  const old = rd === XZR ? 0n : cpu.x(rd);
  const kept = opc === 3 ? old & ~(0xffffn << shift) : 0n;
  setReg(cpu, rd, (kept | (imm << shift)) & ((1n << width) - 1n));
  return true;
}

/** LDR / STR (unsigned offset) of a W or X register; returns the MMIO access when no memslot backs it. */
function loadStore(cpu: GuestCpu, mem: GuestMemory, insn: number): MmioAccess | 'done' | undefined {
  const size = insn >>> 30 === 3 ? 8 : 4;
  const isLoad = ((insn >>> 22) & 1) === 1;
  const rn = (insn >>> 5) & 31;
  const rt = insn & 31;
  const base = rn === 31 ? cpu.sp() : cpu.x(rn);
  const addr = (base + BigInt(((insn >>> 10) & 0xfff) * size)) & MASK64;
  const data = rt === XZR ? 0n : cpu.x(rt) & ((1n << BigInt(size * 8)) - 1n);
  const bytes = mem.view(addr, size);
  if (!bytes) return { addr, len: size, isWrite: !isLoad, data: isLoad ? 0n : data, rt };
  if (isLoad) setReg(cpu, rt, bytesToUint(bytes, 'little'));
  else bytes.set(uintToBytes(data, size, 'little'));
  return 'done';
}

const LDST_UNSIGNED_MASK = 0xbf80_0000;
const LDST_UNSIGNED = 0xb900_0000; // STR/LDR W and X, unsigned immediate (bit 30 picks X, bit 22 picks LDR)
const MOVE_WIDE_MASK = 0x1f80_0000;
const MOVE_WIDE = 0x1280_0000;
const CALL_MASK = 0xffe0_001f;
const HVC = 0xd400_0002;
const SMC = 0xd400_0003;

/**
 * Runs from PC until the guest needs the hypervisor or user space, or `budget` instructions have run.
 * HVC and SMC leave PC after the instruction (an HVC's return address is there, and KVM steps past a
 * trapped SMC before it handles it); an MMIO access leaves it on the access, which completes on the next
 * KVM_RUN.
 */
export function execute(cpu: GuestCpu, mem: GuestMemory, budget: number): { stop: GuestStop; steps: number } {
  for (let steps = 0; steps < budget; steps++) {
    const fetched = mem.view(cpu.pc, 4);
    if (!fetched) return { stop: { kind: 'error', reason: 'instruction fetch outside RAM' }, steps };
    const insn = Number(bytesToUint(fetched, 'little'));
    const call = (insn & CALL_MASK) >>> 0;
    if (call === HVC || call === SMC) {
      cpu.pc += 4n;
      const conduit = call === HVC ? 'hvc' : 'smc';
      return { stop: { kind: 'call', conduit, imm: (insn >>> 5) & 0xffff }, steps: steps + 1 };
    }
    if ((insn & MOVE_WIDE_MASK) >>> 0 === MOVE_WIDE && moveWide(cpu, insn)) {
      cpu.pc += 4n;
      continue;
    }
    if ((insn & LDST_UNSIGNED_MASK) >>> 0 === LDST_UNSIGNED) {
      const access = loadStore(cpu, mem, insn);
      if (access === 'done') {
        cpu.pc += 4n;
        continue;
      }
      if (access) return { stop: { kind: 'mmio', access }, steps: steps + 1 };
    }
    return {
      stop: { kind: 'error', reason: `instruction 0x${insn.toString(16).padStart(8, '0')} is not modelled` },
      steps,
    };
  }
  return { stop: { kind: 'budget' }, steps: budget };
}
