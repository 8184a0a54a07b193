import { attemptStatuses, type CaseResult, type RunResults } from '../run/results.ts';

// XML 1.0 forbids most control characters even when escaped; replace them visibly.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const INVALID_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g;

export function xmlEscape(text: string): string {
  return text
    .replace(INVALID_XML, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** JUnit classname from the spec file: spec/ioctls/KVM_GET_ONE_REG.json → spec.ioctls.KVM_GET_ONE_REG. */
export function classnameOf(file: string): string {
  return `spec.${file
    .replace(/\.json$/, '')
    .split('/')
    .join('.')}`;
}

function properties(c: CaseResult): [string, string][] {
  const props: [string, string][] = [
    ['rule', c.rule],
    ['arch', c.arch],
    ['api', c.api],
    ['spec', `spec/${c.file}`],
    ['status', c.status],
  ];
  for (const [k, v] of Object.entries(c.notes)) props.push([`note.${k}`, v]);
  if (c.expectation) props.push(['expectation', `${c.expectation.status}: ${c.expectation.reason}`]);
  if (c.attempts) props.push(['attempts', attemptStatuses(c)]);
  if (c.flaky) props.push(['flaky', 'true']);
  return props;
}

/**
 * The other attempts of a retried case, as Maven Surefire writes reruns (Jenkins' junit plugin reads
 * them): flakyFailure/flakyError in a case that came right, rerunFailure/rerunError in one that never
 * did. Attempts that neither failed nor erred (an unexpected pass or skip) show in the attempts property.
 */
function reruns(c: CaseResult): string[] {
  const others = c.flaky ? (c.attempts ?? []).slice(0, -1) : (c.attempts ?? []).slice(1);
  const kind = c.flaky ? 'flaky' : 'rerun';
  return others.flatMap((a) => {
    if (a.status !== 'fail' && a.status !== 'error' && a.status !== 'blocked') return [];
    const element = `${kind}${a.status === 'fail' ? 'Failure' : 'Error'}`;
    const message = `${a.status}: ${a.message ?? ''}`;
    return [
      `      <${element} message="${xmlEscape(message)}" type="${a.status}"><stackTrace>${xmlEscape(message)}</stackTrace></${element}>`,
    ];
  });
}

function testcase(c: CaseResult): string {
  const attrs = `classname="${xmlEscape(classnameOf(c.file))}" name="${xmlEscape(c.id)}" time="${(c.durationMs / 1000).toFixed(6)}"`;
  const props = properties(c);
  const body: string[] = [];
  body.push(`      <properties>`);
  for (const [k, v] of props) body.push(`        <property name="${xmlEscape(k)}" value="${xmlEscape(v)}"/>`);
  body.push(`      </properties>`);
  const message = c.message ?? '';
  const detail = [
    message,
    c.expected !== undefined ? `expected: ${c.expected}` : '',
    c.actual !== undefined ? `actual: ${c.actual}` : '',
  ]
    .filter(Boolean)
    .join('\n');
  switch (c.status) {
    case 'pass':
      break;
    case 'skip':
    case 'not-applicable':
      body.push(`      <skipped message="${xmlEscape(`${c.status}: ${message}`)}"/>`);
      break;
    case 'fail': {
      const prefix = c.expectation ? `expected failure (${c.expectation.reason}): ` : '';
      body.push(
        `      <failure message="${xmlEscape(prefix + message)}" type="assertion">${xmlEscape(detail)}</failure>`,
      );
      break;
    }
    case 'error':
    case 'blocked': {
      const prefix = c.expectation ? `expected ${c.status} (${c.expectation.reason}): ` : '';
      body.push(
        `      <error message="${xmlEscape(prefix + message)}" type="${c.status}">${xmlEscape(detail)}</error>`,
      );
      break;
    }
  }
  body.push(...reruns(c));
  // Jenkins drops <properties> by default and GitLab ignores them: mirror them where both look.
  body.push(`      <system-out>${xmlEscape(props.map(([k, v]) => `${k}: ${v}`).join('\n'))}</system-out>`);
  return `    <testcase ${attrs}>\n${body.join('\n')}\n    </testcase>`;
}

/** Our own JUnit XML: one testsuite per API and arch, testcases named by their stable IDs. */
export function renderJunit(results: RunResults): string {
  const groups = new Map<string, CaseResult[]>();
  for (const c of results.cases) {
    const key = `${c.api}/${c.arch}`;
    const list = groups.get(key) ?? [];
    list.push(c);
    groups.set(key, list);
  }
  const count = (cases: CaseResult[]) => ({
    tests: cases.length,
    failures: cases.filter((c) => c.status === 'fail').length,
    errors: cases.filter((c) => c.status === 'error' || c.status === 'blocked').length,
    skipped: cases.filter((c) => c.status === 'skip' || c.status === 'not-applicable').length,
    time: cases.reduce((t, c) => t + c.durationMs, 0) / 1000,
  });
  const all = count(results.cases);
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>'];
  lines.push(
    `<testsuites name="kvmspec ${xmlEscape(results.backend)}" tests="${all.tests}" failures="${all.failures}" errors="${all.errors}" skipped="${all.skipped}" time="${all.time.toFixed(6)}">`,
  );
  for (const [name, cases] of groups) {
    const n = count(cases);
    lines.push(
      `  <testsuite name="${xmlEscape(name)}" tests="${n.tests}" failures="${n.failures}" errors="${n.errors}" skipped="${n.skipped}" time="${n.time.toFixed(6)}" timestamp="${results.startedAt.replace(/Z$/, '')}">`,
    );
    for (const c of cases) lines.push(testcase(c));
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}
