// Gallery entries in ppc64's ONE_REG registers.
import { createReferenceBackend } from '../../adapters/reference.ts';
import { toBigInt } from '../../harness/spec/int.ts';
import { StructView, pretendSuccess, withIoctl, type FaultyBackend } from './faulty.ts';

export const fprApartFromVsr: FaultyBackend = {
  name: 'ppc-fpr-apart-from-vsr',
  bug: 'ppc64 ONE_REG keeps every id in a table of its own, so FPR n is a register apart instead of doubleword 1 of VSR n',
  arches: ['ppc64le'],
  requires: ['KVM_GET_ONE_REG', 'KVM_SET_ONE_REG'],
  filter: ['ONE_REG/ONE_REG-VAL-014/**'],
  make: (spec, arch) => {
    const inner = createReferenceBackend(spec, arch);
    const get = spec.ioctlNumber('KVM_GET_ONE_REG', arch);
    const set = spec.ioctlNumber('KVM_SET_ONE_REG', arch);
    const oneReg = new StructView(spec, 'kvm_one_reg', arch);
    const fprs = new Set(
      spec
        .registers(arch)
        .filter((r) => r.name.startsWith('KVM_REG_PPC_FPR'))
        .map((r) => toBigInt(r.id)),
    );
    /** The FPRs' own storage, by vCPU handle and id. */
    const apart = new Map<string, Uint8Array>();
    return withIoctl(inner, async (next, h, req, arg) => {
      const id = arg.kind === 'struct' ? oneReg.get(arg.image, 'id') : undefined;
      const target = arg.kind === 'struct' ? arg.pointers[0]?.target : undefined;
      if (id === undefined || !fprs.has(id) || target?.kind !== 'buffer' || (req !== get && req !== set))
        return next(h, req, arg);
      const key = `${h}:${id}`;
      if (req === set) apart.set(key, await inner.read(target.buffer, target.offset, 8));
      else await inner.write(target.buffer, target.offset, apart.get(key) ?? new Uint8Array(8));
      return pretendSuccess(inner, arg);
    });
  },
  caughtBy: [
    'ONE_REG/ONE_REG-VAL-014/ppc64le/n=0,order=vsr-then-fpr',
    'ONE_REG/ONE_REG-VAL-014/ppc64le/n=31,order=fpr-then-vsr',
  ],
};
