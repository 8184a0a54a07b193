import type { ValidateFunction } from 'ajv/dist/2020.js';
import { describeAjvErrors, schemaRegistry } from '../../harness/spec/schemas.ts';
import { OPS, okSchemaDef, type Op } from './messages.ts';

const BASE = 'https://kvmspec.dev/schema/protocol';
const compiled = new Map<string, ValidateFunction>();

/** ajv compiles each schema once; later lookups reuse the compiled function. */
function validator(ref: string): ValidateFunction {
  let fn = compiled.get(ref);
  if (!fn) {
    fn = schemaRegistry().getSchema(`${BASE}/${ref}`);
    if (!fn) throw new Error(`protocol schema ${ref} is missing`);
    compiled.set(ref, fn);
  }
  return fn;
}

/** Undefined when the message matches; else every problem, each at its JSON pointer. */
function check(ref: string, message: unknown): string | undefined {
  const fn = validator(ref);
  if (fn(message)) return undefined;
  return describeAjvErrors(fn.errors)
    .map((e) => `${e.pointer || '/'}: ${e.message}`)
    .join('; ');
}

export function handshakeProblem(message: unknown): string | undefined {
  return check('handshake.schema.json', message);
}

/** Checks against the definition of the request's own op, so problems name the field at fault. */
export function requestProblem(message: unknown): string | undefined {
  const op = isObject(message) ? message.op : undefined;
  if (typeof op === 'string' && (OPS as readonly string[]).includes(op)) {
    return check(`request.schema.json#/$defs/${op}`, message);
  }
  return check('request.schema.json', message);
}

export function responseProblem(op: Op, message: unknown): string | undefined {
  const failed = isObject(message) && message.ok === false;
  return check(`response.schema.json#/$defs/${failed ? 'failure' : okSchemaDef(op)}`, message);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
