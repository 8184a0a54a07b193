import { Writable } from 'node:stream';
import { main } from '../harness/cli/main.ts';
import { totalsOf, type CaseResult, type RunResults } from '../harness/run/results.ts';

/** Runs the CLI in process and captures what it prints. */
export async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (append: (s: string) => void) =>
    Object.assign(
      new Writable({
        write(chunk: Buffer, _enc, done) {
          append(chunk.toString());
          done();
        },
      }),
      { isTTY: false, columns: 80 },
    ) as unknown as NodeJS.WriteStream;
  const code = await main(
    args,
    sink((s) => (out += s)),
    sink((s) => (err += s)),
  );
  return { code, out, err };
}

/** A results file around the given cases, as a reference run on arm64 would write it. */
export function resultsOf(cases: CaseResult[], overrides: Partial<RunResults> = {}): RunResults {
  return {
    schemaVersion: 1,
    tool: { name: 'kvmspec', version: 'test' },
    backend: 'reference',
    revision: 'upstream',
    seed: 0,
    specDigest: 'test',
    profileMismatches: [],
    profiles: [
      { arch: 'arm64', implementation: 'kvmspec-reference', version: '6.12', revisions: ['upstream'] },
    ],
    expectations: { expired: [] },
    startedAt: new Date(0).toISOString(),
    durationMs: 0,
    totals: totalsOf(cases),
    cases,
    ...overrides,
  };
}
