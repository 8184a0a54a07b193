import { families } from '../../../suites/index.ts';
import { ExitCode } from '../../errors.ts';
import { verifyResults } from '../../run/verify.ts';
import { loadSpec } from '../../spec/loader.ts';
import { parse, usageError, type Command } from '../args.ts';
import { readResultsFile } from './report.ts';

export const verifyCommand: Command = {
  name: 'verify',
  usage: `verify RESULTS
                         check that a results file is a complete, clean run of this spec (a conformance claim)`,
  run(argv, { out }) {
    const { positionals } = parse(argv, {});
    const [file, ...more] = positionals;
    if (!file || more.length > 0) throw usageError('verify needs one results file');
    const results = readResultsFile(file);
    const v = verifyResults(results, loadSpec(), families);
    const what = `${v.backend} on ${v.arches.join(', ') || 'no arch'} (revision ${v.revision})`;
    if (v.conformant) {
      out.write(
        `kvmspec verify: ${what}: conformant, ${results.cases.length} cases, spec ${v.specDigest.slice(0, 12)}\n`,
      );
      return ExitCode.Ok;
    }
    out.write(`kvmspec verify: ${what}: not conformant\n`);
    for (const p of v.problems) out.write(`  - ${p}\n`);
    return ExitCode.Unexpected;
  },
};
