/**
 * A process that survives its machine: a full disk, a hung token endpoint, an SSH session
 * that drops, cron jobs that start together, a latency spike, a file edited mid-run, odd
 * file names. The built CLI against the sandbox over loopback, as cron runs it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { useSandbox } from '../support/sandbox.js';
import { exited, runCli, sandboxEnv, shipment, startCli, tempDir, userId, type ResultRow } from '../support/cli.js';

const box = useSandbox();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const csv = (path: string): ResultRow[] => parse(readFileSync(path, 'utf8'), { columns: true }) as ResultRow[];
const files = (dir: string, suffix: string) => readdirSync(dir).filter((f) => f.endsWith(suffix));

test('a full disk under --out-dir stops the run promptly: exit 3, the file and the reason on stderr, the lock released, the journal readable', async () => {
  const dir = tempDir();
  const out = join(dir, 'small');
  mkdirSync(out);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=160k,mode=0700', 'tmpfs', out]);
  try {
    const { path } = shipment(dir, 1500);
    const env = sandboxEnv(box.sandbox);
    const started = Date.now();
    const result = await new Promise<{ code: number | null; stderr: string }>((resolvePromise) => {
      const child = startCli(['run', path, '--out-dir', out, '--rate', '1000', '--concurrency', '8'], env);
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += String(d)));
      const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.once('exit', (code) => {
        clearTimeout(killer);
        resolvePromise({ code, stderr });
      });
    });
    expect(result.code).toBe(3);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(result.stderr).toMatch(/no space left on device/);
    expect(result.stderr).toContain(out);
    expect(result.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
    expect(files(out, '.lock')).toEqual([]);
    // Free the space the reports took: the journal reads back, and a rerun finishes the job.
    for (const f of readdirSync(out)) if (!f.endsWith('.journal.jsonl')) rmSync(join(out, f));
    const rerun = await runCli(['run', path, '--out-dir', out, '--rate', '1000', '--quiet', '--log-level', 'silent'], env);
    expect(rerun.stderr).not.toMatch(/journal .*(damaged|not a journal record)/);
    expect(box.sandbox.allDevices().length).toBeLessThanOrEqual(1500);
    const serials = box.sandbox.allDevices().map((d) => d.serialNumber);
    expect(new Set(serials).size).toBe(serials.length);
  } finally {
    execFileSync('umount', ['-l', out]);
  }
}, 120_000);

test('SIGTERM while the token endpoint never answers: exit 3 within 5 s, and no token request after the signal', async () => {
  box.sandbox.configure({ hangToken: true });
  const dir = tempDir();
  const { path } = shipment(dir, 10);
  const child = startCli(['run', path, '--out-dir', dir], sandboxEnv(box.sandbox));
  const done = exited(child);
  await sleep(1000);
  const before = box.sandbox.stats.byKind['token'] ?? 0;
  expect(before).toBeGreaterThanOrEqual(1);
  const signalled = Date.now();
  child.kill('SIGTERM');
  const { code } = await done;
  expect(code).toBe(3);
  expect(Date.now() - signalled).toBeLessThan(5_500);
  expect(box.sandbox.stats.byKind['token'] ?? 0).toBe(before);
  expect(csv(join(dir, files(dir, '.results.csv')[0]!)).every((r) => r['outcome'] === 'NOT_ATTEMPTED')).toBe(true);
}, 30_000);

test('SIGHUP (an SSH session dropping) is a stop like SIGTERM: exit 3, complete results, a summary, no lock left', async () => {
  box.sandbox.configure({ latencyMs: 50 });
  const dir = tempDir();
  const { path } = shipment(dir, 200);
  const child = startCli(['run', path, '--out-dir', dir, '--rate', '30'], sandboxEnv(box.sandbox));
  const done = exited(child);
  while (box.sandbox.stats.createsReceived < 10) await sleep(20);
  child.kill('SIGHUP');
  const { code, signal } = await done;
  expect(signal).toBeNull();
  expect(code).toBe(3);
  expect(csv(join(dir, files(dir, '.results.csv')[0]!))).toHaveLength(200);
  expect(files(dir, '.summary.json')).toHaveLength(1);
  expect(files(dir, '.lock')).toEqual([]);
}, 30_000);

test('four processes starting at the same instant, with or without a stale lock: exactly one holds the lock, in every one of ten trials', async () => {
  const dir = tempDir();
  const lockModule = resolve('dist/engine/lock.js');
  const script = `
    const { acquireLock } = await import(${JSON.stringify(lockModule)});
    const at = Number(process.argv[1]);
    while (Date.now() < at) {}
    try { const lock = await acquireLock(process.argv[2]); process.stdout.write('held'); await new Promise((r) => setTimeout(r, 400)); await lock.release(); }
    catch (e) { process.stdout.write('refused'); }`;
  const holders: number[] = [];
  // Five trials at a time, each on a lock of its own: twenty processes released at one instant
  // (the spin-wait holds the early ones), so that each trial is a race under load as well.
  for (let batch = 0; batch < 2; batch++) {
    const at = Date.now() + 2000;
    const trials = Array.from({ length: 5 }, async (_, i) => {
      const trial = batch * 5 + i;
      const path = join(dir, `race-${trial}.lock`);
      // Half the trials start from a stale lock (a dead pid): taking it over must be exclusive too.
      if (trial % 2 === 1) writeFileSync(path, JSON.stringify({ pid: 2 ** 22 + 4242, host: hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
      const runs = Array.from({ length: 4 }, () =>
        new Promise<string>((resolvePromise) => {
          const child = spawn(process.execPath, ['--input-type=module', '-e', script, String(at), path], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          child.stdout.on('data', (d) => (out += String(d)));
          child.once('exit', () => resolvePromise(out));
        }),
      );
      const outs = await Promise.all(runs);
      return outs.filter((o) => o === 'held').length;
    });
    holders.push(...(await Promise.all(trials)));
  }
  expect(holders).toEqual(Array(10).fill(1));
}, 60_000);

test('--rate holds at the server through a latency spike: no one-second window above the cap', async () => {
  // The sandbox runs in a process of its own here: its arrival stamps must not wait for this
  // process's work.
  const box2 = spawn(process.execPath, [resolve('test/support/sandbox-child.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let pending = '';
  box2.stdout.on('data', (d) => {
    pending += String(d);
    const parts = pending.split('\n');
    pending = parts.pop()!;
    lines.push(...parts);
  });
  const next = async (): Promise<Record<string, unknown>> => {
    while (lines.length === 0) await sleep(10);
    return JSON.parse(lines.shift()!) as Record<string, unknown>;
  };
  const send = (command: object) => box2.stdin.write(JSON.stringify(command) + '\n');
  try {
    const info = (await next()) as { url: string; environmentId: string; clientId: string; clientSecret: string };
    const env = { PATH: process.env['PATH'] ?? '', PINGONE_ENVIRONMENT_ID: info.environmentId, PINGONE_CLIENT_ID: info.clientId, PINGONE_CLIENT_SECRET: info.clientSecret, PINGONE_API_URL: `${info.url}/v1`, PINGONE_AUTH_URL: info.url };
    const dir = tempDir();
    const { path } = shipment(dir, 240);
    const child = startCli(['run', path, '--out-dir', dir, '--rate', '40', '--concurrency', '8'], env);
    const done = exited(child);
    await sleep(1500);
    send({ configure: { latencyMs: 2500 } });
    await sleep(2500);
    send({ configure: { latencyMs: 0 } });
    expect((await done).code).toBe(0);
    send({ report: true });
    const report = (await next()) as { maxInWindow: number; requests: number };
    expect(report.requests).toBeGreaterThanOrEqual(241);
    expect(report.maxInWindow).toBeLessThanOrEqual(40);
  } finally {
    box2.stdin.end();
    await exited(box2);
  }
}, 60_000);

test('rows appended to the input after it was checked are never sent: exit 2 before any create', async () => {
  box.sandbox.configure({ latencyMs: 600 });
  const dir = tempDir();
  const { path } = shipment(dir, 10_000);
  const child = startCli(['run', path, '--out-dir', dir, '--strict', '--rate', '200'], sandboxEnv(box.sandbox));
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const done = exited(child);
  const lock = join(dir, 'shipment.journal.jsonl.lock');
  while (!existsSync(lock)) await sleep(5);
  appendFileSync(path, 'not-a-uuid,BAD1\n00000000-0000-4000-8000-000000000001,EXTRA1\n');
  expect((await done).code).toBe(2);
  expect(stderr).toMatch(/changed since it was checked/);
  expect(box.sandbox.stats.createsReceived).toBe(0);
}, 60_000);

test('shipments whose names differ only in characters a file name may not keep get their own journal and reports', async () => {
  const dir = tempDir();
  const out = join(dir, 'out');
  const env = sandboxEnv(box.sandbox);
  // …and a name too long for a file system once reports add to it (80 CJK characters: 240 bytes).
  const names = ['東京.csv', '大阪.csv', 'shipment (1).csv', 'shipment__1_.csv', `${'長'.repeat(80)}.csv`];
  for (const [i, name] of names.entries()) {
    shipment(dir, 2, name, `N${i}X`);
    expect((await runCli(['run', join(dir, name), '--out-dir', out], env)).code).toBe(0);
  }
  expect(files(out, '.journal.jsonl')).toHaveLength(5);
  expect(files(out, '.results.csv')).toHaveLength(5);
  expect(files(out, '.journal.jsonl').some((f) => f.startsWith('東京'))).toBe(true);
  expect(box.sandbox.allDevices()).toHaveLength(10);
});

test('an env file: a malformed line names file, line and key but never echoes the value; loose permissions draw a chmod warning; a bad region names the file', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 1);
  const bare = { PATH: process.env['PATH'] ?? '' };
  const envFile = join(dir, 'p.env');
  writeFileSync(envFile, box.sandbox.envLines().join('\n').replace(/PINGONE_CLIENT_SECRET=/, 'PINGONE_CLIENT_SECRET: ') + '\n', { mode: 0o600 });
  const bad = await runCli(['run', path, '--env-file', envFile, '--out-dir', dir], bare);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain(envFile);
  expect(bad.stderr).toMatch(/line 3/);
  expect(bad.stderr).toMatch(/PINGONE_CLIENT_SECRET/);
  expect(bad.stderr).not.toContain(box.sandbox.clientSecret);
  expect(bad.stderr).not.toContain(box.sandbox.clientSecret.slice(0, 8));

  writeFileSync(envFile, box.sandbox.envLines().join('\n') + '\n', { mode: 0o644 });
  execFileSync('chmod', ['644', envFile]);
  const loose = await runCli(['run', path, '--env-file', envFile, '--out-dir', dir], bare);
  expect(loose.code).toBe(0);
  expect(loose.stderr).toContain(`chmod 600 ${envFile}`);

  writeFileSync(envFile, [...box.sandbox.envLines().filter((l) => !l.startsWith('PINGONE_API_URL') && !l.startsWith('PINGONE_AUTH_URL')), 'PINGONE_REGION=EUR'].join('\n') + '\n', { mode: 0o600 });
  execFileSync('chmod', ['600', envFile]);
  const region = await runCli(['run', path, '--env-file', envFile, '--out-dir', dir], bare);
  expect(region.code).toBe(2);
  expect(region.stderr).toMatch(/PINGONE_REGION/);
  expect(region.stderr).toContain(envFile);
});

test('Ctrl-C at rollback\'s question ends it with nothing deleted, said plainly, exit 2', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 3);
  const env = sandboxEnv(box.sandbox);
  expect((await runCli(['run', path, '--out-dir', dir], env)).code).toBe(0);
  const results = join(dir, files(dir, '.results.csv')[0]!);
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, '--', resolve('dist/bin.js'), 'rollback', results, '--out-dir', dir].map(quote).join(' ');
  // `script` gives the CLI a real terminal, as at a console; \x03 is the Ctrl-C key.
  const child = spawn('script', ['-qec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += String(d)));
  const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  while (!out.includes('Type "yes"')) await sleep(20);
  child.stdin.write('\x03');
  const code = await done;
  expect(code).toBe(2);
  expect(out).toMatch(/nothing was deleted/);
  expect(out).not.toMatch(/internal error|Aborted with Ctrl\+C/);
  expect(box.sandbox.allDevices()).toHaveLength(3);
}, 30_000);

test('the --dry-run example in `run --help` keeps --dry-run on its first line at any width', async () => {
  for (const columns of [60, 80, 100, 120]) {
    const help = execFileSync(process.execPath, ['--', resolve('dist/bin.js'), 'run', '--help'], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', COLUMNS: String(columns) } });
    // The example's first line, the one a reader copies.
    const example = help.split('\n').find((l) => l.includes('check the file'))!;
    expect(example.trim()).toMatch(/^oath-bulk run --dry-run /);
  }
});

test('SIGTERM while a large file is still being checked: exit 2 (nothing attempted) within 5 s, nothing sent, no lock left', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 400_000);
  const child = startCli(['run', path, '--out-dir', dir], sandboxEnv(box.sandbox));
  const done = exited(child);
  await sleep(1200);
  const signalled = Date.now();
  child.kill('SIGTERM');
  expect((await done).code).toBe(2);
  expect(Date.now() - signalled).toBeLessThan(5_000);
  expect(box.sandbox.stats.requests).toBe(0);
  expect(files(dir, '.lock')).toEqual([]);
}, 60_000);

test('an edit in place while the run goes on (same size): the run stops before sending what changed, and every row is still reported', async () => {
  const dir = tempDir();
  const path = join(dir, 'wide.csv');
  const pad = 'x'.repeat(400);
  const line = (i: number, serial: string) => `${userId(i)},${serial},${pad}`;
  const rows = Array.from({ length: 2000 }, (_, i) => line(i + 1, `W${String(i + 1).padStart(6, '0')}`));
  writeFileSync(path, ['userID,serialNumber,note', ...rows].join('\n') + '\n');
  const child = startCli(['run', path, '--out-dir', dir, '--rate', '200', '--concurrency', '4'], sandboxEnv(box.sandbox));
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const done = exited(child);
  while (box.sandbox.stats.createsReceived < 100) await sleep(20);
  // Row 1900 gets row 7's serial: the first pass would have made both SERIAL_CONFLICT.
  const text = readFileSync(path, 'utf8').replace(line(1900, 'W001900'), line(1900, 'W000007'));
  writeFileSync(path, text);
  expect((await done).code).toBe(3);
  expect(stderr).toMatch(/INPUT_CHANGED/);
  const results = csv(join(dir, files(dir, '.results.csv')[0]!));
  expect(results).toHaveLength(2000);
  expect(box.sandbox.allDevices().filter((d) => d.userId === userId(1900))).toEqual([]);
  // Rows before the changed part were checked and sent as checked; from it on, nothing is sent.
  expect(results.slice(1899).every((r) => r['outcome'] === 'NOT_ATTEMPTED' || r['outcome'] === 'INVALID')).toBe(true);
  for (let i = 1900; i <= 2000; i++) expect(box.sandbox.devicesOf(userId(i))).toEqual([]);
}, 60_000);

test('a disk full before anything is sent exits 2 and leaves nothing behind; full when only the summary is left, the run says STOPPED, not finished', async () => {
  const dir = tempDir();
  const out = join(dir, 'small');
  mkdirSync(out);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=200k,mode=0700', 'tmpfs', out]);
  try {
    const env = sandboxEnv(box.sandbox);
    const { path } = shipment(dir, 20);
    // Full to the last byte: the lock (or the journal) cannot be written.
    execFileSync('sh', ['-c', `dd if=/dev/zero of=${out}/fill bs=1k count=400 2>/dev/null || true`]);
    const full = await runCli(['run', path, '--out-dir', out], env);
    expect(full.code).toBe(2);
    expect(full.stderr).toMatch(/ENOSPC|no space left on device|disk is full/);
    expect(readdirSync(out).filter((f) => f !== 'fill')).toEqual([]);
    expect(box.sandbox.stats.requests).toBe(0);

    rmSync(join(out, 'fill'));
  } finally {
    execFileSync('umount', ['-l', out]);
  }

  // The summary alone cannot be written (its name is taken by a directory, for every run id of
  // the next 20 s): the run says STOPPED, exits 3, and leaves no half-written summary.
  const other = tempDir();
  const { path } = shipment(other, 5);
  for (let s = 0; s < 20; s++) {
    const runId = new Date(Date.now() + s * 1000).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
    mkdirSync(join(other, `shipment.${runId}.summary.json`));
  }
  const late = await runCli(['run', path, '--out-dir', other], sandboxEnv(box.sandbox));
  expect(late.code).toBe(3);
  expect(late.stdout).toMatch(/STOPPED \(WRITE_FAILED\)/);
  expect(late.stdout).not.toMatch(/: finished in /);
  expect(late.stderr).toMatch(/summary\.json/);
  expect(readdirSync(other).filter((f) => f.endsWith('.tmp'))).toEqual([]);
}, 60_000);

