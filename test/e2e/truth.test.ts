/**
 * The reports are the truth, in every workflow an operator meets: the built CLI against the
 * sandbox over loopback, asserting what the reports say and what PingOne (the sandbox) holds.
 * One test per way the reports were once found to lie.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { useSandbox } from '../support/sandbox.js';
import { BIN, exited, runCli, sandboxEnv, shipment, startCli, tempDir, userId, type ResultRow } from '../support/cli.js';

const box = useSandbox();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const csv = (path: string): ResultRow[] => parse(readFileSync(path, 'utf8'), { columns: true }) as ResultRow[];
const json = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
const serialsOf = (user: string): string[] => box.sandbox.devicesOf(user).map((d) => d.serialNumber).sort();
/** The newest report of one command (run, verify or rollback) in `dir`. */
function newest(dir: string, command: 'run' | 'verify' | 'rollback', suffix = '.results.csv'): string {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(suffix) && (command === 'run' ? !/\.(verify|rollback)\./.test(f) : f.includes(`.${command}.`)))
    .sort();
  if (files.length === 0) throw new Error(`no ${command} *${suffix} in ${dir}`);
  return join(dir, files[files.length - 1]!);
}

test('1. a refused row leaves no claim behind: a device an admin assigns by hand later is EXISTING and rollback leaves it', async () => {
  box.sandbox.configure({ maxDevicesPerUser: 1 });
  const dir = tempDir();
  const user = userId(1);
  const old = box.sandbox.seedDevice(user, 'OLDTOKEN1');
  const path = join(dir, 'one.csv');
  writeFileSync(path, `userID,serialNumber\n${user},NEWTOKEN1\n${userId(2)},NEWTOKEN2\n`);
  const env = sandboxEnv(box.sandbox);

  const first = await runCli(['run', path, '--out-dir', dir], env);
  expect(first.code).toBe(1);
  expect(csv(newest(dir, 'run')).map((r) => [r['outcome'], r['errorCode']])).toEqual([['FAILED', 'MAX_DEVICES_REACHED'], ['CREATED', '']]);

  // The admin frees the slot and assigns the serial by hand.
  box.sandbox.removeDevice(user, old.id);
  await sleep(20);
  const byHand = box.sandbox.seedDevice(user, 'NEWTOKEN1', new Date().toISOString());

  const rerun = await runCli(['run', path, '--out-dir', dir], env);
  expect(rerun.code).toBe(0);
  const rows = csv(newest(dir, 'run'));
  expect(rows[0]).toMatchObject({ outcome: 'EXISTING', deviceId: byHand.id });
  expect(rows[1]).toMatchObject({ outcome: 'CREATED' });

  const rollback = await runCli(['rollback', newest(dir, 'run'), '--out-dir', dir, '--yes'], env);
  expect(rollback.code).toBe(0);
  // The admin's device stays; the job's own is gone.
  expect(box.sandbox.devicesOf(user).map((d) => d.id)).toEqual([byHand.id]);
  expect(box.sandbox.devicesOf(userId(2))).toEqual([]);
});

