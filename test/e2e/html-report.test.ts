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
import { hostname, userInfo } from 'node:os';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser } from 'puppeteer-core';
import { useSandbox } from '../support/sandbox.js';
import { latest, runCli, sandboxEnv, tempDir, userId } from '../support/cli.js';
import { seededShipment } from '../support/pskc-writer.js';

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

test('a report a change board can read: environment, operator, version, command line and local times; the outcome in a sentence; the dry run as a plan; next: a block that never breaks a word; the chart below the tables; the same fields in the summary JSON', async () => {
  box.sandbox.configure({ rateLimit: 0, inventory: 'imported', activationRequired: true, jobDelayMs: 20 });
  const dir = tempDir('oath-bulk-html-');
  const { tokens, pskc, keyFile } = seededShipment(dir, 8, { prefix: 'BOARD', type: () => 'TOTP', firstUser: 199, userId });
  const input = join(dir, 'change-4711.csv');
  writeFileSync(input, 'userID,serialNumber\n' + tokens.map((t, i) => `${userId(200 + i)},${t.serial}`).join('\n') + `\n${userId(300)},UNKNOWN0001\n00000000-0000-4000-8000-000000000009,BOARD009\n`);
  const metrics = join(dir, 'cron-only.prom');
  const args = ['run', input, '--seeds', pskc, '--psk-file', keyFile, '--activate', '--out-dir', dir, '--metrics-file', metrics];
  const env = sandboxEnv(box.sandbox);
  const dry = await runCli([...args, '--dry-run'], env);
  expect(dry.code).toBe(1);
  const plan = JSON.parse(readFileSync(latest(dir, '.summary.json'), 'utf8'));
  // --api-url names the host: no region is claimed for it.
  expect(plan.environment).toEqual({ id: box.sandbox.environmentId, apiHost: new URL(box.sandbox.url).host, region: null });
  expect(plan.operator).toBe(`${userInfo().username}@${hostname()}`);
  expect(plan.version).toBe(JSON.parse(readFileSync('package.json', 'utf8')).version);
  expect(plan.commandLine).toContain('--dry-run');
  expect(plan.commandLine).not.toContain(metrics);
  expect(plan.plan).toMatchObject({ willImport: 8, willCreate: 8, willActivate: 8, wouldFail: 2 });
  expect(plan.outcomeSentence).toMatch(/^Plan, nothing changed yet: will import 8 tokens, will create 8 devices, will activate 8 devices; 2 rows would fail \(/);
  expect(plan.startedLocal).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (\S+ \()?UTC[+-]\d{2}:\d{2}\)?$/);
  expect(plan.next).toMatch(/^correct what the problems above name/);

  const page = await browser.newPage();
  await page.setViewport({ width: 420, height: 900 });
  await page.goto(pathToFileURL(plan.reports.report).href, { waitUntil: 'load' });
  expect(await page.$eval('[data-field=outcome]', (e) => e.textContent)).toBe(plan.outcomeSentence);
  expect(await page.$eval('[data-field=environment]', (e) => e.textContent)).toContain(box.sandbox.environmentId);
  expect(await page.$eval('[data-field=environment]', (e) => e.textContent)).toContain(`API host ${new URL(box.sandbox.url).host}`);
  expect(await page.$eval('[data-field=operator]', (e) => e.textContent)).toBe(plan.operator);
  expect(await page.$eval('[data-field=when]', (e) => e.textContent)).toContain(plan.startedLocal);
  expect(await page.$eval('[data-field=version]', (e) => e.textContent)).toBe(`oath-bulk ${plan.version}`);
  const planItems = await page.$$eval('.plan li', (li) => li.map((l) => l.textContent));
  expect(planItems).toEqual(expect.arrayContaining(['will import 8 tokens into the OATH token inventory', 'will create 8 devices', 'will activate 8 devices with codes computed from their seeds']));
  expect(planItems.find((t) => t!.startsWith('2 rows would fail'))).toBeDefined();
  // No "0 CREATED" card in a plan.
  expect(await page.$$eval('[data-outcome=CREATED]', (c) => c.length)).toBe(0);
  expect(await page.$eval('body', (b) => b.textContent)).not.toContain(metrics);
  await page.close();

  const real = await runCli(args, env);
  expect(real.code).toBe(1);
  const done = JSON.parse(readFileSync(latest(dir, '.summary.json'), 'utf8'));
  expect(done.outcomeSentence).toMatch(/^Done with problems: 8 of 10 rows in place \(8 devices created by this run, 8 tokens imported, 8 devices activated\); 2 rows not done \(/);
  // The same plan after the real run: nothing more to import (the earlier run did), nothing to create.
  expect((await runCli([...args, '--dry-run'], env)).code).toBe(1);
  const replan = JSON.parse(readFileSync(latest(dir, '.summary.json'), 'utf8'));
  expect(replan.plan).toMatchObject({ willImport: 0, willCreate: 0, alreadyInPlace: 8, wouldFail: 2 });
  // A run with nothing left to fix ends with how to verify, as a block to copy.
  const clean = join(dir, 'clean.csv');
  writeFileSync(clean, 'userID,serialNumber\n' + tokens.map((t, i) => `${userId(200 + i)},${t.serial}`).join('\n') + '\n');
  const rerun = await runCli(['run', clean, '--out-dir', dir], env);
  expect(rerun.code).toBe(0);
  const cleanSummary = JSON.parse(readFileSync(latest(dir, '.summary.json'), 'utf8'));
  expect(cleanSummary.outcomeSentence).toBe('Done: all 8 rows in place (0 devices created by this run, 8 already held by their users).');
  expect(cleanSummary.next).toBe(`check what PingOne holds now, for the change record: oath-bulk verify ${cleanSummary.reports.results} --out-dir ${dir}`);
  expect(rerun.stdout).toContain(`  next: ${cleanSummary.next}`);
  // A dry run with nothing left to do says so, with how to check PingOne.
  const idle = await runCli(['run', clean, '--out-dir', dir, '--dry-run'], env);
  expect(idle.code).toBe(0);
  expect(idle.stdout).toMatch(/\n {2}next: nothing to do: every row is in place already \(a real run would send nothing\); to check PingOne: oath-bulk verify /);
  expect(JSON.parse(readFileSync(latest(dir, '.summary.json'), 'utf8')).next).toMatch(/^nothing to do: /);
  const cleanPage = await browser.newPage();
  await cleanPage.setViewport({ width: 420, height: 900 });
  await cleanPage.goto(pathToFileURL(cleanSummary.reports.report).href, { waitUntil: 'load' });
  expect(await cleanPage.$eval('pre[data-field=next]', (e) => e.textContent)).toBe(cleanSummary.next);
  // Every word of the command sits on one line: the block wraps at spaces only.
  const broken = await cleanPage.$eval('pre[data-field=next]', (pre) => {
    const split: string[] = [];
    const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode() as Text | null; node; node = walker.nextNode() as Text | null) {
      for (const m of node.data.matchAll(/\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index!);
        range.setEnd(node, m.index! + m[0].length);
        const lines = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top)));
        if (lines.size > 1) split.push(m[0]);
      }
    }
    return split;
  });
  expect(broken).toEqual([]);
  // The page is narrow: the command did wrap, at its spaces.
  expect(await cleanPage.$eval('pre[data-field=next]', (pre) => pre.getBoundingClientRect().height > 30)).toBe(true);
  // The tables come before the chart.
  const order = await cleanPage.evaluate(() => Array.from(document.querySelectorAll("section h2")).map((h) => h.textContent!.split(' (')[0]!.trim()));
  expect(order.indexOf('The run over time')).toBeGreaterThan(order.indexOf('Rows that need attention'));
  expect(order.indexOf('Rows that need attention')).toBeGreaterThan(order.indexOf('Problems and what to do'));
  // On paper nothing of the command is cut off: a word longer than the line wraps there.
  await cleanPage.emulateMediaType('print');
  expect(await cleanPage.$eval('pre[data-field=next]', (pre) => pre.scrollWidth <= pre.clientWidth + 1)).toBe(true);
  await cleanPage.close();
}, 90_000);
