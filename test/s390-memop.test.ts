import { memslot } from '../suites/fixtures.ts';
import { expect } from 'chai';
import type { Backend, BackendFactory, IoctlArg, IoctlResult } from '../adapters/backend.ts';
import { createReferenceBackend } from '../adapters/reference.ts';
import { decodeStruct, encodeStruct, writeFields } from '../harness/abi/codec.ts';
import { runSuite } from '../harness/run/runner.ts';
import { KvmSession } from '../harness/session.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import type { VmFile } from '../reference/kernel.ts';

const spec = loadSpec();
const PROPOSAL = 'proposal-2022-cmpxchg';
const MEM_OP = spec.ioctlNumber('KVM_S390_MEM_OP', 's390x');
const layout = spec.layout('kvm_s390_mem_op', { arch: 's390x' });
const F_CHECK_ONLY = spec.constant('KVM_S390_MEMOP_F_CHECK_ONLY', 's390x');
const F_SKEY = spec.constant('KVM_S390_MEMOP_F_SKEY_PROTECTION', 's390x');
const CR0_SPO = spec.constant('S390_CR0_STORAGE_PROTECTION_OVERRIDE', 's390x');
const CREATE_VCPU = spec.ioctlNumber('KVM_CREATE_VCPU', 's390x');
const GET_SREGS = spec.ioctlNumber('KVM_GET_SREGS', 's390x');
const GET_SKEYS = spec.ioctlNumber('KVM_S390_GET_SKEYS', 's390x');

type Ioctl = (inner: Backend, h: number, req: bigint, arg: IoctlArg) => Promise<IoctlResult>;

/** An s390x reference whose KVM_S390_MEM_OP goes through `memop`; every other call is untouched. */
function variant(
  name: string,
  memop: Ioctl,
  revision = 'upstream',
  onVcpu?: (vm: number, vcpu: number) => void,
): BackendFactory {
  return {
    name,
    arches: () => ['s390x'],
    create: () => {
      const inner = createReferenceBackend(spec, 's390x', revision);
      const wrapped = Object.assign(Object.create(inner) as Backend, {
        profile: inner.profile,
        ioctl: async (h: number, req: bigint, arg: IoctlArg) => {
          if (req === MEM_OP && arg.kind === 'struct') return memop(inner, h, req, arg);
          const r = await inner.ioctl(h, req, arg);
          if (req === CREATE_VCPU && r.ret >= 0n) onVcpu?.(h, Number(r.ret));
          return r;
        },
      });
      return Promise.resolve(wrapped);
    },
  };
}

/** CR0 of a vCPU, read the way any client would: KVM_GET_SREGS. */
async function cr0(inner: Backend, vcpu: number): Promise<bigint> {
  const sregs = spec.layout('kvm_sregs', { arch: 's390x' });
  const r = await inner.ioctl(vcpu, GET_SREGS, {
    kind: 'struct',
    image: new Uint8Array(sregs.size),
    pointers: [],
  });
  return (decodeStruct(sregs, r.image ?? new Uint8Array(sregs.size), 'big').crs as bigint[])[0] ?? 0n;
}

/** The storage key of the frame holding gaddr, through KVM_S390_GET_SKEYS. */
async function storageKey(inner: Backend, vm: number, gaddr: bigint): Promise<number> {
  const skeys = spec.layout('kvm_s390_skeys', { arch: 's390x' });
  const buffer = await inner.alloc({ size: 1 });
  const image = encodeStruct(skeys, { start_gfn: gaddr >> 12n, count: 1n, flags: 0n }, 'big');
  const target = { kind: 'buffer' as const, buffer, offset: 0, length: 1 };
  const r = await inner.ioctl(vm, GET_SKEYS, { kind: 'struct', image, pointers: [{ offset: 16, target }] });
  await inner.free(buffer);
  return r.spans[0]?.[0] ?? 0;
}

/** The scalar fields of a KVM_S390_MEM_OP argument. */
function fieldsOf(arg: IoctlArg): { op: bigint; flags: bigint; size: bigint; gaddr: bigint } {
  const f = arg.kind === 'struct' ? decodeStruct(layout, arg.image, 'big') : {};
  const n = (name: string) => (typeof f[name] === 'bigint' ? f[name] : -1n);
  return { op: n('op'), flags: n('flags'), size: n('size'), gaddr: n('gaddr') };
}

function withFlags(arg: IoctlArg, flags: bigint): IoctlArg {
  if (arg.kind !== 'struct') return arg;
  const image = arg.image.slice();
  writeFields(layout, image, { flags }, 'big');
  return { ...arg, image };
}