test('2. rollback records into the run\'s journal wherever the results file is; without it, it refuses and says how to point at it', async () => {
  const dir = tempDir();
  const { path, rows } = shipment(dir, 6, 'shipment.csv');
  const env = sandboxEnv(box.sandbox);
  expect((await runCli(['run', path, '--out-dir', dir], env)).code).toBe(0);
  // The README's corrected-copy workflow: another name, the original's journal.
  const fixed = join(dir, 'shipment-fixed.csv');
  writeFileSync(fixed, readFileSync(path, 'utf8') + `${userId(7)},SN00000007\n`);
  const journal = join(dir, 'shipment.journal.jsonl');
  expect((await runCli(['run', fixed, '--out-dir', dir, '--journal', journal], env)).code).toBe(0);
  expect(box.sandbox.allDevices()).toHaveLength(7);

  // The corrected copy's results, archived without anything beside them.
  const archive = join(dir, 'archive');
  mkdirSync(archive);
  const produced = readdirSync(dir).find((f) => f.startsWith('shipment-fixed.') && f.endsWith('.results.csv'))!;
  const moved = join(archive, produced);
  renameSync(join(dir, produced), moved);
  const refused = await runCli(['rollback', moved, '--out-dir', dir, '--yes'], env);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toMatch(/--journal/);
  expect(refused.stderr.trim().split('\n')).toHaveLength(1);
  expect(box.sandbox.allDevices()).toHaveLength(7);

  const undone = await runCli(['rollback', moved, '--out-dir', dir, '--yes', '--journal', journal], env);
  expect(undone.code).toBe(0);
  // Its results call all seven CREATED (six by the first run of this shipment's journal): all go.
  expect(undone.stdout).toMatch(/DELETED 7/);
  expect(box.sandbox.allDevices()).toEqual([]);

  // The deletions are in the shipment's journal: the next run creates every token again,
  // sending a request for each, and verify finds them all.
  const again = await runCli(['run', fixed, '--out-dir', dir, '--journal', journal], env);
  expect(again.code).toBe(0);
  const latestFixed = join(dir, readdirSync(dir).filter((f) => f.startsWith('shipment-fixed.') && f.endsWith('.results.csv') && !f.includes('.rollback.')).sort().pop()!);
  expect(csv(latestFixed).map((r) => [r['outcome'], r['attempts']])).toEqual(Array(7).fill(['CREATED', '1']));
  const verify = await runCli(['verify', latestFixed, '--out-dir', dir], env);
  expect(verify.code).toBe(0);
  for (const r of [...rows, { userID: userId(7), serialNumber: 'SN00000007' }]) expect(serialsOf(r.userID)).toEqual([r.serialNumber]);
});

test('3. a 201 is proof: with PingOne\'s clock minutes behind ours the device is CREATED and rollback removes it', async () => {
  box.sandbox.configure({ clockSkewMs: -3 * 60_000 });
  const dir = tempDir();
  const { path } = shipment(dir, 5);
  const env = sandboxEnv(box.sandbox);
  expect((await runCli(['run', path, '--out-dir', dir], env)).code).toBe(0);
  expect(csv(newest(dir, 'run')).map((r) => r['outcome'])).toEqual(Array(5).fill('CREATED'));
  const rollback = await runCli(['rollback', newest(dir, 'run'), '--out-dir', dir, '--yes'], env);
  expect(rollback.code).toBe(0);
  expect(box.sandbox.allDevices()).toEqual([]);
});

/**
 * A power cut keeps what was fsynced and loses the rest. strace shows, in order, each
 * write and fdatasync of the journal and each create request leaving on a socket; the
 * journal is then cut to what the last completed fdatasync covered, as a power cut would.
 */
