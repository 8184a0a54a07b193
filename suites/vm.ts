import { assertOutcome, expectOf } from '../harness/plan/outcome.ts';
import type { CaseContext, CaseGenerator, SuiteFamily } from '../harness/plan/types.ts';
import {
  mapRun,
  memslot,
  psci02,
  runInterrupted,
  setImmediateExit,
  structBuffer,
  vcpuIdLimitOf,
  vcpuInitArg,
  vcpuOf,
  vmOf,
} from './fixtures.ts';
import { SetupError, type Buf, type StructArg } from '../harness/session.ts';

const MiB = 1 << 20;
/** 1 MiB-aligned RAM satisfies every arch (s390 maps guest memory in 1 MiB segments). */
const RAM_ALIGN = MiB;
const MEM_READONLY = 2n;

const duplicateVcpu: CaseGenerator = (g) => [
  {
    params: { id: '0' },
    run: async (ctx) => {
      const vm = await vmOf(ctx, 'vcpu');
      const r = await ctx.kvm.call(vm, 'KVM_CREATE_VCPU', 0n);
      assertOutcome(r, expectOf(g), 'second KVM_CREATE_VCPU with id 0');
    },
  },
];

/**
 * The vCPU id limit is the host's (KVM_CAP_MAX_VCPU_ID, read on the VM): the last id below it is created,
 * the limit itself and the largest unsigned long are refused.
 */
const vcpuIdLimit: CaseGenerator = (g) =>
  (['last', 'limit', 'ulong-max'] as const).map((which) => ({
    params: { id: which },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx);
      const limit = await vcpuIdLimitOf(ctx, vm);
      if (limit <= 0n) throw new SetupError(`KVM_CAP_MAX_VCPU_ID answered ${limit}`);
      ctx.note('max_vcpu_id', String(limit));
      const id = which === 'last' ? limit - 1n : which === 'limit' ? limit : (1n << 64n) - 1n;
      const r = await ctx.kvm.call(vm, 'KVM_CREATE_VCPU', id, { hostDependent: true });
      assertOutcome(r, which === 'last' ? { ret: { min: 0 } } : expectOf(g), `KVM_CREATE_VCPU ${id}`);
    },
  }));

/**
 * IRQ_LINE-VAL-010: arm64 packs vCPU ids of 256 and more into bits 28-31 of kvm_irq_level.irq. A VM whose
 * only vCPU is 256 takes a CPU line to (0 + 1 * 256); the same line without those bits names vCPU 0.
 */
const irqLineHighVcpuId: CaseGenerator = () => [
  {
    params: { vcpu: '256' },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx);
      const id = 256n;
      const limit = await vcpuIdLimitOf(ctx, vm);
      if (limit <= id) return ctx.notApplicable(`the host's vCPU id limit is ${limit}`);
      await ctx.kvm.setupHandle(vm, 'KVM_CREATE_VCPU', id);
      const shift = ctx.spec.constant('KVM_ARM_IRQ_VCPU2_SHIFT', ctx.arch);
      const line = (irq: bigint) => ctx.kvm.call(vm, 'KVM_IRQ_LINE', { struct: { irq, level: 1n } });
      assertOutcome(await line(1n << shift), { ret: 0 }, 'a CPU line to vCPU 0 + 1 * 256');
      assertOutcome(await line(0n), { errno: 'EINVAL' }, 'a CPU line to vCPU 0, which the VM does not have');
    },
  },
];

/**
 * IRQ_LINE-VAL-009: arm64's KVM_IRQ_LINE_STATUS copies the struct back although it sets no status, so a
 * read-only struct fails with EFAULT there; KVM_IRQ_LINE never writes it.
 */
const irqLineReadOnly: CaseGenerator = () =>
  (['KVM_IRQ_LINE', 'KVM_IRQ_LINE_STATUS'] as const).map((ioctl) => ({
    params: { ioctl: ioctl === 'KVM_IRQ_LINE' ? 'line' : 'status', arg: 'read-only' },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx, 'vcpu');
      const arg = await structBuffer(ctx, 'kvm_irq_level', { irq: 0n, level: 1n }, { readonly: true });
      const r = await ctx.kvm.call(vm, ioctl, { pointer: { buf: arg } });
      const expected = ioctl === 'KVM_IRQ_LINE' ? { ret: 0 } : { errno: 'EFAULT' };
      assertOutcome(r, expected, `${ioctl} of vCPU 0's IRQ input in read-only memory`);
    },
  }));

