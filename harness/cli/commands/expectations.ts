import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, ExitCode, KvmspecError } from '../../errors.ts';
import { defaultExpectationsDir } from '../../paths.ts';
import { writeReportsAtomically } from '../../report/write.ts';
import { loadExpectations, proposeExpectations } from '../../run/expectations.ts';
import type { RunResults } from '../../run/results.ts';
import { parse, usageError, type Command } from '../args.ts';

function readResults(file: string): RunResults {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RunResults;
  } catch (err) {
    throw new KvmspecError(ErrorCode.Usage, `${file}: cannot read results: ${(err as Error).message}`);
  }
}

export const expectationsCommand: Command = {
  name: 'expectations',
  usage: `expectations update [--results F] [--backend NAME] [--out F]
                         write the expectations file a run's results propose, keeping existing reasons`,
  run([sub, ...rest], { out }) {
    if (sub !== 'update') throw usageError(`unknown expectations command '${sub ?? ''}'`);
    const { values } = parse(rest, {
      results: { type: 'string' },
      backend: { type: 'string' },
      out: { type: 'string' },
    });
    const results = readResults(values.results ?? 'reports/results.json');
    const backend = values.backend ?? results.backend;
    const target = values.out ?? path.join(defaultExpectationsDir, `${backend}.json`);
    const previous = existsSync(target) ? loadExpectations(backend, target) : { entries: [] };
    const proposed = proposeExpectations(results.cases, previous, backend);
    writeReportsAtomically([{ path: target, content: `${JSON.stringify(proposed, null, 2)}\n` }]);
    out.write(`${target}: ${proposed.entries.length} entries (was ${previous.entries.length})\n`);
    return ExitCode.Ok;
  },
};
