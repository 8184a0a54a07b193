import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { families } from '../suites/index.ts';
import { coverage, planIdsByRule, uncovered } from '../harness/report/coverage.ts';
import { readRuns } from '../harness/report/runs.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import type { IoctlDoc } from '../harness/spec/types.ts';
import { caseResult, writeResults } from './fixtures/spec-review/results.ts';
import { cli } from './helpers.ts';

const FIXTURE = path.join(import.meta.dirname, 'fixtures/spec-review/memop');
const fixture = loadSpec({ root: FIXTURE });

describe('spec coverage', () => {
  let dir: string;
  let files: string[];
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-coverage-'));
    const ids = planIdsByRule(fixture, families);
    const one = (rule: string) => ids.get(rule)![0]!;
    files = [
      writeResults(dir, 'reference', 'reference', [
        caseResult(one('MEMOP-ERR-001'), 'pass'),
        caseResult(one('MEMOP-ERR-002'), 'fail', 'wrong errno'),
        caseResult(one('MEMOP-CMPXCHG-001'), 'not-applicable'),
      ]),
      writeResults(dir, 'linux', 'linux', [caseResult(one('MEMOP-ERR-001'), 'pass')]),
    ];
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("counts each rule's planned cases over all revisions and its outcomes per run", () => {
    const c = coverage(fixture, families, readRuns(files));
    expect(c.runs).to.deep.equal(['reference', 'linux']);
    expect(c.rows.map((r) => r.rule)).to.deep.equal(fixture.rules().map((r) => r.rule.id));
    expect(c.rows.map((r) => r.planned)).to.deep.equal([1, 1, 1, 1]);
    const row = (rule: string) => c.rows.find((r) => r.rule === rule)!.outcomes;
    expect(row('MEMOP-ERR-001')).to.deep.equal([{ pass: 1 }, { pass: 1 }]);
    expect(row('MEMOP-ERR-002')).to.deep.equal([{ fail: 1 }, {}]);
    expect(row('MEMOP-PROPOSAL-001')).to.deep.equal([{}, {}]);
    expect(uncovered(c)).to.deep.equal([]);
  });

  it('names a rule by its own API where it has one, in the matrix and in its test IDs', () => {
    // The SMCCC filter's rules live in the device-attribute ioctl files, whose API is VCPU_ATTR.
    const spec = loadSpec();
    const row = coverage(spec, families, []).rows.find((r) => r.rule === 'SMCCC_FILTER-ERR-001');
    expect(row?.api).to.equal('SMCCC_FILTER');
    const ids = planIdsByRule(spec, families).get('SMCCC_FILTER-ERR-001') ?? [];
    expect(ids.length).to.be.greaterThan(0);
    expect(ids.filter((id) => !id.startsWith('SMCCC_FILTER/'))).to.deep.equal([]);
  });

  it('prints the matrix and exits 0 when every rule has a case', async () => {
    const { code, out } = await cli(['spec', 'coverage', '--spec', FIXTURE, ...files]);
    expect(code).to.equal(0);
    const lines = out.split('\n');
    expect(lines[0]).to.match(/^rule +cases +reference +linux$/);
    expect(lines.find((l) => l.startsWith('MEMOP-ERR-002 '))).to.match(/ 1 +1 fail +-$/);
    expect(out).to.contain('4 rules, 0 without a case');
  });

  it('exits 1 and names the rule when a rule yields no case at all', async () => {
    const tree = path.join(dir, 'tree');
    cpSync(FIXTURE, tree, { recursive: true });
    const file = path.join(tree, 'ioctls/KVM_S390_MEM_OP.json');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as IoctlDoc;
    // A catalog generator over a tree without register catalogs: a valid rule that yields no case.
    doc.rules.push({
      id: 'MEMOP-ERR-099',
      statement: 'A rule whose generator finds nothing to test.',
      sources: [{ note: 'test' }],
      derive: 'one-reg.read-catalog',
    });
    writeFileSync(file, JSON.stringify(doc));
    const { code, out } = await cli(['spec', 'coverage', '--spec', tree]);
    expect(code).to.equal(1);
    expect(out).to.match(/^MEMOP-ERR-099 +NONE$/m);
    expect(out).to.contain('no case: MEMOP-ERR-099');
  });

  it('refuses a file that is not a results file', async () => {
    const bogus = path.join(dir, 'bogus.json');
    writeFileSync(bogus, '{"cases": 3}');
    expect((await cli(['spec', 'coverage', '--spec', FIXTURE, bogus])).code).to.equal(2);
  });
});
