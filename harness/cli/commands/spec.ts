import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { families } from '../../../suites/index.ts';
import { ExitCode } from '../../errors.ts';
import { renderCHeader } from '../../render/c-header.ts';
import { renderHtmlSite } from '../../render/html-site.ts';
import { renderRst } from '../../render/rst.ts';
import { renderSyzlang } from '../../render/syzlang.ts';
import { coverage, formatCoverage, planIdsByRule, uncovered } from '../../report/coverage.ts';
import { readRuns } from '../../report/runs.ts';
import { writeReportsAtomically } from '../../report/write.ts';
import { diffSpecs, formatDiff, type SpecSide } from '../../spec/diff.ts';
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
  rst: renderRst,
};

/** Formats written as a folder of files rather than one text. */
const siteFormats = ['html'];
const formatNames = [...Object.keys(renderers), ...siteFormats].join('|');

function validate(args: string[], { out }: Io): number {
  const { positionals } = parse(args, {});
  const spec = loadSpec(positionals[0] ? { root: positionals[0] } : {});
  out.write(`spec ok: ${spec.docs.length} files, ${spec.rules().length} rules\n`);
  return ExitCode.Ok;
}

const specOption = { spec: { type: 'string' } } as const;
const specAt = (root: string | undefined) => loadSpec(root ? { root } : {});

function render(args: string[], { out }: Io): number {
  const { values } = parse(args, {
    ...specOption,
    format: { type: 'string' },
    arch: { type: 'string' },
    revision: { type: 'string' },
    out: { type: 'string' },
    results: { type: 'string', multiple: true },
  });
  const format = values.format ?? '';
  const renderer = renderers[format];
  if (!renderer && !siteFormats.includes(format))
    throw usageError(`spec render needs --format ${formatNames}`);
  const arch = parseArches(values.arch ? [values.arch] : undefined)?.[0];
  const options = { ...(arch ? { arch } : {}), ...(values.revision ? { revision: values.revision } : {}) };
  const spec = specAt(values.spec);
  if (!renderer) {
    if (!values.out) throw usageError(`spec render --format ${format} needs --out DIR`);
    const pages = renderHtmlSite(spec, {
      ...options,
      planIds: planIdsByRule(spec, families),
      runs: readRuns(values.results ?? []),
    });
    writeReportsAtomically(pages.map((p) => ({ path: path.join(values.out!, p.path), content: p.content })));
    out.write(`wrote ${pages.length} pages to ${values.out}\n`);
    return ExitCode.Ok;
  }
  if (values.results) throw usageError('--results goes with --format html');
  const text = renderer(spec, options);
  if (values.out) writeReportsAtomically([{ path: values.out, content: text }]);
  else out.write(text);
  return ExitCode.Ok;
}

/** A diff side: a spec folder (its upstream revision), or REVISION[@KERNEL] of the --spec tree. */
function side(arg: string, root: string | undefined): SpecSide {
  if (existsSync(arg) && statSync(arg).isDirectory())
    return { label: arg, spec: loadSpec({ root: arg }), revision: 'upstream' };
  const [revision = '', kernel] = arg.split('@');
  if (kernel !== undefined && !/^\d+\.\d+$/.test(kernel))
    throw usageError(`'${arg}': the kernel after @ is a version like 6.3`);
  return { label: arg, spec: specAt(root), revision, ...(kernel ? { kernel } : {}) };
}

function diff(args: string[], { out }: Io): number {
  const { values, positionals } = parse(args, { ...specOption, json: { type: 'boolean' } });
  const [a, b, ...extra] = positionals;
  if (!a || !b || extra.length > 0) throw usageError('spec diff takes two sides: A B');
  const result = diffSpecs(side(a, values.spec), side(b, values.spec), families);
  out.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : formatDiff(result));
  return ExitCode.Ok;
}

function coverageCommand(args: string[], { out }: Io): number {
  const { values, positionals } = parse(args, { ...specOption, json: { type: 'boolean' } });
  const matrix = coverage(specAt(values.spec), families, readRuns(positionals));
  out.write(values.json ? `${JSON.stringify(matrix, null, 2)}\n` : formatCoverage(matrix));
  return uncovered(matrix).length > 0 ? ExitCode.Unexpected : ExitCode.Ok;
}

const subcommands: Record<string, (args: string[], io: Io) => number> = {
  validate,
  render,
  diff,
  coverage: coverageCommand,
};

export const specCommand: Command = {
  name: 'spec',
  usage: `spec validate [PATH]   check spec files against the meta-schemas and each other
  spec render --format ${formatNames} [--arch A] [--revision NAME] [--spec DIR] [--out F|DIR]
      [--results F]...   write the spec in another form (html: a site in DIR, with outcomes from --results)
  spec diff A B [--spec DIR] [--json]
                         ABI and rule changes from A to B (each REVISION[@KERNEL] or a spec folder)
  spec coverage [RESULTS...] [--spec DIR] [--json]
                         rule x run x outcome matrix; exit 1 when a rule has no case`,
  run([sub, ...rest], io) {
    const fn = sub ? subcommands[sub] : undefined;
    if (!fn) throw usageError(`unknown spec command '${sub ?? ''}'`);
    return fn(rest, io);
  },
};
