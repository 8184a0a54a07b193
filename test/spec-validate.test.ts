import { expect } from 'chai';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultSpecRoot } from '../harness/paths.ts';
import { cli } from './helpers.ts';

function brokenCopy(file: string, edit: (text: string) => string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-spec-'));
  cpSync(defaultSpecRoot, dir, { recursive: true });
  const target = path.join(dir, file);
  writeFileSync(target, edit(readFileSync(target, 'utf8')));
  return dir;
}

function editJson(edit: (doc: Record<string, unknown>) => void) {
  return (text: string) => {
    const doc = JSON.parse(text) as Record<string, unknown>;
    edit(doc);
    return JSON.stringify(doc);
  };
}

describe('kvmspec spec validate', () => {
  it('accepts the shipped spec', async () => {
    const r = await cli(['spec', 'validate']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/spec ok: \d+ files, \d+ rules/);
  });

  const breakages: [string, string, (text: string) => string, RegExp][] = [
    [
      'bad JSON',
      'ioctls/KVM_GET_ONE_REG.json',
      (t) => t.slice(0, -20),
      /KVM_GET_ONE_REG\.json#: not valid JSON/,
    ],
    [
      'an unknown property',
      'ioctls/KVM_SET_ONE_REG.json',
      editJson((d) => ((d.rules as Record<string, unknown>[])[0]!.colour = 'red')),
      /KVM_SET_ONE_REG\.json#\/rules\/0: must NOT have additional properties 'colour'/,
    ],
    [
      'a wrong type',
      'structs/kvm_one_reg.json',
      editJson((d) => ((d.layouts as { size: unknown }[])[0]!.size = 'sixteen')),
      /kvm_one_reg\.json#\/layouts\/0\/size: must be integer/,
    ],
    [
      'a duplicate rule ID',
      'ioctls/KVM_GET_REG_LIST.json',
      editJson((d) => ((d.rules as { id: string }[])[1]!.id = 'ONE_REG-VAL-001')),
      /KVM_GET_REG_LIST\.json#\/rules\/1\/id: duplicate rule ID ONE_REG-VAL-001/,
    ],
    [
      'a field name used twice within one union member',
      'structs/kvm_run.json',
      editJson((d) => {
        type Field = { union?: string; members?: { fields: { name: string }[] }[] };
        const exit = (d.layouts as { fields: Field[] }[])[0]!.fields.find((f) => f.union === 'exit')!;
        exit.members![0]!.fields[2]!.name = 'phys_addr';
      }),
      /kvm_run\.json#\/layouts\/0\/fields\/8\/members\/0\/fields\/2\/name: field name phys_addr is used twice/,
    ],
    [
      'a nested struct that is not in the spec',
      'structs/kvm_sregs.json',
      editJson(
        (d) => ((d.layouts as { fields: { struct?: string }[] }[])[0]!.fields[0]!.struct = 'kvm_nothing'),
      ),
      /kvm_sregs\.json#\/layouts\/0\/fields\/0\/struct: no struct named kvm_nothing in the spec/,
    ],
    [
      'a nested struct that holds a union',
      'structs/kvm_sregs.json',
      editJson(
        (d) => ((d.layouts as { fields: { struct?: string }[] }[])[0]!.fields[0]!.struct = 'kvm_irq_level'),
      ),
      /kvm_sregs\.json#\/layouts\/0\/fields\/0\/struct: struct kvm_irq_level holds a union or flexible array/,
    ],
    [
      'overlapping nested structs',
      'structs/kvm_sregs.json',
      editJson((d) => ((d.layouts as { fields: { offset: number }[] }[])[0]!.fields[1]!.offset = 8)),
      /kvm_sregs\.json#\/layouts\/0\/fields\/1: ds \(bytes 8\.\.31\) overlaps cs \(bytes 0\.\.23\)/,
    ],
    [
      'an anonymous nested struct whose field lies outside it',
      'structs/kvm_vcpu_events.json',
      editJson((d) => {
        const layout = (d.layouts as { fields: { fields?: { offset: number }[] }[] }[])[0]!;
        layout.fields[1]!.fields![3]!.offset = 4;
      }),
      /kvm_vcpu_events\.json#\/layouts\/0\/fields\/1\/fields\/3: shadow \(bytes 4\.\.4\) lies outside struct interrupt \(4 bytes\)/,
    ],
    [
      'overlapping fields in an anonymous nested struct',
      'structs/kvm_vcpu_events.json',
      editJson((d) => {
        const layout = (d.layouts as { fields: { fields?: { offset: number }[] }[] }[])[0]!;
        layout.fields[0]!.fields![4]!.offset = 2;
      }),
      /kvm_vcpu_events\.json#\/layouts\/0\/fields\/0\/fields\/4: error_code overlaps has_error_code in struct exception/,
    ],
    [
      'a nested member with both a struct name and fields',
      'structs/kvm_vcpu_events.json',
      editJson((d) => {
        const layout = (d.layouts as { fields: { struct?: string }[] }[])[0]!;
        layout.fields[0]!.struct = 'kvm_segment';
      }),
      /kvm_vcpu_events\.json#\/layouts\/0\/fields\/0: must match exactly one schema in oneOf/,
    ],
    [
      'a struct that contains itself',
      'structs/kvm_segment.json',
      editJson((d) => {
        const layout = (d.layouts as { size: number; fields: object[] }[])[0]!;
        layout.fields.push({ name: 'inner', struct: 'kvm_segment', offset: 24 });
        layout.size = 48;
      }),
      /kvm_segment\.json#\/layouts\/0: struct kvm_segment contains itself/,
    ],
    [
      'overlapping struct fields',
      'structs/kvm_one_reg.json',
      editJson((d) => ((d.layouts as { fields: { offset: number }[] }[])[0]!.fields[1]!.offset = 0)),
      /kvm_one_reg\.json#\/layouts\/0\/fields\/1: addr \(bytes 0\.\.7\) overlaps id/,
    ],
  ];
  for (const [what, file, edit, message] of breakages) {
    it(`exits 2 naming the file and JSON pointer for ${what}`, async () => {
      const r = await cli(['spec', 'validate', brokenCopy(file, edit)]);
      expect(r.code).to.equal(2);
      expect(r.err).to.match(message);
    });
  }
});
