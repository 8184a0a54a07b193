import type { Status } from '../plan/types.ts';

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML content and for double- or single-quoted attribute values alike. */
export function esc(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

const STATUS_COLOURS: Record<Status, string> = {
  pass: '#1a7f37',
  fail: '#cf222e',
  error: '#a40e26',
  skip: '#6e7781',
  'not-applicable': '#8c959f',
  blocked: '#9a6700',
};

/** The styles every page shares; inline, so a page needs nothing beside itself. */
const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 78em; padding: 0 1em; color: #1f2328; }
h1, h2, h3 { line-height: 1.2; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; } th, td { border: 1px solid #d0d7de; padding: .2em .5em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; } code, pre { font: 12.5px/1.4 ui-monospace, monospace; }
pre { background: #f6f8fa; padding: .6em .8em; overflow-x: auto; tab-size: 8; }
dl.fields { display: grid; grid-template-columns: max-content auto; gap: .1em 1em; } dl.fields dt { font-weight: 600; }
.status { font-weight: 600; } .muted { color: #6e7781; }
${Object.entries(STATUS_COLOURS)
  .map(([s, c]) => `.status-${s} { color: ${c}; }`)
  .join('\n')}
tr.changed { background: #fff8c5; } tr.changed td.differs { outline: 2px solid #9a6700; outline-offset: -2px; }
.hidden { display: none; }
`;

/** A complete, self-contained HTML page: inline style, optional inline script, no external resource. */
export function htmlPage(title: string, body: string[], script = ''): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    ...body,
    ...(script ? [`<script>${script}</script>`] : []),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

export function statusBadge(status: Status | undefined): string {
  return status
    ? `<span class="status status-${status}">${esc(status)}</span>`
    : '<span class="muted">-</span>';
}
