import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { defaultSpecRoot } from '../paths.ts';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const schemaDir = path.join(defaultSpecRoot, 'schema');

/**
 * One strict ajv instance holding every meta-schema under spec/schema (spec kinds, and the protocol's
 * message schemas when present). Strict mode rejects unknown keywords in the schemas themselves; the
 * schemas' `additionalProperties: false` rejects unknown properties in the documents.
 */
let shared: Ajv2020 | undefined;
export function schemaRegistry(): Ajv2020 {
  if (shared) return shared;
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true, allowUnionTypes: true });
  addFormats(ajv);
  for (const file of listSchemaFiles(schemaDir)) {
    ajv.addSchema(JSON.parse(readFileSync(file, 'utf8')) as object);
  }
  shared = ajv;
  return ajv;
}

function listSchemaFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.schema.json'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

export function schemaValidator(id: string): ValidateFunction {
  const fn = schemaRegistry().getSchema(`https://kvmspec.dev/schema/${id}`);
  if (!fn) throw new Error(`no meta-schema ${id} under ${schemaDir}`);
  return fn;
}

/**
 * ajv reports `oneOf`/`anyOf` failures as a cloud of branch errors; keep the deepest ones, which name the
 * property actually at fault, and fold duplicates.
 */
export function describeAjvErrors(
  errors: ErrorObject[] | null | undefined,
): { pointer: string; message: string }[] {
  const list = errors ?? [];
  const deepest = list.filter(
    (e) => !list.some((o) => o !== e && o.instancePath.startsWith(e.instancePath + '/')),
  );
  const seen = new Set<string>();
  const out: { pointer: string; message: string }[] = [];
  for (const e of deepest.length > 0 ? deepest : list) {
    const extra =
      e.keyword === 'additionalProperties'
        ? ` '${String((e.params as { additionalProperty: string }).additionalProperty)}'`
        : e.keyword === 'enum'
          ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')})`
          : '';
    const message = `${e.message ?? e.keyword}${extra}`;
    const key = `${e.instancePath}\0${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ pointer: e.instancePath, message });
  }
  return out;
}
