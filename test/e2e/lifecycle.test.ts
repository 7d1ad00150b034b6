/**
 * A token's life after the rollout (#21), end to end: the real CLI against the sandbox over
 * loopback, the ledger on disk. A lost token stays lost through the next morning's cron run and
 * any later shipment; a stolen box is revoked from its seed file; a revoke killed mid-job
 * neither lets its tokens back in nor revokes anything twice.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import { useSandbox } from '../support/sandbox.js';
import { BIN, exited, runCli, sandboxEnv, startCli, stateDirOf, tempDir, userId } from '../support/cli.js';
import { spawn } from 'node:child_process';
import { encryptedPskc, SHIPMENT_KEY, type PskcToken } from '../support/pskc-writer.js';
import { hotp } from '../support/hotp.js';

const box = useSandbox();

const FAST = ['--rate', '200', '--backoff-base', '20', '--no-progress'];

/** The newest results file of `prefix` in `out` (a folder run prints no results line). */
function newest(out: string, prefix: string): Array<Record<string, string>> {
  const name = readdirSync(out).filter((f) => f.startsWith(prefix) && f.endsWith('.results.csv')).sort().pop()!;
  return parse(readFileSync(join(out, name), 'utf8'), { columns: true }) as Array<Record<string, string>>;
}

/** The results a command wrote, from the path its summary prints. */
function resultsOf(stdout: string): Array<Record<string, string>> {
  const path = /\n {2}results {2}(\S+)/.exec(stdout)?.[1];
  if (!path) throw new Error(`no results line in: ${stdout}`);
  return parse(readFileSync(path, 'utf8'), { columns: true }) as Array<Record<string, string>>;
}

function tokens(prefix: string, n: number): PskcToken[] {
  return Array.from({ length: n }, (_, i) => ({ serial: `${prefix}${String(i + 1).padStart(4, '0')}`, type: 'HOTP' as const, secretHex: randomBytes(20).toString('hex'), counter: 0 }));
}

/** A shipment in `folder`: `<name>.csv` giving token i to user firstUser+i, and `<name>.pskc.xml` beside it. */
function dropShipment(folder: string, name: string, list: readonly PskcToken[], firstUser: number, assign = list.length): void {
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, `${name}.pskc.xml`), encryptedPskc(list, SHIPMENT_KEY), { mode: 0o600 });
  writeFileSync(join(folder, `${name}.csv`), 'userID,serialNumber\n' + list.slice(0, assign).map((t, i) => `${userId(firstUser + i)},${t.serial}`).join('\n') + '\n');
}

function ledgerLines(): Array<Record<string, unknown>> {
  const path = join(stateDirOf(box.sandbox), `${box.sandbox.environmentId}.ledger.jsonl`);
  return existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l) as Record<string, unknown>) : [];
}

function setUp(): { dir: string; folder: string; out: string; key: string; env: Record<string, string> } {
  box.sandbox.configure({ inventory: 'imported', jobDelayMs: 20 });
  const dir = tempDir('oath-bulk-life-');
  const key = join(dir, 'vendor.key');
  writeFileSync(key, SHIPMENT_KEY.toString('hex') + '\n', { mode: 0o600 });
  return { dir, folder: join(dir, 'drop'), out: join(dir, 'reports'), key, env: sandboxEnv(box.sandbox) };
}

