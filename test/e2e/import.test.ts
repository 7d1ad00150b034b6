/**
 * `oath-bulk import` end to end: the built CLI against the sandbox's token inventory over
 * loopback. Import, rerun (nothing created twice), a job that fails for one token (the rest
 * imported), a crash mid-import then a rerun, import then `run` assigning those serials, a
 * dry run, and a leak test: no secret, key or passphrase anywhere, at --log-level trace.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { useSandbox } from '../support/sandbox.js';
import { exited, runCli, sandboxEnv, startCli, tempDir, userId, type ResultRow } from '../support/cli.js';

const box = useSandbox();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const RFC_HEX = '3132333435363738393031323334353637383930';

function seedCsv(dir: string, serials: string[], name = 'seeds.csv'): string {
  const path = join(dir, name);
  writeFileSync(path, 'serial,secret,type\n' + serials.map((s) => `${s},${RFC_HEX},TOTP`).join('\n') + '\n', { mode: 0o600 });
  return path;
}

function newest(dir: string, kind: string, suffix = '.results.csv'): string {
  const files = readdirSync(dir).filter((f) => f.includes(`.${kind}.`) && f.endsWith(suffix)).sort();
  return join(dir, files[files.length - 1]!);
}
const csv = (path: string): ResultRow[] => parse(readFileSync(path, 'utf8'), { columns: true }) as ResultRow[];

test('import, then rerun: every token IMPORTED once; the rerun sends nothing', async () => {
  box.sandbox.configure({ inventory: 'imported', jobSizeLimit: 10, jobDelayMs: 50 });
  const dir = tempDir();
  const serials = Array.from({ length: 23 }, (_, i) => `IMP${String(i).padStart(4, '0')}`);
  const path = seedCsv(dir, serials);
  const env = sandboxEnv(box.sandbox);
  const first = await runCli(['import', path, '--out-dir', dir, '--job-size', '10'], env);
  expect(first.code).toBe(0);
  expect(csv(newest(dir, 'import')).map((r) => r['outcome'])).toEqual(Array(23).fill('IMPORTED'));
  expect(box.sandbox.inventory.created).toBe(23);
  expect(box.sandbox.stats.byKind['oathJob']).toBe(3);

  const jobsBefore = box.sandbox.stats.byKind['oathJob'];
  const again = await runCli(['import', path, '--out-dir', dir, '--job-size', '10'], env);
  expect(again.code).toBe(0);
  expect(again.stdout).toMatch(/23 finished by an earlier run/);
  expect(box.sandbox.stats.byKind['oathJob']).toBe(jobsBefore);
  expect(box.sandbox.inventory.created).toBe(23);
});

test('a job that fails for one token: the others are imported, that one FAILED with PingOne\'s reason; tokens already present are ALREADY_PRESENT', async () => {
  box.sandbox.configure({ inventory: 'imported', failJobSerials: ['BAD0007'], jobDelayMs: 0 });
  const dir = tempDir();
  const serials = Array.from({ length: 20 }, (_, i) => `BAD${String(i).padStart(4, '0')}`);
  const env = sandboxEnv(box.sandbox);
  await runCli(['import', seedCsv(dir, ['BAD0003'], 'one.csv'), '--out-dir', dir], env);
  const result = await runCli(['import', seedCsv(dir, serials), '--out-dir', dir, '--job-size', '20'], env);
  expect(result.code).toBe(1);
  const rows = csv(newest(dir, 'import'));
  expect(rows.filter((r) => r['outcome'] === 'IMPORTED')).toHaveLength(18);
  expect(rows.find((r) => r['serialNumber'] === 'BAD0003')!['outcome']).toBe('ALREADY_PRESENT');
  expect(rows.find((r) => r['serialNumber'] === 'BAD0007')).toMatchObject({ outcome: 'FAILED', errorCode: 'IMPORT_REFUSED' });
  expect(rows.find((r) => r['serialNumber'] === 'BAD0007')!['message']).toMatch(/could not be created/);
  expect(box.sandbox.inventory.has('BAD0007')).toBe(false);
  expect(box.sandbox.inventory.all()).toHaveLength(19);
});

test('kill -9 while a job runs, then rerun: the job\'s tokens are found IMPORTED, none is created twice', async () => {
  box.sandbox.configure({ inventory: 'imported', jobDelayMs: 1500 });
  const dir = tempDir();
  const serials = Array.from({ length: 12 }, (_, i) => `CR${String(i).padStart(4, '0')}`);
  const path = seedCsv(dir, serials);
  const env = sandboxEnv(box.sandbox);
  const child = startCli(['import', path, '--out-dir', dir, '--job-size', '6'], env);
  const done = exited(child);
  while ((box.sandbox.stats.byKind['oathJob'] ?? 0) < 1) await sleep(10);
  child.kill('SIGKILL');
  await done;
  box.sandbox.configure({ jobDelayMs: 0 });
  await sleep(1600); // the job the killed run sent finishes at PingOne
  const rerun = await runCli(['import', path, '--out-dir', dir, '--job-size', '6'], env);
  expect(rerun.code).toBe(0);
  expect(csv(newest(dir, 'import')).map((r) => r['outcome'])).toEqual(Array(12).fill('IMPORTED'));
  expect(box.sandbox.inventory.all().map((t) => t.serialNumber).sort()).toEqual(serials);
  expect(box.sandbox.inventory.created).toBe(12);
}, 30_000);

test('a dry run creates nothing and says what is already there; then import and run assign the imported serials', async () => {
  box.sandbox.configure({ inventory: 'imported', jobDelayMs: 0 });
  const dir = tempDir();
  const env = sandboxEnv(box.sandbox);
  await runCli(['import', seedCsv(dir, ['SH0001'], 'first.csv'), '--out-dir', dir], env);
  const seeds = seedCsv(dir, ['SH0001', 'SH0002', 'SH0003']);
  const dry = await runCli(['import', seeds, '--out-dir', dir, '--dry-run'], env);
  expect(dry.code).toBe(0);
  expect(csv(newest(dir, 'import')).map((r) => r['outcome'])).toEqual(['ALREADY_PRESENT', 'NOT_ATTEMPTED', 'NOT_ATTEMPTED']);
  expect(box.sandbox.inventory.all()).toHaveLength(1);
  expect(dry.stdout).toMatch(/next: import it for real: oath-bulk import \S+seeds\.csv --out-dir/);

  const shipment = join(dir, 'shipment.csv');
  writeFileSync(shipment, `userID,serialNumber\n${userId(1)},SH0002\n${userId(2)},SH0003\n`);
  const before = await runCli(['run', shipment, '--out-dir', dir], env);
  expect(before.code).toBe(1);
  expect(before.stdout).toMatch(/SERIAL_NOT_FOUND ×2/);

  expect((await runCli(['import', seeds, '--out-dir', dir], env)).code).toBe(0);
  const run = await runCli(['run', shipment, '--out-dir', dir], env);
  expect(run.code).toBe(0);
  expect(box.sandbox.devicesOf(userId(1)).map((d) => d.serialNumber)).toEqual(['SH0002']);
  expect(box.sandbox.inventory.get('SH0003')?.device?.userId).toBe(userId(2));
});

test('no secret, key or passphrase reaches stdout, stderr, the reports or the journal, at --log-level trace', async () => {
  box.sandbox.configure({ inventory: 'imported', jobDelayMs: 0 });
  const dir = tempDir();
  const env = sandboxEnv(box.sandbox);
  const pskFile = join(dir, 'vendor.key');
  writeFileSync(pskFile, '12345678901234567890123456789012\n', { mode: 0o600 });
  const passFile = join(dir, 'pass.txt');
  writeFileSync(passFile, 'qwerty\n', { mode: 0o600 });
  const entra = join(dir, 'entra.csv');
  writeFileSync(entra, 'upn,serial number,secret key,time interval,manufacturer,model\nann@example.com,55500001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,Contoso,Key\n', { mode: 0o600 });
  const runs = [
    ['import', resolve('test/fixtures/pskc/figure6.xml'), '--psk-file', pskFile],
    ['import', resolve('test/fixtures/pskc/figure7.xml'), '--passphrase-file', passFile, '--journal', join(dir, 'f7.journal.jsonl')],
    ['import', entra],
    ['import', resolve('test/fixtures/pskc/figure10.xml')],
    ['import', resolve('test/fixtures/pskc/figure2.xml')],
    ['import', resolve('test/fixtures/pskc/figure3.xml'), '--journal', join(dir, 'f3.journal.jsonl')],
    ['import', resolve('test/fixtures/pskc/figure9.xml')],
  ];
  let output = '';
  for (const args of runs) {
    const r = await runCli([...args, '--out-dir', dir, '--log-level', 'trace'], env);
    expect(r.code).toBeLessThanOrEqual(1);
    output += r.stdout + r.stderr;
  }
  for (const f of readdirSync(dir)) if (!['vendor.key', 'pass.txt', 'entra.csv'].includes(f)) output += readFileSync(join(dir, f), 'utf8');
  const secret = Buffer.from('12345678901234567890');
  const forbidden = [
    secret.toString('hex'),
    secret.toString('base64'),
    'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ',
    'MTIzNDU2Nzg5MDEyMzQ1Njc4OTA',
    '12345678901234567890123456789012',
    'qwerty',
    '31323334', // figure 2's secret "1234" in hex …
    'MTIzNA==', // … in base64 …
    'GEZDGNA', // … and in base32
    '651e63cd57008476af1ff6422cd02e41', // the key figure 7's passphrase derives
    '1122334455667788990011223344556677889900', // figure 6's MAC key
  ];
  for (const f of forbidden) expect({ found: output.toLowerCase().includes(f.toLowerCase()), f }).toEqual({ found: false, f });
  // The figures did import: the leak test saw real runs.
  expect(box.sandbox.inventory.has('987654321')).toBe(true);
  expect(box.sandbox.inventory.has('55500001')).toBe(true);
});

test('lost answers to jobs, polls and reads: every token IMPORTED, none taken for a duplicate of itself, none created twice', async () => {
  const env = sandboxEnv(box.sandbox);
  for (const seed of [3, 7, 11]) {
    box.sandbox.configure({ inventory: 'imported', jobDelayMs: 100, faults: { lost: 0.3, '5xx': 0.1 }, seed });
    const dir = tempDir();
    const serials = Array.from({ length: 30 }, (_, i) => `L${seed}X${String(i).padStart(3, '0')}`);
    const result = await runCli(['import', seedCsv(dir, serials), '--out-dir', dir, '--job-size', '10', '--backoff-base', '20', '--max-attempts', '10'], env);
    const rows = csv(newest(dir, 'import'));
    expect({ seed, code: result.code, outcomes: [...new Set(rows.map((r) => r['outcome']))] }).toEqual({ seed, code: 0, outcomes: ['IMPORTED'] });
    for (const s of serials) expect(box.sandbox.inventory.has(s)).toBe(true);
  }
  box.sandbox.configure({ faults: {} });
  expect(box.sandbox.inventory.created).toBe(90);
}, 60_000);

test('a passphrase-protected file on a terminal: asked for without echo, never shown, and the import goes through', async () => {
  box.sandbox.configure({ inventory: 'imported', jobDelayMs: 0 });
  const dir = tempDir();
  const env = sandboxEnv(box.sandbox);
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, '--', resolve('dist/bin.js'), 'import', resolve('test/fixtures/pskc/figure7.xml'), '--out-dir', dir].map(quote).join(' ');
  // `script` gives the CLI a real terminal, as at a console.
  const child = spawn('script', ['-qec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += String(d)));
  const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  while (!out.includes('Passphrase for')) await sleep(20);
  child.stdin.write('qwerty\r');
  expect(await done).toBe(0);
  expect(out).not.toContain('qwerty');
  expect(box.sandbox.inventory.has('987654321')).toBe(true);
}, 30_000);
