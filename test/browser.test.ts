import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { Backend, BackendFactory } from '../adapters/backend.ts';
import { createReferenceBackend } from '../adapters/reference.ts';
import type { RunResults } from '../harness/run/results.ts';
import { runSuite } from '../harness/run/runner.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import type { Arch } from '../harness/spec/types.ts';
import { cli } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.join(import.meta.dirname, '..', 'reports', 'browser');
const ARCHES: Arch[] = ['x86_64', 'arm64'];
const enabled = process.env.KVMSPEC_BROWSER === '1';

/** The reference, except that arm64 says EINVAL where it should say ENOENT: a run with real status changes. */
function enoentAsEinval(spec: ReturnType<typeof loadSpec>): BackendFactory {
  return {
    name: 'enoent-as-einval',
    arches: () => ARCHES,
    create: ({ arch }) => {
      const inner = createReferenceBackend(spec, arch);
      const backend: Backend = Object.assign(Object.create(inner) as Backend, {
        profile: inner.profile,
        ioctl: async (...args: Parameters<Backend['ioctl']>) => {
          const r = await inner.ioctl(...args);
          return arch === 'arm64' && r.errno === 'ENOENT' ? { ...r, errno: 'EINVAL' } : r;
        },
      });
      return Promise.resolve(backend);
    },
  };
}

/** Status changes computed straight from the two files: cases both runs have, with different statuses. */
function statusChanges(a: RunResults, b: RunResults): number {
  const before = new Map(a.cases.map((c) => [c.id, c.status]));
  return b.cases.filter((c) => before.has(c.id) && before.get(c.id) !== c.status).length;
}

const visible = (page: Page, selector: string) => page.locator(`${selector}:not(.hidden)`).count();

describe('the HTML report and the spec site in a real browser (Debian chromium)', function () {
  this.timeout(180_000);
  if (!enabled) {
    it('is skipped: set KVMSPEC_BROWSER=1 to run it (npm run test:full does, after scripts/install-chromium.sh)', function () {
      this.skip();
    });
    return;
  }

  const spec = loadSpec();
  let dir: string;
  let context: BrowserContext;
  let page: Page;
  let runs: RunResults[];
  let files: string[];
  const requests: string[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-browser-'));
    const reference = await runSuite({ backend: 'reference', spec, arches: ARCHES });
    const faulty = await runSuite({
      backend: 'enoent-as-einval',
      factory: enoentAsEinval(spec),
      spec,
      arches: ARCHES,
    });
    runs = [reference.results, faulty.results];
    files = runs.map((r, i) => {
      const file = path.join(dir, `run-${i}.json`);
      writeFileSync(file, JSON.stringify(r));
      return file;
    });
    mkdirSync(SCREENSHOTS, { recursive: true });
    context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-sync',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (r) => requests.push(r.url()));
  });
  after(async () => {
    await context?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the totals, every case, and highlights exactly the status changes between the two runs', async () => {
    const report = path.join(dir, 'report.html');
    expect((await cli(['report', 'html', '--out', report, ...files])).code).to.equal(0);
    await page.goto(pathToFileURL(report).href);
    const changes = statusChanges(runs[0]!, runs[1]!);
    expect(changes, 'the faulty run changes some statuses').to.be.greaterThan(0);
    expect(await page.locator('tr.case.changed').count()).to.equal(changes);
    expect(await page.locator('#change-count').textContent()).to.equal(String(changes));
    const ids = new Set(runs.flatMap((r) => r.cases.map((c) => c.id)));
    expect(await page.locator('tr.case').count()).to.equal(ids.size);
    expect(await page.locator('#shown-count').textContent()).to.equal(String(ids.size));
    const totals = page.locator('#totals-table tr.run');
    for (const [i, r] of runs.entries()) {
      expect(await totals.nth(i).locator('td.total').textContent()).to.equal(String(r.totals.total));
      expect(await totals.nth(i).locator('td.total-fail').textContent()).to.equal(String(r.totals.fail));
    }
  });

  it('filters by status and by text', async () => {
    const failing = runs[1]!.cases.filter((c) => c.status === 'fail');
    await page.selectOption('#status-filter', 'fail');
    expect(await visible(page, 'tr.case')).to.equal(failing.length);
    expect(await visible(page, 'details.failure')).to.equal(failing.length);
    const one = failing[0]!;
    await page.fill('#text-filter', one.id.toUpperCase());
    expect(await visible(page, 'tr.case')).to.equal(1);
    expect(await page.locator('#shown-count').textContent()).to.equal('1');
    await page.fill('#text-filter', one.rule);
    expect(await visible(page, 'tr.case')).to.equal(failing.filter((c) => c.rule === one.rule).length);
    await page.locator('details.failure:not(.hidden) summary').first().click();
    expect(await page.locator('details.failure:not(.hidden) code.replay').first().textContent()).to.match(
      /^kvmspec run --backend enoent-as-einval --arch arm64 --filter '[^']+'$/,
    );
    // The picture a reviewer gets: only failures, totals and the highlighted comparison rows on top.
    await page.fill('#text-filter', '');
    await page.locator('h1').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'report.png'), fullPage: true });
  });

  it('opens the spec site: one page per ioctl, an anchor per rule, its test IDs and outcomes', async () => {
    const site = path.join(dir, 'site');
    expect(
      (await cli(['spec', 'render', '--format', 'html', '--out', site, '--results', files[1]!])).code,
    ).to.equal(0);
    await page.goto(pathToFileURL(path.join(site, 'index.html')).href);
    expect(await page.locator('tr.doc').count()).to.equal(spec.ioctls.size + spec.hypercalls.size);
    await page.click('text=KVM_GET_ONE_REG');
    const doc = spec.ioctl('KVM_GET_ONE_REG');
    expect(await page.locator('section.rule').count()).to.equal(doc.rules.length);
    const rule = doc.rules.find((r) => r.id === 'ONE_REG-ERR-001')!;
    await page.click(`a[href="#${rule.id}"]`);
    expect(new URL(page.url()).hash).to.equal(`#${rule.id}`);
    const tests = page.locator(`section.rule[id="${rule.id}"] tr.test`);
    const fromRun = runs[1]!.cases.filter((c) => c.rule === rule.id);
    expect(await tests.count()).to.be.at.least(fromRun.length);
    expect(await page.locator(`section.rule[id="${rule.id}"] .status-fail`).count()).to.equal(
      fromRun.filter((c) => c.status === 'fail').length,
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, 'spec-site.png') });
  });

  it('fetched nothing but the local files', () => {
    expect(requests.filter((u) => !u.startsWith('file://'))).to.deep.equal([]);
    expect(readFileSync(path.join(SCREENSHOTS, 'report.png')).subarray(1, 4).toString()).to.equal('PNG');
  });
});
