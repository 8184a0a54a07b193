import { expect } from 'chai';
import {
  BackendError,
  type Backend,
  type BackendFactory,
  type BackendProfile,
  type IoctlResult,
} from '../adapters/backend.ts';
import { createReferenceBackend, referenceFactory } from '../adapters/reference.ts';
import { runSuite } from '../harness/run/runner.ts';
import { compareCase } from '../harness/run/diff.ts';
import { runIsAsExpected, type CaseResult } from '../harness/run/results.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import type { Arch } from '../harness/spec/types.ts';

const spec = loadSpec();
const reference = { backend: 'reference', factory: referenceFactory };

/** The arm64 reference with its ioctl results changed after the fact, and optionally its profile. */
function altered(mutate: (r: IoctlResult) => void, profile: Partial<BackendProfile> = {}): BackendFactory {
  return {
    name: 'altered',
    arches: () => ['arm64'],
    create: ({ arch }) => {
      const inner = createReferenceBackend(spec, arch);
      const b: Backend = Object.assign(Object.create(inner) as Backend, {
        profile: { ...inner.profile, ...profile },
        ioctl: async (...args: Parameters<Backend['ioctl']>) => {
          const r = await inner.ioctl(...args);
          mutate(r);
          return r;
        },
      });
      return Promise.resolve(b);
    },
  };
}

const arches: Arch[] = ['arm64'];

describe('differential runs (--diff)', function () {
  this.timeout(60000);

  it('finds no divergence between two runs of the reference', async () => {
    const { results } = await runSuite({ backend: 'reference', spec, arches, diff: reference });
    expect(results.diff).to.deep.equal({ against: 'reference', divergent: 0 });
    expect(runIsAsExpected(results)).to.equal(true);
  });

  it('reports each divergence with its call and what differs, and fails the gate', async () => {
    const factory = altered((r) => (r.errno = r.errno === 'ENOENT' ? 'EINVAL' : r.errno));
    const { results } = await runSuite({
      backend: 'altered',
      factory,
      spec,
      arches,
      diff: reference,
      selection: { rules: ['ONE_REG-ERR-001'] },
    });
    const c = results.cases.find(
      (x) => x.id === 'ONE_REG/ONE_REG-ERR-001/arm64/op=get,id=0x60300000001000d8',
    );
    expect(c?.divergences).to.deep.include({
      call: 0,
      ioctl: '',
      what: 'status',
      ours: 'fail',
      theirs: 'pass',
    });
    expect(c?.divergences?.find((d) => d.what === 'errno')).to.include({
      ioctl: 'KVM_GET_ONE_REG',
      ours: 'EINVAL',
      theirs: 'ENOENT',
    });
    expect(runIsAsExpected(results)).to.equal(false);
  });

  it('compares the bytes behind pointers, except for host-dependent values', async () => {
    // A backend whose every 8-byte value read back has its top byte set: wrong data, right return codes.
    const factory = altered((r) => r.spans.forEach((s) => s.length === 16 && (s[7] = 0xff)));
    const { results } = await runSuite({
      backend: 'altered',
      factory,
      spec,
      arches,
      diff: reference,
      selection: {
        filter: ['ONE_REG/ONE_REG-VAL-001/arm64/reg=X0', 'ONE_REG/ONE_REG-VAL-001/arm64/reg=MIDR_EL1'],
      },
    });
    const [x0, midr] = results.cases;
    expect(x0?.divergences?.map((d) => d.what)).to.deep.equal(['buffer addr']);
    expect(midr?.id).to.match(/MIDR_EL1/);
    expect(midr?.divergences, 'MIDR_EL1 is host-dependent: its value is not compared').to.deep.equal([]);
  });
});

