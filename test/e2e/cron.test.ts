/**
 * Cron-grade operation end to end, the built CLI against the sandbox over loopback: a folder
 * of shipments (per-file reports, the worst exit code, a finished file costing nothing, a
 * rerun creating nothing twice, a seed file picked up beside its shipment), healthcheck pings
 * to a local HTTP server (and a run that survives a ping URL that hangs or refuses), the
 * Prometheus metrics file checked line by line against the exposition format and against the
 * summaries, and report retention.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useSandbox } from '../support/sandbox.js';
import { exited, runCli, sandboxEnv, startCli, tempDir, userId } from '../support/cli.js';

const box = useSandbox();

function csvFile(path: string, rows: Array<[string, string]>): void {
  writeFileSync(path, 'userID,serialNumber\n' + rows.map(([u, s]) => `${u},${s}`).join('\n') + '\n');
}

const summaries = (dir: string, name: string): Array<Record<string, any>> =>
  readdirSync(dir).filter((f) => f.startsWith(`${name}.2`) && f.endsWith('.summary.json')).sort().map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));

test('a folder of three shipments: per-file reports, the worst exit code, the finished one costs no request; a rerun creates nothing twice', async () => {
  const root = tempDir('oath-bulk-folder-');
  const folder = join(root, 'shipments');
  const out = join(root, 'reports');
  mkdirSync(folder);
  csvFile(join(folder, 'a-clean.csv'), [[userId(1), 'CLEAN001'], [userId(2), 'CLEAN002'], [userId(3), 'CLEAN003']]);
  // Two rows PingOne refuses: a serial it does not know, a user that does not exist.
  csvFile(join(folder, 'b-failing.csv'), [[userId(4), 'FAIL001'], [userId(5), 'UNKNOWN0002'], ['00000000-0000-4000-8000-000000000006', 'FAIL003']]);
  csvFile(join(folder, 'c-finished.csv'), [[userId(7), 'DONE001'], [userId(8), 'DONE002']]);
  writeFileSync(join(folder, 'notes.txt'), 'not a shipment');
  const env = sandboxEnv(box.sandbox);
  expect((await runCli(['run', join(folder, 'c-finished.csv'), '--out-dir', out], env)).code).toBe(0);
  const cSets = readdirSync(out).filter((f) => f.startsWith('c-finished.2')).length;

  const tokensBefore = box.sandbox.stats.tokensIssued;
  const first = await runCli(['run', folder, '--out-dir', out], env);
  expect(first.code).toBe(1);
  const lines = first.stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ oath-bulk run .*shipments: 3 files$/);
  expect(lines[1]).toMatch(/^ {2}a-clean\.csv: CREATED 3 · exit 0 · .*a-clean\.\d{8}T\d{6}Z\.summary\.json$/);
  expect(lines[2]).toMatch(/^ {2}b-failing\.csv: CREATED 1 · FAILED 2 · exit 1 · /);
  expect(lines[3]).toBe('  c-finished.csv: nothing to do (2 rows finished earlier) · exit 0');
  expect(lines[4]).toMatch(/^ {2}total: 3 files \(1 with nothing to do\) · CREATED 6 · FAILED 2 · this run: created 4, imported 0, activated 0 · [\d.]+s · exit 1$/);
  // Each file its own reports and journal; the finished one no new report set.
  expect(summaries(out, 'a-clean')).toHaveLength(1);
  expect(summaries(out, 'b-failing')[0]!.outcomes).toMatchObject({ CREATED: 1, FAILED: 2 });
  expect(readdirSync(out).filter((f) => f.startsWith('c-finished.2')).length).toBe(cSets);
  for (const name of ['a-clean', 'b-failing', 'c-finished']) expect(existsSync(join(out, `${name}.journal.jsonl`))).toBe(true);
  // Two files ran: one access token each.
  expect(box.sandbox.stats.tokensIssued - tokensBefore).toBe(2);

  const devices = box.sandbox.stats.devicesCreated;
  const creates = box.sandbox.stats.byKind['create']!;
  const again = await runCli(['run', folder, '--out-dir', out], env);
  expect(again.code).toBe(1);
  expect(again.stdout).toMatch(/a-clean\.csv: nothing to do \(3 rows finished earlier\)/);
  expect(again.stdout).toMatch(/c-finished\.csv: nothing to do/);
  // Only the two failed rows are sent again; nothing is created twice.
  expect(box.sandbox.stats.byKind['create']! - creates).toBe(2);
  expect(box.sandbox.stats.devicesCreated).toBe(devices);
  expect(summaries(out, 'a-clean')).toHaveLength(1);

  // A folder where everything is final costs no request at all, not even for a token.
  const doneFolder = join(root, 'done');
  mkdirSync(doneFolder);
  writeFileSync(join(doneFolder, 'a-clean.csv'), readFileSync(join(folder, 'a-clean.csv')));
  const requests = box.sandbox.stats.requests;
  const idle = await runCli(['run', doneFolder, '--out-dir', out], env);
  expect(idle.code).toBe(0);
  expect(box.sandbox.stats.requests).toBe(requests);
});

test('a seed file beside its shipment is its --seeds; --activate applies to it', async () => {
  box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20 });
  const root = tempDir('oath-bulk-folder-');
  const folder = join(root, 'in');
  mkdirSync(folder);
  csvFile(join(folder, 'ship.csv'), [[userId(1), 'BESIDE01'], [userId(2), 'BESIDE02']]);
  writeFileSync(join(folder, 'ship.seeds.csv'), 'serial,secret,type\nBESIDE01,3132333435363738393031323334353637383930,HOTP\nBESIDE02,3132333435363738393031323334353637383931,TOTP\n', { mode: 0o600 });
  const result = await runCli(['run', folder, '--out-dir', join(root, 'out'), '--activate'], sandboxEnv(box.sandbox));
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  // The seed CSV is not taken for a shipment of its own.
  expect(result.stdout).toMatch(/: 1 file\n/);
  expect(box.sandbox.inventory.created).toBe(2);
  expect(box.sandbox.allDevices().map((d) => d.status)).toEqual(['ACTIVE', 'ACTIVE']);
});

interface Ping {
  readonly method: string;
  readonly path: string;
  readonly body: string;
}

/** A monitor on loopback: records pings; `hang` paths never answer. */
async function monitor(hang: (path: string) => boolean = () => false): Promise<{ url: string; pings: Ping[]; close: () => Promise<void> }> {
  const pings: Ping[] = [];
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      pings.push({ method: req.method ?? '', path: req.url ?? '', body: Buffer.concat(chunks).toString('utf8') });
      if (hang(req.url ?? '')) return;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('OK');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ping/5a1b2c3d`,
    pings,
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

test('--healthcheck-url pings <url>/start, then <url>/<exit code>; the settings file can set it', async () => {
  const hc = await monitor();
  try {
    const dir = tempDir();
    csvFile(join(dir, 'ok.csv'), [[userId(1), 'HC0001']]);
    csvFile(join(dir, 'bad.csv'), [[userId(2), 'UNKNOWN0001']]);
    const env = sandboxEnv(box.sandbox);
    expect((await runCli(['run', join(dir, 'ok.csv'), '--out-dir', dir, '--healthcheck-url', hc.url], env)).code).toBe(0);
    // From the settings file, for the folder run cron schedules.
    const settings = join(dir, 'ops.env');
    writeFileSync(settings, `OATH_BULK_HEALTHCHECK_URL=${hc.url}\n`, { mode: 0o600 });
    const folder = join(dir, 'folder');
    mkdirSync(folder);
    csvFile(join(folder, 'bad.csv'), [[userId(2), 'UNKNOWN0001']]);
    expect((await runCli(['run', folder, '--out-dir', dir, '--settings', settings], env)).code).toBe(1);
    // A usage error still reports its exit code.
    expect((await runCli(['run', join(dir, 'missing.csv'), '--out-dir', dir, '--healthcheck-url', hc.url], env)).code).toBe(2);
    expect(hc.pings.map((p) => p.path)).toEqual(['/ping/5a1b2c3d/start', '/ping/5a1b2c3d/0', '/ping/5a1b2c3d/start', '/ping/5a1b2c3d/1', '/ping/5a1b2c3d/start', '/ping/5a1b2c3d/2']);
    expect(hc.pings[1]!.body).toMatch(/^oath-bulk: exit 0 · 1 input · CREATED 1/);
  } finally {
    await hc.close();
  }
});

test('a ping URL that hangs or refuses never fails the run: a warning, the same exit code, in bounded time', async () => {
  const hung = await monitor((path) => path.endsWith('/start'));
  const closed = await monitor();
  await closed.close();
  try {
    const dir = tempDir();
    csvFile(join(dir, 'ok.csv'), [[userId(1), 'HANG0001']]);
    const env = sandboxEnv(box.sandbox);
    const slow = await runCli(['run', join(dir, 'ok.csv'), '--out-dir', dir, '--healthcheck-url', hung.url], env);
    expect(slow.code).toBe(0);
    expect(slow.stderr).toMatch(/warning: healthcheck start ping to http:\/\/127\.0\.0\.1:\d+\/… failed \(.*\); the run goes on/);
    expect(slow.stderr).not.toContain('5a1b2c3d');
    expect(slow.ms).toBeLessThan(15_000);
    expect(hung.pings.map((p) => p.path)).toEqual(['/ping/5a1b2c3d/start', '/ping/5a1b2c3d/0']);
    const refused = await runCli(['run', join(dir, 'ok.csv'), '--out-dir', dir, '--healthcheck-url', closed.url], env);
    expect(refused.code).toBe(0);
    expect(refused.stderr).toMatch(/ECONNREFUSED/);
  } finally {
    await hung.close();
  }
}, 30_000);

/**
 * The text exposition format's rules as promtool checks them: HELP and TYPE at most once per
 * metric and before its samples, valid metric and label names, escaped label values, a float
 * value, no series twice, a final newline.
 */
function parseProm(text: string): Map<string, number> {
  expect(text.endsWith('\n')).toBe(true);
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const helped = new Set<string>();
  const typed = new Map<string, string>();
  const sampled = new Set<string>();
  const series = new Map<string, number>();
  for (const line of text.slice(0, -1).split('\n')) {
    let m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
    if (m) {
      expect(helped.has(m[1]!)).toBe(false);
      expect(sampled.has(m[1]!)).toBe(false);
      helped.add(m[1]!);
      continue;
    }
    m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
    if (m) {
      expect(typed.has(m[1]!)).toBe(false);
      expect(sampled.has(m[1]!)).toBe(false);
      typed.set(m[1]!, m[2]!);
      continue;
    }
    m = new RegExp(`^(${NAME})(\\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*",?)*)\\})? (\\S+)( -?\\d+)?$`).exec(line);
    expect(m).not.toBeNull();
    const value = Number(m![4]);
    expect(Number.isNaN(value) && m![4] !== 'NaN').toBe(false);
    expect(typed.has(m![1]!)).toBe(true);
    sampled.add(m![1]!);
    const key = `${m![1]}{${m![3] ?? ''}}`;
    expect(series.has(key)).toBe(false);
    series.set(key, value);
  }
  return series;
}

