import { families } from '../../../suites/index.ts';
import { ExitCode } from '../../errors.ts';
import { uncoveredRules } from '../../plan/plan.ts';
import { planRun } from '../../run/runner.ts';
import { loadSpec } from '../../spec/loader.ts';
import { parse, parseArches, selectionFrom, selectionOptions, type Command } from '../args.ts';

export const listCommand: Command = {
  name: 'list',
  usage: `list [--arch A]... [--filter GLOB]... [--rule GLOB]... [--tag T]... [--shard i/n] [--revision NAME] [--uncovered]
                         print the test IDs a run would execute (or the rules without a case)`,
  run(args, { out }) {
    const { values } = parse(args, { ...selectionOptions, uncovered: { type: 'boolean' } });
    const spec = loadSpec();
    if (values.uncovered) {
      const missing = uncoveredRules(spec, families);
      for (const ref of missing) out.write(`${ref.rule.id}\t${ref.file}#${ref.pointer}\n`);
      return missing.length > 0 ? ExitCode.Unexpected : ExitCode.Ok;
    }
    const arches = parseArches(values.arch) ?? spec.arches;
    for (const c of planRun(spec, families, arches, values.revision ?? 'upstream', selectionFrom(values)))
      out.write(`${c.id}\n`);
    return ExitCode.Ok;
  },
};
