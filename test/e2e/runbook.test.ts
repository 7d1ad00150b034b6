/**
 * The README's runbook for a new shipment, run as written: each command line of its code
 * blocks, in a working directory holding the files they name (an encrypted PSKC file and its
 * key, an assignment file, an Entra file, a settings file pointing at the sandbox), with the
 * built CLI. The only edit is the results file's name, which carries the run's time.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { base32 } from '@scure/base';
import { parse } from 'csv-parse/sync';
import { useSandbox } from '../support/sandbox.js';
import { BIN, stateDirOf, tempDir, userId } from '../support/cli.js';
import { encryptedPskc } from '../support/pskc-writer.js';
import { hotp as code } from '../support/hotp.js';

const box = useSandbox();
const readme = readFileSync('README.md', 'utf8');

/** The `oath-bulk …` lines of the sh blocks between `start` and the next bold paragraph. */
function runbook(start: string): string[][] {
  const from = readme.indexOf(start);
  expect(from).toBeGreaterThan(0);
  const section = readme.slice(from, readme.indexOf('\n**', from + start.length));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1]!.split('\n'))
    .filter((line) => line.startsWith('oath-bulk '))
    .map((line) => line.split(/\s+/).slice(1));
}

function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--', BIN, ...args], { cwd, env: { PATH: process.env['PATH'] ?? '', OATH_BULK_STATE_DIR: stateDirOf(box.sandbox) }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

test('the README\'s "new shipment" runbook runs as written: preflight, run, verify; the Entra file; import then run', async () => {
  box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20, users: [{ id: userId(11), username: 'ann@corp.example', email: 'ann@corp.example' }] });
  const dir = tempDir('oath-bulk-runbook-');
  const key = randomBytes(16);
  const tokens = Array.from({ length: 5 }, (_, i) => ({ serial: `RB${String(i + 1).padStart(6, '0')}`, type: i % 2 ? ('TOTP' as const) : ('HOTP' as const), secretHex: randomBytes(20).toString('hex'), counter: 0 }));
  writeFileSync(join(dir, 'shipment.pskc.xml'), encryptedPskc(tokens, key), { mode: 0o600 });
  writeFileSync(join(dir, 'vendor.key'), key.toString('hex') + '\n', { mode: 0o600 });
  writeFileSync(join(dir, 'shipment.csv'), 'userID,serialNumber\n' + tokens.map((t, i) => `${userId(i + 1)},${t.serial}`).join('\n') + '\n');
  writeFileSync(join(dir, 'pingone.env'), box.sandbox.envLines().join('\n') + '\n', { mode: 0o600 });
  writeFileSync(join(dir, 'entra.csv'), `upn,serial number,secret key,time interval,manufacturer,model\nann@corp.example,RBENTRA01,${base32.encode(randomBytes(20))},30,Contoso,Key\n`, { mode: 0o600 });

  const lines = runbook('**A new shipment.**');
  expect(lines.map((l) => l.slice(0, 2).join(' '))).toEqual(['run shipment.csv', 'run shipment.csv', 'verify reports/shipment.20261128T170802Z.results.csv', 'run entra.csv', 'import shipment.pskc.xml', 'run shipment.csv']);
  for (const args of lines) {
    const results = existsSync(join(dir, 'reports')) ? readdirSync(join(dir, 'reports')).filter((f) => /^shipment\.\d{8}T\d{6}Z\.results\.csv$/.test(f)).sort() : [];
    const line = args.map((a) => (a === 'reports/shipment.20261128T170802Z.results.csv' ? `reports/${results[results.length - 1]}` : a));
    const result = await cli(line, dir);
    expect({ line: line.join(' '), code: result.code, stderr: result.stderr }).toEqual({ line: line.join(' '), code: 0, stderr: '' });
  }
  expect(box.sandbox.allDevices().map((d) => d.status)).toEqual(Array(6).fill('ACTIVE'));
  expect(box.sandbox.inventory.created).toBe(6);
  const verified = readdirSync(join(dir, 'reports')).find((f) => f.startsWith('shipment.verify.') && f.endsWith('.results.csv'))!;
  const rows = parse(readFileSync(join(dir, 'reports', verified), 'utf8'), { columns: true }) as Array<Record<string, string>>;
  expect(rows.map((r) => [r['outcome'], r['deviceStatus']])).toEqual(Array(5).fill(['PRESENT', 'ACTIVE']));
}, 120_000);

