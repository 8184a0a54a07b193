// The mutation score per API, from Stryker's JSON report (reports/mutation/mutation.json). A mutant
// belongs to every API whose cases reach it (per-test coverage); the score of an API is the share of
// its mutants that some case kills. Mutants no case reaches are listed per file.
import { readFileSync, writeFileSync } from 'node:fs';

interface Mutant {
  status: string;
  /** Runs while modules load (a table, a constant): no single case covers it. */
  static?: boolean;
  coveredBy?: string[];
  killedBy?: string[];
}
interface Report {
  files: Record<string, { mutants: Mutant[] }>;
  testFiles?: Record<string, { tests: { id: string; name: string }[] }>;
}

/** Statuses Stryker counts as detected and as undetected (compile and runtime errors, ignored: neither). */
const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);

const file = process.argv[2] ?? 'reports/mutation/mutation.json';
const report = JSON.parse(readFileSync(file, 'utf8')) as Report;
/** Test names are "<suite> <API> <arch> <case ID>"; the case ID's first segment is the API. */
const apiOfTest = new Map<string, string>();
for (const { tests } of Object.values(report.testFiles ?? {}))
  for (const t of tests) apiOfTest.set(t.id, t.name.split(' ').at(-1)?.split('/')[0] ?? '?');

const perApi = new Map<string, { detected: number; undetected: number }>();
const uncovered = new Map<string, number>();
const statics = { detected: 0, undetected: 0 };
let detected = 0;
let undetected = 0;
for (const [path, { mutants }] of Object.entries(report.files)) {
  for (const m of mutants) {
    if (!DETECTED.has(m.status) && !UNDETECTED.has(m.status)) continue;
    const hit = DETECTED.has(m.status);
    if (hit) detected++;
    else undetected++;
    if (m.static) {
      if (hit) statics.detected++;
      else statics.undetected++;
    } else if (m.status === 'NoCoverage') uncovered.set(path, (uncovered.get(path) ?? 0) + 1);
    for (const api of new Set((m.coveredBy ?? []).map((id) => apiOfTest.get(id) ?? '?'))) {
      const s = perApi.get(api) ?? { detected: 0, undetected: 0 };
      if (hit) s.detected++;
      else s.undetected++;
      perApi.set(api, s);
    }
  }
}

const pct = (d: number, u: number) => (d + u === 0 ? 100 : (100 * d) / (d + u));
const rows = [...perApi].sort(([a], [b]) => a.localeCompare(b));
console.log('API               mutants  killed  score');
for (const [api, s] of rows)
  console.log(
    `${api.padEnd(17)} ${String(s.detected + s.undetected).padStart(7)} ${String(s.detected).padStart(7)}  ${pct(s.detected, s.undetected).toFixed(1)}%`,
  );
console.log(
  `static (load)     ${String(statics.detected + statics.undetected).padStart(7)} ${String(statics.detected).padStart(7)}  ${pct(statics.detected, statics.undetected).toFixed(1)}%`,
);
console.log(
  `total             ${String(detected + undetected).padStart(7)} ${String(detected).padStart(7)}  ${pct(detected, undetected).toFixed(1)}%`,
);
for (const [path, n] of uncovered) console.log(`no case reaches ${n} mutant(s) in ${path}`);
writeFileSync(
  'reports/mutation/score.json',
  `${JSON.stringify({ total: { detected, undetected, score: pct(detected, undetected) }, perApi: Object.fromEntries(rows.map(([api, s]) => [api, { ...s, score: pct(s.detected, s.undetected) }])), static: { ...statics, score: pct(statics.detected, statics.undetected) }, uncovered: Object.fromEntries(uncovered) }, null, 2)}\n`,
);
