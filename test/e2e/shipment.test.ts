/**
 * A whole shipment in one command, end to end: the built CLI against the sandbox over
 * loopback, with a strict inventory (only imported serials exist) and devices created
 * ACTIVATION_REQUIRED. `run --seeds <encrypted PSKC> --activate`; a rerun; the same without
 * --activate, then activation on a rerun; the Entra single file; a crash after the import,
 * then a rerun; and the dry run as a preflight that writes nothing.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { base32 } from '@scure/base';
import { parse } from 'csv-parse/sync';
import { useSandbox } from '../support/sandbox.js';
import { exited, latest, readResults, runCli, sandboxEnv, startCli, tempDir, userId, type ResultRow } from '../support/cli.js';
import { encryptedPskc, seededShipment, type SeededShipment } from '../support/pskc-writer.js';

const box = useSandbox();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');

type Shipment = SeededShipment;

/** `n` tokens (HOTP and TOTP alternating) in an encrypted PSKC file, and an assignment file for them. */
function shipment(n: number, extraRows = ''): Shipment {
  return seededShipment(tempDir('oath-bulk-ship-'), n, { prefix: 'SHIP', type: (i) => (i % 2 === 0 ? 'HOTP' : 'TOTP'), userId, extraRows });
}

function summary(dir: string): Record<string, any> {
  return JSON.parse(readFileSync(latest(dir, '.summary.json'), 'utf8'));
}

const writes = (kinds: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(kinds).filter(([k]) => ['create', 'delete', 'oathCreate', 'oathJob', 'oathDelete', 'activate'].includes(k)));

test('run --seeds <encrypted PSKC> --psk-file … --activate: imports what the inventory lacks, assigns, activates every device; a rerun sends nothing but reads', async () => {
  box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 50 });
  const s = shipment(8);
  // One token is in the inventory already, its counter one ahead of the seed file's (used once).
  const ahead = s.tokens[0]!;
  box.sandbox.inventory.createOne({ serialNumber: ahead.serial, secret: ahead.secretHex, type: 'HOTP', otpLength: 6, hotp: { counter: 1 } });
  // A token of the shipment that no row names: not imported.
  const unused = join(s.dir, 'unused.pskc.xml');
  writeFileSync(unused, encryptedPskc([...s.tokens, { serial: 'SPARE0001', type: 'TOTP', secretHex: randomBytes(20).toString('hex') }], KEY), { mode: 0o600 });
  const env = sandboxEnv(box.sandbox);
  const args = ['run', s.assignments, '--seeds', unused, '--psk-file', s.keyFile, '--activate', '--out-dir', s.dir];

  const first = await runCli(args, env);
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  const rows = readResults(s.dir);
  expect(rows.map((r) => [r['outcome'], r['deviceStatus']])).toEqual(Array(8).fill(['CREATED', 'ACTIVE']));
  expect(box.sandbox.allDevices().map((d) => d.status)).toEqual(Array(8).fill('ACTIVE'));
  // Imported once each, only what was missing: 7 new, the one present left alone, the spare never.
  expect(box.sandbox.inventory.created).toBe(8);
  expect(box.sandbox.inventory.has('SPARE0001')).toBe(false);
  const seeds = parse(readFileSync(latest(s.dir, '.seeds.csv'), 'utf8'), { columns: true }) as ResultRow[];
  expect(seeds.filter((r) => r['outcome'] === 'IMPORTED')).toHaveLength(7);
  expect(seeds.find((r) => r['serialNumber'] === ahead.serial)!['outcome']).toBe('ALREADY_PRESENT');
  // The token whose counter was ahead: the first code refused, the next one taken.
  expect(box.sandbox.stats.activationsReceived).toBe(9);
  const sum = summary(s.dir);
  expect(sum.activated).toBe(8);
  expect(sum.seeds.outcomes).toMatchObject({ IMPORTED: 7, ALREADY_PRESENT: 1 });
  expect(first.stdout).toMatch(/8 devices activated/);

  const before = { ...box.sandbox.stats.byKind };
  const again = await runCli(args, env);
  expect(again.code).toBe(0);
  expect(again.stdout).toMatch(/8 finished by an earlier run/);
  expect(writes(box.sandbox.stats.byKind)).toEqual(writes(before));
  expect(readResults(s.dir).map((r) => r['deviceStatus'])).toEqual(Array(8).fill('ACTIVE'));
});