test('--metrics-file writes Prometheus text (checked as promtool would) whose numbers equal the summaries, for a folder run and a single one', async () => {
  const root = tempDir('oath-bulk-metrics-');
  const folder = join(root, 'in');
  mkdirSync(folder);
  csvFile(join(folder, 'one.csv'), [[userId(1), 'MET001'], [userId(2), 'MET002']]);
  writeFileSync(join(folder, 'two "quoted".csv'), `userID,serialNumber\n${userId(3)},UNKNOWN9\n${userId(4)},bad-serial\n`);
  const metrics = join(root, 'oath_bulk.prom');
  const out = join(root, 'out');
  const result = await runCli(['run', folder, '--out-dir', out, '--metrics-file', metrics], sandboxEnv(box.sandbox));
  expect(result.code).toBe(1);
  const series = parseProm(readFileSync(metrics, 'utf8'));
  expect(readdirSync(root).filter((f) => f.includes('.tmp'))).toEqual([]);
  for (const [name, input] of [['one', 'one.csv'], ['two__quoted_~', 'two "quoted".csv']] as const) {
    const summary = readdirSync(out).filter((f) => f.startsWith(name) && f.endsWith('.summary.json')).map((f) => JSON.parse(readFileSync(join(out, f), 'utf8')))[0]!;
    const label = `command="run",input="${input.replace(/"/g, '\\"')}"`;
    for (const [outcome, n] of Object.entries(summary.outcomes as Record<string, number>)) expect(series.get(`oath_bulk_rows{${label},outcome="${outcome}"}`)).toBe(n);
    for (const [code, n] of Object.entries(summary.errorCodes as Record<string, number>)) expect(series.get(`oath_bulk_errors{${label},code="${code}"}`)).toBe(n);
    expect(series.get(`oath_bulk_requests{${label}}`)).toBe(summary.requests.total);
    expect(series.get(`oath_bulk_rate_limited{${label}}`)).toBe(summary.requests.rateLimited);
    expect(series.get(`oath_bulk_retries{${label}}`)).toBe(summary.requests.retries);
    expect(series.get(`oath_bulk_duration_seconds{${label}}`)).toBe(summary.durationMs / 1000);
    expect(series.get(`oath_bulk_exit_code{${label}}`)).toBe(summary.exitCode);
    expect(series.get(`oath_bulk_last_run_timestamp_seconds{${label}}`)).toBe(Math.floor(Date.parse(summary.finishedAt) / 1000));
  }
  expect(series.get('oath_bulk_errors{command="run",input="two \\"quoted\\".csv",code="SERIAL_INVALID"}')).toBe(1);
});

