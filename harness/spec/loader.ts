import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { SpecError, type SpecProblem } from '../errors.ts';
import { defaultSpecRoot } from '../paths.ts';
import { describeAjvErrors, schemaValidator } from './schemas.ts';
import { checkSemantics } from './semantics.ts';
import { SpecTree } from './tree.ts';
import type { Located, SpecDoc, SpecKind } from './types.ts';

const schemaForKind: Record<SpecKind, string> = {
  arches: 'arches.schema.json',
  struct: 'struct.schema.json',
  ioctl: 'ioctl.schema.json',
  hypercall: 'hypercall.schema.json',
  constants: 'constants.schema.json',
  registers: 'registers.schema.json',
};

/** Every spec document file below `root`: JSON files outside the schema folder. */
export function listSpecFiles(root: string): string[] {
  if (statSync(root).isFile()) return [root];
  return readdirSync(root, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.json') && !e.name.endsWith('.schema.json'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** Parses and schema-checks one file; returns the problems instead of throwing so a run can report them all. */
export function readSpecFile(file: string, displayName: string): { doc?: SpecDoc; problems: SpecProblem[] } {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    return {
      problems: [{ file: displayName, pointer: '', message: `not valid JSON: ${(err as Error).message}` }],
    };
  }
  const kind = (data as { kind?: unknown } | null)?.kind;
  if (typeof kind !== 'string' || !(kind in schemaForKind)) {
    return {
      problems: [
        {
          file: displayName,
          pointer: '/kind',
          message: `must be one of ${Object.keys(schemaForKind).join(', ')} (got ${JSON.stringify(kind)})`,
        },
      ],
    };
  }
  const validate = schemaValidator(schemaForKind[kind as SpecKind]);
  if (!validate(data)) {
    return { problems: describeAjvErrors(validate.errors).map((e) => ({ file: displayName, ...e })) };
  }
  return { doc: data as SpecDoc, problems: [] };
}

export interface LoadOptions {
  /** Where the spec tree is; defaults to the package's spec/. */
  root?: string;
}

/**
 * Loads a spec tree: every file parsed and checked against its kind's meta-schema, then the cross-file
 * checks (unique rule IDs, struct layouts that do not overlap, references that resolve). Any problem
 * throws a SpecError listing all of them, each with its file and JSON pointer.
 */
export function loadSpec(options: LoadOptions = {}): SpecTree {
  const root = path.resolve(options.root ?? defaultSpecRoot);
  const docs: Located<SpecDoc>[] = [];
  const problems: SpecProblem[] = [];
  const base = statSync(root).isFile() ? path.dirname(root) : root;
  for (const file of listSpecFiles(root)) {
    const display = path.relative(process.cwd(), file) || file;
    const { doc, problems: found } = readSpecFile(file, display);
    problems.push(...found);
    if (doc) docs.push({ file: path.relative(base, file).split(path.sep).join('/'), doc });
  }
  if (problems.length === 0)
    problems.push(...checkSemantics(docs, (f) => path.relative(process.cwd(), path.join(base, f))));
  if (problems.length > 0) throw new SpecError(problems);
  return new SpecTree(root, docs);
}
