// The package's entry point, imported by name as a user's script would: the library the CLI is built on.
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as kvmspec from 'kvmspec';

describe('kvmspec as a library', function () {
  this.timeout(60000);

  it('runs a selection against a backend by name and writes the reports it is asked for', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-library-'));
    const junit = path.join(dir, 'junit.xml');
    const { results, unusable } = await kvmspec.runSuite({
      backend: 'reference',
      arches: ['x86_64'],
      selection: { filter: ['SYSTEM/**'] },
      reports: { junit },
    });
    expect(unusable).to.deep.equal([]);
    expect(results.totals.total).to.be.greaterThan(0);
    expect(results.totals.pass).to.equal(results.totals.total);
    expect(kvmspec.runIsAsExpected(results)).to.equal(true);
    expect(readFileSync(junit, 'utf8')).to.include('<testcase classname="spec.ioctls.');
    expect(existsSync(path.join(dir, 'results.json'))).to.equal(false);
  });

  it('takes a backend of the caller’s own through the same contract, and names its errors by code', async () => {
    const spec = kvmspec.loadSpec();
    const plan = kvmspec.planRun(spec, (await import('../suites/index.ts')).families, ['arm64'], 'upstream', {
      filter: ['SYSTEM/**'],
    });
    let opened = 0;
    const factory: kvmspec.BackendFactory = {
      name: 'counting',
      arches: () => ['arm64'],
      create: ({ arch }) => {
        const inner = kvmspec.createReferenceBackend(spec, arch);
        return Promise.resolve(
          Object.assign(Object.create(inner) as kvmspec.Backend, {
            profile: inner.profile,
            open: (p: string) => {
              opened++;
              return inner.open(p);
            },
          }),
        );
      },
    };
    const { results } = await kvmspec.runSuite({
      backend: 'counting',
      factory,
      spec,
      selection: { filter: ['SYSTEM/**'] },
    });
    expect(results.cases.map((c) => c.id)).to.deep.equal(plan.map((c) => c.id));
    expect(opened).to.be.at.least(plan.length);
    expect(() => kvmspec.backendFactory('no-such-backend')).to.throw(kvmspec.KvmspecError);
    expect(kvmspec.backendNames()).to.include('reference');
  });
});
