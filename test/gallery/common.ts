// Gallery entries in APIs every arch has (ONE_REG), in x86's CPUID table and in x86's in-kernel irqchip, its
// IRQ lines and the local APIC.
import { createReferenceBackend } from '../../adapters/reference.ts';
import { StructView, failed, withIoctl, type FaultyBackend } from './faulty.ts';

export const copiesBeforeLookup: FaultyBackend = {
  name: 'one-reg-copies-before-lookup',
  bug: 'KVM_GET_ONE_REG touches the user address before it looks the register id up, so an unknown id with a bad address answers EFAULT instead of the lookup error',
  arches: ['arm64', 'ppc64le'],
  requires: ['KVM_GET_ONE_REG'],
  filter: ['ONE_REG/**'],
  make: (spec, arch) => {
    const get = spec.ioctlNumber('KVM_GET_ONE_REG', arch);
    return withIoctl(createReferenceBackend(spec, arch), (next, h, req, arg) => {
      const addr = arg.kind === 'struct' ? arg.pointers[0]?.target.kind : undefined;
      if (req === get && (addr === 'invalid' || addr === 'null')) return Promise.resolve(failed('EFAULT'));
      return next(h, req, arg);
    });
  },
  caughtBy: [
    'ONE_REG/ONE_REG-ERR-010/arm64/op=get,id=0x603000000013c7ff,addr=invalid',
    'ONE_REG/ONE_REG-ERR-009/ppc64le/op=get,id=0x1030000000000fff,addr=invalid',
  ],
};

export const cpuidLimitOffByOne: FaultyBackend = {
  name: 'cpuid-limit-off-by-one',
  bug: 'KVM_SET_CPUID2 compares nent with the maximum plus one, so a 257-entry table passes the limit and the kernel goes on to copy the entries',
  arches: ['x86_64'],
  requires: ['KVM_SET_CPUID2'],
  filter: ['X86_CPUID/**'],
  make: (spec, arch) => {
    const set = spec.ioctlNumber('KVM_SET_CPUID2', arch);
    const cpuid = new StructView(spec, 'kvm_cpuid2', arch);
    const max = 256n;
    return withIoctl(createReferenceBackend(spec, arch), async (next, h, req, arg) => {
      if (req !== set || arg.kind !== 'struct' || cpuid.get(arg.image, 'nent') !== max + 1n)
        return next(h, req, arg);
      // Past the broken limit the copy runs; the reference's own copy stands in for it.
      const image = arg.image.slice();
      cpuid.set(image, 'nent', max);
      const r = await next(h, req, { ...arg, image });
      if (r.image) cpuid.set(r.image, 'nent', max + 1n);
      return r;
    });
  },
  caughtBy: ['X86_CPUID/X86_CPUID-ERR-001/x86_64/nent=257'],
};

export const oneRegHostByteOrder: FaultyBackend = {
  name: 'one-reg-host-byte-order',
  bug: 'KVM_GET_ONE_REG on big-endian s390 copies register values out in little-endian order (a memcpy of a host u64); SET is right',
  arches: ['s390x'],
  requires: ['KVM_GET_ONE_REG', 'KVM_SET_ONE_REG'],
  filter: ['ONE_REG/**'],
  make: (spec, arch) => {
    const inner = createReferenceBackend(spec, arch);
    const get = spec.ioctlNumber('KVM_GET_ONE_REG', arch);
    return withIoctl(inner, async (next, h, req, arg) => {
      const r = await next(h, req, arg);
      const target = arg.kind === 'struct' ? arg.pointers[0]?.target : undefined;
      if (req !== get || r.ret !== 0n || target?.kind !== 'buffer') return r;
      const value = (await inner.read(target.buffer, target.offset, target.length)).reverse();
      await inner.write(target.buffer, target.offset, value);
      return { ...r, spans: [value] };
    });
  },
  caughtBy: [
    'ONE_REG/ONE_REG-VAL-003/s390x/reg=KVM_REG_S390_TODPR',
    'ONE_REG/ONE_REG-VAL-003/s390x/reg=KVM_REG_S390_CPU_TIMER',
    'ONE_REG/ONE_REG-VAL-003/s390x/reg=KVM_REG_S390_GBEA',
    'ONE_REG/ONE_REG-VAL-004/s390x/registers=any-value',
  ],
};

export const irqchipAfterVcpus: FaultyBackend = {
  name: 'irqchip-after-vcpus',
  bug: 'KVM_CREATE_IRQCHIP checks only for an existing irqchip, not for vCPUs already created, so it succeeds and leaves those vCPUs without a local APIC',
  arches: ['x86_64'],
  requires: ['KVM_CREATE_IRQCHIP'],
  filter: ['IRQCHIP/**'],
  make: (spec, arch) => {
    const create = spec.ioctlNumber('KVM_CREATE_IRQCHIP', arch);
    return withIoctl(createReferenceBackend(spec, arch), async (next, h, req, arg) => {
      const r = await next(h, req, arg);
      return req === create && r.errno === 'EINVAL' ? { ret: 0n, errno: null, spans: [] } : r;
    });
  },
  caughtBy: ['IRQCHIP/IRQCHIP-ERR-002/x86_64/vcpus=one'],
};

