/**
 * inventory's judgement of one token (engine/inventory.ts classify): one state per token, the
 * first that holds, and never a state the facts do not prove.
 */
import { readFileSync } from 'node:fs';
import { classify, TOKEN_STATES, type Judgement } from '../../src/engine/inventory.js';
import type { InventoryEntry } from '../../src/pingone/client.js';

const NOW = Date.parse('2026-12-02T12:00:00Z');
const DAY = 86_400_000;
const free: InventoryEntry = { id: 't1', serialNumber: 'S1', type: 'TOTP', otpLength: 6 };
const paired: InventoryEntry = { ...free, device: { id: 'd1', userId: 'u1' } };
const j = (over: Partial<Judgement> = {}): Judgement => ({ now: NOW, expiringMs: 90 * DAY, ...over });
const shipped = (days: number) => ({ shipment: { name: 'box.xml', at: '2026-01-01T00:00:00Z', validUntil: new Date(NOW + days * DAY).toISOString(), manufacturer: 'M', model: 'X' } });
const revoked = { revoked: { state: 'revoked' as const, reason: 'lost' as const, at: '2026-11-01T00:00:00Z', by: 'revoke 1' } };
const out = { handedOut: { user: 'u9', at: '2026-10-01T00:00:00Z', by: 'run 1' } };

test.each([
  ['a free token', free, j(), 'FREE', undefined],
  ['a free token handed out and never returned', free, j({ life: out }), 'UNACCOUNTED', 'HANDED_OUT_NOT_RETURNED'],
  ['a free token past its validity', free, j({ life: shipped(-1) }), 'EXPIRED', 'VENDOR_EXPIRED'],
  ['a free token expiring within the window', free, j({ life: shipped(30) }), 'EXPIRING', 'VENDOR_EXPIRES_SOON'],
  ['a free token expiring after the window', free, j({ life: shipped(120) }), 'FREE', undefined],
  ['a revoked token still present (paired)', paired, j({ life: revoked, holder: { exists: true, enabled: true } }), 'REVOKED_PRESENT', 'REVOKED_IN_LEDGER'],
  ['a revoked token still present (free)', free, j({ life: revoked }), 'REVOKED_PRESENT', 'REVOKED_IN_LEDGER'],
  ['a token on an enabled user', paired, j({ holder: { exists: true, enabled: true } }), 'ASSIGNED', undefined],
  ['a token on a user PingOne does not say is enabled or not', paired, j({ holder: { exists: true } }), 'ASSIGNED', undefined],
  ['a token on a deleted user', paired, j({ holder: { exists: false } }), 'ORPHANED', 'USER_DELETED'],
  ['a token on a disabled user (never orphaned)', paired, j({ holder: { exists: true, enabled: false } }), 'HOLDER_DISABLED', 'USER_DISABLED'],
  ['a token on a deleted user, expired too', paired, j({ holder: { exists: false }, life: shipped(-5) }), 'ORPHANED', 'USER_DELETED'],
  ['a token whose user read failed', paired, j({ holder: { failed: 'HTTP 503' } }), 'UNKNOWN', 'USER_READ_FAILED'],
  ['a token whose user was never read (the reading stopped)', paired, j(), 'UNKNOWN', 'USER_NOT_READ'],
  ['a device naming no user', { ...free, device: { id: 'd1' } }, j(), 'UNKNOWN', 'DEVICE_WITHOUT_USER'],
  ['a device waiting for its first code', paired, j({ holder: { exists: true, enabled: true }, device: { status: 'ACTIVATION_REQUIRED', from: 'read' } }), 'ACTIVATION_PENDING', 'WAITING_FOR_FIRST_CODE'],
  ['a device whose read failed', paired, j({ holder: { exists: true, enabled: true }, device: { failed: 'HTTP 500' } }), 'UNKNOWN', 'DEVICE_READ_FAILED'],
  ['an active device expiring', paired, j({ holder: { exists: true, enabled: true }, device: { status: 'ACTIVE', from: 'journal' }, life: shipped(10) }), 'EXPIRING', 'VENDOR_EXPIRES_SOON'],
  ['an assigned token past its validity', paired, j({ holder: { exists: true, enabled: true }, life: shipped(-1) }), 'EXPIRED', 'VENDOR_EXPIRED'],
] as const)('%s: %s', (_name, entry, judgement, state, problem) => {
  const row = classify(entry, judgement);
  expect(row.state).toBe(state);
  expect(row.problem).toBe(problem);
  if (problem) expect(row.message).toBeTruthy();
});

test('an UNACCOUNTED row names the last holder the ledger knows, so that unassign can record the return', () => {
  expect(classify(free, j({ life: out }))).toMatchObject({ userID: 'u9', deviceId: undefined });
});

test('the shipment, its model and validity come from the ledger; importedAt from PingOne when it says', () => {
  const row = classify({ ...paired, createdAt: '2026-02-02T00:00:00Z' }, j({ holder: { exists: true, enabled: true, username: 'ann' }, life: shipped(400) }));
  expect(row).toMatchObject({ shipment: 'box.xml', manufacturer: 'M', model: 'X', importedAt: '2026-02-02T00:00:00Z', username: 'ann', state: 'ASSIGNED' });
  expect(classify(paired, j({ holder: { exists: true }, life: shipped(400) })).importedAt).toBe('2026-01-01T00:00:00Z');
});

test('--state takes every state, as the help lists them', () => {
  const cli = readFileSync('src/cli.ts', 'utf8');
  const names = /const TOKEN_STATE_NAMES = '([^']+)'/.exec(cli)![1]!.split('|');
  expect(names).toEqual(TOKEN_STATES.map((s) => s.toLowerCase()));
});

test('the report lists the most urgent tokens first, however they arrive: 600 EXPIRED free tokens first, then 3 ORPHANED', async () => {
  const { UrgentList } = await import('../../src/report/inventory-report.js');
  const list = new UrgentList(['ORPHANED', 'UNACCOUNTED', 'REVOKED_PRESENT', 'EXPIRED', 'UNKNOWN'], 500);
  for (let i = 0; i < 600; i++) list.add({ serialNumber: `E${i}`, state: 'EXPIRED' });
  for (let i = 0; i < 3; i++) list.add({ serialNumber: `O${i}`, state: 'ORPHANED' });
  expect(list.shown.slice(0, 3).map((t) => t.serialNumber)).toEqual(['O0', 'O1', 'O2']);
  expect(list.shown).toHaveLength(500);
  expect(list.more).toBe(103);
});
