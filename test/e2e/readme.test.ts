/**
 * Every command sample in the README uses commands and flags that exist, so the docs cannot
 * drift from the CLI; the quick start's files exist.
 */
import { existsSync, readFileSync } from 'node:fs';
import { runCli } from '../support/cli.js';

const readme = readFileSync('README.md', 'utf8');
const blocks = [...readme.matchAll(/```(?:sh|cron|ini)\n([\s\S]*?)```/g)].map((m) => m[1]!);
const samples = blocks
  .flatMap((b) => b.split('\n'))
  .map((line) => /oath-bulk (run|verify|rollback|sandbox|import|revoke|unassign|replace|resync|reinstate|inventory)\b(.*)$/.exec(line))
  .filter((m): m is RegExpExecArray => m !== null)
  .map((m) => ({ command: m[1]!, flags: [...m[2]!.matchAll(/(?:^|\s)(--[a-z-]+)/g)].map((f) => f[1]!) }));

const helps = new Map<string, string>();
async function help(command: string): Promise<string> {
  if (!helps.has(command)) helps.set(command, (await runCli([command, '--help'], { PATH: process.env['PATH'] ?? '' })).stdout);
  return helps.get(command)!;
}

test('the README has command samples for every command', () => {
  expect(new Set(samples.map((s) => s.command))).toEqual(new Set(['run', 'verify', 'rollback', 'sandbox', 'import', 'revoke', 'unassign', 'replace', 'resync', 'inventory']));
  expect(readme).toContain('npm ci && npm run demo');
  expect(readme).toContain('npm test');
  expect(existsSync('input/shipment-sample.csv')).toBe(true);
});

test.each(samples.map((s, i) => [i, s.command, s.flags.join(' ')]))('sample %i: oath-bulk %s uses only its own flags (%s)', async (_i, command, flags) => {
  const text = await help(String(command));
  for (const flag of String(flags).split(' ').filter(Boolean)) {
    const name = flag.replace(/^--no-/, '--');
    expect(text).toContain(name);
  }
});
