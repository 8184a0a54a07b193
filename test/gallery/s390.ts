// Gallery entries in KVM_S390_MEM_OP (its size limit, cmpxchg, CHECK_ONLY, the prefix and the enhanced DAT it
// applies) and in the s390 vCPU's MP state.
import type { IoctlArg } from '../../adapters/backend.ts';
import { createReferenceBackend } from '../../adapters/reference.ts';
import { fieldSpan } from '../../harness/abi/codec.ts';
import { VcpuFile } from '../../reference/kernel.ts';
import type { SpecTree } from '../../harness/spec/tree.ts';
import type { Arch } from '../../harness/spec/types.ts';
import { StructView, droppingBits, failed, withIoctl, type FaultyBackend } from './faulty.ts';

const memop = (spec: SpecTree, arch: Arch) => ({
  request: spec.ioctlNumber('KVM_S390_MEM_OP', arch),
  view: new StructView(spec, 'kvm_s390_mem_op', arch),
  constant: (name: string) => spec.constant(`KVM_S390_MEMOP_${name}`, arch),
});

/** MEM_OP_MAX_SIZE in arch/s390/kvm/kvm-s390.c, which KVM_CAP_S390_MEM_OP reports. */
const MEM_OP_MAX_SIZE = 65536n;

export const memopMaxSizeOffByOne: FaultyBackend = {
  name: 'memop-max-size-off-by-one',
  bug: 'KVM_S390_MEM_OP rejects size >= 65536 instead of size > 65536, so the largest transfer the capability promises fails with E2BIG',
  arches: ['s390x'],
  requires: ['KVM_S390_MEM_OP'],
  filter: ['MEM_OP/MEM_OP-ARG-*/**'],
  make: (spec, arch) => {
    const { request, view } = memop(spec, arch);
    return withIoctl(createReferenceBackend(spec, arch), (next, h, req, arg) =>
      req === request && arg.kind === 'struct' && view.get(arg.image, 'size') === MEM_OP_MAX_SIZE
        ? Promise.resolve(failed('E2BIG'))
        : next(h, req, arg),
    );
  },
  caughtBy: [
    'MEM_OP/MEM_OP-ARG-004/s390x/op=LOGICAL_READ,size=0x10000',
    'MEM_OP/MEM_OP-ARG-004/s390x/op=ABSOLUTE_WRITE,size=0x10000',
  ],
};

export const cmpxchgWritesOnMismatch: FaultyBackend = {
  name: 'cmpxchg-writes-on-mismatch',
  bug: 'ABSOLUTE_CMPXCHG reports the current value on a mismatch but stores the new value anyway',
  arches: ['s390x'],
  requires: ['KVM_S390_MEM_OP'],
  filter: ['MEM_OP/MEM_OP-XCHG-*/**'],
  make: (spec, arch) => {
    const inner = createReferenceBackend(spec, arch);
    const { request, view, constant } = memop(spec, arch);
    const oldAddr = spec.field('kvm_s390_mem_op', 'old_addr', { arch }).offset;
    const buf = spec.field('kvm_s390_mem_op', 'buf', { arch }).offset;
    return withIoctl(inner, async (next, h, req, arg) => {
      if (
        req !== request ||
        arg.kind !== 'struct' ||
        view.get(arg.image, 'op') !== constant('ABSOLUTE_CMPXCHG')
      )
        return next(h, req, arg);
      const expected = arg.pointers.find((p) => p.offset === oldAddr)?.target;
      const before =
        expected?.kind === 'buffer'
          ? await inner.read(expected.buffer, expected.offset, expected.length)
          : undefined;
      const r = await next(h, req, arg);
      const after =
        expected?.kind === 'buffer'
          ? await inner.read(expected.buffer, expected.offset, expected.length)
          : undefined;
      const mismatch = r.ret === 0n && before && after && Buffer.compare(before, after) !== 0;
      if (mismatch) {
        // The bug: the store below the compare runs whatever the compare said.
        const image = arg.image.slice();
        view.set(image, 'op', constant('ABSOLUTE_WRITE'));
        const write: IoctlArg = {
          kind: 'struct',
          image,
          pointers: arg.pointers.filter((p) => p.offset === buf),
        };
        await next(h, req, write);
      }
      return r;
    });
  },
  caughtBy: [
    'MEM_OP/MEM_OP-XCHG-002/s390x/size=1,keys=no-skey-flag',
    'MEM_OP/MEM_OP-XCHG-002/s390x/size=16,keys=key0',
  ],
};

