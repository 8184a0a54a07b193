import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RunResults } from '../harness/run/results.ts';
import { cli } from './helpers.ts';

function reportArgs(): { args: string[]; json: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-cli-'));
  const json = path.join(dir, 'results.json');
  return {
    args: ['--json', json, '--junit', path.join(dir, 'junit.xml'), '--tap', path.join(dir, 'results.tap')],
    json,
  };
}

describe('kvmspec run with a program as the backend', function () {
  this.timeout(60000);

  it('runs the suite through `kvmspec serve` with the same IDs and outcomes as in process', async () => {
    const inProcess = reportArgs();
    const served = reportArgs();
    const select = ['--arch', 's390x', '--filter', 'ONE_REG/**'];
    expect((await cli(['run', '--backend', 'reference', ...select, ...inProcess.args])).code).to.equal(0);
    const r = await cli([
      'run',
      '--backend',
      'process',
      ...select,
      ...served.args,
      '--validate-protocol',
      '--',
      'node',
      'bin/kvmspec.js',
      'serve',
      '--backend',
      'reference',
    ]);
    expect(r.code, r.err).to.equal(0);
    const outcome = (file: string) =>
      (JSON.parse(readFileSync(file, 'utf8')) as RunResults).cases.map((c) => `${c.id} ${c.status}`);
    expect(outcome(served.json)).to.deep.equal(outcome(inProcess.json)).and.to.have.length.greaterThan(40);
  });

  it('exits 3 when the program is no backend at all, and 2 when no program is given', async () => {
    const dead = await cli([
      'run',
      '--backend',
      'process',
      '--arch',
      'arm64',
      ...reportArgs().args,
      '--',
      'false',
    ]);
    expect(dead.code).to.equal(3);
    expect(dead.err).to.match(/unusable/);
    expect((await cli(['run', '--backend', 'process', '--arch', 'arm64'])).code).to.equal(2);
    expect((await cli(['run', '--backend', 'reference', '--', 'true'])).code).to.equal(2);
  });
});

describe('suites/conformance.spec.ts under plain mocha', function () {
  this.timeout(120000);

  it('runs the same cases `kvmspec list` plans, with mocha’s own reporter', async () => {
    const env = { ...process.env, KVMSPEC_BACKEND: 'reference', KVMSPEC_ARCH: 'ppc64le' };
    const out = execFileSync(
      process.execPath,
      [
        'node_modules/mocha/bin/mocha.js',
        '--no-config',
        '--node-option',
        'import=tsx',
        '--reporter',
        'json',
        'suites/conformance.spec.ts',
      ],
      { env },
    ).toString();
    const report = JSON.parse(out) as {
      stats: { passes: number; failures: number };
      passes: { title: string }[];
    };
    const planned = (await cli(['list', '--arch', 'ppc64le'])).out.trim().split('\n');
    expect(report.stats.failures).to.equal(0);
    expect(report.passes.map((t) => t.title).sort()).to.deep.equal([...planned].sort());
  });
});
