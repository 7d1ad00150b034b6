/** The ledger (#21, item 1): where it lives, what it keeps, how it survives a crash and refuses damage. */
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger, LedgerCheck, LedgerDamagedError, LedgerNotes, ledgerPath, revokedMessage, stateDirectory } from '../../src/engine/ledger.js';

const ENV = '5d1e0000-0b1c-4b1a-9a11-5a0d5a0d5a0d';
const fresh = (): string => join(mkdtempSync(join(tmpdir(), 'oath-bulk-ledger-')), 'state');

test('the state directory: --state-dir, else OATH_BULK_STATE_DIR, else $XDG_STATE_HOME/oath-bulk, else ~/.local/state/oath-bulk', () => {
  expect(stateDirectory('/srv/state', { OATH_BULK_STATE_DIR: '/x', XDG_STATE_HOME: '/y' })).toBe('/srv/state');
  expect(stateDirectory(undefined, { OATH_BULK_STATE_DIR: '/x', XDG_STATE_HOME: '/y' })).toBe('/x');
  expect(stateDirectory(undefined, { XDG_STATE_HOME: '/y', HOME: '/home/ops' })).toBe('/y/oath-bulk');
  // XDG: a relative value is invalid and ignored.
  expect(stateDirectory('', { XDG_STATE_HOME: 'rel', HOME: '/home/ops' })).toBe('/home/ops/.local/state/oath-bulk');
});

test('one file per environment, private, with a header; facts read back by a second process; revoked until reinstated', async () => {
  const dir = fresh();
  const ledger = await Ledger.open(dir, ENV);
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  expect(statSync(ledgerPath(dir, ENV)).mode & 0o777).toBe(0o600);
  expect(JSON.parse(readFileSync(ledger.path, 'utf8').split('\n')[0]!)).toMatchObject({ ledger: 'oath-bulk', v: 1, environmentId: ENV });
  await ledger.append([
    { e: 'shipped', sn: 'T1', shipment: 'box-7.pskc.xml', validUntil: '2031-01-01T00:00:00Z' },
    { e: 'handed-out', sn: 'T1', user: 'u1', by: 'run 20261202T100000Z' },
    { e: 'revoking', sn: 'T2', reason: 'stolen', by: 'revoke 20261202T110000Z' },
  ]);
  // Another process (a cron run) reading the same ledger sees the same facts.
  const other = await Ledger.open(dir, ENV);
  expect(other.life('T1')).toMatchObject({ handedOut: { user: 'u1' }, shipment: { name: 'box-7.pskc.xml', validUntil: '2031-01-01T00:00:00Z' } });
  expect(other.revoked('T2')).toMatchObject({ state: 'revoking', reason: 'stolen' });
  expect(other.revoked('T1')).toBeUndefined();
  // A revoke made meanwhile by the first is seen by the second on refresh.
  await ledger.append([{ e: 'revoked', sn: 'T1', reason: 'lost' }]);
  expect(other.revoked('T1')).toBeUndefined();
  await other.refresh();
  expect(other.revoked('T1')).toMatchObject({ state: 'revoked', reason: 'lost' });
  expect(other.life('T1')!.handedOut).toBeUndefined();
  await other.append([{ e: 'reinstated', sn: 'T1', by: 'reinstate' }]);
  await ledger.refresh();
  expect(ledger.revoked('T1')).toBeUndefined();
  expect(readFileSync(ledger.path, 'utf8')).not.toMatch(/secret/);
});

