/**
 * `oath-bulk rollback <results.csv>`: deletes the devices that a run created (outcome
 * CREATED), by device id, after checking that the device still carries that serial on that
 * user. Never touches EXISTING rows. Takes the run's journal lock and records each deletion
 * in the journal, so that a later run of the same input assigns the token again.
 */
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { RawOptions } from '../config.js';
import { StopError, UsageError } from '../errors.js';
import { withRetries } from '../engine/assign-row.js';
import { NullJournal, openLockedJournal, pairKey, type PairJournal } from '../engine/journal.js';
import { orderedPool } from '../engine/ordered-pool.js';
import { openInput, readRows, type RawRow } from '../input/reader.js';
import { UUID_RE } from '../config.js';
import { checkSerial } from '../input/validate.js';
import { DEVICE_ID_RE } from '../pingone/client.js';
import { ApiError } from '../pingone/errors.js';
import { prepareOutDir, stem } from '../report/files.js';
import { ResultsWriter } from '../report/results-writer.js';
import { reportLines } from '../report/summary.js';
import { openCommand, resolveCommandConfig } from './context.js';
import type { CommandDeps } from './run.js';

export const ROLLBACK_OUTCOMES = ['DELETED', 'WOULD_DELETE', 'ALREADY_GONE', 'CHANGED', 'SKIPPED', 'FAILED', 'NOT_ATTEMPTED'] as const;
export type RollbackOutcome = (typeof ROLLBACK_OUTCOMES)[number];

const COLUMNS = ['row', 'userID', 'serialNumber', 'deviceId', 'runOutcome', 'outcome', 'httpStatus', 'errorCode', 'message'];

interface Target {
  readonly row: number;
  readonly userID: string;
  readonly serialNumber: string;
  readonly deviceId: string;
  readonly runOutcome: string;
  readonly problem?: string;
}

interface RollbackRow {
  readonly row: number;
  readonly target: Target;
  readonly outcome: RollbackOutcome;
  readonly httpStatus?: number;
  readonly errorCode?: string;
  readonly message?: string;
}

async function* targets(path: string): AsyncGenerator<Target> {
  const layout = await openInput(path);
  const col = (name: string): number => layout.header.findIndex((h) => h === name);
  const need = ['row', 'userID', 'serialNumber', 'outcome', 'deviceId'];
  const missing = need.filter((n) => col(n) < 0);
  if (missing.length > 0) {
    throw new UsageError(`${path}: line 1: not a results file of oath-bulk run (no ${missing.join(', ')} column); give the <name>.<runId>.results.csv of the run to undo`);
  }
  const at = (raw: RawRow, name: string): string => raw.fields[col(name)] ?? '';
  for await (const raw of readRows(layout)) {
    const target = { row: raw.row, userID: at(raw, 'userID'), serialNumber: at(raw, 'serialNumber'), deviceId: at(raw, 'deviceId'), runOutcome: at(raw, 'outcome') };
    let problem: string | undefined;
    if (target.runOutcome === 'CREATED') {
      if (!UUID_RE.test(target.userID)) problem = `userID ${JSON.stringify(target.userID)} is not a user id`;
      else if (checkSerial(target.serialNumber)) problem = `serialNumber ${JSON.stringify(target.serialNumber)} is not a serial`;
      else if (!DEVICE_ID_RE.test(target.deviceId)) problem = `deviceId ${JSON.stringify(target.deviceId)} is not a device id`;
    }
    yield problem ? { ...target, problem } : target;
  }
}

async function confirm(deps: CommandDeps, count: number, environmentId: string, path: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: deps.stderr });
  try {
    const answer = await rl.question(`Delete up to ${count} OATH token devices created by ${basename(path)} in environment ${environmentId}? Type "yes" to go on: `);
    return answer.trim().toLowerCase() === 'yes';
  } finally {
    rl.close();
  }
}

