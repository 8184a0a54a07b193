import { memslot } from '../suites/fixtures.ts';
import { expect } from 'chai';
import type { Backend, BackendFactory, IoctlArg } from '../adapters/backend.ts';
import { createReferenceBackend } from '../adapters/reference.ts';
import { decodeStruct, readUint, uintToBytes, writeUint } from '../harness/abi/codec.ts';
import { buildPlan } from '../harness/plan/plan.ts';
import { runSuite } from '../harness/run/runner.ts';
import { KvmSession } from '../harness/session.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { UPSTREAM } from '../harness/spec/tree.ts';
import type { Arch } from '../harness/spec/types.ts';
import { execute, type GuestCpu } from '../reference/arch/arm64/cpu.ts';
import {
  featureIdIndex,
  isVcpuScopedFeatureId,
  POLICY_CHECKS,
  writableMasks,
} from '../reference/arch/arm64/idregs.ts';
import { MAX_GUEST_STEPS, TIME_SLICE_STEPS } from '../reference/arch/arm64/model.ts';
import { PvLock, PvRegion, RUN_DELAY_PER_PREEMPTION_NS, StolenTime } from '../reference/arch/arm64/pv.ts';
import { ID_VALUES, modelSysregs, STATE_VALUES, VCPU_ID_VALUES } from '../reference/arch/arm64/sysregs.ts';
import type { VmFile } from '../reference/kernel.ts';
import { families } from '../suites/index.ts';
import {
  a64,
  mov,
  MMIO_GPA,
  programBytes,
  PVTIME_GPA,
  RAM_GPA,
  RAM_SIZE,
  report,
  smccc,
} from '../suites/arm64-guest.ts';
import { withIoctl } from './gallery/faulty.ts';

const spec = loadSpec();

/** A register file and a flat RAM at RAM_GPA for driving the interpreter directly. */
function machine(words: number[]): { cpu: GuestCpu; ram: Uint8Array; regs: bigint[] } {
  const ram = new Uint8Array(RAM_SIZE);
  words.forEach((w, i) => writeUint(ram, i * 4, 4, BigInt(w), 'little'));
  const regs = new Array<bigint>(31).fill(0n);
  const cpu: GuestCpu = {
    x: (n) => regs[n] ?? 0n,
    setX: (n, v) => (regs[n] = v),
    sp: () => 0n,
    pc: RAM_GPA,
  };
  return { cpu, ram, regs };
}

function memoryOf(ram: Uint8Array) {
  return {
    view: (gpa: bigint, len: number) =>
      gpa >= RAM_GPA && gpa + BigInt(len) <= RAM_GPA + BigInt(ram.length)
        ? ram.subarray(Number(gpa - RAM_GPA), Number(gpa - RAM_GPA) + len)
        : undefined,
  };
}

describe('arm64 spec: SMCCC function ids', () => {
  const c = (name: string) => spec.constant(name, 'arm64');
  const calls: [string, string, 'SMC_32' | 'SMC_64', string][] = [
    ['SMCCC_VERSION', 'ARM_SMCCC_VERSION_FUNC_ID', 'SMC_32', 'ARCH'],
    ['SMCCC_ARCH_FEATURES', 'ARM_SMCCC_ARCH_FEATURES_FUNC_ID', 'SMC_32', 'ARCH'],
    ['PV_TIME_FEATURES', 'ARM_SMCCC_HV_PV_TIME_FEATURES', 'SMC_64', 'STANDARD_HYP'],
    ['PV_TIME_ST', 'ARM_SMCCC_HV_PV_TIME_ST', 'SMC_64', 'STANDARD_HYP'],
    ['PV_LOCK_FEATURES', 'ARM_SMCCC_HV_PV_LOCK_FEATURES', 'SMC_64', 'VENDOR_HYP'],
    ['PV_LOCK_PREEMPTED', 'ARM_SMCCC_HV_PV_LOCK_PREEMPTED', 'SMC_64', 'VENDOR_HYP'],
    ['PSCI_SYSTEM_OFF', 'PSCI_0_2_FN_SYSTEM_OFF', 'SMC_32', 'STANDARD'],
  ];
  for (const [doc, constant, conv, owner] of calls) {
    it(`${doc} is a fast ${conv} call of owner ${owner}, as its constant says`, () => {
      const id = BigInt(spec.hypercall(doc).functionId);
      expect(id).to.equal(c(constant));
      expect((id >> c('ARM_SMCCC_TYPE_SHIFT')) & 1n).to.equal(c('ARM_SMCCC_FAST_CALL'));
      expect((id >> c('ARM_SMCCC_CALL_CONV_SHIFT')) & 1n).to.equal(c(`ARM_SMCCC_${conv}`));
      expect((id >> c('ARM_SMCCC_OWNER_SHIFT')) & c('ARM_SMCCC_OWNER_MASK')).to.equal(
        c(`ARM_SMCCC_OWNER_${owner}`),
      );
      expect((id >> 16n) & 0xffn).to.equal(0n);
    });
  }
});

