import { existsSync } from 'node:fs';
import path from 'node:path';
import { ExitCode } from '../../errors.ts';
import { defaultExpectationsDir } from '../../paths.ts';
import { writeReportsAtomically } from '../../report/write.ts';
import { loadExpectations, proposeExpectations } from '../../run/expectations.ts';
import { parse, usageError, type Command } from '../args.ts';
import { readResultsFile } from './report.ts';

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
    const results = readResultsFile(values.results ?? 'reports/results.json');
    const backend = values.backend ?? results.backend;
    const target = values.out ?? path.join(defaultExpectationsDir, `${backend}.json`);
    const previous = existsSync(target) ? loadExpectations(backend, target) : { entries: [] };
    const proposed = proposeExpectations(results.cases, previous, backend);
    writeReportsAtomically([{ path: target, content: `${JSON.stringify(proposed, null, 2)}\n` }]);
    out.write(`${target}: ${proposed.entries.length} entries (was ${previous.entries.length})\n`);
    return ExitCode.Ok;
  },
};
