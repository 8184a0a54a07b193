#!/usr/bin/env python3
"""A kvmspec backend in plain Python: a tiny model of x86_64 KVM's ONE_REG family, served over the
kvmspec stdio protocol (docs/protocol.md). It shows the shape of the work for implementers:

  * the protocol loop   -- read a JSON line, do the op, write one JSON line back (bottom of the file);
  * user memory         -- buffers at made-up addresses, so pointers can be NULL, invalid or read-only;
  * the files           -- /dev/kvm, a VM, a vCPU, each answering the ioctls it knows.

It mirrors the model host of kvmspec's reference (reference/arch/x86_64): the same MSR catalog and the
same checks in the same order, as upstream Linux 6.18 makes them (arch/x86/kvm/x86.c,
virt/kvm/kvm_main.c). Standard library only. Logs go to stderr; stdout carries protocol lines only.
"""

import base64
import json
import struct
import sys

# --- errors -----------------------------------------------------------------------------------------


class Errno(Exception):
    """A failed call: becomes ret -1 and the errno name in the ioctl's response."""

    def __init__(self, name):
        super().__init__(name)
        self.name = name


class NotModelled(Exception):
    """Kernel behaviour this example leaves out: the harness skips the case, with this as the reason."""


# --- ioctl numbers (asm-generic _IOC encoding, as on x86_64) -----------------------------------------


def _ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (0xAE << 8) | nr


NONE, WRITE, READ = 0, 1, 2
KVM_GET_API_VERSION = _ioc(NONE, 0x00, 0)
KVM_CREATE_VM = _ioc(NONE, 0x01, 0)
KVM_GET_MSR_INDEX_LIST = _ioc(READ | WRITE, 0x02, 4)  # struct kvm_msr_list
KVM_CHECK_EXTENSION = _ioc(NONE, 0x03, 0)
KVM_GET_VCPU_MMAP_SIZE = _ioc(NONE, 0x04, 0)
KVM_CREATE_VCPU = _ioc(NONE, 0x41, 0)
KVM_CREATE_IRQCHIP = _ioc(NONE, 0x60, 0)
KVM_GET_IRQCHIP = _ioc(READ | WRITE, 0x62, 520)  # struct kvm_irqchip
KVM_SET_IRQCHIP = _ioc(READ, 0x63, 520)  # _IOR although the struct only goes in, as upstream numbers it
KVM_IRQ_LINE = _ioc(WRITE, 0x61, 8)  # struct kvm_irq_level
KVM_IRQ_LINE_STATUS = _ioc(READ | WRITE, 0x67, 8)
KVM_RUN = _ioc(NONE, 0x80, 0)
KVM_SET_USER_MEMORY_REGION = _ioc(WRITE, 0x46, 32)  # struct kvm_userspace_memory_region
KVM_SET_CPUID2 = _ioc(WRITE, 0x90, 8)  # struct kvm_cpuid2
KVM_GET_MSRS = _ioc(READ | WRITE, 0x88, 8)  # struct kvm_msrs and its entries
KVM_SET_MSRS = _ioc(WRITE, 0x89, 8)
KVM_GET_VCPU_EVENTS = _ioc(READ, 0x9F, 64)  # struct kvm_vcpu_events
KVM_SET_VCPU_EVENTS = _ioc(WRITE, 0xA0, 64)
KVM_GET_DEBUGREGS = _ioc(READ, 0xA1, 128)  # struct kvm_debugregs
KVM_SET_DEBUGREGS = _ioc(WRITE, 0xA2, 128)
KVM_GET_XCRS = _ioc(READ, 0xA6, 392)  # struct kvm_xcrs
KVM_SET_XCRS = _ioc(WRITE, 0xA7, 392)
KVM_GET_REGS = _ioc(READ, 0x81, 144)  # struct kvm_regs
KVM_SET_REGS = _ioc(WRITE, 0x82, 144)
KVM_GET_SREGS = _ioc(READ, 0x83, 312)  # struct kvm_sregs
KVM_SET_SREGS = _ioc(WRITE, 0x84, 312)
KVM_GET_MP_STATE = _ioc(READ, 0x98, 4)  # struct kvm_mp_state
KVM_SET_MP_STATE = _ioc(WRITE, 0x99, 4)
KVM_GET_LAPIC = _ioc(READ, 0x8E, 1024)  # struct kvm_lapic_state
KVM_SET_LAPIC = _ioc(WRITE, 0x8F, 1024)
KVM_ENABLE_CAP = _ioc(WRITE, 0xA3, 104)  # struct kvm_enable_cap
KVM_GET_ONE_REG = _ioc(WRITE, 0xAB, 16)  # struct kvm_one_reg
KVM_SET_ONE_REG = _ioc(WRITE, 0xAC, 16)
KVM_GET_REG_LIST = _ioc(READ | WRITE, 0xB0, 8)  # struct kvm_reg_list
KVM_SET_DEVICE_ATTR = _ioc(WRITE, 0xE1, 24)  # struct kvm_device_attr
KVM_GET_DEVICE_ATTR = _ioc(WRITE, 0xE2, 24)
KVM_HAS_DEVICE_ATTR = _ioc(WRITE, 0xE3, 24)
VCPU_TSC_CTRL, VCPU_TSC_OFFSET = 0, 0  # the only vCPU attribute group and attribute x86 has

API_VERSION = 12
VCPU_MMAP_SIZE = 3 * 4096
RUN_IMMEDIATE_EXIT = 1  # offset of kvm_run.immediate_exit
MAX_VCPU_ID = 4096
MAX_MEMSLOTS = 32764
MAX_CPUID_ENTRIES = 256
# KVM_CAP_IRQCHIP, KVM_CAP_USER_MEMORY, KVM_CAP_MP_STATE, KVM_CAP_IRQ_INJECT_STATUS, KVM_CAP_DEBUGREGS,
# KVM_CAP_XCRS, KVM_CAP_ONE_REG, KVM_CAP_MAX_VCPU_ID; others are 0
CAPABILITIES = {0: 1, 3: 1, 14: 1, 26: 1, 50: 1, 56: 1, 70: 1, 128: MAX_VCPU_ID}
MP_RUNNABLE, MP_UNINITIALIZED, MP_INIT_RECEIVED, MP_HALTED, MP_SIPI_RECEIVED = 0, 1, 2, 3, 4
MP_AP_RESET_HOLD = 9
IRQCHIP_SIZE, IRQCHIP_STATE = 520, 8  # struct kvm_irqchip, and where the chip's state starts in it
# struct kvm_pic_state bytes, struct kvm_ioapic_state offsets, redirection entry bits
PIC_LAST_IRR, PIC_IRR, PIC_IMR, PIC_ISR, PIC_PRIORITY_ADD, PIC_ELCR = 0, 1, 2, 3, 4, 14
IOAPIC_IRR, IOAPIC_REDIRTBL, IOAPIC_PINS = 16, 24, 24
REDIR_REMOTE_IRR, REDIR_LEVEL, REDIR_MASKED = 1 << 14, 1 << 15, 1 << 16
# Local APIC registers (xAPIC offsets into the 1024-byte page) and their values after reset
APIC_ID, APIC_LVR, APIC_TASKPRI, APIC_PROCPRI, APIC_DFR, APIC_SPIV, APIC_LVT0, APIC_TMCCT = (
    0x20, 0x30, 0x80, 0xA0, 0xE0, 0xF0, 0x350, 0x390)
