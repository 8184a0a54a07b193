import { encodeStruct, type StructValues } from '../harness/abi/codec.ts';
import type { CaseContext, Fds, Fixture } from '../harness/plan/types.ts';
import { assertOutcome, assertValue } from '../harness/plan/outcome.ts';
import type { Buf, CallArg } from '../harness/session.ts';

/** KVM_ARM_VCPU_PSCI_0_2 as a feature-word bit: the feature every VMM sets when initialising an arm64 vCPU. */
export const psci02 = (ctx: CaseContext) => 1n << ctx.spec.constant('KVM_ARM_VCPU_PSCI_0_2', 'arm64');

/** The KVM_ARM_VCPU_INIT argument: the VM's preferred target, and `features` as feature word 0. */
export async function vcpuInitArg(ctx: CaseContext, vm: number, features: bigint): Promise<CallArg> {
  const preferred = await ctx.kvm.setup(vm, 'KVM_ARM_PREFERRED_TARGET', { struct: { target: 0n } });
  return {
    struct: { target: preferred.fields.target as bigint, features: [features, 0n, 0n, 0n, 0n, 0n, 0n] },
  };
}

/** A vCPU's kvm_run, mapped as a VMM maps it (KVM_GET_VCPU_MMAP_SIZE on /dev/kvm, then mmap of the vCPU fd). */
export async function mapRun(ctx: CaseContext, fds: { system: number }, vcpu: number): Promise<Buf> {
  const size = await ctx.kvm.setup(fds.system, 'KVM_GET_VCPU_MMAP_SIZE');
  return ctx.kvm.mmap(vcpu, Number(size.ret));
}

/** The VM a fixture opened: `vm` unless named. */
export async function vmOf(ctx: CaseContext, fixture = 'vm'): Promise<number> {
  const { vm } = await ctx.fixture(fixture);
  if (vm === undefined) throw new Error(`fixture ${fixture} opened no VM`);
  return vm;
}

/** The vCPU a fixture opened: `vcpu-initialized` (ready for register access on arm64) unless named. */
export async function vcpuOf(ctx: CaseContext, fixture = 'vcpu-initialized'): Promise<number> {
  const { vcpu } = await ctx.fixture(fixture);
  if (vcpu === undefined) throw new Error(`fixture ${fixture} opened no vCPU`);
  return vcpu;
}

/**
 * The VM's vCPU id limit, KVM_CAP_MAX_VCPU_ID asked on the VM fd (arm64's follows the VM's GIC): a host
 * value, so the call is marked host-dependent.
 */
export async function vcpuIdLimitOf(ctx: CaseContext, vm: number): Promise<bigint> {
  const cap = ctx.spec.constant('KVM_CAP_MAX_VCPU_ID', ctx.arch);
  return (await ctx.kvm.call(vm, 'KVM_CHECK_EXTENSION', cap, { hostDependent: true })).ret;
}

/** A struct in the arch's layout, with its flexible array if given, in a buffer of its own, to pass by pointer; read-only with `readonly`. */
export async function structBuffer(
  ctx: CaseContext,
  struct: string,
  values: StructValues,
  options: { readonly?: boolean } = {},
): Promise<Buf> {
  const layout = ctx.spec.layout(struct, { arch: ctx.arch, revision: ctx.revision });
  // The image's own length: a flexible array's elements follow the struct.
  const image = encodeStruct(layout, values, ctx.kvm.endian);
  return ctx.kvm.alloc(image.length, { init: image, ...options });
}

/** Writes kvm_run.immediate_exit in a vCPU's mapped kvm_run: any non-zero byte sets it. */
export async function setImmediateExit(ctx: CaseContext, run: Buf, value: number): Promise<void> {
  const { offset } = ctx.spec.field('kvm_run', 'immediate_exit', { arch: ctx.arch, revision: ctx.revision });
  await ctx.kvm.write(run, Uint8Array.of(value), offset);
}

/** KVM_RUN with immediate_exit set, which must return EINTR. */
export async function runInterrupted(ctx: CaseContext, vcpu: number, what: string): Promise<void> {
  assertOutcome(
    await ctx.kvm.call(vcpu, 'KVM_RUN', 0n),
    { errno: 'EINTR' },
    `KVM_RUN with immediate_exit ${what}`,
  );
}

