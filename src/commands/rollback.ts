/**
 * `oath-bulk rollback <results.csv>`: deletes the devices that a run created (outcome
 * CREATED) and that the run's journal records this job created, by device id, after checking
 * that the device still carries that serial on that user. Never touches EXISTING rows.
 * Records each deletion in the journal of the run that created the device (named by the
 * run's summary, or --journal), so that a later run of the same input assigns the token again.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { RawOptions } from '../config.js';
import { UsageError } from '../errors.js';
import { EnvironmentMismatchError, openLockedJournal, readOnlyJournal, type PairJournal } from '../engine/journal.js';
import { orderedPool } from '../engine/ordered-pool.js';
import { Ledger, LedgerDamagedError, LedgerNotes } from '../engine/ledger.js';
import { ROLLBACK_OUTCOMES, undoRow, type RollbackOutcome, type RollbackTarget } from '../engine/rollback-row.js';
import { openInput, readRows, RENAMED_RESULT_COLUMNS, RESULT_COLUMNS, type InputLayout, type RawRow } from '../input/reader.js';
import { UUID_RE } from '../ids.js';
import { checkSerial } from '../input/validate.js';
import { DEVICE_ID_RE } from '../pingone/client.js';
import { commandLine, followUp } from '../report/command-line.js';
import { prepareOutDir, stem } from '../report/files.js';
import { buildSummary, humanSummary, stopAdvice } from '../report/summary.js';
import { Tally } from '../report/tally.js';
import { closeJournal, openCommand, proveCredentials, resolveCommandConfig } from './shared/context.js';
import { warnOf, type CommandDeps } from './shared/deps.js';
import { askYes } from './shared/confirm.js';

export { ROLLBACK_OUTCOMES, type RollbackOutcome };


interface ResultsLayout {
  readonly layout: InputLayout;
  readonly extras: ReadonlyArray<{ name: string; index: number }>;
  readonly targets: () => AsyncGenerator<RollbackTarget & { seq: number }>;
}

async function readTargets(path: string): Promise<ResultsLayout> {
  const layout = await openInput(path, { workbook: true });
  const col = (name: string): number => layout.header.findIndex((h) => h === name);
  const need = ['row', 'userID', 'serialNumber', 'outcome', 'deviceId'];
  const missing = need.filter((n) => col(n) < 0);
  if (missing.length > 0) {
    throw new UsageError(`${path}: line 1: not a results file of oath-bulk run (no ${missing.join(', ')} column); give the <name>.<runId>.results.csv of the run to undo`);
  }
  const extras = layout.extras.filter((e) => !RENAMED_RESULT_COLUMNS.has(e.name));
  const at = (raw: RawRow, name: string): string => raw.fields[col(name)] ?? '';
  async function* targets(): AsyncGenerator<RollbackTarget & { seq: number }> {
    for await (const raw of readRows(layout)) {
      const rowText = at(raw, 'row');
      const target = {
        row: /^\d+$/.test(rowText) ? Number(rowText) : raw.row,
        userID: at(raw, 'userID'),
        serialNumber: at(raw, 'serialNumber'),
        deviceId: at(raw, 'deviceId'),
        runOutcome: at(raw, 'outcome'),
        extras: extras.map((e) => raw.fields[e.index] ?? ''),
      };
      let problem: string | undefined;
      if (target.runOutcome === 'CREATED') {
        if (!UUID_RE.test(target.userID)) problem = `userID ${JSON.stringify(target.userID)} is not a user id`;
        else if (checkSerial(target.serialNumber)) problem = `serialNumber ${JSON.stringify(target.serialNumber)} is not a serial`;
        else if (!DEVICE_ID_RE.test(target.deviceId)) problem = `deviceId ${JSON.stringify(target.deviceId)} is not a device id`;
      }
      const item = { ...target, seq: raw.row };
      yield problem ? { ...item, problem } : item;
    }
  }
  return { layout, extras, targets };
}

/**
 * The journal of the run that wrote the results: --journal, else the one the run's summary
 * (beside the results) names, else `<name>.journal.jsonl` beside the results. `null`: the run
 * kept none (--no-journal). Never a new, empty journal: deletions recorded there would be
 * lost to the next run, which would then report the deleted devices CREATED.
 */