test('without --activate the devices stay ACTIVATION_REQUIRED and are counted; a serial in neither the inventory nor the seeds says so; a rerun with --activate activates them', async () => {
  box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20 });
  const s = shipment(4, `${userId(99)},NOWHERE0001\n`);
  const env = sandboxEnv(box.sandbox);
  const base = ['run', s.assignments, '--seeds', s.pskc, '--psk-file', s.keyFile, '--out-dir', s.dir];
  const first = await runCli(base, env);
  expect(first.code).toBe(1);
  const rows = readResults(s.dir);
  expect(rows.slice(0, 4).map((r) => [r['outcome'], r['deviceStatus']])).toEqual(Array(4).fill(['CREATED', 'ACTIVATION_REQUIRED']));
  expect(rows[4]).toMatchObject({ outcome: 'FAILED', errorCode: 'SERIAL_NOT_FOUND' });
  expect(rows[4]!['message']).toMatch(/not in the seed file .*vendor\.pskc\.xml either/);
  expect(summary(s.dir).activationRequired).toBe(4);
  expect(first.stdout).toMatch(/4 devices are ACTIVATION_REQUIRED: those users are asked for a code/);

  const creates = box.sandbox.stats.createsReceived;
  const again = await runCli([...base, '--activate'], env);
  expect(again.code).toBe(1); // the serial nobody has still fails
  const after = readResults(s.dir);
  expect(after.slice(0, 4).map((r) => [r['outcome'], r['deviceStatus']])).toEqual(Array(4).fill(['CREATED', 'ACTIVE']));
  expect(box.sandbox.allDevices().every((d) => d.status === 'ACTIVE')).toBe(true);
  expect(box.sandbox.stats.createsReceived).toBe(creates + 1); // only the failing row was sent again
  expect(box.sandbox.inventory.created).toBe(4);
  expect(summary(s.dir).activated).toBe(4);
});

test('the Entra single file (upn,serial number,secret key,…) works with run alone: imported, assigned to the user the upn names, activated; its secrets appear nowhere', async () => {
  box.sandbox.configure({
    inventory: 'imported',
    activationRequired: true,
    jobDelayMs: 20,
    users: [
      { id: userId(1), username: 'alice@corp.example', email: 'alice@corp.example' },
      { id: userId(2), username: 'bob', email: 'bob.smith@corp.example' },
    ],
  });
  const dir = tempDir('oath-bulk-entra-');
  const secrets = [randomBytes(20), randomBytes(20)];
  const b32 = secrets.map((b) => base32.encode(b).replace(/=+$/, ''));
  const file = join(dir, 'entra.csv');
  writeFileSync(file, `upn,serial number,secret key,time interval,manufacturer,model\nalice@corp.example,ENTRA0001,${b32[0]},30,Contoso,Hardware Key\nbob.smith@corp.example,ENTRA0002,${b32[1]},30,Contoso,Hardware Key\n`, { mode: 0o600 });
  const result = await runCli(['run', file, '--activate', '--out-dir', dir, '--log-level', 'trace'], sandboxEnv(box.sandbox));
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const rows = readResults(dir);
  expect(rows.map((r) => [r['userID'], r['outcome'], r['deviceStatus']])).toEqual([
    [userId(1), 'CREATED', 'ACTIVE'],
    [userId(2), 'CREATED', 'ACTIVE'],
  ]);
  expect(rows[0]!['upn']).toBe('alice@corp.example');
  expect(Object.keys(rows[0]!)).not.toContain('secret key');
  expect(box.sandbox.inventory.created).toBe(2);
  // No secret, in any encoding, in any report.
  for (const name of readdirSync(dir).filter((f) => f !== 'entra.csv')) {
    const text = readFileSync(join(dir, name), 'utf8');
    for (const [i, secret] of secrets.entries()) {
      for (const form of [b32[i]!, secret.toString('hex'), secret.toString('base64')]) expect(text.includes(form)).toBe(false);
    }
  }
  for (const form of [...b32, ...secrets.map((x) => x.toString('hex'))]) expect(result.stdout.includes(form)).toBe(false);
});

