import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readBundle } from '../harness/run/bundle.ts';
import type { RunResults } from '../harness/run/results.ts';
import { replayBundle } from '../harness/run/replay.ts';
import { runSuite } from '../harness/run/runner.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { cli, dropsBit40 } from './helpers.ts';

const spec = loadSpec();
const PROPERTY = 'ONE_REG/ONE_REG-VAL-004/arm64/registers=any-value';

/** Drops bit 40 of every value KVM_SET_ONE_REG writes. */
const faulty = dropsBit40(spec);

describe('reproducer bundles and replay', function () {
  this.timeout(60000);
  const dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-bundles-'));
  const filter = [PROPERTY, 'ONE_REG/ONE_REG-VAL-003/arm64/reg=X0'];

  it('writes a bundle per failing case that replays the failure on the faulty backend and passes on the reference', async () => {
    const { results } = await runSuite({
      backend: 'drops-bit-40',
      factory: faulty,
      spec,
      arches: ['arm64'],
      selection: { filter },
      reports: { bundles: dir },
    });
    expect(results.cases.map((c) => c.status)).to.deep.equal(['fail', 'fail']);
    const files = readdirSync(dir).map((f) => path.join(dir, f));
    expect(files).to.have.lengthOf(2);
    for (const file of files) {
      const bundle = readBundle(file);
      expect(bundle.trace.some((t) => t.op === 'ioctl' && t.detail.startsWith('KVM_SET_ONE_REG'))).to.equal(
        true,
      );
      expect((await replayBundle(bundle, 'drops-bit-40', faulty, spec))?.status).to.equal('fail');
      const plain = await cli(['replay', file, '--backend', 'reference']);
      expect(plain.code, plain.out + plain.err).to.equal(0);
      expect(plain.out).to.include(`${bundle.id}: pass; recorded on drops-bit-40: fail`);
    }
  });

  it('a run keeps the trace of a failing case and drops those of passing ones, in memory and in the results file', async () => {
    const json = path.join(dir, 'results.json');
    const { results } = await runSuite({
      backend: 'drops-bit-40',
      factory: faulty,
      spec,
      arches: ['arm64'],
      selection: { filter: [filter[1]!, 'ONE_REG/ONE_REG-VAL-003/arm64/reg=PC'] },
      reports: { json },
    });
    const { cases } = JSON.parse(readFileSync(json, 'utf8')) as RunResults;
    for (const held of [results.cases, cases]) {
      expect(held.map((c) => [c.status, c.trace !== undefined && c.trace.length > 0])).to.deep.equal([
        ['fail', true],
        ['pass', false],
      ]);
    }
    // Dropped as the case ended, not merely left out of the file.
    expect(results.cases[1]?.trace).to.equal(undefined);
    // The kept trace is rendered whole: the struct as sent, and as it and its buffer came back, in hex.
    for (const held of [results.cases, cases]) {
      const set = held[0]!.trace!.find((t) => t.call?.ioctl === 'KVM_SET_ONE_REG');
      expect(set?.detail).to.match(/^KVM_SET_ONE_REG on handle \d+ struct [0-9a-f]{32}$/);
      expect(set?.call?.image).to.match(/^[0-9a-f]{32}$/);
      expect(set?.call?.spans?.addr).to.match(/^[0-9a-f]{16}$/);
    }
  });

  it('a recorded seed and path reproduce the same shrunk counterexample', async () => {
    const first = await runSuite({
      backend: 'drops-bit-40',
      factory: faulty,
      spec,
      arches: ['arm64'],
      selection: { filter: [PROPERTY] },
      seed: 1234,
      reports: { bundles: dir },
    });
    const failed = first.results.cases[0];
    const value = BigInt(/"value":(\d+)n/.exec(failed?.notes.counterexample ?? '')?.[1] ?? '0');
    expect((value >> 40n) & 1n, 'the counterexample has bit 40 set').to.equal(1n);
    const bundle = readBundle(path.join(dir, readdirSync(dir)[0] ?? ''));
    expect(bundle.path).to.be.a('string').and.not.equal('');
    const again = await replayBundle(bundle, 'drops-bit-40', faulty, spec);
    expect(again?.notes.counterexample).to.equal(failed?.notes.counterexample);
    expect(again?.notes.seed).to.equal(failed?.notes.seed);
  });
});