APIC_LVTS = (0x320, 0x330, 0x340, 0x350, 0x360, 0x370)  # timer, thermal, perf, LINT0, LINT1, error
APIC_VERSION = 0x14 | (len(APIC_LVTS) - 1) << 16
# The states only a vCPU with an in-kernel local APIC takes
MP_APIC_STATES = {MP_UNINITIALIZED, MP_INIT_RECEIVED, MP_HALTED, MP_SIPI_RECEIVED, MP_AP_RESET_HOLD}
PAGE = 4096
U64 = (1 << 64) - 1

# --- user memory: what copy_from_user / copy_to_user see --------------------------------------------

INVALID_ADDRESS = 0xDEAD_0000_0000  # never mapped


class UserMemory:
    """Buffers live at made-up addresses, each followed by an unmapped guard page."""

    def __init__(self):
        self.maps = []  # (base, bytearray, readonly)
        self.next = 0x7F00_0000_0000

    def map(self, data, alignment=PAGE, readonly=False):
        align = max(alignment, PAGE)
        base = (self.next + align - 1) & ~(align - 1)
        self.next = base + -(-max(len(data), 1) // PAGE) * PAGE + PAGE
        self.maps.append((base, data, readonly))
        return base

    def unmap(self, base):
        self.maps = [m for m in self.maps if m[0] != base]

    def _find(self, addr, length):
        for base, data, readonly in self.maps:
            if base <= addr and addr + length <= base + len(data):
                return base, data, readonly
        return None

    def copy_from_user(self, addr, length):
        if length == 0:
            return b""
        found = self._find(addr, length)
        if not found:
            raise Errno("EFAULT")
        base, data, _ = found
        return bytes(data[addr - base : addr - base + length])

    def copy_to_user(self, addr, payload):
        if not payload:
            return
        found = self._find(addr, len(payload))
        if not found or found[2]:
            raise Errno("EFAULT")
        base, data, _ = found
        data[addr - base : addr - base + len(payload)] = payload

    def is_mapped(self, addr, length):
        return self._find(addr, length) is not None


def read_u64(mem, addr):
    return struct.unpack("<Q", mem.copy_from_user(addr, 8))[0]


# --- the MSRs of the model host (reference/arch/x86_64/msrs.ts) --------------------------------------


def made_canonical(value):
    """Sign-extended from bit 47: the model host has 48-bit virtual addresses."""
    low = value & ((1 << 48) - 1)
    return low | (U64 ^ ((1 << 48) - 1)) if value & (1 << 47) else low


def canonical(value, _current):
    return value if made_canonical(value) == value else None


def valid_pat(value, _current):
    ok = all(((value >> (8 * i)) & 0xFF) in (0, 1, 4, 5, 6, 7) for i in range(8))
    return value if ok else None


EFER_VALID = 0x1 | 0x100 | 0x400 | 0x800  # SCE, LME, LMA, NXE
EFER_LMA = 0x400


def efer(value, current):
    """A host-initiated write cannot change LMA: the vCPU's own is kept."""
    return (value & ~EFER_LMA) | (current & EFER_LMA) if value & ~EFER_VALID == 0 else None


def any_value(value, _current):
    return value


def canonicalized(value, _current):
    return made_canonical(value)


# index: (name, value at reset, what a host-initiated write stores, None when it is refused)
MSRS = {
    0x10: ("IA32_TSC", 0, any_value),
    0x3B: ("IA32_TSC_ADJUST", 0, any_value),
    0x174: ("IA32_SYSENTER_CS", 0, any_value),
    0x175: ("IA32_SYSENTER_ESP", 0, canonicalized),
    0x176: ("IA32_SYSENTER_EIP", 0, canonicalized),
    0x277: ("IA32_PAT", 0x0007_0406_0007_0406, valid_pat),
    0xC0000080: ("EFER", 0, efer),
    0xC0000081: ("STAR", 0, any_value),
    0xC0000082: ("LSTAR", 0, canonical),
    0xC0000083: ("CSTAR", 0, canonical),
    0xC0000084: ("SYSCALL_MASK", 0, any_value),
    0xC0000100: ("FS_BASE", 0, canonical),
    0xC0000101: ("GS_BASE", 0, canonical),
    0xC0000102: ("KERNEL_GS_BASE", 0, canonical),
    0x4B564D00: ("KVM_WALL_CLOCK_NEW", 0, any_value),
    0x4B564D01: ("KVM_SYSTEM_TIME_NEW", 0, any_value),
}

# ONE_REG ids on x86 (arch/x86/include/uapi/asm/kvm.h, 6.18): arch byte, size, type << 32, index.
REG_X86 = 0x2000_0000_0000_0000
REG_ARCH_MASK = 0xFF00_0000_0000_0000
REG_SIZE_MASK = 0x00F0_0000_0000_0000
REG_SIZE_U64 = 0x0030_0000_0000_0000
RESERVED_BITS = 0x000F_FF00_0000_0000  # bits 40..51
TYPE_MSR, TYPE_KVM = 2, 3
KVM_REG_GUEST_SSP = 0
GUEST_SSP_ID = REG_X86 | REG_SIZE_U64 | (TYPE_KVM << 32) | KVM_REG_GUEST_SSP

# --- the files --------------------------------------------------------------------------------------


class Kernel:
    def __init__(self):
        self.mem = UserMemory()
        self.files = {}
        self.next_fd = 3

    def install(self, file):
        fd = self.next_fd
        self.next_fd += 1
        self.files[fd] = file
        return fd

    def file(self, fd):
        if fd not in self.files:
            raise Errno("EBADF")
        return self.files[fd]


class System:
    unknown = "EINVAL"

    def __init__(self, kernel):
        self.kernel = kernel

    def ioctl(self, request, arg):
        if request == KVM_GET_API_VERSION:
            return API_VERSION if arg == 0 else fail("EINVAL")
        if request == KVM_CHECK_EXTENSION:
            return CAPABILITIES.get(arg, 0)
        if request == KVM_CREATE_VM:
            return self.kernel.install(Vm(self.kernel)) if arg == 0 else fail("EINVAL")
        if request == KVM_GET_VCPU_MMAP_SIZE:
            return VCPU_MMAP_SIZE if arg == 0 else fail("EINVAL")
        if request == KVM_GET_MSR_INDEX_LIST:
            return self.msr_index_list(arg)
        fail(self.unknown)

    def msr_index_list(self, arg):
        """nmsrs in; the needed count always written back; E2BIG when too small; then the indices."""
        mem = self.kernel.mem
        (nmsrs,) = struct.unpack("<I", mem.copy_from_user(arg, 4))
        mem.copy_to_user(arg, struct.pack("<I", len(MSRS)))
        if nmsrs < len(MSRS):
            fail("E2BIG")
        mem.copy_to_user(arg + 4, struct.pack(f"<{len(MSRS)}I", *MSRS))
        return 0


class Irqchip:
    """The PICs and the IOAPIC of a VM, and GSIs driven through the default routing (0-15: a PIC input and
    the IOAPIC pin of that number; 16-23: the IOAPIC). An unmasked IOAPIC pin delivers to nobody, which is
    all this example models: with vCPUs present the case is skipped (NotModelled)."""

    def __init__(self, has_vcpus):
        self.has_vcpus = has_vcpus
        # PICs are zero until the guest initialises them, but for their ELCR masks; the IOAPIC sits at its
        # default base with every pin masked.
        ioapic = struct.pack("<QIIII", 0xFEC0_0000, 0, 0, 0, 0) + struct.pack("<Q", REDIR_MASKED) * IOAPIC_PINS
        self.chips = [bytearray(15) + b"\xf8", bytearray(15) + b"\xde", bytearray(ioapic)]
        self.handed_on = 0  # edge requests delivered (to nobody): still in irr, hidden from GET

    def state(self, chip_id):
        out = bytearray(self.chips[chip_id])
        if chip_id == 2:
            struct.pack_into("<I", out, IOAPIC_IRR, self.irr & ~self.handed_on)
        return out

    def restore(self, chip_id, data):
        chip = self.chips[chip_id]
        chip[:] = data[: len(chip)]
        if chip_id == 2:  # requests are raised again, pin by pin
            requests, self.irr, self.handed_on = self.irr, 0, 0
            for pin in range(IOAPIC_PINS):
                if requests >> pin & 1:
                    self.ioapic_input(pin, True)
        self.signal_slave()

    def drive_gsi(self, gsi, high):
        """-1 if no chip took the request, else the sum of the answers that are not negative."""
        if gsi >= IOAPIC_PINS:
            return -1
        answers = [self.ioapic_input(gsi, high)]
        if gsi < 16:
            answers.append(self.pic_input(self.chips[gsi >> 3], gsi & 7, high))
            self.signal_slave()
        taken = [a for a in answers if a >= 0]
        return sum(taken) if taken else -1

    @staticmethod
    def pic_input(pic, n, high):
        bit, answer = 1 << n, 1
        if pic[PIC_ELCR] & bit:  # level-triggered: follows the line
            if high:
                answer = 0 if pic[PIC_IRR] & bit else 1
                pic[PIC_IRR] |= bit
                pic[PIC_LAST_IRR] |= bit
            else:
                pic[PIC_IRR] &= ~bit
                pic[PIC_LAST_IRR] &= ~bit
        elif high:  # edge-triggered: a request on a rising edge
            if not pic[PIC_LAST_IRR] & bit:
                answer = 0 if pic[PIC_IRR] & bit else 1
                pic[PIC_IRR] |= bit
            pic[PIC_LAST_IRR] |= bit
        else:
            pic[PIC_LAST_IRR] &= ~bit
        return -1 if pic[PIC_IMR] & bit else answer

    @staticmethod
    def priority(pic, mask):
        """0 for the highest priority among mask's bits, counted from the rotation; 8 for none."""
        for p in range(8):
            if mask >> ((p + pic[PIC_PRIORITY_ADD]) & 7) & 1:
                return p
        return 8

    def signal_slave(self):
        """A slave with a request above everything in service pulses the master's input 2."""
        slave = self.chips[1]
        if self.priority(slave, slave[PIC_IRR] & ~slave[PIC_IMR]) < self.priority(slave, slave[PIC_ISR]):
            self.pic_input(self.chips[0], 2, True)
            self.pic_input(self.chips[0], 2, False)

    def ioapic_input(self, pin, high):
        bit = 1 << pin
        if not high:
            self.irr &= ~bit
            return 1
        before, entry = self.irr, self.entry(pin)
        self.irr |= bit
        if not entry & REDIR_LEVEL:
            self.handed_on &= ~bit
            if before == self.irr:
                return 0  # coalesced with the request already there
        if entry & REDIR_MASKED or (entry & REDIR_LEVEL and entry & REDIR_REMOTE_IRR):
            return -1
        if self.has_vcpus():
            raise NotModelled("delivery of IOAPIC requests to local APICs")
        if entry & REDIR_LEVEL:  # awaits an EOI that never comes
            struct.pack_into("<Q", self.chips[2], IOAPIC_REDIRTBL + 8 * pin, entry | REDIR_REMOTE_IRR)
        else:
            self.handed_on |= bit
        return -1

    def entry(self, pin):
        return struct.unpack_from("<Q", self.chips[2], IOAPIC_REDIRTBL + 8 * pin)[0]

    @property
    def irr(self):
        return struct.unpack_from("<I", self.chips[2], IOAPIC_IRR)[0]

    @irr.setter
    def irr(self, value):
        struct.pack_into("<I", self.chips[2], IOAPIC_IRR, value & 0xFFFF_FFFF)


class Vm:
    def __init__(self, kernel):
        self.kernel = kernel
        self.vcpu_ids = set()
        self.memslots = {}  # slot -> (gpa, size, hva, flags)
        self.chips = None  # after KVM_CREATE_IRQCHIP: PIC master, PIC slave and IOAPIC states, by chip_id

    def ioctl(self, request, arg):
        if request == KVM_CHECK_EXTENSION:
            return CAPABILITIES.get(arg, 0)
        if request == KVM_CREATE_VCPU:
            if arg < 0 or arg >= MAX_VCPU_ID:
                fail("EINVAL")
            if arg in self.vcpu_ids:
                fail("EEXIST")
            self.vcpu_ids.add(arg)
            return self.kernel.install(Vcpu(self.kernel, arg, lapic=self.chips is not None))
        if request == KVM_CREATE_IRQCHIP:
            # The argument is ignored; an existing irqchip is checked before the vCPUs.
            if self.chips is not None:
                fail("EEXIST")
            if self.vcpu_ids:
                fail("EINVAL")
            self.chips = Irqchip(lambda: bool(self.vcpu_ids))
            return 0
        if request in (KVM_GET_IRQCHIP, KVM_SET_IRQCHIP):
            return self.irqchip_state(request == KVM_SET_IRQCHIP, arg)
        if request in (KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS):
            # The struct is read before the irqchip is looked for; the status goes back over the GSI only
            # with _STATUS, after the line was driven (a read-only struct: EFAULT, the request standing).
            data = bytearray(self.kernel.mem.copy_from_user(arg, 8))
            if self.chips is None:
                fail("ENXIO")
            gsi, level = struct.unpack("<II", data)
            status = self.chips.drive_gsi(gsi, level != 0)
            if request == KVM_IRQ_LINE_STATUS:
                struct.pack_into("<i", data, 0, status)
                self.kernel.mem.copy_to_user(arg, bytes(data))
            return 0
        if request == KVM_SET_USER_MEMORY_REGION:
            return self.set_memory_region(arg)
        if request == KVM_ENABLE_CAP:
            # The struct is copied in first (EFAULT); this example enables no capability, and x86 refuses
            # non-zero flags with the same EINVAL.
            self.kernel.mem.copy_from_user(arg, 104)
            fail("EINVAL")
        fail("ENOTTY")

    def irqchip_state(self, is_set, arg):
        """The struct is copied in whole first; GET copies it all back with the chip's state in place."""
        data = bytearray(self.kernel.mem.copy_from_user(arg, IRQCHIP_SIZE))
        if self.chips is None:
            fail("ENXIO")
        (chip_id,) = struct.unpack_from("<I", data)
        if chip_id > 2:
            fail("EINVAL")
        if is_set:
            self.chips.restore(chip_id, data[IRQCHIP_STATE:])
        else:
            state = self.chips.state(chip_id)
            data[IRQCHIP_STATE : IRQCHIP_STATE + len(state)] = state
            self.kernel.mem.copy_to_user(arg, bytes(data))
        return 0

    def set_memory_region(self, arg):
        """virt/kvm/kvm_main.c's checks, in its order; the user range is never checked to be mapped."""
        slot, flags, gpa, size, hva = struct.unpack("<IIQQQ", self.kernel.mem.copy_from_user(arg, 32))
        if flags & ~0x3:
            fail("EINVAL")
        if (slot & 0xFFFF) >= MAX_MEMSLOTS:
            fail("EINVAL")
        if size % PAGE or gpa % PAGE or hva % PAGE:
            fail("EINVAL")
        if gpa + size > U64:
            fail("EINVAL")
        old = self.memslots.get(slot)
        if size == 0:
            if old is None:
                fail("EINVAL")
            del self.memslots[slot]
            return 0
        if old is not None:
            old_gpa, old_size, old_hva, old_flags = old
            if hva != old_hva or size != old_size or (flags ^ old_flags) & 0x2:
                fail("EINVAL")
            if gpa == old_gpa and flags == old_flags:
                return 0
        if old is None or gpa != old[0]:
            for other, (ogpa, osize, _, _) in self.memslots.items():
                if other != slot and gpa < ogpa + osize and ogpa < gpa + size:
                    fail("EEXIST")
        self.memslots[slot] = (gpa, size, hva, flags)
        return 0


# struct kvm_sregs: eight kvm_segment (u64 base, u32 limit, u16 selector, 9 attribute bytes, padding), GDTR and
# IDTR (u64 base, u16 limit, padding), CR0, CR2, CR3, CR4, CR8, EFER, APIC base, and a 256-bit interrupt bitmap.
SEGMENT = struct.Struct("<QIH9Bx")
DTABLE = struct.Struct("<QH6x")
SREGS_TAIL = struct.Struct("<7Q4Q")
SREGS_SIZE = 8 * SEGMENT.size + 2 * DTABLE.size + SREGS_TAIL.size
CR0_PE, CR0_NW, CR0_CD, CR0_PG = 1, 1 << 29, 1 << 30, 1 << 31
CR4_PAE = 1 << 5
CR4_ALLOWED = 0x7FF | 1 << 11 | 1 << 16 | 1 << 18 | 1 << 20 | 1 << 21 | 1 << 22  # as on the project's x86 host
EFER_INDEX, EFER_LME, EFER_LMA = 0xC0000080, 1 << 8, 1 << 10
APIC_BASE_EXTD, APIC_BASE_ENABLE = 1 << 10, 1 << 11


# struct kvm_vcpu_events: exception (injected, nr, has_error_code, pending, error_code), interrupt (injected, nr,
# soft, shadow), nmi (injected, pending, masked, pad), sipi_vector, flags, smi (4 bytes), triple_fault, reserved,
# exception_has_payload, exception_payload. Flags: NMI_PENDING, SIPI_VECTOR, SHADOW, SMM, PAYLOAD, TRIPLE_FAULT.
EVENTS = struct.Struct("<4BI4B4BII4BB26xBQ")
EV_NMI_PENDING, EV_SIPI_VECTOR, EV_SHADOW, EV_SMM, EV_PAYLOAD, EV_TRIPLE_FAULT = (1 << i for i in range(6))


class Vcpu:
    def __init__(self, kernel, vcpu_id, lapic):
        self.kernel = kernel
        # With a local APIC, an AP waits for INIT and SIPI; the boot processor (vCPU 0) runs.
        self.mp_state = MP_UNINITIALIZED if lapic and vcpu_id != 0 else MP_RUNNABLE
        self.sipi_pending = False
        self.apic = self.reset_apic(vcpu_id) if lapic else None
        self.run = bytearray(VCPU_MMAP_SIZE)
        self.msrs = {index: reset for index, (_, reset, _) in MSRS.items()}
        self.guest_ssp = 0
        self.guest_has_shstk = False
        self.tsc_offset = 0
        self.guest_x2apic = False
        self.guest_phys_bits = 36  # without guest CPUID leaf 0x80000008
        # Segments as (base, limit, selector, type, present, dpl, db, s, l, g, avl, unusable), as VMX resets them.
        data = (0, 0xFFFF, 0, 3, 1, 0, 0, 1, 0, 0, 0, 0)
        self.segments = [(0xFFFF_0000, 0xFFFF, 0xF000, 0xB, 1, 0, 0, 1, 0, 0, 0, 0)] + [data] * 5
        self.segments += [(0, 0xFFFF, 0, 0xB, 1, 0, 0, 0, 0, 0, 0, 0), (0, 0xFFFF, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0)]
        self.dtables = [(0, 0xFFFF), (0, 0xFFFF)]
        self.crs = {"cr0": CR0_CD | CR0_NW | 0x10, "cr2": 0, "cr3": 0, "cr4": 0, "cr8": 0}
        self.apic_base = 0xFEE0_0000 | APIC_BASE_ENABLE | (1 << 8 if vcpu_id == 0 else 0)
        # The external interrupt being delivered, which SREGS' interrupt_bitmap and the vCPU events share.
        self.interrupt = {"injected": False, "nr": 0, "soft": False}
        self.exception = (0, 0, 0, 0, 0)  # injected, nr, has_error_code, error_code, payload
        self.shadow = 0
        self.nmi = {"injected": 0, "masked": 0, "pending": 0, "queued": 0}
        self.sipi_vector = 0
        self.has_lapic = lapic
        # RAX..R15, RIP, RFLAGS: RDX holds the processor signature (0x600 without CPUID), RIP the reset offset.
        self.regs = [0, 0, 0, 0x600] + [0] * 12 + [0xFFF0, 0x2]
        self.debug_regs = [0, 0, 0, 0, 0xFFFF_0FF0, 0x400]  # DR0-DR3, DR6, DR7
        self.xcr0 = 1  # x87 state
        self.guest_xcr0 = 0  # what the guest CPUID's leaf 0xD offers

    def ioctl(self, request, arg):
        if request in (KVM_GET_ONE_REG, KVM_SET_ONE_REG):
            return self.one_reg(request == KVM_SET_ONE_REG, arg)
        if request == KVM_GET_REG_LIST:
            # Only KVM-defined registers are listed, never MSRs; GUEST_SSP exists iff the guest has SHSTK.
            return self.reg_list(arg, [GUEST_SSP_ID] if self.guest_has_shstk else [])
        if request == KVM_SET_CPUID2:
            return self.set_cpuid(arg)
        if request in (KVM_GET_LAPIC, KVM_SET_LAPIC):
            return self.lapic_state(request == KVM_SET_LAPIC, arg)
        if request in (KVM_GET_MSRS, KVM_SET_MSRS):
            return self.msr_io(request == KVM_SET_MSRS, arg)
        if request == KVM_GET_VCPU_EVENTS:
            return self.get_events(arg)
        if request == KVM_SET_VCPU_EVENTS:
            return self.set_events(arg)
        if request == KVM_GET_DEBUGREGS:
            self.kernel.mem.copy_to_user(arg, struct.pack("<6Q", *self.debug_regs) + bytes(80))
            return 0
        if request == KVM_SET_DEBUGREGS:
            *values, flags = struct.unpack("<7Q", self.kernel.mem.copy_from_user(arg, 56))
            if flags or values[4] >> 32 or values[5] >> 32:  # flags must be 0; DR6 and DR7 are 32-bit
                fail("EINVAL")
            self.debug_regs = values
            return 0
        if request == KVM_GET_XCRS:
            self.kernel.mem.copy_to_user(arg, struct.pack("<IIIIQ", 1, 0, 0, 0, self.xcr0) + bytes(392 - 24))
            return 0
        if request == KVM_SET_XCRS:
            return self.set_xcrs(arg)
        if request == KVM_GET_REGS:
            self.kernel.mem.copy_to_user(arg, struct.pack("<18Q", *self.regs))
            return 0
        if request == KVM_SET_REGS:
            self.regs = list(struct.unpack("<18Q", self.kernel.mem.copy_from_user(arg, 144)))
            self.regs[17] |= 0x2  # RFLAGS bit 1 is fixed
            return 0
        if request == KVM_GET_SREGS:
            return self.get_sregs(arg)
        if request == KVM_SET_SREGS:
            return self.set_sregs(arg)
        if request in (KVM_HAS_DEVICE_ATTR, KVM_GET_DEVICE_ATTR, KVM_SET_DEVICE_ATTR):
            return self.device_attr(request, arg)
        if request == KVM_RUN:
            # This example runs no guest: KVM_RUN answers its argument check and kvm_run.immediate_exit only.
            if arg != 0:
                fail("EINVAL")
            fail("EINTR" if self.run[RUN_IMMEDIATE_EXIT] else "EINVAL")
        if request == KVM_GET_MP_STATE:
            # A SIPI left pending by SET_MP_STATE starts a vCPU in INIT_RECEIVED, and is dropped otherwise.
            if self.sipi_pending:
                self.sipi_pending = False
                if self.mp_state == MP_INIT_RECEIVED:
                    self.mp_state = MP_RUNNABLE
                    # The SIPI's vector moves CS to vector << 8 : vector << 12, and RIP to 0.
                    _base, limit, _selector, *attributes = self.segments[0]
                    self.segments[0] = (self.sipi_vector << 12, limit, self.sipi_vector << 8, *attributes)
                    self.regs[16] = 0
            self.kernel.mem.copy_to_user(arg, struct.pack("<I", self.mp_state))
            return 0
        if request == KVM_SET_MP_STATE:
            (state,) = struct.unpack("<I", self.kernel.mem.copy_from_user(arg, 4))
            if state != MP_RUNNABLE and (state not in MP_APIC_STATES or self.apic is None):
                fail("EINVAL")
            # SIPI_RECEIVED is not kept: the vCPU waits in INIT_RECEIVED with a SIPI pending until the next GET.
            if state == MP_SIPI_RECEIVED:
                self.sipi_pending = True
                state = MP_INIT_RECEIVED
            self.mp_state = state
            return 0
        fail("EINVAL")

    @staticmethod
    def reset_apic(vcpu_id):
        page = bytearray(1024)
        set_reg = lambda offset, value: struct.pack_into("<I", page, offset, value & 0xFFFF_FFFF)
        set_reg(APIC_ID, vcpu_id << 24)  # the xAPIC ID: the low 8 bits of the vCPU id
        set_reg(APIC_LVR, APIC_VERSION)
        set_reg(APIC_DFR, 0xFFFF_FFFF)
        set_reg(APIC_SPIV, 0xFF)
        for lvt in APIC_LVTS:
            set_reg(lvt, 0x1_0000)  # masked
        if vcpu_id == 0:
            set_reg(APIC_LVT0, 0x700)  # the boot processor's LINT0 takes ExtINT
        return page

    def lapic_state(self, is_set, arg):
        """GET writes the page without reading it; SET copies it in, then sets the version again and
        recomputes PPR (TPR, with nothing in service) and the timer's current count (0, no timer runs)."""
        if self.apic is None:
            fail("EINVAL")
        if not is_set:
            self.kernel.mem.copy_to_user(arg, bytes(self.apic))
            return 0
        self.apic[:] = self.kernel.mem.copy_from_user(arg, 1024)
        (tpr,) = struct.unpack_from("<I", self.apic, APIC_TASKPRI)
        struct.pack_into("<I", self.apic, APIC_LVR, APIC_VERSION)
        struct.pack_into("<I", self.apic, APIC_PROCPRI, tpr & 0xFF)
        struct.pack_into("<I", self.apic, APIC_TMCCT, 0)
        return 0

    def get_sregs(self, arg):
        """The registers into a zeroed struct; CR8 is the local APIC's TPR[7:4] when there is one."""
        crs = dict(self.crs)
        if self.apic is not None:
            crs["cr8"] = (struct.unpack_from("<I", self.apic, APIC_TASKPRI)[0] >> 4) & 0xF
        bitmap = [0, 0, 0, 0]
        if self.interrupt["injected"] and not self.interrupt["soft"]:
            bitmap[self.interrupt["nr"] // 64] = 1 << (self.interrupt["nr"] % 64)
        data = b"".join(SEGMENT.pack(*seg) for seg in self.segments)
        data += b"".join(DTABLE.pack(*dt) for dt in self.dtables)
        cr0, cr2, cr3, cr4, cr8 = (crs[n] for n in ("cr0", "cr2", "cr3", "cr4", "cr8"))
        data += SREGS_TAIL.pack(cr0, cr2, cr3, cr4, cr8, self.msrs[EFER_INDEX], self.apic_base, *bitmap)
        self.kernel.mem.copy_to_user(arg, data)
        return 0

    def set_sregs(self, arg):
        """kvm_is_valid_sregs and the APIC base checks on the whole struct, then everything is set at once."""
        data = self.kernel.mem.copy_from_user(arg, SREGS_SIZE)
        segments = [SEGMENT.unpack_from(data, i * SEGMENT.size) for i in range(8)]
        dtables = [DTABLE.unpack_from(data, 8 * SEGMENT.size + i * DTABLE.size) for i in range(2)]
        cr0, cr2, cr3, cr4, cr8, efer, apic_base, *bitmap = SREGS_TAIL.unpack_from(data, SREGS_SIZE - SREGS_TAIL.size)
        above_width = U64 & ~((1 << self.guest_phys_bits) - 1)
        if efer & EFER_LME and cr0 & CR0_PG:
            if not cr4 & CR4_PAE or not efer & EFER_LMA or cr3 & above_width:
                fail("EINVAL")
        elif efer & EFER_LMA or segments[0][8]:  # LMA, or CS.L, outside 64-bit mode
            fail("EINVAL")
        if cr4 & ~CR4_ALLOWED or cr0 >> 32:
            fail("EINVAL")
        if (cr0 & CR0_NW and not cr0 & CR0_CD) or (cr0 & CR0_PG and not cr0 & CR0_PE):
            fail("EINVAL")
        if apic_base != self.apic_base:
            reserved = above_width | 0x2FF | (0 if self.guest_x2apic else APIC_BASE_EXTD)
            if apic_base & reserved or apic_base & (APIC_BASE_EXTD | APIC_BASE_ENABLE) == APIC_BASE_EXTD:
                fail("EINVAL")
        self.segments, self.dtables = segments, dtables
        self.crs.update(cr0=cr0, cr2=cr2, cr3=cr3, cr4=cr4)
        self.msrs[EFER_INDEX] = efer
        self.apic_base = apic_base
        if cr8 <= 0xF:  # a larger CR8 is refused by kvm_set_cr8, which KVM_SET_SREGS ignores
            if self.apic is None:
                self.crs["cr8"] = cr8
            else:
                struct.pack_into("<I", self.apic, APIC_TASKPRI, cr8 << 4)
                struct.pack_into("<I", self.apic, APIC_PROCPRI, cr8 << 4)
        vectors = [v for v in range(256) if bitmap[v // 64] >> (v % 64) & 1]
        if vectors:  # the lowest is queued; an empty bitmap leaves a queued one alone
            self.interrupt = {"injected": True, "nr": vectors[0], "soft": False}
        return 0

    def process_nmi(self):
        """Queued NMIs join the pending ones: at most 2, or 1 while masked or one is being injected."""
        limit = 1 if self.nmi["masked"] or self.nmi["injected"] else 2
        self.nmi["pending"] = min(self.nmi["pending"] + self.nmi["queued"], limit)
        self.nmi["queued"] = 0

    def get_events(self, arg):
        self.process_nmi()
        injected, nr, has_error_code, error_code, payload = self.exception
        irq = self.interrupt
        data = EVENTS.pack(injected, nr, has_error_code, 0, error_code,
                           int(irq["injected"] and not irq["soft"]), irq["nr"], 0, self.shadow,
                           self.nmi["injected"], self.nmi["pending"], self.nmi["masked"], 0,
                           0, EV_NMI_PENDING | EV_SHADOW | EV_SMM, 0, 0, 0, 0, 0, 0, payload)
        self.kernel.mem.copy_to_user(arg, data)
        return 0

    def set_events(self, arg):
        """The checks that refuse the struct first; the SMM and triple-fault parts last (no SMM here, even for a
        vCPU in INIT_RECEIVED, and the triple-fault capability is never enabled), with the rest already set."""
        (ex_inj, ex_nr, ex_hec, _ex_pending, ex_code, irq_inj, irq_nr, irq_soft, shadow, nmi_inj, nmi_pending,
         nmi_masked, _pad, sipi, flags, smm, smi_pending, smm_in_nmi, _latched, _tf, _has_payload,
         payload) = EVENTS.unpack(self.kernel.mem.copy_from_user(arg, EVENTS.size))
        if flags & ~0x3F or flags & EV_PAYLOAD:
            fail("EINVAL")
        if ex_inj and (ex_nr > 31 or ex_nr == 2):
            fail("EINVAL")
        self.process_nmi()
        self.exception = (ex_inj, ex_nr, ex_hec, ex_code, payload)
        self.interrupt = {"injected": bool(irq_inj), "nr": irq_nr, "soft": bool(irq_soft)}
        if flags & EV_SHADOW:
            self.shadow = shadow
        self.nmi["injected"] = nmi_inj
        if flags & EV_NMI_PENDING:
            self.nmi.update(pending=0, queued=nmi_pending)
        self.nmi["masked"] = nmi_masked
        if flags & EV_SIPI_VECTOR and self.has_lapic:
            self.sipi_vector = sipi
        if flags & EV_SMM and (smm or smi_pending or smm_in_nmi):
            fail("EINVAL")
        if flags & EV_TRIPLE_FAULT:
            fail("EINVAL")
        return 0

    def set_xcrs(self, arg):
        """At most 16 entries and no flags; the first XCR0 entry is applied if the guest may have it."""
        data = self.kernel.mem.copy_from_user(arg, 264)
        nr, flags = struct.unpack_from("<II", data)
        if nr > 16 or flags:
            fail("EINVAL")
        for i in range(nr):
            xcr, _reserved, value = struct.unpack_from("<IIQ", data, 8 + 16 * i)
            if xcr != 0:
                continue
            fp, sse, ymm, avx512 = 1, 2, 4, 0xE0
            if not value & fp or (value & ymm and not value & sse) or value & ~(self.guest_xcr0 | fp):
                fail("EINVAL")
            if value & avx512 and (value & avx512 != avx512 or not value & ymm):
                fail("EINVAL")  # AVX-512's three states go together, and with AVX
            self.xcr0 = value
            break
        return 0

    def device_attr(self, request, arg):
        """vCPU attributes: x86 knows only the TSC group; every other group (arm64's PV time) is ENXIO."""
        mem = self.kernel.mem
        _flags, group, attr, addr = struct.unpack("<IIQQ", mem.copy_from_user(arg, 24))
        if group != VCPU_TSC_CTRL or attr != VCPU_TSC_OFFSET:
            fail("ENXIO")
        if request == KVM_GET_DEVICE_ATTR:
            mem.copy_to_user(addr, struct.pack("<Q", self.tsc_offset))
        elif request == KVM_SET_DEVICE_ATTR:
            self.tsc_offset = read_u64(mem, addr)
        return 0

    def one_reg(self, is_set, arg):
        """kvm_get_set_one_reg: arch, reserved bits, type, size, then the host-initiated MSR access."""
        mem = self.kernel.mem
        reg_id, addr = struct.unpack("<QQ", mem.copy_from_user(arg, 16))
        if reg_id & REG_ARCH_MASK != REG_X86 or reg_id & RESERVED_BITS:
            fail("EINVAL")
        reg_type, index = (reg_id >> 32) & 0xFF, reg_id & 0xFFFF_FFFF
        is_ssp = reg_type == TYPE_KVM
        if is_ssp and (index != KVM_REG_GUEST_SSP or not self.guest_has_shstk):
            fail("EINVAL")
        if reg_type not in (TYPE_MSR, TYPE_KVM):
            fail("EINVAL")
        if reg_id & REG_SIZE_MASK != REG_SIZE_U64:
            fail("EINVAL")
        if is_set:
            value = read_u64(mem, addr)
            if is_ssp:
                if value & 3 or made_canonical(value) != value:
                    fail("EINVAL")
                self.guest_ssp = value
                return 0
            if not self.write_msr(index, value):
                fail("EINVAL")
            return 0
        value = self.guest_ssp if is_ssp else self.msrs.get(index)
        if value is None:
            fail("EINVAL")
        mem.copy_to_user(addr, struct.pack("<Q", value))
        return 0

    def write_msr(self, index, value):
        """A host-initiated MSR write: False when the MSR is unknown or the value refused."""
        stored = MSRS[index][2](value, self.msrs[index]) if index in MSRS else None
        if stored is not None:
            self.msrs[index] = stored
        return stored is not None

    def msr_io(self, is_set, arg):
        """KVM_{GET,SET}_MSRS: fewer than 256 entries, all copied in, then one access each until one fails
        (a failed read zeroes its data); GET copies every entry back. Returns how many succeeded."""
        mem = self.kernel.mem
        (nmsrs,) = struct.unpack("<I", mem.copy_from_user(arg, 4))
        if nmsrs >= 256:
            fail("E2BIG")
        entries = bytearray(mem.copy_from_user(arg + 8, nmsrs * 16))
        done = 0
        while done < nmsrs:
            index, _reserved, data = struct.unpack_from("<IIQ", entries, done * 16)
            if is_set:
                if not self.write_msr(index, data):
                    break
            else:
                value = self.msrs.get(index)
                struct.pack_into("<Q", entries, done * 16 + 8, value or 0)
                if value is None:
                    break
            done += 1
        if not is_set:
            mem.copy_to_user(arg + 8, bytes(entries))
        return done

    def reg_list(self, arg, ids):
        mem = self.kernel.mem
        n = read_u64(mem, arg)
        mem.copy_to_user(arg, struct.pack("<Q", len(ids)))
        if n < len(ids):
            fail("E2BIG")
        mem.copy_to_user(arg + 8, struct.pack(f"<{len(ids)}Q", *ids))
        return 0

    def set_cpuid(self, arg):
        mem = self.kernel.mem
        (nent,) = struct.unpack("<I", mem.copy_from_user(arg, 4))
        if nent > MAX_CPUID_ENTRIES:
            fail("E2BIG")
        data = mem.copy_from_user(arg + 8, nent * 40)
        entries = [struct.unpack_from("<IIIIIII", data, at) for at in range(0, len(data), 40)]

        def find(function, index):
            """The first entry of the leaf whose index matches or is not significant (flag 1)."""
            for fn, idx, flags, eax, _ebx, ecx, edx in entries:
                if fn == function and (not flags & 1 or idx == index):
                    return eax, ecx, edx
            return 0, 0, 0

        if (find(0x8000_0008, 0)[0] >> 8) & 0xFF not in (0, 48, 57):
            fail("EINVAL")  # the canonical checks know only 48- and 57-bit virtual addresses
        self.guest_has_shstk = bool(find(7, 0)[1] & (1 << 7))
        self.guest_x2apic = bool(find(1, 0)[1] & (1 << 21))
        # The width is leaf 0x80000008's EAX[7:0] only when leaf 0x80000000 announces that leaf.
        width = find(0x8000_0008, 0)[0] & 0xFF if find(0x8000_0000, 0)[0] >= 0x8000_0008 else 0
        self.guest_phys_bits = width or 36
        xsave = find(0xD, 0)
        self.guest_xcr0 = (xsave[2] << 32 | xsave[0]) & 0xE7  # x87, SSE, AVX and AVX-512, as the model host
        return 0

    def mmap(self, length, offset):
        if offset != 0 or length > len(self.run):
            raise RuntimeError(f"cannot map {length} bytes at {offset} of kvm_run")
        return self.run


def fail(errno):
    raise Errno(errno)


# --- the protocol -----------------------------------------------------------------------------------


class Backend:
    """The adapter contract over the model: handles are fds, buffers are user-memory mappings."""

    def __init__(self):
        self.kernel = Kernel()
        self.buffers = {}  # id the harness chose -> (address, bytearray)

    def hold(self, buffer_id, data, alignment=PAGE, readonly=False):
        """Maps `data` as user memory under the id the harness chose for it, which must be free."""
        if buffer_id in self.buffers:
            raise RuntimeError(f"buffer {buffer_id} is already in use")
        self.buffers[buffer_id] = (self.kernel.mem.map(data, alignment, readonly), data)

    def buffer(self, buffer_id):
        if buffer_id not in self.buffers:
            raise RuntimeError(f"no buffer {buffer_id}")
        return self.buffers[buffer_id]

    def address(self, target):
        if target["kind"] == "null":
            return 0
        if target["kind"] == "invalid":
            return INVALID_ADDRESS
        return self.buffer(target["buffer"])[0] + target["offset"]

    def span(self, target):
        data = self.buffer(target["buffer"])[1]
        return b64(data[target["offset"] : target["offset"] + target["length"]])

    def call(self, fd, request, arg):
        try:
            return {"ret": self.kernel.file(fd).ioctl(request, arg), "errno": None}
        except Errno as e:
            return {"ret": -1, "errno": e.name}

    def op_open(self, msg):
        if msg["path"] != "/dev/kvm":
            return {"errno": "ENOENT"}
        return {"handle": self.kernel.install(System(self.kernel))}

    def op_ioctl(self, msg):
        fd, request, arg = msg["handle"], u64(msg["request"]), msg["arg"]
        if "int" in arg:
            return {**self.call(fd, request, signed(arg["int"])), "spans": []}
        if "pointer" in arg:
            target = arg["pointer"]
            result = self.call(fd, request, self.address(target))
            return {**result, "spans": [self.span(target)] if target["kind"] == "buffer" else []}
        # A struct: place the image in user memory, patch its pointer fields, call, restore them.
        image = bytearray(base64.b64decode(arg["struct"]["image"]))
        pointers = arg["struct"]["pointers"]
        patched = []
        for p in pointers:
            address = self.address(p["target"])
            patched.append((p["offset"], bytes(image[p["offset"] : p["offset"] + 8]), address))
            struct.pack_into("<Q", image, p["offset"], address)
        base = self.kernel.mem.map(image)
        try:
            result = self.call(fd, request, base)
        finally:
            self.kernel.mem.unmap(base)
        for offset, original, address in patched:
            if struct.unpack_from("<Q", image, offset)[0] == address:  # unless the call changed it
                image[offset : offset + 8] = original
        spans = [self.span(p["target"]) for p in pointers if p["target"]["kind"] == "buffer"]
        return {**result, "image": b64(image), "spans": spans}

    def op_close(self, msg):
        self.kernel.files.pop(msg["handle"], None)
        return {}

    def op_alloc(self, msg):
        data = bytearray(msg["size"])
        init = base64.b64decode(msg.get("init", ""))[: msg["size"]]
        data[: len(init)] = init
        self.hold(msg["buffer"], data, msg.get("alignment", PAGE), msg.get("readonly", False))
        return {}

    def op_read(self, msg):
        data = self.buffer(msg["buffer"])[1]
        if msg["offset"] + msg["length"] > len(data):
            raise RuntimeError(f"read past the end of buffer {msg['buffer']}")
        return {"data": b64(data[msg["offset"] : msg["offset"] + msg["length"]])}

    def op_write(self, msg):
        data = self.buffer(msg["buffer"])[1]
        payload = base64.b64decode(msg["data"])
        if msg["offset"] + len(payload) > len(data):
            raise RuntimeError(f"write past the end of buffer {msg['buffer']}")
        data[msg["offset"] : msg["offset"] + len(payload)] = payload
        return {}

    def op_free(self, msg):
        address, _ = self.buffer(msg["buffer"])
        self.kernel.mem.unmap(address)
        del self.buffers[msg["buffer"]]
        return {}

    def op_mmap(self, msg):
        vcpu = self.kernel.file(msg["handle"])
        if not isinstance(vcpu, Vcpu):
            raise RuntimeError(f"handle {msg['handle']} has nothing to map")
        data = vcpu.mmap(msg["length"], msg["offset"])
        self.hold(msg["buffer"], data)
        return {}


def b64(data):
    return base64.b64encode(bytes(data)).decode("ascii")


def u64(text):
    return int(text, 16) & U64


def signed(text):
    """An int argument as the case wrote it ("-0x1" stays -1, as the reference sees it)."""
    return int(text, 16)


def failure(seq, kind, message):
    """kind "skip" tells the harness to skip the case (a feature this backend lacks, with why)."""
    return {"seq": seq, "ok": False, "error": {"kind": kind, "message": message}}


def respond(out, message):
    out.write(json.dumps(message, separators=(",", ":")) + "\n")
    out.flush()


def main():
    out = sys.stdout
    respond(
        out,
        {
            "kvmspec": "backend",
            "protocol": 2,
            "profile": {
                "arch": "x86_64",
                "implementation": "kvmspec-python-example",
                "version": "6.18",
                "revisions": ["upstream"],
            },
        },
    )
    backend = Backend()
    for line in sys.stdin:
        seq = None
        try:
            msg = json.loads(line)
            seq = msg["seq"]
            if msg["op"] == "shutdown":
                respond(out, {"seq": seq, "ok": True})
                return
            handler = getattr(backend, "op_" + msg["op"], None)
            if handler is None:
                respond(out, failure(seq, "unsupported", f"unknown op {msg['op']}"))
                continue
            respond(out, {"seq": seq, "ok": True, **handler(msg)})
        except NotModelled as e:
            respond(out, failure(seq, "skip", f"the example does not model {e}"))
        except Exception as e:  # a bug here must not kill the session: report it and go on
            print(f"error handling {line.strip()[:200]}: {e!r}", file=sys.stderr)
            respond(out, failure(seq, "backend", f"{type(e).__name__}: {e}"))


if __name__ == "__main__":
    main()