test('a crash after the import, with the first create unanswered, then a rerun: every token imported once, every device once, all CREATED and ACTIVE', async () => {
  box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20, latencyMs: 400 });
  const s = shipment(6);
  const env = sandboxEnv(box.sandbox);
  const args = ['run', s.assignments, '--seeds', s.pskc, '--psk-file', s.keyFile, '--activate', '--out-dir', s.dir, '--concurrency', '1'];
  const child = startCli(args, env);
  const end = exited(child);
  for (let i = 0; i < 2000 && box.sandbox.stats.createsReceived === 0; i++) await sleep(5);
  expect(box.sandbox.inventory.created).toBe(6);
  child.kill('SIGKILL');
  expect((await end).signal).toBe('SIGKILL');
  const jobs = box.sandbox.stats.byKind['oathJob'];

  box.sandbox.configure({ latencyMs: 0 });
  const rerun = await runCli(args, env);
  expect(rerun.code).toBe(0);
  expect(readResults(s.dir).map((r) => [r['outcome'], r['deviceStatus']])).toEqual(Array(6).fill(['CREATED', 'ACTIVE']));
  expect(box.sandbox.stats.byKind['oathJob']).toBe(jobs);
  expect(box.sandbox.inventory.created).toBe(6);
  expect(box.sandbox.allDevices()).toHaveLength(6);
  expect(new Set(box.sandbox.allDevices().map((d) => d.serialNumber)).size).toBe(6);
});

test('--activate without seeds is a usage error (exit 2, nothing sent)', async () => {
  const s = shipment(2);
  const result = await runCli(['run', s.assignments, '--activate', '--out-dir', s.dir], sandboxEnv(box.sandbox));
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/--activate: .*needs the seeds: add --seeds/);
  expect(box.sandbox.stats.requests).toBe(0);
});

