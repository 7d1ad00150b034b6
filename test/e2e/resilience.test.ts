/**
 * Crash-safe, self-protecting runs, end to end: the built CLI is killed, signalled, started
 * twice and pointed at a rate-limited or forbidding sandbox over loopback.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PingOneSandbox } from '../../src/sandbox/server.js';
import { useSandbox } from '../support/sandbox.js';
import { exited, readResults, runCli, sandboxEnv, shipment, startCli, tempDir } from '../support/cli.js';

const box = useSandbox();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Seeded, so that a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a * 1103515245 + 12345) % 2 ** 31;
    return a / 2 ** 31;
  };
}

test('kill -9 at random moments, rerun until exit 0: every serial on its user exactly once, results complete and true', async () => {
  box.sandbox.configure({ latencyMs: 15 });
  const dir = tempDir();
  const n = 300;
  const concurrency = 8;
  const { path, rows } = shipment(dir, n);
  const args = ['run', path, '--out-dir', dir, '--rate', '150', '--concurrency', String(concurrency)];
  const env = sandboxEnv(box.sandbox);
  const draw = random(424242);
  let kills = 0;
  let finalCode: number | null = null;
  for (let attempt = 0; attempt < 20 && finalCode !== 0; attempt++) {
    const child = startCli(args, env);
    const done = exited(child);
    if (kills < 4) {
      const outcome = await Promise.race([done, sleep(250 + draw() * 700).then(() => undefined)]);
      if (outcome === undefined) {
        child.kill('SIGKILL');
        const killed = await done;
        expect(killed.signal).toBe('SIGKILL');
        kills++;
        continue;
      }
      finalCode = outcome.code;
    } else {
      finalCode = (await done).code;
    }
  }
  expect(kills).toBeGreaterThanOrEqual(3);
  expect(finalCode).toBe(0);

  // Every serial on its user, exactly once, and nothing else.
  expect(box.sandbox.allDevices()).toHaveLength(n);
  for (const r of rows) expect(box.sandbox.devicesOf(r.userID).map((d) => d.serialNumber)).toEqual([r.serialNumber]);

  // The final results are complete and agree with the box.sandbox.
  const results = readResults(dir);
  expect(results).toHaveLength(n);
  for (const [i, r] of results.entries()) {
    expect(r['outcome']).toBe('CREATED');
    expect(r['deviceId']).toBe(box.sandbox.devicesOf(rows[i]!.userID)[0]!.id);
  }

  // Creates sent again because of the crashes: bounded by what was in flight at each kill.
  const resent = box.sandbox.stats.createsReceived - n;
  expect(resent).toBeLessThanOrEqual(kills * concurrency);
  console.info(`crash test: ${kills} kills, ${box.sandbox.stats.createsReceived} creates for ${n} rows (${resent} sent again), ${box.sandbox.stats.byKind['list'] ?? 0} device lists to reconcile`);
});

test('SIGTERM mid-run: exit 3, complete reports with NOT_ATTEMPTED rows; the rerun completes', async () => {
  const dir = tempDir();
  const { path, rows } = shipment(dir, 120);
  const args = ['run', path, '--out-dir', dir, '--rate', '20', '--concurrency', '4'];
  const child = startCli(args, sandboxEnv(box.sandbox));
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const done = exited(child);
  for (let i = 0; i < 200 && box.sandbox.stats.devicesCreated < 10; i++) await sleep(25);
  const signalledAt = Date.now();
  child.kill('SIGTERM');
  const { code } = await done;
  expect(code).toBe(3);
  expect(Date.now() - signalledAt).toBeLessThan(6000);
  expect(stderr).toMatch(/stopped \(INTERRUPTED\): stopped by SIGTERM/);
  const first = readResults(dir);
  expect(first).toHaveLength(120);
  const created = first.filter((r) => r['outcome'] === 'CREATED').length;
  const waiting = first.filter((r) => r['outcome'] === 'NOT_ATTEMPTED').length;
  expect(created).toBeGreaterThan(0);
  expect(waiting).toBeGreaterThan(0);
  expect(created + waiting).toBe(120);
  expect(box.sandbox.allDevices()).toHaveLength(created);

  const rerun = await runCli(['run', path, '--out-dir', dir, '--rate', '200', '--concurrency', '8'], sandboxEnv(box.sandbox));
  expect(rerun.code).toBe(0);
  expect(rerun.stdout).toMatch(new RegExp(`\\(${created} finished by an earlier run\\)`));
  const second = readResults(dir);
  expect(second.every((r) => r['outcome'] === 'CREATED')).toBe(true);
  for (const r of rows) expect(box.sandbox.devicesOf(r.userID)).toHaveLength(1);
  expect(box.sandbox.stats.createsReceived).toBe(120);
});

test('a second signal exits at once and the journal stays valid', async () => {
  box.sandbox.configure({ latencyMs: 400 });
  const dir = tempDir();
  const { path, rows } = shipment(dir, 60);
  const child = startCli(['run', path, '--out-dir', dir, '--rate', '40', '--concurrency', '8'], sandboxEnv(box.sandbox));
  const done = exited(child);
  for (let i = 0; i < 200 && box.sandbox.stats.devicesCreated < 5; i++) await sleep(25);
  child.kill('SIGINT');
  await sleep(50);
  child.kill('SIGINT');
  expect((await done).code).toBe(3);
  box.sandbox.configure({ latencyMs: 0 });
  const rerun = await runCli(['run', path, '--out-dir', dir, '--rate', '200'], sandboxEnv(box.sandbox));
  expect(rerun.code).toBe(0);
  for (const r of rows) expect(box.sandbox.devicesOf(r.userID).map((d) => d.serialNumber)).toEqual([r.serialNumber]);
});

test('two runs at once: the second exits 2 at once and sends nothing', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 60);
  const first = startCli(['run', path, '--out-dir', dir, '--rate', '20'], sandboxEnv(box.sandbox));
  const firstDone = exited(first);
  const lock = join(dir, 'shipment.journal.jsonl.lock');
  for (let i = 0; i < 100 && !existsSync(lock); i++) await sleep(50);
  expect(existsSync(lock)).toBe(true);

  const other = new PingOneSandbox();
  await other.start();
  try {
    const second = await runCli(['run', path, '--out-dir', dir], sandboxEnv(other));
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(new RegExp(`another run holds the lock .*\\(pid ${first.pid}, started `));
    expect(other.stats.requests).toBe(0);
  } finally {
    await other.stop();
  }
  first.kill('SIGTERM');
  await firstDone;
});

test('a sandbox limit of 30/s against --rate 120: every row succeeds, few 429s, close to the limit', async () => {
  box.sandbox.configure({ rateLimit: 30 });
  const dir = tempDir();
  const n = 300;
  const { path } = shipment(dir, n);
  const result = await runCli(['run', path, '--out-dir', dir, '--rate', '120', '--concurrency', '8'], sandboxEnv(box.sandbox));
  expect(result.code).toBe(0);
  expect(readResults(dir).every((r) => r['outcome'] === 'CREATED')).toBe(true);
  const limited = box.sandbox.stats.byStatus['429'] ?? 0;
  const share = limited / box.sandbox.stats.requests;
  expect(share).toBeLessThan(0.1);
  const ideal = ((n + 1) / 30) * 1000;
  expect(result.ms).toBeLessThan(ideal * 1.3);
  const adjustments = readFileSync(join(dir, (await import('node:fs')).readdirSync(dir).find((f) => f.endsWith('.log.jsonl'))!), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"event":"rate"')).length;
  expect(adjustments).toBeGreaterThan(0);
  console.info(`adaptive: ${n} rows against a 30/s limit in ${result.ms} ms (ideal ${Math.round(ideal)} ms, ${(result.ms / ideal).toFixed(2)}x), 429s ${limited}/${box.sandbox.stats.requests} = ${(share * 100).toFixed(1)}%, ${adjustments} rate adjustments`);
});

test('403 on every call: the run stops after a handful of creates with exit 3 and names the missing role', async () => {
  box.sandbox.configure({ forbidden: true });
  const dir = tempDir();
  const { path } = shipment(dir, 200);
  const result = await runCli(['run', path, '--out-dir', dir, '--concurrency', '4', '--max-consecutive-failures', '10', '--rate', '100'], sandboxEnv(box.sandbox));
  expect(result.code).toBe(3);
  expect(box.sandbox.stats.byKind['create']).toBeLessThanOrEqual(10 + 4);
  expect(result.stderr).toMatch(/INSUFFICIENT_PERMISSIONS.*the worker app needs a role that can manage MFA devices/);
  const results = readResults(dir);
  expect(results).toHaveLength(200);
  expect(results.filter((r) => r['outcome'] === 'NOT_ATTEMPTED').length).toBeGreaterThan(180);
  expect(results.filter((r) => r['outcome'] === 'FAILED').every((r) => r['errorCode'] === 'INSUFFICIENT_PERMISSIONS')).toBe(true);
});

test('PingOne failing every request: the breaker stops the run after --max-consecutive-failures rows', async () => {
  box.sandbox.configure({ faults: { '5xx': 1 } });
  const dir = tempDir();
  const { path } = shipment(dir, 100);
  const result = await runCli(['run', path, '--out-dir', dir, '--concurrency', '2', '--max-consecutive-failures', '5', '--max-attempts', '2', '--backoff-base', '10', '--rate', '200'], sandboxEnv(box.sandbox));
  expect(result.code).toBe(3);
  // Every create answered 503 may have been carried out, and the devices cannot be read to
  // check: the rows are UNCONFIRMED, which is not the rows' own failure.
  expect(result.stderr).toMatch(/stopped \(BREAKER_TRIPPED\): 5 rows in a row failed with UNCONFIRMED/);
  // Rows already in progress when it trips (4 × --concurrency, and those finished out of
  // order behind them) end; nothing new starts.
  const inProgress = 4 * 2;
  const results = readResults(dir);
  const started = results.filter((r) => Number(r['attempts']) > 0).length;
  expect(started).toBeLessThanOrEqual(5 + 2 * inProgress);
  expect(results.filter((r) => r['outcome'] === 'NOT_ATTEMPTED').length).toBeGreaterThanOrEqual(100 - 5 - 2 * inProgress);
  expect(box.sandbox.stats.byKind['create']).toBeLessThanOrEqual(started * 2);
});

test('a run that outlives its access tokens refreshes them without a failed row', async () => {
  box.sandbox.configure({ tokenTtlS: 1 });
  const dir = tempDir();
  const { path } = shipment(dir, 60);
  const result = await runCli(['run', path, '--out-dir', dir, '--rate', '20'], sandboxEnv(box.sandbox));
  expect(result.code).toBe(0);
  expect(box.sandbox.stats.tokensIssued).toBeGreaterThanOrEqual(3);
  expect(box.sandbox.stats.byStatus['401'] ?? 0).toBe(0);
});
