import { expect } from 'chai';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Backend, BackendFactory } from '../adapters/backend.ts';
import { createReferenceBackend } from '../adapters/reference.ts';
import { runSuite } from '../harness/run/runner.ts';
import { runIsAsExpected } from '../harness/run/results.ts';
import type { Expectations } from '../harness/run/expectations.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { cli } from './helpers.ts';

const spec = loadSpec();
const UNKNOWN = 'ONE_REG/ONE_REG-ERR-001/arm64/op=get,id=0x60300000001000d8';

/** arm64 reference that answers EINVAL where upstream says ENOENT: fails a known set of cases. */
const einval: BackendFactory = {
  name: 'einval',
  arches: () => ['arm64'],
  create: ({ arch }) => {
    const inner = createReferenceBackend(spec, arch);
    const b: Backend = Object.assign(Object.create(inner) as Backend, {
      profile: inner.profile,
      ioctl: async (...args: Parameters<Backend['ioctl']>) => {
        const r = await inner.ioctl(...args);
        if (r.errno === 'ENOENT') r.errno = 'EINVAL';
        return r;
      },
    });
    return Promise.resolve(b);
  },
};

function expectationsFile(doc: Expectations): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'kvmspec-exp-')), 'einval.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

const run = (file: string) =>
  runSuite({
    backend: 'einval',
    factory: einval,
    spec,
    expectationsFile: file,
    selection: { filter: [UNKNOWN] },
  });

describe('expectations with expiry and conditions', function () {
  this.timeout(30000);

  it('an expired entry excuses nothing and fails the gate', async () => {
    const file = expectationsFile({
      entries: [
        { id: UNKNOWN, status: 'fail', reason: 'known errno bug in this backend', expires: '2001-01-01' },
      ],
    });
    const { results } = await run(file);
    expect(results.cases[0]).to.include({ status: 'fail', unexpected: true });
    expect(results.expectations.expired.map((e) => e.id)).to.deep.equal([UNKNOWN]);
    expect(runIsAsExpected(results)).to.equal(false);
  });

  it('an entry applies only where its conditions hold', async () => {
    const other = expectationsFile({
      entries: [
        { id: UNKNOWN, status: 'fail', reason: 'only on x86, so not here', when: { arch: ['x86_64'] } },
      ],
    });
    expect((await run(other)).results.cases[0]).to.include({ unexpected: true });
    const here = expectationsFile({
      entries: [
        {
          id: 'ONE_REG/**',
          status: 'fail',
          reason: 'arm64 backends at 6.x answer EINVAL',
          when: { arch: ['arm64'], backendVersion: '>=6.1', revision: ['upstream'] },
        },
      ],
    });
    const { results } = await run(here);
    expect(results.cases[0]).to.include({ unexpected: false });
    expect(runIsAsExpected(results)).to.equal(true);
  });

  it('`kvmspec expectations update` proposes entries from a run, keeping existing reasons', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-update-'));
    const out = path.join(dir, 'einval.json');
    const reason = 'this backend reports unknown registers as EINVAL';
    writeFileSync(out, JSON.stringify({ entries: [{ id: UNKNOWN, status: 'fail', reason }] }));
    const json = path.join(dir, 'results.json');
    await runSuite({
      backend: 'einval',
      factory: einval,
      spec,
      expectationsFile: out,
      selection: { filter: ['ONE_REG/ONE_REG-ERR-00*/**'] },
      reports: { json },
    });
    const r = await cli(['expectations', 'update', '--results', json, '--out', out]);
    expect(r.code, r.err).to.equal(0);
    const proposed = JSON.parse(readFileSync(out, 'utf8')) as Expectations;
    expect(proposed.entries.find((e) => e.id === UNKNOWN)?.reason).to.equal(reason);
    expect(proposed.entries.length).to.be.greaterThan(1);
    expect(
      proposed.entries.filter((e) => e.id !== UNKNOWN).every((e) => e.reason.startsWith('unexplained fail')),
    ).to.equal(true);
  });
});