test('the dry run is a preflight: each row says what the real run would do, exit 1 when one would fail, and nothing is written to PingOne', async () => {
  box.sandbox.configure({ inventory: 'imported' });
  const inv = box.sandbox.inventory;
  const hex = randomBytes(20).toString('hex');
  for (const serial of ['GOOD0001', 'PAIRED0001', 'MINE0001', 'GONEUSER01']) inv.createOne({ serialNumber: serial, secret: hex, type: 'TOTP', otpLength: 6 });
  // Paired to someone else, and one to the row's own user.
  box.sandbox.seedDevice(userId(50), 'PAIRED0001');
  inv.pair('PAIRED0001', { id: box.sandbox.devicesOf(userId(50))[0]!.id, userId: userId(50) });
  box.sandbox.seedDevice(userId(3), 'MINE0001');
  inv.pair('MINE0001', { id: box.sandbox.devicesOf(userId(3))[0]!.id, userId: userId(3) });
  const dir = tempDir('oath-bulk-preflight-');
  const seedsFile = join(dir, 'seeds.csv');
  writeFileSync(seedsFile, `serial,secret,type\nSEEDED0001,${hex},TOTP\n`, { mode: 0o600 });
  const file = join(dir, 'check.csv');
  writeFileSync(file, [
    'userID,serialNumber',
    `${userId(1)},GOOD0001`,
    `${userId(2)},ABSENT0001`,
    `${userId(3)},MINE0001`,
    `${userId(4)},PAIRED0001`,
    `00000000-0000-4000-8000-000000000005,GONEUSER01`,
    `${userId(6)},SEEDED0001`,
  ].join('\n') + '\n');
  const env = sandboxEnv(box.sandbox);
  const result = await runCli(['run', '--dry-run', file, '--seeds', seedsFile, '--out-dir', dir], env);
  expect(result.code).toBe(1);
  const rows = readResults(dir);
  const view = rows.map((r) => [r['serialNumber'], r['outcome'], r['errorCode']]);
  expect(view).toEqual([
    ['GOOD0001', 'NOT_ATTEMPTED', ''],
    ['ABSENT0001', 'FAILED', 'SERIAL_NOT_FOUND'],
    ['MINE0001', 'EXISTING', ''],
    ['PAIRED0001', 'FAILED', 'SERIAL_ALREADY_ASSIGNED'],
    ['GONEUSER01', 'FAILED', 'USER_NOT_FOUND'],
    ['SEEDED0001', 'NOT_ATTEMPTED', ''],
  ]);
  expect(rows[0]!['message']).toMatch(/would create/);
  expect(rows[1]!['message']).toMatch(/not in the environment's OATH token inventory nor in the seed file/);
  expect(rows[3]!['message']).toContain(userId(50));
  expect(rows[5]!['message']).toMatch(/in the seed file: will be imported/);
  expect(writes(box.sandbox.stats.byKind)).toEqual({});
  expect(box.sandbox.stats.byKind['user']).toBe(6);
  expect(summary(dir).seeds.outcomes).toMatchObject({ NOT_ATTEMPTED: 1 });

  // Only the rows that would succeed: exit 0, still nothing written.
  const good = join(dir, 'good.csv');
  writeFileSync(good, `userID,serialNumber\n${userId(1)},GOOD0001\n${userId(6)},SEEDED0001\n`);
  const ok = await runCli(['run', '--dry-run', good, '--seeds', seedsFile, '--out-dir', dir], env);
  expect(ok.code).toBe(0);
  expect(ok.stdout).toMatch(/run it for real/);
  expect(writes(box.sandbox.stats.byKind)).toEqual({});
});

describe('review findings', () => {
  test('a row of a seed-carrying file with a cell missing is INVALID and its cells (a seed shifted into the serial) go nowhere, not even to PingOne', async () => {
    box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20, users: [{ id: userId(1), username: 'carol' }, { id: userId(2), username: 'dave' }] });
    const dir = tempDir('oath-bulk-entra-');
    const secrets = [randomBytes(20), randomBytes(20)];
    const b32 = secrets.map((b) => base32.encode(b));
    const file = join(dir, 'entra.csv');
    writeFileSync(file, `upn,serial number,secret key,time interval,manufacturer,model\ndave,SHORT0001,${b32[1]!.replace(/=+$/, '')},30,Contoso,Key\ncarol,${b32[0]},30,Contoso,Key\n${b32[0]}\n`, { mode: 0o600 });
    const result = await runCli(['run', file, '--activate', '--out-dir', dir, '--log-level', 'trace'], sandboxEnv(box.sandbox));
    expect(result.code).toBe(1);
    const rows = readResults(dir);
    expect(rows.map((r) => [r['outcome'], r['errorCode']])).toEqual([['CREATED', ''], ['INVALID', 'FIELD_COUNT'], ['INVALID', 'FIELD_COUNT']]);
    expect(rows[1]!['message']).toMatch(/expected 6 fields as in the header, got 5/);
    for (const name of readdirSync(dir).filter((f) => f !== 'entra.csv')) {
      const text = readFileSync(join(dir, name), 'utf8');
      for (const form of [b32[0]!, b32[0]!.replace(/=+$/, ''), secrets[0]!.toString('hex')]) expect(text.includes(form)).toBe(false);
    }
    expect(result.stdout + result.stderr).not.toContain(b32[0]!.slice(0, 16));
    expect(box.sandbox.allDevices().map((d) => d.serialNumber)).toEqual(['SHORT0001']);
  });

  test('a seed file given as the input by mistake: the error never shows its cells', async () => {
    const dir = tempDir();
    const secret = randomBytes(20).toString('hex');
    const file = join(dir, 'seeds.csv');
    writeFileSync(file, `00412345678901,${secret},TOTP\n00412345678902,${secret},TOTP\n`, { mode: 0o600 });
    const result = await runCli(['run', file, '--out-dir', dir], sandboxEnv(box.sandbox));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/no serialNumber column/);
    expect(result.stderr).not.toContain(secret.slice(0, 12));
  });

  test('an assignment column named Key is an ordinary column; one whose name says secret or seed is never carried', async () => {
    const dir = tempDir();
    const file = join(dir, 'assets.csv');
    writeFileSync(file, `userID,serialNumber,Key,Token Secret (Base32)\n${userId(1)},ASSET0001,ASSET-17,JBSWY3DPEHPK3PXP\n`);
    const result = await runCli(['run', file, '--out-dir', dir], sandboxEnv(box.sandbox));
    expect(result.stderr).not.toMatch(/seed/);
    const rows = readResults(dir);
    expect(rows[0]).toMatchObject({ outcome: 'CREATED', Key: 'ASSET-17' });
    expect(Object.keys(rows[0]!)).not.toContain('Token Secret (Base32)');
    expect(readFileSync(latest(dir, '.results.csv'), 'utf8')).not.toContain('JBSWY3DPEHPK3PXP');
  });

  test('the preflight judges every row (no breaker) and exits 1; with --activate it says when a device could not be activated', async () => {
    box.sandbox.configure({ inventory: 'imported' });
    const hex = randomBytes(20).toString('hex');
    box.sandbox.inventory.createOne({ serialNumber: 'INV0001', secret: hex, type: 'TOTP', otpLength: 6 });
    const dir = tempDir();
    const seeds = join(dir, 'seeds.csv');
    writeFileSync(seeds, `serial,secret,type\nSEED0001,${hex},TOTP\n`, { mode: 0o600 });
    const file = join(dir, 'many.csv');
    writeFileSync(file, 'userID,serialNumber\n' + Array.from({ length: 30 }, (_, i) => `${userId(i + 1)},MISSING${String(i).padStart(4, '0')}`).join('\n') + `\n${userId(40)},INV0001\n`);
    const result = await runCli(['run', '--dry-run', file, '--seeds', seeds, '--activate', '--out-dir', dir], sandboxEnv(box.sandbox));
    expect(result.code).toBe(1);
    const rows = readResults(dir);
    expect(rows.filter((r) => r['errorCode'] === 'SERIAL_NOT_FOUND')).toHaveLength(30);
    expect(rows[30]).toMatchObject({ outcome: 'NOT_ATTEMPTED', errorCode: 'ACTIVATION_FAILED' });
    expect(rows[30]!['message']).toMatch(/no usable seed for INV0001/);
    expect(writes(box.sandbox.stats.byKind)).toEqual({});
  });

  test('a seed file that repeats a serial with a bad copy first is SEED_CONFLICT (#18: one conflict policy), in the preflight and the run; a serial only invalid rows name is not imported', async () => {
    box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20 });
    const dir = tempDir();
    const good = randomBytes(20).toString('hex');
    const seeds = join(dir, 'dup.csv');
    writeFileSync(seeds, `serial,secret,type,counter\nDUP0001,zz-not-hex,HOTP,0\nDUP0001,${good},HOTP,0\nTWICE0001,${good},HOTP,0\n`, { mode: 0o600 });
    const file = join(dir, 'assign.csv');
    writeFileSync(file, `userID,serialNumber\n${userId(1)},DUP0001\n${userId(2)},TWICE0001\n${userId(3)},TWICE0001\n`);
    const env = sandboxEnv(box.sandbox);
    const dry = await runCli(['run', '--dry-run', file, '--seeds', seeds, '--activate', '--out-dir', dir], env);
    expect(readResults(dir)[0]).toMatchObject({ outcome: 'FAILED', errorCode: 'SEED_CONFLICT' });
    expect(dry.code).toBe(1);
    const real = await runCli(['run', file, '--seeds', seeds, '--activate', '--out-dir', dir], env);
    expect(real.code).toBe(1);
    expect(readResults(dir)[0]).toMatchObject({ outcome: 'FAILED', errorCode: 'SEED_CONFLICT' });
    expect(box.sandbox.inventory.has('DUP0001')).toBe(false);
    expect(box.sandbox.inventory.has('TWICE0001')).toBe(false);
  });

  test('--activate: a device already active is read, not sent codes, and not counted as activated by this run; an EXISTING device waiting for a code is activated', async () => {
    box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20 });
    const s = shipment(3);
    const env = sandboxEnv(box.sandbox);
    const base = ['run', s.assignments, '--seeds', s.pskc, '--psk-file', s.keyFile, '--out-dir', s.dir];
    expect((await runCli(base, env)).code).toBe(0);
    // The first user signs in and activates the token; the third device's journal is lost
    // (another --out-dir), so the job sees it as EXISTING.
    box.sandbox.allDevices()[0]!.status = 'ACTIVE';
    const sent = box.sandbox.stats.activationsReceived;
    const again = await runCli([...base, '--activate'], env);
    expect(again.code).toBe(0);
    expect(box.sandbox.stats.activationsReceived - sent).toBe(2);
    const rows = readResults(s.dir);
    expect(rows.map((r) => r['deviceStatus'])).toEqual(['ACTIVE', 'ACTIVE', 'ACTIVE']);
    expect(rows[0]!['message']).toMatch(/already active/);
    expect(summary(s.dir).activated).toBe(2);

    const other = join(s.dir, 'other');
    box.sandbox.allDevices()[2]!.status = 'ACTIVATION_REQUIRED';
    const fresh = await runCli(['run', s.assignments, '--seeds', s.pskc, '--psk-file', s.keyFile, '--out-dir', other, '--activate'], env);
    expect(fresh.code).toBe(0);
    const third = readResults(other)[2]!;
    expect(third).toMatchObject({ outcome: 'EXISTING', deviceStatus: 'ACTIVE' });
    expect(box.sandbox.allDevices()[2]!.status).toBe('ACTIVE');
  });

  test('seed-file flags without seeds, and an empty --seeds, are usage errors that say what to do', async () => {
    const s = shipment(1);
    const env = sandboxEnv(box.sandbox);
    const flags = await runCli(['run', s.assignments, '--psk-file', s.keyFile, '--out-dir', s.dir], env);
    expect(flags.code).toBe(2);
    expect(flags.stderr).toMatch(/--psk-file: goes with --seeds/);
    const empty = await runCli(['run', s.assignments, '--seeds', '', '--out-dir', s.dir], env);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/--seeds: give the seed file/);
    const noPreflight = await runCli(['run', s.assignments, '--no-preflight', '--out-dir', s.dir], env);
    expect(noPreflight.stderr).toMatch(/--no-preflight: goes with --dry-run/);
  });
});
