/**
 * What the commands after the rollout (`revoke`, `unassign`, `replace`) share before and after
 * their own work: the settings, the confirmation they will need (refused off a terminal without
 * --yes, before anything is read), the ledger (a damaged one stops them, exit 2), one such
 * command at a time per environment (a lock beside the ledger), the command's reports, and
 * closing them whatever happened.
 */
import { join } from 'node:path';
import type { RawOptions } from '../../config.js';
import { UsageError } from '../../errors.js';
import { Ledger, newLedgerNotice } from '../../engine/ledger.js';
import { acquireLock, type HeldLock } from '../../engine/lock.js';
import { RESULT_COLUMNS } from '../../input/reader.js';
import { prepareOutDir } from '../../report/files.js';
import type { ResultsWriter } from '../../report/results-writer.js';
import { maxUsers } from './confirm.js';
import { openCommand, proveCredentials, resolveCommandConfig, type CommandContext } from './context.js';
import { warnOf, type CommandDeps } from './deps.js';
import type { TokenList } from './token-list.js';

export interface Lifecycle {
  readonly ctx: CommandContext;
  readonly ledger: Ledger;
  /** --max-users. */
  readonly limit: number | undefined;
  readonly results: ResultsWriter;
  readonly warn: (message: string) => void;
  /** The credentials proved: refused ones stop the command (exit 3) with nothing sent. */
  prove(): Promise<void>;
  /** The results closed and the lock released; a failure closes the log too and is handed back. */
  close(failure: unknown): Promise<unknown>;
}

/**
 * `what`: what the command takes away, for the refusal off a terminal without --yes; null for a
 * command that takes nothing away (`resync`): no confirmation, no lock.
 */
export async function openLifecycle(command: 'revoke' | 'unassign' | 'replace' | 'resync', path: string, raw: RawOptions, deps: CommandDeps, list: Pick<TokenList, 'extraNames'> & { readonly file?: TokenList['file'] }, what: string | null, extraColumns: readonly string[] = []): Promise<Lifecycle> {
  const dryRun = raw['dry-run'] === true;
  const limit = maxUsers(raw);
  const config = resolveCommandConfig(raw, deps);
  if (what !== null && !dryRun && raw['yes'] !== true && !(process.stdin.isTTY && deps.isTTY)) {
    throw new UsageError(`${what}: pass --yes to confirm when not at a terminal (or --dry-run to see what it would do)`);
  }
  const warn = warnOf(deps);
  const ledger = await Ledger.open(config.stateDir, config.connection.environmentId, { create: !dryRun, notice: warn });
  // replace imports and assigns: a ledger it had to start knows of no revoked token.
  if (ledger.started && command === 'replace') warn(newLedgerNotice(ledger));
  await prepareOutDir(config.report.outDir);
  // One of these commands at a time per environment: two would race on the same tokens and users.
  const lock: HeldLock | undefined = dryRun || what === null ? undefined : await acquireLock(join(config.stateDir, `${config.connection.environmentId}.lifecycle.lock`));
  let ctx: CommandContext;
  let results: ResultsWriter;
  try {
    ctx = await openCommand(command, path, config, deps);
    ctx.recorder.extraNames = [...list.extraNames];
    results = await ctx.openResults(list.extraNames, [...RESULT_COLUMNS, ...extraColumns], list.file);
  } catch (error) {
    await lock?.release();
    throw error;
  }
  return {
    ctx,
    ledger,
    limit,
    results,
    warn,
    prove: () => proveCredentials(ctx.session, deps.control),
    close: async (failure) => {
      try {
        await results.close();
      } catch (error) {
        failure ??= error;
      }
      await lock?.release();
      if (failure) {
        await results.abandonWorkbook();
        await ctx.log.close();
      }
      return failure;
    },
  };
}
