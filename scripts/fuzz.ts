// npm run fuzz [-- --runs N] [--spec-runs N] [--seed N] [--arch A]...: fast-check drives random
// arguments into every reference ioctl of the spec (all arches) and mutated spec files into the loader.
// Prints one line per target, writes reports/fuzz.json, exits 1 on any failure.
import { defaultSpecRoot } from '../harness/paths.ts';
import { writeReportsAtomically } from '../harness/report/write.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { ARCHES, type Arch } from '../harness/spec/types.ts';
import { fuzzIoctl, ioctlTargets, type FuzzOutcome } from './fuzz/ioctls.ts';
import { fuzzSpecFiles } from './fuzz/spec-files.ts';
import { parseScriptArgs, usage, wholeNumber } from './args.ts';

const { values } = parseScriptArgs('fuzz', {
  runs: { type: 'string', default: '100000' },
  'spec-runs': { type: 'string', default: '2000' },
  seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
  arch: { type: 'string', multiple: true },
});
const runs = wholeNumber('fuzz', 'runs', values.runs);
const specRuns = wholeNumber('fuzz', 'spec-runs', values['spec-runs']);
const seed = wholeNumber('fuzz', 'seed', values.seed);
const foreign = (values.arch ?? []).filter((a) => !(ARCHES as readonly string[]).includes(a));
if (foreign.length > 0)
  usage('fuzz', `--arch: no arch ${foreign.join(', ')}; there are ${ARCHES.join(', ')}`);
const arches = (values.arch ?? [...ARCHES]) as Arch[];

const spec = loadSpec();
const started = performance.now();
const ioctls: FuzzOutcome[] = [];
console.log(`fuzz: seed ${seed}, ${runs} runs per ioctl, ${specRuns} mutated spec trees`);
for (const target of ioctlTargets(spec, arches)) {
  const t0 = performance.now();
  const outcome = await fuzzIoctl(spec, target, runs, seed);
  ioctls.push(outcome);
  const label = `${target.arch} ${target.name} on ${target.fd}`;
  const took = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(
    outcome.failure
      ? `FAIL ${label}: ${outcome.failure}`
      : `ok   ${label}: ${outcome.runs} runs, ${outcome.errnoAnswers} errno answers with guest memory intact${outcome.notModelled ? `, ${outcome.notModelled} not modelled` : ''} (${took} s)`,
  );
}
const specOutcome = fuzzSpecFiles(defaultSpecRoot, specRuns, seed);
console.log(
  specOutcome.failure
    ? `FAIL spec loader: ${specOutcome.failure}`
    : `ok   spec loader: ${specOutcome.runs} mutated trees, ${specOutcome.rejected} rejected with located problems, ${specOutcome.accepted} accepted`,
);
const failures = ioctls.filter((o) => o.failure).length + (specOutcome.failure ? 1 : 0);
const seconds = (performance.now() - started) / 1000;
console.log(
  `fuzz: ${ioctls.length} ioctl targets and the spec loader, ${failures} failing, ${seconds.toFixed(0)} s`,
);
const report = {
  seed,
  runs,
  specRuns,
  seconds,
  ioctls: ioctls.map((o) => ({
    ...o,
    target: { ...o.target, request: `0x${o.target.request.toString(16)}` },
  })),
  spec: specOutcome,
};
writeReportsAtomically([{ path: 'reports/fuzz.json', content: `${JSON.stringify(report, null, 2)}\n` }]);
process.exitCode = failures > 0 ? 1 : 0;
