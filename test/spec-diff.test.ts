import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { families } from '../suites/index.ts';
import { buildPlan } from '../harness/plan/plan.ts';
import { revisionsOf } from '../harness/report/coverage.ts';
import { diffSpecs, type Change, type SpecDiff } from '../harness/spec/diff.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import type { SpecTree } from '../harness/spec/tree.ts';
import type { ConstantsDoc, IoctlDoc } from '../harness/spec/types.ts';
import { cli } from './helpers.ts';

const FIXTURE = path.join(import.meta.dirname, 'fixtures/spec-review/memop');
const fixture = loadSpec({ root: FIXTURE });
const PROPOSAL = 'proposal-2022-cmpxchg';

const find = (changes: Change[], kind: string, subject: string) => {
  const c = changes.find((x) => x.kind === kind && x.subject === subject);
  expect(c, `${kind} ${subject}`).to.not.equal(undefined);
  return c!;
};

/** Test IDs the plan of a spec generates from some rules, for a revision. */
function idsOf(spec: SpecTree, revision: string, rules: string[]): string[] {
  return buildPlan(spec, families, { arches: spec.arches, revision })
    .filter((c) => rules.includes(c.rule))
    .map((c) => c.id);
}

const side = (spec: SpecTree, revision: string, kernel?: string) => ({
  label: revision,
  spec,
  revision,
  ...(kernel ? { kernel } : {}),
});