/** KVM_GET_MP_STATE of a vCPU, which must succeed; the struct goes in all ones, so KVM must write it. */
async function mpStateOf(ctx: CaseContext, vcpu: number, what: string): Promise<bigint> {
  const r = await ctx.kvm.call(vcpu, 'KVM_GET_MP_STATE', { struct: { mp_state: 0xffff_ffffn } });
  assertOutcome(r, { ret: 0 }, `KVM_GET_MP_STATE of ${what}`);
  return r.fields.mp_state as bigint;
}

/** `state` names a KVM_MP_STATE_* constant without its prefix: RUNNABLE, STOPPED, HALTED… */
export async function expectMpState(ctx: CaseContext, vcpu: number, state: string, what: string) {
  const expected = ctx.spec.constant(`KVM_MP_STATE_${state}`, ctx.arch);
  assertValue(await mpStateOf(ctx, vcpu, what), expected, `mp_state of ${what}`);
}

/** KVM_SET_MP_STATE, which must succeed. */
export async function setMpState(ctx: CaseContext, vcpu: number, state: string, what: string) {
  const r = await ctx.kvm.call(vcpu, 'KVM_SET_MP_STATE', {
    struct: { mp_state: ctx.spec.constant(`KVM_MP_STATE_${state}`, ctx.arch) },
  });
  assertOutcome(r, { ret: 0 }, `KVM_SET_MP_STATE ${state} on ${what}`);
}

const system: Fixture = async (ctx) => ({ system: await ctx.kvm.openSystem() });

const vm: Fixture = async (ctx) => {
  const { system: sys } = await ctx.fixture('system');
  return { system: sys, vm: await ctx.kvm.setupHandle(sys, 'KVM_CREATE_VM', 0n) };
};

/** x86: a VM given an in-kernel irqchip (PIC, IOAPIC, and a local APIC for each vCPU created later). */
const vmIrqchip: Fixture = async (ctx) => {
  const fds = await ctx.fixture('vm');
  await ctx.kvm.setup(fds.vm!, 'KVM_CREATE_IRQCHIP');
  return fds;
};

/** vCPU 0 of the VM fixture `vmFixture` opened. */
const vcpuIn =
  (vmFixture: string): Fixture =>
  async (ctx) => {
    const fds = await ctx.fixture(vmFixture);
    return { ...fds, vcpu: await ctx.kvm.setupHandle(fds.vm!, 'KVM_CREATE_VCPU', 0n) };
  };

/**
 * A vCPU ready for register access: on arm64 that takes KVM_ARM_PREFERRED_TARGET + KVM_ARM_VCPU_INIT, with
 * `features` as feature word 0. The vCPU and the preferred target are asked for together: neither needs
 * the other, and over a slow channel (QEMU) each round trip saved is a millisecond per case.
 */
const vcpuInitializedWith =
  (features: (ctx: CaseContext) => bigint): Fixture =>
  async (ctx): Promise<Fds> => {
    if (ctx.arch !== 'arm64') return ctx.fixture('vcpu');
    const fds = await ctx.fixture('vm');
    const [vcpu, init] = await Promise.all([
      ctx.kvm.setupHandle(fds.vm!, 'KVM_CREATE_VCPU', 0n),
      vcpuInitArg(ctx, fds.vm!, features(ctx)),
    ]);
    await ctx.kvm.setup(vcpu, 'KVM_ARM_VCPU_INIT', init);
    return { ...fds, vcpu };
  };

/** The KVM_SET_USER_MEMORY_REGION argument for a slot backed by `ram` (from `offset`), flags 0. */
export function memslot(slot: number, gpa: bigint, size: bigint, ram: Buf, offset = 0): CallArg {
  return {
    struct: {
      slot: BigInt(slot),
      flags: 0n,
      guest_phys_addr: gpa,
      memory_size: size,
      userspace_addr: { buf: ram, offset, length: 0 },
    },
  };
}

/** Named setups that vectors and generators share; a failing step blocks the case. */
export const fixtures: Record<string, Fixture> = {
  system,
  vm,
  vcpu: vcpuIn('vm'),
  'vcpu-initialized': vcpuInitializedWith(psci02),
  /** An arm64 vCPU initialised without KVM_ARM_VCPU_PSCI_0_2: it has KVM's PSCI 0.1. */
  'vcpu-psci-0.1': vcpuInitializedWith(() => 0n),
  'vm-irqchip': vmIrqchip,
  /** x86: vCPU 0, the boot processor, of a VM with an in-kernel irqchip. */
  'vcpu-irqchip': vcpuIn('vm-irqchip'),
};