test('4. a start is durable before its create leaves: after a power cut the rerun still knows its own devices', async () => {
  box.sandbox.configure({ latencyMs: 40 });
  const dir = tempDir();
  const n = 150;
  const { path, rows } = shipment(dir, n);
  const journal = join(dir, 'shipment.journal.jsonl');
  const trace = join(dir, 'strace.txt');
  const env = sandboxEnv(box.sandbox);
  const tracer = spawn('strace', ['-f', '-y', '-s', '200', '-e', 'trace=write,writev,pwrite64,fdatasync,fsync', '-o', trace, process.execPath, '--', BIN, 'run', path, '--out-dir', dir, '--rate', '200', '--concurrency', '8'], { env, stdio: 'ignore' });
  const done = exited(tracer);
  while (box.sandbox.stats.createsReceived < 40) await sleep(10);
  const pid = execFileSync('pgrep', ['-P', String(tracer.pid)], { encoding: 'utf8' }).trim().split('\n')[0]!;
  process.kill(Number(pid), 'SIGKILL');
  await done;

  // Replay the trace: journal bytes written, what the latest completed fdatasync covers, and
  // how much of the journal was durable when each create request was written to its socket.
  const pending = new Map<string, { call: string; journal: boolean; snapshot: number }>();
  let written = 0;
  let durable = 0;
  const creates: Array<{ user: string; durable: number }> = [];
  for (const line of readFileSync(trace, 'utf8').split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pidText, rest] = m as unknown as [string, string, string];
    const resumed = /^<\.\.\. (\w+) resumed>.*= (-?\d+)/.exec(rest);
    const call = /^(\w+)\((\d+)<([^>]*)>/.exec(rest);
    let name: string;
    let isJournal: boolean;
    let result: number | undefined;
    let snapshot = written;
    if (resumed) {
      const open = pending.get(pidText);
      pending.delete(pidText);
      if (!open) continue;
      name = open.call;
      isJournal = open.journal;
      snapshot = open.snapshot;
      result = Number(resumed[2]);
    } else if (call) {
      name = call[1]!;
      isJournal = call[3]!.endsWith('shipment.journal.jsonl');
      const post = /POST \/v1\/environments\/[0-9a-f-]+\/users\/([0-9a-f-]{36})\/devices /.exec(rest);
      if (post) creates.push({ user: post[1]!, durable });
      if (rest.includes('<unfinished ...>')) {
        pending.set(pidText, { call: name, journal: isJournal, snapshot: written });
        continue;
      }
      const r = /= (-?\d+)/.exec(rest.slice(rest.lastIndexOf(')')));
      result = r ? Number(r[1]) : undefined;
    } else continue;
    if (!isJournal || result === undefined || result < 0) continue;
    if (name === 'write' || name === 'writev' || name === 'pwrite64') written += result;
    if (name === 'fdatasync' || name === 'fsync') durable = Math.max(durable, snapshot);
  }
  expect(creates.length).toBeGreaterThanOrEqual(40);

  const whole = readFileSync(journal, 'utf8');
  for (const c of creates) {
    const serial = rows.find((r) => r.userID === c.user)!.serialNumber;
    // The start of this create was on disk before the create left.
    expect(whole.slice(0, c.durable)).toContain(`"k":"${c.user}|${serial}"`);
  }

  truncateSync(journal, durable); // the power cut
  const created = box.sandbox.allDevices().length;
  expect(created).toBeGreaterThan(0);
  const rerun = await runCli(['run', path, '--out-dir', dir, '--rate', '200'], env);
  expect(rerun.code).toBe(0);
  const results = csv(newest(dir, 'run'));
  expect(results.filter((r) => r['outcome'] === 'EXISTING')).toEqual([]);
  expect(results.every((r) => r['outcome'] === 'CREATED')).toBe(true);
  expect(box.sandbox.allDevices()).toHaveLength(n);
  for (const r of rows) expect(serialsOf(r.userID)).toEqual([r.serialNumber]);

  // Every device is the job's, so rollback removes every one.
  expect((await runCli(['rollback', newest(dir, 'run'), '--out-dir', dir, '--yes'], env)).code).toBe(0);
  expect(box.sandbox.allDevices()).toEqual([]);
}, 60_000);

test('5. a stopped run reports what earlier runs finished, and a rollback from it undoes them', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 12);
  const env = sandboxEnv(box.sandbox);
  expect((await runCli(['run', path, '--out-dir', dir], env)).code).toBe(0);
  const refused = await runCli(['run', path, '--out-dir', dir], { ...env, PINGONE_CLIENT_SECRET: 'wrong' });
  expect(refused.code).toBe(3);
  const rows = csv(newest(dir, 'run'));
  expect(rows.map((r) => r['outcome'])).toEqual(Array(12).fill('CREATED'));
  expect(json(newest(dir, 'run', '.summary.json'))).toMatchObject({ outcomes: { CREATED: 12, NOT_ATTEMPTED: 0 } });

  const dry = await runCli(['rollback', newest(dir, 'run'), '--out-dir', dir, '--dry-run'], env);
  expect(dry.code).toBe(0);
  expect(dry.stdout).toMatch(/WOULD_DELETE 12/);
  expect(box.sandbox.allDevices()).toHaveLength(12);
  // Refused credentials stop a rollback before any row: nothing sent, nothing said to be recorded.
  const refusedUndo = await runCli(['rollback', newest(dir, 'run'), '--out-dir', dir, '--yes'], { ...env, PINGONE_CLIENT_SECRET: 'wrong' });
  expect(refusedUndo.code).toBe(3);
  expect(refusedUndo.stdout).not.toMatch(/deletions recorded/);
  expect(csv(newest(dir, 'rollback')).map((r) => r['outcome'])).toEqual(Array(12).fill('NOT_ATTEMPTED'));
  expect(box.sandbox.stats.byKind['delete'] ?? 0).toBe(0);
  const undo = await runCli(['rollback', newest(dir, 'run'), '--out-dir', dir, '--yes'], env);
  expect(undo.code).toBe(0);
  expect(undo.stdout).toMatch(/DELETED 12/);
  expect(box.sandbox.allDevices()).toEqual([]);
});

