import { expect } from 'chai';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildPlan } from '../harness/plan/plan.ts';
import { selectCases, shardOf } from '../harness/plan/select.ts';
import { renderKtap } from '../harness/report/ktap.ts';
import { renderSummary, SUMMARY_LIMIT } from '../harness/report/summary.ts';
import type { CaseResult, RunResults } from '../harness/run/results.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { families } from '../suites/index.ts';
import { cli, resultsOf } from './helpers.ts';

const spec = loadSpec();
const plan = buildPlan(spec, families, { arches: spec.arches, revision: 'upstream' });
const tmp = () => mkdtempSync(path.join(tmpdir(), 'kvmspec-ci-'));

/** A small KTAP reader: enough to check nesting, plans and results. */
function parseKtap(
  text: string,
): { api: string; ok: boolean; plan: number; cases: { ok: boolean; name: string; skip: boolean }[] }[] {
  const lines = text.trimEnd().split('\n');
  expect(lines[0]).to.equal('KTAP version 1');
  const top = Number(/^1\.\.(\d+)$/.exec(lines[1] ?? '')?.[1]);
  const apis: ReturnType<typeof parseKtap> = [];
  let current: { plan: number; cases: { ok: boolean; name: string; skip: boolean }[] } = {
    plan: 0,
    cases: [],
  };
  for (const line of lines.slice(2)) {
    const nested = /^ {4}(.*)$/.exec(line)?.[1];
    if (nested !== undefined) {
      const planMatch = /^1\.\.(\d+)$/.exec(nested);
      if (planMatch) current.plan = Number(planMatch[1]);
      const r = /^(ok|not ok) (\d+) (\S+)( # SKIP.*)?$/.exec(nested);
      if (r) current.cases.push({ ok: r[1] === 'ok', name: r[3] ?? '', skip: Boolean(r[4]) });
      continue;
    }
    const r = /^(ok|not ok) (\d+) (\S+)$/.exec(line);
    if (r) {
      apis.push({ api: r[3] ?? '', ok: r[1] === 'ok', ...current });
      current = { plan: 0, cases: [] };
    }
  }
  expect(apis).to.have.lengthOf(top);
  return apis;
}

describe('selection and shards', () => {
  it('splits the plan into disjoint, complete, stable and balanced shards', () => {
    const n = 4;
    const shards = Array.from({ length: n }, (_, i) =>
      selectCases(plan, { shard: { index: i + 1, count: n } }),
    );
    const all = shards.flat().map((c) => c.id);
    expect(new Set(all).size).to.equal(plan.length);
    expect(all.length).to.equal(plan.length);
    for (const s of shards) expect(s.length).to.be.within((plan.length / n) * 0.8, (plan.length / n) * 1.2);
    // A case's shard depends on its ID alone: dropping half the plan moves nothing.
    const half = plan.filter((_, i) => i % 2 === 0);
    for (const c of half) expect(shardOf(c.id, n)).to.equal(shards.findIndex((s) => s.includes(c)) + 1);
  });

  it('selects by rule glob and by tag', () => {
    const byRule = selectCases(plan, { rules: ['REG_LIST-*'] });
    expect(byRule.length).to.be.greaterThan(0);
    expect(byRule.every((c) => c.rule.startsWith('REG_LIST-'))).to.equal(true);
    const vectors = selectCases(plan, { tags: ['vector'] });
    expect(vectors.length).to.be.greaterThan(0).and.lessThan(plan.length);
    expect(vectors.every((c) => c.tags.includes('vector'))).to.equal(true);
  });

  it('two shards run separately and merged give the same cases as one run', async function () {
    this.timeout(60000);
    const dir = tmp();
    const runShard = (i: number) =>
      cli([
        'run',
        '--backend',
        'reference',
        '--arch',
        'x86_64',
        '--shard',
        `${i}/2`,
        '--json',
        path.join(dir, `s${i}.json`),
        '--junit',
        path.join(dir, `s${i}.xml`),
        '--tap',
        path.join(dir, `s${i}.tap`),
      ]);
    expect((await runShard(1)).code).to.equal(0);
    expect((await runShard(2)).code).to.equal(0);
    const merged = path.join(dir, 'merged.json');
    const r = await cli([
      'report',
      'merge',
      '--json',
      merged,
      '--junit',
      path.join(dir, 'merged.xml'),
      path.join(dir, 's1.json'),
      path.join(dir, 's2.json'),
    ]);
    expect(r.code, r.err).to.equal(0);
    const ids = (JSON.parse(readFileSync(merged, 'utf8')) as RunResults).cases.map((c) => c.id).sort();
    const listed = (await cli(['list', '--arch', 'x86_64'])).out.trim().split('\n').sort();
    expect(ids).to.deep.equal(listed);
    const dup = await cli([
      'report',
      'merge',
      '--json',
      path.join(dir, 'dup.json'),
      path.join(dir, 's1.json'),
      path.join(dir, 's1.json'),
    ]);
    expect(dup.code).to.equal(2);
    expect(dup.err).to.match(/is in both/);
  });
});

describe('parallel workers', () => {
  it('--jobs 2 reports the same cases, in the same order and with the same outcomes, as one worker', async function () {
    this.timeout(120000);
    const dir = tmp();
    const args = (name: string) => [
      '--json',
      path.join(dir, `${name}.json`),
      '--junit',
      path.join(dir, `${name}.xml`),
      '--tap',
      path.join(dir, `${name}.tap`),
    ];
    const select = ['run', '--backend', 'reference', '--arch', 'x86_64', '--arch', 's390x'];
    expect((await cli([...select, ...args('one')])).code).to.equal(0);
    const two = await cli([...select, '--jobs', '2', ...args('two')]);
    expect(two.code, two.err).to.equal(0);
    const outcome = (name: string) =>
      (JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8')) as RunResults).cases.map(
        (c) => `${c.id} ${c.status}`,
      );
    expect(outcome('two')).to.deep.equal(outcome('one'));
  });
});

describe('KTAP and the Markdown summary', () => {
  const cases: CaseResult[] = plan.slice(0, 40).map((c, i) => ({
    id: c.id,
    api: c.api,
    rule: c.rule,
    arch: c.arch,
    params: c.params,
    file: c.file,
    status: i % 10 === 3 ? 'fail' : i % 10 === 5 ? 'not-applicable' : 'pass',
    durationMs: 1,
    seed: i,
    ...(i % 10 === 3
      ? { message: 'expected ret 0, got errno # EINVAL\nsecond line' }
      : i % 10 === 5
        ? { message: 'no capability' }
        : {}),
    notes: {},
    trace: [],
    unexpected: i % 10 === 3,
  }));

  it('writes KTAP v1 nested per API that parses back to the same results', () => {
    const apis = parseKtap(renderKtap(resultsOf(cases)));
    const back = apis.flatMap((a) => a.cases);
    expect(back.map((c) => c.name)).to.deep.equal(cases.map((c) => c.id));
    expect(back.map((c) => c.ok)).to.deep.equal(cases.map((c) => c.status !== 'fail'));
    expect(back.filter((c) => c.skip)).to.have.lengthOf(
      cases.filter((c) => c.status === 'not-applicable').length,
    );
    for (const a of apis) {
      expect(a.plan).to.equal(a.cases.length);
      expect(a.ok).to.equal(a.cases.every((c) => c.ok));
    }
  });

  it('keeps the summary under GitHub’s limit, failures first', () => {
    const many = Array.from({ length: 3000 }, (_, i) => ({
      ...cases[3]!,
      id: `${cases[3]!.id}/n=${i}`,
      message: 'x'.repeat(200),
    }));
    const text = renderSummary(resultsOf([...cases, ...many]));
    expect(Buffer.byteLength(text)).to.be.at.most(SUMMARY_LIMIT);
    expect(text).to.match(/more failing cases are not listed/);
    const small = renderSummary(resultsOf(cases));
    expect(small.indexOf('**unexpected** fail')).to.be.greaterThan(small.indexOf('| total |'));
    expect(small).not.to.match(/not listed/);
  });
});
