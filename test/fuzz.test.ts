import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { defaultSpecRoot } from '../harness/paths.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { VmFile } from '../reference/kernel.ts';
import { fuzzIoctl, ioctlTargets } from '../scripts/fuzz/ioctls.ts';
import { fuzzSpecFiles, mutate } from '../scripts/fuzz/spec-files.ts';

const spec = loadSpec();
const SEED = 20261121;

describe('fuzzing (few runs; npm run fuzz does 100k per ioctl)', function () {
  this.timeout(300000);

  it('drives random structs and pointers into every ioctl of the spec on every arch: only ret/errno, guest memory intact', async () => {
    const targets = ioctlTargets(spec);
    expect(new Set(targets.map((t) => t.arch)).size).to.equal(4);
    expect(targets.length).to.be.greaterThanOrEqual(spec.ioctls.size);
    const failures: string[] = [];
    for (const t of targets) {
      const o = await fuzzIoctl(spec, t, 60, SEED);
      if (o.failure) failures.push(`${t.arch} ${t.name} on ${t.fd}: ${o.failure}`);
    }
    expect(failures).to.deep.equal([]);
  });

  it('catches a reference that scribbles on guest memory before it fails', async () => {
    const target = ioctlTargets(spec, ['x86_64']).find((t) => t.name === 'KVM_CREATE_VCPU')!;
    const original = Object.getOwnPropertyDescriptor(VmFile.prototype, 'ioctl')!.value as VmFile['ioctl'];
    VmFile.prototype.ioctl = function (this: VmFile, request, arg) {
      const byte = this.guestView(0n, 1);
      if (byte) byte[0] = byte[0]! ^ 0xff;
      return original.call(this, request, arg);
    };
    try {
      const o = await fuzzIoctl(spec, target, 60, SEED);
      expect(o.failure).to.match(/answered E\w+ but changed the bytes of memslot 0/);
    } finally {
      VmFile.prototype.ioctl = original;
    }
  });

  it('feeds mutated spec trees to the loader: every problem names a file and a JSON pointer into it', () => {
    const o = fuzzSpecFiles(defaultSpecRoot, 40, SEED);
    expect(o.failure).to.equal(undefined);
    expect(o.rejected).to.be.greaterThan(0);
  });

  it('mutates by dropping, duplicating and retyping fields, and by breaking the JSON', () => {
    const text = JSON.stringify({ kind: 'struct', name: 'x', fields: [{ a: 1 }] }, null, 2);
    expect(JSON.parse(mutate(text, 'drop', 0, 0))).to.not.have.property('kind');
    expect(mutate(text, 'duplicate', 0, 0).match(/"kind":/g)).to.have.lengthOf(2);
    expect(typeof (JSON.parse(mutate(text, 'retype', 0, 1)) as { kind: unknown }).kind).to.not.equal(
      'string',
    );
    expect(() => JSON.parse(mutate(text, 'truncate', 10, 0)) as unknown).to.throw(SyntaxError);
  });

  it('npm run fuzz refuses a bad flag or value before it runs anything (exit 2, the flag named)', () => {
    const script = path.resolve(import.meta.dirname, '../scripts/fuzz.ts');
    for (const [args, named] of [
      [['--bogus'], "Unknown option '--bogus'"],
      [['--runs', 'many'], "--runs: 'many' is not a whole number"],
      [['--spec-runs=-1'], "--spec-runs: '-1' is not a whole number"],
      [['--arch', 'mips'], '--arch: no arch mips; there are arm64, s390x, x86_64, ppc64le'],
    ] as const) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { encoding: 'utf8' });
      expect(r.status, args.join(' ')).to.equal(2);
      expect(r.stderr).to.include(`fuzz: ${named}`);
      expect(r.stdout).to.equal('');
    }
  });
});
