// Gallery entries in the arm64 APIs: ID-register writes, reg_mask_range, PV time, PSCI's view of vCPUs, the
// SMCCC filter and enabling SYSTEM_SUSPEND.
import { createReferenceBackend } from '../../adapters/reference.ts';
import { StructView, droppingBits, pretendSuccess, withIoctl, type FaultyBackend } from './faulty.ts';

/** A system register id (KVM_REG_ARM64_SYSREG) in the feature ID range: op0 3, op1 0, CRn 0, CRm 1..7. */
function isFeatureIdRegister(id: bigint): boolean {
  const field = (shift: bigint, bits: bigint) => (id >> shift) & ((1n << bits) - 1n);
  const crm = field(3n, 4n);
  return (
    field(16n, 16n) === 0x13n &&
    field(14n, 2n) === 3n &&
    field(11n, 3n) === 0n &&
    field(7n, 4n) === 0n &&
    crm >= 1n &&
    crm <= 7n
  );
}

export const idRegisterAcceptsRaisedField: FaultyBackend = {
  name: 'id-register-accepts-raised-field',
  bug: 'KVM_SET_ONE_REG of a feature ID register before the VM ran skips the per-field safety check, so a lower-safe field raised above what KVM supports is accepted',
  arches: ['arm64'],
  requires: ['KVM_SET_ONE_REG', 'KVM_ARM_GET_REG_WRITABLE_MASKS'],
  filter: ['ARM_REG_MASKS/ARM_IDREG-*/**'],
  make: (spec, arch) => {
    const inner = createReferenceBackend(spec, arch);
    const set = spec.ioctlNumber('KVM_SET_ONE_REG', arch);
    const reg = new StructView(spec, 'kvm_one_reg', arch);
    return withIoctl(inner, async (next, h, req, arg) => {
      const r = await next(h, req, arg);
      if (
        req === set &&
        arg.kind === 'struct' &&
        r.errno === 'EINVAL' &&
        isFeatureIdRegister(reg.get(arg.image, 'id'))
      )
        return pretendSuccess(inner, arg);
      return r;
    });
  },
  caughtBy: [
    'ARM_REG_MASKS/ARM_IDREG-ERR-001/arm64/reg=ID_AA64ISAR0_EL1,field=AES',
    'ARM_REG_MASKS/ARM_IDREG-ERR-001/arm64/reg=ID_AA64MMFR0_EL1,field=PARANGE',
  ],
};

export const regMaskReservedIgnored: FaultyBackend = {
  name: 'reg-mask-range-reserved-ignored',
  bug: 'KVM_ARM_GET_REG_WRITABLE_MASKS never looks at the reserved words of struct reg_mask_range',
  arches: ['arm64'],
  requires: ['KVM_ARM_GET_REG_WRITABLE_MASKS'],
  filter: ['ARM_REG_MASKS/ARM_REG_MASKS-*/**'],
  make: (spec, arch) => {
    const request = spec.ioctlNumber('KVM_ARM_GET_REG_WRITABLE_MASKS', arch);
    const reserved = spec.field('reg_mask_range', 'reserved', { arch });
    return withIoctl(createReferenceBackend(spec, arch), async (next, h, req, arg) => {
      if (req !== request || arg.kind !== 'struct') return next(h, req, arg);
      const image = arg.image.slice();
      image.fill(0, reserved.offset, reserved.offset + 4 * (reserved.count ?? 1));
      const r = await next(h, req, { ...arg, image });
      return r.image ? { ...r, image: arg.image.slice() } : r;
    });
  },
  caughtBy: Array.from({ length: 13 }, (_, i) => `ARM_REG_MASKS/ARM_REG_MASKS-ERR-002/arm64/reserved=${i}`),
};

export const pvTimeIpaTwice: FaultyBackend = {
  name: 'pv-time-ipa-accepted-twice',
  bug: 'KVM_SET_DEVICE_ATTR of the PV-time IPA does not check whether the vCPU already has one, so a second IPA is accepted',
  arches: ['arm64'],
  requires: ['KVM_SET_DEVICE_ATTR'],
  filter: ['VCPU_ATTR/**'],
  make: (spec, arch) => {
    const inner = createReferenceBackend(spec, arch);
    const set = spec.ioctlNumber('KVM_SET_DEVICE_ATTR', arch);
    const attr = new StructView(spec, 'kvm_device_attr', arch);
    const pvtime = spec.constant('KVM_ARM_VCPU_PVTIME_CTRL', arch);
    return withIoctl(inner, async (next, h, req, arg) => {
      const r = await next(h, req, arg);
      if (
        req === set &&
        arg.kind === 'struct' &&
        r.errno === 'EEXIST' &&
        attr.get(arg.image, 'group') === pvtime
      )
        return pretendSuccess(inner, arg);
      return r;
    });
  },
  caughtBy: ['VCPU_ATTR/VCPU_ATTR-ERR-010/arm64/case=set-twice'],
};