export const checkOnlySkipsKeyCheck: FaultyBackend = {
  name: 'check-only-skips-key-check',
  bug: 'KVM_S390_MEM_OP with CHECK_ONLY validates the addresses but never applies storage-key protection',
  arches: ['s390x'],
  requires: ['KVM_S390_MEM_OP'],
  filter: ['MEM_OP/MEM_OP-KEY-*/**', 'MEM_OP/MEM_OP-ACC-*/**'],
  make: (spec, arch) => {
    const { request, view, constant } = memop(spec, arch);
    const checkOnly = constant('F_CHECK_ONLY');
    const keyed = constant('F_SKEY_PROTECTION');
    return withIoctl(createReferenceBackend(spec, arch), async (next, h, req, arg) => {
      const flags = arg.kind === 'struct' ? view.get(arg.image, 'flags') : 0n;
      if (req !== request || arg.kind !== 'struct' || (flags & checkOnly) === 0n) return next(h, req, arg);
      const image = arg.image.slice();
      view.set(image, 'flags', flags & ~keyed);
      const r = await next(h, req, { ...arg, image });
      return r.image ? { ...r, image: arg.image.slice() } : r;
    });
  },
  caughtBy: [
    'MEM_OP/MEM_OP-KEY-005/s390x/path=vcpu,op=read,skey=0x38',
    'MEM_OP/MEM_OP-KEY-005/s390x/path=vm,op=write,skey=0x30',
  ],
};

export const runIgnoresDirtyPrefix: FaultyBackend = {
  name: 'run-ignores-dirty-prefix',
  bug: 'KVM_RUN loads the PSW from kvm_run but never looks at kvm_dirty_regs, so a prefix user space set in s.regs.prefix never takes effect and logical accesses to real 0..8191 reach absolute 0',
  arches: ['s390x'],
  requires: ['KVM_S390_MEM_OP', 'KVM_RUN'],
  filter: ['MEM_OP/MEM_OP-PFX-*/**', 'RUN/RUN-VAL-002/**'],
  make: (spec, arch) => {
    const inner = createReferenceBackend(spec, arch);
    const run = spec.ioctlNumber('KVM_RUN', arch);
    const dirty = fieldSpan(spec.field('kvm_run', 'kvm_dirty_regs', { arch }));
    return withIoctl(inner, (next, h, req, arg) => {
      const file = inner.kernel.file(h);
      if (req === run && file instanceof VcpuFile) file.run.fill(0, dirty.offset, dirty.offset + dirty.size);
      return next(h, req, arg);
    });
  },
  caughtBy: [
    'RUN/RUN-VAL-002/s390x/load=dirty',
    'MEM_OP/MEM_OP-PFX-001/s390x/access=read-real-0',
    'MEM_OP/MEM_OP-PFX-002/s390x/access=dat-real-prefix',
  ],
};

export const edatIgnored: FaultyBackend = {
  name: 'edat-ignored',
  bug: "guest translation knows only 4 KiB page tables: KVM_SET_SREGS drops CR0's enhanced-DAT bit, so segment and region-third entries never map large frames and region-entry protection is ignored",
  arches: ['s390x'],
  requires: ['KVM_S390_MEM_OP', 'KVM_SET_SREGS'],
  filter: ['MEM_OP/MEM_OP-DAT-*/**'],
  make: (spec, arch) => {
    // CR0 is the first doubleword of kvm_sregs.crs.
    const cr0 = { offset: spec.field('kvm_sregs', 'crs', { arch }).offset, size: 8 as const };
    const edat = spec.constant('S390_CR0_EDAT', arch);
    const request = spec.ioctlNumber('KVM_SET_SREGS', arch);
    return droppingBits(createReferenceBackend(spec, arch), request, cr0, edat, spec.archInfo(arch).endian);
  },
  caughtBy: [
    'MEM_OP/MEM_OP-DAT-006/s390x/case=segment-frame',
    'MEM_OP/MEM_OP-DAT-006/s390x/case=region-protected-store',
    'MEM_OP/MEM_OP-DAT-007/s390x/case=region-frame',
    'MEM_OP/MEM_OP-DAT-007/s390x/case=common-region-private-space',
  ],
};

export const mpStateWrittenOut: FaultyBackend = {
  name: 'mp-state-written-out',
  bug: 'KVM_GET_MP_STATE on s390 writes the state into struct kvm_mp_state and returns 0, as api.rst describes for every arch, where KVM returns the state itself and writes nothing',
  arches: ['s390x'],
  requires: ['KVM_GET_MP_STATE'],
  filter: ['MP_STATE/**'],
  make: (spec, arch) => {
    const inner = createReferenceBackend(spec, arch);
    const get = spec.ioctlNumber('KVM_GET_MP_STATE', arch);
    const view = new StructView(spec, 'kvm_mp_state', arch);
    return withIoctl(inner, async (next, h, req, arg) => {
      const r = await next(h, req, arg);
      if (req !== get || r.ret <= 0n) return r;
      if (arg.kind !== 'struct') return failed('EFAULT');
      const image = arg.image.slice();
      view.set(image, 'mp_state', r.ret);
      return { ret: 0n, errno: null, image, spans: [] };
    });
  },
  caughtBy: [
    'MP_STATE/MP_STATE-VAL-004/s390x/vcpu=new,arg=struct',
    'MP_STATE/MP_STATE-VAL-004/s390x/vcpu=new,arg=invalid',
    'MP_STATE/MP_STATE-VAL-004/s390x/case=run-starts',
    'MP_STATE/MP_STATE-VAL-004/s390x/case=set-operating',
    'MP_STATE/MP_STATE-VAL-004/s390x/case=set-stopped',
  ],
};
