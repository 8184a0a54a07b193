// --retries: a case that went wrong runs again; it is unexpected only when every attempt was, and one that
// came right on a retry is reported as flaky with every attempt, in every report.
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packageRoot } from '../harness/paths.ts';
import { renderHtmlReport } from '../harness/report/html.ts';
import { renderJunit } from '../harness/report/junit.ts';
import { renderKtap } from '../harness/report/ktap.ts';
import { renderSummary } from '../harness/report/summary.ts';
import { renderTap } from '../harness/report/tap.ts';
import { runIsAsExpected } from '../harness/run/results.ts';
import { runSuite } from '../harness/run/runner.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { cli, dropsBit40 } from './helpers.ts';

const spec = loadSpec();
const X0 = 'ONE_REG/ONE_REG-VAL-003/arm64/reg=X0';
const PC = 'ONE_REG/ONE_REG-VAL-003/arm64/reg=PC';

const run = (faulty: number, retries: number, extra: { expectationsFile?: string } = {}) =>
  runSuite({
    backend: 'drops-bit-40',
    factory: dropsBit40(spec, faulty),
    spec,
    arches: ['arm64'],
    selection: { filter: [X0, PC] },
    retries,
    ...extra,
  });

describe('--retries', function () {
  this.timeout(60000);

  it('a case that comes right on a retry is reported as that attempt, flaky, and the run is as expected', async () => {
    const { results } = await run(1, 2);
    const [x0, pc] = results.cases;
    expect(x0).to.include({ id: X0, status: 'pass', unexpected: false, flaky: true });
    expect(x0!.attempts!.map((a) => a.status)).to.deep.equal(['fail', 'pass']);
    expect(x0!.attempts![0]!.message).to.match(/./);
    // Passed at once: never retried.
    expect(pc).to.include({ id: PC, status: 'pass' });
    expect(pc).to.not.have.any.keys('attempts', 'flaky');
    expect(results.totals).to.include({ total: 2, pass: 2, fail: 0, unexpected: 0 });
    expect(runIsAsExpected(results)).to.equal(true);
  });

  it('a case that goes wrong in every attempt stays unexpected, keeps its first result and lists them all', async () => {
    const { results } = await run(Infinity, 2);
    const x0 = results.cases[0]!;
    expect(x0).to.include({ status: 'fail', unexpected: true });
    expect(x0).to.not.have.property('flaky');
    expect(x0.attempts!.map((a) => a.status)).to.deep.equal(['fail', 'fail', 'fail']);
    expect(x0.message).to.equal(x0.attempts![0]!.message);
    expect(x0.trace?.length).to.be.greaterThan(0);
    expect(runIsAsExpected(results)).to.equal(false);
  });

  it('without --retries nothing runs twice, and an expected failure is never retried', async () => {
    const once = await run(1, 0);
    expect(once.results.cases[0]).to.include({ status: 'fail', unexpected: true });
    expect(once.results.cases[0]).to.not.have.property('attempts');
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'kvmspec-retries-')), 'expected.json');
    writeFileSync(file, JSON.stringify({ entries: [{ id: X0, status: 'fail', reason: 'drops bit 40' }] }));
    const expected = await run(Infinity, 2, { expectationsFile: file });
    expect(expected.results.cases[0]).to.include({ status: 'fail', unexpected: false });
    expect(expected.results.cases[0]).to.not.have.property('attempts');
  });

  it('every report shows the attempts; JUnit as Surefire reruns, valid against our schema', async function () {
    const flaky = (await run(1, 2)).results;
    const stuck = (await run(Infinity, 1)).results;
    const flakyXml = renderJunit(flaky);
    expect(flakyXml).to.include('<property name="attempts" value="fail → pass"/>');
    expect(flakyXml).to.include('<property name="flaky" value="true"/>');
    expect(flakyXml.match(/<flakyFailure message="fail: /g)).to.have.length(1);
    expect(flakyXml).to.not.match(/<failure /);
    const stuckXml = renderJunit(stuck);
    expect(stuckXml.match(/<rerunFailure message="fail: /g)).to.have.length(1);
    expect(stuckXml.match(/<failure /g)).to.have.length(1);
    expect(renderTap(flaky)).to.include('  attempts: "fail → pass"\n  flaky: true');
    expect(renderKtap(flaky)).to.include('    # flaky, attempts: fail, pass');
    expect(renderSummary(flaky)).to.include(`- flaky, right only on a retry: \`${X0}\` (fail → pass)`);
    expect(renderHtmlReport([{ label: 'flaky', file: 'flaky.json', results: flaky }])).to.include(
      '<dt>attempts</dt><dd><code>fail → pass (flaky)</code></dd>',
    );
    if (spawnSync('xmllint', ['--version']).status !== 0) return; // test:full installs libxml2-utils
    const dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-retries-'));
    for (const [name, xml] of [
      ['flaky.xml', flakyXml],
      ['stuck.xml', stuckXml],
    ] as const) {
      writeFileSync(path.join(dir, name), xml);
      execFileSync(
        'xmllint',
        ['--noout', '--schema', path.join(packageRoot, 'harness/report/junit.xsd'), path.join(dir, name)],
        { stdio: 'pipe' },
      );
    }
  });

  it('the CLI takes --retries N and refuses anything but a non-negative integer', async () => {
    const bad = await cli(['run', '--backend', 'reference', '--retries', 'twice']);
    expect(bad.code).to.equal(2);
    expect(bad.err).to.include('--retries');
    const dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-retries-'));
    const ok = await cli([
      'run',
      '--backend',
      'reference',
      '--filter',
      PC,
      '--retries',
      '3',
      '--json',
      path.join(dir, 'results.json'),
      '--junit',
      path.join(dir, 'junit.xml'),
      '--tap',
      path.join(dir, 'results.tap'),
      '--bundles',
      path.join(dir, 'bundles'),
    ]);
    expect(ok.code, ok.err).to.equal(0);
    expect(ok.out).to.include('1 cases: 1 passed');
  });
});