describe('compareCase', () => {
  const withSpan = (hex: string): CaseResult => ({
    id: 'MEM_OP/MEM_OP-ACC-001/s390x',
    api: 'MEM_OP',
    rule: 'MEM_OP-ACC-001',
    arch: 's390x',
    params: {},
    file: 'ioctls/KVM_S390_MEM_OP.json',
    status: 'pass',
    durationMs: 1,
    seed: 1,
    notes: {},
    trace: [
      {
        op: 'ioctl',
        detail: 'KVM_S390_MEM_OP',
        result: 'ret 0',
        call: { ioctl: 'KVM_S390_MEM_OP', ret: '0', errno: null, spans: { buf: hex } },
      },
    ],
    unexpected: false,
  });

  it('shows a long buffer that differs by its lengths and the bytes from the first difference', () => {
    const ours = '00'.repeat(0x100) + 'ff' + '00'.repeat(0xfeff);
    const theirs = '00'.repeat(0x10000);
    expect(compareCase(withSpan(ours), withSpan(theirs), false)).to.deep.equal([
      {
        call: 1,
        ioctl: 'KVM_S390_MEM_OP',
        what: 'buffer buf',
        ours: `65536 bytes, at +0x100: ff${'00'.repeat(15)}`,
        theirs: `65536 bytes, at +0x100: ${'00'.repeat(16)}`,
      },
    ]);
    expect(compareCase(withSpan('0102'), withSpan('0103'), false)[0]).to.include({
      ours: '0102',
      theirs: '0103',
    });
  });
});

describe('claimed profiles are checked against probes', function () {
  this.timeout(30000);

  /** A backend whose claimed capabilities cannot be read the first time the profile check asks for them. */
  function failingProbe(error: Error): BackendFactory {
    const inner = altered(() => undefined);
    return {
      ...inner,
      create: async (options) => {
        const b = await inner.create(options);
        let thrown = false;
        const profile = Object.defineProperty({ ...b.profile }, 'capabilities', {
          get: () => {
            if (thrown) return undefined;
            thrown = true;
            throw error;
          },
        });
        return Object.assign(b, { profile });
      },
    };
  }

  it('lets a broken backend fail its cases, but does not pass a harness error for a clean profile', async () => {
    const run = (error: Error) =>
      runSuite({
        backend: 'altered',
        factory: failingProbe(error),
        spec,
        arches,
        selection: { rules: ['SYSTEM-VAL-001'] },
      });
    const { results } = await run(new BackendError('the backend went away'));
    expect(results.profileMismatches).to.deep.equal([]);
    let thrown: unknown;
    await run(new TypeError('a harness bug')).catch((err: unknown) => (thrown = err));
    expect(thrown).to.be.instanceOf(TypeError);
  });

  it('reports a claimed capability the backend does not have, and one it has but does not claim', async () => {
    const factory = altered(() => undefined, {
      capabilities: { KVM_CAP_ONE_REG: 1, KVM_CAP_S390_MEM_OP: 65536 },
    });
    const { results } = await runSuite({
      backend: 'altered',
      factory,
      spec,
      arches,
      selection: { rules: ['SYSTEM-VAL-001'] },
    });
    expect(results.profileMismatches).to.deep.include({
      arch: 'arm64',
      capability: 'KVM_CAP_S390_MEM_OP',
      claimed: 65536,
      probed: 0,
    });
    expect(results.profileMismatches).to.deep.include({
      arch: 'arm64',
      capability: 'KVM_CAP_USER_MEMORY',
      probed: 1,
    });
    expect(runIsAsExpected(results)).to.equal(false);
  });

  it('accepts a truthful claim', async () => {
    const claims = {
      KVM_CAP_IRQCHIP: 1,
      KVM_CAP_ONE_REG: 1,
      KVM_CAP_USER_MEMORY: 1,
      KVM_CAP_MP_STATE: 1,
      KVM_CAP_ARM_SUPPORTED_REG_MASK_RANGES: 1,
      KVM_CAP_ARM_SYSTEM_SUSPEND: 1,
      KVM_CAP_ARM_VM_IPA_SIZE: 52,
      KVM_CAP_MAX_VCPU_ID: 512,
    };
    const { results } = await runSuite({
      backend: 'altered',
      factory: altered(() => undefined, { capabilities: claims }),
      spec,
      arches,
      selection: { rules: ['SYSTEM-VAL-001'] },
    });
    expect(results.profileMismatches).to.deep.equal([]);
  });
});