test('--keep-reports n keeps the newest n report sets of an input and never its journal', async () => {
  const dir = tempDir();
  csvFile(join(dir, 'keep.csv'), [[userId(1), 'KEEP001']]);
  // What a run killed while writing its workbook left: removed with its set.
  writeFileSync(join(dir, 'keep.20200101T000000Z.results.xlsx.partial'), 'PK');
  const env = sandboxEnv(box.sandbox);
  for (let i = 0; i < 4; i++) expect((await runCli(['run', join(dir, 'keep.csv'), '--out-dir', dir, '--keep-reports', '2'], env)).code).toBe(0);
  expect((await runCli(['verify', join(dir, 'keep.csv'), '--out-dir', dir, '--keep-reports', '2'], env)).code).toBe(0);
  const files = readdirSync(dir);
  const sets = new Set(files.filter((f) => /^keep\.\d{8}T/.test(f)).map((f) => f.split('.')[1]));
  expect(sets.size).toBe(2);
  for (const runId of sets) for (const kind of ['results.csv', 'results.xlsx', 'log.jsonl', 'summary.json', 'report.html']) expect(files).toContain(`keep.${runId}.${kind}`);
  // Sets removed whole: the workbook goes with its results.
  expect(files.filter((f) => f.endsWith('.results.xlsx') && f.startsWith('keep.2'))).toHaveLength(2);
  expect(files).toContain('keep.journal.jsonl');
  expect(files).not.toContain('keep.20200101T000000Z.results.xlsx.partial');
  expect(files.filter((f) => f.startsWith('keep.verify.'))).toHaveLength(5);
  expect((await runCli(['run', join(dir, 'keep.csv'), '--out-dir', dir, '--keep-reports', '0'], env)).code).toBe(2);
});

