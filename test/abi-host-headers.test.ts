import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  checkAgainst,
  formatMismatch,
  hostArch,
  hostHeaderSet,
  type HeaderSet,
} from '../harness/abi/check/index.ts';
import { cachedHeaderSet, HOST_INCLUDE_DIR } from '../harness/abi/check/headers.ts';
import { confirmRegistersLive, liveKvmAvailable } from '../harness/abi/check/live.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { SpecTree } from '../harness/spec/tree.ts';
import type {
  ConstantsDoc,
  IoctlDoc,
  Located,
  RegistersDoc,
  SpecDoc,
  StructDoc,
} from '../harness/spec/types.ts';

const spec = loadSpec();
const source = [{ upstream: 'include/uapi/linux/kvm.h' }];

/** A spec tree of the real arches document plus the given documents, as if they lived in spec/. */
function treeWith(docs: Located<SpecDoc>[]): SpecTree {
  const arches = spec.docs.filter((d) => d.doc.kind === 'arches');
  return new SpecTree(spec.root, [...arches, ...docs]);
}

function oneRegStruct(addrOffset: number): Located<StructDoc> {
  return {
    file: 'structs/kvm_one_reg.json',
    doc: {
      kind: 'struct',
      name: 'kvm_one_reg',
      sources: source,
      layouts: [
        {
          revision: 'upstream',
          size: 16,
          align: 8,
          fields: [
            { name: 'id', type: 'u64', offset: 0 },
            { name: 'addr', type: 'u64', offset: addrOffset, pointer: true },
          ],
        },
      ],
    },
  };
}

function getOneReg(nr: string): Located<IoctlDoc> {
  return {
    file: 'ioctls/KVM_GET_ONE_REG.json',
    doc: {
      kind: 'ioctl',
      name: 'KVM_GET_ONE_REG',
      api: 'ONE_REG',
      number: { dir: 'write', type: '0xae', nr, struct: 'kvm_one_reg' },
      fds: ['vcpu'],
      arches: ['x86_64', 'arm64', 's390x', 'ppc64le'],
      summary: 'Reads one vCPU register.',
      parameters: 'struct kvm_one_reg',
      returns: '0 on success',
      sources: source,
      rules: [
        {
          id: 'ONE_REG-TEST-001',
          statement: 'A rule for the fixture.',
          sources: source,
          derive: 'one-reg.fixture',
        },
      ],
    },
  };
}

function constants(defs: ConstantsDoc['constants']): Located<ConstantsDoc> {
  return {
    file: 'constants/fixture.json',
    doc: { kind: 'constants', name: 'fixture', sources: source, constants: defs },
  };
}

describe('ABI check against the kernel headers installed on this machine', function () {
  let set: HeaderSet;
  before(function () {
    const arch = hostArch();
    if (!arch || !existsSync(`${HOST_INCLUDE_DIR}/linux/version.h`)) this.skip();
    set = hostHeaderSet(arch);
  });

  it('finds every ioctl number, struct size, field offset and constant those headers define equal to the spec', function () {
    this.timeout(120_000);
    const summary = checkAgainst(spec, set, { live: false });
    expect(summary.mismatches.map((m) => formatMismatch(m, set))).to.deep.equal([]);
    expect(summary.checked, 'items compared with the headers').to.be.greaterThan(0);
  });

  it('fails naming the spec file, JSON pointer and both values when the spec disagrees', function () {
    const tree = treeWith([
      oneRegStruct(12),
      getOneReg('0xac'),
      constants([{ name: 'KVM_CAP_ONE_REG', value: 71 }]),
    ]);
    const lines = checkAgainst(tree, set, { live: false }).mismatches.map((m) => formatMismatch(m, set));
    expect(lines).to.have.members([
      `spec/structs/kvm_one_reg.json#/layouts/0/fields/1/offset: offsetof(struct kvm_one_reg, addr) is 12 in the spec but 8 in ${set.name}`,
      `spec/ioctls/KVM_GET_ONE_REG.json#/number: KVM_GET_ONE_REG is 0x4010aeac in the spec but 0x4010aeab in ${set.name}`,
      `spec/constants/fixture.json#/constants/0/value: KVM_CAP_ONE_REG is 71 in the spec but 70 in ${set.name}`,
    ]);
  });

  it('classifies what the headers cannot confirm instead of failing it', function () {
    const tree = treeWith([
      oneRegStruct(8),
      getOneReg('0xab'),
      constants([
        { name: 'KVM_CAP_ONE_REG', value: 70 },
        // An enum constant with no macro of its name (enum pv_cmd_id).
        { name: 'KVM_PV_VERIFY', value: 4 },
        { name: 'KVM_FIXTURE_PROPOSED', value: 1, revisions: ['proposal-2022-fixture'] },
        { name: 'KVM_FIXTURE_FUTURE', value: 2, since: '99.0' },
        { name: 'KVM_FIXTURE_COMPUTED', value: 3, inHeaders: false },
        { name: 'KVM_FIXTURE_NOT_DEFINED', value: 4 },
      ]),
    ]);
    const summary = checkAgainst(tree, set, { live: false });
    expect(summary.mismatches).to.deep.equal([]);
    // kvm_one_reg: size + 2 offsets + 2 field sizes; the ioctl number; KVM_CAP_ONE_REG and KVM_PV_VERIFY.
    expect(summary.checked).to.equal(8);
    expect(summary.proposal).to.equal(1);
    expect(summary.newer).to.equal(1);
    expect(summary.unconfirmed.map((u) => [u.label, u.reason])).to.have.deep.members([
      ['KVM_FIXTURE_COMPUTED', 'computed'],
      ['KVM_FIXTURE_NOT_DEFINED', 'absent from headers'],
    ]);
  });

  it('reaches fields of named union members by their C path', function () {
    const kvmRun: Located<StructDoc> = {
      file: 'structs/kvm_run.json',
      doc: {
        kind: 'struct',
        name: 'kvm_run',
        header: 'include/uapi/linux/kvm.h',
        sources: source,
        layouts: [
          {
            revision: 'upstream',
            size: 2352,
            align: 8,
            fields: [
              { name: 'exit_reason', type: 'u32', offset: 8 },
              {
                union: 'exit',
                offset: 32,
                size: 256,
                members: [
                  { name: 'hw', fields: [{ name: 'hardware_exit_reason', type: 'u64', offset: 32 }] },
                  { name: 'fail_entry', fields: [{ name: 'cpu', type: 'u32', offset: 40 }] },
                ],
              },
            ],
          },
        ],
      },
    };
    const summary = checkAgainst(treeWith([kvmRun]), set, { live: false });
    expect(summary.mismatches.map((m) => formatMismatch(m, set))).to.deep.equal([]);
    expect(summary.unconfirmed).to.deep.equal([]);
    expect(summary.checked).to.equal(7);
  });
});

