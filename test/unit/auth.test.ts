import { TokenProvider } from '../../src/pingone/auth.js';
import { OPEN_GATE, newRequestStats } from '../../src/pingone/gate.js';
import type { HttpRequest, Transport } from '../../src/pingone/http.js';
import { StopError } from '../../src/errors.js';
import type { Connection } from '../../src/config.js';

const connection: Connection = {
  environmentId: '5d1e0000-0b1c-4b1a-9a11-5a0d5a0d5a0d',
  clientId: 'client id',
  clientSecret: 'p@ss:word',
  region: 'NA',
  apiUrl: 'http://127.0.0.1:1/v1',
  authUrl: 'http://127.0.0.1:1',
  tokenAuth: 'basic',
};

function tokenServer(answers?: Array<{ status: number; body: unknown }>): { transport: Transport; requests: HttpRequest[] } {
  const requests: HttpRequest[] = [];
  let n = 0;
  const transport: Transport = async (request) => {
    requests.push(request);
    await new Promise((r) => setTimeout(r, 5));
    const scripted = answers?.[n];
    n++;
    return scripted ?? { status: 200, body: { access_token: `tok-${n}`, token_type: 'Bearer', expires_in: 3600 } };
  };
  return { transport, requests };
}

describe('access tokens', () => {
  test('basic auth form-encodes id and secret before base64 (RFC 6749 §2.3.1)', async () => {
    const { transport, requests } = tokenServer();
    await new TokenProvider({ connection, transport, gate: OPEN_GATE, stats: newRequestStats(), timeoutMs: 1000 }).token();
    expect(requests[0]!.url).toBe('http://127.0.0.1:1/5d1e0000-0b1c-4b1a-9a11-5a0d5a0d5a0d/as/token');
    expect(requests[0]!.body).toBe('grant_type=client_credentials');
    expect(Buffer.from(requests[0]!.headers['authorization']!.slice(6), 'base64').toString()).toBe('client+id:p%40ss%3Aword');
  });

  test('post auth puts id and secret in the form', async () => {
    const { transport, requests } = tokenServer();
    await new TokenProvider({ connection: { ...connection, tokenAuth: 'post' }, transport, gate: OPEN_GATE, stats: newRequestStats(), timeoutMs: 1000 }).token();
    expect(requests[0]!.headers['authorization']).toBeUndefined();
    expect(new URLSearchParams(requests[0]!.body).get('client_secret')).toBe('p@ss:word');
  });

  test('a token is reused until shortly before it expires', async () => {
    let now = 0;
    const { transport, requests } = tokenServer();
    const tokens = new TokenProvider({ connection, transport, gate: OPEN_GATE, stats: newRequestStats(), timeoutMs: 1000, now: () => now });
    expect(await tokens.token()).toBe('tok-1');
    now = 3000_000;
    expect(await tokens.token()).toBe('tok-1');
    now = 3400_000; // within the 5-minute margin of the one-hour expiry
    expect(await tokens.token()).toBe('tok-2');
    expect(requests).toHaveLength(2);
  });

  test('a burst of 401s refreshes once for everybody', async () => {
    const { transport, requests } = tokenServer();
    const tokens = new TokenProvider({ connection, transport, gate: OPEN_GATE, stats: newRequestStats(), timeoutMs: 1000 });
    const first = await tokens.token();
    const refreshed = await Promise.all(Array.from({ length: 20 }, async () => (await tokens.replacement(first)).token));
    expect(new Set(refreshed)).toEqual(new Set(['tok-2']));
    // A late 401 for the old token does not refresh again.
    expect((await tokens.replacement(first)).token).toBe('tok-2');
    expect(requests).toHaveLength(2);
  });

  test('refused credentials stop the run, and the message names no secret', async () => {
    const { transport } = tokenServer([{ status: 401, body: { error: 'invalid_client', error_description: 'bad' } }]);
    const tokens = new TokenProvider({ connection, transport, gate: OPEN_GATE, stats: newRequestStats(), timeoutMs: 1000 });
    const error = await tokens.token().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StopError);
    expect((error as StopError).code).toBe('CREDENTIALS_REFUSED');
    expect((error as StopError).message).toMatch(/refused the worker app credentials/);
    expect((error as StopError).message).not.toContain('p@ss');
  });

  test('an unknown environment is named as such', async () => {
    const { transport } = tokenServer([{ status: 404, body: { code: 'NOT_FOUND' } }]);
    const error = await new TokenProvider({ connection, transport, gate: OPEN_GATE, stats: newRequestStats(), timeoutMs: 1000 }).token().catch((e: unknown) => e);
    expect((error as StopError).code).toBe('ENVIRONMENT_NOT_FOUND');
  });

  test('a 503 from the token endpoint is retried', async () => {
    const { transport, requests } = tokenServer([{ status: 503, body: {} }]);
    const tokens = new TokenProvider({ connection, transport, gate: OPEN_GATE, stats: newRequestStats(), timeoutMs: 1000, sleep: async () => undefined });
    expect(await tokens.token()).toBe('tok-2');
    expect(requests).toHaveLength(2);
  });
});
