/**
 * A journal and an environment that disagree (issue #20, item 3), end to end: a run that
 * sent nothing leaves no journal; a journal that recorded nothing follows the environment
 * given, with a note; one that recorded rows names both environments, what it holds, and a
 * likely typo — and never suggests deleting it.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useSandbox } from '../support/sandbox.js';
import { runCli, sandboxEnv, shipment, tempDir } from '../support/cli.js';

const box = useSandbox('all');

/** The sandbox's environment id with one character changed: a typo. */
const typo = (id: string): string => `${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}`;

test('a run refused at the token endpoint (environment not found) sent nothing and leaves no journal behind', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 3, 'envtypo.csv', 'ENVT');
  const env = { ...sandboxEnv(box.sandbox), PINGONE_ENVIRONMENT_ID: typo(box.sandbox.environmentId) };
  const refused = await runCli(['run', path, '--out-dir', dir], env);
  expect(refused.code).toBe(3);
  expect(refused.stderr + refused.stdout).toMatch(/ENVIRONMENT_NOT_FOUND|not found/);
  expect(existsSync(join(dir, 'envtypo.journal.jsonl'))).toBe(false);
  // So the right environment afterwards is not told about a journal problem.
  const right = await runCli(['run', path, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(right.stderr).toBe('');
  expect(right.code).toBe(0);
});

test('a journal that recorded nothing (an earlier release left it after refused credentials) follows the environment given, with a note', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 2, 'empty.csv', 'ENVE');
  const journal = join(dir, 'empty.journal.jsonl');
  writeFileSync(journal, JSON.stringify({ journal: 'oath-bulk', v: 2, environmentId: typo(box.sandbox.environmentId), createdAt: '2026-12-01T00:00:00.000Z' }) + '\n' + JSON.stringify({ v: 2, e: 'open', at: 1 }) + '\n', { mode: 0o600 });
  const run = await runCli(['run', path, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(run.code).toBe(0);
  expect(run.stderr).toMatch(/warning: journal .*empty\.journal\.jsonl recorded nothing in environment .*: it now belongs to environment/);
  expect(JSON.parse(readFileSync(journal, 'utf8').split('\n')[0]!)).toMatchObject({ environmentId: box.sandbox.environmentId });
});

test('a journal with rows in another environment: both named, with what it holds and a likely typo; never a suggestion to delete it', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 4, 'held.csv', 'ENVH');
  expect((await runCli(['run', path, '--out-dir', dir], sandboxEnv(box.sandbox))).code).toBe(0);
  const wrong = typo(box.sandbox.environmentId);
  const result = await runCli(['run', path, '--out-dir', dir], { ...sandboxEnv(box.sandbox), PINGONE_ENVIRONMENT_ID: wrong });
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(new RegExp(`records 4 rows in environment ${box.sandbox.environmentId}`));
  expect(result.stderr).toContain(wrong);
  expect(result.stderr).toMatch(/typo in --environment-id/);
  expect(result.stderr).not.toMatch(/delete|remove it|move it away/i);
});

test('rollback naming another environment than its run\'s: told to roll back with the run\'s environment, never to give the journal up', async () => {
  const dir = tempDir();
  const { path } = shipment(dir, 2, 'undo.csv', 'ENVU');
  expect((await runCli(['run', path, '--out-dir', dir], sandboxEnv(box.sandbox))).code).toBe(0);
  const results = join(dir, readdirSync(dir).find((f) => f.endsWith('.results.csv'))!);
  const wrong = typo(box.sandbox.environmentId);
  for (const extra of [['--yes'], ['--dry-run']]) {
    const undo = await runCli(['rollback', results, '--out-dir', dir, ...extra], { ...sandboxEnv(box.sandbox), PINGONE_ENVIRONMENT_ID: wrong });
    expect(undo.code).toBe(2);
    expect(undo.stderr).toContain(`the run that wrote ${results} worked in environment ${box.sandbox.environmentId}`);
    expect(undo.stderr).toMatch(/a typo in --environment-id .* is the likely cause/);
    expect(undo.stderr).toMatch(/roll back with that environment's settings/);
    expect(undo.stderr).not.toMatch(/journal of its own|another --out-dir/);
  }
  expect(box.sandbox.allDevices().filter((d) => d.serialNumber.startsWith('ENVU'))).toHaveLength(2);
});
