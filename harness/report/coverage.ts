import { apiOf, buildPlan } from '../plan/plan.ts';
import { STATUSES, type Status, type SuiteFamily } from '../plan/types.ts';
import { UPSTREAM, type SpecTree } from '../spec/tree.ts';
import type { LabelledRun } from './runs.ts';

/** Every revision the spec names: upstream first, then the others sorted. */
export function revisionsOf(spec: SpecTree): string[] {
  const names = new Set<string>();
  for (const { doc, rule } of spec.rules()) {
    for (const r of doc.revisions ?? []) names.add(r.name);
    for (const r of rule.revisions ?? []) names.add(r);
  }
  names.delete(UPSTREAM);
  return [UPSTREAM, ...[...names].sort()];
}

/** The test IDs each rule generates on every arch, over the given revisions (all by default), sorted. */
export function planIdsByRule(
  spec: SpecTree,
  families: SuiteFamily[],
  revisions: string[] = revisionsOf(spec),
): Map<string, string[]> {
  const ids = new Map<string, Set<string>>(spec.rules().map((r) => [r.rule.id, new Set()]));
  for (const revision of revisions)
    for (const c of buildPlan(spec, families, { arches: spec.arches, revision })) ids.get(c.rule)?.add(c.id);
  return new Map([...ids].map(([rule, set]) => [rule, [...set].sort()]));
}

export type StatusCounts = Partial<Record<Status, number>>;

export interface CoverageRow {
  api: string;
  rule: string;
  /** Cases the plan generates from the rule, all arches and revisions. */
  planned: number;
  /** Per run, in the order of the runs: how many of the rule's cases ended in each status. */
  outcomes: StatusCounts[];
}

export interface Coverage {
  runs: string[];
  rows: CoverageRow[];
}

/** The clause-coverage matrix: every rule of the spec (file order) against every run's outcomes. */
export function coverage(spec: SpecTree, families: SuiteFamily[], runs: LabelledRun[]): Coverage {
  const planned = planIdsByRule(spec, families);
  const rows = spec.rules().map((ref) => {
    const { rule } = ref;
    const outcomes = runs.map((run) => {
      const counts: StatusCounts = {};
      for (const c of run.results.cases)
        if (c.rule === rule.id) counts[c.status] = (counts[c.status] ?? 0) + 1;
      return counts;
    });
    return { api: apiOf(ref), rule: rule.id, planned: planned.get(rule.id)?.length ?? 0, outcomes };
  });
  return { runs: runs.map((r) => r.label), rows };
}

export function uncovered(c: Coverage): CoverageRow[] {
  return c.rows.filter((r) => r.planned === 0);
}

export function formatCounts(counts: StatusCounts): string {
  const parts = STATUSES.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`);
  return parts.length > 0 ? parts.join(', ') : '-';
}

/** The matrix as an aligned text table, then the rules without a case, if any. */
export function formatCoverage(c: Coverage): string {
  const table = [
    ['rule', 'cases', ...c.runs],
    ...c.rows.map((r) => [
      r.rule,
      r.planned === 0 ? 'NONE' : String(r.planned),
      ...r.outcomes.map(formatCounts),
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  const missing = uncovered(c);
  lines.push('', `${c.rows.length} rules, ${missing.length} without a case`);
  for (const r of missing) lines.push(`no case: ${r.rule}`);
  return `${lines.join('\n')}\n`;
}