export function findRunJournal(resultsPath: string, given: unknown): string | null {
  const fix = `pass --journal with the path of that run's <name>.journal.jsonl (it is in the run's --out-dir)`;
  if (typeof given === 'string') {
    if (!existsSync(given)) throw new UsageError(`--journal: ${given} does not exist: give the journal of the run that wrote ${basename(resultsPath)}`);
    return given;
  }
  const summaryPath = resultsPath.replace(/\.results\.(csv|xlsx)$/, '.summary.json');
  if (summaryPath !== resultsPath && existsSync(summaryPath)) {
    let named: unknown;
    try {
      named = (JSON.parse(readFileSync(summaryPath, 'utf8')) as { reports?: { journal?: unknown } }).reports?.journal;
    } catch {
      named = undefined;
    }
    if (named === null) return null;
    if (typeof named === 'string') {
      if (existsSync(named)) return named;
      throw new UsageError(`${basename(resultsPath)}: the run's journal ${named} (named in ${basename(summaryPath)}) is not there: ${fix}`);
    }
  }
  const beside = join(dirname(resultsPath), `${stem(resultsPath)}.journal.jsonl`);
  if (existsSync(beside)) return beside;
  throw new UsageError(`${basename(resultsPath)}: cannot find the journal of the run that wrote it (no summary beside it naming one, no ${basename(beside)} beside it): ${fix}`);
}

/** Asks on the terminal (anything but "yes", Ctrl-C and Ctrl-D included, is the normal "nothing deleted" ending). */
function confirm(deps: CommandDeps, count: number, environmentId: string, path: string): Promise<boolean> {
  return askYes(`Delete up to ${count} OATH token devices created by ${basename(path)} in environment ${environmentId}? Type "yes" to go on: `, deps);
}

