import { STATUSES, type Status } from '../plan/types.ts';
import { attemptStatuses, type CaseResult } from '../run/results.ts';
import { formatCounts, type StatusCounts } from './coverage.ts';
import { esc, htmlPage, statusBadge } from './html-base.ts';
import { isStatusChange, statusMatrix, type LabelledRun } from './runs.ts';

/** Statuses a failure detail is written for: the ones someone has to look at. */
const NEEDS_LOOK: Status[] = ['fail', 'error', 'blocked'];

export function replayCommand(backend: string, c: Pick<CaseResult, 'arch' | 'id'>): string {
  return `kvmspec run --backend ${backend} --arch ${c.arch} --filter '${c.id}'`;
}

/** Attributes the filter script reads: the statuses a row has and the text it matches. */
function filterAttrs(statuses: Iterable<Status | undefined>, text: string): string {
  const present = [...new Set(statuses)].filter((s): s is Status => s !== undefined).sort();
  return `data-filter data-statuses="${esc(present.join(' '))}" data-text="${esc(text.toLowerCase())}"`;
}

function countsBy(cases: CaseResult[], key: (c: CaseResult) => string): Map<string, StatusCounts> {
  const out = new Map<string, StatusCounts>();
  for (const c of cases) {
    const counts = out.get(key(c)) ?? {};
    counts[c.status] = (counts[c.status] ?? 0) + 1;
    out.set(key(c), counts);
  }
  return out;
}

function totalsTable(runs: LabelledRun[]): string[] {
  const head = ['run', 'total', ...STATUSES, 'unexpected'].map((h) => `<th>${esc(h)}</th>`).join('');
  const rows = runs.map((r) => {
    const cases = r.results.cases;
    const cells = STATUSES.map(
      (s) => `<td class="num total-${s}">${cases.filter((c) => c.status === s).length}</td>`,
    );
    return `<tr class="run"><td>${esc(r.label)}</td><td class="num total">${cases.length}</td>${cells.join('')}<td class="num">${cases.filter((c) => c.unexpected).length}</td></tr>`;
  });
  return ['<h2 id="totals">Totals</h2>', `<table id="totals-table"><tr>${head}</tr>`, ...rows, '</table>'];
}

/** A table of counts per group (API or rule), one column per run. */
function groupTable(
  id: string,
  title: string,
  runs: LabelledRun[],
  key: (c: CaseResult) => string,
): string[] {
  const perRun = runs.map((r) => countsBy(r.results.cases, key));
  const groups = [...new Set(perRun.flatMap((m) => [...m.keys()]))].sort();
  const rows = groups.map((g) => {
    const counts = perRun.map((m) => m.get(g) ?? {});
    const statuses = counts.flatMap((c) => Object.keys(c) as Status[]);
    return `<tr ${filterAttrs(statuses, g)}><td>${esc(g)}</td>${counts.map((c) => `<td>${esc(formatCounts(c))}</td>`).join('')}</tr>`;
  });
  const head = runs.map((r) => `<th>${esc(r.label)}</th>`).join('');
  return [
    `<h2 id="${id}">${esc(title)}</h2>`,
    `<table id="${id}-table"><tr><th>${esc(title.split(' ').pop()!)}</th>${head}</tr>`,
    ...rows,
    '</table>',
  ];
}

/** Every case side by side across the runs; a row whose status differs between runs is highlighted. */
function comparisonTable(runs: LabelledRun[]): string[] {
  const matrix = statusMatrix(runs);
  const changes = matrix.filter((m) => isStatusChange(m.statuses)).length;
  const rows = matrix.map(({ id, statuses }) => {
    const changed = isStatusChange(statuses);
    const first = statuses.find((s) => s !== undefined);
    const cells = statuses.map(
      (s) =>
        `<td${changed && s !== undefined && s !== first ? ' class="differs"' : ''}>${statusBadge(s)}</td>`,
    );
    return `<tr class="case${changed ? ' changed' : ''}" ${filterAttrs(statuses, id)}><td><code>${esc(id)}</code></td>${cells.join('')}</tr>`;
  });
  const head = runs.map((r) => `<th>${esc(r.label)}</th>`).join('');
  return [
    `<h2 id="cases">Cases (${matrix.length}; <span id="change-count">${changes}</span> status changes between runs)</h2>`,
    `<table id="cases-table"><tr><th>test ID</th>${head}</tr>`,
    ...rows,
    '</table>',
  ];
}