/** arm64: the IPA limit KVM_CAP_ARM_VM_IPA_SIZE reports on /dev/kvm is accepted as a VM type, one bit more is not. */
const ipaLimit: CaseGenerator = () =>
  (['limit', 'limit+1'] as const).map((which) => ({
    params: { ipa_bits: which },
    run: async (ctx: CaseContext) => {
      const { system } = await ctx.fixture('system');
      if (system === undefined) throw new Error('fixture system opened no /dev/kvm');
      const cap = ctx.spec.constant('KVM_CAP_ARM_VM_IPA_SIZE', ctx.arch);
      const limit = (await ctx.kvm.call(system, 'KVM_CHECK_EXTENSION', cap, { hostDependent: true })).ret;
      if (limit < 32n) throw new SetupError(`KVM_CAP_ARM_VM_IPA_SIZE answered ${limit}`);
      ctx.note('ipa_limit', String(limit));
      const bits = which === 'limit' ? limit : limit + 1n;
      const r = await ctx.kvm.call(system, 'KVM_CREATE_VM', bits, { hostDependent: true });
      assertOutcome(
        r,
        which === 'limit' ? { ret: { min: 0 } } : { errno: 'EINVAL' },
        `KVM_CREATE_VM, ${bits} IPA bits`,
      );
    },
  }));

const valid: CaseGenerator = (g) => [
  {
    params: { size: '1MiB' },
    run: async (ctx) => {
      const ram = await ctx.kvm.alloc(MiB, { alignment: RAM_ALIGN });
      const r = await ctx.kvm.call(
        await vmOf(ctx),
        'KVM_SET_USER_MEMORY_REGION',
        memslot(0, 0n, BigInt(MiB), ram),
      );
      assertOutcome(r, expectOf(g), 'KVM_SET_USER_MEMORY_REGION of 1 MiB at 0');
    },
  },
];

const unalignedSize: CaseGenerator = (g) => [
  {
    params: { size: '1MiB+1' },
    run: async (ctx) => {
      const ram = await ctx.kvm.alloc(2 * MiB, { alignment: RAM_ALIGN });
      const r = await ctx.kvm.call(
        await vmOf(ctx),
        'KVM_SET_USER_MEMORY_REGION',
        memslot(0, 0n, BigInt(MiB + 1), ram),
      );
      assertOutcome(r, expectOf(g), 'KVM_SET_USER_MEMORY_REGION with size 1 MiB + 1');
    },
  },
];

const s390Segment: CaseGenerator = (g) =>
  (
    [
      ['addr', 4096, MiB],
      ['size', 0, MiB + 4096],
    ] as const
  ).map(([what, offset, size]) => ({
    params: { misaligned: what },
    run: async (ctx: CaseContext) => {
      const ram = await ctx.kvm.alloc(3 * MiB, { alignment: RAM_ALIGN });
      const r = await ctx.kvm.call(
        await vmOf(ctx),
        'KVM_SET_USER_MEMORY_REGION',
        memslot(0, 0n, BigInt(size), ram, offset),
      );
      assertOutcome(
        r,
        expectOf(g),
        `KVM_SET_USER_MEMORY_REGION with a page- but not segment-aligned ${what}`,
      );
    },
  }));

const overlap: CaseGenerator = (g) => [
  {
    params: { slots: '0+1' },
    run: async (ctx) => {
      const vm = await vmOf(ctx);
      const ram = await ctx.kvm.alloc(2 * MiB, { alignment: RAM_ALIGN });
      await ctx.kvm.setup(vm, 'KVM_SET_USER_MEMORY_REGION', memslot(0, 0n, BigInt(2 * MiB), ram));
      const other = await ctx.kvm.alloc(MiB, { alignment: RAM_ALIGN });
      const r = await ctx.kvm.call(
        vm,
        'KVM_SET_USER_MEMORY_REGION',
        memslot(1, BigInt(MiB), BigInt(MiB), other),
      );
      assertOutcome(r, expectOf(g), 'a second slot over the first one');
    },
  },
];

