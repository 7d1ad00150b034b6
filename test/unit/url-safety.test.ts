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

  test('ten thousand random ids, half of them well-formed: each is refused or stays on the devices path, and most reach the check', () => {
    const alphabet = '0123456789abcdef-/.%?#&=\\ :@ABCDEF\u0000\u2028';
    const hex = '0123456789abcdefABCDEF';
    let seed = 7;
    const next = () => (seed = (seed * 16807) % 2147483647);
    const pick = (chars: string, n: number) => Array.from({ length: n }, () => chars[next() % chars.length]).join('');
    let reached = 0;
    for (let i = 0; i < 10_000; i++) {
      // Well-formed ids in any case, ids with one character swapped for a dangerous one, and noise.
      const uuid = [8, 4, 4, 4, 12].map((n) => pick(hex, n)).join('-');
      const kind = next() % 3;
      const id = kind === 0 ? uuid : kind === 1 ? uuid.slice(0, next() % 36) + pick(alphabet, 1) + uuid.slice((next() % 36) + 1) : pick(alphabet, 30 + (next() % 12));
      const device = next() % 2 === 0 ? undefined : next() % 2 === 0 ? pick('abcdef0123456789-', 36) : pick(alphabet, 8);
      let url: string;
      try {
        url = client.devicesUrl(id, device);
      } catch {
        continue;
      }
      reached++;
      const parsed = new URL(url);
      expect(parsed.origin).toBe('https://api.pingone.com');
      expect(parsed.search).toBe('');
      expect(parsed.hash).toBe('');
      expect(parsed.pathname).toMatch(DEVICES);
    }
    expect(reached).toBeGreaterThan(2500);
  });
});

describe('collection pages whose next link names another host (a gateway, a custom domain)', () => {
  const pages = (next: string) => {
    const sent: string[] = [];
    const transport = async (request: { url: string }) => {
      sent.push(request.url);
      if (request.url.includes('oauth') || request.url.includes('/as/token')) return { status: 200, body: { access_token: 't', expires_in: 3600, token_type: 'Bearer' } };
      const first = !request.url.includes('cursor=');
      return { status: 200, body: { _embedded: { oathTokens: [{ id: first ? 'a' : 'b', serialNumber: first ? 'A1' : 'B1' }] }, count: 2, ...(first ? { _links: { next: { href: next } } } : {}) } };
    };
    const c = new PingOneClient({ connection, transport: transport as never, tokens: { token: async () => 't', replacement: async () => ({ token: 't', fresh: true }) } as never, gate: OPEN_GATE, stats: newRequestStats(), timeoutMs: 1 });
    return { c, sent };
  };

  test('the same collection on another host: its cursor is followed on our own host, never there', async () => {
    const { c, sent } = pages('https://gateway.example.com/v1/environments/5d1e0000-0b1c-4b1a-9a11-5a0d5a0d5a0d/oathTokens?limit=1000&expand=devices&cursor=2');
    const first = await c.oathTokensPage(undefined);
    expect(first.next).toBe('https://api.pingone.com/v1/environments/5d1e0000-0b1c-4b1a-9a11-5a0d5a0d5a0d/oathTokens?limit=1000&expand=devices&cursor=2');
    const second = await c.oathTokensPage(first.next);
    expect(second.entries.map((e) => e.serialNumber)).toEqual(['B1']);
    expect(sent.every((u) => u.startsWith('https://api.pingone.com/'))).toBe(true);
  });

  test('a link to anything else ends the listing with an error, never a short listing taken for the whole; the page itself is kept', async () => {
    const { c, sent } = pages('https://elsewhere.example.com/steal?cursor=2');
    const page = await c.oathTokensPage(undefined);
    expect(page.entries.map((e) => e.serialNumber)).toEqual(['A1']);
    expect(page.next).toBeUndefined();
    expect(page.refused?.message).toMatch(/next page/);
    await expect(c.oathToken('B1')).rejects.toThrow(/next page/);
    expect(sent.some((u) => u.includes('elsewhere'))).toBe(false);
  });
});