test('6. a dry run says go only when every row would be sent; a stopped dry run never says so', async () => {
  box.sandbox.configure({ users: [{ id: userId(1), email: 'ann@example.com' }] });
  const dir = tempDir();
  const path = join(dir, 'dry.csv');
  writeFileSync(path, 'email,serialNumber\nann@example.com,D1\nnobody@example.com,D2\n');
  const env = sandboxEnv(box.sandbox);
  const dry = await runCli(['run', path, '--out-dir', dir, '--dry-run'], env);
  expect(dry.code).toBe(1);
  expect(dry.stdout).not.toMatch(/run it for real/);
  expect(csv(newest(dir, 'run')).map((r) => [r['outcome'], r['errorCode']])).toEqual([['NOT_ATTEMPTED', ''], ['FAILED', 'USER_NOT_FOUND']]);

  const stopped = await runCli(['run', path, '--out-dir', dir, '--dry-run'], { ...env, PINGONE_CLIENT_SECRET: 'wrong' });
  expect(stopped.code).toBe(3);
  expect(stopped.stdout).not.toMatch(/run it for real/);
  expect(box.sandbox.allDevices()).toEqual([]);

  const good = join(dir, 'good.csv');
  writeFileSync(good, 'email,serialNumber\nann@example.com,D1\n');
  const go = await runCli(['run', good, '--out-dir', dir, '--dry-run'], env);
  expect(go.code).toBe(0);
  expect(go.stdout).toMatch(/next: run it for real: oath-bulk run \S*good\.csv --out-dir \S+\n/);
});

test('7. the summary lists every problem code, and counts as finished earlier only rows that an earlier run finished', async () => {
  box.sandbox.configure({ maxDevicesPerUser: 1, users: [{ id: userId(9), email: 'a@x.org' }, { id: userId(10), email: 'a@x.org' }] });
  box.sandbox.seedDevice(userId(3), 'HELD1');
  box.sandbox.seedDevice(userId(4), 'TAKEN1');
  const dir = tempDir();
  const path = join(dir, 'mixed.csv');
  writeFileSync(
    path,
    [
      'userID,email,serialNumber',
      `${userId(1)},,OK1`,
      `${userId(2)},,UNKNOWN1`,
      `00000000-0000-4000-8000-000000000001,,NOUSER1`,
      `${userId(3)},,FULL1`,
      `${userId(5)},,TAKEN1`,
      `,a@x.org,TWIN1`,
      `${userId(6)},,2.30873E+13`,
      `not-a-uuid,,BAD1`,
      `${userId(1)},,OK1`,
    ].join('\n') + '\n',
  );
  const env = sandboxEnv(box.sandbox);
  const result = await runCli(['run', path, '--out-dir', dir], env);
  expect(result.code).toBe(1);
  const summary = json(newest(dir, 'run', '.summary.json'));
  const codes = Object.keys(summary['errorCodes'] as object);
  expect(codes.length).toBeGreaterThan(5);
  for (const code of codes) expect(result.stdout).toContain(`${code} ×`);
  expect(result.stdout).not.toMatch(/finished by an earlier run/);

  // A row an earlier run could not finish and that fails again now is not "finished earlier".
  const lostDir = tempDir();
  const one = join(lostDir, 'lost.csv');
  writeFileSync(one, 'userID,serialNumber\n00000000-0000-4000-8000-0000000000aa,LOST1\n');
  box.sandbox.configure({ faults: { lost: 1 } });
  expect((await runCli(['run', one, '--out-dir', lostDir, '--max-attempts', '2', '--backoff-base', '10'], env)).code).not.toBe(0);
  box.sandbox.configure({ faults: {} });
  const again = await runCli(['run', one, '--out-dir', lostDir], env);
  expect(again.code).toBe(1);
  expect(again.stdout).not.toMatch(/finished by an earlier run/);
  expect(json(newest(lostDir, 'run', '.summary.json'))['finishedEarlier']).toBe(0);
});