export const getIrqchipFreshStruct: FaultyBackend = {
  name: 'get-irqchip-fresh-struct',
  bug: 'KVM_GET_IRQCHIP fills in a zeroed struct of its own instead of the one it copied in, so pad and the union past the chip state come back zero',
  arches: ['x86_64'],
  requires: ['KVM_GET_IRQCHIP'],
  filter: ['IRQCHIP/**'],
  make: (spec, arch) => {
    const get = spec.ioctlNumber('KVM_GET_IRQCHIP', arch);
    const irqchip = new StructView(spec, 'kvm_irqchip', arch);
    return withIoctl(createReferenceBackend(spec, arch), async (next, h, req, arg) => {
      const r = await next(h, req, arg);
      if (req !== get || !r.image || r.errno !== null) return r;
      const fresh = new Uint8Array(r.image.length);
      const chipId = irqchip.get(r.image, 'chip_id');
      // The chip_id and the state (16 bytes of a PIC, 216 of the IOAPIC) are all it writes.
      const state = chipId === 2n ? 216 : 16;
      fresh.set(r.image.subarray(0, 4));
      fresh.set(r.image.subarray(8, 8 + state), 8);
      return { ...r, image: fresh };
    });
  },
  caughtBy: ['IRQCHIP/IRQCHIP-VAL-003/x86_64/chip=pic-master', 'IRQCHIP/IRQCHIP-VAL-003/x86_64/chip=ioapic'],
};

export const setLapicKeepsVersion: FaultyBackend = {
  name: 'set-lapic-keeps-version',
  bug: 'KVM_SET_LAPIC copies the register page in whole and keeps the version register it was given, instead of setting the version KVM reports',
  arches: ['x86_64'],
  requires: ['KVM_SET_LAPIC'],
  filter: ['LAPIC/**'],
  make: (spec, arch) => {
    const [get, set] = ['KVM_GET_LAPIC', 'KVM_SET_LAPIC'].map((n) => spec.ioctlNumber(n, arch));
    const APIC_LVR = 0x30;
    // The version each vCPU was last given, shown by its later reads as the buggy page would hold it.
    const written = new Map<number, Uint8Array>();
    return withIoctl(createReferenceBackend(spec, arch), async (next, h, req, arg) => {
      const r = await next(h, req, arg);
      if (r.errno !== null || arg.kind !== 'struct') return r;
      if (req === set) written.set(h, arg.image.slice(APIC_LVR, APIC_LVR + 4));
      const version = written.get(h);
      if (req !== get || !r.image || !version) return r;
      const image = r.image.slice();
      image.set(version, APIC_LVR);
      return { ...r, image };
    });
  },
  caughtBy: ['LAPIC/LAPIC-VAL-002/x86_64/vcpu=5'],
};

export const picEdgeWithdrawn: FaultyBackend = {
  name: 'pic-edge-withdrawn',
  bug: 'the PIC treats every input as level-sensitive: lowering an edge-triggered line withdraws its pending request from irr, where an 8259 keeps the latched edge until it is acknowledged',
  arches: ['x86_64'],
  requires: ['KVM_IRQ_LINE'],
  filter: ['IRQ_LINE/**'],
  make: (spec, arch) => {
    const number = (name: string) => spec.ioctlNumber(name, arch);
    const lines = [number('KVM_IRQ_LINE'), number('KVM_IRQ_LINE_STATUS')];
    const [get, set] = [number('KVM_GET_IRQCHIP'), number('KVM_SET_IRQCHIP')];
    const level = new StructView(spec, 'kvm_irq_level', arch);
    const irqchip = new StructView(spec, 'kvm_irqchip', arch);
    const size = spec.layout('kvm_irqchip', { arch }).size;
    return withIoctl(createReferenceBackend(spec, arch), async (next, h, req, arg) => {
      const r = await next(h, req, arg);
      if (!lines.includes(req) || arg.kind !== 'struct' || r.errno !== null) return r;
      const gsi = level.get(arg.image, 'irq');
      if (level.get(arg.image, 'level') !== 0n || gsi >= 16n) return r;
      // Take the request back out of the PIC's irr unless its ELCR bit makes the input level-triggered.
      const image = new Uint8Array(size);
      irqchip.set(image, 'chip_id', gsi >> 3n);
      const chip = await next(h, get, { kind: 'struct', image, pointers: [] });
      const state = chip.image!;
      const bit = 1n << (gsi & 7n);
      if ((irqchip.get(state, 'elcr') & bit) === 0n)
        irqchip.set(state, 'irr', irqchip.get(state, 'irr') & ~bit);
      await next(h, set, { kind: 'struct', image: state, pointers: [] });
      return r;
    });
  },
  caughtBy: ['IRQ_LINE/IRQ_LINE-VAL-002/x86_64/gsi=3', 'IRQ_LINE/IRQ_LINE-VAL-002/x86_64/gsi=12'],
};
