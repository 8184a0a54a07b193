import { attemptStatuses, type CaseResult, type RunResults } from '../run/results.ts';

/** A YAML scalar that survives any text: JSON strings are valid YAML. */
const yamlString = (s: string) => JSON.stringify(s);
// A test point's description must not contain '#' (it starts a directive) or a newline.
const description = (s: string) => s.replace(/[#\n\r]/g, '_');

function diagnostics(c: CaseResult): string[] {
  const lines = [
    '  ---',
    `  rule: ${yamlString(c.rule)}`,
    `  arch: ${c.arch}`,
    `  status: ${c.status}`,
    `  duration_ms: ${c.durationMs}`,
  ];
  if (c.message) lines.push(`  message: ${yamlString(c.message)}`);
  if (c.expected !== undefined) lines.push(`  expected: ${yamlString(c.expected)}`);
  if (c.actual !== undefined) lines.push(`  actual: ${yamlString(c.actual)}`);
  for (const [k, v] of Object.entries(c.notes)) lines.push(`  ${k}: ${yamlString(v)}`);
  if (c.attempts) lines.push(`  attempts: ${yamlString(attemptStatuses(c))}`);
  if (c.flaky) lines.push('  flaky: true');
  lines.push('  ...');
  return lines;
}

/**
 * TAP version 13. Skips and not-applicable cases are `ok … # SKIP reason`; every other non-pass is
 * `not ok`, an expected one marked `# TODO` — so a TAP consumer counts exactly what our JUnit counts.
 */
export function renderTap(results: RunResults): string {
  const out = ['TAP version 13', `1..${results.cases.length}`];
  results.cases.forEach((c, i) => {
    const n = i + 1;
    const name = description(c.id);
    switch (c.status) {
      case 'pass':
        out.push(`ok ${n} - ${name}`);
        break;
      case 'skip':
      case 'not-applicable':
        out.push(`ok ${n} - ${name} # SKIP ${description(`${c.status}: ${c.message ?? ''}`)}`);
        break;
      case 'fail':
      case 'error':
      case 'blocked': {
        const todo = c.expectation
          ? ` # TODO ${description(`expected ${c.status}: ${c.expectation.reason}`)}`
          : '';
        out.push(`not ok ${n} - ${name}${todo}`);
        break;
      }
    }
    out.push(...diagnostics(c));
  });
  const t = results.totals;
  out.push(
    `# pass ${t.pass}, fail ${t.fail}, error ${t.error}, blocked ${t.blocked}, skip ${t.skip}, not-applicable ${t['not-applicable']}`,
  );
  return `${out.join('\n')}\n`;
}
