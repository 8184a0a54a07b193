// The benchmark plumbing: pairs that alternate, the ratio they report, and the script that forks one
// process per benchmark, records a benchmark that dies or hangs, and still writes its report whole.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { costRatio, measurePairs, median, throughputShare } from '../bench/measure.ts';

const script = path.resolve(import.meta.dirname, '../scripts/bench.ts');

function bench(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
}

/** Spins for `ms` milliseconds: a body with a known cost that no timer coarseness hides. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('bench: measurement', () => {
  it('median takes the middle sample (the upper middle of an even count) and leaves its input alone', () => {
    const xs = [5, 1, 3];
    expect(median(xs)).to.equal(3);
    expect(xs).to.deep.equal([5, 1, 3]);
    expect(median([4, 1, 3, 2])).to.equal(3);
  });

  it('measurePairs alternates ours and the baseline, and its ratio is the median of the pairs', async () => {
    const order: string[] = [];
    const paired = await measurePairs(
      3,
      () => {
        order.push('ours');
        spin(12);
      },
      () => {
        order.push('baseline');
        spin(3);
      },
    );
    expect(order).to.deep.equal(['ours', 'baseline', 'ours', 'baseline', 'ours', 'baseline']);
    expect(paired.ours.samples).to.have.length(3);
    expect(paired.baseline.samples).to.have.length(3);
    const pairRatios = paired.ours.samples.map((s, i) => s / paired.baseline.samples[i]!);
    expect(paired.ratio).to.be.closeTo(median(pairRatios), 0.05);
    // Each ours spins four times as long as its baseline; only the machine's load can add to either.
    expect(paired.ratio).to.be.greaterThan(2);
  });

  it('a cost ratio is met at or under its limit, a throughput share at or over its share', () => {
    expect(costRatio('c', 3, 1, 'ms', 3)).to.include({ ratio: 3, met: true, target: '<= 3x' });
    expect(costRatio('c', 3.1, 1, 'ms', 3).met).to.equal(false);
    expect(throughputShare('t', 1, 4, 'MB/s', 0.25)).to.include({ ratio: 0.25, met: true, target: '>= 25%' });
    expect(throughputShare('t', 0.9, 4, 'MB/s', 0.25).met).to.equal(false);
  });
});

describe('bench: the script', function () {
  this.timeout(150_000);

  it('refuses an unknown benchmark, option or timeout before measuring anything (exit 2)', () => {
    for (const args of [['--only', 'memop,nope'], ['--section', 'nope'], ['--bogus'], ['--timeout', '0']]) {
      const r = bench(args);
      expect(r.status, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(/^bench: /m);
    }
    expect(bench(['--only', 'nope']).stderr).to.include('there are suiteVsMocha, protocol, linux, memop');
  });

  it('records a benchmark that outlives --timeout, goes on to the next, writes the report whole and exits 1', () => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'kvmspec-bench-test-')), 'bench.json');
    // Each of the two needs seconds (a spec load, then thousands of calls); 0.2 s always cuts them off.
    const r = bench(['--quick', '--only', 'memop,specScale', '--timeout', '0.2', '--out', out]);
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stdout).to.include('ERROR  memop: timed out after 0.2 s');
    expect(r.stdout).to.include('ERROR  specScale: timed out after 0.2 s');
    const report = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
    expect(report.memop).to.deep.equal({ error: 'timed out after 0.2 s' });
    expect(report.specScale).to.deep.equal({ error: 'timed out after 0.2 s' });
    expect(report).to.include.keys('at', 'host');
    expect(report).to.not.have.property('linux');
  });

  it('runs one benchmark in its own process and reports its figures', () => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'kvmspec-bench-test-')), 'bench.json');
    const r = bench(['--only', 'specScale', '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/spec growth/);
    const report = JSON.parse(readFileSync(out, 'utf8')) as {
      specScale: { points: { factor: number; cases: number }[] };
    };
    expect(report.specScale.points.map((p) => p.factor)).to.deep.equal([1, 4, 16]);
    const [one, four, sixteen] = report.specScale.points;
    expect(four!.cases).to.equal(4 * one!.cases);
    expect(sixteen!.cases).to.equal(16 * one!.cases);
  });
});
