/**
 * The conformance suite as a plain mocha entry file, for people who want mocha's own CLI, reporters or
 * IDE integration instead of `kvmspec run`:
 *
 *   KVMSPEC_BACKEND=reference KVMSPEC_ARCH=arm64 npx mocha suites/conformance.spec.ts
 *
 * The cases are generated from spec/ when mocha loads this file, exactly as `kvmspec run` plans them
 * (`kvmspec list` prints the IDs); only `kvmspec run` adds our reports, expectations and reconciliation.
 * Environment: KVMSPEC_BACKEND (default reference), KVMSPEC_ARCH (comma-separated, default all the
 * backend serves), KVMSPEC_FILTER (ID glob), KVMSPEC_REVISION (default upstream).
 */
import { backendFactory } from '../adapters/registry.ts';
import type { Fixture } from '../harness/plan/types.ts';
import { executeCase } from '../harness/run/execute.ts';
import { declarePlan } from '../harness/run/mocha-tree.ts';
import type { CaseResult } from '../harness/run/results.ts';
import { DEFAULT_TIMEOUT_MS, lazyProvider, planRun } from '../harness/run/runner.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import type { Arch } from '../harness/spec/types.ts';
import { families } from './index.ts';

const env = process.env;
const factory = backendFactory(env.KVMSPEC_BACKEND ?? 'reference');
const revision = env.KVMSPEC_REVISION ?? 'upstream';
const arches = env.KVMSPEC_ARCH ? (env.KVMSPEC_ARCH.split(',') as Arch[]) : factory.arches();
const spec = loadSpec();
const plan = planRun(
  spec,
  families,
  arches,
  revision,
  env.KVMSPEC_FILTER ? { filter: [env.KVMSPEC_FILTER] } : {},
);
const fixtures = Object.assign({}, ...families.map((f) => f.fixtures ?? {})) as Record<string, Fixture>;
const provider = lazyProvider(factory, revision);

describe(`kvmspec (${factory.name})`, function () {
  declarePlan(
    this,
    plan,
    (c) => executeCase(c, { spec, fixtures, provider, seed: 0 }),
    new Map<string, CaseResult>(),
    DEFAULT_TIMEOUT_MS,
  );
  after(async () => {
    for (const b of provider.created.values())
      await b.then((backend) => backend.dispose()).catch(() => undefined);
  });
});
