/**
 * The one place that maps outcomes and errors to exit codes and calls process.exit.
 * 0 all rows CREATED/EXISTING · 1 finished with FAILED/INVALID rows · 2 nothing attempted ·
 * 3 stopped (systemic failure or signal). Never prints a stack trace unless --debug.
 */
import { dispatch, type Commands } from './cli.js';
import type { CommandDeps } from './commands/shared/deps.js';
import { RunControl } from './engine/control.js';
import { StopError, UsageError } from './errors.js';
import { releaseHeldLocksSync } from './engine/lock.js';

/**
 * The commands cron runs get their healthcheck pings, metrics and retention around them. A
 * command's modules (and the libraries they use: axios, pino, the XML parser …) load when that
 * command runs: `--version`, `--help` and a usage error pay for none of them.
 */
const withOperations: typeof import('./commands/shared/operations.js').withOperations = async (...args) => (await import('./commands/shared/operations.js')).withOperations(...args);
const COMMANDS: Commands = {
  run: (input, raw, deps) => withOperations('run', input, raw, deps, async (d) => (await import('./commands/run/index.js')).runCommand(input, raw, d)),
  verify: (input, raw, deps) => withOperations('verify', input, raw, deps, async (d) => (await import('./commands/verify.js')).verifyCommand(input, raw, d)),
  rollback: (input, raw, deps) => withOperations('rollback', input, raw, deps, async (d) => (await import('./commands/rollback.js')).rollbackCommand(input, raw, d)),
  sandbox: async (...args) => (await import('./commands/sandbox.js')).sandboxCommand(...args),
  import: (input, raw, deps) => withOperations('import', input, raw, deps, async (d) => (await import('./commands/import.js')).importCommand(input, raw, d)),
  revoke: (input, raw, deps) => withOperations('revoke', input, raw, deps, async (d) => (await import('./commands/revoke.js')).revokeCommand(input, raw, d)),
  unassign: (input, raw, deps) => withOperations('unassign', input, raw, deps, async (d) => (await import('./commands/unassign.js')).unassignCommand(input, raw, d)),
  replace: (input, raw, deps) => withOperations('replace', input, raw, deps, async (d) => (await import('./commands/replace.js')).replaceCommand(input, raw, d)),
  resync: (input, raw, deps) => withOperations('resync', input ?? 'totp', raw, deps, async (d) => (await import('./commands/resync.js')).resyncCommand(input, raw, d)),
  inventory: (raw, deps) => withOperations('inventory', 'inventory', raw, deps, async (d) => (await import('./commands/inventory.js')).inventoryCommand(raw, d)),
  reinstate: async (serials, raw, deps) => (await import('./commands/reinstate.js')).reinstateCommand(serials, raw, deps),
};

export async function main(argv: string[]): Promise<void> {
  const control = new RunControl(5000);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`\noath-bulk: ${signal} again: exiting now; the journal stays valid and a rerun resumes\n`);
      releaseHeldLocksSync();
      process.exit(3);
    }
    process.stderr.write(`\noath-bulk: ${signal}: finishing requests in flight, then writing the reports (${signal} again to exit at once)\n`);
    control.stop(new StopError('INTERRUPTED', `stopped by ${signal}: rows not started are NOT_ATTEMPTED; run the same command again to finish`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // An SSH session dropping: stop as for SIGTERM (reports written, lock released) rather than
  // die mid-write. Its terminal is gone: what cannot be printed any more is not an error.
  process.on('SIGHUP', onSignal);
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

  const deps: CommandDeps = {
    env: process.env,
    isTTY: process.stderr.isTTY === true,
    warn: (message) => process.stderr.write(`oath-bulk: warning: ${message}\n`),
    stdout: process.stdout,
    stderr: process.stderr,
    control,
    argv,
  };
  const debug = argv.includes('--debug');
  let code: number;
  try {
    code = await dispatch(argv, COMMANDS, deps);
  } catch (error) {
    code = report(error, debug);
  }
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit(code);
}

function report(error: unknown, debug: boolean): number {
  if (error instanceof UsageError) {
    process.stderr.write(`oath-bulk: ${error.message}\n`);
    return 2;
  }
  if (error instanceof StopError) {
    process.stderr.write(`oath-bulk: stopped (${error.code}): ${error.message}\n`);
    return 3;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`oath-bulk: internal error: ${message.split('\n')[0]}${debug ? '' : ' (--debug shows details)'}\n`);
  if (debug && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  return 3;
}
