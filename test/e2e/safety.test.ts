/**
 * Hostile input and hostile networks, end to end: no input reaches a path other than a
 * user's devices, no secret reaches any output, reports are safe to open in a spreadsheet,
 * and TLS problems are named, not ignored.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { useSandbox } from '../support/sandbox.js';
import { readResults, runCli, sandboxEnv, shipment, tempDir } from '../support/cli.js';

const FIXTURES = resolve('test', 'fixtures');
const box = useSandbox();

/** Every byte the CLI wrote: stdout, stderr and every file in the out-dir (journal included). */
function everything(dir: string, ...streams: string[]): string {
  const files = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8'));
  return [...streams, ...files].join('\n');
}

test('no input can make a request reach any path other than a user\'s devices', async () => {
  const dir = tempDir();
  const path = join(dir, 'hostile.csv');
  const hostile = [
    '../../../environments',
    '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93/../../users',
    '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93%2F..%2F..',
    '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93?filter=x',
    '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93#x',
    'http://evil.example/',
    '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93\u2028',
    '%00',
    '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a9',
  ];
  const lines = ['userID,serialNumber', ...hostile.map((u, i) => `"${u}",S${i}`), '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93,../../x', '6a9d3b5f-2c8e-4d4f-8b3a-1e7f9c2d8ba4,SAFE1'];
  writeFileSync(path, lines.join('\n') + '\n');
  const result = await runCli(['run', path, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(result.code).toBe(1);
  expect(box.sandbox.stats.strayPaths).toEqual([]);
  expect(Object.keys(box.sandbox.stats.byKind).sort()).toEqual(['create', 'token']);
  // Two rows are valid: the last one, and the one whose only fault was trailing whitespace (U+2028).
  expect(box.sandbox.stats.byKind['create']).toBe(2);
  expect(box.sandbox.devicesOf('6a9d3b5f-2c8e-4d4f-8b3a-1e7f9c2d8ba4').map((d) => d.serialNumber)).toEqual(['SAFE1']);
  expect(box.sandbox.devicesOf('5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93').map((d) => d.serialNumber)).toEqual(['S6']);
});

test('at debug level, through faults, refusals and network errors, no secret or token appears in any output', async () => {
  const secret = box.sandbox.clientSecret;
  const basic = Buffer.from(`${box.sandbox.clientId}:${secret}`).toString('base64');
  const outputs: string[] = [];

  // 1. A fault mix with lost answers, token expiry and 401s, at debug level.
  box.sandbox.configure({ faults: { '5xx': 0.03, html502: 0.02, reset: 0.03, lost: 0.03, expire: 0.05 }, tokenTtlS: 2, expireMinAgeMs: 1000, seed: 99 });
  const dir1 = tempDir();
  const { path } = shipment(dir1, 80);
  const r1 = await runCli(['run', path, '--out-dir', dir1, '--log-level', 'debug', '--rate', '100', '--backoff-base', '20'], sandboxEnv(box.sandbox));
  expect(r1.code).toBe(0);
  outputs.push(everything(dir1, r1.stdout, r1.stderr));
  expect(outputs[0]).toMatch(/"event":"http"/); // debug events were written

  // 2. A refused secret (post auth, so the secret travels in the form body).
  const dir2 = tempDir();
  const wrong = 'wrong-secret-value-1234';
  const r2 = await runCli(['run', path, '--out-dir', dir2, '--log-level', 'trace', '--token-auth', 'post'], { ...sandboxEnv(box.sandbox), PINGONE_CLIENT_SECRET: wrong });
  expect(r2.code).toBe(3);
  outputs.push(everything(dir2, r2.stdout, r2.stderr).replaceAll(wrong, '<<LEAK>>'));

  // 3. Network errors: nothing listens on the API host.
  const dir3 = tempDir();
  const r3 = await runCli(['run', path, '--out-dir', dir3, '--log-level', 'debug', '--max-attempts', '2', '--backoff-base', '10', '--max-consecutive-failures', '3'], {
    ...sandboxEnv(box.sandbox),
    PINGONE_API_URL: 'http://127.0.0.1:9/v1',
  });
  expect(r3.code).toBe(3);
  outputs.push(everything(dir3, r3.stdout, r3.stderr));

  const all = outputs.join('\n');
  expect(box.sandbox.tokensIssued.length).toBeGreaterThanOrEqual(2);
  for (const token of box.sandbox.tokensIssued) expect(all).not.toContain(token);
  expect(all).not.toContain(secret);
  expect(all).not.toContain(basic);
  expect(all).not.toContain('<<LEAK>>');
  expect(all).not.toMatch(/Bearer /i);
  expect(all).not.toMatch(/authorization/i);
});

test('report cells that a spreadsheet would execute are escaped, carried columns and messages too', async () => {
  const dir = tempDir();
  const result = await runCli(['run', join(FIXTURES, 'input', 'formula-injection.csv'), '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(result.code).toBe(1);
  const rows = readResults(dir);
  expect(rows.map((r) => [r['note'], r['owner']])).toEqual([
    ["'=1+2", "'@SUM(A1)"],
    ["'+cmd|' /C calc'!A0", "'-2+3"],
    ['TAB', 'CR'],
  ]);
  expect(rows[2]!['serialNumber']).toBe(`'=HYPERLINK("http://x")`);
  for (const r of rows) for (const cell of Object.values(r)) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
});

test('--out-dir is created if missing, private; an unusable one is exit 2 before any request', async () => {
  const base = tempDir();
  const nested = join(base, 'a', 'b', 'reports');
  const { path } = shipment(base, 2);
  const ok = await runCli(['run', path, '--out-dir', nested], sandboxEnv(box.sandbox));
  expect(ok.code).toBe(0);
  expect(statSync(nested).mode & 0o077).toBe(0);
  for (const f of readdirSync(nested)) expect(statSync(join(nested, f)).mode & 0o077).toBe(0);

  const blocker = join(base, 'not-a-dir');
  writeFileSync(blocker, 'x');
  const before = box.sandbox.stats.requests;
  const bad = await runCli(['run', path, '--out-dir', join(blocker, 'reports')], sandboxEnv(box.sandbox));
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/^oath-bulk: --out-dir: cannot write reports to ".*not-a-dir\/reports" \(ENOTDIR\): choose a writable directory\n$/);
  expect(box.sandbox.stats.requests).toBe(before);
});

test('plain http to a host that is not loopback is refused: exit 2, https required', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 1);
  const result = await runCli(['run', path, '--out-dir', dir], { ...sandboxEnv(box.sandbox), PINGONE_API_URL: 'http://api.pingone.example/v1' });
  expect(result.code).toBe(2);
  // Given in the environment: the message says where the value came from.
  expect(result.stderr).toBe('oath-bulk: --api-url (PINGONE_API_URL in the environment): expected an https:// URL (plain http is allowed only on loopback hosts), got "http://api.pingone.example/v1"\n');
});

test('a secret on the command line is refused, with why and what to use', async () => {
  const result = await runCli(['run', 'x.csv', '--client-secret', 'hunter2'], { PATH: process.env['PATH'] ?? '' });
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/--client-secret: not accepted, because a secret on the command line shows in `ps`.*use --client-secret-file/);
  expect(result.stderr).not.toContain('hunter2');
});