test('8. next: is the exact command to run, with every flag given, and it matches why the run ended', async () => {
  const dir = tempDir();
  const out = join(dir, 'out');
  const envFile = join(dir, 'p1.env');
  writeFileSync(envFile, box.sandbox.envLines().join('\n') + '\n', { mode: 0o600 });
  const path = join(dir, 'copy.csv');
  writeFileSync(path, `userID,serialNumber\n${userId(1)},N1\nnot-a-uuid,N2\n`);
  const journal = join(dir, 'orig.journal.jsonl');
  const bare = { PATH: process.env['PATH'] ?? '' };
  const result = await runCli(['run', path, '--env-file', envFile, '--out-dir', out, '--journal', journal, '--rate', '30'], bare);
  expect(result.code).toBe(1);
  const next = /next: (.*)/.exec(result.stdout)?.[1] ?? '';
  expect(next).toContain(`oath-bulk run ${path} --env-file ${envFile} --out-dir ${out} --journal ${journal} --rate 30`);

  const wrongEnv = await runCli(['run', path, '--out-dir', out], { ...sandboxEnv(box.sandbox), PINGONE_ENVIRONMENT_ID: '11111111-2222-4333-8444-555555555555' });
  expect(wrongEnv.code).toBe(3);
  expect(wrongEnv.stdout).not.toMatch(/run the same command again to finish/);
  expect(wrongEnv.stdout).toMatch(/next: .*--environment-id/);
});

test('9. a wrong --api-url that fails every row the same way stops the run early and names the likely causes', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 300);
  const env = { ...sandboxEnv(box.sandbox), PINGONE_API_URL: box.sandbox.url };
  const result = await runCli(['run', path, '--out-dir', dir, '--rate', '200'], env);
  expect(result.code).toBe(3);
  expect(result.stderr).toMatch(/--api-url/);
  expect(result.stderr).toMatch(/--environment-id/);
  expect(box.sandbox.stats.requests).toBeLessThanOrEqual(60);
  const rows = csv(newest(dir, 'run'));
  expect(rows).toHaveLength(300);
  expect(rows.filter((r) => r['outcome'] === 'NOT_ATTEMPTED').length).toBeGreaterThan(200);
});

test('10. rows are named one way everywhere: row N (line L), and a conflict never points at itself', async () => {
  const dir = tempDir();
  const path = join(dir, 'lines.csv');
  // Blank lines make lines and rows differ.
  writeFileSync(
    path,
    [
      'userID,serialNumber',
      '',
      `${userId(1)},A1`, // row 1, line 3
      `${userId(2)},C1`, // row 2, line 4
      '',
      `${userId(3)},C1`, // row 3, line 6: conflicts with row 2
      `${userId(1)},A1`, // row 4, line 7: repeats row 1
    ].join('\n') + '\n',
  );
  const env = sandboxEnv(box.sandbox);
  const result = await runCli(['run', path, '--out-dir', dir], env);
  expect(result.code).toBe(1);
  const rows = csv(newest(dir, 'run'));
  expect(rows[1]!['message']).toMatch(/^row 2 \(line 4\): .*row 3 \(line 6\)/);
  expect(rows[1]!['message']).not.toMatch(/row 2 \(line 4\).*row 2\b/);
  expect(rows[2]!['message']).toMatch(/^row 3 \(line 6\): .*row 2 \(line 4\)/);
  expect(rows[3]!['message']).toMatch(/^row 4 \(line 7\): repeats row 1 \(line 3\)/);

  const strict = await runCli(['run', path, '--out-dir', dir, '--strict'], env);
  expect(strict.code).toBe(2);
  const listed = strict.stderr.split('\n').filter((l) => /^\s+row /.test(l));
  expect(listed).toHaveLength(3);
  for (const l of listed) expect(l).toMatch(/^\s+row \d+ \(line \d+\): [A-Z_]+: /);
});

