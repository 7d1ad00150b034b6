/**
 * End to end: the built CLI, as an operator runs it, against the sandbox over loopback HTTP.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useSandbox } from '../support/sandbox.js';
import { latest, readLog, readResults, runCli, sandboxEnv, shipment, tempDir, userId } from '../support/cli.js';

const box = useSandbox();

test('a clean 200-row run creates every device: exit 0, every row CREATED, ids match the sandbox', async () => {
  const dir = tempDir();
  const { path, rows } = shipment(dir, 200);
  const result = await runCli(['run', path, '--out-dir', dir, '--rate', '200', '--concurrency', '16'], sandboxEnv(box.sandbox));
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const results = readResults(dir);
  expect(results).toHaveLength(200);
  expect(results.map((r) => Number(r['row']))).toEqual(rows.map((_, i) => i + 1));
  for (const [i, r] of results.entries()) {
    expect(r).toMatchObject({ userID: rows[i]!.userID, serialNumber: rows[i]!.serialNumber, outcome: 'CREATED', httpStatus: '201', attempts: '1' });
    const held = box.sandbox.devicesOf(r['userID']!);
    expect(held).toHaveLength(1);
    expect(held[0]!.id).toBe(r['deviceId']);
    expect(held[0]!.serialNumber).toBe(r['serialNumber']);
  }
  expect(result.stdout).toMatch(/finished in .*\n  rows 200: CREATED 200/);
  // Reports name users: not readable by others.
  expect(statSync(latest(dir, '.results.csv')).mode & 0o077).toBe(0);
  expect(statSync(latest(dir, '.log.jsonl')).mode & 0o077).toBe(0);
  const summary = JSON.parse((await import('node:fs')).readFileSync(latest(dir, '.summary.json'), 'utf8'));
  expect(summary.outcomes).toEqual({ CREATED: 200, EXISTING: 0, FAILED: 0, INVALID: 0, UNCONFIRMED: 0, NOT_ATTEMPTED: 0 });
  expect(summary.requests.create).toBe(200);
});

test('a mixed file gets an outcome per row and exit 1', async () => {
  const dir = tempDir();
  const full = userId(900);
  box.sandbox.configure({ maxDevicesPerUser: 2 });
  box.sandbox.seedDevice(full, 'HELD1');
  box.sandbox.seedDevice(full, 'HELD2');
  box.sandbox.seedDevice(userId(5), 'ALREADY5');
  const lines = [
    'userID,serialNumber,site',
    `${userId(1)},GOOD0001,Leeds`,
    `${userId(2)},UNKNOWN42,York`,
    `00000000-0000-4000-8000-000000000001,GOOD0003,Hull`,
    `${full},GOOD0004,Bath`,
    `${userId(5)},ALREADY5,Ely`,
    `not-a-user,GOOD0006,Wells`,
    `${userId(7)},2.30873E+13,=HYPERLINK("x")`,
    `${userId(1)},GOOD0001,Leeds`,
  ];
  const path = join(dir, 'mixed.csv');
  writeFileSync(path, lines.join('\r\n') + '\r\n');
  const result = await runCli(['run', path, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(result.code).toBe(1);
  const byRow = readResults(dir).map((r) => [r['outcome'], r['errorCode'], r['site']]);
  expect(byRow).toEqual([
    ['CREATED', '', 'Leeds'],
    ['FAILED', 'SERIAL_NOT_FOUND', 'York'],
    ['FAILED', 'USER_NOT_FOUND', 'Hull'],
    ['FAILED', 'MAX_DEVICES_REACHED', 'Bath'],
    ['EXISTING', '', 'Ely'],
    ['INVALID', 'USER_ID_INVALID', 'Wells'],
    ['INVALID', 'SERIAL_MANGLED', `'=HYPERLINK("x")`],
    ['INVALID', 'DUPLICATE_ROW', 'Leeds'],
  ]);
  expect(result.stdout).toMatch(/SERIAL_NOT_FOUND ×1 — the token is not in the OATH token inventory: give its seed file/);
  // Logs and results join on the same names.
  const rowEvents = readLog(dir).filter((e) => e['event'] === 'row');
  expect(rowEvents.map((e) => [e['row'], e['outcome'], e['errorCode']])).toEqual(expect.arrayContaining([[2, 'FAILED', 'SERIAL_NOT_FOUND']]));
  expect(rowEvents).toHaveLength(8);
});

test('under a 10% fault mix with lost answers and token expiry every serial lands on its user exactly once', async () => {
  box.sandbox.configure({
    faults: { '5xx': 0.02, html502: 0.01, reset: 0.02, lost: 0.03, slow: 0.01, expire: 0.01 },
    slowMs: 1500,
    tokenTtlS: 3,
    expireMinAgeMs: 1000,
    seed: 20261128,
  });
  const dir = tempDir();
  const { path, rows } = shipment(dir, 200);
  const result = await runCli(['run', path, '--out-dir', dir, '--rate', '100', '--concurrency', '8', '--timeout', '1000', '--backoff-base', '50'], sandboxEnv(box.sandbox));
  expect(result.code).toBe(0);
  const results = readResults(dir);
  expect(results.filter((r) => r['outcome'] !== 'CREATED')).toEqual([]);
  for (const [i, r] of results.entries()) {
    const held = box.sandbox.devicesOf(rows[i]!.userID);
    expect(held.map((d) => d.serialNumber)).toEqual([rows[i]!.serialNumber]);
    expect(r['deviceId']).toBe(held[0]!.id);
  }
  expect(box.sandbox.allDevices()).toHaveLength(200);
  const faults = box.sandbox.stats.faults;
  expect(faults['lost']).toBeGreaterThan(0);
  expect(faults['expire'] ?? 0).toBeGreaterThan(0);
  expect(box.sandbox.stats.tokensIssued).toBeGreaterThan(1);
  const log = readLog(dir);
  expect(log.some((e) => e['event'] === 'token' && e['reason'] === 'unauthorized')).toBe(true);
  expect(log.some((e) => e['event'] === 'retry')).toBe(true);
  console.info(`fault mix: 200 rows in ${result.ms} ms, ${box.sandbox.stats.requests} requests (${JSON.stringify(faults)}), tokens issued ${box.sandbox.stats.tokensIssued}`);
});

test('--rate 40 is never exceeded in any one-second window the sandbox sees', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 160);
  const result = await runCli(['run', path, '--out-dir', dir, '--rate', '40', '--concurrency', '16'], sandboxEnv(box.sandbox));
  expect(result.code).toBe(0);
  const peak = box.sandbox.maxInWindow(1000);
  expect(peak).toBeLessThanOrEqual(40);
  expect(peak).toBeGreaterThanOrEqual(38);
  console.info(`--rate 40: highest one-second count seen by the sandbox ${peak}, ${box.sandbox.stats.requests} requests in ${result.ms} ms`);
});

test('--dry-run checks the credentials, writes the plan and sends no write', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 20);
  const result = await runCli(['run', path, '--out-dir', dir, '--dry-run'], sandboxEnv(box.sandbox));
  expect(result.code).toBe(0);
  expect(box.sandbox.stats.byKind['token']).toBe(1);
  expect(box.sandbox.stats.createsReceived).toBe(0);
  expect(box.sandbox.stats.byKind['create'] ?? 0).toBe(0);
  expect(box.sandbox.stats.byKind['delete'] ?? 0).toBe(0);
  const results = readResults(dir);
  expect(results.every((r) => r['outcome'] === 'NOT_ATTEMPTED' && /dry run: would create/.test(r['message']!))).toBe(true);
  expect(result.stdout).toMatch(/dry run finished/);
});

test('--dry-run with refused credentials stops with exit 3 and says so', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 3);
  const result = await runCli(['run', path, '--out-dir', dir, '--dry-run'], { ...sandboxEnv(box.sandbox), PINGONE_CLIENT_SECRET: 'wrong' });
  expect(result.code).toBe(3);
  expect(result.stderr).toMatch(/stopped \(CREDENTIALS_REFUSED\): PingOne refused the worker app credentials/);
  expect(readResults(dir).map((r) => r['outcome'])).toEqual(['NOT_ATTEMPTED', 'NOT_ATTEMPTED', 'NOT_ATTEMPTED']);
});

test('devices PingOne creates ACTIVATION_REQUIRED are CREATED with that deviceStatus, counted in the summary and named in the human summary', async () => {
  box.sandbox.configure({ activationRequired: true });
  const dir = tempDir();
  const { path } = shipment(dir, 6);
  const result = await runCli(['run', path, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(result.code).toBe(0);
  expect(readResults(dir).map((r) => [r['outcome'], r['deviceStatus']])).toEqual(Array(6).fill(['CREATED', 'ACTIVATION_REQUIRED']));
  expect(JSON.parse(readFileSync(latest(dir, '.summary.json'), 'utf8'))['activationRequired']).toBe(6);
  expect(result.stdout).toMatch(/6 devices are ACTIVATION_REQUIRED: those users are asked for a code/);
});
