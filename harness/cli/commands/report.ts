import { readFileSync } from 'node:fs';
import { ErrorCode, ExitCode, KvmspecError } from '../../errors.ts';
import { renderHtmlReport } from '../../report/html.ts';
import { mergeResults } from '../../report/merge.ts';
import { readRuns } from '../../report/runs.ts';
import { writeReportsAtomically } from '../../report/write.ts';
import type { RunResults } from '../../run/results.ts';
import { runIsAsExpected } from '../../run/results.ts';
import { writeReports } from '../../run/runner.ts';
import { parse, usageError, type Command, type Io } from '../args.ts';

/** A results file as `run --json` writes it; anything else is a usage error naming the file. */
export function readResultsFile(file: string): RunResults {
  let data: Partial<RunResults>;
  try {
    data = JSON.parse(readFileSync(file, 'utf8')) as Partial<RunResults>;
  } catch (err) {
    throw new KvmspecError(ErrorCode.Usage, `${file}: cannot read results: ${(err as Error).message}`);
  }
  const shaped =
    data.schemaVersion === 1 &&
    Array.isArray(data.cases) &&
    typeof data.specDigest === 'string' &&
    Array.isArray(data.profileMismatches);
  if (!shaped)
    throw new KvmspecError(
      ErrorCode.Usage,
      `${file}: not a kvmspec results file (schemaVersion 1 with cases, specDigest and profileMismatches)`,
    );
  return data as RunResults;
}

function merge(args: string[], { out }: Io): number {
  const { values, positionals } = parse(args, {
    json: { type: 'string' },
    junit: { type: 'string' },
    tap: { type: 'string' },
    ktap: { type: 'string' },
    summary: { type: 'string' },
  });
  if (positionals.length === 0) throw usageError('report merge needs results files');
  const merged = mergeResults(positionals.map((file) => ({ file, results: readResultsFile(file) })));
  writeReports(merged, values);
  const t = merged.totals;
  out.write(
    `merged ${positionals.length} results: ${t.total} cases, ${t.pass} passed, ${t.unexpected} unexpected\n`,
  );
  return runIsAsExpected(merged) ? ExitCode.Ok : ExitCode.Unexpected;
}

function html(args: string[], { out }: Io): number {
  const { values, positionals } = parse(args, { out: { type: 'string' } });
  if (!values.out) throw usageError('report html needs --out FILE');
  if (positionals.length === 0) throw usageError('report html needs one or more results files');
  writeReportsAtomically([{ path: values.out, content: renderHtmlReport(readRuns(positionals)) }]);
  out.write(`wrote ${values.out}\n`);
  return ExitCode.Ok;
}

const subcommands: Record<string, (args: string[], io: Io) => number> = { merge, html };

export const reportCommand: Command = {
  name: 'report',
  usage: `report merge [--json F] [--junit F] [--tap F] [--ktap F] [--summary F] RESULTS...
                         join the results of shards into one set of reports
  report html --out F RESULTS...
                         one self-contained HTML page over results files; two or more are compared`,
  run([sub, ...rest], io) {
    const fn = sub ? subcommands[sub] : undefined;
    if (!fn) throw usageError(`unknown report command '${sub ?? ''}'`);
    return fn(rest, io);
  },
};