test('11. Ctrl-C with requests unanswered: those rows say so honestly, and the rerun confirms them', async () => {
  box.sandbox.configure({ latencyMs: 8000 });
  const dir = tempDir();
  const { path, rows } = shipment(dir, 20);
  const env = sandboxEnv(box.sandbox);
  const child = startCli(['run', path, '--out-dir', dir, '--concurrency', '4', '--rate', '50'], env);
  const done = exited(child);
  while (box.sandbox.stats.createsReceived < 4) await sleep(20);
  child.kill('SIGINT');
  expect((await done).code).toBe(3);
  const stopped = csv(newest(dir, 'run'));
  const sent = stopped.filter((r) => Number(r['attempts']) > 0);
  expect(sent.length).toBeGreaterThanOrEqual(4);
  for (const r of sent) {
    expect(r['outcome']).toBe('UNCONFIRMED');
    expect(r['message']).toMatch(/next run checks/);
  }
  expect(stopped.filter((r) => r['outcome'] === 'NOT_ATTEMPTED').every((r) => r['attempts'] === '0')).toBe(true);

  box.sandbox.configure({ latencyMs: 0 });
  const rerun = await runCli(['run', path, '--out-dir', dir], env);
  expect(rerun.code).toBe(0);
  expect(csv(newest(dir, 'run')).every((r) => r['outcome'] === 'CREATED')).toBe(true);
  for (const r of rows) expect(serialsOf(r.userID)).toEqual([r.serialNumber]);
}, 40_000);

test('12. run, verify and rollback reports line up: same leading columns, same summary keys, extras and the email kept', async () => {
  box.sandbox.configure({ users: [{ id: userId(1), email: 'ann@example.com' }, { id: userId(2), email: 'bob@example.com' }] });
  const dir = tempDir();
  const path = join(dir, 'team.csv');
  writeFileSync(path, 'email,serialNumber,department\nann@example.com,T1,Finance\nbob@example.com,T2,Sales\nnobody@example.com,T3,Ops\n');
  const env = sandboxEnv(box.sandbox);
  expect((await runCli(['run', path, '--out-dir', dir], env)).code).toBe(1);
  const runResults = newest(dir, 'run');
  const runSummary = newest(dir, 'run', '.summary.json');
  expect((await runCli(['verify', runResults, '--out-dir', dir], env)).code).toBe(1);
  const verifyCsv = newest(dir, 'verify');
  const verifySummary = newest(dir, 'verify', '.summary.json');

  // A rollback whose delete answers are lost: it deleted them itself, so DELETED, not ALREADY_GONE.
  box.sandbox.configure({ faults: { lost: 0.5 }, seed: 3 });
  expect((await runCli(['rollback', runResults, '--out-dir', dir, '--yes', '--backoff-base', '10'], env)).code).toBe(0);
  box.sandbox.configure({ faults: {} });
  const rollbackCsv = newest(dir, 'rollback');
  const rollbackSummary = newest(dir, 'rollback', '.summary.json');
  expect(box.sandbox.allDevices()).toEqual([]);

  const LEAD = ['row', 'userID', 'serialNumber', 'outcome', 'deviceId', 'deviceStatus', 'httpStatus', 'errorCode', 'errorDetail', 'message', 'attempts', 'durationMs'];
  const header = (p: string) => readFileSync(p, 'utf8').split('\n')[0]!.split(',');
  for (const p of [runResults, verifyCsv, rollbackCsv]) {
    expect(header(p).slice(0, LEAD.length)).toEqual(LEAD);
    expect(header(p)).toEqual(expect.arrayContaining(['email', 'department']));
    const rows = csv(p);
    expect(rows.map((r) => [r['userID'], r['email'], r['department']])).toEqual([
      [userId(1), 'ann@example.com', 'Finance'],
      [userId(2), 'bob@example.com', 'Sales'],
      ['', 'nobody@example.com', 'Ops'],
    ]);
  }
  expect(csv(verifyCsv).map((r) => r['outcome'])).toEqual(['PRESENT', 'PRESENT', 'USER_NOT_FOUND']);
  expect(csv(rollbackCsv).map((r) => r['outcome'])).toEqual(['DELETED', 'DELETED', 'SKIPPED']);

  const keys = (p: string) => Object.keys(json(p)).sort();
  expect(keys(verifySummary)).toEqual(keys(runSummary));
  expect(keys(rollbackSummary)).toEqual(keys(runSummary));
  for (const k of ['command', 'runId', 'input', 'startedAt', 'finishedAt', 'durationMs', 'rows', 'outcomes', 'errorCodes', 'requests', 'stopped', 'exitCode', 'reports']) {
    expect(keys(runSummary)).toContain(k);
  }
});

