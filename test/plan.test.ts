import { AssertionError, expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { assertBytes, assertField } from '../harness/plan/outcome.ts';
import { buildPlan, uncoveredRules } from '../harness/plan/plan.ts';
import { allErrata } from '../harness/render/errata.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { families } from '../suites/index.ts';
import { cli } from './helpers.ts';

describe('plan', () => {
  const spec = loadSpec();

  it('gives every rule at least one case', () => {
    expect(uncoveredRules(spec, families).map((r) => r.rule.id)).to.deep.equal([]);
  });

  it('makes stable, unique ASCII IDs of the documented shape', () => {
    const plan = buildPlan(spec, families, { arches: spec.arches, revision: 'upstream' });
    const ids = plan.map((c) => c.id);
    expect(new Set(ids).size).to.equal(ids.length);
    for (const id of ids)
      expect(id).to.match(
        /^[A-Z0-9_]+\/[A-Z0-9_]+-[A-Z]+-\d{3}\/(arm64|s390x|x86_64|ppc64le)(\/[\x21-\x7e]+)?$/,
      );
    expect(
      buildPlan(spec, families, { arches: spec.arches, revision: 'upstream' }).map((c) => c.id),
    ).to.deep.equal(ids);
  });

  it('a proposal revision changes only the documents that declare it', () => {
    const upstream = buildPlan(spec, families, { arches: spec.arches, revision: 'upstream' });
    const declaring = new Set(
      spec.rules().flatMap((r) => (r.doc.revisions ?? []).map((v) => `${v.name} ${r.doc.name}`)),
    );
    for (const revision of new Set([...declaring].map((d) => d.split(' ')[0] ?? ''))) {
      const plan = buildPlan(spec, families, { arches: spec.arches, revision });
      const touched = (id: string) =>
        declaring.has(`${revision} ${plan.concat(upstream).find((c) => c.id === id)?.ref.doc.name ?? ''}`);
      const ids = new Set(plan.map((c) => c.id));
      const missing = upstream.filter((c) => !ids.has(c.id) && !touched(c.id)).map((c) => c.id);
      expect(missing, `${revision} drops upstream cases of documents that do not declare it`).to.deep.equal(
        [],
      );
    }
  });

  it('kvmspec list prints the IDs a run executes, and --uncovered nothing', async () => {
    const listed = await cli(['list']);
    const plan = buildPlan(spec, families, { arches: spec.arches, revision: 'upstream' });
    expect(listed.out.trim().split('\n')).to.deep.equal(plan.map((c) => c.id));
    const uncovered = await cli(['list', '--uncovered']);
    expect(uncovered.code).to.equal(0);
    expect(uncovered.out).to.equal('');
  });

  it('rejects bad command lines with exit 2', async () => {
    expect((await cli(['frobnicate'])).code).to.equal(2);
    expect((await cli(['run'])).code).to.equal(2);
    expect((await cli(['run', '--backend', 'nope'])).code).to.equal(2);
    expect((await cli(['list', '--arch', 'mips'])).code).to.equal(2);
  });

  it("kvmspec <command> --help prints that command's usage", async () => {
    const help = await cli(['run', '--help']);
    expect(help.code).to.equal(0);
    expect(help.out).to.match(/^usage: kvmspec run --backend NAME/);
    // After `--` the arguments are the backend program's.
    expect((await cli(['run', '--', 'prog', '--help'])).code).to.equal(2);
  });

  it('kvmspec list into a reader that stops early exits quietly', () => {
    const r = spawnSync('bash', ['-c', 'node bin/kvmspec.js list | head -1; exit ${PIPESTATUS[0]}'], {
      encoding: 'utf8',
    });
    expect(r.stdout.split('\n').filter(Boolean)).to.have.lengthOf(1);
    expect(r.stderr).not.to.include('EPIPE');
    expect(r.status).to.equal(0);
  });

  it('kvmspec spec render writes a C header and syzkaller descriptions', async () => {
    const header = await cli(['spec', 'render', '--format', 'c-header', '--arch', 'arm64']);
    expect(header.code).to.equal(0);
    expect(header.out).to.include('_Static_assert');
    const syz = await cli(['spec', 'render', '--format', 'syzlang']);
    expect(syz.code).to.equal(0);
    expect(syz.out).to.match(/ioctl\$KVM_GET_ONE_REG/);
    expect((await cli(['spec', 'render'])).code).to.equal(2);
    // Errata belong in every rendered form; these two carry them as comments.
    for (const e of allErrata(spec)) {
      expect(header.out).to.include(e.id);
      expect(syz.out).to.include(`# ${e.id}`);
    }
  });

  it('assertBytes shows short byte strings whole and long ones around their first difference', () => {
    const same = new Uint8Array(1 << 20).fill(7);
    expect(() => assertBytes(same, same.slice(), 'ram')).not.to.throw();
    expect(() => assertBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3), 'reg')).to.throw(
      'reg: expected bytes 0103, got 0102',
    );
    const changed = same.slice();
    changed[0x1234] = 8;
    expect(() => assertBytes(changed, same, 'ram')).to.throw(
      `ram: expected 1048576 bytes, at +0x1234: ${'07'.repeat(16)}, got 1048576 bytes, at +0x1234: 08${'07'.repeat(15)}`,
    );
    expect(() => assertBytes(same.subarray(0, 100), same, 'ram')).to.throw('got 100 bytes, at +0x64: ');
  });

  it('assertField fails a wrong value as an assertion, and a field of the wrong shape as a mistake of the case', () => {
    expect(() => assertField(5n, 5n, 'id')).not.to.throw();
    expect(() => assertField([1n, 2n], [1n, 2n], 'regs')).not.to.throw();
    expect(() => assertField(4n, 5n, 'id')).to.throw(AssertionError, 'id: expected 0x5, got 0x4');
    expect(() => assertField([1n, 3n], [1n, 2n], 'regs')).to.throw(AssertionError, 'regs, element 1');
    const errorOf = (f: () => void): unknown => {
      try {
        f();
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const shapes: [bigint | bigint[] | undefined, bigint | bigint[]][] = [
      [[1n], [1n, 2n]],
      [5n, [5n]],
      [[5n], 5n],
      [undefined, 5n],
    ];
    for (const [actual, expected] of shapes) {
      const err = errorOf(() => assertField(actual, expected, 'f'));
      expect(err).to.be.an('error').and.not.to.be.instanceOf(AssertionError);
    }
  });
});
