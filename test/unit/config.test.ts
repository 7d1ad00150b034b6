import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnvFile, resolveAll, resolveConnection, resolveEngineOptions, resolveReportOptions } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';

const ENV_ID = '5d1e0000-0b1c-4b1a-9a11-5a0d5a0d5a0d';
const base = { env: { PINGONE_ENVIRONMENT_ID: ENV_ID, PINGONE_CLIENT_ID: 'client-1', PINGONE_CLIENT_SECRET: 's3cret' }, isTTY: false };

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof UsageError) return error.problems;
    throw error;
  }
  throw new Error('expected a UsageError');
}

describe('configuration', () => {
  test('the environment alone is enough, and the region gives the hosts', () => {
    const c = resolveConnection({ region: 'eu' }, base);
    expect(c.apiUrl).toBe('https://api.pingone.eu/v1');
    expect(c.authUrl).toBe('https://auth.pingone.eu');
    expect(c.tokenAuth).toBe('basic');
    expect(c.clientSecret).toBe('s3cret');
  });

  test('flags win over the environment', () => {
    const other = '11111111-2222-4333-8444-555555555555';
    const c = resolveConnection({ 'environment-id': other, 'client-id': 'flag-client' }, base);
    expect(c.environmentId).toBe(other);
    expect(c.clientId).toBe('flag-client');
  });

  test('--env-file is read, and wins over the process environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ob-'));
    const file = join(dir, 'p.env');
    writeFileSync(file, `# comment\nexport PINGONE_CLIENT_ID="from-file"\nPINGONE_REGION=AU\n`);
    const c = resolveConnection({ 'env-file': file }, base);
    expect(c.clientId).toBe('from-file');
    expect(c.apiUrl).toBe('https://api.pingone.com.au/v1');
  });

  test('the secret comes from --client-secret-file, trimmed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ob-'));
    const file = join(dir, 'secret');
    writeFileSync(file, 'from-file-secret\n');
    expect(resolveConnection({ 'client-secret-file': file }, base).clientSecret).toBe('from-file-secret');
  });

  test('every problem is reported at once, as --flag: expected …, got "…"', () => {
    const found = problems(() =>
      resolveAll(
        () => resolveConnection({ 'environment-id': 'not-a-uuid', region: 'MARS', 'api-url': 'http://api.example.com/v1', 'token-auth': 'jwt' }, { env: {}, isTTY: false }),
        () => resolveEngineOptions({ concurrency: 0, rate: Number.NaN, 'max-attempts': 2.5 }),
        () => resolveReportOptions({ 'log-level': 'loud' }, { env: {}, isTTY: false }),
      ),
    );
    expect(found).toEqual(
      expect.arrayContaining([
        '--environment-id: expected a UUID such as 9c4a1e2b-…, got "not-a-uuid"',
        expect.stringMatching(/^--client-id: expected the worker app client id/),
        expect.stringMatching(/^--client-secret-file: expected a file holding the client secret/),
        expect.stringMatching(/^--region: expected one of NA\|CA\|EU\|AU\|SG\|AP, got "MARS"/),
        expect.stringMatching(/^--api-url: expected an https:\/\/ URL/),
        '--token-auth: expected basic or post, got "jwt"',
        '--concurrency: expected a whole number from 1 to 256, got "0"',
        expect.stringMatching(/^--rate: expected a number/),
        '--max-attempts: expected a whole number from 1 to 20, got "2.5"',
        expect.stringMatching(/^--log-level: expected fatal\|error/),
      ]),
    );
    expect(found).toHaveLength(10);
  });

  test('plain http is accepted on loopback hosts only', () => {
    for (const host of ['127.0.0.1:8080', 'localhost:1', '[::1]:9', '127.9.9.9']) {
      expect(resolveConnection({ 'api-url': `http://${host}/v1`, 'auth-url': `http://${host}` }, base).apiUrl).toBe(`http://${host}/v1`);
    }
    for (const host of ['10.0.0.1', 'example.com', '128.0.0.1', 'localhost.evil.com']) {
      expect(problems(() => resolveConnection({ 'api-url': `http://${host}/v1` }, base))[0]).toMatch(/https:\/\/ URL/);
    }
  });

  test('a missing secret file is named with its error', () => {
    expect(problems(() => resolveConnection({ 'client-secret-file': '/nonexistent/secret' }, base))).toEqual([
      '--client-secret-file: expected a readable file holding the client secret, got "/nonexistent/secret (ENOENT)"',
    ]);
  });

  test('defaults follow SPEC', () => {
    expect(resolveEngineOptions({})).toEqual({ concurrency: 8, rate: 20, maxAttempts: 8, timeoutMs: 30000, maxConsecutiveFailures: 25, backoffBaseMs: 1000, backoffMaxMs: 30000, maxUnreachableMs: 60000 });
    expect(resolveReportOptions({}, { env: {}, isTTY: true })).toMatchObject({ outDir: 'reports', logLevel: 'info', progress: true });
    expect(resolveReportOptions({}, { env: {}, isTTY: false }).progress).toBe(false);
  });

  test('env files: malformed lines are named', () => {
    expect(parseEnvFile('A=1\nnot a pair\n', 'x.env').problems).toEqual(['--settings: x.env line 2: expected KEY=value with "=" right after the name; the line is not shown, as it may hold a secret']);
    // A secret with a typo: the key is named, the value never shown.
    expect(parseEnvFile('PINGONE_CLIENT_SECRET: Zx9-very-secret-value\n', 'x.env').problems).toEqual([
      '--settings: x.env line 1 (PINGONE_CLIENT_SECRET): expected KEY=value with "=" right after the name; the line is not shown, as it may hold a secret',
    ]);
  });
});
