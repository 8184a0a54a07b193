import { fail } from '../../errno.ts';
import type { FieldPolicy, RegisterField } from '../../../harness/spec/types.ts';
import type { SysregDesc } from './sysregs.ts';

/** The feature ID space (op0 3, op1 0/1/3, CRn 0, CRm 0..7, op2 0..7): 3 * 8 * 8 registers. */
export const FEATURE_ID_SPACE_SIZE = 192;

/** The index KVM_ARM_FEATURE_ID_RANGE_IDX gives a register id: op1 3 folds onto 2; op0 and CRn take no part. */
export function featureIdIndex(id: bigint): number {
  let op1 = Number((id >> 11n) & 3n);
  if (op1 === 3) op1 -= 1;
  return (op1 << 6) | Number(id & 0x3fn);
}

function fieldMask(f: RegisterField): bigint {
  return ((1n << BigInt(f.width ?? 4)) - 1n) << BigInt(f.shift);
}

/** The field's value, sign-extended for signed fields (where 0xf means "not implemented", below 0). */
function fieldOf(value: bigint, f: RegisterField): bigint {
  const width = BigInt(f.width ?? 4);
  const raw = (value >> BigInt(f.shift)) & ((1n << width) - 1n);
  return f.signed ? BigInt.asIntN(Number(width), raw) : raw;
}

/**
 * A feature ID register outside the VM-wide ID_* block (op1 0, CRm 1..7): MPIDR_EL1 and CLIDR_EL1 among the
 * catalogued ones. KVM resets these at a vCPU's first KVM_ARM_VCPU_INIT only (is_vcpu_ftr_id_reg and
 * reset_vcpu_ftr_id_reg in arch/arm64/kvm/sys_regs.c, since 6.11).
 */
export function isVcpuScopedFeatureId(id: bigint): boolean {
  const op0 = (id >> 14n) & 3n;
  const op1 = (id >> 11n) & 7n;
  const crn = (id >> 7n) & 15n;
  const crm = (id >> 3n) & 15n;
  const featureSpace = op0 === 3n && (op1 < 2n || op1 === 3n) && crn === 0n && crm <= 7n;
  return featureSpace && !(op1 === 0n && crm >= 1n);
}

/** ID_AA64DFR0_EL1.PMUVer, bits 11:8, and its IMPLEMENTATION DEFINED value. */
const PMUVER_MASK = 0xfn << 8n;
const PMUVER_IMP_DEF = 0xfn << 8n;

/**
 * A value as a register's own setter hands it to the common checks: ID_AA64DFR0_EL1 takes an IMPLEMENTATION
 * DEFINED PMUVer (0xf) as 0 (set_id_aa64dfr0_el1 in arch/arm64/kvm/sys_regs.c).
 */
export function beforeIdChecks(d: SysregDesc, value: bigint): bigint {
  if (d.name === 'ID_AA64DFR0_EL1' && (value & PMUVER_MASK) === PMUVER_IMP_DEF) return value & ~PMUVER_MASK;
  return value;
}

/** The writable mask of an ID register: the union of its writable fields. */
export function writableMask(d: SysregDesc): bigint {
  return d.fields.reduce((m, f) => m | fieldMask(f), 0n);
}

/** The 192 masks KVM_ARM_GET_REG_WRITABLE_MASKS copies out, zero where no writable register sits. */
export function writableMasks(sysregs: readonly SysregDesc[]): bigint[] {
  const masks = new Array<bigint>(FEATURE_ID_SPACE_SIZE).fill(0n);
  // Every ID register of the model lies in the feature ID space (test/arm64.test.ts checks it).
  for (const d of sysregs) if (d.kind !== 'state') masks[featureIdIndex(d.id)] = writableMask(d);
  return masks;
}

/** Whether a field value is safe against the limit, per policy (tests swap one out to break the model). */
export const POLICY_CHECKS: Record<FieldPolicy, (value: bigint, limit: bigint, f: RegisterField) => boolean> =
  {
    'lower-safe': (value, limit, f) => value <= limit && (f.min === undefined || value >= BigInt(f.min)),
    'higher-safe': (value, limit) => value >= limit,
    exact: (value, limit) => value === limit,
    any: () => true,
  };

/**
 * Whether user space may give the register `value`: bits outside the writable mask must keep the model
 * value, and every writable field must be safe against the model value, which is the limit — not the
 * current value, so a lowered field may be raised back up to it. Upstream reports both as EINVAL (an unsafe
 * field is E2BIG inside the kernel, turned into EINVAL at the ioctl).
 */
export function checkIdValue(d: SysregDesc, value: bigint): void {
  const mask = writableMask(d);
  if ((value & ~mask) !== (d.reset & ~mask)) fail('EINVAL');
  for (const f of d.fields) {
    if (!POLICY_CHECKS[f.policy](fieldOf(value, f), fieldOf(d.reset, f), f)) fail('EINVAL');
  }
}
