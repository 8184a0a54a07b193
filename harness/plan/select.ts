import { globToRegExp, matchesAny } from '../glob.ts';
import type { PlannedCase } from './types.ts';

/** Which planned cases a run executes; every criterion given must hold. */
export interface Selection {
  /** Test-ID globs: a case matches if any matches. */
  filter?: string[];
  /** Rule-ID globs (`ONE_REG-ERR-*`). */
  rules?: string[];
  /** Tags of the rule or case (`vector`, `errno`, …): a case matches if it has any. */
  tags?: string[];
  /** Shard `index` (1-based) of `count`: by ID hash, stable across machines and plan changes. */
  shard?: { index: number; count: number };
  /** Part `index` (1-based) of `count` of what the rest selects, round-robin: for workers in one run. */
  partition?: { index: number; count: number };
}

/** FNV-1a over the ID: a case's shard depends on its own ID only, so adding cases moves no other case. */
export function shardOf(id: string, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h % count) + 1;
}

export function selectCases(plan: PlannedCase[], s: Selection): PlannedCase[] {
  const selected = select(plan, s);
  const part = s.partition;
  return part ? selected.filter((_, i) => i % part.count === part.index - 1) : selected;
}

function select(plan: PlannedCase[], s: Selection): PlannedCase[] {
  const ids = s.filter?.length ? s.filter.map(globToRegExp) : undefined;
  const rules = s.rules?.length ? s.rules.map(globToRegExp) : undefined;
  const tags = s.tags?.length ? new Set(s.tags) : undefined;
  return plan.filter(
    (c) =>
      (!ids || matchesAny(c.id, ids)) &&
      (!rules || matchesAny(c.rule, rules)) &&
      (!tags || c.tags.some((t) => tags.has(t))) &&
      (!s.shard || shardOf(c.id, s.shard.count) === s.shard.index),
  );
}