/** One KVM_SET_USER_MEMORY_REGION call (a 1 MiB slot unless `size`), its struct adjusted by `change`. */
async function setSlot(
  ctx: CaseContext,
  vm: number,
  slot: number,
  gpa: bigint,
  ram: Buf | 'invalid',
  change: (s: StructArg) => void = () => {},
  size = BigInt(MiB),
) {
  const struct: StructArg = {
    slot: BigInt(slot),
    flags: 0n,
    guest_phys_addr: gpa,
    memory_size: size,
    userspace_addr: ram === 'invalid' ? 'invalid' : { buf: ram, offset: 0, length: 0 },
  };
  change(struct);
  return ctx.kvm.call(vm, 'KVM_SET_USER_MEMORY_REGION', { struct });
}

async function ramOf(ctx: CaseContext, bytes = MiB): Promise<Buf> {
  return ctx.kvm.alloc(bytes, { alignment: RAM_ALIGN });
}

/** A flag KVM_SET_USER_MEMORY_REGION (v1) does not know: KVM_MEM_GUEST_MEMFD (bit 2) and bit 31. */
const badFlags: CaseGenerator = (g) =>
  [4n, 1n << 31n].map((flags) => ({
    params: { flags: `0x${flags.toString(16)}` },
    run: async (ctx: CaseContext) => {
      const r = await setSlot(ctx, await vmOf(ctx), 0, 0n, await ramOf(ctx), (s) => (s.flags = flags));
      assertOutcome(r, expectOf(g), `KVM_SET_USER_MEMORY_REGION with flags 0x${flags.toString(16)}`);
    },
  }));

/** A guest or user address that is not page-aligned (half a 4 KiB page off). */
const misaligned: CaseGenerator = (g) =>
  (['guest_phys_addr', 'userspace_addr'] as const).map((field) => ({
    params: { misaligned: field },
    run: async (ctx: CaseContext) => {
      const ram = await ramOf(ctx, 2 * MiB);
      const r = await setSlot(ctx, await vmOf(ctx), 0, 0n, ram, (s) => {
        if (field === 'guest_phys_addr') s.guest_phys_addr = 0x800n;
        else s.userspace_addr = { buf: ram, offset: 0x800, length: 0 };
      });
      assertOutcome(r, expectOf(g), `KVM_SET_USER_MEMORY_REGION with ${field} 0x800 off a page`);
    },
  }));

/** A guest range that runs past the top of the 64-bit address space, or ends exactly at it (gpa + size wraps to 0). */
const wraps: CaseGenerator = (g) =>
  [2, 1].map((mib) => ({
    params: { guest_phys_addr: 'top-1MiB', size: `${mib}MiB` },
    run: async (ctx: CaseContext) => {
      const ram = await ramOf(ctx, 2 * MiB);
      const gpa = (1n << 64n) - BigInt(MiB);
      const r = await setSlot(ctx, await vmOf(ctx), 0, gpa, ram, () => {}, BigInt(mib * MiB));
      assertOutcome(r, expectOf(g), `a ${mib} MiB slot 1 MiB below the top of the address space`);
    },
  }));

/** memory_size 0 deletes a slot: one that was never created, or one that was (its range is then free). */
const deleteSlot: CaseGenerator = (g) =>
  (['absent', 'existing'] as const).map((slot) => ({
    params: { slot },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx);
      const ram = await ramOf(ctx);
      if (slot === 'absent') {
        const r = await setSlot(ctx, vm, 0, 0n, ram, () => {}, 0n);
        assertOutcome(r, { errno: 'EINVAL' }, 'deleting slot 0, which does not exist');
        return;
      }
      await ctx.kvm.setup(vm, 'KVM_SET_USER_MEMORY_REGION', memslot(0, 0n, BigInt(MiB), ram));
      assertOutcome(await setSlot(ctx, vm, 0, 0n, ram, () => {}, 0n), expectOf(g), 'deleting slot 0');
      const other = await ramOf(ctx);
      assertOutcome(await setSlot(ctx, vm, 1, 0n, other), expectOf(g), 'slot 1 where slot 0 was');
    },
  }));

