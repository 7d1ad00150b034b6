/// <reference lib="dom" />
/**
 * The HTML report opened in a real browser: Debian's chromium, headless, driven by
 * puppeteer-core (`.ci/run` installs chromium when it is missing; CHROMIUM_PATH overrides
 * where it is). A run with failures, 429s and hostile cells writes the report; the page must
 * load with no console error and no request but its own file, show the summary's counts,
 * render `<script>` cells as text, and print on A4. A screenshot and the PDF are kept in the
 * test's temp dir.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser } from 'puppeteer-core';
import { useSandbox } from '../support/sandbox.js';
import { latest, runCli, sandboxEnv, tempDir, userId } from '../support/cli.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const box = useSandbox();
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: run .ci/run (it installs Debian's chromium) or set CHROMIUM_PATH`);
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-extensions', '--no-first-run', '--disable-sync', '--disable-component-update', '--disable-default-apps'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

test('the report of a run opens in chromium with no console error and no request, shows the summary\'s counts, renders <script> cells as text, and prints on A4', async () => {
  box.sandbox.configure({ rateLimit: 15 });
  const dir = tempDir('oath-bulk-html-');
  const rows = Array.from({ length: 40 }, (_, i) => `${userId(i + 1)},HTML${String(i).padStart(4, '0')},Dept ${i}`);
  rows.push(`${userId(41)},UNKNOWN0041,"<script>window.__pwned = 1</script>"`);
  rows.push(`${userId(42)},<script>alert(1)</script>,"<img src=x onerror=""window.__pwned = 2"">"`);
  rows.push(`00000000-0000-4000-8000-000000000043,HTML0043,Finance & <b>Ops</b>`);
  const input = join(dir, 'ticket.csv');
  writeFileSync(input, 'userID,serialNumber,department\n' + rows.join('\n') + '\n');
  const result = await runCli(['run', input, '--out-dir', dir, '--rate', '40', '--backoff-base', '100'], sandboxEnv(box.sandbox));
  expect(result.code).toBe(1);
  const summary = JSON.parse(readFileSync(latest(dir, '.summary.json'), 'utf8'));
  expect(summary.requests.rateLimited).toBeGreaterThan(0);
  const html = summary.reports.report as string;
  expect(html).toBe(latest(dir, '.report.html'));
  expect(result.stdout).toContain(`report   ${html}`);

  const page = await browser.newPage();
  const requests: string[] = [];
  const problems: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  const url = pathToFileURL(html).href;
  await page.goto(url, { waitUntil: 'load' });
  expect(problems).toEqual([]);
  expect(requests).toEqual([url]);

  const counts = await page.$$eval('[data-outcome]', (els) => Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset['outcome'], Number(e.querySelector('.n')!.textContent)])));
  const nonZero = Object.fromEntries(Object.entries(summary.outcomes as Record<string, number>).filter(([, n]) => n > 0));
  expect(counts).toMatchObject(nonZero);
  expect(Object.values(counts).reduce((a: number, b) => a + Number(b), 0)).toBe(summary.rows);
  expect(await page.$eval('[data-field=rows]', (e) => Number(e.textContent))).toBe(summary.rows);
  expect(await page.$eval('[data-field=exitCode]', (e) => Number(e.textContent))).toBe(summary.exitCode);
  const codes = await page.$$eval('tr[data-code]', (els) => Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset['code'], Number(e.children[1]!.textContent)])));
  expect(codes).toEqual(summary.errorCodes);

  // Hostile cells are text: no script ran, no element was made of them.
  expect(await page.$$eval('script', (s) => s.length)).toBe(0);
  expect(await page.$$eval('img', (s) => s.length)).toBe(0);
  expect(await page.$$eval('table.rows b', (s) => s.length)).toBe(0);
  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  const text = await page.$eval('table.rows', (t) => t.textContent ?? '');
  expect(text).toContain('<script>window.__pwned = 1</script>');
  expect(text).toContain('<script>alert(1)</script>');
  expect(text).toContain('<img src=x onerror="window.__pwned = 2">');
  expect(text).toContain('Finance & <b>Ops</b>');
  // The chart: bars, the cap line, 429 marks.
  expect(await page.$$eval('svg.chart rect.req', (r) => r.length)).toBeGreaterThan(0);
  expect(await page.$$eval('svg.chart line.cap', (r) => r.length)).toBe(1);
  expect(await page.$$eval('svg.chart circle.r429', (r) => r.length)).toBeGreaterThan(0);

  await page.setViewport({ width: 1100, height: 900 });
  await page.screenshot({ path: join(dir, 'report.png'), fullPage: true });
  const pdf = await page.pdf({ format: 'A4', printBackground: true });
  writeFileSync(join(dir, 'report.pdf'), pdf);
  expect(Buffer.from(pdf).subarray(0, 5).toString('latin1')).toBe('%PDF-');
  // A4 portrait pages (595 × 842 points), a handful of them for 43 rows.
  const pdfText = Buffer.from(pdf).toString('latin1');
  expect(pdfText).toMatch(/\/MediaBox \[0 0 595(\.\d+)? 841(\.\d+)?\]|\/MediaBox \[0 0 595(\.\d+)? 842(\.\d+)?\]/);
  const pages = pdfText.match(/\/Type \/Page\b/g)?.length ?? 0;
  expect(pages).toBeGreaterThanOrEqual(1);
  expect(pages).toBeLessThanOrEqual(4);
  expect(existsSync(join(dir, 'report.png'))).toBe(true);
  await page.close();
}, 60_000);

test('import, verify and rollback write their report too: each opens with no error and no request, and shows its summary\'s counts', async () => {
  box.sandbox.configure({ rateLimit: 0, inventory: 'imported', jobDelayMs: 20 });
  const dir = tempDir('oath-bulk-html-');
  const seeds = join(dir, 'seeds.csv');
  writeFileSync(seeds, 'serial,secret,type,manufacturer\nVIEW0001,3132333435363738393031323334353637383930,TOTP,<b>Acme</b>\nVIEW0002,zz,TOTP,Acme\n', { mode: 0o600 });
  const input = join(dir, 'view.csv');
  writeFileSync(input, `userID,serialNumber\n${userId(1)},VIEW0001\n`);
  const env = sandboxEnv(box.sandbox);
  expect((await runCli(['import', seeds, '--out-dir', dir], env)).code).toBe(1);
  expect((await runCli(['run', input, '--out-dir', dir], env)).code).toBe(0);
  const results = latest(dir, '.results.csv');
  expect((await runCli(['verify', results, '--out-dir', dir], env)).code).toBe(0);
  expect((await runCli(['rollback', results, '--out-dir', dir, '--dry-run'], env)).code).toBe(0);
  for (const command of ['import', 'verify', 'rollback']) {
    const file = readdirSync(dir).filter((f) => f.includes(`.${command}.`) && f.endsWith('.summary.json')).sort().pop()!;
    const summary = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const page = await browser.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    const url = pathToFileURL(summary.reports.report).href;
    await page.goto(url, { waitUntil: 'load' });
    expect({ command, problems, requests }).toEqual({ command, problems: [], requests: [url] });
    const counts = await page.$$eval('[data-outcome]', (els) => Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset['outcome'], Number(e.querySelector('.n')!.textContent)])));
    expect(counts).toMatchObject(Object.fromEntries(Object.entries(summary.outcomes as Record<string, number>).filter(([, n]) => n > 0)));
    expect(await page.$eval('h1', (h) => h.textContent)).toContain(`oath-bulk ${command}`);
    expect(await page.$$eval('b', (b) => b.length)).toBe(0);
    await page.close();
  }
}, 60_000);
