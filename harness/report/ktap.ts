import { attemptStatuses, type CaseResult, type RunResults } from '../run/results.ts';

// KTAP v1 (Documentation/dev-tools/ktap.rst): a description must not contain '#' or a newline.
const clean = (s: string) => s.replace(/[#\n\r]/g, '_');

function resultLine(ok: boolean, n: number, name: string, directive = ''): string {
  return `${ok ? 'ok' : 'not ok'} ${n} ${clean(name)}${directive ? ` # ${directive}` : ''}`;
}

function caseLine(c: CaseResult, n: number): string {
  switch (c.status) {
    case 'pass':
      return resultLine(true, n, c.id);
    case 'skip':
    case 'not-applicable':
      return resultLine(true, n, c.id, `SKIP ${clean(`${c.status}: ${c.message ?? ''}`)}`);
    case 'fail':
    case 'error':
    case 'blocked':
      return resultLine(false, n, c.id);
  }
}

/**
 * KTAP v1 for kernel-side consumers: one subtest per API (indented four spaces, with its own version
 * line and plan), one test line per case, the API's line after it: ok when every case passed or
 * skipped. Diagnostics ('# ' lines) carry the failure messages.
 */
export function renderKtap(results: RunResults): string {
  const apis = new Map<string, CaseResult[]>();
  for (const c of results.cases) apis.set(c.api, [...(apis.get(c.api) ?? []), c]);
  const out = ['KTAP version 1', `1..${apis.size}`];
  let n = 0;
  for (const [api, cases] of apis) {
    n++;
    out.push('    KTAP version 1', `    # Subtest: ${clean(api)}`, `    1..${cases.length}`);
    cases.forEach((c, i) => {
      if (c.message && !['pass', 'skip', 'not-applicable'].includes(c.status)) {
        for (const line of c.message.split('\n').slice(0, 5)) out.push(`    # ${line}`);
      }
      if (c.attempts) out.push(`    # ${c.flaky ? 'flaky, ' : ''}attempts: ${attemptStatuses(c, ', ')}`);
      out.push(`    ${caseLine(c, i + 1)}`);
    });
    const ok = cases.every(
      (c) => c.status === 'pass' || c.status === 'skip' || c.status === 'not-applicable',
    );
    out.push(resultLine(ok, n, api));
  }
  const t = results.totals;
  out.push(
    `# totals: pass:${t.pass} fail:${t.fail} error:${t.error} blocked:${t.blocked} skip:${t.skip + t['not-applicable']}`,
  );
  return `${out.join('\n')}\n`;
}