describe('review findings', () => {
  test('in a folder: an Entra file carries its seeds (--activate applies), seed flags do not fail the seedless files, reports in the folder are not shipments, an empty folder is nothing to do', async () => {
    box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20, users: [{ id: userId(1), username: 'erin' }] });
    const root = tempDir('oath-bulk-folder-');
    const folder = join(root, 'in');
    mkdirSync(folder);
    writeFileSync(join(folder, 'entra.csv'), 'upn,serial number,secret key,time interval,manufacturer,model\nerin,ENTRAF001,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,30,Contoso,Key\n', { mode: 0o600 });
    writeFileSync(join(folder, 'plain.csv'), `userID,serialNumber\n${userId(2)},ENTRAF001X\n`);
    box.sandbox.inventory.createOne({ serialNumber: 'ENTRAF001X', secret: '3132333435363738393031323334353637383930', type: 'TOTP', otpLength: 6 });
    const key = join(root, 'vendor.key');
    writeFileSync(key, '000102030405060708090a0b0c0d0e0f\n', { mode: 0o600 });
    const env = sandboxEnv(box.sandbox);
    // --out-dir is the folder itself: its reports must not become shipments.
    const args = ['run', folder, '--out-dir', folder, '--activate', '--psk-file', key];
    const first = await runCli(args, env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const entra = box.sandbox.allDevices().find((d) => d.serialNumber === 'ENTRAF001')!;
    expect(entra.status).toBe('ACTIVE');
    const again = await runCli(args, env);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/: 2 files\n/);
    expect(again.stdout).toMatch(/entra\.csv: nothing to do/);
    expect(again.stdout).toMatch(/plain\.csv: nothing to do/);

    const empty = join(root, 'empty');
    mkdirSync(empty);
    const idle = await runCli(['run', empty, '--out-dir', join(root, 'out')], env);
    expect(idle.code).toBe(0);
    expect(idle.stdout).toMatch(/nothing to do: no shipment files/);
  });

  test('the healthcheck URL never reaches next: nor the HTML report; from the settings file it pings for the folder run, not for a file run by hand, a verify or a dry run', async () => {
    const hc = await monitor();
    try {
      const dir = tempDir();
      csvFile(join(dir, 'bad.csv'), [[userId(3), 'UNKNOWN0003']]);
      const env = sandboxEnv(box.sandbox);
      const flagged = await runCli(['run', join(dir, 'bad.csv'), '--out-dir', dir, '--healthcheck-url', `${hc.url}?create=1`], env);
      expect(flagged.code).toBe(1);
      expect(flagged.stdout).toMatch(/next: .*oath-bulk run /);
      expect(flagged.stdout).not.toContain('5a1b2c3d');
      for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f), 'utf8')).not.toContain('5a1b2c3d');
      // The suffix goes in the path, before the query.
      expect(hc.pings.map((p) => p.path)).toEqual(['/ping/5a1b2c3d/start?create=1', '/ping/5a1b2c3d/1?create=1']);

      const settings = join(dir, 'ops.env');
      writeFileSync(settings, `OATH_BULK_HEALTHCHECK_URL=${hc.url}\nOATH_BULK_METRICS_FILE=${join(dir, 'cron.prom')}\n`, { mode: 0o600 });
      hc.pings.length = 0;
      const folder = join(dir, 'folder');
      mkdirSync(folder);
      csvFile(join(folder, 'bad.csv'), [[userId(3), 'UNKNOWN0003']]);
      const cron = await runCli(['run', folder, '--out-dir', dir, '--settings', settings], env);
      const metrics = readFileSync(join(dir, 'cron.prom'), 'utf8');
      // By hand, the same settings file: the folder file's own next:, a verify, a dry run.
      await runCli(['run', join(folder, 'bad.csv'), '--out-dir', dir, '--settings', settings], env);
      await runCli(['verify', join(folder, 'bad.csv'), '--out-dir', dir, '--settings', settings], env);
      await runCli(['run', '--dry-run', join(folder, 'bad.csv'), '--out-dir', dir, '--settings', settings], env);
      expect(cron.code).toBe(1);
      expect(hc.pings.map((p) => p.path)).toEqual(['/ping/5a1b2c3d/start', '/ping/5a1b2c3d/1']);
      expect(readFileSync(join(dir, 'cron.prom'), 'utf8')).toBe(metrics);

      // A URL that cannot be used is named by its scheme and host, never shown whole.
      const ftp = await runCli(['run', folder, '--out-dir', dir, '--healthcheck-url', 'ftp://hc.example/5a1b2c3d'], env);
      expect(ftp.code).toBe(2);
      expect(ftp.stderr).toMatch(/--healthcheck-url: expected an https:\/\/ URL .*got "ftp:\/\/hc\.example\/…"/);
      const plain = await runCli(['run', folder, '--out-dir', dir, '--healthcheck-url', 'http://hc.example/5a1b2c3d'], env);
      expect(plain.code).toBe(2);
      const broken = await runCli(['run', folder, '--out-dir', dir, '--healthcheck-url', 'hc-ping.com/5a1b2c3d'], env);
      expect(broken.code).toBe(2);
      for (const r of [ftp, plain, broken]) expect(r.stderr).not.toContain('5a1b2c3d');
    } finally {
      await hc.close();
    }
  });

  test('--keep-reports never removes the set it just wrote, even beside sets that look newer', async () => {
    const dir = tempDir();
    csvFile(join(dir, 'clock.csv'), [[userId(1), 'CLOCK001']]);
    for (const kind of ['results.csv', 'log.jsonl', 'summary.json', 'report.html']) writeFileSync(join(dir, `clock.20991231T000000Z.${kind}`), '');
    const result = await runCli(['run', join(dir, 'clock.csv'), '--out-dir', dir, '--keep-reports', '1'], sandboxEnv(box.sandbox));
    expect(result.code).toBe(0);
    const summary = JSON.parse(readFileSync(result.stdout.match(/summary {2}(\S+)/)![1]!, 'utf8'));
    for (const path of [summary.reports.results, summary.reports.log, summary.reports.report]) expect(existsSync(path)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.startsWith('clock.2099'))).toEqual([]);
  });
});

