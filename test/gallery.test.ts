import { expect } from 'chai';
import type { BackendFactory } from '../adapters/backend.ts';
import { runSuite } from '../harness/run/runner.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { gallery } from './gallery/index.ts';

const spec = loadSpec();

describe('the gallery of faulty backends: the suite rejects each, naming the rules that catch it', function () {
  this.timeout(120000);

  for (const entry of gallery) {
    it(`${entry.name}: ${entry.bug}`, async function () {
      const missing = entry.requires.filter((name) => !spec.ioctls.has(name));
      if (missing.length > 0) this.skip();
      const factory: BackendFactory = {
        name: entry.name,
        arches: () => entry.arches,
        create: ({ arch }) => Promise.resolve(entry.make(spec, arch)),
      };
      const run = (f?: BackendFactory) =>
        runSuite({
          backend: f?.name ?? 'reference',
          ...(f ? { factory: f } : {}),
          spec,
          arches: entry.arches,
          revision: entry.revision ?? 'upstream',
          selection: { filter: entry.filter },
        });
      const { results } = await run(factory);
      const failed = results.cases.filter((c) => c.status === 'fail').map((c) => c.id);
      expect(failed).to.include.members(entry.caughtBy);
      // The same cases pass on the plain reference: they catch the bug, not something else.
      const plain = (await run()).results.cases.filter((c) => entry.caughtBy.includes(c.id));
      expect(plain.map((c) => `${c.id}: ${c.status}`)).to.have.members(
        entry.caughtBy.map((id) => `${id}: pass`),
      );
    });
  }
});
