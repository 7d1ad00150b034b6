import { mkdirSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { useSandbox } from '../support/sandbox.js';
import { runCli, sandboxEnv, tempDir, userId } from '../support/cli.js';

const box = useSandbox();
const OLD = '/tmp/review19/old/dist/bin.js';
function runOld(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((r) => execFile(process.execPath, [OLD, ...args], { env }, (e, stdout, stderr) => r({ code: e ? (e.code as number) : 0, stdout, stderr })));
}
const SECRET = '3132333435363738393031323334353637383930';
const WRONG = '00112233445566778899aabbccddeeff00112233';

async function scenario(useOldFirst: boolean, byEmail: boolean) {
  const users = [1, 2].map((n) => ({ id: userId(900 + n), username: `user${n}`, email: `user${n}@ex.com` }));
  box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20, users });
  const root = tempDir('zzrev-');
  const folder = join(root, 'in');
  const out = join(root, 'out');
  mkdirSync(folder);
  const head = byEmail ? 'email,serialNumber' : 'userID,serialNumber';
  writeFileSync(join(folder, 'act.csv'), `${head}\n${users.map((u, i) => `${byEmail ? u.email : u.id},RF000${i}`).join('\n')}\n`);
  for (let i = 0; i < 2; i++) box.sandbox.inventory.createOne({ serialNumber: `RF000${i}`, secret: SECRET, type: 'TOTP', otpLength: 6 });
  writeFileSync(join(folder, 'act.seeds.csv'), `serial,secret,type\nRF0000,${WRONG},TOTP\nRF0001,${WRONG},TOTP\n`, { mode: 0o600 });
  // a plain finished file too
  writeFileSync(join(folder, 'plain.csv'), `userID,serialNumber\n${userId(950)},PL0001\n`);
  const env = sandboxEnv(box.sandbox);
  const args = ['run', folder, '--out-dir', out, '--activate'];
  const log: string[] = [];
  const first = useOldFirst ? await runOld(args, env) : await runCli(args, env);
  log.push(`first(${useOldFirst ? 'old' : 'new'}) code=${first.code} codes=${box.sandbox.stats.activationsReceived}\n${first.stdout}${first.stderr}`);
  const codes = box.sandbox.stats.activationsReceived;
  const second = await runCli(args, env);
  log.push(`second code=${second.code} codes=${box.sandbox.stats.activationsReceived} (was ${codes})\n${second.stdout}${second.stderr}`);
  const third = await runCli(args, env);
  log.push(`third code=${third.code} codes=${box.sandbox.stats.activationsReceived}\n${third.stdout}${third.stderr}`);
  log.push('journal:\n' + readFileSync(join(out, 'act.journal.jsonl'), 'utf8'));
  for (const d of box.sandbox.allDevices()) d.status = 'ACTIVE';
  const fourth = await runCli(args, env);
  log.push(`fourth(after user activates) code=${fourth.code} codes=${box.sandbox.stats.activationsReceived}\n${fourth.stdout}${fourth.stderr}`);
  const r0 = box.sandbox.stats.requests;
  const fifth = await runCli(args, env);
  log.push(`fifth code=${fifth.code} requests+=${box.sandbox.stats.requests - r0}\n${fifth.stdout}${fifth.stderr}`);
  log.push('journal:\n' + readFileSync(join(out, 'act.journal.jsonl'), 'utf8'));
  // hand run of the file without --activate
  const hand = await runCli(['run', join(folder, 'act.csv'), '--out-dir', out, '--seeds', join(folder, 'act.seeds.csv')], env);
  log.push(`hand code=${hand.code}\n${hand.stdout.slice(0, 400)}${hand.stderr}`);
  writeFileSync(`/tmp/review19/act-${useOldFirst ? 'old' : 'new'}-${byEmail ? 'email' : 'id'}.log`, log.join('\n----\n'));
}

test('new email', async () => { await scenario(false, true); }, 120000);
test('old email', async () => { await scenario(true, true); }, 120000);
test('old id', async () => { await scenario(true, false); }, 120000);