test('a file dropped into the folder while a run goes on is taken next time, not in the middle', async () => {
  box.sandbox.configure({ latencyMs: 150 });
  const root = tempDir('oath-bulk-folder-');
  const folder = join(root, 'in');
  mkdirSync(folder);
  csvFile(join(folder, 'first.csv'), Array.from({ length: 8 }, (_, i) => [userId(i + 1), `DROP${String(i).padStart(4, '0')}`] as [string, string]));
  const env = sandboxEnv(box.sandbox);
  const out = join(root, 'out');
  const running = runCli(['run', folder, '--out-dir', out, '--concurrency', '1'], env);
  for (let i = 0; i < 400 && box.sandbox.stats.createsReceived === 0; i++) await new Promise((r) => setTimeout(r, 10));
  csvFile(join(folder, 'late.csv'), [[userId(20), 'LATE0001']]);
  const first = await running;
  expect(first.code).toBe(0);
  expect(first.stdout).toMatch(/: 1 file\n/);
  expect(first.stdout).not.toMatch(/late\.csv/);
  box.sandbox.configure({ latencyMs: 0 });
  const next = await runCli(['run', folder, '--out-dir', out], env);
  expect(next.stdout).toMatch(/first\.csv: nothing to do/);
  expect(next.stdout).toMatch(/late\.csv: CREATED 1 · exit 0/);
});