test('an untrusted certificate stops the run (exit 3) with the fix; NODE_EXTRA_CA_CERTS is that fix', async () => {
  const server = https.createServer(
    { key: readFileSync(join(FIXTURES, 'tls', 'self-signed.key')), cert: readFileSync(join(FIXTURES, 'tls', 'self-signed.crt')) },
    (_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_client', error_description: 'nope' }));
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (server.address() as AddressInfo).port;
    const dir = tempDir();
    const { path } = shipment(dir, 2);
    const env = { ...sandboxEnv(box.sandbox), PINGONE_AUTH_URL: `https://127.0.0.1:${port}` };
    const untrusted = await runCli(['run', path, '--out-dir', dir], env);
    expect(untrusted.code).toBe(3);
    expect(untrusted.stderr).toMatch(/stopped \(TLS_ERROR\): TLS certificate not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\); for a corporate proxy CA set NODE_EXTRA_CA_CERTS/);
    const trusted = await runCli(['run', path, '--out-dir', dir], { ...env, NODE_EXTRA_CA_CERTS: join(FIXTURES, 'tls', 'self-signed.crt') });
    expect(trusted.code).toBe(3);
    expect(trusted.stderr).toMatch(/stopped \(CREDENTIALS_REFUSED\)/);
    expect(existsSync(dir)).toBe(true);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
