import { BackendError } from '../../adapters/backend.ts';
import { ExitCode, SpecError, exitCodeFor, formatProblem, KvmspecError } from '../errors.ts';
import type { Command, Io } from './args.ts';
import { expectationsCommand } from './commands/expectations.ts';
import { listCommand } from './commands/list.ts';
import { replayCommand } from './commands/replay.ts';
import { reportCommand } from './commands/report.ts';
import { runCommand } from './commands/run.ts';
import { serveCommand } from './commands/serve.ts';
import { specCommand } from './commands/spec.ts';
import { verifyCommand } from './commands/verify.ts';

/** Every command, in the order --help lists them. Adding a command is one module and one line here. */
const commands: Command[] = [
  runCommand,
  listCommand,
  specCommand,
  serveCommand,
  expectationsCommand,
  reportCommand,
  replayCommand,
  verifyCommand,
];

function usage(): string {
  return [
    'usage: kvmspec <command> [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.usage}`),
    '',
    'exit status: 0 all as expected, 1 unexpected results, 2 usage or spec errors, 3 backend unusable',
  ].join('\n');
}

function report(e: unknown, err: NodeJS.WriteStream): number {
  if (e instanceof SpecError) {
    for (const p of e.problems) err.write(`${formatProblem(p)}\n`);
    err.write(`kvmspec: ${e.problems.length} spec problem(s)\n`);
  } else if (e instanceof KvmspecError) {
    err.write(`kvmspec: ${e.message}\n`);
  } else if (e instanceof BackendError) {
    err.write(`kvmspec: backend unusable: ${e.message}\n`);
    return ExitCode.BackendUnusable;
  } else {
    err.write(`kvmspec: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  }
  return exitCodeFor(e);
}

/** The CLI: finds the command, runs it over the library, maps errors to exit statuses. Returns the status. */
export async function main(
  argv: string[],
  out: NodeJS.WriteStream = process.stdout,
  err: NodeJS.WriteStream = process.stderr,
): Promise<number> {
  const [name, ...rest] = argv;
  const io: Io = { out, err };
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    (name === undefined ? err : out).write(`${usage()}\n`);
    return name === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    err.write(`kvmspec: unknown command '${name}'\n\n${usage()}\n`);
    return ExitCode.Usage;
  }
  // `kvmspec run --help`: the command's own usage (options after `--` belong to a backend program).
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (own.includes('--help') || own.includes('-h')) {
    out.write(`usage: kvmspec ${command.usage}\n`);
    return ExitCode.Ok;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    return report(e, err);
  }
}
