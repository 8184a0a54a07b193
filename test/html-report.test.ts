import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { families } from '../suites/index.ts';
import type { Status } from '../harness/plan/types.ts';
import { renderHtmlSite } from '../harness/render/html-site.ts';
import { planIdsByRule } from '../harness/report/coverage.ts';
import { renderHtmlReport } from '../harness/report/html.ts';
import { readRuns } from '../harness/report/runs.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { caseResult, writeResults } from './fixtures/spec-review/results.ts';
import { cli } from './helpers.ts';

const FIXTURE = path.join(import.meta.dirname, 'fixtures/spec-review/memop');
const HOSTILE = `<script>alert("x")</script> & 'quoted'`;

/** Three runs of five cases: two status changes, one case only the first run has, one in all three. */
const RUNS: [string, [string, Status][]][] = [
  [
    'reference',
    [
      ['A/A-ERR-001/x86_64', 'pass'],
      ['A/A-ERR-002/x86_64', 'pass'],
      ['A/A-ERR-003/arm64', 'pass'],
      ['B/B-VAL-001/x86_64', 'pass'],
      ['B/B-VAL-002/x86_64', 'skip'],
    ],
  ],
  [
    'linux',
    [
      ['A/A-ERR-001/x86_64', 'fail'],
      ['A/A-ERR-002/x86_64', 'pass'],
      ['B/B-VAL-001/x86_64', 'error'],
      ['B/B-VAL-002/x86_64', 'skip'],
    ],
  ],
  ['qemu-arm64', [['A/A-ERR-003/arm64', 'pass']]],
];

describe('HTML reports', () => {
  let dir: string;
  let files: string[];
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-html-'));
    files = RUNS.map(([backend, cases]) =>
      writeResults(
        dir,
        backend,
        backend,
        cases.map(([id, status]) => caseResult(id, status, status === 'pass' ? undefined : HOSTILE)),
      ),
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('report html', () => {
    let html: string;
    before(() => (html = renderHtmlReport(readRuns(files))));

    it('is one self-contained page: inline style and script, nothing fetched', () => {
      expect(html).to.match(/^<!DOCTYPE html>/);
      expect(html).to.not.match(/<link|src=|@import|url\(|https?:/i);
      expect(html.match(/<script>/g)).to.have.lengthOf(1);
    });

    it('totals every run by status', () => {
      const rows = html.split('\n').filter((l) => l.startsWith('<tr class="run">'));
      expect(rows).to.have.lengthOf(3);
      expect(rows[1]).to.contain('<td>linux</td><td class="num total">4</td>');
      expect(rows[1]).to.contain('<td class="num total-fail">1</td><td class="num total-error">1</td>');
    });

    it('highlights exactly the cases whose status differs between runs that have them', () => {
      const changed = html.match(/<tr class="case changed"[^>]*>/g) ?? [];
      expect(changed.map((r) => /data-text="([^"]*)"/.exec(r)?.[1])).to.deep.equal([
        'a/a-err-001/x86_64',
        'b/b-val-001/x86_64',
      ]);
      expect(html).to.contain('<span id="change-count">2</span>');
      expect(html.match(/<tr class="case[ "]/g)).to.have.lengthOf(5);
    });

    it('has per-API and per-rule tables with a column per run', () => {
      expect(html).to.match(
        /<table id="apis-table"><tr><th>API<\/th><th>reference<\/th><th>linux<\/th><th>qemu-arm64<\/th><\/tr>/,
      );
      expect(html).to.contain('<td>A</td><td>3 pass</td><td>1 pass, 1 fail</td><td>1 pass</td>');
      expect(html).to.contain('<td>B-VAL-002</td><td>1 skip</td><td>1 skip</td><td>-</td>');
    });

    it('details every failure with its replay command, escaping what the case reported', () => {
      const failures = html.match(/<details class="failure"/g) ?? [];
      expect(failures).to.have.lengthOf(2);
      expect(html).to.contain(
        '<code class="replay">kvmspec run --backend linux --arch x86_64 --filter &#39;A/A-ERR-001/x86_64&#39;</code>',
      );
      expect(html).to.not.contain('<script>alert');
      expect(html).to.contain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;');
    });

    it('is written by the CLI, which wants --out and at least one results file', async () => {
      const out = path.join(dir, 'report.html');
      expect((await cli(['report', 'html', '--out', out, ...files])).code).to.equal(0);
      expect(readFileSync(out, 'utf8')).to.equal(html);
      expect((await cli(['report', 'html', ...files])).code).to.equal(2);
      expect((await cli(['report', 'html', '--out', out])).code).to.equal(2);
    });
  });

  describe('spec render --format html', () => {
    const spec = loadSpec({ root: FIXTURE });
    const planIds = planIdsByRule(spec, families);
    let results: string;
    before(() => {
      const id = planIds.get('MEMOP-ERR-001')![0]!;
      results = writeResults(dir, 'memop', 'reference', [caseResult(id, 'fail', HOSTILE)]);
    });

    it('writes an index and one page per ioctl, an anchor per rule with its test IDs and outcomes', () => {
      const pages = renderHtmlSite(spec, { planIds, runs: readRuns([results]) });
      expect(pages.map((p) => p.path)).to.deep.equal(['index.html', 'KVM_S390_MEM_OP.html']);
      const page = pages[1]!.content;
      for (const rule of ['MEMOP-ERR-001', 'MEMOP-ERR-002', 'MEMOP-CMPXCHG-001'])
        expect(page).to.contain(`<section class="rule" id="${rule}">`);
      expect(page).to.not.contain('id="MEMOP-PROPOSAL-001"');
      const [id] = planIds.get('MEMOP-ERR-001')!;
      expect(page).to.match(
        new RegExp(
          `<code>${id!}</code></td><td><span class="status status-fail">fail</span> <span class="muted">reference</span>`,
        ),
      );
      expect(page).to.contain('<pre class="struct">struct kvm_s390_mem_op {');
      expect(page).to.not.match(/<link|src=|https?:/i);
    });

    it('shows the errata of the ioctl and of its struct, each with an anchor', () => {
      const page = renderHtmlSite(spec, { planIds, runs: [] })[1]!.content;
      expect(page).to.contain('<section class="erratum" id="MEMOP-ERRATUM-001">');
      expect(page).to.contain('<section class="erratum" id="MEMOP-ERRATUM-002">');
      expect(page).to.not.contain('latest outcome');
    });

    it('renders the proposal revision with its own rules, through the CLI', async () => {
      const out = path.join(dir, 'site');
      const args = [
        'spec',
        'render',
        '--spec',
        FIXTURE,
        '--format',
        'html',
        '--revision',
        'proposal-2022-cmpxchg',
      ];
      expect((await cli([...args, '--out', out, '--results', results])).code).to.equal(0);
      const page = readFileSync(path.join(out, 'KVM_S390_MEM_OP.html'), 'utf8');
      expect(page).to.contain('id="MEMOP-PROPOSAL-001"');
      expect(page).to.contain('__u64 old[2];');
      expect((await cli(args)).code).to.equal(2);
    });
  });
});