describe('arm64 reference: the AArch64 interpreter', () => {
  it('runs MOVZ/MOVK in W and X forms; a W write clears the upper half', () => {
    const { cpu, ram, regs } = machine([
      ...mov(0, 0x1122_3344_5566_7788n),
      ...mov(1, 0xffff_ffff_ffff_ffffn),
      a64.movk(1, 0xbeef, 0, false),
      ...mov(2, 0x8000_0000n),
      a64.hvc(0),
    ]);
    const { stop } = execute(cpu, memoryOf(ram), 100);
    expect(stop).to.deep.equal({ kind: 'call', conduit: 'hvc', imm: 0 });
    expect(regs[0]).to.equal(0x1122_3344_5566_7788n);
    expect(regs[1]).to.equal(0xffff_beefn);
    expect(regs[2]).to.equal(0x8000_0000n);
  });

  it('stores into RAM, loads back, and turns an access outside RAM into an MMIO stop on the access', () => {
    const code = [
      ...mov(7, RAM_GPA + 0x800n),
      ...mov(6, 0xabcdn),
      a64.str(6, 7, 16),
      a64.ldr(3, 7, 16),
      ...report(3, 2),
    ];
    const { cpu, ram, regs } = machine(code);
    const { stop } = execute(cpu, memoryOf(ram), 100);
    expect(readUint(ram, 0x810, 8, 'little')).to.equal(0xabcdn);
    expect(regs[3]).to.equal(0xabcdn);
    expect(stop).to.deep.equal({
      kind: 'mmio',
      access: { addr: MMIO_GPA + 16n, len: 8, isWrite: true, data: 0xabcdn, rt: 3 },
    });
    expect(cpu.pc).to.equal(RAM_GPA + BigInt(4 * (code.length - 1)));
  });

  it('uses the current stack pointer as base register 31', () => {
    const { cpu, ram } = machine([...mov(1, 0x5a5an), a64.str(1, 31, 8, false)]);
    cpu.sp = () => RAM_GPA + 0x100n;
    execute(cpu, memoryOf(ram), 3);
    expect(readUint(ram, 0x108, 4, 'little')).to.equal(0x5a5an);
  });

  it('ends with an error on an instruction it does not model, and on a fetch outside RAM', () => {
    const nop = 0xd503201f;
    expect(execute(machine([nop]).cpu, memoryOf(machine([nop]).ram), 10).stop.kind).to.equal('error');
    const { cpu, ram } = machine([]);
    cpu.pc = 0n;
    expect(execute(cpu, memoryOf(ram), 10).stop.kind).to.equal('error');
  });

  it('stops after its budget, so a run can never hang', () => {
    const { cpu, ram } = machine(new Array<number>(64).fill(a64.movz(0, 1, 0, true)));
    expect(execute(cpu, memoryOf(ram), 16)).to.deep.equal({ stop: { kind: 'budget' }, steps: 16 });
  });
});