describe('second review', () => {
  test('codes PingOne keeps refusing stop the activations (the breaker), are recorded, and a folder run does not send them again every morning', async () => {
    box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20 });
    const root = tempDir('oath-bulk-refused-');
    const folder = join(root, 'in');
    mkdirSync(folder);
    const rows: Array<[string, string]> = Array.from({ length: 6 }, (_, i) => [userId(i + 1), `WRONG${String(i).padStart(4, '0')}`]);
    csvFile(join(folder, 'wrong.csv'), rows);
    // The inventory holds one seed; the vendor's file (beside the shipment) another.
    for (const [, serial] of rows) box.sandbox.inventory.createOne({ serialNumber: serial, secret: '3132333435363738393031323334353637383930', type: 'TOTP', otpLength: 6 });
    writeFileSync(join(folder, 'wrong.seeds.csv'), 'serial,secret,type\n' + rows.map(([, s]) => `${s},00112233445566778899aabbccddeeff00112233,TOTP`).join('\n') + '\n', { mode: 0o600 });
    const env = sandboxEnv(box.sandbox);
    const out = join(root, 'out');
    const first = await runCli(['run', folder, '--out-dir', out, '--activate', '--max-consecutive-failures', '3'], env);
    expect(first.code).toBe(1);
    // Three devices refused both codes; then no more codes were sent.
    expect(box.sandbox.stats.activationsReceived).toBe(6);
    const results = summaries(out, 'wrong')[0]!;
    expect(results.errorCodes).toEqual({ ACTIVATION_FAILED: 6 });
    const csv = readFileSync(results.reports.results, 'utf8');
    expect(csv.match(/activation stopped after 3 devices in a row refused/g)).toHaveLength(3);
    // The next morning: the three not yet tried get their two codes, and are refused too.
    await runCli(['run', folder, '--out-dir', out, '--activate', '--max-consecutive-failures', '3'], env);
    expect(box.sandbox.stats.activationsReceived).toBe(12);
    // Every device refused and nothing changed: exit 1 again, not a code more; only the devices are read.
    const third = await runCli(['run', folder, '--out-dir', out, '--activate', '--max-consecutive-failures', '3'], env);
    expect(third.code).toBe(1);
    expect(box.sandbox.stats.activationsReceived).toBe(12);
    expect(third.stdout).toMatch(/wrong\.csv: .*exit 1/);
  });

  test('#19: refused codes keep a folder run at exit 1 every morning without a code more, until the user activates the device; then exit 0', async () => {
    box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20 });
    const root = tempDir('oath-bulk-refused-');
    const folder = join(root, 'in');
    mkdirSync(folder);
    csvFile(join(folder, 'lone.csv'), [[userId(1), 'LONE0001']]);
    box.sandbox.inventory.createOne({ serialNumber: 'LONE0001', secret: '3132333435363738393031323334353637383930', type: 'TOTP', otpLength: 6 });
    writeFileSync(join(folder, 'lone.seeds.csv'), 'serial,secret,type\nLONE0001,00112233445566778899aabbccddeeff00112233,TOTP\n', { mode: 0o600 });
    const env = sandboxEnv(box.sandbox);
    const out = join(root, 'out');
    const morning = () => runCli(['run', folder, '--out-dir', out, '--activate'], env);
    const first = await morning();
    expect(first.code).toBe(1);
    const codes = box.sandbox.stats.activationsReceived;
    expect(codes).toBe(2);
    const second = await morning();
    expect(second.code).toBe(1);
    expect(box.sandbox.stats.activationsReceived).toBe(codes);
    expect(second.stdout).toMatch(/lone\.csv: .*exit 1/);
    // The user signs in and activates the token with a code of their own.
    box.sandbox.allDevices()[0]!.status = 'ACTIVE';
    const third = await morning();
    expect(third.code).toBe(0);
    expect(box.sandbox.stats.activationsReceived).toBe(codes);
    // Final now: the fourth morning costs no request at all.
    const requests = box.sandbox.stats.requests;
    const fourth = await morning();
    expect(fourth.code).toBe(0);
    expect(fourth.stdout).toMatch(/lone\.csv: nothing to do/);
    expect(box.sandbox.stats.requests).toBe(requests);
  });

  test('devices found already active do not reset the breaker: only a code taken proves the seeds', async () => {
    box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20 });
    const dir = tempDir('oath-bulk-refused-');
    const rows: Array<[string, string]> = Array.from({ length: 6 }, (_, i) => [userId(i + 1), `SPREAD${String(i).padStart(4, '0')}`]);
    csvFile(join(dir, 'spread.csv'), rows);
    for (const [, serial] of rows) box.sandbox.inventory.createOne({ serialNumber: serial, secret: '3132333435363738393031323334353637383930', type: 'TOTP', otpLength: 6 });
    const wrong = join(dir, 'wrong-seeds.csv');
    writeFileSync(wrong, 'serial,secret,type\n' + rows.map(([, s]) => `${s},00112233445566778899aabbccddeeff00112233,TOTP`).join('\n') + '\n', { mode: 0o600 });
    const env = sandboxEnv(box.sandbox);
    const args = ['run', join(dir, 'spread.csv'), '--seeds', wrong, '--out-dir', dir];
    expect((await runCli(args, env)).code).toBe(0);
    // Every other user signs in and activates their token.
    box.sandbox.allDevices().forEach((d, i) => {
      if (i % 2 === 0) d.status = 'ACTIVE';
    });
    const before = box.sandbox.stats.activationsReceived;
    const result = await runCli([...args, '--activate', '--max-consecutive-failures', '2'], env);
    expect(result.code).toBe(1);
    // Two devices refused both codes, then the breaker: the sixth device gets none.
    expect(box.sandbox.stats.activationsReceived - before).toBe(4);
    expect(result.stdout).toMatch(/ACTIVATION STOPPED after 2 devices in a row refused/);
  });

  test('--keep-reports keeps real runs and dry runs n each: a preflight never removes the reports of the run that made the devices', async () => {
    const dir = tempDir();
    csvFile(join(dir, 'audit.csv'), [[userId(1), 'AUDIT001']]);
    const env = sandboxEnv(box.sandbox);
    expect((await runCli(['run', join(dir, 'audit.csv'), '--out-dir', dir, '--keep-reports', '1'], env)).code).toBe(0);
    const real = summaries(dir, 'audit')[0]!;
    for (let i = 0; i < 2; i++) expect((await runCli(['run', '--dry-run', join(dir, 'audit.csv'), '--out-dir', dir, '--keep-reports', '1'], env)).code).toBe(0);
    expect(existsSync(real.reports.results)).toBe(true);
    expect(summaries(dir, 'audit').map((s) => s.dryRun)).toEqual([false, true]);
  });

  test('a token an earlier run imported and someone revoked since: the row says so, and the next run imports it again and assigns it', async () => {
    box.sandbox.configure({ inventory: 'imported', jobDelayMs: 20 });
    const dir = tempDir();
    csvFile(join(dir, 'back.csv'), [[userId(1), 'BACK0001']]);
    const seeds = join(dir, 'back-seeds.csv');
    writeFileSync(seeds, 'serial,secret,type\nBACK0001,3132333435363738393031323334353637383930,TOTP\n', { mode: 0o600 });
    const env = sandboxEnv(box.sandbox);
    const args = ['run', join(dir, 'back.csv'), '--seeds', seeds, '--out-dir', dir];
    expect((await runCli(args, env)).code).toBe(0);
    const results = summaries(dir, 'back')[0]!.reports.results;
    expect((await runCli(['rollback', results, '--out-dir', dir, '--yes'], env)).code).toBe(0);
    box.sandbox.inventory.remove(box.sandbox.inventory.get('BACK0001')!.id);
    const stuck = await runCli(args, env);
    expect(stuck.code).toBe(1);
    expect(readFileSync(summaries(dir, 'back').pop()!.reports.results, 'utf8')).toMatch(/an earlier run imported its seed, but PingOne no longer finds it \(revoked since\?\): the next run imports it again/);
    const again = await runCli(args, env);
    expect(again.code).toBe(0);
    expect(box.sandbox.inventory.has('BACK0001')).toBe(true);
    expect(box.sandbox.allDevices().map((d) => d.serialNumber)).toEqual(['BACK0001']);
  });
});