test('a torn last line is ignored and cut by the next append; any other damage is refused, naming the line; another environment\'s ledger is refused', async () => {
  const dir = fresh();
  const ledger = await Ledger.open(dir, ENV);
  await ledger.append([{ e: 'revoked', sn: 'A1', reason: 'lost' }]);
  appendFileSync(ledger.path, '{"v":1,"at":"2026-12-02T00:00:00Z","e":"revoked","sn":"A2","rea');
  const reader = await Ledger.open(dir, ENV);
  expect(reader.revoked('A1')).toBeDefined();
  expect(reader.revoked('A2')).toBeUndefined();
  await reader.append([{ e: 'revoked', sn: 'A3', reason: 'stolen' }]);
  const lines = readFileSync(ledger.path, 'utf8').trimEnd().split('\n');
  expect(lines).toHaveLength(3);
  expect(lines.every((l) => JSON.parse(l))).toBe(true);
  expect((await Ledger.open(dir, ENV)).revoked('A3')).toMatchObject({ reason: 'stolen' });

  const damaged = fresh();
  const d = await Ledger.open(damaged, ENV);
  await d.append([{ e: 'revoked', sn: 'B1', reason: 'lost' }]);
  writeFileSync(d.path, readFileSync(d.path, 'utf8') + 'garbage\n' + JSON.stringify({ v: 1, at: 'x', e: 'revoked', sn: 'B2' }) + '\n');
  await expect(Ledger.open(damaged, ENV)).rejects.toThrow(new LedgerDamagedError(d.path, 3, 'not a ledger record'));
  await expect(Ledger.open(damaged, ENV)).rejects.toThrow(/line 3: not a ledger record: the ledger is damaged, so nothing that imports or assigns tokens runs until it is repaired/);

  const elsewhere = fresh();
  const e = await Ledger.open(elsewhere, ENV);
  const otherEnv = '11111111-2222-4333-8444-555555555555';
  writeFileSync(ledgerPath(elsewhere, otherEnv), readFileSync(e.path));
  await expect(Ledger.open(elsewhere, otherEnv)).rejects.toThrow(/line 1: the ledger of environment 5d1e0000-.*, not 11111111-/);
});

test('appends from two writers at once (a revoke by hand while cron assigns) interleave as whole lines, none lost', async () => {
  const dir = fresh();
  const a = await Ledger.open(dir, ENV);
  const b = await Ledger.open(dir, ENV);
  await Promise.all([
    ...Array.from({ length: 30 }, (_, i) => a.append([{ e: 'handed-out', sn: `H${i}`, user: `u${i}` }])),
    ...Array.from({ length: 30 }, (_, i) => b.append([{ e: 'revoked', sn: `R${i}`, reason: 'retired' }])),
  ]);
  const lines = readFileSync(a.path, 'utf8').trimEnd().split('\n');
  expect(lines).toHaveLength(61);
  const check = await Ledger.open(dir, ENV);
  for (let i = 0; i < 30; i++) {
    expect(check.life(`H${i}`)!.handedOut).toMatchObject({ user: `u${i}` });
    expect(check.revoked(`R${i}`)).toMatchObject({ reason: 'retired' });
  }
});

test('a command that assigns reads the ledger again at most once a second: a revoke made meanwhile is seen within that second', async () => {
  const dir = fresh();
  const cron = new LedgerCheck(await Ledger.open(dir, ENV), 50);
  const byHand = await Ledger.open(dir, ENV);
  expect(await cron.revoked('T9')).toBeUndefined();
  await byHand.append([{ e: 'revoking', sn: 'T9', reason: 'stolen', by: 'revoke 20261202T120000Z' }]);
  // Within the interval it answers from what it read (no read per row) …
  expect(await cron.revoked('T9')).toBeUndefined();
  await new Promise((r) => setTimeout(r, 60));
  // … and after it, from the file: "revoking" already blocks.
  const seen = await cron.revoked('T9');
  expect(seen).toMatchObject({ state: 'revoking', reason: 'stolen' });
  expect(revokedMessage('T9', seen!)).toMatch(/^token "T9" is being revoked since \d{4}-\d\d-\d\d \(stolen, revoke 20261202T120000Z\): a revoked token is never imported or assigned again; .*oath-bulk reinstate T9 --yes/);
});

test('facts noted as a run goes are appended in batches (a thousand, or a second), and all are there after flush', async () => {
  const dir = fresh();
  const ledger = await Ledger.open(dir, ENV);
  const warnings: string[] = [];
  const notes = new LedgerNotes(ledger, (m) => warnings.push(m), 1000, 60_000);
  for (let i = 0; i < 2500; i++) notes.note({ e: 'handed-out', sn: `N${i}`, user: `u${i}` });
  await notes.flush();
  const lines = readFileSync(ledger.path, 'utf8').trimEnd().split('\n');
  expect(lines).toHaveLength(2501);
  expect(warnings).toEqual([]);
  expect((await Ledger.open(dir, ENV)).life('N2499')!.handedOut).toMatchObject({ user: 'u2499' });
  // A fact that cannot be written is a warning, once; the command's outcome is PingOne's.
  // (A folder where the file was: unwritable whoever runs the test.)
  rmSync(ledger.path);
  mkdirSync(ledger.path);
  notes.note({ e: 'returned', sn: 'N1', user: 'u1' });
  await notes.flush();
  notes.note({ e: 'returned', sn: 'N2', user: 'u2' });
  await notes.flush();
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(/^the ledger .* could not record what this command did \(.*\): PingOne holds it; the ledger lacks it$/);
});

