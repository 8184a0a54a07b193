import type { BackendFactory } from '../../../adapters/backend.ts';
import { processFactory } from '../../../adapters/process.ts';
import { backendFactory, backendNames } from '../../../adapters/registry.ts';
import { ExitCode } from '../../errors.ts';
import { runParallel } from '../../run/parallel.ts';
import { attemptStatuses, runIsAsExpected, type CaseResult } from '../../run/results.ts';
import { runSuite } from '../../run/runner.ts';
import {
  nonNegativeInt,
  parse,
  parseArches,
  positiveInt,
  selectionFrom,
  selectionOptions,
  usageError,
  type Command,
} from '../args.ts';

/** `--backend process -- CMD ARGS`: the program after `--` is the backend. */
function factoryFor(name: string, command: string[], validate: boolean): BackendFactory {
  if (name === 'process') {
    if (command.length === 0)
      throw usageError('--backend process needs the program after --, e.g. -- python3 backend.py');
    return processFactory({ command, validate });
  }
  if (command.length > 0) throw usageError(`only --backend process takes a program after --`);
  return backendFactory(name);
}

export const runCommand: Command = {
  name: 'run',
  usage: `run --backend NAME [--arch A]... [--filter GLOB]... [--rule GLOB]... [--tag T]... [--shard i/n] [--revision NAME] [--junit F] [--json F]
      [--tap F] [--ktap F] [--summary F] [--bundles DIR] [--seed N] [--diff BACKEND] [--jobs N] [--retries N] [--expectations F] [--timeout MS] [--validate-protocol] [-- CMD ARGS]
                         run the suite against a backend (${[...backendNames(), 'process'].join(', ')})`,
  async run(argv, { out, err }) {
    const dash = argv.indexOf('--');
    const args = dash < 0 ? argv : argv.slice(0, dash);
    const command = dash < 0 ? [] : argv.slice(dash + 1);
    const { values } = parse(args, {
      ...selectionOptions,
      backend: { type: 'string' },
      junit: { type: 'string' },
      json: { type: 'string' },
      tap: { type: 'string' },
      ktap: { type: 'string' },
      summary: { type: 'string' },
      bundles: { type: 'string' },
      diff: { type: 'string' },
      jobs: { type: 'string' },
      retries: { type: 'string' },
      seed: { type: 'string' },
      expectations: { type: 'string' },
      timeout: { type: 'string' },
      'validate-protocol': { type: 'boolean' },
    });
    if (!values.backend) throw usageError('run needs --backend NAME');
    const factory = factoryFor(values.backend, command, values['validate-protocol'] ?? false);
    const timeoutMs = positiveInt(values.timeout, '--timeout');
    const arches = parseArches(values.arch);
    const tty = err.isTTY;
    const common = {
      backend: values.backend,
      ...(arches ? { arches } : {}),
      selection: selectionFrom(values),
      ...(values.revision ? { revision: values.revision } : {}),
      ...(values.expectations ? { expectationsFile: values.expectations } : {}),
      ...(timeoutMs ? { timeoutMs } : {}),
      ...(values.seed !== undefined ? { seed: nonNegativeInt(values.seed, '--seed') } : {}),
      ...(values.retries !== undefined ? { retries: nonNegativeInt(values.retries, '--retries') } : {}),
    };
    const reports = {
      junit: values.junit ?? 'reports/junit.xml',
      json: values.json ?? 'reports/results.json',
      tap: values.tap ?? 'reports/results.tap',
      ...(values.ktap ? { ktap: values.ktap } : {}),
      ...(values.summary ? { summary: values.summary } : {}),
      bundles: values.bundles ?? 'reports/bundles',
    };
    const onCase = (r: CaseResult, done: number, total: number) => {
      const of = Number.isNaN(total) ? '' : `/${total}`;
      if (tty)
        err.write(`\r\x1b[K[${done}${of}] ${r.status.padEnd(14)} ${r.id}`.slice(0, (err.columns || 120) - 1));
      else if (r.unexpected) err.write(`${r.status}: ${r.id}: ${r.message ?? ''}\n`);
    };
    const jobs = positiveInt(values.jobs, '--jobs') ?? 1;
    const { results, unusable } =
      jobs > 1
        ? await runParallel(
            jobs,
            {
              options: common,
              ...(command.length > 0 ? { processCommand: command } : {}),
              ...(values.diff ? { diff: values.diff } : {}),
            },
            reports,
            onCase,
          )
        : await runSuite({
            ...common,
            factory,
            ...(values.diff ? { diff: { backend: values.diff, factory: backendFactory(values.diff) } } : {}),
            reports,
            onCase,
          });
    if (tty) err.write('\r\x1b[K');
    const t = results.totals;
    out.write(
      `kvmspec ${results.backend}: ${t.total} cases: ${t.pass} passed, ${t.fail} failed, ${t.error} errors, ${t.blocked} blocked, ${t.skip} skipped, ${t['not-applicable']} not applicable; ${t.unexpected} unexpected (${(results.durationMs / 1000).toFixed(1)} s)\n`,
    );
    for (const arch of unusable) err.write(`kvmspec: backend unusable for ${arch}\n`);
    for (const c of results.cases) {
      for (const d of c.divergences ?? []) {
        err.write(
          `diverges from ${values.diff ?? ''}: ${c.id} (${c.rule}) call ${d.call} ${d.ioctl} ${d.what}: ${d.ours.slice(0, 80)} vs ${d.theirs.slice(0, 80)}\n`,
        );
      }
    }
    for (const m of results.profileMismatches) {
      err.write(
        `kvmspec: ${m.arch} profile claims ${m.capability} = ${m.claimed ?? 'nothing'}, but KVM_CHECK_EXTENSION answers ${m.probed}\n`,
      );
    }
    if (results.diff) out.write(`${results.diff.divergent} cases diverge from ${results.diff.against}\n`);
    const flaky = results.cases.filter((c) => c.flaky);
    for (const c of flaky) err.write(`flaky: ${c.id}: ${attemptStatuses(c)}\n`);
    if (flaky.length > 0) out.write(`${flaky.length} cases came right only on a retry (flaky)\n`);
    for (const e of results.expectations.expired) {
      err.write(
        `kvmspec: expectation for ${e.id} expired on ${e.expires ?? ''}: renew it or remove it (${e.reason})\n`,
      );
    }
    const ranArches = new Set(results.cases.map((c) => c.arch));
    if (unusable.length > 0 && unusable.length === ranArches.size) return ExitCode.BackendUnusable;
    return runIsAsExpected(results) ? ExitCode.Ok : ExitCode.Unexpected;
  },
};
