import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Backend, BackendFactory, IoctlArg } from '../adapters/backend.ts';
import { createReferenceBackend } from '../adapters/reference.ts';
import { readUint, writeUint } from '../harness/abi/codec.ts';
import { runSuite } from '../harness/run/runner.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { SpecTree } from '../harness/spec/tree.ts';
import type { Arch } from '../harness/spec/types.ts';

const spec = loadSpec();

/** A reference backend whose ioctl results pass through `mutate`: a realistic implementer bug. */
function faulty(name: string, make: (arch: Arch) => Backend, arches: Arch[]): BackendFactory {
  return { name, arches: () => arches, create: ({ arch }) => Promise.resolve(make(arch)) };
}

function wrapIoctl(
  inner: Backend,
  mutate: (request: bigint, arg: IoctlArg, r: Awaited<ReturnType<Backend['ioctl']>>) => void,
): Backend {
  return Object.assign(Object.create(inner) as Backend, {
    profile: inner.profile,
    ioctl: async (h: number, request: bigint, arg: IoctlArg) => {
      const r = await inner.ioctl(h, request, arg);
      mutate(request, arg, r);
      return r;
    },
  });
}

async function failingIds(factory: BackendFactory, arches: Arch[], filter?: string[]) {
  const { results } = await runSuite({
    backend: factory.name,
    factory,
    arches,
    spec,
    ...(filter ? { selection: { filter } } : {}),
  });
  return results.cases.filter((c) => c.status === 'fail').map((c) => c.id);
}

describe('the suite against deliberately broken references', function () {
  this.timeout(60000);

  it('passes every case on the plain reference, with at least 150 cases on four arches', async () => {
    const { results } = await runSuite({ backend: 'reference', spec });
    expect(results.totals.total).to.be.greaterThanOrEqual(150);
    expect(new Set(results.cases.map((c) => c.arch))).to.have.lengthOf(4);
    expect(
      results.cases.filter((c) => c.status !== 'pass').map((c) => `${c.id}: ${c.message}`),
    ).to.deep.equal([]);
  });

  it('catches arm64 answering EINVAL instead of ENOENT for an unknown register', async () => {
    const factory = faulty(
      'enoent-as-einval',
      (arch) =>
        wrapIoctl(
          createReferenceBackend(spec, arch),
          (_req, _arg, r) => (r.errno = r.errno === 'ENOENT' ? 'EINVAL' : r.errno),
        ),
      ['arm64'],
    );
    const failed = await failingIds(factory, ['arm64']);
    expect(failed).to.include('ONE_REG/ONE_REG-ERR-001/arm64/op=get,id=0x60300000001000d8');
    expect(failed).to.include('ONE_REG/ONE_REG-ERR-004/arm64/reg=TPIDR_EL0,size=U32');
  });

  it('catches KVM_GET_REG_LIST not writing n back on E2BIG', async () => {
    const list = spec.ioctlNumber('KVM_GET_REG_LIST', 'arm64');
    const factory = faulty(
      'reg-list-n-unchanged',
      (arch) =>
        wrapIoctl(createReferenceBackend(spec, arch), (req, arg, r) => {
          if (req === list && r.errno === 'E2BIG' && arg.kind === 'struct' && r.image) {
            writeUint(r.image, 0, 8, readUint(arg.image, 0, 8, 'little'), 'little');
          }
        }),
      ['arm64'],
    );
    const failed = await failingIds(factory, ['arm64'], ['REG_LIST/**']);
    expect(failed).to.include('REG_LIST/REG_LIST-ERR-001/arm64/n=0');
    expect(failed).to.include('REG_LIST/REG_LIST-ERR-001/arm64/n=count-1');
  });

  it('catches an s390 backend that reads struct fields in the wrong byte order', async () => {
    // The backend's own copy of the ABI says s390 is little-endian; the suite's copy stays right.
    const docs = spec.docs.map((d) =>
      d.doc.kind === 'arches'
        ? {
            ...d,
            doc: {
              ...d.doc,
              arches: { ...d.doc.arches, s390x: { ...d.doc.arches.s390x, endian: 'little' as const } },
            },
          }
        : d,
    );
    const wrongEndian = new SpecTree(spec.root, docs);
    const factory = faulty('s390-little-endian', (arch) => createReferenceBackend(wrongEndian, arch), [
      's390x',
    ]);
    const failed = await failingIds(factory, ['s390x']);
    expect(failed).to.include('ONE_REG/ONE_REG-VAL-001/s390x/reg=KVM_REG_S390_TODPR');
    expect(failed).to.include('ONE_REG/ONE_REG-VAL-003/s390x/reg=KVM_REG_S390_GBEA');
  });
});

