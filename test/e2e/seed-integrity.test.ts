/**
 * Seed files you can trust, end to end (issue #18): the built CLI against the sandbox over
 * loopback. One conflict policy for `import` and `run --seeds`; swapped seed-CSV columns never
 * put a seed anywhere; a stripped file given with a key is refused; a UTF-16 PSKC file; a
 * 64-bit counter reaches PingOne exactly; and a kill -9 while an import job is still running.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import { useSandbox } from '../support/sandbox.js';
import { exited, latest, readResults, runCli, sandboxEnv, startCli, tempDir, userId, type ResultRow } from '../support/cli.js';

const box = useSandbox('all');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const csv = (path: string): ResultRow[] => parse(readFileSync(path, 'utf8'), { columns: true }) as ResultRow[];
const everything = (dir: string, result: { stdout: string; stderr: string }): string =>
  [result.stdout, result.stderr, ...readdirSync(dir).filter((f) => !f.endsWith('.csv.in') && !/^(seeds|swapped|conflict|vendor)/.test(f)).map((f) => readFileSync(join(dir, f), 'utf8'))].join('\n');

beforeEach(() => box.sandbox.configure({ inventory: 'imported', jobDelayMs: 0, activationRequired: false }));

describe('one conflict policy', () => {
  const A = randomBytes(20).toString('hex');
  const B = randomBytes(20).toString('hex');
  const seeds = (dir: string, prefix: string): string => {
    const path = join(dir, 'conflict.csv');
    writeFileSync(path, `serial,secret,type\n${prefix}01,${randomBytes(20).toString('hex')},TOTP\n${prefix}02,${A},TOTP\n${prefix}03,${randomBytes(20).toString('hex')},TOTP\n${prefix}02,${B},TOTP\n`, { mode: 0o600 });
    return path;
  };

  test('import: a serial with two different secrets is SEED_CONFLICT on both lines, exit 1, nothing of it imported', async () => {
    const dir = tempDir();
    const result = await runCli(['import', seeds(dir, 'CFI'), '--out-dir', dir], sandboxEnv(box.sandbox));
    expect(result.code).toBe(1);
    const rows = csv(latest(dir, '.results.csv'));
    expect(rows.filter((r) => r['serialNumber'] === 'CFI02').map((r) => [r['outcome'], r['errorCode']])).toEqual([['INVALID', 'SEED_CONFLICT'], ['INVALID', 'SEED_CONFLICT']]);
    expect(rows.find((r) => r['serialNumber'] === 'CFI02')!['message']).toMatch(/line 3.*line 5|line 5.*line 3/);
    expect(box.sandbox.inventory.has('CFI02')).toBe(false);
    expect(box.sandbox.inventory.has('CFI01')).toBe(true);
  });

  test('run --seeds: the same code, exit 1, the serial neither imported nor assigned', async () => {
    const dir = tempDir();
    const assign = join(dir, 'assign.csv');
    writeFileSync(assign, `userID,serialNumber\n${userId(1)},CFR01\n${userId(2)},CFR02\n${userId(3)},CFR03\n`);
    const result = await runCli(['run', assign, '--seeds', seeds(dir, 'CFR'), '--out-dir', dir], sandboxEnv(box.sandbox));
    expect(result.code).toBe(1);
    const row = readResults(dir).find((r) => r['serialNumber'] === 'CFR02')!;
    expect([row['outcome'], row['errorCode']]).toEqual(['FAILED', 'SEED_CONFLICT']);
    expect(box.sandbox.inventory.has('CFR02')).toBe(false);
    expect(box.sandbox.allDevices().map((d) => d.serialNumber).sort()).toEqual(['CFR01', 'CFR03']);
  });
});

describe('one conflict policy, when a copy is refused for something else', () => {
  test('run --seeds: a serial already in the inventory whose seed file gives it a 7-digit copy and two other secrets is FAILED SEED_CONFLICT, not assigned', async () => {
    const dir = tempDir();
    const A = randomBytes(20).toString('hex');
    const B = randomBytes(20).toString('hex');
    box.sandbox.inventory.createOne({ serialNumber: 'RVS02', secret: A, type: 'TOTP', otpLength: 6 });
    const seeds = join(dir, 'conflict.csv');
    writeFileSync(seeds, `serial,secret,type,otpLength\nRVS02,${B},TOTP,7\nRVS02,${A},TOTP,6\nRVS02,${B},TOTP,6\n`, { mode: 0o600 });
    const assign = join(dir, 'assign.csv');
    writeFileSync(assign, `userID,serialNumber\n${userId(501)},RVS02\n`);
    const result = await runCli(['run', assign, '--seeds', seeds, '--out-dir', dir], sandboxEnv(box.sandbox));
    expect(result.code).toBe(1);
    expect(readResults(dir).map((r) => [r['outcome'], r['errorCode']])).toEqual([['FAILED', 'SEED_CONFLICT']]);
    expect(box.sandbox.devicesOf(userId(501))).toEqual([]);
  });
});

describe('swapped seed-CSV columns', () => {
  test('a seed under "serial" and a short value under "secret": the row is COLUMNS_SWAPPED and the seed is in no output, at trace level', async () => {
    const dir = tempDir();
    const seed = randomBytes(20).toString('hex');
    const path = join(dir, 'swapped.csv');
    writeFileSync(path, `serial,secret,type\nOK0001,${randomBytes(20).toString('hex')},TOTP\n${seed},00412345678901,TOTP\n`, { mode: 0o600 });
    const result = await runCli(['import', path, '--out-dir', dir, '--log-level', 'trace'], sandboxEnv(box.sandbox));
    expect(result.code).toBe(1);
    const rows = csv(latest(dir, '.results.csv'));
    expect(rows.map((r) => r['errorCode'])).toEqual(['', 'COLUMNS_SWAPPED']);
    expect(box.sandbox.inventory.has(seed)).toBe(false);
    const all = everything(dir, result);
    expect(all).not.toContain(seed);
    expect(all).not.toContain(seed.toUpperCase());
    expect(all).not.toContain('00412345678901');
  });

  test('an Entra file (its own seed file) with one row swapped: that row is INVALID COLUMNS_SWAPPED, never sent, its seed in no output', async () => {
    box.sandbox.configure({ users: [{ id: userId(801), username: 'ana@example.com' }, { id: userId(802), username: 'ben@example.com' }] });
    const dir = tempDir();
    const path = join(dir, 'vendor-entra.csv');
    const good = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    const seed = 'KRUGS4ZANFZSAYJAONSWKZBAOJSWC3DMPE';
    const grouped = 'mfrg gzdf mztw q2lk mfrg gzdf mztw q2lk';
    const hex = `0x${randomBytes(20).toString('hex')}`;
    const odd = 'GEZD-GNBV-GY3T-QOJQ-GEZD-GNBV-GY3T-QOJ!';
    // Enough good rows that the swapped ones are a minority (a majority means the header is swapped).
    const good2 = 'ONSWG4TFOQFA2LTXNFZGC3LFMR2GS3TH';
    const good3 = 'NBSWY3DPEB3W64TMMQQGY33OM5TGK2LT';
    writeFileSync(
      path,
      `upn,serial number,secret key,time interval,manufacturer,model\nana@example.com,ENT0001,${good},30,Token2,C202\nben@example.com,${seed},ENT0002,30,Token2,C202\nben@example.com,${grouped},1234,30,Token2,C202\nben@example.com,${hex},ENT4,30,Token2,C202\nben@example.com,${odd},${good},30,Token2,C202\nana@example.com,ENT0005,${good2},30,Token2,C202\nana@example.com,ENT0006,${good3},30,Token2,C202\n`,
      { mode: 0o600 },
    );
    const result = await runCli(['run', path, '--out-dir', dir, '--log-level', 'trace'], sandboxEnv(box.sandbox));
    expect(result.code).toBe(1);
    const rows = readResults(dir);
    expect(rows.map((r) => [r['outcome'], r['errorCode']])).toEqual([['CREATED', ''], ['INVALID', 'COLUMNS_SWAPPED'], ['INVALID', 'COLUMNS_SWAPPED'], ['INVALID', 'COLUMNS_SWAPPED'], ['INVALID', 'SERIAL_INVALID'], ['CREATED', ''], ['CREATED', '']]);
    expect(box.sandbox.allDevices().map((d) => d.serialNumber)).not.toContain(seed);
    const all = everything(dir, result);
    for (const secretish of [seed, good, good2, good3, grouped, hex, hex.slice(2), odd, 'GEZD-GNBV']) expect(all).not.toContain(secretish);
  });

  test('when most rows are swapped, the header is: the file is refused, exit 2, nothing sent', async () => {
    const dir = tempDir();
    const path = join(dir, 'swapped.csv');
    const seedsIn = [randomBytes(20).toString('hex'), randomBytes(20).toString('hex'), randomBytes(20).toString('hex')];
    writeFileSync(path, `serial,secret,type\n${seedsIn.map((s, i) => `${s},0041234567890${i},TOTP`).join('\n')}\n`, { mode: 0o600 });
    const before = box.sandbox.stats.requests;
    const result = await runCli(['import', path, '--out-dir', dir], sandboxEnv(box.sandbox));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/swapped/i);
    expect(box.sandbox.stats.requests).toBe(before);
    for (const s of seedsIn) expect(result.stderr + result.stdout).not.toContain(s);
  });
});

describe('protection and encodings through the CLI', () => {
  const FIG3 = readFileSync('test/fixtures/pskc/figure3.xml', 'utf8');

  test('a file without encryption given with --psk-file is refused (exit 2) unless --allow-unencrypted', async () => {
    const dir = tempDir();
    const path = join(dir, 'vendor.xml');
    writeFileSync(path, FIG3, { mode: 0o600 });
    const keyFile = join(dir, 'vendor.key');
    writeFileSync(keyFile, '12345678901234567890123456789012\n', { mode: 0o600 });
    const env = sandboxEnv(box.sandbox);
    const refused = await runCli(['import', path, '--psk-file', keyFile, '--out-dir', dir], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--allow-unencrypted/);
    const allowed = await runCli(['import', path, '--psk-file', keyFile, '--allow-unencrypted', '--dry-run', '--out-dir', dir], env);
    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toMatch(/not encrypted|no protection|unprotected/i);
  });

  test('a UTF-16 PSKC file with a BOM is read as PSKC', async () => {
    const dir = tempDir();
    const path = join(dir, 'vendor.xml');
    writeFileSync(path, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(FIG3.replace('encoding="UTF-8"', 'encoding="UTF-16"'), 'utf16le')]), { mode: 0o600 });
    const result = await runCli(['import', path, '--dry-run', '--out-dir', dir], sandboxEnv(box.sandbox));
    expect(result.stderr).not.toMatch(/serial column/);
    expect(result.code).toBe(0);
    expect(csv(latest(dir, '.results.csv')).map((r) => r['serialNumber'])).toEqual(['987654321']);
  });

  test('a 17-digit HOTP counter reaches PingOne exactly', async () => {
    const dir = tempDir();
    const path = join(dir, 'seeds.csv');
    writeFileSync(path, `serial,secret,type,counter\nBIGC0001,${randomBytes(20).toString('hex')},HOTP,12345678901234567\n`, { mode: 0o600 });
    const result = await runCli(['import', path, '--out-dir', dir], sandboxEnv(box.sandbox));
    expect(result.code).toBe(0);
    expect(box.sandbox.inventory.counterText('BIGC0001')).toBe('12345678901234567');
  });
});

test('kill -9 while an import job is IN_PROGRESS, rerun at once: every token created once, none ALREADY_PRESENT that this tool imported', async () => {
  box.sandbox.configure({ jobDelayMs: 1500 });
  const dir = tempDir();
  const serials = Array.from({ length: 12 }, (_, i) => `RUN${String(i).padStart(4, '0')}`);
  const path = join(dir, 'seeds.csv');
  writeFileSync(path, 'serial,secret,type\n' + serials.map((s) => `${s},${randomBytes(20).toString('hex')},TOTP`).join('\n') + '\n', { mode: 0o600 });
  const env = sandboxEnv(box.sandbox);
  const jobsBefore = box.sandbox.stats.byKind['oathJob'] ?? 0;
  const createdBefore = box.sandbox.inventory.created;
  const child = startCli(['import', path, '--out-dir', dir, '--job-size', '6'], env);
  const done = exited(child);
  while ((box.sandbox.stats.byKind['oathJob'] ?? 0) < jobsBefore + 2) await sleep(5);
  child.kill('SIGKILL');
  await done;
  // At once: the killed run's jobs are still running at PingOne.
  expect(serials.some((s) => box.sandbox.inventory.has(s))).toBe(false);
  const rerun = await runCli(['import', path, '--out-dir', dir, '--job-size', '6'], env);
  expect(rerun.code).toBe(0);
  const rows = csv(latest(dir, '.results.csv'));
  expect(rows.map((r) => r['outcome'])).toEqual(Array(12).fill('IMPORTED'));
  expect(box.sandbox.inventory.created - createdBefore).toBe(12);
  await sleep(1600);
  expect(box.sandbox.inventory.created - createdBefore).toBe(12);
});

describe('expand=devices in either shape', () => {
  test('a plain devices[] on each token: the preflight still sees who holds a serial', async () => {
    box.sandbox.configure({ inventory: 'open', expandDevices: 'plain' });
    const dir = tempDir();
    const env = sandboxEnv(box.sandbox);
    const first = join(dir, 'first.csv');
    writeFileSync(first, `userID,serialNumber\n${userId(901)},EXPP0001\n`);
    expect((await runCli(['run', first, '--out-dir', dir], env)).code).toBe(0);
    const second = join(dir, 'second.csv');
    writeFileSync(second, `userID,serialNumber\n${userId(902)},EXPP0001\n`);
    const dry = await runCli(['run', second, '--dry-run', '--out-dir', dir], env);
    expect(dry.code).toBe(1);
    const row = readResults(dir)[0]!;
    expect(row['errorCode']).toBe('SERIAL_ALREADY_ASSIGNED');
    expect(row['message']).toContain(userId(901));
  });

  test('an answer without any devices although the journal knows serials it assigned: the preflight says it cannot tell, instead of predicting creates', async () => {
    box.sandbox.configure({ inventory: 'open', expandDevices: 'ignored' });
    const dir = tempDir();
    const env = sandboxEnv(box.sandbox);
    const path = join(dir, 'shipment.csv');
    writeFileSync(path, `userID,serialNumber\n${userId(911)},EXPI0001\n${userId(912)},EXPI0002\n`);
    expect((await runCli(['run', path, '--out-dir', dir], env)).code).toBe(0);
    // A row added to the same shipment later; its serial is held by a user this file never named.
    await fetch(`${box.sandbox.url}/__sandbox/seed`, { method: 'POST', body: JSON.stringify([{ userId: userId(999), serialNumber: 'EXPI0003' }]) });
    writeFileSync(path, `userID,serialNumber\n${userId(911)},EXPI0001\n${userId(912)},EXPI0002\n${userId(913)},EXPI0003\n`);
    const dry = await runCli(['run', path, '--dry-run', '--out-dir', dir], env);
    expect(dry.code).toBe(1);
    const row = readResults(dir).find((r) => r['serialNumber'] === 'EXPI0003')!;
    expect([row['outcome'], row['errorCode']]).toEqual(['NOT_ATTEMPTED', 'PAIRING_UNKNOWN']);
    expect(row['message']).toMatch(/cannot tell/);
    box.sandbox.configure({ expandDevices: 'embedded' });
  });
});
