import type { SpecTree } from '../spec/tree.ts';
import type { Erratum } from '../spec/types.ts';

/** Every erratum in the spec, by ID: seed contradictions and proposal-versus-merged differences. */
export function allErrata(spec: SpecTree): Erratum[] {
  const byId = new Map<string, Erratum>();
  for (const { doc } of spec.docs) {
    if ('errata' in doc) for (const e of doc.errata ?? []) byId.set(e.id, e);
  }
  return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
}

/** The errata as plain text lines (for comments in formats without a place of their own for them). */
export function errataText(spec: SpecTree): string[] {
  const errata = allErrata(spec);
  if (errata.length === 0) return [];
  return [
    'Errata recorded in the spec:',
    ...errata.flatMap((e) => [`${e.id}: ${e.statement}`, `  reading taken: ${e.reading}`, `  why: ${e.why}`]),
  ];
}