describe('#19: folder runs that overlap', () => {
  const threeShipments = (prefix: string): { folder: string; out: string } => {
    const root = tempDir('oath-bulk-overlap-');
    const folder = join(root, 'in');
    const out = join(root, 'out');
    mkdirSync(folder);
    for (const f of ['a', 'b', 'c']) csvFile(join(folder, `${f}.csv`), Array.from({ length: 4 }, (_, i) => [userId(100 + i + 10 * f.charCodeAt(0)), `${prefix}${f.toUpperCase()}${i}`] as [string, string]));
    return { folder, out };
  };

  test('two runs 1 s apart with --lock-wait 0: one does all the work and exits 0; the other takes the folder lock first or not at all: exit 2, no ping, no metrics, no request', async () => {
    box.sandbox.configure({ latencyMs: 400 });
    const { folder, out } = threeShipments('OVL');
    const hc = await monitor();
    const metrics = join(out, 'oath-bulk.prom');
    try {
      const env = sandboxEnv(box.sandbox);
      const args = ['run', folder, '--out-dir', out, '--healthcheck-url', hc.url, '--lock-wait', '0', '--metrics-file', metrics];
      const tokensBefore = box.sandbox.stats.tokensIssued;
      const first = startCli(args, env);
      const firstOut: string[] = [];
      first.stdout!.on('data', (c: Buffer) => firstOut.push(c.toString()));
      const firstDone = exited(first);
      await new Promise((r) => setTimeout(r, 1000));
      const second = await runCli(args, env);
      expect(second.code).toBe(2);
      expect(second.stderr).toMatch(/another run of .*in holds its lock .*pid \d+/);
      expect(second.stderr.trim().split('\n')).toEqual([expect.stringMatching(/attempted nothing/)]);
      expect(second.stdout).toBe('');
      expect((await firstDone).code).toBe(0);
      // One token request per shipment, all the first run's: the second sent nothing at all.
      expect(box.sandbox.stats.tokensIssued - tokensBefore).toBe(3);
      expect(firstOut.join('')).toMatch(/total: 3 files .*CREATED 12/);
      // One start and one end: the first run's.
      expect(hc.pings.map((p) => p.path.replace(/^\/ping\/5a1b2c3d/, ''))).toEqual(['/start', '/0']);
      expect(readFileSync(metrics, 'utf8')).toMatch(/oath_bulk_exit_code\{[^}]*\} 0/);
      expect(box.sandbox.stats.createsReceived).toBe(12);
    } finally {
      box.sandbox.configure({ latencyMs: 0 });
      await hc.close();
    }
  });

  test('review: --lock-wait is a folder run\'s: a bad value in the environment does not stop a single file; a bad flag value is named as typed; a dry run of a folder takes no lock', async () => {
    const { folder, out } = threeShipments('LWV');
    const env = sandboxEnv(box.sandbox);
    const single = await runCli(['run', join(folder, 'a.csv'), '--out-dir', out], { ...env, OATH_BULK_LOCK_WAIT: 'abc' });
    expect(single.code).toBe(0);
    const typed = await runCli(['run', folder, '--out-dir', out, '--lock-wait', 'abc'], env);
    expect(typed.code).toBe(2);
    expect(typed.stderr).toMatch(/--lock-wait: expected seconds to wait for the folder lock, from 0 to 86400, got "abc"/);
    expect((await runCli(['run', folder, '--out-dir', out, '--lock-wait', ''], env)).code).toBe(2);
    expect((await runCli(['run', join(folder, 'a.csv'), '--out-dir', out, '--lock-wait', '5'], env)).stderr).toMatch(/--lock-wait: .*folder/);
    // A preflight typed by hand while cron holds the folder: it reads, it does not wait or refuse.
    const { acquireLock } = await import('../../src/engine/lock.js');
    const { folderLockPath } = await import('../../src/commands/shared/operations.js');
    const held = await acquireLock(folderLockPath(folder, out));
    try {
      const dry = await runCli(['run', folder, '--out-dir', out, '--dry-run'], env);
      expect(dry.stderr).not.toMatch(/holds its lock/);
      expect(dry.code).toBe(0);
    } finally {
      await held.release();
    }
  });

  test('with --lock-wait 60 the second waits for the first, then finds nothing to do: both exit 0, every row created once', async () => {
    box.sandbox.configure({ latencyMs: 400 });
    const { folder, out } = threeShipments('WAIT');
    try {
      const env = sandboxEnv(box.sandbox);
      const args = ['run', folder, '--out-dir', out, '--lock-wait', '60'];
      const first = exited(startCli(args, env));
      await new Promise((r) => setTimeout(r, 1000));
      const second = await runCli(args, env);
      expect((await first).code).toBe(0);
      expect(second.code).toBe(0);
      expect(second.stdout).toMatch(/a\.csv: nothing to do/);
      expect(box.sandbox.stats.createsReceived).toBe(12);
    } finally {
      box.sandbox.configure({ latencyMs: 0 });
    }
  });
});

