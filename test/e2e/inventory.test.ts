/**
 * `oath-bulk inventory` (#22), end to end: the real CLI against the sandbox over loopback, the
 * ledger and the journals on disk, the HTML report in Debian's chromium. An environment lived
 * in — a shipment run, users who left (both of PingOne's possible behaviours), a user on leave, a
 * device deleted behind the tool's back, a token revoked and imported again outside it, tokens
 * expiring — comes out token by token in the state it is in, with the same counts in the CSV,
 * the summary, the metrics and the page; its orphans go straight into `revoke --dry-run`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import puppeteer from 'puppeteer-core';
import { useSandbox } from '../support/sandbox.js';
import { exited, runCli, sandboxEnv, startCli, stateDirOf, tempDir, userId } from '../support/cli.js';
import { encryptedPskc, SHIPMENT_KEY, type PskcToken } from '../support/pskc-writer.js';
import { TOKEN_STATES } from '../../src/engine/inventory.js';

const box = useSandbox();
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const FAST = ['--rate', '200', '--backoff-base', '20', '--no-progress'];
const DAY = 86_400_000;

type Row = Record<string, string>;
const csv = (path: string): Row[] => parse(readFileSync(path, 'utf8'), { columns: true }) as Row[];
const summaryOf = (stdout: string): Record<string, any> => JSON.parse(readFileSync(/\n {2}summary {2}(\S+)/.exec(stdout)![1]!, 'utf8'));

test('every token of a lived-in environment is in its state; the CSV, the summary, the metrics and the page (in chromium) agree; --state orphaned feeds revoke --dry-run, which names exactly them and writes nothing', async () => {
  const sandbox = box.sandbox;
  sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20, inventoryPageSize: 3 });
  const dir = tempDir('oath-bulk-inv-');
  const out = join(dir, 'reports');
  const env = sandboxEnv(sandbox);
  // The box: T0001–T0010; T0006 expired at the vendor, T0007 expiring in 10 days.
  const list: PskcToken[] = Array.from({ length: 10 }, (_, i) => ({
    serial: `T${String(i + 1).padStart(4, '0')}`,
    type: 'TOTP' as const,
    secretHex: randomBytes(20).toString('hex'),
    model: i % 2 === 0 ? 'OTP c200' : 'OTP c100',
    expiry: i === 5 ? new Date(Date.now() - 30 * DAY).toISOString() : i === 6 ? new Date(Date.now() + 10 * DAY).toISOString() : new Date(Date.now() + 3 * 365 * DAY).toISOString(),
  }));
  writeFileSync(join(dir, 'box.pskc.xml'), encryptedPskc(list, SHIPMENT_KEY), { mode: 0o600 });
  writeFileSync(join(dir, 'vendor.key'), SHIPMENT_KEY.toString('hex') + '\n', { mode: 0o600 });
  // Handed out: T0001–T0005 and T0010, each to a user of its own.
  const given = [1, 2, 3, 4, 5, 10];
  writeFileSync(join(dir, 'shipment.csv'), 'userID,serialNumber\n' + given.map((n) => `${userId(n)},T${String(n).padStart(4, '0')}`).join('\n') + '\n');
  // The whole box goes into the inventory; the run hands out its part.
  expect((await runCli(['import', join(dir, 'box.pskc.xml'), '--psk-file', join(dir, 'vendor.key'), '--out-dir', out, ...FAST], env)).code).toBe(0);
  const run = await runCli(['run', join(dir, 'shipment.csv'), '--seeds', join(dir, 'box.pskc.xml'), '--psk-file', join(dir, 'vendor.key'), '--out-dir', out, ...FAST], env);
  expect(run.code).toBe(0);
  // T0009 is revoked as lost, and later imported again outside oath-bulk.
  writeFileSync(join(dir, 'lost.csv'), 'serialNumber\nT0009\n');
  expect((await runCli(['revoke', join(dir, 'lost.csv'), '--reason', 'lost', '--yes', '--out-dir', out, ...FAST], env)).code).toBe(0);
  expect(sandbox.inventory.has('T0009')).toBe(false);
  sandbox.inventory.createOne({ serialNumber: 'T0009', secret: list[8]!.secretHex, type: 'TOTP' });

  // Life goes on: T0001's and T0010's users leave (PingOne keeps their tokens paired: orphan),
  // T0004's user leaves where PingOne frees the tokens, T0002's user goes on leave, and T0003's
  // device is deleted in the console.
  sandbox.deleteUser(userId(1));
  sandbox.deleteUser(userId(10));
  sandbox.configure({ onUserDeleted: 'free' });
  sandbox.deleteUser(userId(4));
  sandbox.disableUser(userId(2));
  const t3 = sandbox.devicesOf(userId(3))[0]!;
  sandbox.removeDevice(userId(3), t3.id);
  // Tokens assigned outside oath-bulk (no journal knows their devices): one in use, one waiting.
  for (const [serial, status, user] of [['EXT0001', 'ACTIVE', 21], ['EXT0002', 'ACTIVATION_REQUIRED', 22]] as const) {
    sandbox.inventory.createOne({ serialNumber: serial, secret: randomBytes(20).toString('hex'), type: 'TOTP' });
    sandbox.seedDevice(userId(user), serial, undefined, status);
  }
  sandbox.inventory.createOne({ serialNumber: 'EXT0003', secret: randomBytes(20).toString('hex'), type: 'TOTP' });

  const ledger = join(stateDirOf(sandbox), `${sandbox.environmentId}.ledger.jsonl`);
  const metrics = join(dir, 'inventory.prom');
  const before = sandbox.stats.requests;
  const inv = await runCli(['inventory', '--state', 'orphaned', '--device-status', '--expiring-within', '30', '--metrics-file', metrics, '--out-dir', out, ...FAST], env);
  expect(inv.stderr).toBe('');
  expect(inv.code).toBe(0);
  const summary = summaryOf(inv.stdout);
  const rows = csv(summary.reports.results);
  const state = Object.fromEntries(rows.map((r) => [r['serialNumber'], r['state']]));
  expect(state).toEqual({
    T0001: 'ORPHANED', T0010: 'ORPHANED',
    T0002: 'HOLDER_DISABLED',
    T0003: 'UNACCOUNTED', T0004: 'UNACCOUNTED',
    T0005: 'ACTIVATION_PENDING',
    T0006: 'EXPIRED', T0007: 'EXPIRING', T0008: 'FREE',
    T0009: 'REVOKED_PRESENT',
    EXT0001: 'ASSIGNED', EXT0002: 'ACTIVATION_PENDING', EXT0003: 'FREE',
  });
  const by = Object.fromEntries(rows.map((r) => [r['serialNumber'], r]));
  expect(by['T0001']).toMatchObject({ problem: 'USER_DELETED', userID: userId(1), shipment: 'box.pskc.xml', model: 'OTP c200' });
  expect(by['T0002']).toMatchObject({ problem: 'USER_DISABLED', userID: userId(2) });
  // The freed token names its last holder (the ledger's): unassign can record its return.
  expect(by['T0004']).toMatchObject({ problem: 'HANDED_OUT_NOT_RETURNED', userID: userId(4), deviceId: '' });
  expect(by['T0005']).toMatchObject({ deviceStatus: 'ACTIVATION_REQUIRED' });
  expect(by['EXT0001']).toMatchObject({ deviceStatus: 'ACTIVE', shipment: '' });
  expect(by['T0006']!['validUntil']!.slice(0, 10)).toBe(list[5]!.expiry!.slice(0, 10));
  expect(by['T0009']).toMatchObject({ problem: 'REVOKED_IN_LEDGER' });
  expect(by['T0009']!['message']).toContain('lost');
  // Requests: the pages (3 tokens each), the directory or the users, one device read per user whose status no journal knows.
  expect(summary.reading).toMatchObject({ complete: true, pages: Math.ceil(13 / 3) });
  // Users 21 and 22 (no journal knows their devices) and 5 (the journal saw it waiting for its
  // code: the user may have signed in since); the journal saw the others ACTIVE, or their state
  // does not depend on it (disabled, deleted).
  expect(summary.reading.devices.reads).toBe(3);
  // 5 pages; 1 directory page, then a read to confirm each of the 2 users it did not list (404);
  // 3 device lists; and the access token.
  expect(summary.requests).toMatchObject({ inventory: 5, lookup: 3, list: 3, token: 1, total: 12, create: 0, delete: 0, job: 0 });
  expect(sandbox.stats.requests - before).toBe(summary.requests.total);

  // One count everywhere: CSV = summary = metrics = page.
  const fromCsv = Object.fromEntries(TOKEN_STATES.map((s) => [s, rows.filter((r) => r['state'] === s).length]));
  expect(summary.tokens).toEqual(fromCsv);
  const prom = readFileSync(metrics, 'utf8');
  for (const s of TOKEN_STATES) expect(prom).toContain(`oath_bulk_tokens{state="${s}"} ${fromCsv[s]}\n`);
  expect(prom).toMatch(/\noath_bulk_tokens_read_timestamp_seconds \d{10}\n/);

  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'] });
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('console', (m) => (m.type() === 'error' ? problems.push(m.text()) : undefined));
    await page.goto(pathToFileURL(summary.reports.report).href, { waitUntil: 'load' });
    expect(problems).toEqual([]);
    const shown = await page.$$eval('.counts [data-state]', (els) => Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset['state'], Number(e.querySelector('.n')!.textContent)])));
    expect(shown).toEqual(fromCsv);
    expect(await page.$eval('[data-field=tokens]', (e) => Number(e.textContent))).toBe(rows.length);
    // Problems first: the first count and the first listed token are problems.
    expect(await page.$eval('.counts [data-state]', (e) => (e as HTMLElement).dataset['state'])).toBe('ORPHANED');
    const listed = await page.$$eval('table.rows tr[data-serial] td:nth-child(2)', (tds) => tds.map((t) => t.textContent));
    expect(listed.slice(0, 2)).toEqual(['ORPHANED', 'ORPHANED']);
    const advice = await page.$$eval('tr[data-advice]', (els) => Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset['advice'], e.textContent ?? ''])));
    expect(advice['ORPHANED']).toContain('oath-bulk revoke');
    expect(advice['UNACCOUNTED']).toContain('oath-bulk revoke');
    expect(advice['UNACCOUNTED']).toContain('oath-bulk unassign');
    expect(await page.$eval('[data-shipment="box.pskc.xml"] [data-total]', (e) => Number(e.textContent))).toBe(10);
    expect(await page.$eval('[data-field=expiring]', (e) => Number(e.textContent))).toBe(2);
  } finally {
    await browser.close();
  }

  // The orphans, straight into revoke's dry run: exactly them, nothing written.
  const orphaned = csv(summary.stateFile.path);
  expect(orphaned.map((r) => r['serialNumber']).sort()).toEqual(['T0001', 'T0010']);
  const ledgerBefore = readFileSync(ledger, 'utf8');
  const devicesBefore = sandbox.allDevices().length;
  const dry = await runCli(['revoke', summary.stateFile.path, '--reason', 'lost', '--dry-run', '--out-dir', out, ...FAST], env);
  expect(dry.code).toBe(0);
  const would = csv(/\n {2}results {2}(\S+)/.exec(dry.stdout)![1]!);
  expect(would.filter((r) => r['outcome'] === 'WOULD_REVOKE').map((r) => r['serialNumber']).sort()).toEqual(['T0001', 'T0010']);
  expect(would).toHaveLength(2);
  expect(readFileSync(ledger, 'utf8')).toBe(ledgerBefore);
  expect(sandbox.inventory.revokesSent.size).toBe(1); // T0009's, before
  expect(sandbox.allDevices()).toHaveLength(devicesBefore);

  // A run rolled back gives its tokens back to the pool (FREE, not UNACCOUNTED); the UNACCOUNTED
  // ones that came back are unassigned from their file — the deleted holder's too — and are FREE.
  // (One of its devices is gone before the rollback comes: deleted by a rollback killed before
  // it wrote its note, or in the console. The hand-out is undone either way.)
  sandbox.inventory.createOne({ serialNumber: 'EXT0004', secret: randomBytes(20).toString('hex'), type: 'TOTP' });
  writeFileSync(join(dir, 'mistake.csv'), `userID,serialNumber\n${userId(40)},EXT0003\n${userId(41)},EXT0004\n`);
  const mistake = await runCli(['run', join(dir, 'mistake.csv'), '--out-dir', out, ...FAST], env);
  expect(mistake.code).toBe(0);
  sandbox.removeDevice(userId(41), sandbox.devicesOf(userId(41))[0]!.id);
  const rolled = await runCli(['rollback', /\n {2}results {2}(\S+)/.exec(mistake.stdout)![1]!, '--yes', '--out-dir', out, ...FAST], env);
  expect(rolled.code).toBe(0);
  expect(csv(/\n {2}results {2}(\S+)/.exec(rolled.stdout)![1]!).map((r) => r['outcome'])).toEqual(['DELETED', 'ALREADY_GONE']);
  const second = summaryOf((await runCli(['inventory', '--state', 'unaccounted', '--out-dir', out, ...FAST], env)).stdout);
  expect(csv(second.reports.results).filter((r) => r['serialNumber']!.startsWith('EXT000') && r['serialNumber'] !== 'EXT0001' && r['serialNumber'] !== 'EXT0002').map((r) => [r['serialNumber'], r['state']]).sort()).toEqual([['EXT0003', 'FREE'], ['EXT0004', 'FREE']]);
  const unaccounted = csv(second.stateFile.path);
  expect(unaccounted.map((r) => [r['serialNumber'], r['userID']]).sort()).toEqual([['T0003', userId(3)], ['T0004', userId(4)]]);
  const back = await runCli(['unassign', second.stateFile.path, '--yes', '--out-dir', out, ...FAST], env);
  expect(back.code).toBe(0);
  expect(csv(/\n {2}results {2}(\S+)/.exec(back.stdout)![1]!).map((r) => r['outcome'])).toEqual(['NOT_ASSIGNED', 'NOT_ASSIGNED']);
  // A user id that never existed is a typo, not a user who left: refused as before.
  writeFileSync(join(dir, 'typo.csv'), `userID,serialNumber\n00000000-0000-4000-8000-000000000099,T0008\n`);
  const typo = await runCli(['unassign', join(dir, 'typo.csv'), '--yes', '--out-dir', out, ...FAST], env);
  expect(typo.code).toBe(1);
  expect(csv(/\n {2}results {2}(\S+)/.exec(typo.stdout)![1]!)[0]).toMatchObject({ outcome: 'FAILED', errorCode: 'USER_NOT_FOUND' });
  const third = summaryOf((await runCli(['inventory', '--out-dir', out, ...FAST], env)).stdout);
  expect(csv(third.reports.results).filter((r) => ['T0003', 'T0004'].includes(r['serialNumber']!)).map((r) => r['state'])).toEqual(['FREE', 'FREE']);
  expect(third.tokens.UNACCOUNTED).toBe(0);
}, 90_000);

test('inventory pages of a few tokens: a stop in the middle of the listing writes no counts to the metrics and says INCOMPLETE; the rerun reads from the first page and gets them all', async () => {
  const sandbox = box.sandbox;
  sandbox.configure({ inventory: 'imported', inventoryPageSize: 5 });
  const made = sandbox.populate({ tokens: 300, prefix: 'PG', assigned: 0.5 });
  const dir = tempDir('oath-bulk-inv-');
  const out = join(dir, 'reports');
  const metrics = join(dir, 'inventory.prom');
  const env = sandboxEnv(sandbox);
  // Yesterday's complete reading.
  expect((await runCli(['inventory', '--metrics-file', metrics, '--out-dir', out, ...FAST], env)).code).toBe(0);
  const yesterday = readFileSync(metrics, 'utf8').split('\n').filter((l) => l.startsWith('oath_bulk_tokens'));
  expect(yesterday).toHaveLength(TOKEN_STATES.length + 1);
  const child = startCli(['inventory', '--metrics-file', metrics, '--out-dir', out, '--rate', '20', '--no-progress'], env);
  let stdout = '';
  child.stdout!.on('data', (c) => (stdout += String(c)));
  const before = sandbox.stats.byKind['oathList'] ?? 0;
  while ((sandbox.stats.byKind['oathList'] ?? 0) < before + 8) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGINT');
  const { code } = await exited(child);
  expect(code).toBe(3);
  const stopped = summaryOf(stdout);
  expect(stopped.stopped.code).toBe('INTERRUPTED');
  expect(stopped.tokens).toBeNull();
  expect(stopped.reading.complete).toBe(false);
  expect(stopped.reading.pages).toBeLessThan(60);
  expect(stdout).toContain('INCOMPLETE');
  // Every token read is in the results, none claimed: the paired ones whose user was not read are UNKNOWN.
  const partial = csv(stopped.reports.results);
  expect(partial.length).toBe(stopped.rows);
  expect(partial.filter((r) => r['deviceId'] !== '').every((r) => r['state'] === 'UNKNOWN' && r['problem'] === 'USER_NOT_READ')).toBe(true);
  // The metrics: no partial count; yesterday's counts and their time stay (an alert on their age
  // fires); the exit code says the reading stopped.
  const prom = readFileSync(metrics, 'utf8');
  expect(prom.split('\n').filter((l) => l.startsWith('oath_bulk_tokens'))).toEqual(yesterday);
  expect(prom).toContain('oath_bulk_exit_code{command="inventory"} 3\n');
  expect(prom).not.toContain('oath_bulk_rows{command="inventory"');

  const listed = sandbox.stats.byKind['oathList'] ?? 0;
  const again = await runCli(['inventory', '--metrics-file', metrics, '--out-dir', out, ...FAST], env);
  expect(again.code).toBe(0);
  const summary = summaryOf(again.stdout);
  expect(summary.reading).toMatchObject({ complete: true, pages: 60 });
  expect((sandbox.stats.byKind['oathList'] ?? 0) - listed).toBe(60);
  expect(summary.tokens.FREE).toBe(made.free.length);
  expect(summary.tokens.ASSIGNED).toBe(made.assigned.length + made.pending.length);
  expect(summary.tokens.HOLDER_DISABLED).toBe(made.disabled.length);
  expect(summary.tokens.ORPHANED).toBe(made.deleted.length);
  expect(summary.rows).toBe(300);
  expect(existsSync(join(out, `${sandbox.environmentId}.inventory.users.jsonl`))).toBe(false);
  expect(readFileSync(metrics, 'utf8')).toContain(`oath_bulk_tokens{state="FREE"} ${made.free.length}\n`);
}, 60_000);

test('a user that cannot be read after the retries leaves the token UNKNOWN (never guessed) and exit 1; the reads a stopped reading completed are reused by the rerun', async () => {
  const sandbox = box.sandbox;
  const slow = userId(31);
  sandbox.configure({ inventory: 'imported', slowUsers: [slow], slowMs: 1500 });
  sandbox.inventory.createOne({ serialNumber: 'SLOW0001', secret: randomBytes(20).toString('hex'), type: 'TOTP' });
  sandbox.seedDevice(slow, 'SLOW0001', undefined, 'ACTIVE');
  const dir = tempDir('oath-bulk-inv-');
  const out = join(dir, 'reports');
  const env = sandboxEnv(sandbox);
  const result = await runCli(['inventory', '--out-dir', out, '--timeout', '300', '--max-attempts', '2', ...FAST], env);
  expect(result.code).toBe(1);
  const summary = summaryOf(result.stdout);
  const rows = csv(summary.reports.results);
  expect(rows).toEqual([expect.objectContaining({ serialNumber: 'SLOW0001', state: 'UNKNOWN', problem: 'USER_READ_FAILED' })]);
  expect(summary.tokens.UNKNOWN).toBe(1);

  // Users read by a reading that stopped are kept beside the reports and reused within the hour.
  const cache = join(out, `${sandbox.environmentId}.inventory.users.jsonl`);
  writeFileSync(cache, JSON.stringify({ id: slow, at: Date.now() - 60_000, exists: true, enabled: true, username: 'kept' }) + '\n', { mode: 0o600 });
  const reads = sandbox.stats.byKind['user'] ?? 0;
  const again = await runCli(['inventory', '--out-dir', out, '--timeout', '300', '--max-attempts', '2', ...FAST], env);
  expect(again.code).toBe(0);
  expect(sandbox.stats.byKind['user'] ?? 0).toBe(reads);
  expect(csv(summaryOf(again.stdout).reports.results)[0]).toMatchObject({ state: 'ASSIGNED', username: 'kept' });
  expect(summaryOf(again.stdout).reading.users).toMatchObject({ reused: 1, reads: 0 });

  // A damaged ledger stops what imports or assigns; the reading goes on without it, says so, exits 1.
  const ledger = join(stateDirOf(sandbox), `${sandbox.environmentId}.ledger.jsonl`);
  writeFileSync(ledger, readFileSync(ledger, 'utf8') + 'not a fact\n{"v":1}\n');
  const damaged = await runCli(['inventory', '--out-dir', out, ...FAST], env);
  expect(damaged.code).toBe(1);
  expect(damaged.stderr).toMatch(/ledger\.jsonl: line 2: .*goes on without it/);
  expect(damaged.stdout).toContain('LEDGER DAMAGED');
  // Its counts are not the environment's (a revoked or unaccounted token would pass for FREE): none for the metrics.
  expect(summaryOf(damaged.stdout).tokens).toBeNull();
  expect(csv(summaryOf(damaged.stdout).reports.results)).toHaveLength(1);
}, 60_000);
