// kvmspec verify: a results file is a conformance claim only when it is the whole plan of this spec for the
// arches it covers, run once and cleanly.
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mergeResults } from '../harness/report/merge.ts';
import type { CaseResult, RunResults } from '../harness/run/results.ts';
import { runSuite } from '../harness/run/runner.ts';
import { verifyResults } from '../harness/run/verify.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { families } from '../suites/index.ts';
import { cli } from './helpers.ts';

const spec = loadSpec();

describe('kvmspec verify', function () {
  this.timeout(60000);
  let whole: RunResults;
  before(async () => {
    whole = (await runSuite({ backend: 'reference', spec, arches: ['x86_64'] })).results;
  });
  /** The whole run with its cases changed: each test spoils a copy its own way. */
  const spoiled = (change: (cases: CaseResult[]) => CaseResult[], extra: Partial<RunResults> = {}) =>
    verifyResults({ ...whole, ...extra, cases: change(whole.cases.map((c) => ({ ...c }))) }, spec, families);

  it('takes the whole plan of an arch, every case passed or not applicable, as conformant', () => {
    const v = verifyResults(whole, spec, families);
    expect(v).to.deep.include({ conformant: true, arches: ['x86_64'], problems: [] });
  });

  it('names what is missing, extra or doubled against the plan', () => {
    const [first, second] = whole.cases;
    const v = spoiled((cs) => [...cs.slice(2), { ...first!, id: 'VM/VM-VAL-999/x86_64' }, cs[2]!]);
    expect(v.conformant).to.equal(false);
    expect(v.problems).to.deep.equal([
      `2 planned cases did not run: ${first!.id}, ${second!.id}`,
      '1 cases are not in the plan: VM/VM-VAL-999/x86_64',
      `1 cases appear more than once: ${whole.cases[2]!.id}`,
    ]);
  });

  it('counts an expected failure, a skip, a pass on a retry and a divergence against the claim', () => {
    const ids = whole.cases.slice(0, 4).map((c) => c.id);
    const v = spoiled((cs) => {
      cs[0]!.status = 'fail';
      cs[0]!.expectation = { pattern: ids[0]!, status: 'fail', reason: 'known' };
      cs[1]!.status = 'skip';
      cs[2]!.flaky = true;
      cs[3]!.divergences = [
        { call: 1, ioctl: 'KVM_GET_ONE_REG', what: 'errno', ours: 'null', theirs: 'EINVAL' },
      ];
      return cs;
    });
    expect(v.problems).to.deep.equal([
      `1 cases ended fail: ${ids[0]}`,
      `1 cases ended skip: ${ids[1]}`,
      `1 cases passed only on a retry: ${ids[2]}`,
      `1 cases ran differently on the other backend: ${ids[3]}`,
    ]);
  });

  it('takes shards merged back together as the whole run; merging shards of two specs is refused', async () => {
    const shards = await Promise.all(
      [1, 2].map(
        async (index) =>
          (
            await runSuite({
              backend: 'reference',
              spec,
              arches: ['x86_64'],
              selection: { shard: { index, count: 2 } },
            })
          ).results,
      ),
    );
    const parts = shards.map((results, i) => ({ file: `shard-${i + 1}.json`, results }));
    expect(verifyResults(shards[0]!, spec, families).conformant).to.equal(false);
    expect(verifyResults(mergeResults(parts), spec, families)).to.deep.include({
      conformant: true,
      problems: [],
    });
    parts[1]!.results = { ...parts[1]!.results, specDigest: '0'.repeat(64) };
    expect(() => mergeResults(parts)).to.throw(/shard-2\.json: ran spec 000000000000, shard-1\.json spec/);
  });

  it('refuses a run of another spec, and one with no cases', () => {
    expect(spoiled((cs) => cs, { specDigest: 'f'.repeat(64) }).problems[0]).to.match(
      /^the run used another spec \(digest ffffffffffff, this spec [0-9a-f]{12}\)$/,
    );
    expect(spoiled(() => []).problems).to.deep.equal(['the run has no cases']);
  });

  it('as a command: exit 0 and one line when conformant, 1 and the problems when not, 2 for a bad file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-verify-'));
    const good = path.join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(whole));
    const ok = await cli(['verify', good]);
    expect(ok.code).to.equal(0);
    expect(ok.out).to.match(
      /^kvmspec verify: reference on x86_64 \(revision upstream\): conformant, \d+ cases, spec [0-9a-f]{12}\n$/,
    );
    const part = path.join(dir, 'part.json');
    writeFileSync(part, JSON.stringify({ ...whole, cases: whole.cases.slice(1) }));
    const no = await cli(['verify', part]);
    expect(no.code).to.equal(1);
    expect(no.out).to.include(': not conformant\n  - 1 planned cases did not run: ');
    const bad = await cli(['verify', path.join(dir, 'missing.json')]);
    expect(bad.code).to.equal(2);
    expect(bad.err).to.include('missing.json: cannot read results');
    const other = path.join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ schemaVersion: 1, cases: [] }));
    const wrong = await cli(['verify', other]);
    expect(wrong.code).to.equal(2);
    expect(wrong.err).to.include('other.json: not a kvmspec results file');
  });
});