test('the README\'s runbook after the rollout runs as written: a lost token, a missing box, a returned token, drifted tokens', async () => {
  box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20 });
  const dir = tempDir('oath-bulk-runbook-');
  const key = randomBytes(16);
  const token = (serial: string, type: 'HOTP' | 'TOTP' = 'HOTP') => ({ serial, type, secretHex: randomBytes(20).toString('hex'), counter: 0 });
  const first = ['RB1', 'RB2', 'RB3'].map((s) => token(s));
  const box7 = ['BX1', 'BX2', 'BX3'].map((s) => token(s));
  const drawer = [token('DR1'), token('DR2'), token('00412345678901', 'TOTP')];
  writeFileSync(join(dir, 'vendor.key'), key.toString('hex') + '\n', { mode: 0o600 });
  writeFileSync(join(dir, 'pingone.env'), box.sandbox.envLines().join('\n') + '\n', { mode: 0o600 });
  writeFileSync(join(dir, 'first.pskc.xml'), encryptedPskc([...first, ...drawer], key), { mode: 0o600 });
  writeFileSync(join(dir, 'first.csv'), 'userID,serialNumber\n' + first.map((t, i) => `${userId(i + 1)},${t.serial}`).join('\n') + '\n');
  writeFileSync(join(dir, 'box-7.pskc.xml'), encryptedPskc(box7, key), { mode: 0o600 });
  writeFileSync(join(dir, 'box7.csv'), `userID,serialNumber\n${userId(7)},BX1\n`);
  writeFileSync(join(dir, 'new-box.pskc.xml'), encryptedPskc([token('NEW1')], key), { mode: 0o600 });
  // The rollout before: the first box (and the drawer's tokens) and one token of box 7 handed out.
  for (const args of [['run', 'first.csv', '--seeds', 'first.pskc.xml'], ['import', 'first.pskc.xml'], ['run', 'box7.csv', '--seeds', 'box-7.pskc.xml']]) {
    expect((await cli([...args, '--psk-file', 'vendor.key', '--activate', '--settings', 'pingone.env'].filter((a) => args[0] !== 'import' || a !== '--activate'), dir)).code).toBe(0);
  }
  // User 1 lost RB1 (and gets NEW1); user 2 lost RB2 (no new one yet); user 3 returned RB3.
  writeFileSync(join(dir, 'swap.csv'), `userID,oldSerial,newSerial\n${userId(1)},RB1,NEW1\n`);
  writeFileSync(join(dir, 'lost.csv'), 'serialNumber\nRB2\n');
  writeFileSync(join(dir, 'returned.csv'), `userID,serialNumber\n${userId(3)},RB3\n`);
  box.sandbox.seedDevice(userId(3), 'PHONE3');
  writeFileSync(join(dir, 'drawer.csv'), `serialNumber,otp1,otp2\nDR1,${code(drawer[0]!.secretHex, 7)},${code(drawer[0]!.secretHex, 8)}\nDR2,${code(drawer[1]!.secretHex, 30)},${code(drawer[1]!.secretHex, 31)}\n`);

  const sections = ['**A user lost a token.**', '**A box went missing.**', '**A user left and returned the token.**', '**Tokens drifted in storage.**'];
  const lines = sections.flatMap((s) => runbook(s));
  expect(lines.map((l) => l.slice(0, 2).join(' '))).toEqual(['replace swap.csv', 'replace swap.csv', 'revoke lost.csv', 'revoke lost.csv', 'revoke box-7.pskc.xml', 'revoke box-7.pskc.xml', 'unassign returned.csv', 'unassign returned.csv', 'resync drawer.csv', 'resync --totp']);
  for (const args of lines) {
    if (args[1] === '--totp') continue;
    const result = await cli(args, dir);
    expect({ line: args.join(' '), code: result.code, stderr: result.stderr }).toEqual({ line: args.join(' '), code: 0, stderr: '' });
  }
  // The TOTP line, at a terminal (script(1)), with the two codes typed as read.
  const totp = lines[lines.length - 1]!;
  const step = Math.floor(Date.now() / 30_000);
  const command = [process.execPath, '--', BIN, ...totp].map((a) => `'${a}'`).join(' ');
  const terminal = spawn('script', ['-qfec', command, '/dev/null'], { cwd: dir, env: { PATH: process.env['PATH'] ?? '', OATH_BULK_STATE_DIR: stateDirOf(box.sandbox), TERM: 'dumb' } });
  let screen = '';
  terminal.stdout.on('data', (d: Buffer) => (screen += d.toString()));
  for (const [prompt, typed] of [[/shows now: /, code(drawer[2]!.secretHex, step + 2)], [/once it changes: /, code(drawer[2]!.secretHex, step + 3)]] as const) {
    for (let i = 0; i < 500 && !prompt.test(screen); i++) await new Promise((r) => setTimeout(r, 20));
    terminal.stdin.write(`${typed}\n`);
  }
  expect(await new Promise((r) => terminal.once('exit', r))).toBe(0);

  // What the runbook promised: user 1 holds NEW1 (active), RB1 and RB2 are revoked, box 7 is
  // gone (user 7's device with it), RB3 is free again, the drawer is in step.
  expect(box.sandbox.devicesOf(userId(1)).map((d) => [d.serialNumber, d.status])).toEqual([['NEW1', 'ACTIVE']]);
  expect(box.sandbox.devicesOf(userId(2))).toEqual([]);
  expect(box.sandbox.devicesOf(userId(7))).toEqual([]);
  expect(['RB1', 'RB2', 'BX1', 'BX2', 'BX3'].filter((s) => box.sandbox.inventory.has(s))).toEqual([]);
  expect(box.sandbox.devicesOf(userId(3)).map((d) => d.serialNumber)).toEqual(['PHONE3']);
  expect(box.sandbox.inventory.get('RB3')?.device).toBeUndefined();
  expect(box.sandbox.inventory.counterText('DR1')).toBe('9');
  expect(box.sandbox.inventory.counterText('DR2')).toBe('32');
  expect([2, 3]).toContain(box.sandbox.inventory.get('00412345678901')!.driftSteps);
}, 120_000);
