/**
 * The README's runbook for a new shipment, run as written: each command line of its code
 * blocks, in a working directory holding the files they name (an encrypted PSKC file and its
 * key, an assignment file, an Entra file, a settings file pointing at the sandbox), with the
 * built CLI. The only edit is the results file's name, which carries the run's time.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { base32 } from '@scure/base';
import { parse } from 'csv-parse/sync';
import { useSandbox } from '../support/sandbox.js';
import { BIN, stateDirOf, tempDir, userId } from '../support/cli.js';
import { encryptedPskc } from '../support/pskc-writer.js';

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
