/**
 * The operator's toolkit, end to end: verify, rollback, users named by email or username,
 * the sandbox command, and progress only for people.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { useSandbox } from '../support/sandbox.js';
import { BIN, exited, latest, readResults, runCli, sandboxEnv, shipment, startCli, tempDir, userId } from '../support/cli.js';

const box = useSandbox();

test('verify: every assignment in place is exit 0; devices removed or moved behind its back are counted, exit 1', async () => {
  const dir = tempDir();
  const { path, rows } = shipment(dir, 30);
  expect((await runCli(['run', path, '--out-dir', dir, '--rate', '100'], sandboxEnv(box.sandbox))).code).toBe(0);
  const results = latest(dir, '.results.csv');

  const clean = await runCli(['verify', results, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(clean.code).toBe(0);
  expect(clean.stdout).toMatch(/rows 30: PRESENT 30\n.*\n {2}every assignment is in place/);

  // Behind its back: two devices deleted, one token moved to another user of the file.
  for (const r of rows.slice(0, 2)) box.sandbox.removeDevice(r.userID, box.sandbox.devicesOf(r.userID)[0]!.id);
  const moved = rows[2]!;
  box.sandbox.removeDevice(moved.userID, box.sandbox.devicesOf(moved.userID)[0]!.id);
  box.sandbox.seedDevice(rows[3]!.userID, moved.serialNumber);

  const after = await runCli(['verify', results, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(after.code).toBe(1);
  expect(after.stdout).toMatch(/rows 30: PRESENT 27 · MISSING 2 · ON_OTHER_USER 1\n/);
  const report = readResults(dir).filter((r) => r['outcome'] !== 'PRESENT');
  expect(report.map((r) => [r['row'], r['outcome'], r['foundOnUser'], r['runOutcome']])).toEqual([
    ['1', 'MISSING', '', 'CREATED'],
    ['2', 'MISSING', '', 'CREATED'],
    ['3', 'ON_OTHER_USER', rows[3]!.userID, 'CREATED'],
  ]);
  // One device listing per user, not per row.
  expect(box.sandbox.stats.byKind['list']).toBe(60);
});

test('verify of an input names users that do not exist', async () => {
  const dir = tempDir();
  const path = join(dir, 'in.csv');
  writeFileSync(path, `userID,serialNumber\n00000000-0000-4000-8000-000000000001,S1\n${userId(1)},S2\n`);
  const result = await runCli(['verify', path, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(result.code).toBe(1);
  expect(readResults(dir).map((r) => r['outcome'])).toEqual(['USER_NOT_FOUND', 'MISSING']);
});

test('rollback: --dry-run deletes nothing; then every CREATED device goes, EXISTING ones stay; a rerun puts them back', async () => {
  const dir = tempDir();
  const { path, rows } = shipment(dir, 20);
  const held = box.sandbox.seedDevice(rows[0]!.userID, rows[0]!.serialNumber);
  expect((await runCli(['run', path, '--out-dir', dir, '--rate', '100'], sandboxEnv(box.sandbox))).code).toBe(0);
  const results = latest(dir, '.results.csv');
  expect(readResults(dir).filter((r) => r['outcome'] === 'EXISTING')).toHaveLength(1);

  const dry = await runCli(['rollback', results, '--out-dir', dir, '--dry-run'], sandboxEnv(box.sandbox));
  expect(dry.code).toBe(0);
  expect(dry.stdout).toMatch(/WOULD_DELETE 19 · SKIPPED 1/);
  expect(box.sandbox.stats.byKind['delete'] ?? 0).toBe(0);
  expect(box.sandbox.allDevices()).toHaveLength(20);

  const unconfirmed = await runCli(['rollback', results, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(unconfirmed.code).toBe(2);
  expect(unconfirmed.stderr).toMatch(/pass --yes to confirm when not at a terminal/);
  expect(box.sandbox.stats.byKind['delete'] ?? 0).toBe(0);

  const real = await runCli(['rollback', results, '--out-dir', dir, '--yes'], sandboxEnv(box.sandbox));
  expect(real.code).toBe(0);
  expect(real.stdout).toMatch(/DELETED 19 · SKIPPED 1/);
  expect(box.sandbox.allDevices().map((d) => d.id)).toEqual([held.id]);

  // Rolled-back pairs are open again in the journal: the same input assigns them again.
  const rerun = await runCli(['run', path, '--out-dir', dir, '--rate', '100'], sandboxEnv(box.sandbox));
  expect(rerun.code).toBe(0);
  expect(box.sandbox.allDevices()).toHaveLength(20);

  // A second rollback of the first run finds those devices replaced, and leaves them alone.
  const again = await runCli(['rollback', results, '--out-dir', dir, '--yes'], sandboxEnv(box.sandbox));
  expect(again.stdout).toMatch(/ALREADY_GONE 19 · SKIPPED 1/);
  expect(box.sandbox.allDevices()).toHaveLength(20);
});

test('rows that name users by email or username: resolved once each, case-insensitive, quotes escaped; unknown and ambiguous users fail', async () => {
  box.sandbox.configure({
    users: [
      { id: userId(1), username: 'ann', email: 'ann@example.com' },
      { id: userId(2), username: 'o"brien\\x', email: 'ob@example.com' },
      { id: userId(3), username: 'twin1', email: 'twins@example.com' },
      { id: userId(4), username: 'twin2', email: 'twins@example.com' },
    ],
  });
  const dir = tempDir();
  const path = join(dir, 'by-name.csv');
  writeFileSync(
    path,
    [
      'email,username,serialNumber',
      'Ann@Example.COM,,E1',
      'ann@example.com,,E2',
      ',"o""brien\\x",E3',
      'nobody@example.com,,E4',
      'twins@example.com,,E5',
    ].join('\n') + '\n',
  );
  const result = await runCli(['run', path, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(result.code).toBe(1);
  expect(readResults(dir).map((r) => [r['userID'], r['outcome'], r['errorCode'], r['email']])).toEqual([
    [userId(1), 'CREATED', '', 'Ann@Example.COM'],
    [userId(1), 'CREATED', '', 'ann@example.com'],
    [userId(2), 'CREATED', '', ''],
    ['', 'FAILED', 'USER_NOT_FOUND', 'nobody@example.com'],
    ['', 'FAILED', 'USER_AMBIGUOUS', 'twins@example.com'],
  ]);
  expect(box.sandbox.devicesOf(userId(1)).map((d) => d.serialNumber).sort()).toEqual(['E1', 'E2']);
  expect(box.sandbox.stats.byKind['lookup']).toBe(4);
});

test('the box.sandbox command prints a usable env file and serves a run of the sample in input/', async () => {
  const dir = tempDir();
  const child = startCli(['sandbox', '--port', '0'], { PATH: process.env['PATH'] ?? '' });
  let out = '';
  await new Promise<void>((resolvePromise, reject) => {
    child.stdout!.on('data', (d) => {
      out += String(d);
      if (out.includes('PINGONE_AUTH_URL=')) resolvePromise();
    });
    child.once('exit', () => reject(new Error(`box.sandbox exited: ${out}`)));
  });
  const envFile = join(dir, 'sandbox.env');
  writeFileSync(envFile, out);
  const run = await runCli(['run', resolve('input', 'shipment-sample.csv'), '--env-file', envFile, '--out-dir', dir], { PATH: process.env['PATH'] ?? '' });
  expect(run.code).toBe(0);
  expect(readResults(dir).every((r) => r['outcome'] === 'CREATED')).toBe(true);
  child.kill('SIGTERM');
  expect((await exited(child)).code).toBe(0);
});

test('progress: nothing on stderr off a TTY; a live line on a TTY, and the summary on stdout', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 40);
  const quiet = await runCli(['run', path, '--out-dir', dir, '--rate', '100'], sandboxEnv(box.sandbox));
  expect(quiet.code).toBe(0);
  expect(quiet.stderr).toBe('');

  const { path: second } = shipment(dir, 40, 'second.csv', 'TT');
  const env = sandboxEnv(box.sandbox);
  const command = [process.execPath, '--', BIN, 'run', second, '--out-dir', dir, '--rate', '20'].map((a) => `'${a}'`).join(' ');
  // `script` gives the CLI a real pseudo-terminal, as a person at a console has.
  // (Asynchronously: the box.sandbox answering it lives in this process.)
  const child = spawn('script', ['-qec', command, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  const status = await new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const tty = { status, stdout };
  expect(tty.status).toBe(0);
  expect(tty.stdout).toMatch(/█+░*\s\d+\/40 · created \d+ existing 0 failed 0 invalid 0 · [\d.]+ req\/s · retries 0 · ETA/);
  expect(tty.stdout).toMatch(/rows 40: CREATED 40/);
  // A 60-column terminal: every redraw fits, and keeps the count and the ETA.
  const { path: third } = shipment(dir, 40, 'third.csv', 'TN');
  const narrowCommand = `stty cols 60; ${[process.execPath, '--', BIN, 'run', third, '--out-dir', dir, '--rate', '20'].map((a) => `'${a}'`).join(' ')}`;
  const narrow = spawn('script', ['-qec', narrowCommand, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let narrowOut = '';
  narrow.stdout.on('data', (d) => (narrowOut += String(d)));
  expect(await new Promise<number | null>((r) => narrow.once('exit', (code) => r(code)))).toBe(0);
  const redraws = narrowOut.split('\r\x1b[2K').slice(1).map((l) => l.split(/\r?\n/)[0]!);
  expect(redraws.length).toBeGreaterThan(3);
  for (const line of redraws) {
    expect([...line].length).toBeLessThanOrEqual(59);
    expect(line).toMatch(/\d+\/40 · .*ETA \S+$/);
  }
  writeFileSync(join(dir, 'tty-transcript.txt'), tty.stdout);
  expect(readFileSync(join(dir, 'tty-transcript.txt'), 'utf8')).toContain('40/40');
});