describe('reports', function () {
  this.timeout(60000);

  it('agree with tap-junit on testcases, skips and non-passes, and kvmspec list shows the run IDs', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-reports-'));
    // An x86 backend that claims Linux 6.12 makes the 6.18 rules not-applicable; an arm64 errno bug makes failures.
    const factory: BackendFactory = {
      name: 'mixed',
      arches: () => ['x86_64', 'arm64'],
      create: ({ arch }) => {
        const b = createReferenceBackend(spec, arch);
        if (arch === 'x86_64')
          return Promise.resolve(
            Object.assign(Object.create(b) as Backend, { profile: { ...b.profile, version: '6.12' } }),
          );
        return Promise.resolve(
          wrapIoctl(b, (_q, _a, r) => (r.errno = r.errno === 'ENOENT' ? 'EINVAL' : r.errno)),
        );
      },
    };
    const reports = {
      junit: path.join(dir, 'junit.xml'),
      tap: path.join(dir, 'results.tap'),
      json: path.join(dir, 'results.json'),
    };
    const { results } = await runSuite({ backend: 'mixed', factory, spec, reports });
    const t = results.totals;
    expect(t.fail).to.be.greaterThan(0);
    expect(t['not-applicable']).to.be.greaterThan(0);
    const ours = readFileSync(reports.junit, 'utf8');
    const count = (xml: string, re: RegExp) => (xml.match(re) ?? []).length;
    const theirs = execFileSync(path.resolve('node_modules/.bin/tap-junit'), ['-p'], {
      input: readFileSync(reports.tap),
    }).toString();
    expect(count(theirs, /<testcase /g))
      .to.equal(count(ours, /<testcase /g))
      .and.to.equal(t.total);
    expect(count(theirs, /<skipped/g))
      .to.equal(count(ours, /<skipped /g))
      .and.to.equal(t.skip + t['not-applicable']);
    expect(count(theirs, /<failure/g))
      .to.equal(count(ours, /<(failure|error) /g))
      .and.to.equal(t.fail + t.error + t.blocked);
    const json = JSON.parse(readFileSync(reports.json, 'utf8')) as { cases: { id: string }[] };
    expect(json.cases).to.have.lengthOf(t.total);
  });
});

describe('expectations', function () {
  this.timeout(60000);

  it('reports a listed failure as expected and flags a listed case that passes', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-expect-'));
    const file = path.join(dir, 'broken.json');
    const failing = 'ONE_REG/ONE_REG-ERR-001/arm64/op=get,id=0x60300000001000d8';
    const passing = 'SYSTEM/SYSTEM-VAL-001/arm64/arg=0';
    writeFileSync(
      file,
      JSON.stringify({
        entries: [
          { id: failing, status: 'fail', reason: 'this backend answers EINVAL for unknown registers' },
          { id: passing, status: 'fail', reason: 'listed although it passes, to prove the flag' },
        ],
      }),
    );
    const factory = faulty(
      'broken',
      (arch) =>
        wrapIoctl(
          createReferenceBackend(spec, arch),
          (_q, _a, r) => (r.errno = r.errno === 'ENOENT' ? 'EINVAL' : r.errno),
        ),
      ['arm64'],
    );
    const { results } = await runSuite({
      backend: 'broken',
      factory,
      spec,
      expectationsFile: file,
      selection: { filter: [failing, passing] },
    });
    const byId = new Map(results.cases.map((c) => [c.id, c]));
    expect(byId.get(failing)).to.include({ status: 'fail', unexpected: false });
    expect(byId.get(passing)).to.include({ status: 'pass', unexpected: true });
    expect(results.totals.unexpected).to.equal(1);
  });
});
