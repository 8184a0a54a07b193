import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { renderJunit } from '../harness/report/junit.ts';
import type { CaseResult } from '../harness/run/results.ts';
import { packageRoot } from '../harness/paths.ts';
import { resultsOf } from './helpers.ts';

const XSD = path.join(packageRoot, 'harness/report/junit.xsd');
const hasXmllint = spawnSync('xmllint', ['--version']).status === 0;

function result(id: string, status: CaseResult['status'], extra: Partial<CaseResult> = {}): CaseResult {
  return {
    id,
    api: 'ONE_REG',
    rule: 'ONE_REG-ERR-001',
    arch: 'arm64',
    params: {},
    file: 'ioctls/KVM_GET_ONE_REG.json',
    status,
    durationMs: 1.5,
    seed: 7,
    notes: { seed: '42' },
    trace: [],
    unexpected: status !== 'pass',
    ...extra,
  };
}

const cases: CaseResult[] = [
  result('ONE_REG/ONE_REG-ERR-001/arm64/a=1', 'pass'),
  result('ONE_REG/ONE_REG-ERR-001/arm64/a=2', 'fail', {
    message: 'expected ret -1, errno ENOENT, got ret 0 \u0001\u001b[31m <&> "quoted"',
    expected: 'ENOENT',
    actual: 'ret 0',
  }),
  result('ONE_REG/ONE_REG-ERR-001/arm64/a=3', 'error', { message: 'backend error: pipe closed' }),
  result('ONE_REG/ONE_REG-ERR-001/arm64/a=4', 'blocked', {
    message: 'setup failed: KVM_CREATE_VM failed with ENOMEM',
  }),
  result('ONE_REG/ONE_REG-ERR-001/arm64/a=5', 'skip', { message: 'backend does not implement mmap' }),
  result('ONE_REG/ONE_REG-ERR-001/arm64/a=6', 'not-applicable', {
    message: 'capability KVM_CAP_ONE_REG absent',
  }),
  result('SYSTEM/SYSTEM-VAL-001/x86_64/arg=0', 'pass', {
    api: 'SYSTEM',
    rule: 'SYSTEM-VAL-001',
    arch: 'x86_64',
    file: 'ioctls/KVM_GET_API_VERSION.json',
  }),
];

const results = resultsOf(cases, { profiles: [], startedAt: '2026-11-21T12:00:00.000Z', durationMs: 9 });

describe('JUnit XML', () => {
  const xml = renderJunit(results);

  it('is valid against the schema kept in the repository (xmllint)', function () {
    if (!hasXmllint) this.skip(); // test:full installs libxml2-utils
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'kvmspec-junit-')), 'junit.xml');
    writeFileSync(file, xml);
    execFileSync('xmllint', ['--noout', '--schema', XSD, file], { stdio: 'pipe' });
  });

  it('follows GitLab’s rules: every case has a classname, and classname + name are unique', () => {
    const pairs = [...xml.matchAll(/<testcase classname="([^"]+)" name="([^"]+)"/g)].map(
      (m) => `${m[1]}\u0000${m[2]}`,
    );
    expect(pairs).to.have.lengthOf(cases.length);
    expect(new Set(pairs).size).to.equal(pairs.length);
  });

  it('keeps skip reasons, properties mirrored in system-out, and escapes control characters', () => {
    expect(xml).to.include('<skipped message="skip: backend does not implement mmap"/>');
    expect(xml).to.include('<skipped message="not-applicable: capability KVM_CAP_ONE_REG absent"/>');
    expect(xml).to.include('<property name="rule" value="ONE_REG-ERR-001"/>');
    expect(xml).to.include('<property name="note.seed" value="42"/>');
    expect(xml).to.match(/<system-out>rule: ONE_REG-ERR-001\narch: arm64/);
    // eslint-disable-next-line no-control-regex -- asserting that no raw control character remains
    expect(xml).not.to.match(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
    expect(xml).to.include('\\x01\\x1b[31m &lt;&amp;&gt; &quot;quoted&quot;');
    expect(xml).to.include('type="blocked"');
  });
});
