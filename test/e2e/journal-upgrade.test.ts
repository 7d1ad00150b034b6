/**
 * Journal version 2 against the release before it (issue #19): a journal written by that
 * release's own journal code — its run killed with SIGKILL between a create's start and its
 * answer — is resumed by today's CLI, which rewrites it as version 2; and the earlier
 * release's code then refuses the rewritten journal rather than misread it.
 *
 * The earlier release is built here from the repository's history (git archive of the commit
 * before the journal changed, compiled with this checkout's TypeScript): its journal module
 * and what it imports, nothing mocked.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { useSandbox } from '../support/sandbox.js';
import { readResults, runCli, sandboxEnv, tempDir, userId } from '../support/cli.js';

/** The last release that wrote journal version 1. */
const V1_RELEASE = '3b733d467860b5dedeb12fc3746c861f86066af2';

const box = useSandbox('all');
let oldJournal: string;

beforeAll(() => {
  const root = tempDir('oath-bulk-v1-');
  try {
    const archive = execFileSync('git', ['archive', V1_RELEASE, 'src'], { maxBuffer: 64 * 1024 * 1024 });
    execFileSync('tar', ['-x', '-C', root], { input: archive });
  } catch (error) {
    throw new Error(`the earlier release (${V1_RELEASE}) is not in this clone's history: fetch it (git fetch --unshallow) to run this test. ${(error as Error).message}`);
  }
  const out = join(root, 'dist');
  // An ES module package, as the release was (tsc emits ES modules for it, node loads them so).
  writeFileSync(join(root, 'package.json'), '{"type":"module"}\n');
  // Its journal module and what that imports; type errors elsewhere in that tree do not matter.
  try {
    execFileSync(process.execPath, [resolve('node_modules/typescript/bin/tsc'), '--outDir', out, '--rootDir', join(root, 'src'), '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', join(root, 'src/engine/journal.ts')], { stdio: 'pipe' });
  } catch {
    // tsc exits non-zero on any type error but still writes the JavaScript.
  }
  oldJournal = join(out, 'engine/journal.js');
  if (!existsSync(oldJournal)) throw new Error(`could not build the earlier release's journal module at ${oldJournal}`);
}, 120_000);

/** Runs `code` (an ES module body) in a child node process with OLD set to the old journal module's URL. */
function child(code: string, env: Record<string, string>, onLine?: (line: string) => void): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', code], { env: { ...env, OLD: pathToFileURL(oldJournal).href } });
    let stderr = '';
    let stdout = '';
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      for (const line of c.toString().split('\n')) if (line) onLine?.(line);
    });
    p.once('exit', (code, signal) => done({ code, signal, stderr, stdout }));
  });
}

test("the earlier release's journal, its run killed mid-create, is resumed by today's CLI (rewritten as version 2); the earlier release then refuses it", async () => {
  const dir = tempDir();
  const input = join(dir, 'shipment.csv');
  const rows = Array.from({ length: 6 }, (_, i) => ({ user: userId(700 + i), serial: `UPG${String(i + 1).padStart(5, '0')}` }));
  writeFileSync(input, 'userID,serialNumber\n' + rows.map((r) => `${r.user},${r.serial}`).join('\n') + '\n');
  mkdirSync(join(dir, 'reports'));
  const journal = join(dir, 'reports', 'shipment.journal.jsonl');
  // What the earlier release's run had done at PingOne: rows 1-3 created and answered, row 4
  // created but its answer never heard (the process was killed first).
  const devices = rows.slice(0, 3).map((r) => box.sandbox.seedDevice(r.user, r.serial).id);
  const killed = await child(
    `const { openLockedJournal, pairKey } = await import(process.env.OLD);
     const rows = ${JSON.stringify(rows)}, devices = ${JSON.stringify(devices)};
     const { journal } = await openLockedJournal(${JSON.stringify(journal)}, ${JSON.stringify(box.sandbox.environmentId)});
     for (let i = 0; i < 3; i++) {
       await journal.started(pairKey(rows[i].user, rows[i].serial), i + 1, Date.now(), Date.now() + 30000);
       journal.finished(pairKey(rows[i].user, rows[i].serial), i + 1, { outcome: 'CREATED', deviceId: devices[i], deviceStatus: 'ACTIVE' });
     }
     await journal.started(pairKey(rows[3].user, rows[3].serial), 4, Date.now(), Date.now() + 30000);
     console.log('SENT');
     await new Promise((r) => setTimeout(r, 500));
     process.kill(process.pid, 'SIGKILL');`,
    { PATH: process.env['PATH'] ?? '' },
    // The create of row 4 reaches PingOne, which makes the device; its answer never comes back.
    (line) => {
      if (line === 'SENT') devices.push(box.sandbox.seedDevice(rows[3]!.user, rows[3]!.serial, new Date().toISOString()).id);
    },
  );
  expect(killed.signal).toBe('SIGKILL');
  const before = readFileSync(journal, 'utf8');
  expect(JSON.parse(before.split('\n')[0]!)).toMatchObject({ journal: 'oath-bulk', v: 1 });
  expect(existsSync(`${journal}.lock`)).toBe(true);

  const creates = box.sandbox.stats.createsReceived;
  const resumed = await runCli(['run', input, '--out-dir', join(dir, 'reports')], sandboxEnv(box.sandbox));
  expect(resumed.stderr).toBe('');
  expect(resumed.code).toBe(0);
  const results = readResults(join(dir, 'reports'));
  expect(results.map((r) => r['outcome'])).toEqual(Array(6).fill('CREATED'));
  // Rows 1-3 from the journal, row 4 found on the user after the lost answer: only 5 and 6 are created.
  expect(box.sandbox.stats.createsReceived - creates).toBe(2);
  expect(results.slice(0, 4).map((r) => r['deviceId'])).toEqual(devices);
  for (const r of rows) expect(box.sandbox.devicesOf(r.user)).toHaveLength(1);

  const after = readFileSync(journal, 'utf8');
  expect(JSON.parse(after.split('\n')[0]!)).toMatchObject({ journal: 'oath-bulk', v: 2, environmentId: box.sandbox.environmentId, upgradedFrom: 1 });
  expect(after).not.toMatch(/"v":1[,}]/);

  // The earlier release's own journal code, given the rewritten journal: refused, not misread.
  const old = await child(
    `const { openLockedJournal } = await import(process.env.OLD);
     try { await openLockedJournal(${JSON.stringify(journal)}, ${JSON.stringify(box.sandbox.environmentId)}); console.log('OPENED'); }
     catch (error) { console.log(error.message); }`,
    { PATH: process.env['PATH'] ?? '' },
  );
  expect(old.stdout).not.toMatch(/OPENED/);
  expect(old.stdout).toMatch(/written in journal version 2, this oath-bulk reads version 1/);
  // And a rerun of today's CLI finds every row final: not a request beyond the token.
  const again = await runCli(['run', input, '--out-dir', join(dir, 'reports')], sandboxEnv(box.sandbox));
  expect(again.code).toBe(0);
  expect(box.sandbox.stats.createsReceived - creates).toBe(2);
});
