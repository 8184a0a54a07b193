import type { CaseContext, GenerateContext, GeneratedCase } from '../../harness/plan/types.ts';
import type { OpName } from './guest.ts';

/** Whether a constant exists in the selected revision (ABSOLUTE_CMPXCHG upstream, F_CMPXCHG in the proposal). */
export function inRevision(g: GenerateContext, name: string): boolean {
  const def = g.spec.constantDef(name, 's390x');
  return !def.revisions || def.revisions.includes(g.revision);
}

export const VCPU_OPS: readonly OpName[] = ['LOGICAL_READ', 'LOGICAL_WRITE'];
export const VM_OPS: readonly OpName[] = ['ABSOLUTE_READ', 'ABSOLUTE_WRITE'];

/** Every logical and absolute op the revision has: ABSOLUTE_CMPXCHG only where it was merged. */
export function memOps(g: GenerateContext): OpName[] {
  return [
    ...VCPU_OPS,
    ...VM_OPS,
    ...(inRevision(g, 'KVM_S390_MEMOP_ABSOLUTE_CMPXCHG') ? (['ABSOLUTE_CMPXCHG'] as const) : []),
  ];
}

export const isWrite = (op: OpName) => op.endsWith('WRITE');
export { hex } from '../../harness/spec/int.ts';

/** One case per item: its ID parameters and its body. */
export function cases<T>(
  items: readonly T[],
  params: (item: T) => Record<string, string>,
  run: (ctx: CaseContext, item: T) => Promise<void>,
): GeneratedCase[] {
  return items.map((item) => ({ params: params(item), run: (ctx: CaseContext) => run(ctx, item) }));
}

/** Cases of a rule whose capability the backend lacks (and which states no absent arm) do not apply. */
export function requireCapability(ctx: CaseContext, what: string): void {
  if (!ctx.capabilityPresent) ctx.notApplicable(`the backend does not offer ${what}`);
}
