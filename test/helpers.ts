import { Writable } from 'node:stream';
import type { BackendFactory } from '../adapters/backend.ts';
import { createReferenceBackend } from '../adapters/reference.ts';
import { readUint, writeUint } from '../harness/abi/codec.ts';
import { main } from '../harness/cli/main.ts';
import { totalsOf, type CaseResult, type RunResults } from '../harness/run/results.ts';
import type { SpecTree } from '../harness/spec/tree.ts';
import { withIoctl } from './gallery/faulty.ts';

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

/**
 * An arm64 backend that drops bit 40 of the values its first `faulty` KVM_SET_ONE_REG calls write (every
 * call by default): a byte-handling bug that stays, or one that goes away.
 */
export function dropsBit40(spec: SpecTree, faulty = Infinity): BackendFactory {
  return {
    name: 'drops-bit-40',
    arches: () => ['arm64'],
    create: ({ arch }) => {
      const inner = createReferenceBackend(spec, arch);
      const set = spec.ioctlNumber('KVM_SET_ONE_REG', arch);
      let left = faulty;
      return Promise.resolve(
        withIoctl(inner, async (next, h, req, arg) => {
          const target = arg.kind === 'struct' ? arg.pointers[0]?.target : undefined;
          if (req === set && target?.kind === 'buffer' && target.length >= 8 && left-- > 0) {
            const bytes = await inner.read(target.buffer, target.offset, 8);
            writeUint(bytes, 0, 8, readUint(bytes, 0, 8, 'little') & ~(1n << 40n), 'little');
            await inner.write(target.buffer, target.offset, bytes);
          }
          return next(h, req, arg);
        }),
      );
    },
  };
}
