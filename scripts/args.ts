// Argument handling shared by the npm scripts (bench, fuzz): a bad flag or value stops the script before it
// does any work, with one line naming the script and the flag, and exit code 2, as the CLI does.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Stops the script with a usage error (exit 2). */
export function usage(script: string, message: string): never {
  console.error(`${script}: ${message}`);
  process.exit(2);
}

/** node:util's parseArgs, with its errors (an unknown or incomplete option) turned into usage errors. */
export function parseScriptArgs<T extends ParseArgsConfig['options']>(
  script: string,
  options: T,
): ReturnType<typeof parseArgs<{ options: T }>> {
  try {
    return parseArgs({ options });
  } catch (err) {
    return usage(script, (err as Error).message);
  }
}

/** A flag's value as a number above 0, or a usage error naming the flag. */
export function positive(script: string, flag: string, value: string): number {
  const n = Number(value);
  if (!(n > 0)) usage(script, `--${flag}: '${value}' is not a positive number`);
  return n;
}

/** A flag's value as a whole number, 0 or more, or a usage error naming the flag. */
export function wholeNumber(script: string, flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) usage(script, `--${flag}: '${value}' is not a whole number`);
  return n;
}
