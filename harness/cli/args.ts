import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ErrorCode, KvmspecError } from '../errors.ts';
import type { Selection } from '../plan/select.ts';
import { ARCHES, type Arch } from '../spec/types.ts';

/** What a command writes to; the CLI passes the process's streams, tests pass captures. */
export interface Io {
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
}

/** One `kvmspec` command: its usage lines and its entry point, which returns the exit status. */
export interface Command {
  name: string;
  usage: string;
  run(args: string[], io: Io): Promise<number> | number;
}

export function usageError(message: string): KvmspecError {
  return new KvmspecError(ErrorCode.Usage, `${message} (see kvmspec --help)`);
}

/** Strict option parsing: an unknown flag or a missing value is a usage error (exit 2). */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw usageError((err as Error).message);
  }
}

export function parseArches(values: string[] | undefined): Arch[] | undefined {
  if (!values || values.length === 0) return undefined;
  for (const v of values) {
    if (!(ARCHES as readonly string[]).includes(v))
      throw usageError(`unknown arch '${v}' (known: ${ARCHES.join(', ')})`);
  }
  return values as Arch[];
}

export function nonNegativeInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff)
    throw usageError(`${flag} takes a whole number from 0 to 2147483647, not '${value}'`);
  return n;
}

export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw usageError(`${flag} takes a positive whole number, not '${value}'`);
  return n;
}

/** The options every command that selects cases shares. */
export const selectionOptions = {
  arch: { type: 'string', multiple: true },
  filter: { type: 'string', multiple: true },
  rule: { type: 'string', multiple: true },
  tag: { type: 'string', multiple: true },
  shard: { type: 'string' },
  revision: { type: 'string' },
} as const;

export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index < 1 || index > count)
    throw usageError(`--shard takes i/n with 1 <= i <= n, not '${text}'`);
  return { index, count };
}

export function selectionFrom(values: {
  filter?: string[];
  rule?: string[];
  tag?: string[];
  shard?: string;
}): Selection {
  return {
    ...(values.filter ? { filter: values.filter } : {}),
    ...(values.rule ? { rules: values.rule } : {}),
    ...(values.tag ? { tags: values.tag } : {}),
    ...(values.shard ? { shard: parseShard(values.shard) } : {}),
  };
}