describe('arm64 reference: CPU model and PV state', () => {
  it('joins a model value to every catalogued system register, and uses every model value', () => {
    const sysregs = modelSysregs(spec);
    expect(sysregs.map((d) => d.name)).to.have.members([
      ...Object.keys(ID_VALUES),
      ...Object.keys(VCPU_ID_VALUES),
      ...Object.keys(STATE_VALUES),
    ]);
    // Fields are checked only by set_id_reg, which handles the feature ID space (op0 3, op1 0/1/3, CRn 0, CRm < 8).
    for (const d of sysregs) {
      const low = d.id & 0xffffn;
      const featureSpace = (low & 0xc7c0n) === 0xc000n && [0n, 1n, 3n].includes((low >> 11n) & 7n);
      if (d.kind !== 'state') expect(featureSpace, d.name).to.equal(true);
      else expect(d.fields, d.name).to.deep.equal([]);
    }
    const catalog = spec.registers('arm64').filter((r) => BigInt(r.id) >> 16n === 0x6030_0000_0013n);
    expect(() =>
      modelSysregs({
        registers: () => [...catalog, { name: 'ID_AA64ISAR3_EL1', id: '0x603000000013c033' }],
      } as unknown as typeof spec),
    ).to.throw(/ID_AA64ISAR3_EL1/);
  });

  it('tells the vCPU-scoped feature ID registers (reset at the first KVM_ARM_VCPU_INIT only) by encoding', () => {
    const scoped = modelSysregs(spec)
      .filter((d) => isVcpuScopedFeatureId(d.id))
      .map((d) => d.name);
    // CTR_EL0 is outside the ID_* block too, but KVM keeps it VM-wide: the model's kind says so.
    expect(scoped).to.have.members(['MPIDR_EL1', 'CLIDR_EL1', 'CTR_EL0', 'MIDR_EL1', 'REVIDR_EL1']);
  });

  it('derives the 192 writable masks from the writable fields, at the index formula', () => {
    const sysregs = modelSysregs(spec);
    const masks = writableMasks(sysregs);
    expect(masks).to.have.lengthOf(192);
    const isar0 = sysregs.find((d) => d.name === 'ID_AA64ISAR0_EL1')!;
    expect(featureIdIndex(isar0.id)).to.equal(48);
    expect(featureIdIndex(0x6030_0000_0013_d801n)).to.equal(129);
    expect(masks[48]).to.equal(0xffff_ffff_ffff_fff0n);
    expect(masks[56]).to.equal(0xff00_f000_ffff_ff0fn);
    expect(masks[129]).to.equal(0x300f_000fn);
    expect(masks[49]).to.equal(0xffff_ffff_00ff_f00fn);
    expect(masks[50]).to.equal(0xffff_0fff_ffff_00ffn);
    expect(masks.filter((m) => m !== 0n)).to.have.lengthOf(15);
  });

  it('reports the masks a real 6.12 reports outside the AArch32 range (PFR*, ZFR0, FPFR0, DFR0, MMFR3, CLIDR)', () => {
    const masks = writableMasks(modelSysregs(spec));
    expect(masks[32]).to.equal(0xffff_00f0_0f00_ffffn);
    expect(masks[33]).to.equal(0xf_0000_00ffn);
    expect(masks[34]).to.equal(0xf_0000_0000n);
    expect(masks[36]).to.equal(0x0ff0_ff0f_0fff_00ffn);
    expect(masks[39]).to.equal(0xf000_0003n);
    expect(masks[40]).to.equal(0xf0_00f0_0f0fn);
    expect(masks[59]).to.equal(0xf_0f0fn);
    expect(masks[65]).to.equal(0x7fff_ffff_ffffn);
    expect(masks.slice(8, 31).every((m) => m === 0n)).to.equal(true);
  });

  it('PV lock: load clears preempted, put marks it only when the vCPU was preempted', () => {
    const ram = new Uint8Array(RAM_SIZE);
    const vm = { guestView: memoryOf(ram).view, memslotAt: () => ({}) } as unknown as VmFile;
    const lock = new PvLock(0n);
    lock.set(vm, 0n, () => RAM_GPA + 0x40n);
    lock.put(vm, false);
    expect(readUint(ram, 0x40, 8, 'little')).to.equal(0n);
    lock.put(vm, true);
    expect(readUint(ram, 0x40, 8, 'little')).to.equal(1n);
    lock.load(vm);
    expect(readUint(ram, 0x40, 8, 'little')).to.equal(0n);
  });

  it('PV time: stolen_time grows by the run delay accrued between loads', () => {
    const ram = new Uint8Array(RAM_SIZE).fill(0xa5);
    const vm = { guestView: memoryOf(ram).view, memslotAt: () => ({}) } as unknown as VmFile;
    const st = new StolenTime(0n);
    st.set(vm, 0n, () => RAM_GPA);
    expect(st.init(vm, 500n)).to.equal(RAM_GPA);
    expect(Array.from(ram.subarray(0, 64)).every((b) => b === 0)).to.equal(true);
    st.update(vm, 2500n);
    expect(readUint(ram, 8, 8, 'little')).to.equal(2000n);
  });
});

