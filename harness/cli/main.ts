import { parseArgs, type ParseArgsConfig } from 'node:util';
import { backendNames } from '../../adapters/registry.ts';
import { families } from '../../suites/index.ts';
import { ErrorCode, ExitCode, KvmspecError, SpecError, exitCodeFor, formatProblem } from '../errors.ts';
import { uncoveredRules } from '../plan/plan.ts';
import { planRun, runSuite } from '../run/runner.ts';
import { renderCHeader } from '../render/c-header.ts';
import { renderSyzlang } from '../render/syzlang.ts';
import { writeReportsAtomically } from '../report/write.ts';
import { loadSpec } from '../spec/loader.ts';
import { ARCHES, type Arch } from '../spec/types.ts';

const USAGE = `usage: kvmspec <command> [options]

commands:
  run --backend NAME [--arch A]... [--filter GLOB]... [--revision NAME]
      [--junit F] [--json F] [--tap F] [--expectations F] [--timeout MS]
                         run the suite against a backend (${backendNames().join(', ')})
  list [--arch A]... [--filter GLOB]... [--revision NAME] [--uncovered]
                         print the test IDs a run would execute (or the rules without a case)
  spec validate [PATH]   check spec files against the meta-schemas and each other
  spec render --format c-header|syzlang [--arch A] [--revision NAME] [--out F]
                         write the spec as a C header or as syzkaller descriptions

exit status: 0 all as expected, 1 unexpected results, 2 usage or spec errors, 3 backend unusable`;

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new KvmspecError(ErrorCode.Usage, `${(err as Error).message}\n\n${USAGE}`);
  }
}

function arches(values: string[] | undefined): Arch[] | undefined {
  if (!values || values.length === 0) return undefined;
  for (const v of values) {
    if (!(ARCHES as readonly string[]).includes(v)) {
      throw new KvmspecError(ErrorCode.Usage, `unknown arch '${v}' (known: ${ARCHES.join(', ')})`);
    }
  }
  return values as Arch[];
}

const selection = {
  arch: { type: 'string', multiple: true },
  filter: { type: 'string', multiple: true },
  revision: { type: 'string' },
} as const;

async function run(args: string[], out: NodeJS.WriteStream, err: NodeJS.WriteStream): Promise<number> {
  const { values } = parse(args, {
    ...selection,
    backend: { type: 'string' },
    junit: { type: 'string' },
    json: { type: 'string' },
    tap: { type: 'string' },
    expectations: { type: 'string' },
    timeout: { type: 'string' },
  });
  if (!values.backend) throw new KvmspecError(ErrorCode.Usage, `run needs --backend NAME\n\n${USAGE}`);
  const timeoutMs = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0)) {
    throw new KvmspecError(
      ErrorCode.Usage,
      `--timeout takes a positive number of milliseconds, not '${values.timeout}'`,
    );
  }
  const tty = err.isTTY;
  const selectedArches = arches(values.arch);
  const { results, unusable } = await runSuite({
    backend: values.backend,
    ...(selectedArches ? { arches: selectedArches } : {}),
    ...(values.filter ? { filter: values.filter } : {}),
    ...(values.revision ? { revision: values.revision } : {}),
    ...(values.expectations ? { expectationsFile: values.expectations } : {}),
    ...(timeoutMs ? { timeoutMs } : {}),
    reports: {
      junit: values.junit ?? 'reports/junit.xml',
      json: values.json ?? 'reports/results.json',
      tap: values.tap ?? 'reports/results.tap',
    },
    onCase: (r, done, total) => {
      if (tty)
        err.write(
          `\r\x1b[K[${done}/${total}] ${r.status.padEnd(14)} ${r.id}`.slice(0, (err.columns || 120) - 1),
        );
      else if (r.unexpected) err.write(`${r.status}: ${r.id}: ${r.message ?? ''}\n`);
    },
  });
  if (tty) err.write('\r\x1b[K');
  const t = results.totals;
  out.write(
    `kvmspec ${results.backend}: ${t.total} cases: ${t.pass} passed, ${t.fail} failed, ${t.error} errors, ${t.blocked} blocked, ${t.skip} skipped, ${t['not-applicable']} not applicable; ${t.unexpected} unexpected (${(results.durationMs / 1000).toFixed(1)} s)\n`,
  );
  if (unusable.length > 0 && unusable.length === new Set(results.cases.map((c) => c.arch)).size)
    return ExitCode.BackendUnusable;
  return t.unexpected > 0 ? ExitCode.Unexpected : ExitCode.Ok;
}