/**
 * The same slot again: identical (nothing to change), or with another size, user address or READONLY flag
 * (where READONLY is no valid flag at all, EINVAL comes from the flag check instead).
 */
const modify: CaseGenerator = (g) =>
  (['identical', 'size', 'userspace_addr', 'readonly'] as const).map((change) => ({
    params: { change },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx);
      const ram = await ramOf(ctx, 2 * MiB);
      await ctx.kvm.setup(vm, 'KVM_SET_USER_MEMORY_REGION', memslot(0, 0n, BigInt(MiB), ram));
      const other = await ramOf(ctx);
      const r =
        change === 'identical'
          ? await setSlot(ctx, vm, 0, 0n, ram)
          : change === 'size'
            ? await setSlot(ctx, vm, 0, 0n, ram, () => {}, BigInt(2 * MiB))
            : change === 'readonly'
              ? await setSlot(ctx, vm, 0, 0n, ram, (s) => (s.flags = MEM_READONLY))
              : await setSlot(ctx, vm, 0, 0n, other);
      assertOutcome(r, change === 'identical' ? { ret: 0 } : expectOf(g), `slot 0 again (${change})`);
    },
  }));

/**
 * An existing slot moves to another guest address (same size and user address): the range it left is free
 * for another slot, a move onto another slot's range is EEXIST, and a move overlapping its own old range
 * is fine (only other slots count).
 */
const move: CaseGenerator = (g) =>
  (['away', 'onto-other', 'over-itself'] as const).map((kind) => ({
    params: { move: kind },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx);
      const ram = await ramOf(ctx, 2 * MiB);
      const size = BigInt(2 * MiB);
      await ctx.kvm.setup(vm, 'KVM_SET_USER_MEMORY_REGION', memslot(0, 0n, size, ram));
      if (kind === 'onto-other') {
        const other = await ramOf(ctx, 2 * MiB);
        await ctx.kvm.setup(vm, 'KVM_SET_USER_MEMORY_REGION', memslot(1, 4n * BigInt(MiB), size, other));
        const r = await setSlot(ctx, vm, 0, 4n * BigInt(MiB), ram, () => {}, size);
        assertOutcome(r, { errno: 'EEXIST' }, 'slot 0 moved onto slot 1');
        return;
      }
      const to = kind === 'away' ? 4n * BigInt(MiB) : BigInt(MiB);
      const r = await setSlot(ctx, vm, 0, to, ram, () => {}, size);
      assertOutcome(r, expectOf(g), `slot 0 moved from 0 to 0x${to.toString(16)}`);
      if (kind === 'away') {
        const r2 = await setSlot(ctx, vm, 1, 0n, await ramOf(ctx));
        assertOutcome(r2, { ret: 0 }, 'slot 1 in the range slot 0 left');
      }
    },
  }));

/** A second slot that ends where the first begins, or begins where it ends: they touch, not overlap. */
const adjacent: CaseGenerator = (g) =>
  (['below', 'above'] as const).map((where) => ({
    params: { where },
    run: async (ctx: CaseContext) => {
      const vm = await vmOf(ctx);
      const first = await ramOf(ctx);
      await ctx.kvm.setup(vm, 'KVM_SET_USER_MEMORY_REGION', memslot(0, BigInt(MiB), BigInt(MiB), first));
      const gpa = where === 'below' ? 0n : BigInt(2 * MiB);
      const r = await setSlot(ctx, vm, 1, gpa, await ramOf(ctx));
      assertOutcome(r, expectOf(g), `slot 1 directly ${where} slot 0`);
    },
  }));