test('#19: the total line, the healthcheck body and the metrics say what this run did apart from what was already final', async () => {
  const root = tempDir('oath-bulk-totals-');
  const folder = join(root, 'in');
  const out = join(root, 'out');
  mkdirSync(folder);
  csvFile(join(folder, 'a.csv'), [[userId(301), 'TOTA0001'], [userId(302), 'TOTA0002']]);
  const env = sandboxEnv(box.sandbox);
  expect((await runCli(['run', folder, '--out-dir', out], env)).code).toBe(0);
  csvFile(join(folder, 'b.csv'), [[userId(303), 'TOTB0001'], [userId(304), 'TOTB0002'], [userId(305), 'TOTB0003']]);
  const hc = await monitor();
  const metrics = join(out, 'oath-bulk.prom');
  try {
    const second = await runCli(['run', folder, '--out-dir', out, '--healthcheck-url', hc.url, '--metrics-file', metrics], env);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/total: 2 files \(1 with nothing to do\) · CREATED 5 · this run: created 3, imported 0, activated 0 · /);
    expect(hc.pings.at(-1)!.body).toMatch(/this run: created 3, imported 0, activated 0/);
    const text = readFileSync(metrics, 'utf8');
    expect(text).toMatch(/oath_bulk_run_actions\{command="run",input="b\.csv",action="created"\} 3/);
    expect(text).toMatch(/oath_bulk_run_actions\{command="run",input="a\.csv",action="created"\} 0/);
    // The series alerts were built on keep their meaning: every row's outcome, earlier runs' included.
    expect(text).toMatch(/oath_bulk_rows\{command="run",input="a\.csv",outcome="CREATED"\} 2/);
  } finally {
    await hc.close();
  }
});