/** Failures, and cases that came right only on a retry (flaky): each with its attempts and trace. */
function failureDetails(runs: LabelledRun[]): string[] {
  const out = ['<h2 id="failures">Failures</h2>'];
  for (const run of runs) {
    for (const c of run.results.cases.filter((x) => NEEDS_LOOK.includes(x.status) || x.flaky)) {
      const lines = [
        ['message', c.message],
        ['expected', c.expected],
        ['actual', c.actual],
        ['attempts', c.attempts && `${attemptStatuses(c)}${c.flaky ? ' (flaky)' : ''}`],
      ].flatMap(([k, v]) => (v ? [`<dt>${k}</dt><dd><code>${esc(v)}</code></dd>`] : []));
      const trace = (c.trace ?? []).map(
        (t) => `<li><code>${esc(`${t.op} ${t.detail} -> ${t.result}`)}</code></li>`,
      );
      out.push(
        `<details class="failure" ${filterAttrs([c.status], `${c.id} ${c.message ?? ''}`)}>`,
        `<summary>${statusBadge(c.status)} <code>${esc(c.id)}</code> <span class="muted">${esc(run.label)}</span></summary>`,
        `<dl class="fields">${lines.join('')}<dt>replay</dt><dd><code class="replay">${esc(replayCommand(run.results.backend, c))}</code></dd></dl>`,
        ...(trace.length ? [`<ol class="trace">${trace.join('')}</ol>`] : []),
        '</details>',
      );
    }
  }
  if (out.length === 1) out.push('<p>None.</p>');
  return out;
}

/** Shows the rows whose statuses include the selected one and whose text contains the typed text. */
const FILTER_SCRIPT = `
(function () {
  var status = document.getElementById('status-filter');
  var text = document.getElementById('text-filter');
  function apply() {
    var s = status.value, t = text.value.trim().toLowerCase(), shown = 0;
    document.querySelectorAll('[data-filter]').forEach(function (el) {
      var ok = (s === '' || el.getAttribute('data-statuses').split(' ').indexOf(s) >= 0) &&
        (t === '' || el.getAttribute('data-text').indexOf(t) >= 0);
      el.classList.toggle('hidden', !ok);
      if (ok && el.classList.contains('case')) shown++;
    });
    document.getElementById('shown-count').textContent = String(shown);
  }
  status.addEventListener('change', apply);
  text.addEventListener('input', apply);
  apply();
})();
`;

/**
 * One self-contained HTML file for one or more runs: totals, per-API and per-rule tables, every case side by
 * side with status changes highlighted, failure details with their replay command, and a filter by status
 * and text. Nothing is fetched: style and script are inline.
 */
export function renderHtmlReport(runs: LabelledRun[]): string {
  const options = [
    '<option value="">any status</option>',
    ...STATUSES.map((s) => `<option value="${s}">${s}</option>`),
  ];
  const runList = runs.map(
    (r) =>
      `<li>${esc(r.label)}: backend ${esc(r.results.backend)}, revision ${esc(r.results.revision)}, started ${esc(r.results.startedAt)}; ${esc(r.results.profiles.map((p) => `${p.arch} ${p.implementation} ${p.version}`).join(', '))}</li>`,
  );
  return htmlPage(
    'kvmspec run report',
    [
      '<h1>kvmspec run report</h1>',
      `<ul id="runs">${runList.join('')}</ul>`,
      ...totalsTable(runs),
      '<p id="filters">',
      `<label>Status <select id="status-filter">${options.join('')}</select></label>`,
      ' <label>Text <input id="text-filter" type="search" placeholder="test ID, API, rule or message"></label>',
      ' <span class="muted"><span id="shown-count"></span> cases shown</span>',
      '</p>',
      ...groupTable('apis', 'Per API', runs, (c) => c.api),
      ...groupTable('rules', 'Per rule', runs, (c) => c.rule),
      ...comparisonTable(runs),
      ...failureDetails(runs),
    ],
    FILTER_SCRIPT,
  );
}