describe('ABI check against a foreign arch header tree', function () {
  let cache: string;
  // A miniature uapi tree whose definitions exist only for a big-endian s390x compiler.
  const files: Record<string, string> = {
    'linux/version.h': '#define LINUX_VERSION_CODE 396288\n',
    'linux/kvm.h': '#include <asm/kvm.h>\n#define KVM_FIXTURE_WIDE 0xfedcba9876543210ULL\n',
    'asm/kvm.h': [
      '#if defined(__s390x__) && !defined(__x86_64__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__',
      'struct kvm_fixture { unsigned long long a; unsigned int b; };',
      '#define KVM_REG_S390_FIXTURE 0x5004000000000001ULL',
      '#endif',
      '',
    ].join('\n'),
  };
  const docs: Located<SpecDoc>[] = [
    {
      file: 'structs/kvm_fixture.json',
      doc: {
        kind: 'struct',
        name: 'kvm_fixture',
        sources: source,
        layouts: [
          {
            revision: 'upstream',
            size: 16,
            align: 8,
            fields: [
              { name: 'a', type: 'u64', offset: 0 },
              { name: 'b', type: 'u32', offset: 8 },
            ],
          },
        ],
      },
    },
    constants([{ name: 'KVM_FIXTURE_WIDE', value: '0xfedcba9876543210' }]),
    {
      file: 'registers/s390x.json',
      doc: {
        kind: 'registers',
        arch: 's390x',
        sources: source,
        registers: [{ name: 'KVM_REG_S390_FIXTURE', id: '0x5004000000000001' }],
      } satisfies RegistersDoc,
    },
  ];

  before(() => {
    cache = mkdtempSync(path.join(tmpdir(), 'kvmspec-abi-tree-'));
    for (const arch of ['s390', 'x86'])
      for (const [name, text] of Object.entries(files)) {
        const file = path.join(cache, 'headers', arch, 'include', name);
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, text);
      }
  });
  after(() => rmSync(cache, { recursive: true, force: true }));

  it('compiles as the target arch would see its headers and reads 64-bit values exactly', () => {
    const tree = treeWith(docs);
    const set = cachedHeaderSet('s390x', tree.archInfo('s390x'), cache);
    expect(set.version).to.equal('6.12');
    const summary = checkAgainst(tree, set, { live: false });
    expect(summary.mismatches.map((m) => formatMismatch(m, set))).to.deep.equal([]);
    // sizeof + 2 offsets + 2 field sizes, the wide constant, the register id.
    expect(summary.checked).to.equal(7);
  });

  it('does not see the definitions of another arch', () => {
    const tree = treeWith(docs);
    const summary = checkAgainst(tree, cachedHeaderSet('x86_64', tree.archInfo('x86_64'), cache), {
      live: false,
    });
    expect(summary.checked).to.equal(1);
    expect(summary.unconfirmed.map((u) => u.reason)).to.deep.equal(Array(5).fill('absent from headers'));
  });
});

describe('live confirmation of register ids newer than the headers', () => {
  it('accepts an id the running kernel reads and rejects one it does not', function () {
    if (hostArch() !== 'x86_64' || !liveKvmAvailable()) this.skip();
    const efer = 0x20300002c0000080n;
    const unknownMsr = 0x20300002deadbeefn;
    expect([...confirmRegistersLive(spec, 'x86_64', [efer, unknownMsr])]).to.deep.equal([efer]);
  });
});