test('a lost token stays lost: revoked, then the next morning\'s folder run creates and imports nothing, and a new shipment naming it fails TOKEN_REVOKED', async () => {
  const { dir, folder, out, key, env } = setUp();
  const box1 = tokens('LOST', 3);
  dropShipment(folder, 'box1', box1, 1);
  const cron = ['run', folder, '--psk-file', key, '--out-dir', out, ...FAST];
  expect((await runCli(cron, env)).code).toBe(0);
  expect(box.sandbox.allDevices()).toHaveLength(3);
  // The ledger knows where each token went, and which box it came in.
  expect(ledgerLines().filter((f) => f['e'] === 'handed-out').map((f) => [f['sn'], f['user']])).toEqual(box1.map((t, i) => [t.serial, userId(1 + i)]));
  expect(ledgerLines().filter((f) => f['e'] === 'shipped').map((f) => f['shipment'])).toEqual(['box1.pskc.xml', 'box1.pskc.xml', 'box1.pskc.xml']);

  // User 2 lost LOST0002.
  const lost = join(dir, 'lost.csv');
  writeFileSync(lost, 'serialNumber\nLOST0002\n');
  const revoke = await runCli(['revoke', lost, '--reason', 'lost', '--yes', '--out-dir', out, ...FAST], env);
  expect({ code: revoke.code, stderr: revoke.stderr }).toEqual({ code: 0, stderr: '' });
  expect(resultsOf(revoke.stdout)).toEqual([expect.objectContaining({ serialNumber: 'LOST0002', outcome: 'REVOKED', userID: userId(2), reason: 'lost' })]);
  expect(box.sandbox.devicesOf(userId(2))).toHaveLength(0);
  expect(box.sandbox.inventory.has('LOST0002')).toBe(false);
  expect(ledgerLines().filter((f) => f['sn'] === 'LOST0002').map((f) => f['e'])).toEqual(['shipped', 'handed-out', 'revoking', 'revoking', 'revoked']);
  expect(revoke.stdout).toMatch(/next: the tokens are out of service for good/);

  // The next morning: nothing created, nothing imported, and the line says why.
  const created = box.sandbox.inventory.created;
  const morning = await runCli(cron, env);
  expect(morning.code).toBe(0);
  expect(morning.stdout).toMatch(/box1\.csv: nothing to do \(3 rows finished earlier; 1 revoked since \(LOST0002 \d{4}-\d\d-\d\d lost\)/);
  expect(box.sandbox.inventory.created).toBe(created);
  expect(box.sandbox.allDevices()).toHaveLength(2);

  // The same file by hand, seeds and all: the row is final, "revoked since", not a failure.
  const byHand = await runCli(['run', join(folder, 'box1.csv'), '--seeds', join(folder, 'box1.pskc.xml'), '--psk-file', key, '--out-dir', out, ...FAST], env);
  expect(byHand.code).toBe(0);
  const row = resultsOf(byHand.stdout).find((r) => r['serialNumber'] === 'LOST0002')!;
  expect(row).toMatchObject({ outcome: 'CREATED', deviceStatus: '', message: expect.stringMatching(/revoked since \d{4}-\d\d-\d\d \(lost, revoke \d{8}T\d{6}Z\)/) });
  expect(JSON.parse(readFileSync(/\n {2}summary {2}(\S+)/.exec(byHand.stdout)![1]!, 'utf8'))).toMatchObject({ ledger: { revokedSince: 1, tokenRevoked: 0 }, thisRun: { created: 0, imported: 0 } });

  // A new box whose file names the lost serial again, for another user: refused, nothing imported.
  dropShipment(folder, 'box2', [...tokens('NEW', 1), box1[1]!], 7);
  const later = await runCli(cron, env);
  expect(later.code).toBe(1);
  expect(later.stdout).toMatch(/box2\.csv: CREATED 1 · FAILED 1 · exit 1/);
  const refused = newest(out, 'box2.').find((r) => r['serialNumber'] === 'LOST0002')!;
  expect(refused).toMatchObject({ outcome: 'FAILED', errorCode: 'TOKEN_REVOKED', userID: userId(8), attempts: '0', message: expect.stringMatching(/was revoked on \d{4}-\d\d-\d\d \(lost, revoke .*never imported or assigned again.*reinstate LOST0002 --yes/) });
  const seeds = readFileSync(join(out, readdirSync(out).filter((f) => f.startsWith('box2.') && f.endsWith('.seeds.csv')).sort().pop()!), 'utf8');
  expect(seeds).toMatch(/LOST0002,HOTP,6,FAILED,,TOKEN_REVOKED/);
  expect(box.sandbox.inventory.has('LOST0002')).toBe(false);
  expect(box.sandbox.inventory.created).toBe(created + 1);
  expect(box.sandbox.devicesOf(userId(8))).toHaveLength(0);

  // Revoked by mistake: reinstate takes --yes, records the reversal, and the serial may be imported again.
  const unsure = await runCli(['reinstate', 'LOST0002'], env);
  expect(unsure.code).toBe(2);
  const reinstated = await runCli(['reinstate', 'LOST0002', '--yes'], env);
  expect(reinstated.code).toBe(0);
  expect(reinstated.stdout).toMatch(/LOST0002: reinstated \(it was revoked since \d{4}-\d\d-\d\d, lost/);
  expect(ledgerLines().pop()).toMatchObject({ e: 'reinstated', sn: 'LOST0002' });
  const back = await runCli(['run', folder, '--psk-file', key, '--out-dir', out, ...FAST], env);
  expect(back.code).toBe(0);
  expect(box.sandbox.devicesOf(userId(8)).map((d) => d.serialNumber)).toEqual(['LOST0002']);
});

test('a stolen box revoked from its seed file: the dry run names the users and writes nothing; then paired and free tokens go, and a later import imports none', async () => {
  const { folder, out, key, env } = setUp();
  const stolen = tokens('BOX', 4);
  // Two of the four were handed out before the box went missing; user 21 has another device too.
  dropShipment(folder, 'box3', stolen, 20, 2);
  expect((await runCli(['run', join(folder, 'box3.csv'), '--seeds', join(folder, 'box3.pskc.xml'), '--psk-file', key, '--out-dir', out, ...FAST], env)).code).toBe(0);
  expect((await runCli(['import', join(folder, 'box3.pskc.xml'), '--psk-file', key, '--out-dir', out, ...FAST], env)).code).toBe(0);
  box.sandbox.seedDevice(userId(21), 'OTHER1');
  const seedFile = join(folder, 'box3.pskc.xml');
  const before = { devices: box.sandbox.allDevices().length, ledger: ledgerLines().length, creates: box.sandbox.stats.createsReceived };

  // No key is needed to revoke a box: its serials are enough.
  const dry = await runCli(['revoke', seedFile, '--reason', 'stolen', '--dry-run', '--out-dir', out, ...FAST], env);
  expect(dry.code).toBe(0);
  const plan = resultsOf(dry.stdout);
  expect(plan.map((r) => [r['serialNumber'], r['outcome'], r['userID']])).toEqual([
    ['BOX0001', 'WOULD_REVOKE', userId(20)],
    ['BOX0002', 'WOULD_REVOKE', userId(21)],
    ['BOX0003', 'WOULD_REVOKE', ''],
    ['BOX0004', 'WOULD_REVOKE', ''],
  ]);
  expect(plan[0]!['message']).toMatch(/left with NO MFA device/);
  expect(plan[1]!['message']).not.toMatch(/NO MFA device/);
  expect(dry.stdout).toMatch(/would take a device from 2 users/);
  expect(dry.stdout).toMatch(new RegExp(`LEFT WITH NO MFA DEVICE: 1 user \\(${userId(20)}\\)`));
  expect(dry.stdout).toMatch(/next: to revoke them: oath-bulk revoke .* --yes/);
  // Zero writes: only reads were sent, nothing changed in PingOne or the ledger.
  expect(box.sandbox.allDevices()).toHaveLength(before.devices);
  expect(ledgerLines()).toHaveLength(before.ledger);
  expect(box.sandbox.stats.createsReceived).toBe(before.creates);
  expect(box.sandbox.inventory.revokesSent.size).toBe(0);

  // --max-users refuses a run that would touch more users, before anything is sent.
  const capped = await runCli(['revoke', seedFile, '--reason', 'stolen', '--yes', '--max-users', '1', '--out-dir', out, ...FAST], env);
  expect(capped.code).toBe(2);
  expect(capped.stderr).toMatch(/would take devices from 2 users, more than --max-users 1: nothing was sent/);
  expect(box.sandbox.inventory.revokesSent.size).toBe(0);
  // Off a terminal, --yes is required.
  const unconfirmed = await runCli(['revoke', seedFile, '--reason', 'stolen', '--out-dir', out, ...FAST], env);
  expect(unconfirmed.code).toBe(2);
  expect(unconfirmed.stderr).toMatch(/pass --yes to confirm when not at a terminal/);

  const real = await runCli(['revoke', seedFile, '--reason', 'stolen', '--yes', '--max-users', '2', '--out-dir', out, ...FAST], env);
  expect({ code: real.code, stderr: real.stderr }).toEqual({ code: 0, stderr: '' });
  expect(resultsOf(real.stdout).map((r) => r['outcome'])).toEqual(['REVOKED', 'REVOKED', 'REVOKED', 'REVOKED']);
  expect(stolen.every((t) => !box.sandbox.inventory.has(t.serial))).toBe(true);
  expect(box.sandbox.allDevices().map((d) => d.serialNumber)).toEqual(['OTHER1']);

  // The same import again: its rows finished earlier, revoked since; nothing sent.
  const again = await runCli(['import', seedFile, '--psk-file', key, '--out-dir', out, ...FAST], env);
  expect(again.code).toBe(0);
  expect(resultsOf(again.stdout).every((r) => /revoked since/.test(r['message']!))).toBe(true);
  // Imported anew, by a journal that never saw them: refused, every one.
  const fresh = await runCli(['import', seedFile, '--psk-file', key, '--out-dir', join(out, 'elsewhere'), ...FAST], env);
  expect(fresh.code).toBe(1);
  expect(resultsOf(fresh.stdout).map((r) => [r['outcome'], r['errorCode']])).toEqual(Array(4).fill(['FAILED', 'TOKEN_REVOKED']));
  expect(stolen.every((t) => !box.sandbox.inventory.has(t.serial))).toBe(true);
  // Nothing of the seeds reached the ledger.
  const ledgerText = readFileSync(join(stateDirOf(box.sandbox), `${box.sandbox.environmentId}.ledger.jsonl`), 'utf8');
  for (const t of stolen) expect(ledgerText).not.toContain(t.secretHex);

  // Another state directory (a cron account with another HOME): the new, empty ledger is said loudly.
  const started = await runCli(['import', seedFile, '--psk-file', key, '--out-dir', join(out, 'x'), ...FAST], { ...env, OATH_BULK_STATE_DIR: join(tempDir(), 'elsewhere') });
  expect(started.stderr).toMatch(/warning: a new, empty ledger was started at .*: tokens revoked with another state directory are not known to this one/);
  expect(started.stdout).toMatch(/ledger .* \(new: it knows of no revoked token\)/);

  // A damaged ledger (not a torn last line) stops whatever imports or assigns, naming the line.
  const ledgerFile = join(stateDirOf(box.sandbox), `${box.sandbox.environmentId}.ledger.jsonl`);
  const lines = ledgerText.split('\n');
  writeFileSync(ledgerFile, [...lines.slice(0, 3), 'not a fact', ...lines.slice(3)].join('\n'));
  const refused = await runCli(['import', seedFile, '--psk-file', key, '--out-dir', out, ...FAST], env);
  expect({ code: refused.code, said: /ledger\.jsonl: line 4: not a ledger record: the ledger is damaged/.test(refused.stderr) }).toEqual({ code: 2, said: true });
});

test('a revoke killed mid-job: the serials stay out of a folder run at once; the rerun follows the job, revokes nothing twice and reports every serial', async () => {
  const { dir, folder, out, key, env } = setUp();
  const list = tokens('KILL', 5);
  dropShipment(folder, 'box4', list, 30);
  expect((await runCli(['run', folder, '--psk-file', key, '--out-dir', out, ...FAST], env)).code).toBe(0);
  // Revoke jobs that take their time: the kill comes while they run, before any read-back.
  box.sandbox.configure({ jobDelayMs: 1500 });
  const file = join(dir, 'gone.csv');
  writeFileSync(file, 'serialNumber\n' + list.map((t) => t.serial).join('\n') + '\n');
  const child = startCli(['revoke', file, '--reason', 'lost', '--yes', '--job-size', '2', '--concurrency', '1', '--out-dir', out, ...FAST], env);
  const deadline = Date.now() + 20_000;
  // Killed once the first job is sent (its id in the ledger), before it ends.
  while (!ledgerLines().some((f) => typeof f['job'] === 'string') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGKILL');
  await exited(child);
  const marked = ledgerLines().filter((f) => f['e'] === 'revoking').map((f) => f['sn']);
  expect(marked).toEqual(expect.arrayContaining(['KILL0001', 'KILL0002']));
  expect(ledgerLines().some((f) => f['e'] === 'revoked')).toBe(false);

  // A new shipment giving a marked serial to someone else, run at once: refused.
  dropShipment(folder, 'box5', [list[0]!], 40);
  const cron = await runCli(['run', folder, '--psk-file', key, '--out-dir', out, ...FAST], env);
  expect(cron.code).toBe(1);
  expect(cron.stdout).toMatch(/box5\.csv: FAILED 1 · exit 1/);
  expect(box.sandbox.devicesOf(userId(40))).toHaveLength(0);

  // The rerun, while the killed run's job may still run: followed first, nothing sent twice.
  const rerun = await runCli(['revoke', file, '--reason', 'lost', '--yes', '--job-size', '2', '--out-dir', out, ...FAST], env);
  expect({ code: rerun.code, stderr: rerun.stderr }).toEqual({ code: 0, stderr: '' });
  const rows = resultsOf(rerun.stdout);
  expect(rows.map((r) => [r['serialNumber'], r['outcome'], r['userID']])).toEqual(list.map((t, i) => [t.serial, 'REVOKED', userId(30 + i)]));
  expect(rows[0]!['message']).toMatch(/revoked by an earlier run/);
  expect([...box.sandbox.inventory.revokesSent.values()].every((n) => n === 1)).toBe(true);
  expect(box.sandbox.inventory.revokesSent.size).toBe(5);
  expect(list.every((t) => !box.sandbox.inventory.has(t.serial))).toBe(true);
  // A third run sends nothing at all.
  const third = await runCli(['revoke', file, '--reason', 'lost', '--yes', '--out-dir', out, ...FAST], env);
  expect(third.code).toBe(0);
  expect(resultsOf(third.stdout).every((r) => r['outcome'] === 'REVOKED' && r['attempts'] === '0')).toBe(true);
  expect([...box.sandbox.inventory.revokesSent.values()].every((n) => n === 1)).toBe(true);
});

test('unassign: the returned token goes back to the pool and a run gives it to another user; a serial held by someone else is refused; a last device needs --allow-last-device', async () => {
  const { dir, folder, out, key, env } = setUp();
  const list = tokens('BACK', 2);
  dropShipment(folder, 'box6', list, 50);
  expect((await runCli(['run', join(folder, 'box6.csv'), '--seeds', join(folder, 'box6.pskc.xml'), '--psk-file', key, '--out-dir', out, ...FAST], env)).code).toBe(0);
  // User 50 has a phone too; user 51 has only the token.
  box.sandbox.seedDevice(userId(50), 'PHONE50');
  const returned = join(dir, 'returned.csv');
  // User 50 returned BACK0001; the second row names BACK0002 with the wrong user (it is user 51's).
  writeFileSync(returned, `userID,serialNumber,ticket\n${userId(50)},BACK0001,INC-1\n${userId(50)},BACK0002,INC-2\n`);
  const dry = await runCli(['unassign', returned, '--dry-run', '--out-dir', out, ...FAST], env);
  expect(resultsOf(dry.stdout).map((r) => [r['outcome'], r['errorCode'], r['ticket']])).toEqual([['WOULD_UNASSIGN', '', 'INC-1'], ['FAILED', 'SERIAL_ASSIGNED_ELSEWHERE', 'INC-2']]);
  expect(box.sandbox.allDevices()).toHaveLength(3);

  const done = await runCli(['unassign', returned, '--yes', '--out-dir', out, ...FAST], env);
  expect(done.code).toBe(1);
  expect(resultsOf(done.stdout).map((r) => [r['outcome'], r['errorCode']])).toEqual([['UNASSIGNED', ''], ['FAILED', 'SERIAL_ASSIGNED_ELSEWHERE']]);
  expect(box.sandbox.devicesOf(userId(50)).map((d) => d.serialNumber)).toEqual(['PHONE50']);
  expect(box.sandbox.devicesOf(userId(51)).map((d) => d.serialNumber)).toEqual(['BACK0002']);
  expect(box.sandbox.inventory.has('BACK0001')).toBe(true);
  expect(ledgerLines().filter((f) => f['sn'] === 'BACK0001').map((f) => f['e'])).toEqual(['shipped', 'handed-out', 'returned']);
  // A rerun sends no delete: the ledger says the token came back.
  const rerun = await runCli(['unassign', returned, '--yes', '--out-dir', out, ...FAST], env);
  expect(resultsOf(rerun.stdout)[0]).toMatchObject({ outcome: 'UNASSIGNED', attempts: '0', message: expect.stringMatching(/returned by an earlier run/) });

  // The returned token goes to user 60.
  const next = join(dir, 'next.csv');
  writeFileSync(next, `userID,serialNumber\n${userId(60)},BACK0001\n`);
  const assigned = await runCli(['run', next, '--out-dir', out, ...FAST], env);
  expect(assigned.code).toBe(0);
  expect(box.sandbox.devicesOf(userId(60)).map((d) => d.serialNumber)).toEqual(['BACK0001']);
  // The first box's results still give BACK0001 to user 50: a revoke from them leaves user 60's token alone.
  const box6 = readdirSync(out).filter((f) => f.startsWith('box6.') && f.endsWith('.results.csv')).sort()[0]!;
  const stale = await runCli(['revoke', join(out, box6), '--reason', 'lost', '--dry-run', '--out-dir', out, ...FAST], env);
  expect(resultsOf(stale.stdout).map((r) => [r['serialNumber'], r['outcome'], r['errorCode']])).toEqual([['BACK0001', 'FAILED', 'SERIAL_ASSIGNED_ELSEWHERE'], ['BACK0002', 'WOULD_REVOKE', '']]);

  // User 51's only device: refused without --allow-last-device, deleted with it.
  const last = join(dir, 'last.csv');
  writeFileSync(last, `userID,serialNumber\n${userId(51)},BACK0002\n`);
  const refused = await runCli(['unassign', last, '--yes', '--out-dir', out, ...FAST], env);
  expect(refused.code).toBe(1);
  expect(resultsOf(refused.stdout)[0]).toMatchObject({ outcome: 'FAILED', errorCode: 'LAST_DEVICE' });
  expect(refused.stdout).toMatch(/next: 1 row would leave a user with no MFA device: .*--allow-last-device/);
  expect(box.sandbox.devicesOf(userId(51))).toHaveLength(1);
  const allowed = await runCli(['unassign', last, '--yes', '--allow-last-device', '--out-dir', out, ...FAST], env);
  expect(allowed.code).toBe(0);
  expect(resultsOf(allowed.stdout)[0]).toMatchObject({ outcome: 'UNASSIGNED', message: expect.stringMatching(/last MFA device/) });
  expect(box.sandbox.devicesOf(userId(51))).toHaveLength(0);
});

/** A user holds `oldSerial` (imported and assigned from its own box); `new.pskc.xml` holds `newList`, not imported yet. */
async function swapSetUp(oldList: readonly PskcToken[], newList: readonly PskcToken[], firstUser: number): Promise<ReturnType<typeof setUp> & { newSeeds: string }> {
  const s = setUp();
  dropShipment(s.folder, 'old', oldList, firstUser);
  expect((await runCli(['run', join(s.folder, 'old.csv'), '--seeds', join(s.folder, 'old.pskc.xml'), '--psk-file', s.key, '--out-dir', s.out, ...FAST], s.env)).code).toBe(0);
  const newSeeds = join(s.dir, 'new.pskc.xml');
  writeFileSync(newSeeds, encryptedPskc(newList, SHIPMENT_KEY), { mode: 0o600 });
  return { ...s, newSeeds };
}

test('replace killed at every step never leaves the user without a device; the rerun finishes: new token active, old device gone, old token revoked as lost', async () => {
  const { dir, out, key, env, newSeeds } = await swapSetUp(tokens('OLD', 1), tokens('REP', 1), 70);
  box.sandbox.configure({ activationRequired: true, latencyMs: 15 });
  const swap = join(dir, 'swap.csv');
  writeFileSync(swap, `userID,oldSerial,newSerial,reason\n${userId(70)},OLD0001,REP0001,lost\n`);
  const args = ['replace', swap, '--seeds', newSeeds, '--psk-file', key, '--activate', '--yes', '--out-dir', out, ...FAST];
  const holds = (): string[] => box.sandbox.devicesOf(userId(70)).map((d) => d.serialNumber!).sort();
  let finished: number | null = null;
  let kills = 0;
  const seen = new Set<string>();
  // Killed after its 1st request, then (a rerun) after its 2nd, … until a run gets to its end.
  for (let k = 1; k <= 30 && finished === null; k++) {
    const start = box.sandbox.stats.requests;
    const child = startCli(args, env);
    const end = exited(child);
    let done = false;
    void end.then(() => (done = true));
    while (!done && box.sandbox.stats.requests < start + k) await new Promise((r) => setTimeout(r, 2));
    if (!done) {
      child.kill('SIGKILL');
      kills++;
    }
    const { code } = await end;
    if (done && code !== null) finished = code;
    // Whatever step it died at: the user holds the old token, the new one, or both.
    expect(holds().length).toBeGreaterThan(0);
    expect(holds().every((s) => s === 'OLD0001' || s === 'REP0001')).toBe(true);
    // Once the lost token's device is blocked (or gone), the ledger already keeps it out of every run.
    const blockedOrGone = box.sandbox.devicesOf(userId(70)).every((d) => d.serialNumber !== 'OLD0001' || d.status === 'BLOCKED');
    if (blockedOrGone) expect(ledgerLines().some((f) => f['sn'] === 'OLD0001' && (f['e'] === 'revoking' || f['e'] === 'revoked'))).toBe(true);
    seen.add(box.sandbox.devicesOf(userId(70)).map((d) => `${d.serialNumber} ${d.status}`).sort().join(' + ') + (box.sandbox.inventory.has('OLD0001') ? '' : ' (OLD0001 revoked)'));
  }
  // The kills fell between the steps: after the block, with both devices, after the delete.
  expect([...seen]).toContain('OLD0001 BLOCKED');
  expect([...seen].some((state) => state.startsWith('REP0001 ACTIVE'))).toBe(true);
  expect([...seen].some((state) => state.startsWith('OLD0001 BLOCKED + REP0001'))).toBe(true);
  expect(finished).toBe(0);
  // Read, import (job, poll), read, block, create, activate, delete, revoke (read, job, poll, read back): each a kill point.
  expect(kills).toBeGreaterThanOrEqual(5);
  const rerun = await runCli(args, env);
  expect({ code: rerun.code, stderr: rerun.stderr }).toEqual({ code: 0, stderr: '' });
  expect(resultsOf(rerun.stdout)[0]).toMatchObject({ outcome: 'REPLACED', serialNumber: 'REP0001', oldSerial: 'OLD0001', deviceStatus: 'ACTIVE', reason: 'lost' });
  expect(box.sandbox.devicesOf(userId(70)).map((d) => [d.serialNumber, d.status])).toEqual([['REP0001', 'ACTIVE']]);
  expect(box.sandbox.inventory.has('OLD0001')).toBe(false);
  expect(ledgerLines().filter((f) => f['sn'] === 'OLD0001').pop()).toMatchObject({ e: 'revoked', reason: 'lost' });
  expect(ledgerLines().some((f) => f['sn'] === 'REP0001' && f['e'] === 'handed-out' && f['user'] === userId(70))).toBe(true);
  // Nothing was created, imported or revoked twice across the kills.
  expect(box.sandbox.inventory.revokesSent.get('OLD0001') ?? 0).toBeLessThanOrEqual(2);
  expect(box.sandbox.allDevices().filter((d) => d.serialNumber === 'REP0001')).toHaveLength(1);
}, 120_000);

test('replace: a device cap or a refused code stops the row at its step and the old device stays', async () => {
  const good = tokens('CAPN', 1);
  // The seed file's secret for WRONG0001 is not the one imported: its codes are refused.
  const { dir, out, key, env, newSeeds } = await swapSetUp(tokens('CAPO', 2), [...good, ...tokens('WRONG', 1)], 80);
  const other = join(dir, 'other.pskc.xml');
  writeFileSync(other, encryptedPskc(tokens('WRONG', 1), SHIPMENT_KEY), { mode: 0o600 });
  expect((await runCli(['import', other, '--psk-file', key, '--out-dir', out, ...FAST], env)).code).toBe(0);
  box.sandbox.configure({ activationRequired: true, maxDevicesPerUser: 1 });
  const swap = join(dir, 'swap.csv');
  writeFileSync(swap, `userID,oldSerial,newSerial\n${userId(80)},CAPO0001,CAPN0001\n`);
  const capped = await runCli(['replace', swap, '--seeds', newSeeds, '--psk-file', key, '--activate', '--yes', '--out-dir', out, ...FAST], env);
  expect(capped.code).toBe(1);
  expect(resultsOf(capped.stdout)[0]).toMatchObject({ outcome: 'FAILED', step: 'create', errorCode: 'MAX_DEVICES_REACHED', message: expect.stringMatching(/the old device stays/) });
  expect(box.sandbox.devicesOf(userId(80)).map((d) => d.serialNumber)).toEqual(['CAPO0001']);

  box.sandbox.configure({ maxDevicesPerUser: 5 });
  writeFileSync(swap, `userID,oldSerial,newSerial\n${userId(81)},CAPO0002,WRONG0001\n`);
  const refused = await runCli(['replace', swap, '--seeds', newSeeds, '--psk-file', key, '--activate', '--yes', '--out-dir', out, ...FAST], env);
  expect(refused.code).toBe(1);
  expect(resultsOf(refused.stdout)[0]).toMatchObject({ outcome: 'FAILED', step: 'activate', errorCode: 'ACTIVATION_FAILED' });
  expect(box.sandbox.devicesOf(userId(81)).map((d) => d.serialNumber).sort()).toEqual(['CAPO0002', 'WRONG0001']);

  // A row naming another user's token as the old one (a typo), and a new serial nobody has:
  // refused before anything is done, in the dry run as in the real run; nobody's device is touched.
  writeFileSync(swap, `userID,oldSerial,newSerial,reason\n${userId(81)},CAPO0001,WRONG0001,lost\n${userId(81)},CAPO0002,NOSUCH99,lost\n`);
  for (const dry of [true, false]) {
    const typo = await runCli(['replace', swap, '--yes', '--out-dir', out, ...FAST, ...(dry ? ['--dry-run'] : [])], env);
    expect(typo.code).toBe(1);
    expect(resultsOf(typo.stdout).map((r) => [r['outcome'], r['step'], r['errorCode']])).toEqual([['FAILED', 'check', 'SERIAL_ASSIGNED_ELSEWHERE'], ['FAILED', 'check', 'SERIAL_NOT_FOUND']]);
  }
  expect(box.sandbox.devicesOf(userId(80)).map((d) => [d.serialNumber, d.status])).toEqual([['CAPO0001', 'ACTIVE']]);
  expect(box.sandbox.devicesOf(userId(81)).map((d) => [d.serialNumber, d.status]).sort()).toEqual([['CAPO0002', 'ACTIVE'], ['WRONG0001', 'ACTIVATION_REQUIRED']]);
  expect(box.sandbox.inventory.has('CAPO0001')).toBe(true);
  expect(ledgerLines().some((f) => (f['sn'] === 'CAPO0001' || f['sn'] === 'CAPO0002') && f['e'] !== 'handed-out' && f['e'] !== 'shipped')).toBe(false);
});

test('resync: a right pair resyncs, a wrong pair is INVALID_OTP, a TOTP row is sent to the terminal; the codes appear nowhere and a rerun sends nothing', async () => {
  const { dir, folder, out, key, env } = setUp();
  const drawer = tokens('DRIFT', 2);
  dropShipment(folder, 'drawer', drawer, 90, 0);
  expect((await runCli(['import', join(folder, 'drawer.pskc.xml'), '--psk-file', key, '--out-dir', out, ...FAST], env)).code).toBe(0);
  const clock = { serial: 'TOTPONE', type: 'TOTP' as const, secretHex: randomBytes(20).toString('hex') };
  dropShipment(folder, 'clock', [clock], 99, 0);
  expect((await runCli(['import', join(folder, 'clock.pskc.xml'), '--psk-file', key, '--out-dir', out, ...FAST], env)).code).toBe(0);
  const right = [hotp(drawer[0]!.secretHex, 40), hotp(drawer[0]!.secretHex, 41)];
  const wrong = [hotp(drawer[1]!.secretHex, 500), hotp(drawer[1]!.secretHex, 501)];
  const file = join(dir, 'drawer-codes.csv');
  writeFileSync(file, `serialNumber,otp1,otp2,shelf\nDRIFT0001,${right[0]},${right[1]},A\nDRIFT0002,${wrong[0]},${wrong[1]},B\nTOTPONE,123456,654321,C\n`);
  const first = await runCli(['resync', file, '--out-dir', out, '--log-level', 'trace', ...FAST], env);
  expect(first.code).toBe(1);
  expect(resultsOf(first.stdout).map((r) => [r['serialNumber'], r['outcome'], r['errorCode'], r['shelf']])).toEqual([
    ['DRIFT0001', 'RESYNCED', '', 'A'],
    ['DRIFT0002', 'FAILED', 'INVALID_OTP', 'B'],
    ['TOTPONE', 'FAILED', 'TOTP_AT_TERMINAL', 'C'],
  ]);
  expect(box.sandbox.inventory.counterText('DRIFT0001')).toBe('42');
  expect(box.sandbox.inventory.counterText('DRIFT0002')).toBe('0');
  // The codes are in PingOne's hands only: no report, log, summary, ledger or terminal line has them.
  const written = readdirSync(out).filter((f) => f.startsWith('drawer-codes.')).map((f) => readFileSync(join(out, f)).toString('latin1')).join('\n');
  const ledgerText = ledgerLines().map((l) => JSON.stringify(l)).join('\n');
  for (const code of [...right, ...wrong]) for (const text of [written, ledgerText, first.stdout, first.stderr]) expect(text).not.toContain(code);
  // The same file again, saved anew (touched, or its bad rows edited): the codes are spent; nothing is sent.
  writeFileSync(file, readFileSync(file, 'utf8').replace('TOTPONE,123456,654321,C', 'TOTPONE,123456,654321,D'));
  const before = box.sandbox.stats.requests;
  const again = await runCli(['resync', file, '--out-dir', out, ...FAST], env);
  expect(resultsOf(again.stdout).slice(0, 2).map((r) => [r['outcome'], r['attempts'], /spent/.test(r['message']!)])).toEqual([['RESYNCED', '0', true], ['FAILED', '0', true]]);
  expect(box.sandbox.stats.requests - before).toBeLessThanOrEqual(3);
  // TOTP codes are typed at a terminal, never read from a file; off a terminal it says so.
  const totp = await runCli(['resync', '--totp', 'TOTPONE', '--out-dir', out, ...FAST], env);
  expect(totp.code).toBe(2);
  expect(totp.stderr).toMatch(/TOTP codes go stale in a file.*run it at a terminal/);

  // At a terminal (script(1) gives it one): each code typed as it is read, the pair sent at once.
  const step = Math.floor(Date.now() / 30_000);
  const typed = [hotp(clock.secretHex, step + 3), hotp(clock.secretHex, step + 4)];
  const command = [process.execPath, '--', BIN, 'resync', '--totp', 'TOTPONE', '--out-dir', out, ...FAST].map((a) => `'${a}'`).join(' ');
  const terminal = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...env, TERM: 'dumb' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  terminal.stdout.on('data', (d: Buffer) => (screen += d.toString()));
  const waitFor = async (text: RegExp): Promise<void> => {
    for (let i = 0; i < 500 && !text.test(screen); i++) await new Promise((r) => setTimeout(r, 20));
  };
  await waitFor(/the code it shows now: /);
  terminal.stdin.write(`${typed[0]}\n`);
  await waitFor(/the next code, once it changes: /);
  terminal.stdin.write(`${typed[1]}\n`);
  const { code } = await exited(terminal);
  expect({ code, screen: /TOTPONE: RESYNCED/.test(screen) }).toEqual({ code: 0, screen: true });
  // Typed three and four steps ahead (a step may pass meanwhile): the drift is learnt.
  expect([3, 4]).toContain(box.sandbox.inventory.get('TOTPONE')!.driftSteps);
  const results = /\n {2}results {2}(\S+)/.exec(screen.replace(/\r/g, ''))![1]!;
  for (const c of typed) expect(readFileSync(results, 'utf8') + ledgerLines().map((l) => JSON.stringify(l)).join('')).not.toContain(c);
});