function list(args: string[], out: NodeJS.WriteStream): number {
  const { values } = parse(args, { ...selection, uncovered: { type: 'boolean' } });
  const spec = loadSpec();
  if (values.uncovered) {
    const missing = uncoveredRules(spec, families);
    for (const ref of missing) out.write(`${ref.rule.id}\t${ref.file}#${ref.pointer}\n`);
    return missing.length > 0 ? ExitCode.Unexpected : ExitCode.Ok;
  }
  const plan = planRun(
    spec,
    families,
    arches(values.arch) ?? spec.arches,
    values.revision ?? 'upstream',
    values.filter,
  );
  for (const c of plan) out.write(`${c.id}\n`);
  return ExitCode.Ok;
}

function specValidate(args: string[], out: NodeJS.WriteStream): number {
  const { positionals } = parse(args, {});
  const spec = loadSpec(positionals[0] ? { root: positionals[0] } : {});
  out.write(`spec ok: ${spec.docs.length} files, ${spec.rules().length} rules\n`);
  return ExitCode.Ok;
}

function specRender(args: string[], out: NodeJS.WriteStream): number {
  const { values } = parse(args, {
    format: { type: 'string' },
    arch: { type: 'string' },
    revision: { type: 'string' },
    out: { type: 'string' },
  });
  const spec = loadSpec();
  const arch = arches(values.arch ? [values.arch] : undefined)?.[0];
  const options = { ...(arch ? { arch } : {}), ...(values.revision ? { revision: values.revision } : {}) };
  let text: string;
  if (values.format === 'c-header') text = renderCHeader(spec, options);
  else if (values.format === 'syzlang') text = renderSyzlang(spec, options);
  else throw new KvmspecError(ErrorCode.Usage, `spec render needs --format c-header or syzlang\n\n${USAGE}`);
  if (values.out) writeReportsAtomically([{ path: values.out, content: text }]);
  else out.write(text);
  return ExitCode.Ok;
}

/** The CLI: parses a command line, calls the library, maps errors to exit statuses. Returns the status. */
export async function main(
  argv: string[],
  out: NodeJS.WriteStream = process.stdout,
  err: NodeJS.WriteStream = process.stderr,
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await run(rest, out, err);
      case 'list':
        return list(rest, out);
      case 'spec':
        if (rest[0] === 'validate') return specValidate(rest.slice(1), out);
        if (rest[0] === 'render') return specRender(rest.slice(1), out);
        throw new KvmspecError(ErrorCode.Usage, `unknown spec command '${rest[0] ?? ''}'\n\n${USAGE}`);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out.write(`${USAGE}\n`);
        return command === undefined ? ExitCode.Usage : ExitCode.Ok;
      default:
        throw new KvmspecError(ErrorCode.Usage, `unknown command '${command}'\n\n${USAGE}`);
    }
  } catch (e) {
    if (e instanceof SpecError) {
      for (const p of e.problems) err.write(`${formatProblem(p)}\n`);
      err.write(`kvmspec: ${e.problems.length} spec problem(s)\n`);
    } else if (e instanceof KvmspecError) {
      err.write(`kvmspec: ${e.message}\n`);
    } else {
      err.write(`kvmspec: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
    return exitCodeFor(e);
  }
}
