import { attemptStatuses, type CaseResult, type RunResults } from '../run/results.ts';

/** GitHub's limit for a check-run summary and for $GITHUB_STEP_SUMMARY. */
export const SUMMARY_LIMIT = 65_535;
const FLAKY_LISTED = 20;

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function failureRow(c: CaseResult): string {
  const why = c.expectation ? `expected: ${c.expectation.reason}` : (c.message ?? '');
  return `| ${c.unexpected ? '**unexpected**' : 'expected'} ${c.status} | \`${cell(c.id)}\` | ${cell(why).slice(0, 300)} |`;
}

/**
 * A Markdown summary that fits GitHub's 65,535-byte limit: the totals first, then failures (the
 * unexpected ones before the expected), then as many further rows as fit, with a line saying what was
 * left out.
 */
export function renderSummary(results: RunResults, limit = SUMMARY_LIMIT): string {
  const t = results.totals;
  const head = [
    `## kvmspec: ${results.backend} (${results.profiles.map((p) => `${p.arch} ${p.implementation} ${p.version}`).join(', ')})`,
    '',
    `| total | pass | fail | error | blocked | skip | not applicable | unexpected |`,
    `|---|---|---|---|---|---|---|---|`,
    `| ${t.total} | ${t.pass} | ${t.fail} | ${t.error} | ${t.blocked} | ${t.skip} | ${t['not-applicable']} | ${t.unexpected} |`,
    '',
  ];
  for (const e of results.expectations.expired)
    head.push(`- expired expectation: \`${cell(e.id)}\` (${e.expires ?? ''})`);
  // A few names are enough to go on; the JUnit and JSON reports list every attempt.
  const flaky = results.cases.filter((x) => x.flaky);
  for (const c of flaky.slice(0, FLAKY_LISTED))
    head.push(`- flaky, right only on a retry: \`${cell(c.id)}\` (${attemptStatuses(c)})`);
  if (flaky.length > FLAKY_LISTED) head.push(`- and ${flaky.length - FLAKY_LISTED} more flaky cases`);
  const failing = results.cases
    .filter((c) => c.status === 'fail' || c.status === 'error' || c.status === 'blocked')
    .sort((a, b) => Number(b.unexpected) - Number(a.unexpected));
  const rows =
    failing.length > 0
      ? ['', '| status | test | why |', '|---|---|---|', ...failing.map(failureRow)]
      : ['', 'Every case passed or was skipped.'];
  let text = head.join('\n');
  let shown = 0;
  for (const row of rows) {
    // Keep room for the closing note about rows left out.
    if (Buffer.byteLength(text) + Buffer.byteLength(row) + 200 > limit) break;
    text += `\n${row}`;
    if (row.startsWith('| ') && !row.startsWith('| status')) shown++;
  }
  const hidden = failing.length - shown;
  if (hidden > 0)
    text += `\n\n${hidden} more failing cases are not listed here (size limit); see the JUnit or JSON report.`;
  return `${text}\n`;
}