/** Runs a guest program on a fresh reference vCPU (PV-time IPA set) and returns kvm_run after one KVM_RUN. */
async function runProgram(words: number[]): Promise<{ run: Record<string, unknown>; ram: Uint8Array }> {
  const kvm = new KvmSession(createReferenceBackend(spec, 'arm64'), spec, 'arm64', 'upstream');
  try {
    const system = await kvm.openSystem();
    const vm = await kvm.setupHandle(system, 'KVM_CREATE_VM', 0n);
    const vcpu = await kvm.setupHandle(vm, 'KVM_CREATE_VCPU', 0n);
    await kvm.setup(vcpu, 'KVM_ARM_VCPU_INIT', {
      struct: { target: 5n, features: [4n, 0n, 0n, 0n, 0n, 0n, 0n] },
    });
    const ram = await kvm.alloc(RAM_SIZE, { alignment: RAM_SIZE });
    await kvm.setup(vm, 'KVM_SET_USER_MEMORY_REGION', memslot(0, RAM_GPA, BigInt(RAM_SIZE), ram));
    await kvm.write(ram, programBytes(words));
    const le = (v: bigint) => `0x${Buffer.from(uintToBytes(v, 8, 'little')).toString('hex')}`;
    await kvm.setup(vcpu, 'KVM_SET_ONE_REG', {
      struct: { id: 0x6030_0000_0010_0040n, addr: { buffer: { size: 8, init: le(RAM_GPA) } } },
    });
    await kvm.setup(vcpu, 'KVM_SET_DEVICE_ATTR', {
      struct: { group: 2n, attr: 0n, addr: { buffer: { size: 8, init: le(PVTIME_GPA) } } },
    });
    const area = await kvm.mmap(vcpu, 8192);
    await kvm.setup(vcpu, 'KVM_RUN', 0n);
    const layout = spec.layout('kvm_run', { arch: 'arm64' });
    return {
      run: decodeStruct(layout, await kvm.read(area, 0, layout.size), 'little'),
      ram: await kvm.read(ram),
    };
  } finally {
    await kvm.release();
  }
}

describe('arm64 suite: ID-register fields come from the spec', () => {
  it('refuses a case-selection entry that names no field of the register catalog', () => {
    const renamed = spec
      .registers('arm64')
      .map((r) =>
        r.name === 'ID_AA64ISAR0_EL1'
          ? { ...r, fields: r.fields!.map((f) => (f.name === 'TME' ? { ...f, name: 'TME2' } : f)) }
          : r,
      );
    const broken = Object.create(spec, { registers: { value: () => renamed } }) as typeof spec;
    expect(() => buildPlan(broken, families, { arches: ['arm64'], revision: UPSTREAM })).to.throw(
      /ID_AA64ISAR0_EL1\.TME/,
    );
    expect(() => buildPlan(spec, families, { arches: ['arm64'], revision: UPSTREAM })).to.not.throw();
  });
});

