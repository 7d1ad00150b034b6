/**
 * Runs rows through the engine: a bounded pool of rows in progress (orderedPool), the
 * session's limit on requests in flight and its pacer, rows pulled from the stream only as
 * fast as they finish, results out in input order. A breaker stops the run when rows keep
 * failing, in input order, for a reason that is not theirs.
 */
import { StopError } from '../errors.js';
import type { CheckedRow } from '../input/validate.js';
import { ApiError, ROW_SPECIFIC_CODES } from '../pingone/errors.js';
import type { RowResult } from '../report/outcome.js';
import { assignRow, fromJournal, journalEntry, notAttempted, type AssignContext, type ResolvedRow } from './assign-row.js';
import type { RunControl } from './control.js';
import { orderedPool } from './ordered-pool.js';
import { UserResolver } from './user-resolver.js';

export interface BatchOptions {
  readonly concurrency: number;
  readonly maxConsecutiveFailures: number;
  /** Validate and plan only: no row is sent. */
  readonly dryRun: boolean;
}

export interface BatchHooks {
  /** Each result, in input order. */
  readonly emit: (result: RowResult) => Promise<void> | void;
}

function invalid(row: CheckedRow): RowResult {
  return {
    row: row.row,
    userID: row.userText,
    serialNumber: row.serialNumber,
    extras: row.extras,
    outcome: 'INVALID',
    errorCode: row.problem!.code,
    message: `line ${row.line}: ${row.problem!.message}`,
    attempts: 0,
    durationMs: 0,
  };
}

export async function runBatch(rows: AsyncIterable<CheckedRow>, ctx: AssignContext, control: RunControl, options: BatchOptions, hooks: BatchHooks): Promise<void> {
  const resolver = new UserResolver();
  let breaker = { code: '', count: 0 };

  const judge = (result: RowResult): void => {
    if (result.outcome !== 'FAILED' || !result.errorCode || ROW_SPECIFIC_CODES.has(result.errorCode)) {
      if (result.outcome === 'CREATED' || result.outcome === 'EXISTING' || result.outcome === 'FAILED') breaker = { code: '', count: 0 };
      return;
    }
    breaker = result.errorCode === breaker.code ? { code: breaker.code, count: breaker.count + 1 } : { code: result.errorCode, count: 1 };
    if (breaker.count >= options.maxConsecutiveFailures) {
      control.stop(
        new StopError(
          'BREAKER_TRIPPED',
          `${breaker.count} rows in a row failed with ${breaker.code}: PingOne or the network is failing for every row, so the run stopped (--max-consecutive-failures ${options.maxConsecutiveFailures}); check PingOne's status and the network, then rerun to finish`,
        ),
      );
    }
  };

  const lookupFailed = (row: CheckedRow, fields: Pick<RowResult, 'errorCode' | 'message'> & Partial<RowResult>): RowResult => ({
    row: row.row,
    userID: '',
    serialNumber: row.serialNumber,
    extras: row.extras,
    outcome: 'FAILED',
    attempts: 1,
    durationMs: 0,
    ...fields,
  });

  const process = async (row: CheckedRow): Promise<RowResult> => {
    if (row.problem || !row.user) return invalid(row);
    if (control.stopped) return notAttempted(row);
    let userId: string;
    try {
      const resolution = await resolver.resolve(row.user, row.row, ctx);
      if ('code' in resolution) return lookupFailed(row, { errorCode: resolution.code, message: resolution.message });
      userId = resolution.userId;
    } catch (error) {
      if (control.stopped && error === control.stopping.reason) return notAttempted(row);
      if (error instanceof StopError) {
        ctx.onSystemic(error);
        return { ...notAttempted(row), outcome: 'FAILED', errorCode: error.code, message: error.message };
      }
      if (error instanceof ApiError) {
        return lookupFailed(row, { httpStatus: error.status, errorCode: 'RETRIES_EXHAUSTED', errorDetail: error.detail, message: `user lookup failed: ${error.message}` });
      }
      if (control.stopped) return notAttempted(row);
      throw error;
    }
    const resolved: ResolvedRow = { ...row, userId };
    const entry = journalEntry(resolved, ctx.journal);
    if (entry.prior?.outcome) return fromJournal(resolved, entry.prior);
    if (options.dryRun) return notAttempted(resolved, 'dry run: would create an OATH_TOKEN device for this user');
    if (control.stopped) return notAttempted(resolved);
    return assignRow(resolved, ctx, entry);
  };

  // Rows in progress: more than requests in flight (the session bounds those to
  // --concurrency), so that rows waiting out a backoff leave room for others.
  const rowsInProgress = Math.min(1024, options.concurrency * 4);
  await orderedPool(rows, rowsInProgress, process, async (result) => {
    judge(result);
    await hooks.emit(result);
  });
}