/** The highest slot number user space may use, and the first one past it (rule deriveArgs.limit). */
const slotLimit: CaseGenerator = (g) => {
  const limit = Number(g.ref.rule.deriveArgs?.limit);
  if (!Number.isInteger(limit)) throw new Error(`${g.ref.rule.id}: deriveArgs.limit must be the slot limit`);
  return [limit - 1, limit].map((slot) => ({
    params: { slot: String(slot) },
    run: async (ctx: CaseContext) => {
      const r = await setSlot(ctx, await vmOf(ctx), slot, 0n, await ramOf(ctx));
      assertOutcome(r, slot < limit ? { ret: 0 } : expectOf(g), `slot ${slot}`);
    },
  }));
};

/** User memory that is user space but not accessible: KVM checks the range, not the mapping. */
const unmappedRam: CaseGenerator = (g) => [
  {
    params: { userspace_addr: 'invalid' },
    run: async (ctx) => {
      const r = await setSlot(ctx, await vmOf(ctx), 0, 0n, 'invalid');
      assertOutcome(r, expectOf(g), 'a slot backed by an inaccessible user address');
    },
  },
];

/**
 * arm64: the feature set of a VM's first KVM_ARM_VCPU_INIT is the VM's. A later init with another set fails,
 * whether it re-initialises that vCPU or initialises another; the same set is accepted, and so is the same
 * set plus POWER_OFF, which applies to its one call and is no part of the set.
 */
const armFeaturesFixed: CaseGenerator = (g) =>
  (['same-vcpu', 'second-vcpu'] as const).flatMap((vcpu) =>
    (['without-psci-0.2', 'same', 'same+power-off'] as const).map((features) => ({
      params: { vcpu, features },
      run: async (ctx: CaseContext) => {
        const vm = await vmOf(ctx, 'vcpu-initialized');
        const first = await vcpuOf(ctx);
        // The fixture initialised vCPU 0 with PSCI 0.2 alone.
        const psci = psci02(ctx);
        const powerOff = 1n << ctx.spec.constant('KVM_ARM_VCPU_POWER_OFF', 'arm64');
        const set = { 'without-psci-0.2': 0n, same: psci, 'same+power-off': psci | powerOff }[features];
        const which = vcpu === 'same-vcpu' ? first : await ctx.kvm.setupHandle(vm, 'KVM_CREATE_VCPU', 1n);
        const r = await ctx.kvm.call(which, 'KVM_ARM_VCPU_INIT', await vcpuInitArg(ctx, vm, set));
        const what = `KVM_ARM_VCPU_INIT of the ${vcpu} with features 0x${set.toString(16)}`;
        assertOutcome(r, features === 'without-psci-0.2' ? expectOf(g) : { ret: 0 }, what);
      },
    })),
  );

/** A vCPU ready to run (initialised on arm64), kvm_run mapped, immediate_exit set: KVM_RUN is EINTR. */
const immediateExit: CaseGenerator = () =>
  [1, 0xff].map((value) => ({
    params: { immediate_exit: String(value) },
    run: async (ctx: CaseContext) => {
      const vcpu = await vcpuOf(ctx);
      const run = await mapRun(ctx, await ctx.fixture('system'), vcpu);
      await setImmediateExit(ctx, run, value);
      await runInterrupted(ctx, vcpu, String(value));
    },
  }));

export const vmFamily: SuiteFamily = {
  generators: {
    'memslot.bad-flags': badFlags,
    'memslot.misaligned': misaligned,
    'memslot.wraps': wraps,
    'memslot.delete': deleteSlot,
    'memslot.modify': modify,
    'memslot.move': move,
    'memslot.adjacent': adjacent,
    'memslot.slot-limit': slotLimit,
    'memslot.unmapped-ram': unmappedRam,
    'vm.duplicate-vcpu': duplicateVcpu,
    'vm.immediate-exit': immediateExit,
    'vm.vcpu-id-limit': vcpuIdLimit,
    'vm.ipa-limit': ipaLimit,
    'vm.arm64-irq-line-vcpu2': irqLineHighVcpuId,
    'vm.arm64-irq-line-read-only': irqLineReadOnly,
    'vm.arm64-features-fixed': armFeaturesFixed,
    'memslot.valid': valid,
    'memslot.unaligned-size': unalignedSize,
    'memslot.s390-segment': s390Segment,
    'memslot.overlap': overlap,
  },
};