export async function rollbackCommand(resultsPath: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  const dryRun = raw['dry-run'] === true;
  // Count what would be deleted first: this also checks the file before anything is sent.
  const source = await readTargets(resultsPath);
  let created = 0;
  for await (const t of source.targets()) if (t.runOutcome === 'CREATED' && !t.problem) created++;

  const config = resolveCommandConfig(raw, deps);
  const journalPath = findRunJournal(resultsPath, raw['journal']);
  if (!dryRun && created > 0 && raw['yes'] !== true) {
    if (!(process.stdin.isTTY && deps.isTTY)) {
      throw new UsageError('rollback deletes devices: pass --yes to confirm when not at a terminal (or --dry-run to see what it would delete)');
    }
    if (!(await confirm(deps, created, config.connection.environmentId, resultsPath))) {
      throw new UsageError('rollback: not confirmed; nothing was deleted');
    }
  }

  await prepareOutDir(config.report.outDir);
  const environmentId = config.connection.environmentId;
  // A journal of another environment: said in rollback's terms (the devices are there).
  const inRollbackTerms = (error: unknown): never => {
    throw error instanceof EnvironmentMismatchError ? error.forRollback(resultsPath) : error;
  };
  const locked = journalPath && !dryRun ? await openLockedJournal(journalPath, environmentId, deps.warn).catch(inRollbackTerms) : undefined;
  const journal: PairJournal | undefined = locked?.journal ?? (journalPath ? await readOnlyJournal(journalPath, environmentId).catch(inRollbackTerms) : undefined);
  // The ledger learns that each token whose device this rollback deletes is back in the pool
  // ("returned"): without that, inventory would count them handed out and never returned. A
  // rollback is not stopped by the ledger: missing, it knows no hand-out to close; damaged, it is said.
  let ledger: Ledger | undefined;
  if (!dryRun) {
    try {
      ledger = await Ledger.open(config.stateDir, environmentId, { create: false, keep: 'revocations' });
    } catch (error) {
      // Whatever keeps the ledger from being read (damage, another account's folder): said; the rollback goes on.
      const why = error instanceof LedgerDamagedError ? error.message : `the ledger in ${config.stateDir} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
      warnOf(deps)(`${why}; this rollback goes on, and the tokens it frees are not recorded as returned there`);
    }
  }
  const returns = ledger && existsSync(ledger.path) ? new LedgerNotes(ledger, warnOf(deps)) : undefined;
  const ctx = await openCommand('rollback', resultsPath, config, deps);
  const { logger, session, paths, startedAt } = ctx;
  const retry = { ...ctx.retryContext(journal), runJournal: journal, journalPath: journalPath ?? undefined, dryRun };
  const t0 = performance.now();
  logger.info({ event: 'rollback.start', input: resultsPath, dryRun, created, journal: journalPath });
  const tally = new Tally<RollbackOutcome>(ROLLBACK_OUTCOMES, ['NOT_ATTEMPTED']);
  let createdDone = 0;
  ctx.recorder.extraNames = source.extras.map((e) => e.name);
  const results = await ctx.openResults(source.extras.map((e) => e.name), [...RESULT_COLUMNS, 'runOutcome'], source.layout);

  let failure: unknown;
  try {
    // Prove the credentials first, as run does: refused ones stop it with nothing sent.
    if (created > 0) await proveCredentials(session, deps.control);
    await orderedPool(source.targets(), ctx.engine.concurrency, async (t) => ({ row: t.seq, t, r: await undoRow(t, retry) }), async ({ t, r }) => {
      tally.add(r);
      if (r.outcome === 'FAILED' || r.outcome === 'CHANGED' || r.outcome === 'NOT_ATTEMPTED') {
        ctx.recorder.attention({ row: t.row, userID: t.userID, serialNumber: t.serialNumber, outcome: r.outcome, errorCode: r.errorCode, message: r.message, extras: t.extras });
      }
      if (t.runOutcome === 'CREATED' && (r.outcome === 'DELETED' || r.outcome === 'ALREADY_GONE' || r.outcome === 'WOULD_DELETE')) createdDone++;
      // ALREADY_GONE too: the device a killed rollback deleted before its note was written comes
      // back so on the rerun; either way the hand-out this run made is undone.
      if (t.runOutcome === 'CREATED' && (r.outcome === 'DELETED' || r.outcome === 'ALREADY_GONE')) returns?.note({ e: 'returned', sn: t.serialNumber, user: t.userID, device: t.deviceId, by: `rollback ${paths.runId}` });
      logger[r.outcome === 'FAILED' || r.outcome === 'CHANGED' ? 'warn' : 'info']({ event: 'row', row: t.row, userID: t.userID, serialNumber: t.serialNumber, deviceId: t.deviceId, outcome: r.outcome, httpStatus: r.httpStatus, errorCode: r.errorCode, attempts: r.attempts });
      await results.writeCells([t.row, t.userID, t.serialNumber, r.outcome, t.deviceId, undefined, r.httpStatus, r.errorCode, r.errorDetail, r.message, r.attempts, undefined, t.runOutcome, ...t.extras]);
    });
  } catch (error) {
    failure = error;
  } finally {
    await results.close();
    await returns?.flush();
    failure ??= await closeJournal(locked, deps.control);
  }
  if (failure) {
    await ctx.log.close();
    throw failure;
  }

  const stopped = deps.control.reason;
  // Done when every row the run created is deleted (or would be, or is gone already).
  const exitCode = stopped ? 3 : createdDone === created && tally.count('FAILED') + tally.count('CHANGED') === 0 ? 0 : 1;
  const durationMs = Math.round(performance.now() - t0);
  const summary = buildSummary({ command: 'rollback', runId: paths.runId, input: resultsPath, dryRun, startedAt, durationMs, tally, requests: session.stats, stopped, exitCode, reports: { ...paths, journal: journalPath } });
  const args = deps.argv ?? ['rollback', resultsPath, ...(dryRun ? ['--dry-run'] : [])];
  let next: string | undefined;
  if (stopped) next = `${stopAdvice(stopped)}: ${commandLine(args)}`;
  else if (dryRun && tally.count('WOULD_DELETE') > 0) next = `to delete them: ${commandLine(args, ['--dry-run'], ['--yes'])}`;
  else if (exitCode !== 0) next = `see the rows that are not DELETED in the results, then run the same command again: ${commandLine(args)}`;
  const removed = tally.count('DELETED') + tally.count('ALREADY_GONE');
  if (next === undefined) {
    next = dryRun
      ? 'nothing to delete: no device of this results file is still there for rollback to remove'
      : removed > 0
        ? `the run's devices are gone and their tokens are free in the inventory: to give them to users again, put them in a shipment file and run it (${followUp(args, 'run', '<shipment.csv>')}); running the same input again gives them back to the same users`
        : 'nothing was left to delete: the run created no device that is still there';
  }
  const notes =
    journalPath === null
      ? ['the run kept no journal (--no-journal): the results file alone decided what to delete']
      : !dryRun && removed > 0
        ? [`deletions recorded in ${resolve(journalPath)}: running the input again assigns those tokens anew`]
        : [];
  await ctx.finish(
    summary,
    humanSummary({ title: `oath-bulk rollback ${resultsPath}`, dryRun, durationMs, tally, requests: session.stats, stopped, reports: paths, notes, next }),
  );
  return exitCode;
}
