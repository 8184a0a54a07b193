import { ExitCode } from '../../errors.ts';
import { renderCHeader } from '../../render/c-header.ts';
import { renderSyzlang } from '../../render/syzlang.ts';
import { writeReportsAtomically } from '../../report/write.ts';
import { loadSpec } from '../../spec/loader.ts';
import type { SpecTree } from '../../spec/tree.ts';
import type { Arch } from '../../spec/types.ts';
import { parse, parseArches, usageError, type Command, type Io } from '../args.ts';

/** Spec renderers by --format name; each turns the spec into one text. */
export const renderers: Record<
  string,
  (spec: SpecTree, options: { arch?: Arch; revision?: string }) => string
> = {
  'c-header': renderCHeader,
  syzlang: renderSyzlang,
};

function validate(args: string[], { out }: Io): number {
  const { positionals } = parse(args, {});
  const spec = loadSpec(positionals[0] ? { root: positionals[0] } : {});
  out.write(`spec ok: ${spec.docs.length} files, ${spec.rules().length} rules\n`);
  return ExitCode.Ok;
}

function render(args: string[], { out }: Io): number {
  const { values } = parse(args, {
    format: { type: 'string' },
    arch: { type: 'string' },
    revision: { type: 'string' },
    out: { type: 'string' },
  });
  const renderer = values.format ? renderers[values.format] : undefined;
  if (!renderer) throw usageError(`spec render needs --format ${Object.keys(renderers).join('|')}`);
  const arch = parseArches(values.arch ? [values.arch] : undefined)?.[0];
  const text = renderer(loadSpec(), {
    ...(arch ? { arch } : {}),
    ...(values.revision ? { revision: values.revision } : {}),
  });
  if (values.out) writeReportsAtomically([{ path: values.out, content: text }]);
  else out.write(text);
  return ExitCode.Ok;
}

const subcommands: Record<string, (args: string[], io: Io) => number> = { validate, render };

export const specCommand: Command = {
  name: 'spec',
  usage: `spec validate [PATH]   check spec files against the meta-schemas and each other
  spec render --format ${Object.keys(renderers).join('|')} [--arch A] [--revision NAME] [--out F]
                         write the spec in another form`,
  run([sub, ...rest], io) {
    const fn = sub ? subcommands[sub] : undefined;
    if (!fn) throw usageError(`unknown spec command '${sub ?? ''}'`);
    return fn(rest, io);
  },
};