describe('arm64 reference: KVM_RUN', () => {
  it('preempts a guest that runs past its time slice; the guest sees stolen time grow', async () => {
    const filler = new Array<number>(TIME_SLICE_STEPS).fill(a64.movz(9, 0, 0, true));
    const { run } = await runProgram([
      ...smccc(0xc500_0021n),
      ...filler,
      ...mov(7, PVTIME_GPA),
      a64.ldr(6, 7, 8),
      ...report(6),
    ]);
    expect(run.exit_reason).to.equal(6n);
    const data = (run.data as bigint[]).reduceRight((v, b) => (v << 8n) | b, 0n);
    expect(data).to.equal(RUN_DELAY_PER_PREEMPTION_NS);
  });

  it('ends a run that never exits with KVM_EXIT_INTERNAL_ERROR after the step limit', async () => {
    const { run } = await runProgram(new Array<number>(MAX_GUEST_STEPS + 8).fill(a64.movz(9, 0, 0, true)));
    expect(run.exit_reason).to.equal(17n);
  });

  // The kernel parks a powered-off vCPU in KVM_RUN until a CPU_ON, a suspended one until a wakeup event; the
  // model, single-threaded, ends the run with KVM_EXIT_INTERNAL_ERROR instead (docs/arm64.md). No
  // conformance case can run into that sleep.
  it('ends the KVM_RUN of a powered-off or suspended vCPU at once: one initialised off, one set SUSPENDED, and every vCPU after a SYSTEM_OFF', async () => {
    const kvm = new KvmSession(createReferenceBackend(spec, 'arm64'), spec, 'arm64', 'upstream');
    try {
      const system = await kvm.openSystem();
      const vm = await kvm.setupHandle(system, 'KVM_CREATE_VM', 0n);
      const ram = await kvm.alloc(RAM_SIZE, { alignment: RAM_SIZE });
      await kvm.setup(vm, 'KVM_SET_USER_MEMORY_REGION', memslot(0, RAM_GPA, BigInt(RAM_SIZE), ram));
      const PSCI_0_2 = 4n;
      const POWER_OFF = 1n;
      // vCPU 0 powers the machine off; vCPUs 2 and 3, at RAM_GPA + 0x100, would report to MMIO if they ran.
      await kvm.write(ram, programBytes(smccc(spec.constant('PSCI_0_2_FN_SYSTEM_OFF', 'arm64'))));
      await kvm.write(ram, programBytes(report(0)), 0x100);
      const vcpus: number[] = [];
      for (const [id, features] of [
        [0n, PSCI_0_2],
        [1n, PSCI_0_2 | POWER_OFF],
        [2n, PSCI_0_2],
        [3n, PSCI_0_2],
      ] as const) {
        const vcpu = await kvm.setupHandle(vm, 'KVM_CREATE_VCPU', id);
        await kvm.setup(vcpu, 'KVM_ARM_VCPU_INIT', {
          struct: { target: 5n, features: [features, 0n, 0n, 0n, 0n, 0n, 0n] },
        });
        const pc = RAM_GPA + (id >= 2n ? 0x100n : 0n);
        const le = `0x${Buffer.from(uintToBytes(pc, 8, 'little')).toString('hex')}`;
        await kvm.setup(vcpu, 'KVM_SET_ONE_REG', {
          struct: { id: 0x6030_0000_0010_0040n, addr: { buffer: { size: 8, init: le } } },
        });
        vcpus.push(vcpu);
      }
      const layout = spec.layout('kvm_run', { arch: 'arm64' });
      const exitOf = async (vcpu: number) => {
        const area = await kvm.mmap(vcpu, 8192);
        await kvm.setup(vcpu, 'KVM_RUN', 0n);
        return decodeStruct(layout, await kvm.read(area, 0, layout.size), 'little').exit_reason;
      };
      expect(await exitOf(vcpus[1]!), 'vCPU 1, initialised powered off').to.equal(17n);
      const SUSPENDED = spec.constant('KVM_MP_STATE_SUSPENDED', 'arm64');
      await kvm.setup(vcpus[3]!, 'KVM_SET_MP_STATE', { struct: { mp_state: SUSPENDED } });
      expect(await exitOf(vcpus[3]!), 'vCPU 3, set SUSPENDED').to.equal(17n);
      expect(await exitOf(vcpus[0]!), 'vCPU 0, SYSTEM_OFF').to.equal(24n);
      expect(await exitOf(vcpus[2]!), 'vCPU 2, after the SYSTEM_OFF').to.equal(17n);
    } finally {
      await kvm.release();
    }
  });
});

