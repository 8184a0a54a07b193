import path from 'node:path';
import { expect } from 'chai';
import { renderRst, ruledDocs } from '../harness/render/rst.ts';
import { revisionsOf } from '../harness/report/coverage.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { leafFields, type SpecTree } from '../harness/spec/tree.ts';

const fixture = loadSpec({ root: path.join(import.meta.dirname, 'fixtures/spec-review/memop') });
const spec = loadSpec();
const FIELD_LIST = ['Capability', 'Architectures', 'Type', 'Parameters', 'Returns'];

/** The lines of one section: from its heading to the next heading (a line underlined with dashes). */
function section(rst: string, name: string): string[] {
  const lines = rst.split('\n');
  const start = lines.findIndex(
    (l, i) => (l === name || l.endsWith(` ${name}`)) && /^-+$/.test(lines[i + 1] ?? ''),
  );
  expect(start, `section ${name}`).to.be.at.least(0);
  const next = lines.findIndex((l, i) => i > start + 1 && /^-+$/.test(lines[i + 1] ?? '') && l !== '');
  return lines.slice(start, next < 0 ? undefined : next);
}

/** The literal block after `::`, without its indentation. */
function structBlock(lines: string[]): string[] {
  const at = lines.indexOf('::');
  expect(at, 'literal block').to.be.greaterThan(0);
  const end = lines.findIndex((l, i) => i > at + 1 && l === '');
  return lines.slice(at + 2, end).map((l) => l.replace(/^ {2}/, ''));
}

const fieldNames = (block: string[]) => block.flatMap((l) => /^\s*__[us]\d+ (\w+)/.exec(l)?.[1] ?? []);

function memOpTrees(): [string, SpecTree][] {
  const trees: [string, SpecTree][] = [['fixture', fixture]];
  if (spec.ioctls.has('KVM_S390_MEM_OP')) trees.push(['spec/', spec]);
  return trees;
}

describe('spec render --format rst', () => {
  it('gives every ioctl a numbered heading with a matching underline, in section order', () => {
    const rst = renderRst(spec);
    const headings = rst
      .split('\n')
      .flatMap((l, i, all) => (/^-+$/.test(all[i + 1] ?? '') && l ? [{ l, under: all[i + 1]! }] : []));
    expect(headings.length).to.equal(spec.ioctls.size + spec.hypercalls.size);
    for (const { l, under } of headings) expect(under.length).to.equal(l.length);
    const numbered = headings.filter(({ l }) => l.includes(' ')).map(({ l }) => l.split(' ')[0]!.split('.'));
    const keys = numbered.map((n) => n.map(Number));
    expect(keys.flat().every(Number.isInteger)).to.equal(true);
    expect(keys).to.deep.equal([...keys].sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!));
    // Unnumbered sections (no api.rst section yet) come after the numbered ones.
    expect(headings.findIndex(({ l }) => !l.includes(' '))).to.be.oneOf([-1, numbered.length]);
  });

  it('puts the field list in api.rst order right under each heading', () => {
    const rst = renderRst(spec);
    for (const name of spec.ioctls.keys()) {
      const lines = section(rst, name);
      const labels = lines.slice(3, 3 + FIELD_LIST.length).map((l) => /^:([^:]+):/.exec(l)?.[1]);
      expect(labels, name).to.deep.equal(FIELD_LIST);
    }
  });

  for (const [where, tree] of memOpTrees()) {
    it(`renders KVM_S390_MEM_OP (${where}) with upstream's field order, its union and its rules and errata`, () => {
      const lines = section(renderRst(tree), 'KVM_S390_MEM_OP');
      expect(lines[0]).to.match(/^4\.\d+ KVM_S390_MEM_OP$/);
      const block = structBlock(lines);
      expect(block[0]).to.equal('struct kvm_s390_mem_op {');
      expect(block.at(-1)).to.equal('};');
      const layout = tree.layout('kvm_s390_mem_op', { arch: 's390x' });
      expect(fieldNames(block)).to.deep.equal([...leafFields(layout.fields)].map((f) => f.name));
      const union = block.findIndex((l) => /^\tunion \{/.test(l));
      const inner = block.findIndex((l, i) => i > union && /^\t\tstruct \{/.test(l));
      const innerEnd = block.findIndex((l, i) => i > inner && /^\t\t\} \w+;$/.test(l));
      const unionEnd = block.findIndex((l, i) => i > innerEnd && l === '\t};');
      expect([union, inner, innerEnd, unionEnd].every((i) => i > 0)).to.equal(true);
      const doc = tree.ioctl('KVM_S390_MEM_OP');
      const prose = lines.slice(lines.indexOf(block.at(-1)!.replace(/^/, '  ')));
      for (const rule of doc.rules.filter((r) => !r.revisions || r.revisions.includes('upstream')))
        expect(prose.some((l) => l.startsWith(`- \`\`${rule.id}\`\`: `))).to.equal(true);
      const errata = [...(doc.errata ?? []), ...(tree.structs.get('kvm_s390_mem_op')?.doc.errata ?? [])];
      expect(errata.length).to.be.greaterThan(0);
      for (const e of errata) expect(prose.some((l) => l.startsWith(`- \`\`${e.id}\`\`: `))).to.equal(true);
    });
  }

  it('shows a proposal revision its own layout and rules', () => {
    const lines = section(renderRst(fixture, { revision: 'proposal-2022-cmpxchg' }), 'KVM_S390_MEM_OP');
    expect(fieldNames(structBlock(lines)))
      .to.include('old')
      .and.not.include('old_addr');
    expect(lines.some((l) => l.includes('MEMOP-PROPOSAL-001'))).to.equal(true);
    expect(lines.some((l) => l.includes('MEMOP-CMPXCHG-001'))).to.equal(false);
  });

  it('shows the documents a proposal does not touch as they are upstream', () => {
    const rulesIn = (revision: string) =>
      new Map(ruledDocs(spec, { revision }).map(({ doc, rules }) => [doc.name, rules.map((r) => r.id)]));
    const upstream = rulesIn('upstream');
    for (const revision of revisionsOf(spec).filter((r) => r !== 'upstream')) {
      for (const [name, ids] of rulesIn(revision)) {
        const declares = [...spec.ioctls.values(), ...spec.hypercalls.values()].some(
          ({ doc }) => doc.name === name && doc.revisions?.some((r) => r.name === revision),
        );
        if (!declares) expect(ids, `${revision}: ${name}`).to.deep.equal(upstream.get(name));
      }
    }
  });
});