export const powerOffIgnored: FaultyBackend = {
  name: 'power-off-ignored',
  bug: 'KVM_ARM_VCPU_INIT drops the KVM_ARM_VCPU_POWER_OFF feature, so every vCPU starts powered on: PSCI sees secondary vCPUs as on, and CPU_ON cannot start one at its entry address',
  arches: ['arm64'],
  requires: ['KVM_ARM_VCPU_INIT', 'KVM_RUN'],
  filter: ['PSCI/**'],
  make: (spec, arch) => {
    // Feature word 0 is the first u32 of kvm_vcpu_init.features.
    const features = { offset: spec.field('kvm_vcpu_init', 'features', { arch }).offset, size: 4 as const };
    const powerOff = 1n << spec.constant('KVM_ARM_VCPU_POWER_OFF', arch);
    const request = spec.ioctlNumber('KVM_ARM_VCPU_INIT', arch);
    return droppingBits(
      createReferenceBackend(spec, arch),
      request,
      features,
      powerOff,
      spec.archInfo(arch).endian,
    );
  },
  caughtBy: [
    'PSCI/PSCI-VAL-005/arm64/case=powered-off',
    'PSCI/PSCI-VAL-006/arm64/case=powered-off',
    'PSCI/PSCI-VAL-007/arm64/case=psci-0.1-powered-off',
  ],
};

export const smcccFilterPadIgnored: FaultyBackend = {
  name: 'smccc-filter-pad-ignored',
  bug: "KVM_SET_DEVICE_ATTR of the VM's SMCCC filter never looks at kvm_smccc_filter.pad, so a filter with garbage in its padding is taken",
  arches: ['arm64'],
  requires: ['KVM_SET_DEVICE_ATTR', 'KVM_HAS_DEVICE_ATTR'],
  filter: ['SMCCC_FILTER/**'],
  make: (spec, arch) => {
    const inner = createReferenceBackend(spec, arch);
    const set = spec.ioctlNumber('KVM_SET_DEVICE_ATTR', arch);
    const attr = new StructView(spec, 'kvm_device_attr', arch);
    const pad = spec.field('kvm_smccc_filter', 'pad', { arch });
    const smcccCtrl = spec.constant('KVM_ARM_VM_SMCCC_CTRL', arch);
    return withIoctl(inner, async (next, h, req, arg) => {
      const target = arg.kind === 'struct' ? arg.pointers[0]?.target : undefined;
      if (
        req === set &&
        arg.kind === 'struct' &&
        attr.get(arg.image, 'group') === smcccCtrl &&
        target?.kind === 'buffer'
      )
        await inner.write(target.buffer, target.offset + pad.offset, new Uint8Array(pad.count ?? 0));
      return next(h, req, arg);
    });
  },
  caughtBy: [
    'SMCCC_FILTER/SMCCC_FILTER-ERR-001/arm64/case=pad',
    'SMCCC_FILTER/SMCCC_FILTER-ERR-003/arm64/filter=pad',
  ],
};

export const enableCapFlagsIgnored: FaultyBackend = {
  name: 'enable-cap-flags-ignored',
  bug: 'KVM_ENABLE_CAP reads the capability and never kvm_enable_cap.flags, so a request with flags set enables SYSTEM_SUSPEND instead of failing',
  arches: ['arm64'],
  requires: ['KVM_ENABLE_CAP'],
  filter: ['VM/**', 'PSCI/**'],
  make: (spec, arch) =>
    droppingBits(
      createReferenceBackend(spec, arch),
      spec.ioctlNumber('KVM_ENABLE_CAP', arch),
      { offset: spec.field('kvm_enable_cap', 'flags', { arch }).offset, size: 4 },
      0xffff_ffffn,
      spec.archInfo(arch).endian,
    ),
  caughtBy: [
    'VM/VM-ERR-008/arm64/cap=system-suspend,flags=1',
    'VM/VM-ERR-008/arm64/cap=system-suspend,flags=0x80000000',
    'PSCI/PSCI-VAL-012/arm64/case=cap-refused',
  ],
};