async function failing(factory: BackendFactory, revision = 'upstream'): Promise<string[]> {
  const { results } = await runSuite({ backend: factory.name, factory, spec, arches: ['s390x'], revision });
  return results.cases.filter((c) => c.status !== 'pass').map((c) => c.id);
}

describe('the s390 memop suite against broken references', function () {
  this.timeout(120000);
  let plain: string[];

  before(async () => {
    plain = await failing(variant('plain', (inner, h, req, arg) => inner.ioctl(h, req, arg)));
  });

  it('passes at least 400 s390x KVM_S390_MEM_OP-family cases on the plain reference', async () => {
    const { results } = await runSuite({ backend: 'reference', spec, arches: ['s390x'] });
    const s390 = results.cases.filter((c) => /^(MEM_OP|SKEYS|SREGS|S390_PSW|IRQ_STATE)\//.test(c.id));
    expect(s390.length).to.be.greaterThanOrEqual(400);
    expect(plain).to.deep.equal([]);
  });

  it('catches a cmpxchg that stores even when the old value does not match', async () => {
    const factory = variant('cmpxchg-always-stores', async (inner, h, req, arg) => {
      const r = await inner.ioctl(h, req, arg);
      const f = fieldsOf(arg);
      const buf = arg.kind === 'struct' ? arg.pointers.find((p) => p.offset === 24)?.target : undefined;
      if (f.op === 6n && r.ret === 0n && buf?.kind === 'buffer') {
        const vm = (inner as ReturnType<typeof createReferenceBackend>).kernel.file(h) as VmFile;
        vm.guestView(f.gaddr, Number(f.size))?.set(await inner.read(buf.buffer, buf.offset, Number(f.size)));
      }
      return r;
    });
    const failed = await failing(factory);
    expect(failed).to.include('MEM_OP/MEM_OP-XCHG-002/s390x/size=8,keys=key0');
    expect(failed).to.include('MEM_OP/MEM_OP-XCHG-002/s390x/size=16,keys=acc-match-fetch-protected');
    expect(failed.filter((id) => id.includes('XCHG-001'))).to.deep.equal([]);
  });

  it('catches CHECK_ONLY skipping the key check', async () => {
    const factory = variant('check-only-no-keys', (inner, h, req, arg) => {
      const { flags } = fieldsOf(arg);
      const checkOnly = (flags & F_CHECK_ONLY) !== 0n;
      return inner.ioctl(h, req, checkOnly ? withFlags(arg, flags & ~F_SKEY) : arg);
    });
    const failed = await failing(factory);
    expect(failed).to.include('MEM_OP/MEM_OP-KEY-005/s390x/path=vcpu,op=write,skey=0x30');
    expect(failed).to.include('MEM_OP/MEM_OP-KEY-005/s390x/path=vm,op=read,skey=0x38');
    expect(failed).to.include('MEM_OP/MEM_OP-ACC-005/s390x/path=vcpu,op=write,scenario=key-mismatch');
  });

  it('catches E2BIG checked before unsupported flags', async () => {
    const factory = variant('e2big-first', (inner, h, req, arg) => {
      const { size } = fieldsOf(arg);
      return size > 65536n
        ? Promise.resolve({ ret: -1n, errno: 'E2BIG', spans: [] })
        : inner.ioctl(h, req, arg);
    });
    const failed = await failing(factory);
    expect(failed).to.include('MEM_OP/MEM_OP-ARG-006/s390x/op=LOGICAL_READ,flags=bit63');
    expect(failed).to.include('MEM_OP/MEM_OP-ARG-006/s390x/op=ABSOLUTE_CMPXCHG,flags=bit63');
    expect(failed.every((id) => id.includes('MEM_OP-ARG-006'))).to.equal(true);
  });

  it('catches the storage-protection override applied to VM absolute accesses', async () => {
    // The implementer's bug: a VM access the key refused is retried when the VM's vCPU has CR0's override
    // on and the frame's ACC is 9, as if a vCPU logical access were being made.
    const vcpus = new Map<number, number>();
    const factory = variant(
      'spo-on-vm',
      async (inner, h, req, arg) => {
        const r = await inner.ioctl(h, req, arg);
        const f = fieldsOf(arg);
        const vcpu = vcpus.get(h);
        if (r.ret !== 4n || (f.op !== 4n && f.op !== 5n) || vcpu === undefined) return r;
        const spo = ((await cr0(inner, vcpu)) & CR0_SPO) !== 0n;
        const acc9 = (await storageKey(inner, h, f.gaddr)) >> 4 === 9;
        return spo && acc9 ? inner.ioctl(h, req, withFlags(arg, f.flags & ~F_SKEY)) : r;
      },
      'upstream',
      (vm, vcpu) => vcpus.set(vm, vcpu),
    );
    const failed = await failing(factory);
    expect(failed).to.include('MEM_OP/MEM_OP-KEY-003/s390x/case=vm-fetch');
    expect(failed).to.include('MEM_OP/MEM_OP-KEY-003/s390x/case=vm-store');
    expect(failed.filter((id) => id.includes('case=acc9'))).to.deep.equal([]);
  });

  it('makes cases of ops newer than the backend kernel not applicable (VM absolute ops on 5.10)', async () => {
    const old: BackendFactory = {
      name: 'linux-5.10',
      arches: () => ['s390x'],
      create: () => {
        const inner = createReferenceBackend(spec, 's390x');
        const profile = { ...inner.profile, version: '5.10' };
        return Promise.resolve(Object.assign(Object.create(inner) as Backend, { profile }));
      },
    };
    const filter = ['MEM_OP/MEM_OP-ACC-002/**'];
    const { results } = await runSuite({
      backend: old.name,
      factory: old,
      spec,
      arches: ['s390x'],
      selection: { filter },
    });
    const status = (id: string) => results.cases.find((c) => c.id === id)?.status;
    expect(status('MEM_OP/MEM_OP-ACC-002/s390x/path=vm,access=read,gaddr=0x100000')).to.equal(
      'not-applicable',
    );
    expect(status('MEM_OP/MEM_OP-ACC-002/s390x/path=vcpu,access=read,gaddr=0x100000')).to.equal('pass');
  });

  it('selects the proposal with --revision; its cases fail on an upstream kernel exactly where the two differ', async () => {
    const proposal = await failing(
      variant('proposal', (inner, h, req, arg) => inner.ioctl(h, req, arg), PROPOSAL),
      PROPOSAL,
    );
    expect(proposal).to.deep.equal([]);
    const upstream = variant('upstream-only', (inner, h, req, arg) => inner.ioctl(h, req, arg));
    const failed = await failing(upstream, PROPOSAL);
    const differ = (id: string) =>
      /MEM_OP-PROP-00[12]\//.test(id) || id === 'MEM_OP/MEM_OP-ARG-014/s390x/fd=vm,op=0x6';
    expect(failed.length).to.equal(21);
    expect(failed.every(differ)).to.equal(true);
  });
});

describe('the s390 reference beyond the suite', () => {
  async function vmWithRam(kvm: KvmSession) {
    const system = await kvm.openSystem();
    const vm = await kvm.setupHandle(system, 'KVM_CREATE_VM', 0n);
    const ram = await kvm.alloc(1 << 20, { alignment: 1 << 20 });
    await kvm.setup(vm, 'KVM_SET_USER_MEMORY_REGION', memslot(0, 0n, 1n << 20n, ram));
    return { system, vm, ram };
  }

  it('answers KVM_S390_GET_SKEYS_NONE until the process has set storage keys', async () => {
    const kvm = new KvmSession(createReferenceBackend(spec, 's390x'), spec, 's390x', 'upstream');
    const { vm } = await vmWithRam(kvm);
    const get = () =>
      kvm.call(vm, 'KVM_S390_GET_SKEYS', {
        struct: { start_gfn: 0n, count: 1n, skeydata_addr: { buffer: { size: 1 } } },
      });
    expect((await get()).ret).to.equal(1n);
    await kvm.setup(vm, 'KVM_S390_SET_SKEYS', {
      struct: { start_gfn: 0n, count: 1n, skeydata_addr: { buffer: { size: 1, init: '0x10' } } },
    });
    const r = await get();
    expect(r.ret).to.equal(0n);
    expect([...(r.spans.skeydata_addr ?? [])]).to.deep.equal([0x10]);
  });

  it('ends KVM_RUN with KVM_EXIT_INTERNAL_ERROR at anything but DIAGNOSE 0x501', async () => {
    const kvm = new KvmSession(createReferenceBackend(spec, 's390x'), spec, 's390x', 'upstream');
    const { system, vm } = await vmWithRam(kvm);
    const vcpu = await kvm.setupHandle(vm, 'KVM_CREATE_VCPU', 0n);
    await kvm.setup(vcpu, 'KVM_S390_SET_INITIAL_PSW', { struct: { mask: 0n, addr: 0x1000n } });
    expect((await kvm.call(vcpu, 'KVM_RUN', 0n)).ret).to.equal(0n);
    const size = await kvm.setup(system, 'KVM_GET_VCPU_MMAP_SIZE');
    const run = await kvm.mmap(vcpu, Number(size.ret));
    const layout = spec.layout('kvm_run', { arch: 's390x' });
    const state = decodeStruct(layout, await kvm.read(run, 0, layout.size), 'big');
    expect(state.exit_reason).to.equal(spec.constant('KVM_EXIT_INTERNAL_ERROR', 's390x'));
  });
});
