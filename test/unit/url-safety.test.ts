import { PingOneClient } from '../../src/pingone/client.js';
import { TokenProvider } from '../../src/pingone/auth.js';
import { OPEN_GATE, newRequestStats } from '../../src/pingone/gate.js';
import type { Connection } from '../../src/config.js';

const connection: Connection = {
  environmentId: '5d1e0000-0b1c-4b1a-9a11-5a0d5a0d5a0d',
  clientId: 'c',
  clientSecret: 's',
  region: 'NA',
  apiUrl: 'https://api.pingone.com/v1',
  authUrl: 'https://auth.pingone.com',
  tokenAuth: 'basic',
};
const transport = async () => ({ status: 500, body: {} });
const client = new PingOneClient({
  connection,
  transport,
  tokens: new TokenProvider({ connection, transport, gate: OPEN_GATE, stats: newRequestStats(), timeoutMs: 1 }),
  gate: OPEN_GATE,
  stats: newRequestStats(),
  timeoutMs: 1,
});
const DEVICES = /^\/v1\/environments\/5d1e0000-0b1c-4b1a-9a11-5a0d5a0d5a0d\/users\/[0-9a-f-]{36}\/devices(\/[A-Za-z0-9-]+)?$/i;

describe('URLs built from input', () => {
  test('a user id becomes exactly one path segment under the environment', () => {
    expect(new URL(client.devicesUrl('5F8C2A4E-1b7d-4c3e-9a2f-0d6e8b1c7a93')).pathname).toBe(
      '/v1/environments/5d1e0000-0b1c-4b1a-9a11-5a0d5a0d5a0d/users/5F8C2A4E-1b7d-4c3e-9a2f-0d6e8b1c7a93/devices',
    );
  });

  test.each(['../x', '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93/..', '%2e%2e', '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93?a', '', ' 5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93'])('%j is refused', (id) => {
    expect(() => client.devicesUrl(id)).toThrow(TypeError);
  });

  test('ten thousand random strings either are refused or stay on the devices path', () => {
    const alphabet = '0123456789abcdef-/.%?#&=\\ :@ABCDEF\u0000\u2028';
    let seed = 7;
    const next = () => (seed = (seed * 16807) % 2147483647);
    for (let i = 0; i < 10_000; i++) {
      const length = 30 + (next() % 12);
      const id = Array.from({ length }, () => alphabet[next() % alphabet.length]).join('');
      const device = next() % 2 === 0 ? undefined : Array.from({ length: 8 }, () => alphabet[next() % alphabet.length]).join('');
      let url: string;
      try {
        url = client.devicesUrl(id, device);
      } catch {
        continue;
      }
      const parsed = new URL(url);
      expect(parsed.origin).toBe('https://api.pingone.com');
      expect(parsed.search).toBe('');
      expect(parsed.pathname).toMatch(DEVICES);
    }
  });
});