test('a stop while rows wait for a request slot leaves no claim on them: a serial an admin assigns by hand later is EXISTING, and rollback keeps it', async () => {
  box.sandbox.configure({ latencyMs: 3000 });
  const dir = tempDir();
  const { path, rows } = shipment(dir, 8);
  const env = sandboxEnv(box.sandbox);
  const child = startCli(['run', path, '--out-dir', dir, '--concurrency', '2', '--rate', '100'], env);
  const done = exited(child);
  while (box.sandbox.stats.createsReceived < 2) await sleep(20);
  await sleep(300);
  child.kill('SIGTERM');
  expect((await done).code).toBe(3);
  const stopped = csv(newest(dir, 'run'));
  expect(stopped.filter((r) => r['outcome'] === 'NOT_ATTEMPTED').length).toBeGreaterThanOrEqual(5);
  const summary = json(newest(dir, 'run', '.summary.json'));
  // The summary counts only requests that were written.
  expect((summary['requests'] as { create: number }).create).toBe(box.sandbox.stats.createsReceived);

  box.sandbox.configure({ latencyMs: 0 });
  const queued = rows[stopped.findIndex((r) => r['outcome'] === 'NOT_ATTEMPTED')]!;
  const byHand = box.sandbox.seedDevice(queued.userID, queued.serialNumber, new Date().toISOString());
  expect((await runCli(['run', path, '--out-dir', dir], env)).code).toBe(0);
  const rerun = csv(newest(dir, 'run'));
  expect(rerun.find((r) => r['serialNumber'] === queued.serialNumber)).toMatchObject({ outcome: 'EXISTING', deviceId: byHand.id });
  expect((await runCli(['rollback', newest(dir, 'run'), '--out-dir', dir, '--yes'], env)).code).toBe(0);
  expect(box.sandbox.allDevices().map((d) => d.id)).toEqual([byHand.id]);
}, 40_000);

test('a dry run with --no-journal reads no journal; --dry-run=1 is refused rather than run for real; `--dry-run true` gives a next: that runs', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 4);
  const env = sandboxEnv(box.sandbox);
  expect((await runCli(['run', path, '--out-dir', dir], env)).code).toBe(0);
  const dry = await runCli(['run', path, '--out-dir', dir, '--dry-run', '--no-journal'], env);
  expect(dry.code).toBe(0);
  // Without the journal nothing says the job made these devices: the preflight finds each
  // token on its user (EXISTING), where the journal would have said CREATED.
  expect(csv(newest(dir, 'run')).map((r) => r['outcome'])).toEqual(Array(4).fill('EXISTING'));
  const withJournal = await runCli(['run', path, '--out-dir', dir, '--dry-run'], env);
  expect(withJournal.code).toBe(0);
  expect(csv(newest(dir, 'run')).map((r) => r['outcome'])).toEqual(Array(4).fill('CREATED'));

  const odd = await runCli(['run', path, '--out-dir', dir, '--dry-run=1'], env);
  expect(odd.code).toBe(2);
  expect(odd.stderr).toMatch(/--dry-run: takes no value/);

  const other = tempDir();
  const { path: fresh } = shipment(other, 2, 'fresh.csv', 'FR');
  const go = await runCli(['run', fresh, '--out-dir', other, '--dry-run', 'true'], env);
  expect(go.code).toBe(0);
  const next = /next: run it for real: (.*)/.exec(go.stdout)![1]!;
  expect(next).toBe(`oath-bulk run ${fresh} --out-dir ${other}`);
  expect(box.sandbox.allDevices()).toHaveLength(4);

  const dirJournal = await runCli(['run', path, '--out-dir', dir, '--journal', other], env);
  expect(dirJournal.code).toBe(2);
  expect(dirJournal.stderr).toMatch(/--journal: .* is a directory/);
});

