import type { BackendFactory } from '../../adapters/backend.ts';
import type { SpecTree } from '../spec/tree.ts';
import type { Bundle } from './bundle.ts';
import type { CaseResult } from './results.ts';
import { runSuite } from './runner.ts';

/** Runs a bundle's case again — same ID, arch, revision, seed and property path — on the given backend. */
export async function replayBundle(
  bundle: Bundle,
  backend: string,
  factory: BackendFactory,
  spec: SpecTree,
): Promise<CaseResult | undefined> {
  const { results } = await runSuite({
    backend,
    factory,
    spec,
    arches: [bundle.arch],
    revision: bundle.revision,
    seed: bundle.runSeed,
    ...(bundle.path ? { replayPath: bundle.path } : {}),
    selection: { filter: [bundle.id] },
  });
  return results.cases[0];
}
