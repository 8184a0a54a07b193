import { expect } from 'chai';
import { hex } from '../harness/spec/int.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { SpecTree } from '../harness/spec/tree.ts';
import type { Located, SpecDoc, StructDoc } from '../harness/spec/types.ts';
import { archView } from '../harness/render/c-header.ts';
import { renderSyzlang } from '../harness/render/syzlang.ts';

/** A syzlang type expression: a name with optional bracketed options (types, numbers or strings). */
interface TypeExpr {
  name: string;
  options: (TypeExpr | string)[];
}

/** Parses one type expression; throws on anything outside this small subset of syzlang. */
function parseType(text: string): TypeExpr {
  let at = 0;
  const expr = (): TypeExpr => {
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(at))?.[0];
    if (!name) throw new Error(`expected a type name at "${text.slice(at)}"`);
    at += name.length;
    const options: (TypeExpr | string)[] = [];
    if (text[at] === '[') {
      do {
        at++;
        while (text[at] === ' ') at++;
        const literal = /^(-?0x[0-9a-f]+|-?[0-9]+|"[^"]*")/.exec(text.slice(at))?.[0];
        if (literal) {
          options.push(literal);
          at += literal.length;
        } else options.push(expr());
      } while (text[at] === ',');
      if (text[at] !== ']') throw new Error(`expected ] at "${text.slice(at)}" in ${text}`);
      at++;
    }
    return { name, options };
  };
  const result = expr();
  if (at !== text.length) throw new Error(`trailing text "${text.slice(at)}" in ${text}`);
  return result;
}

interface Description {
  resources: Set<string>;
  calls: Map<string, { args: Map<string, TypeExpr>; returns?: string }>;
  structs: Map<string, { fields: [string, TypeExpr][]; attrs: string }>;
  unions: Map<string, { fields: [string, TypeExpr][]; attrs: string }>;
}

