import { hexToBytes, toBigInt } from '../spec/int.ts';
import type { CallArg, StructArg } from '../session.ts';
import type { RuleRef } from '../spec/tree.ts';
import type { FdKind, Vector } from '../spec/types.ts';
import { assertBytes, assertField, assertOutcome } from './outcome.ts';
import type { CaseBody, CaseContext } from './types.ts';

function toCallArg(v: Vector): CallArg {
  const arg = v.arg;
  if (!arg) return 0n;
  if (arg.int !== undefined) return toBigInt(arg.int);
  if (arg.pointer) return { pointer: arg.pointer };
  const struct: StructArg = {};
  for (const [name, value] of Object.entries(arg.struct ?? {})) {
    if (Array.isArray(value)) struct[name] = value.map(toBigInt);
    else if (typeof value === 'object' || value === 'null' || value === 'invalid') struct[name] = value;
    else struct[name] = toBigInt(value);
  }
  return { struct };
}

/** The fd a vector's call goes to: the one it names, else the first fd kind its ioctl accepts. */
function targetFd(v: Vector, ref: RuleRef, ctx: CaseContext): FdKind {
  if (v.fd) return v.fd;
  const name = v.ioctl ?? ref.doc.name;
  return ctx.spec.ioctl(name).fds[0] ?? 'system';
}

/**
 * Runs one explicit vector: set up the fixture, make the call, and check the outcome — or, where the
 * rule's capability is absent, the rule's absent arm.
 */
export function vectorBody(ref: RuleRef, v: Vector): CaseBody {
  return async (ctx) => {
    const absent = !ctx.capabilityPresent;
    const outcome = absent ? ref.rule.capability?.absent : v.expect;
    if (!outcome)
      return ctx.notApplicable(
        `capability ${ref.rule.capability?.name} is absent and the rule has no absent arm`,
      );
    const fds = await ctx.fixture(v.fixture);
    const kind = targetFd(v, ref, ctx);
    const fd = fds[kind];
    if (fd === undefined) throw new Error(`fixture ${v.fixture} opens no ${kind} fd`);
    const name = v.ioctl ?? ref.doc.name;
    const r = await ctx.kvm.call(fd, name, toCallArg(v));
    assertOutcome(r, outcome, name);
    if (absent) return;
    for (const [field, value] of Object.entries(v.expect.fields ?? {})) {
      const expected = Array.isArray(value) ? value.map(toBigInt) : toBigInt(value);
      assertField(r.fields[field], expected, `${name} field ${field} after the call`);
    }
    for (const [field, bytes] of Object.entries(v.expect.buffers ?? {})) {
      const got = r.spans[field];
      if (!got) throw new Error(`vector checks buffer ${field}, which the call did not point to`);
      assertBytes(got, hexToBytes(bytes), `${name} buffer behind ${field}`);
    }
  };
}
