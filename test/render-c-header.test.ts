import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { targetCflags } from '../harness/abi/check/headers.ts';
import { hostArch } from '../harness/abi/check/live.ts';
import { hex } from '../harness/spec/int.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { SpecTree } from '../harness/spec/tree.ts';
import type { Located, SpecDoc, StructDoc } from '../harness/spec/types.ts';
import { archView, renderCHeader } from '../harness/render/c-header.ts';

const spec = loadSpec();
let dir: string;

function gcc(
  args: string[],
  main: string,
  header: string,
): { status: number | null; stderr: string; binary: string } {
  writeFileSync(path.join(dir, 'kvmspec.h'), header);
  const source = path.join(dir, 'main.c');
  writeFileSync(source, `#include "kvmspec.h"\n${main}`);
  const binary = path.join(dir, 'main');
  const result = spawnSync(
    'gcc',
    ['-std=c11', '-Wall', '-Wextra', '-Werror', '-pedantic', ...args, '-o', binary, source],
    {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C' },
    },
  );
  return { status: result.status, stderr: result.stderr, binary };
}

describe('C header rendered from the spec', function () {
  this.timeout(60_000);
  before(() => (dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-cheader-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const arch of spec.arches) {
    it(`compiles with -Wall -Werror for ${arch}, alone and as the ${arch} branch of the all-arch header`, () => {
      const flags = ['-fsyntax-only', ...targetCflags(spec.archInfo(arch))];
      for (const header of [renderCHeader(spec, { arch }), renderCHeader(spec)]) {
        const { status, stderr } = gcc(flags, '', header);
        expect(stderr).to.equal('');
        expect(status).to.equal(0);
      }
    });
  }

  it('refuses, by #error, an arch the spec has no values for', () => {
    const { status, stderr } = gcc(
      ['-fsyntax-only', '-U__x86_64__', '-U__aarch64__'],
      '',
      renderCHeader(spec),
    );
    expect(status).to.not.equal(0);
    expect(stderr).to.contain('kvmspec: this header has no values for the target architecture');
  });

  it('gives a running program the spec sizes and ioctl numbers of the host arch', function () {
    const arch = hostArch();
    if (!arch || !spec.arches.includes(arch)) this.skip();
    const view = archView(spec, arch);
    const prints = [
      ...view.structs.map(({ name }) => `printf("struct ${name} %zu\\n", sizeof(struct ${name}));`),
      ...view.ioctls.map(({ name }) => `printf("${name} 0x%llx\\n", (unsigned long long)${name});`),
    ];
    const { status, stderr, binary } = gcc(
      [],
      `#include <stdio.h>\nint main(void) {\n${prints.join('\n')}\nreturn 0;\n}\n`,
      renderCHeader(spec, { arch }),
    );
    expect(stderr).to.equal('');
    expect(status).to.equal(0);
    const lines = spawnSync(binary, [], { encoding: 'utf8' }).stdout.trim().split('\n');
    expect(lines).to.deep.equal([
      ...view.structs.map(({ name, layout }) => `struct ${name} ${layout.size}`),
      ...view.ioctls.map(({ name, number }) => `${name} ${hex(number)}`),
    ]);
  });

  it('pins union members and an over-aligned struct exactly as the spec lays them out', () => {
    const arches = spec.docs.filter((d) => d.doc.kind === 'arches');
    const memOp: Located<StructDoc> = {
      file: 'structs/kvm_s390_mem_op.json',
      doc: {
        kind: 'struct',
        name: 'kvm_s390_mem_op',
        header: 'arch/s390/include/uapi/asm/kvm.h',
        sources: [{ upstream: 'include/uapi/linux/kvm.h' }],
        layouts: [
          {
            revision: 'upstream',
            size: 64,
            align: 16,
            fields: [
              { name: 'gaddr', type: 'u64', offset: 0 },
              { name: 'size', type: 'u32', offset: 16 },
              {
                union: 'u',
                offset: 32,
                size: 32,
                members: [
                  {
                    name: 's',
                    fields: [
                      { name: 'ar', type: 'u8', offset: 32 },
                      { name: 'old_addr', type: 'u64', offset: 40, pointer: true },
                    ],
                  },
                  { name: 'sida', fields: [{ name: 'sida_offset', type: 'u32', offset: 36 }] },
                ],
              },
            ],
          },
        ],
      },
    };
    const header = renderCHeader(new SpecTree(spec.root, [...arches, memOp] as Located<SpecDoc>[]), {
      arch: 's390x',
    });
    expect(header).to.contain('_Alignas(16)');
    const { status, stderr } = gcc(['-fsyntax-only'], '', header);
    expect(stderr).to.equal('');
    expect(status).to.equal(0);
  });
});
