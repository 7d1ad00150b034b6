/**
 * PingOne unreachable mid-run (issue #20, item 1), end to end: the API host goes away (its
 * server stops: connections refused). The run notices within --max-unreachable, says so once
 * on stderr, stops with exit 3 CONNECTION_LOST naming the host, accounts for every row, and a
 * rerun once the host is back finishes.
 */
import { readFileSync } from 'node:fs';
import { PingOneSandbox } from '../../src/sandbox/server.js';
import { exited, latest, readResults, runCli, sandboxEnv, shipment, startCli, tempDir } from '../support/cli.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the API host stops mid-run: exit 3 CONNECTION_LOST within the bound, said once on stderr, every row accounted for; the rerun finishes', async () => {
  const first = new PingOneSandbox();
  await first.start();
  const port = Number(new URL(first.url).port);
  const dir = tempDir();
  const { path } = shipment(dir, 200, 'gone.csv', 'GONE');
  const env = sandboxEnv(first);
  // With the progress line drawn (as on a terminal): the warning must start a line of its own.
  const child = startCli(['run', path, '--out-dir', dir, '--rate', '20', '--max-unreachable', '5', '--progress'], env);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = exited(child);
  while (first.stats.createsReceived < 20) await sleep(20);
  await first.stop();
  const wentAway = Date.now();
  const { code } = await done;
  const afterGone = Date.now() - wentAway;
  expect(code).toBe(3);
  // Within the bound (5 s), with room for the requests in flight to finish and reports to be written.
  expect(afterGone).toBeLessThan(15_000);
  expect(stderr.match(/cannot be reached/g)).toHaveLength(1);
  expect(stderr).toMatch(/(^|\n|\r\x1b\[2K)oath-bulk: warning: [^\n]*cannot be reached/);
  expect(stderr).not.toMatch(/ETA [^\r\n]*oath-bulk: warning/);
  expect(stderr).toContain(`127.0.0.1:${port}`);
  const summary = JSON.parse(readFileSync(latest(dir, '.summary.json'), 'utf8')) as { stopped: { code: string }; rows: number };
  expect(summary.stopped.code).toBe('CONNECTION_LOST');
  const rows = readResults(dir);
  expect(rows).toHaveLength(200);
  expect(rows.every((r) => ['CREATED', 'NOT_ATTEMPTED', 'UNCONFIRMED', 'FAILED'].includes(r['outcome']!))).toBe(true);

  // The host is back (the same address): the rerun finishes.
  const second = new PingOneSandbox({ port });
  await second.start();
  try {
    const rerun = await runCli(['run', path, '--out-dir', dir, '--rate', '100'], sandboxEnv(second));
    expect(rerun.code).toBe(0);
    expect(readResults(dir).every((r) => r['outcome'] === 'CREATED' || r['outcome'] === 'EXISTING')).toBe(true);
  } finally {
    await second.stop();
  }
}, 120_000);