function faulty(name: string, make: (arch: Arch) => Backend): BackendFactory {
  return { name, arches: () => ['arm64'], create: ({ arch }) => Promise.resolve(make(arch)) };
}

/** A backend that rewrites the argument of one request before the reference sees it. */
function rewriteArg(inner: Backend, request: bigint, rewrite: (arg: IoctlArg) => IoctlArg): Backend {
  return withIoctl(inner, (next, h, req, arg) => next(h, req, req === request ? rewrite(arg) : arg));
}

async function outcomes(factory: BackendFactory, filter: string[], revision = 'upstream') {
  const { results } = await runSuite({
    backend: factory.name,
    factory,
    arches: ['arm64'],
    spec,
    revision,
    selection: { filter },
  });
  return {
    failed: results.cases.filter((c) => c.status === 'fail').map((c) => c.id),
    notPassed: results.cases.filter((c) => c.status !== 'pass').map((c) => `${c.id}: ${c.message}`),
    total: results.cases.length,
  };
}

/** Temporarily replaces a method on a prototype (a deliberately broken reference). */
async function patched<T extends object, K extends keyof T>(
  proto: T,
  key: K,
  impl: T[K],
  body: () => Promise<void>,
) {
  const original = proto[key];
  proto[key] = impl;
  try {
    await body();
  } finally {
    proto[key] = original;
  }
}

