/**
 * inventory's reading (engine/inventory.ts readInventory) against a fake PingOne: what it asks
 * for, and what it makes of a stop, of a journal's stale status, of users it cannot change.
 */
import { readInventory, type InventoryApi, type InventoryReadContext, type InventoryRow } from '../../src/engine/inventory.js';
import { RequestAborted } from '../../src/pingone/http.js';
import type { InventoryEntry, User } from '../../src/pingone/client.js';

const uid = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`.replace(/^0/, '1');
const paired = (n: number): InventoryEntry => ({ id: `t${n}`, serialNumber: `S${n}`, device: { id: `d${n}`, userId: uid(n) } });

function fake(entries: InventoryEntry[], users: User[], over: Partial<InventoryApi> = {}): InventoryApi & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    oathTokensPage: async () => {
      calls.push('page');
      return { entries, count: entries.length };
    },
    usersPage: async () => {
      calls.push('directory');
      return { users, count: users.length };
    },
    getUser: async (id) => {
      calls.push(`user ${id}`);
      return users.find((u) => u.id === id);
    },
    listDevices: async (id) => {
      calls.push(`devices ${id}`);
      const n = entries.find((e) => e.device?.userId === id)!;
      return [{ id: n.device!.id, type: 'OATH_TOKEN', status: 'ACTIVE' }];
    },
    ...over,
  };
}

function context(api: InventoryApi, over: Partial<InventoryReadContext> = {}): InventoryReadContext & { rows: InventoryRow[] } {
  const rows: InventoryRow[] = [];
  return {
    rows,
    api,
    concurrency: 4,
    maxAttempts: 2,
    backoff: { baseMs: 1, capMs: 1 },
    sleep: async () => undefined,
    stopping: new AbortController().signal,
    hard: new AbortController().signal,
    life: () => undefined,
    journal: new Map(),
    readDevices: false,
    reused: new Map(),
    unlisted: new Set(),
    now: Date.now(),
    expiringMs: 0,
    emit: async (row) => void rows.push(row),
    ...over,
  };
}

test('a stop while the directory is read: no crash; the tokens not joined are UNKNOWN, never guessed', async () => {
  const stop = new AbortController();
  const api = fake([paired(1), paired(2), paired(3)], [], {
    usersPage: async () => {
      stop.abort(new Error('SIGINT'));
      throw new RequestAborted(false);
    },
  });
  const ctx = context(api, { stopping: stop.signal });
  const reading = await readInventory(ctx);
  expect(reading.complete).toBe(true);
  expect(ctx.rows.map((r) => [r.state, r.problem])).toEqual([['UNKNOWN', 'USER_NOT_READ'], ['UNKNOWN', 'USER_NOT_READ'], ['UNKNOWN', 'USER_NOT_READ']]);
});

test('--device-status reads a device the journal last saw waiting for its code (the user may have signed in since), not one it saw ACTIVE', async () => {
  const users = [1, 2].map((n) => ({ id: uid(n), enabled: true }));
  const api = fake([paired(1), paired(2)], users);
  const ctx = context(api, { readDevices: true, journal: new Map([['d1', 'ACTIVATION_REQUIRED'], ['d2', 'ACTIVE']]) });
  await readInventory(ctx);
  expect(api.calls.filter((c) => c.startsWith('devices'))).toEqual([`devices ${uid(1)}`]);
  expect(ctx.rows.find((r) => r.serialNumber === 'S1')).toMatchObject({ state: 'ASSIGNED', deviceStatus: 'ACTIVE' });
});

test('--device-status reads no device whose status cannot change the token\'s state: a disabled user\'s, a deleted user\'s', async () => {
  const api = fake([paired(1), paired(2), paired(3)], [{ id: uid(1), enabled: false }, { id: uid(2), enabled: true }]);
  const ctx = context(api, { readDevices: true });
  await readInventory(ctx);
  expect(api.calls.filter((c) => c.startsWith('devices'))).toEqual([`devices ${uid(2)}`]);
  expect(ctx.rows.map((r) => r.state).sort()).toEqual(['ASSIGNED', 'HOLDER_DISABLED', 'ORPHANED']);
});

test('users a complete directory did not list are remembered: a rerun reads them one by one, without the directory again', async () => {
  const unlisted: string[] = [];
  const first = fake([paired(1), paired(2), paired(3)], [{ id: uid(1), enabled: true }]);
  const ctx = context(first, { onUnlisted: (id: string) => void unlisted.push(id) });
  await readInventory(ctx);
  expect(first.calls.filter((c) => c === 'directory')).toHaveLength(1);
  expect(unlisted.sort()).toEqual([uid(2), uid(3)]);
  const rerun = fake([paired(1), paired(2), paired(3)], [{ id: uid(1), enabled: true }]);
  await readInventory(context(rerun, { reused: new Map([[uid(1), { exists: true, enabled: true }]]), unlisted: new Set(unlisted) }));
  expect(rerun.calls.filter((c) => c === 'directory')).toHaveLength(0);
  expect(rerun.calls.filter((c) => c.startsWith('user')).sort()).toEqual([`user ${uid(2)}`, `user ${uid(3)}`]);
});
