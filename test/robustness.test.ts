import { expect } from 'chai';
import type { Backend, BackendFactory, IoctlArg } from '../adapters/backend.ts';
import { createReferenceBackend } from '../adapters/reference.ts';
import { buildPlan } from '../harness/plan/plan.ts';
import { runSuite } from '../harness/run/runner.ts';
import { KvmSession } from '../harness/session.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import type { Arch } from '../harness/spec/types.ts';
import { families } from '../suites/index.ts';

const spec = loadSpec();

/** The reference with one ioctl replaced: it never answers, or it always fails with an errno. */
function sabotaged(name: string, ioctl: string, behaviour: string): BackendFactory {
  return {
    name,
    arches: () => ['x86_64', 'arm64'],
    create: ({ arch }) => {
      const inner = createReferenceBackend(spec, arch);
      const request = spec.ioctlNumber(ioctl, arch);
      const b: Backend = Object.assign(Object.create(inner) as Backend, {
        profile: inner.profile,
        ioctl: (h: number, req: bigint, arg: IoctlArg) => {
          if (req !== request) return inner.ioctl(h, req, arg);
          if (behaviour === 'hang') return new Promise<never>(() => undefined);
          return Promise.resolve({ ret: -1n, errno: behaviour, spans: [] });
        },
      });
      return Promise.resolve(b);
    },
  };
}

describe('a run survives a broken backend', function () {
  this.timeout(60000);

  it('cuts a case whose backend never answers at the timeout, marks it error, and goes on', async () => {
    const arches: Arch[] = ['x86_64'];
    const { results } = await runSuite({
      backend: 'hang',
      factory: sabotaged('hang', 'KVM_GET_API_VERSION', 'hang'),
      spec,
      arches,
      timeoutMs: 150,
      selection: { filter: ['SYSTEM/**'] },
    });
    const hung = results.cases.filter((c) => c.rule === 'SYSTEM-VAL-001' || c.rule === 'SYSTEM-ERR-001');
    expect(hung.length).to.be.greaterThan(0);
    for (const c of hung)
      expect(c)
        .to.include({ status: 'error' })
        .and.to.have.property('message')
        .that.matches(/timed out/);
    const others = results.cases.filter((c) => !hung.includes(c));
    expect(others.length).to.be.greaterThan(0);
    expect(others.every((c) => c.status === 'pass')).to.equal(true);
  });

  it('reports every planned case once when a setup step is broken: those cases are blocked, with the cause', async () => {
    const arches: Arch[] = ['x86_64', 'arm64'];
    const { results } = await runSuite({
      backend: 'novm',
      factory: sabotaged('novm', 'KVM_CREATE_VM', 'ENOMEM'),
      spec,
      arches,
    });
    const planned = buildPlan(spec, families, { arches, revision: 'upstream' }).map((c) => c.id);
    expect(results.cases.map((c) => c.id)).to.deep.equal(planned);
    const blocked = results.cases.filter((c) => c.status === 'blocked');
    expect(blocked.length).to.be.greaterThan(100);
    expect(
      blocked.every((c) => /setup failed: KVM_CREATE_VM failed with ENOMEM/.test(c.message ?? '')),
    ).to.equal(true);
    // The cases that need no VM still run and pass; VM-VAL-001, which checks KVM_CREATE_VM itself, fails.
    expect(results.cases.find((c) => c.rule === 'SYSTEM-VAL-001')?.status).to.equal('pass');
    expect(results.cases.find((c) => c.rule === 'VM-VAL-001')?.status).to.equal('fail');
  });
});

describe('the reference backend', () => {
  it('hands out zeroed memory, also when it reuses a freed buffer', async () => {
    const backend = createReferenceBackend(spec, 's390x');
    const size = 1 << 20;
    const first = await backend.alloc({ size });
    await backend.write(first, 0, new Uint8Array(size).fill(0xa5));
    await backend.free(first);
    const again = await backend.alloc({ size, init: Uint8Array.of(1, 2, 3) });
    const bytes = await backend.read(again, 0, size);
    expect([...bytes.subarray(0, 4)]).to.deep.equal([1, 2, 3, 0]);
    expect(bytes.subarray(3).every((b) => b === 0)).to.equal(true);
  });
});

describe('KvmSession.release', () => {
  it('closes every file and frees every buffer the case made, kvm_run mappings included, in one batch', async () => {
    const inner = createReferenceBackend(spec, 'x86_64');
    const freed: number[] = [];
    const closed: number[] = [];
    // Answers arrive a macrotask later, as from a process or an agent; count how many wait at once.
    let waiting = 0;
    let mostWaiting = 0;
    const later = async (work: () => Promise<void>) => {
      mostWaiting = Math.max(mostWaiting, ++waiting);
      await new Promise((resolve) => setImmediate(resolve));
      waiting--;
      return work();
    };
    const backend: Backend = Object.assign(Object.create(inner) as Backend, {
      profile: inner.profile,
      free: (id: number) => (freed.push(id), later(() => inner.free(id))),
      close: (h: number) => (closed.push(h), later(() => inner.close(h))),
    });
    const kvm = new KvmSession(backend, spec, 'x86_64', 'upstream');
    const system = await kvm.openSystem();
    const vm = await kvm.setupHandle(system, 'KVM_CREATE_VM', 0n);
    const vcpu = await kvm.setupHandle(vm, 'KVM_CREATE_VCPU', 0n);
    const ram = await kvm.alloc(4096);
    const size = await kvm.setup(system, 'KVM_GET_VCPU_MMAP_SIZE');
    const run = await kvm.mmap(vcpu, Number(size.ret));
    await kvm.release();
    expect(closed).to.deep.equal([vcpu, vm, system]);
    expect(freed).to.deep.equal([run.id, ram.id]);
    expect(mostWaiting, 'all five requests were outstanding together').to.equal(5);
  });
});