/** Line-level grammar of the descriptions we emit: comments, resources, calls, struct and union blocks. */
function parseDescription(text: string): Description {
  const d: Description = { resources: new Set(), calls: new Map(), structs: new Map(), unions: new Map() };
  let block: { kind: 'structs' | 'unions'; name: string; fields: [string, TypeExpr][] } | undefined;
  for (const [i, line] of text.split('\n').entries()) {
    const where = `line ${i + 1}: ${line}`;
    if (block) {
      const field = /^\t([a-z_][a-z0-9_]*)\t(.+)$/i.exec(line);
      const close = (block.kind === 'structs' ? /^\}( \[(.+)\])?$/ : /^\]( \[(.+)\])?$/).exec(line);
      if (field?.[1] && field[2]) {
        if (block.fields.some(([n]) => n === field[1])) throw new Error(`duplicate field, ${where}`);
        block.fields.push([field[1], parseType(field[2])]);
      } else if (close) {
        if (d.structs.has(block.name) || d.unions.has(block.name))
          throw new Error(`duplicate type, ${where}`);
        d[block.kind].set(block.name, { fields: block.fields, attrs: close[2] ?? '' });
        block = undefined;
      } else throw new Error(`not a field or block end, ${where}`);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const resource = /^resource ([a-z_][a-z0-9_]*)\[(fd|[a-z_][a-z0-9_]*)\]$/.exec(line);
    const open = /^([a-z_][a-z0-9_]*) ([{[])$/.exec(line);
    const call = /^([a-z_][a-z0-9_]*(\$[A-Za-z0-9_]+)?)\((.*)\)( ([a-z_][a-z0-9_]*))?$/.exec(line);
    if (resource?.[1]) d.resources.add(resource[1]);
    else if (open?.[1]) block = { kind: open[2] === '{' ? 'structs' : 'unions', name: open[1], fields: [] };
    else if (call?.[1] && call[3] !== undefined) {
      if (d.calls.has(call[1])) throw new Error(`duplicate call, ${where}`);
      const args = new Map<string, TypeExpr>();
      for (const arg of call[3].split(/, (?=[a-z_]+ )/)) {
        const [name, ...type] = arg.split(' ');
        if (!name || args.has(name)) throw new Error(`bad argument "${arg}", ${where}`);
        args.set(name, parseType(type.join(' ')));
      }
      d.calls.set(call[1], { args, ...(call[5] ? { returns: call[5] } : {}) });
    } else throw new Error(`unrecognised, ${where}`);
  }
  if (block) throw new Error(`block ${block.name} is not closed`);
  return d;
}

const INTS: Record<string, number> = { int8: 1, int16: 2, int32: 4, int64: 8, intptr: 8 };
const DIRECTIONS = new Set(['in', 'out', 'inout']);
const KNOWN_CONSTS = new Set(['AT_FDCWD', 'O_RDWR']);

/** Checks that every name a type uses is defined, and returns its size in bytes (varlen arrays count 0). */
function sizeOf(t: TypeExpr, d: Description): number {
  const [first, second] = t.options;
  const sub = (o: TypeExpr | string | undefined) => {
    if (!o || typeof o === 'string') throw new Error(`${t.name} needs a type option`);
    return sizeOf(o, d);
  };
  if (t.name in INTS) return INTS[t.name] ?? 0;
  switch (t.name) {
    case 'const':
      if (typeof first === 'object' && !KNOWN_CONSTS.has(first.name))
        throw new Error(`unknown constant ${first.name}`);
      return second ? sub(second) : 8;
    case 'ptr':
    case 'ptr64':
      if (typeof first !== 'object' || !DIRECTIONS.has(first.name))
        throw new Error(`bad pointer direction in ${t.name}`);
      sub(second);
      return 8;
    case 'array': {
      const element = sub(first);
      return typeof second === 'string' ? element * Number(second) : 0;
    }
    case 'string':
      return 0;
  }
  const struct = d.structs.get(t.name);
  if (struct) return struct.fields.reduce((n, [, f]) => n + sizeOf(f, d), 0);
  const union = d.unions.get(t.name);
  if (union) {
    const sizes = union.fields.map(([, f]) => sizeOf(f, d));
    const declared = /size\[(\d+)\]/.exec(union.attrs)?.[1];
    if (declared && sizes.some((s) => s > Number(declared)))
      throw new Error(`union ${t.name} member exceeds its size`);
    return declared ? Number(declared) : Math.max(...sizes);
  }
  if (d.resources.has(t.name)) return 8;
  throw new Error(`undefined type ${t.name}`);
}

const spec = loadSpec();

describe('syzkaller descriptions rendered from the spec', () => {
  for (const arch of spec.arches) {
    it(`parse, define every name they use and cover every ${arch} ioctl with its number and struct size`, () => {
      const d = parseDescription(renderSyzlang(spec, { arch }));
      const view = archView(spec, arch);
      for (const call of d.calls.values()) for (const t of call.args.values()) sizeOf(t, d);
      for (const [name, call] of d.calls)
        if (call.returns) expect(d.resources, name).to.include(call.returns);
      for (const { name, number, doc } of view.ioctls) {
        const call = d.calls.get(`ioctl$${name}`);
        expect(call, `ioctl$${name}`).to.not.equal(undefined);
        expect(call?.args.get('cmd')).to.deep.equal({ name: 'const', options: [hex(number)] });
        if (doc.number.struct) {
          const layout = view.structs.find((s) => s.name === doc.number.struct)?.layout;
          expect(
            sizeOf({ name: doc.number.struct, options: [] }, d),
            `size of ${doc.number.struct}`,
          ).to.equal(layout?.size);
        }
      }
      const calls = [...d.calls.keys()].filter((c) => c.startsWith('ioctl$'));
      expect(calls.length).to.equal(view.ioctls.reduce((n, { doc }) => n + doc.fds.length, 0));
    });
  }

  it('lays unions and padding out at the spec offsets', () => {
    const arches = spec.docs.filter((l) => l.doc.kind === 'arches');
    const op: Located<StructDoc> = {
      file: 'structs/kvm_fixture_op.json',
      doc: {
        kind: 'struct',
        name: 'kvm_fixture_op',
        sources: [{ upstream: 'include/uapi/linux/kvm.h' }],
        layouts: [
          {
            revision: 'upstream',
            size: 48,
            align: 8,
            fields: [
              { name: 'flags', type: 'u32', offset: 0 },
              { name: 'buf', type: 'u64', offset: 8, pointer: true },
              {
                union: 'u',
                offset: 16,
                size: 32,
                members: [
                  {
                    name: 's',
                    fields: [
                      { name: 'ar', type: 'u8', offset: 16 },
                      { name: 'old', type: 'u64', offset: 24 },
                    ],
                  },
                  { name: 'r', fields: [{ name: 'reserved', type: 'u8', offset: 16, count: 32 }] },
                ],
              },
            ],
          },
        ],
      },
    };
    const ioctl = structuredClone(spec.ioctls.get('KVM_GET_ONE_REG'));
    if (!ioctl) throw new Error('the spec has no KVM_GET_ONE_REG');
    ioctl.doc.number.struct = 'kvm_fixture_op';
    const tree = new SpecTree(spec.root, [...arches, op, ioctl] as Located<SpecDoc>[]);
    const d = parseDescription(renderSyzlang(tree, { arch: 's390x' }));
    expect(sizeOf({ name: 'kvm_fixture_op', options: [] }, d)).to.equal(48);
    expect(d.structs.get('kvm_fixture_op')?.fields.map(([n]) => n)).to.deep.equal([
      'flags',
      'pad1',
      'buf',
      'u',
    ]);
    expect(d.structs.get('kvm_fixture_op_u_s')?.fields.map(([n]) => n)).to.deep.equal(['ar', 'pad0', 'old']);
    expect(d.unions.get('kvm_fixture_op_u')?.attrs).to.equal('size[32]');
  });

  it('rejects text outside the grammar', () => {
    expect(() => parseDescription('ioctl$X(fd fd_kvm, cmd const[0x1')).to.throw();
    expect(() => parseDescription('kvm_x {\n\tid\tint64')).to.throw(/not closed/);
    expect(() => sizeOf(parseType('ptr[sideways, int8]'), parseDescription(''))).to.throw(/direction/);
    expect(() => sizeOf(parseType('kvm_missing'), parseDescription(''))).to.throw(/undefined type/);
  });
});