test('commands starting at once on a new machine write one header; looser modes are tightened; serials match whatever their case', async () => {
  const dir = fresh();
  const notices: string[] = [];
  const all = await Promise.all(Array.from({ length: 8 }, () => Ledger.open(dir, ENV, { notice: (m) => notices.push(m) })));
  expect(all.filter((l) => l.started)).toHaveLength(1);
  expect(readFileSync(all[0]!.path, 'utf8').trimEnd().split('\n')).toHaveLength(1);
  await all[3]!.append([{ e: 'revoked', sn: 'TK0002', reason: 'lost' }]);
  const again = await Ledger.open(dir, ENV);
  expect(again.revoked('tk0002')).toMatchObject({ reason: 'lost' });
  expect(notices).toEqual([]);
  chmodSync(dir, 0o755);
  chmodSync(again.path, 0o644);
  await Ledger.open(dir, ENV, { notice: (m) => notices.push(m) });
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  expect(statSync(again.path).mode & 0o777).toBe(0o600);
  expect(notices).toEqual([expect.stringMatching(/state directory .* was readable by others \(mode 755\): set to 700/), expect.stringMatching(/ledger .* was readable by others \(mode 644\): set to 600/)]);
  // A dry run on a machine without a ledger reads it as empty and creates nothing.
  const none = fresh();
  const dry = await Ledger.open(none, ENV, { create: false });
  expect(dry.revoked('X')).toBeUndefined();
  expect(existsSync(none)).toBe(false);
});

test('reads while this process appends (a run checks rows as its hand-outs are written) never misplace the next append', async () => {
  const dir = fresh();
  const ledger = await Ledger.open(dir, ENV);
  const appends = Array.from({ length: 6 }, (_, b) => ledger.append(Array.from({ length: 500 }, (_, i) => ({ e: 'handed-out' as const, sn: `C${b}x${i}`, user: `u${i}` }))));
  // The run's check and the appends' own reads, overlapping.
  const reads = (async () => {
    for (let i = 0; i < 300; i++) await Promise.all([ledger.refresh(), ledger.refresh(), new LedgerCheck(ledger, 0).revoked('C0x1')]);
  })();
  await Promise.all([...appends, reads]);
  const again = await Ledger.open(dir, ENV);
  expect(readFileSync(again.path, 'utf8').trimEnd().split('\n')).toHaveLength(3001);
  expect(again.life('C5x499')!.handedOut).toMatchObject({ user: 'u499' });
  expect(readFileSync(again.path).includes(0)).toBe(false);
});

test('a ledger of years (more than a read chunk) is read whole, line by line across the chunks; a run keeps only what keeps tokens out', async () => {
  const dir = fresh();
  const ledger = await Ledger.open(dir, ENV);
  for (let b = 0; b < 4; b++) await ledger.append(Array.from({ length: 4000 }, (_, i) => ({ e: 'handed-out' as const, sn: `Y${b}x${i}`, user: `user-${b}-${i}-with-a-longer-name`, by: `run 2026120${b}T000000Z`, file: 'shipment-with-a-long-name.csv' })));
  await ledger.append([{ e: 'revoked', sn: 'Y3x3999', reason: 'stolen' }]);
  expect(statSync(ledger.path).size).toBeGreaterThan(2 * (1 << 20));
  const all = await Ledger.open(dir, ENV);
  expect(all.life('Y0x0')!.handedOut).toMatchObject({ user: 'user-0-0-with-a-longer-name' });
  expect(all.life('Y3x3998')!.handedOut).toMatchObject({ user: 'user-3-3998-with-a-longer-name' });
  expect(all.revoked('Y3x3999')).toMatchObject({ reason: 'stolen' });
  const guard = await Ledger.open(dir, ENV, { keep: 'revocations' });
  expect(guard.life('Y0x0')).toBeUndefined();
  expect(guard.revoked('Y3x3999')).toMatchObject({ reason: 'stolen' });
});
