import { processFactory } from '../../../adapters/process.ts';
import { backendFactory } from '../../../adapters/registry.ts';
import { ExitCode } from '../../errors.ts';
import { readBundle } from '../../run/bundle.ts';
import { replayBundle } from '../../run/replay.ts';
import { loadSpec } from '../../spec/loader.ts';
import { parse, usageError, type Command } from '../args.ts';

export const replayCommand: Command = {
  name: 'replay',
  usage: `replay BUNDLE --backend NAME [-- CMD ARGS]
                         run a failure's bundle again, on the backend it failed on or any other`,
  async run(argv, { out, err }) {
    const dash = argv.indexOf('--');
    const args = dash < 0 ? argv : argv.slice(0, dash);
    const command = dash < 0 ? [] : argv.slice(dash + 1);
    const { values, positionals } = parse(args, { backend: { type: 'string' } });
    const file = positionals[0];
    if (!file) throw usageError('replay needs a bundle file');
    const bundle = readBundle(file);
    const name = values.backend ?? bundle.backend;
    const spec = loadSpec();
    if (spec.digest() !== bundle.specDigest) {
      err.write(
        `kvmspec: note: the spec changed since this bundle was recorded (${bundle.specDigest.slice(0, 12)} → ${spec.digest().slice(0, 12)})\n`,
      );
    }
    const factory = name === 'process' ? processFactory({ command }) : backendFactory(name);
    const c = await replayBundle(bundle, name, factory, spec);
    if (!c) throw usageError(`${bundle.id} is not in the plan any more`);
    out.write(
      `${c.id}: ${c.status}${c.message ? ` (${c.message.split('\n')[0] ?? ''})` : ''}; recorded on ${bundle.backend}: ${bundle.status}\n`,
    );
    for (const [k, v] of Object.entries(c.notes)) out.write(`  ${k}: ${v}\n`);
    return c.status === 'pass' ? ExitCode.Ok : ExitCode.Unexpected;
  },
};
