/**
 * The import engine against scripted inventories: failures PingOne cannot have acted on are
 * not "unconfirmed", a rerun whose inventory read fails still reports every token, and a page
 * that fails mid-listing restarts the listing instead of ending it early.
 */
import { importTokens, type ImportContext, type InventoryApi } from '../../src/engine/import-batch.js';
import type { InventoryEntry } from '../../src/pingone/client.js';
import { ApiError, failureFromBody } from '../../src/pingone/errors.js';
import { Secret } from '../../src/seeds/secret.js';
import type { SeedToken } from '../../src/seeds/token.js';
import { assignContext } from '../support/assign-context.js';
import { MemoryDisk } from '../support/memory-journal.js';

const token = (i: number): SeedToken => ({
  index: i,
  serialNumber: `T${i}`,
  type: 'TOTP',
  otpLength: 6,
  hashAlgorithm: 'HmacSHA1',
  timeStep: 30,
  secret: Secret.own(Buffer.from('12345678901234567890')),
  warnings: [],
});
const limited = () => new ApiError(failureFromBody(429, { code: 'REQUEST_LIMITED' }, 10));
const down = () => new ApiError(failureFromBody(503, { code: 'UNEXPECTED_ERROR' }, undefined));

function context(inventory: InventoryApi, disk = new MemoryDisk()): ImportContext & { disk: MemoryDisk } {
  const journal = disk.open();
  const { api: _api, ...rest } = assignContext({} as never, journal);
  void _api;
  return { ...rest, maxAttempts: 2, inventory, jobSize: 10, dryRun: false, pollFirstMs: 1, pollMaxMs: 1, jobTimeoutMs: 1000, jobsInFlight: 2, disk };
}

function inventory(overrides: Partial<InventoryApi>): InventoryApi {
  return {
    createOathToken: async () => ({ id: 'x', serialNumber: 'x' }),
    createOathJob: async () => 'job-1',
    getOathJob: async () => ({ status: 'DONE', duplicates: [] }),
    oathToken: async () => undefined,
    oathTokensPage: async () => ({ entries: [] }),
    ...overrides,
  };
}

test('429s until attempts run out: FAILED RETRIES_EXHAUSTED, the claims cleared, no inventory read', async () => {
  let reads = 0;
  const ctx = context(
    inventory({
      createOathJob: async () => {
        throw limited();
      },
      oathToken: async () => {
        reads++;
        return undefined;
      },
      oathTokensPage: async () => {
        reads++;
        return { entries: [] };
      },
    }),
  );
  const results = await importTokens([token(1), token(2)], ctx);
  expect(results.map((r) => [r.outcome, r.errorCode])).toEqual([
    ['FAILED', 'RETRIES_EXHAUSTED'],
    ['FAILED', 'RETRIES_EXHAUSTED'],
  ]);
  expect(reads).toBe(0);
  await new Promise((r) => setImmediate(r));
  expect(ctx.disk.lines.filter((l) => l.includes('"e":"clear"'))).toHaveLength(2);
  expect(ctx.disk.open().lookupImport('T1')).toBeUndefined();
});

test('a rerun whose inventory cannot be read still reports every token, and crashes on none', async () => {
  const disk = new MemoryDisk();
  const first = disk.open();
  await first.importStarted('T1', 1, Date.now(), Date.now() + 30_000);
  disk.kill();
  const ctx = context(
    inventory({
      oathToken: async () => {
        throw down();
      },
      oathTokensPage: async () => {
        throw down();
      },
    }),
    disk,
  );
  const invalid: SeedToken = { ...token(3), secret: undefined, problem: { code: 'SERIAL_INVALID', message: 'bad' } };
  const results = await importTokens([token(1), token(2), invalid], ctx);
  expect(results.map((r) => [r.token.serialNumber, r.outcome])).toEqual([
    ['T1', 'UNCONFIRMED'],
    ['T2', 'NOT_ATTEMPTED'],
    ['T3', 'INVALID'],
  ]);
});

test('a page that fails in the middle of a listing is asked for again with its cursor, not the listing from the start: every token there is found', async () => {
  const tokens = Array.from({ length: 60 }, (_, i) => token(i + 1));
  const asked: Array<string | undefined> = [];
  const entries: InventoryEntry[] = tokens.map((t) => ({ id: `id-${t.serialNumber}`, serialNumber: t.serialNumber }));
  const ctx = context(
    inventory({
      oathTokensPage: async (url) => {
        asked.push(url);
        if (url === undefined) return { entries: entries.slice(0, 30), next: 'cursor-2' };
        if (asked.length === 2) throw down();
        return { entries: entries.slice(30) };
      },
    }),
  );
  const results = await importTokens(tokens, { ...ctx, dryRun: true });
  expect(asked).toEqual([undefined, 'cursor-2', 'cursor-2']);
  expect(results.every((r) => r.outcome === 'ALREADY_PRESENT')).toBe(true);
});