describe('spec diff', () => {
  describe('the cmpxchg proposal against upstream (fixture tree)', () => {
    let d: SpecDiff;
    before(() => (d = diffSpecs(side(fixture, 'upstream'), side(fixture, PROPOSAL), families)));

    it('reports the struct layout change, field by field, and every test ID of the ioctl', () => {
      const c = find(d.abi, 'struct', 'kvm_s390_mem_op');
      expect(c.arches).to.deep.equal(['s390x']);
      expect(c.details).to.include.members([
        '- old_addr: u64 @40 (union extra, member logical)',
        '+ old: u64[2] @40 (union extra, member logical)',
      ]);
      const rules = fixture.ioctl('KVM_S390_MEM_OP').rules.map((r) => r.id);
      const expected = [
        ...new Set([...idsOf(fixture, 'upstream', rules), ...idsOf(fixture, PROPOSAL, rules)]),
      ];
      expect(c.affects).to.have.members(expected);
    });

    it('reports the proposal-only flag as a flag, and the errno the proposal adds', () => {
      expect(find(d.abi, 'flag', 'KVM_S390_MEMOP_F_CMPXCHG').details).to.deep.equal(['added: 0x8']);
      const errno = find(d.abi, 'errno', 'KVM_S390_MEM_OP');
      expect(errno.details).to.deep.equal(['+ E2BIG']);
      expect(errno.affects).to.deep.equal(idsOf(fixture, PROPOSAL, ['MEMOP-PROPOSAL-001']));
    });

    it('reports the rules each side alone has, with their test IDs, and leaves shared rules out', () => {
      expect(d.rules.map((r) => r.subject)).to.deep.equal(['MEMOP-CMPXCHG-001', 'MEMOP-PROPOSAL-001']);
      expect(find(d.rules, 'rule', 'MEMOP-CMPXCHG-001').details[0]).to.match(/^removed: /);
      expect(find(d.rules, 'rule', 'MEMOP-CMPXCHG-001').affects).to.deep.equal(
        idsOf(fixture, 'upstream', ['MEMOP-CMPXCHG-001']),
      );
      expect(find(d.rules, 'rule', 'MEMOP-PROPOSAL-001').details[0]).to.match(/^added: /);
    });
  });

  it('follows KVM_S390_MEM_OP across its upstream layout revisions (5.7-6.2 against 6.3)', () => {
    const d = diffSpecs(side(fixture, 'upstream', '6.2'), side(fixture, 'upstream', '6.3'), families);
    const c = find(d.abi, 'struct', 'kvm_s390_mem_op');
    expect(c.details).to.deep.equal([
      '+ pad1: u8[6] @34 (union extra, member logical)',
      '+ old_addr: u64 @40 (union extra, member logical)',
    ]);
    expect(d.abi.filter((x) => x.kind === 'ioctl')).to.deep.equal([]); // same size, same number
    expect(d.rules.map((r) => r.subject)).to.deep.equal(['MEMOP-CMPXCHG-001']);
  });

  describe('two spec trees given as folders', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-diff-'));
      cpSync(FIXTURE, dir, { recursive: true });
      const edit = <T>(file: string, change: (doc: T) => void) => {
        const doc = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as T;
        change(doc);
        writeFileSync(path.join(dir, file), JSON.stringify(doc));
      };
      edit<IoctlDoc>('ioctls/KVM_S390_MEM_OP.json', (doc) => {
        doc.number.nr = '0xb2';
        const rule = doc.rules.find((r) => r.id === 'MEMOP-ERR-002')!;
        rule.vectors![0]!.expect.errno = 'ENOMEM';
      });
      edit<ConstantsDoc>('constants/s390_memop.json', (doc) => {
        doc.constants.find((c) => c.name === 'KVM_S390_MEMOP_F_SKEY_PROTECTION')!.value = '0x40';
      });
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('reports ioctl numbers, flag values and errnos in rules, through the CLI', async () => {
      const { code, out } = await cli(['spec', 'diff', FIXTURE, dir, '--json']);
      expect(code).to.equal(0);
      const d = JSON.parse(out) as SpecDiff;
      const allIds = idsOf(
        fixture,
        'upstream',
        fixture.ioctl('KVM_S390_MEM_OP').rules.map((r) => r.id),
      );
      const ioctl = find(d.abi, 'ioctl', 'KVM_S390_MEM_OP');
      expect(ioctl.details).to.deep.equal(['0x4040aeb1 -> 0x4040aeb2']);
      expect(ioctl.affects).to.have.members(allIds);
      expect(find(d.abi, 'flag', 'KVM_S390_MEMOP_F_SKEY_PROTECTION').details).to.deep.equal(['0x4 -> 0x40']);
      expect(find(d.abi, 'errno', 'KVM_S390_MEM_OP').details).to.deep.equal(['+ ENOMEM']);
      const rule = find(d.rules, 'rule', 'MEMOP-ERR-002');
      expect(rule.details).to.include('errnos: ["EINVAL"] -> ["ENOMEM"]');
      expect(rule.affects).to.deep.equal(idsOf(fixture, 'upstream', ['MEMOP-ERR-002']));
    });
  });

  it('names a nested struct field by its path and says which struct it sits in, named or inline', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-diff-nested-'));
    try {
      const spec = loadSpec();
      cpSync(spec.root, dir, { recursive: true });
      const edit = (
        file: string,
        change: (fields: { fields?: { type: string }[]; type?: string }[]) => void,
      ) => {
        const doc = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as {
          layouts: { fields: { fields?: { type: string }[]; type?: string }[] }[];
        };
        change(doc.layouts[0]!.fields);
        writeFileSync(path.join(dir, file), JSON.stringify(doc));
      };
      edit('structs/kvm_segment.json', (fields) => (fields[1]!.type = 'u16'));
      edit('structs/kvm_vcpu_events.json', (fields) => (fields[0]!.fields![4]!.type = 'u16'));
      const d = diffSpecs(
        side(spec, 'upstream'),
        { ...side(loadSpec({ root: dir }), 'upstream'), label: dir },
        families,
      );
      expect(find(d.abi, 'struct', 'kvm_sregs').details).to.include(
        '~ cs.limit: u32 @8 (struct kvm_segment cs) -> u16 @8 (struct kvm_segment cs)',
      );
      expect(find(d.abi, 'struct', 'kvm_vcpu_events').details).to.include(
        '~ exception.error_code: u32 @4 (struct {…} exception) -> u16 @4 (struct {…} exception)',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('diffs every revision of spec/ against upstream within the documents that declare it', () => {
    const spec = loadSpec();
    const proposals = revisionsOf(spec).filter((r) => r !== 'upstream');
    expect(proposals.length).to.be.greaterThan(0);
    for (const revision of proposals) {
      const d = diffSpecs(side(spec, 'upstream'), side(spec, revision), families);
      expect(d.rules.length + d.abi.length, revision).to.be.greaterThan(0);
      const declaring = new Set(
        spec
          .rules()
          .flatMap(({ doc, rule }) => (doc.revisions?.some((r) => r.name === revision) ? [rule.id] : [])),
      );
      for (const c of d.rules) expect(declaring, `${revision}: ${c.subject}`).to.include(c.subject);
      const planned = new Set(
        ['upstream', revision].flatMap((r) =>
          buildPlan(spec, families, { arches: spec.arches, revision: r }).map((c) => c.id),
        ),
      );
      for (const c of [...d.abi, ...d.rules]) for (const id of c.affects) expect(planned).to.include(id);
    }
  });

  it('reports a change at every layout boundary of every struct, in the fixture and in spec/', () => {
    let boundaries = 0;
    for (const spec of [fixture, loadSpec()]) {
      for (const { doc } of spec.structs.values()) {
        for (const layout of doc.layouts.filter((l) => l.revision === 'upstream' && l.until)) {
          const [before, after] = [layout.since ?? '2.6', layout.until!];
          const d = diffSpecs(side(spec, 'upstream', before), side(spec, 'upstream', after), families);
          const found = d.abi.map((c) => `${c.kind} ${c.subject}`);
          expect(found, `${doc.name} ${before} -> ${after}`).to.include(`struct ${doc.name}`);
          boundaries++;
        }
      }
    }
    expect(boundaries).to.be.greaterThan(0);
  });

  it('prints a revision diff of the --spec tree as text', async () => {
    const { code, out } = await cli(['spec', 'diff', 'upstream', PROPOSAL, '--spec', FIXTURE]);
    expect(code).to.equal(0);
    expect(out).to.match(/^spec diff: upstream -> proposal-2022-cmpxchg\n/);
    expect(out).to.contain('  struct kvm_s390_mem_op [s390x]\n    - pad1');
  });

  it('refuses a malformed side', async () => {
    expect((await cli(['spec', 'diff', 'upstream@six', 'upstream', '--spec', FIXTURE])).code).to.equal(2);
    expect((await cli(['spec', 'diff', 'upstream', '--spec', FIXTURE])).code).to.equal(2);
  });
});