test('13. verify says why a token is MISSING, from the inventory: not in it (import first), free (run again), on a user the file does not name; and every summary ends with next:', async () => {
  box.sandbox.configure({ inventory: 'imported', jobDelayMs: 10 });
  for (const serial of ['WHY0001', 'WHY0002', 'WHY0004']) box.sandbox.inventory.createOne({ serialNumber: serial, secret: '3132333435363738393031323334353637383930', type: 'TOTP', otpLength: 6 });
  const dir = tempDir();
  const env = sandboxEnv(box.sandbox);
  const path = join(dir, 'why.csv');
  writeFileSync(path, `userID,serialNumber\n${userId(1)},WHY0001\n`);
  expect((await runCli(['run', path, '--out-dir', dir], env)).code).toBe(0);
  // Someone outside this file holds WHY0004.
  box.sandbox.seedDevice(userId(99), 'WHY0004');
  const check = join(dir, 'check.csv');
  writeFileSync(check, `userID,serialNumber\n${userId(1)},WHY0001\n${userId(2)},WHY0002\n${userId(3)},WHY0003\n${userId(4)},WHY0004\n`);
  const verify = await runCli(['verify', check, '--out-dir', dir], env);
  expect(verify.code).toBe(1);
  const rows = csv(newest(dir, 'verify'));
  expect(rows.map((r) => [r['serialNumber'], r['outcome'], r['errorCode']])).toEqual([
    ['WHY0001', 'PRESENT', ''],
    ['WHY0002', 'MISSING', ''],
    ['WHY0003', 'MISSING', 'SERIAL_NOT_FOUND'],
    ['WHY0004', 'ON_OTHER_USER', ''],
  ]);
  expect(rows[1]!['message']).toMatch(/in the inventory, free: running the shipment again assigns it/);
  expect(rows[2]!['message']).toMatch(/not in the OATH token inventory: import its seed first/);
  expect(rows[3]!['foundOnUser']).toBe(userId(99));
  const next = /\n {2}next: (.*)/.exec(verify.stdout)?.[1] ?? '';
  expect(next).toMatch(/^1 missing tokens are not in the OATH token inventory: import their seeds first .*; then 1 missing tokens are free in the inventory: run the shipment again to assign them .*; then tokens on another user: unassign them there, or correct the shipment; then verify again: oath-bulk verify /);

  // A worker app that may not read the inventory: the rows stay MISSING, unexplained, and verify
  // ends as it did before it read the inventory (exit 1), not stopped.
  box.sandbox.configure({ forbidInventory: true });
  const unexplained = await runCli(['verify', check, '--out-dir', dir], env);
  expect(unexplained.code).toBe(1);
  expect(unexplained.stdout).not.toMatch(/STOPPED/);
  expect(unexplained.stdout).toMatch(/missing tokens \(the inventory could not be read to say why\)/);
  box.sandbox.configure({ forbidInventory: false });

  // A clean verify, and a rollback, each end with a next: too.
  const clean = await runCli(['verify', path, '--out-dir', dir], env);
  expect(clean.stdout).toMatch(/\n {2}next: nothing to do: every assignment is in place; to check again later: oath-bulk verify /);
  const rollback = await runCli(['rollback', newest(dir, 'run'), '--yes', '--out-dir', dir], env);
  expect(rollback.code).toBe(0);
  expect(rollback.stdout).toMatch(/\n {2}next: the run's devices are gone and their tokens are free in the inventory: to give them to users again, put them in a shipment file and run it \(oath-bulk run '<shipment.csv>' --out-dir /);
  const again = await runCli(['rollback', newest(dir, 'run'), '--yes', '--out-dir', dir], env);
  expect(again.stdout).toMatch(/\n {2}next: /);
});
