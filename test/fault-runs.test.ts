import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processFactory } from '../adapters/process.ts';
import { planRun, runSuite } from '../harness/run/runner.ts';
import type { RunResults } from '../harness/run/results.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import type { Arch } from '../harness/spec/types.ts';
import { families } from '../suites/index.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const fixture = path.join(here, 'fixtures', 'faulty-backend.js');
const spec = loadSpec();
const arches: Arch[] = ['x86_64'];
const selection = { filter: ['SYSTEM/**', 'VM/**', 'MEMSLOT/**', 'ONE_REG/ONE_REG-ERR-0*/**'] };
/** Requests the reference answers before the fault: enough to be inside a case several cases in. */
const SERVED_REQUESTS = 40;
const hasXmllint = spawnSync('xmllint', ['--version']).status === 0;

/**
 * How long the harness waits for an answer: short, so that the silent modes end soon; the 64 MiB line needs
 * longer to reach the harness's limit on a loaded machine (1.5 s was too short beside a mutation run).
 */
const requestTimeoutMs = (mode: string) => (mode === 'oversized' ? 10000 : 1500);

/** A whole run through the protocol against the fixture in `mode`, with every report written. */
async function faultRun(mode: string, served: boolean) {
  const dir = mkdtempSync(path.join(tmpdir(), `kvmspec-fault-${mode}-`));
  const reports = {
    junit: path.join(dir, 'junit.xml'),
    tap: path.join(dir, 'results.tap'),
    json: path.join(dir, 'results.json'),
  };
  const command = [process.execPath, '--import', 'tsx', fixture, mode];
  if (served) command.push('--after', String(SERVED_REQUESTS));
  const factory = processFactory({
    command,
    cwd: root,
    timeoutMs: requestTimeoutMs(mode),
    handshakeTimeoutMs: 30000,
  });
  const { results } = await runSuite({
    backend: 'process',
    factory,
    spec,
    arches,
    selection,
    reports,
    timeoutMs: 20000,
  });
  return { results, reports };
}

/** Every planned case exactly once, each non-pass with its reason; JUnit, TAP and JSON agree and are valid. */
function expectCompleteRun(results: RunResults, reports: { junit: string; tap: string; json: string }) {
  const planned = planRun(spec, families, arches, 'upstream', selection).map((c) => c.id);
  expect(results.cases.map((c) => c.id)).to.deep.equal(planned);
  const unexplained = results.cases.filter((c) => c.status !== 'pass' && !c.message?.trim());
  expect(unexplained.map((c) => c.id)).to.deep.equal([]);
  if (hasXmllint)
    execFileSync(
      'xmllint',
      ['--noout', '--schema', path.join(root, 'harness/report/junit.xsd'), reports.junit],
      {
        stdio: 'pipe',
      },
    );
  const junit = readFileSync(reports.junit, 'utf8');
  expect(junit.match(/<testcase /g) ?? []).to.have.lengthOf(planned.length);
  const theirs = execFileSync(path.join(root, 'node_modules/.bin/tap-junit'), ['-p'], {
    input: readFileSync(reports.tap),
  }).toString();
  expect(theirs.match(/<testcase /g) ?? []).to.have.lengthOf(planned.length);
  const json = JSON.parse(readFileSync(reports.json, 'utf8')) as RunResults;
  expect(json.cases.map((c) => c.id)).to.deep.equal(planned);
  expect(json.totals.total).to.equal(planned.length);
}

describe('whole runs through the protocol against a backend that breaks: every case reported once, reports valid', function () {
  this.timeout(180000);

  it('crashes at start: every case is an error naming the exit', async () => {
    const { results, reports } = await faultRun('crash-at-start', false);
    expectCompleteRun(results, reports);
    for (const c of results.cases) expect(c.status).to.equal('error');
    expect(results.cases[0]?.message).to.match(/exited with code 3/);
  });

  const midRun: [mode: string, reason: RegExp][] = [
    ['crash-mid-request', /closed its output; it exited with code 139/],
    ['hang', /no response to request \d+ \(\w+\) within 1500 ms/],
    ['garbage', /sent a line that is not JSON: "Hello from a debug print!"/],
    ['truncated', /ended its output in the middle of a line/],
    ['wrong-seq', /answered seq \d+, which is not pending/],
    ['oversized', /line longer than the limit of \d+ bytes/],
    // Node keeps its own reference to fd 1, so the pipe stays open: the harness sees silence.
    ['close-stdout', /no response to request \d+ \(\w+\) within 1500 ms/],
  ];
  for (const [mode, reason] of midRun) {
    it(`${mode} after ${SERVED_REQUESTS} requests: the cases before pass, the rest are errors with the reason`, async () => {
      const { results, reports } = await faultRun(mode, true);
      expectCompleteRun(results, reports);
      expect(results.cases[0]?.status).to.equal('pass');
      const errors = results.cases.filter((c) => c.status === 'error');
      expect(errors.length).to.be.greaterThan(0);
      expect(errors[0]?.message, errors[0]?.message).to.match(reason);
      expect(
        results.cases.every((c) => c.status === 'pass' || c.status === 'error' || c.status === 'blocked'),
      ).to.equal(true);
    });
  }

  it('floods stderr all along: the run completes and every case passes', async () => {
    const { results, reports } = await faultRun('stderr-flood', true);
    expectCompleteRun(results, reports);
    expect(
      results.cases.filter((c) => c.status !== 'pass').map((c) => `${c.id}: ${c.message}`),
    ).to.deep.equal([]);
  });
});