describe('the arm64 suite against deliberately broken references', function () {
  this.timeout(60000);
  const plain = faulty('reference', (arch) => createReferenceBackend(spec, arch));
  const plainPvlock = faulty('reference', (arch) =>
    createReferenceBackend(spec, arch, 'proposal-2019-pvlock'),
  );

  it('passes every arm64 case of these suites on the plain reference, in both revisions', async () => {
    const filter = ['ARM_REG_MASKS/**', 'VCPU_ATTR/**', 'SMCCC/**', 'PV_TIME/**', 'PV_LOCK/**', 'PSCI/**'];
    const upstream = await outcomes(plain, filter);
    expect(upstream.notPassed).to.deep.equal([]);
    expect(upstream.total).to.be.greaterThan(200);
    expect((await outcomes(plainPvlock, filter, 'proposal-2019-pvlock')).notPassed).to.deep.equal([]);
  });

  it('catches reserved words of reg_mask_range being ignored', async () => {
    const request = spec.ioctlNumber('KVM_ARM_GET_REG_WRITABLE_MASKS', 'arm64');
    const factory = faulty('reserved-ignored', (arch) =>
      rewriteArg(createReferenceBackend(spec, arch), request, (arg) => {
        if (arg.kind !== 'struct') return arg;
        const image = arg.image.slice();
        image.fill(0, 12, 64);
        return { ...arg, image };
      }),
    );
    const { failed } = await outcomes(factory, ['ARM_REG_MASKS/**']);
    for (let i = 0; i < 13; i++)
      expect(failed).to.include(`ARM_REG_MASKS/ARM_REG_MASKS-ERR-002/arm64/reserved=${i}`);
    expect(failed).to.not.include('ARM_REG_MASKS/ARM_REG_MASKS-VAL-003/arm64/array=guarded');
  });

  it('catches an ID register accepting a raised lower-safe field', async () => {
    await patched(
      POLICY_CHECKS,
      'lower-safe',
      () => true,
      async () => {
        const { failed } = await outcomes(plain, ['ARM_REG_MASKS/ARM_IDREG-*/**']);
        expect(failed).to.include('ARM_REG_MASKS/ARM_IDREG-ERR-001/arm64/reg=ID_AA64ISAR0_EL1,field=AES');
        expect(failed).to.include('ARM_REG_MASKS/ARM_IDREG-ERR-001/arm64/reg=ID_AA64MMFR0_EL1,field=PARANGE');
        expect(failed).to.not.include(
          'ARM_REG_MASKS/ARM_IDREG-ERR-001/arm64/reg=ID_AA64MMFR1_EL1,field=SpecSEI',
        );
      },
    );
  });

  it('catches ID_AA64DFR0_EL1.DebugVer accepted below its floor of 6', async () => {
    await patched(
      POLICY_CHECKS,
      'lower-safe',
      (value, limit) => value <= limit,
      async () => {
        const { failed } = await outcomes(plain, ['ARM_REG_MASKS/ARM_IDREG-ERR-001/**']);
        expect(failed).to.deep.equal([
          'ARM_REG_MASKS/ARM_IDREG-ERR-001/arm64/reg=ID_AA64DFR0_EL1,field=DebugVer',
        ]);
      },
    );
  });

  it('catches signed fields (DoubleLock, TGRAN4, TGRAN64) compared as unsigned', async () => {
    // The suite reads the same spec field, so the model alone is broken: its check sees the raw nibbles.
    const lowerSafe = POLICY_CHECKS['lower-safe'];
    await patched(
      POLICY_CHECKS,
      'lower-safe',
      (value, limit, f) =>
        f.signed
          ? lowerSafe(BigInt.asUintN(4, value), BigInt.asUintN(4, limit), f)
          : lowerSafe(value, limit, f),
      async () => {
        const { failed } = await outcomes(plain, ['ARM_REG_MASKS/ARM_IDREG-VAL-001/**']);
        expect(failed).to.deep.equal([
          'ARM_REG_MASKS/ARM_IDREG-VAL-001/arm64/reg=ID_AA64DFR0_EL1,field=DoubleLock',
          'ARM_REG_MASKS/ARM_IDREG-VAL-001/arm64/reg=ID_AA64MMFR0_EL1,field=TGRAN64',
          'ARM_REG_MASKS/ARM_IDREG-VAL-001/arm64/reg=ID_AA64MMFR0_EL1,field=TGRAN4',
        ]);
      },
    );
  });

  it('catches a PV-time IPA accepted twice', async () => {
    const original = Object.getOwnPropertyDescriptor(PvRegion.prototype, 'set')?.value as PvRegion['set'];
    await patched(
      StolenTime.prototype,
      'set',
      function (this: StolenTime, vm, attr, read) {
        this.base = (1n << 64n) - 1n;
        return original.call(this, vm, attr, read);
      },
      async () => {
        const { failed } = await outcomes(plain, ['VCPU_ATTR/**']);
        expect(failed).to.include('VCPU_ATTR/VCPU_ATTR-ERR-010/arm64/case=set-twice');
        expect(failed).to.include('VCPU_ATTR/VCPU_ATTR-ERR-010/arm64/case=set-twice-unbacked');
      },
    );
  });

  it('catches preempted set the wrong way round (the seed prose reading)', async () => {
    const write = (vm: VmFile, base: bigint, v: bigint) => {
      const bytes = vm.guestView(base, 8);
      if (bytes) writeUint(bytes, 0, 8, v, 'little');
    };
    await patched(
      PvLock.prototype,
      'load',
      function (this: PvLock, vm: VmFile) {
        write(vm, this.base, 1n);
      },
      () =>
        patched(
          PvLock.prototype,
          'put',
          function (this: PvLock, vm: VmFile, preempted: boolean) {
            if (preempted) write(vm, this.base, 0n);
          },
          async () => {
            const { failed } = await outcomes(plainPvlock, ['PV_LOCK/**'], 'proposal-2019-pvlock');
            expect(failed).to.include('PV_LOCK/PV_LOCK-VAL-011/arm64/initial=0');
            expect(failed).to.include('PV_LOCK/PV_LOCK-VAL-011/arm64/initial=1');
            expect(failed).to.include('PV_LOCK/PV_LOCK-VAL-012/arm64/exit=mmio');
          },
        ),
    );
  });
});