export async function rollbackCommand(resultsPath: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  const dryRun = raw['dry-run'] === true;
  // Count what would be deleted first: this also checks the file before anything is sent.
  let created = 0;
  for await (const t of targets(resultsPath)) if (t.runOutcome === 'CREATED' && !t.problem) created++;

  const config = resolveCommandConfig(raw, deps);
  const journalPath = typeof raw['journal'] === 'string' ? raw['journal'] : join(dirname(resultsPath), `${stem(resultsPath)}.journal.jsonl`);
  if (!dryRun && created > 0 && raw['yes'] !== true) {
    if (!(process.stdin.isTTY && deps.isTTY)) {
      throw new UsageError('rollback deletes devices: pass --yes to confirm when not at a terminal (or --dry-run to see what it would delete)');
    }
    if (!(await confirm(deps, created, config.connection.environmentId, resultsPath))) {
      throw new UsageError('rollback: not confirmed; nothing was deleted');
    }
  }

  await prepareOutDir(config.report.outDir);
  const locked = dryRun ? undefined : await openLockedJournal(journalPath, config.connection.environmentId);
  const journal: PairJournal = locked?.journal ?? new NullJournal();
  const ctx = await openCommand('rollback', resultsPath, config, deps);
  const { logger, session, paths } = ctx;
  const retry = ctx.retryContext(journal);
  const t0 = performance.now();
  logger.info({ event: 'rollback.start', input: resultsPath, dryRun, created, journal: dryRun ? null : journalPath });
  const counts = Object.fromEntries(ROLLBACK_OUTCOMES.map((o) => [o, 0])) as Record<RollbackOutcome, number>;
  const results = await ResultsWriter.open(paths.results, [], COLUMNS);

  const undo = async (t: Target): Promise<RollbackRow> => {
    if (t.runOutcome !== 'CREATED') return { row: t.row, target: t, outcome: 'SKIPPED', message: t.runOutcome === 'EXISTING' ? 'the user held this token before the run: never touched' : `not created by the run (${t.runOutcome || 'no outcome'})` };
    if (t.problem) return { row: t.row, target: t, outcome: 'FAILED', errorCode: 'ROW_UNREADABLE', message: t.problem };
    if (deps.control.stopped) return { row: t.row, target: t, outcome: 'NOT_ATTEMPTED', message: 'the rollback stopped before this row; run it again to finish' };
    try {
      const devices = await withRetries(retry, t.row, () => session.client.listDevices(t.userID, { signal: deps.control.hard, notAfter: deps.control.stopping }));
      const device = devices.find((d) => d.id === t.deviceId);
      if (!device) {
        if (!dryRun) await journal.removed(pairKey(t.userID, t.serialNumber), t.row, t.deviceId);
        return { row: t.row, target: t, outcome: 'ALREADY_GONE', message: 'the device is no longer on the user' };
      }
      if (device.serialNumber !== t.serialNumber) {
        return { row: t.row, target: t, outcome: 'CHANGED', errorCode: 'DEVICE_CHANGED', message: `device ${t.deviceId} now carries serial ${device.serialNumber ?? 'none'}: left alone` };
      }
      if (dryRun) return { row: t.row, target: t, outcome: 'WOULD_DELETE', message: 'dry run: would delete this device' };
      await withRetries(retry, t.row, () => session.client.deleteDevice(t.userID, t.deviceId, { signal: deps.control.hard, notAfter: deps.control.stopping }));
      await journal.removed(pairKey(t.userID, t.serialNumber), t.row, t.deviceId);
      return { row: t.row, target: t, outcome: 'DELETED', httpStatus: 204 };
    } catch (error) {
      if (error instanceof StopError) {
        deps.control.stop(error);
        return { row: t.row, target: t, outcome: 'FAILED', errorCode: error.code, message: error.message };
      }
      if (error instanceof ApiError) {
        if (error.verdict.kind === 'refused' && error.verdict.code === 'USER_NOT_FOUND') {
          if (!dryRun) await journal.removed(pairKey(t.userID, t.serialNumber), t.row, t.deviceId);
          return { row: t.row, target: t, outcome: 'ALREADY_GONE', httpStatus: 404, message: 'the user or device no longer exists' };
        }
        return { row: t.row, target: t, outcome: 'FAILED', httpStatus: error.status, errorCode: error.verdict.kind === 'refused' ? error.verdict.code : 'RETRIES_EXHAUSTED', message: error.message };
      }
      if (deps.control.stopped) return { row: t.row, target: t, outcome: 'NOT_ATTEMPTED', message: 'the rollback stopped before this row; run it again to finish' };
      throw error;
    }
  };

  let failure: unknown;
  try {
    await orderedPool(targets(resultsPath), ctx.engine.concurrency, undo, async (r) => {
      counts[r.outcome]++;
      const t = r.target;
      logger[r.outcome === 'FAILED' || r.outcome === 'CHANGED' ? 'warn' : 'info']({ event: 'row', row: r.row, userID: t.userID, serialNumber: t.serialNumber, deviceId: t.deviceId, outcome: r.outcome, httpStatus: r.httpStatus, errorCode: r.errorCode });
      await results.writeCells([r.row, t.userID, t.serialNumber, t.deviceId, t.runOutcome, r.outcome, r.httpStatus, r.errorCode, r.message]);
    });
  } catch (error) {
    failure = error;
  } finally {
    await results.close();
    await (locked ?? journal).close().catch((error: unknown) => {
      failure ??= error;
    });
  }
  if (failure) {
    await ctx.log.close();
    throw failure;
  }

  const stopped = deps.control.reason;
  const exitCode = stopped ? 3 : counts.FAILED + counts.CHANGED + counts.NOT_ATTEMPTED > 0 ? 1 : 0;
  const durationMs = Math.round(performance.now() - t0);
  const summary = { command: 'rollback', runId: paths.runId, input: resultsPath, dryRun, outcomes: counts, requests: session.stats, durationMs, stopped: stopped ? { code: stopped.code, message: stopped.message } : null, exitCode, reports: { results: paths.results, log: paths.log, summary: paths.summary, journal: dryRun ? null : journalPath } };
  const line = ROLLBACK_OUTCOMES.filter((o) => counts[o] > 0).map((o) => `${o} ${counts[o]}`).join(' · ') || 'nothing to do';
  await ctx.finish(
    summary,
    `oath-bulk rollback ${resultsPath}: ${stopped ? `STOPPED (${stopped.code})` : dryRun ? 'dry run finished' : 'finished'} in ${(durationMs / 1000).toFixed(1)}s\n` +
      `  ${line}\n` +
      (dryRun && counts.WOULD_DELETE > 0 ? `  next: to delete them, run it again without --dry-run\n` : '') +
      `${reportLines(paths)}\n`,
  );
  return exitCode;
}
