/**
 * Runs rows through the engine: p-limit bounds the rows in flight, the pacer (inside the
 * client's gate) spaces the requests, rows are pulled from the stream only as fast as
 * they are finished, and results leave in input order. A breaker stops the run when rows
 * keep failing for a reason that is not theirs.
 */
import pLimit from 'p-limit';
import { StopError } from '../errors.js';
import type { CheckedRow } from '../input/validate.js';
import { ApiError, ROW_SPECIFIC_CODES } from '../pingone/errors.js';
import type { RowResult } from '../report/outcome.js';
import { assignRow, fromJournal, notAttempted, type AssignContext, type ResolvedRow } from './assign-row.js';
import type { RunControl } from './control.js';
import { InOrder } from './in-order.js';
import { pairKey } from './journal.js';
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
  const order = new InOrder<RowResult>(hooks.emit);
  // Rows in progress: more than requests in flight (the session bounds those to
  // --concurrency), so that rows waiting out a backoff leave room for others.
  const rowsInProgress = Math.min(1024, options.concurrency * 4);
  const limit = pLimit(rowsInProgress);
  const resolver = new UserResolver();
  const inflight = new Set<Promise<void>>();
  const maxWaiting = Math.max(1000, options.concurrency * 100);
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

  const process = async (row: CheckedRow): Promise<RowResult> => {
    if (control.stopped) return notAttempted(row);
    let userId: string;
    try {
      const resolution = await resolver.resolve(row.user!, row.row, ctx);
      if ('code' in resolution) {
        return { row: row.row, userID: '', serialNumber: row.serialNumber, extras: row.extras, outcome: 'FAILED', errorCode: resolution.code, message: resolution.message, attempts: 1, durationMs: 0 };
      }
      userId = resolution.userId;
    } catch (error) {
      if (control.stopped && error === control.stopping.reason) return notAttempted(row);
      if (error instanceof StopError) {
        ctx.onSystemic(error);
        return { ...notAttempted(row), outcome: 'FAILED', errorCode: error.code, message: error.message };
      }
      if (error instanceof ApiError) {
        return { row: row.row, userID: '', serialNumber: row.serialNumber, extras: row.extras, outcome: 'FAILED', httpStatus: error.status, errorCode: 'RETRIES_EXHAUSTED', errorDetail: error.detail, message: `user lookup failed: ${error.message}`, attempts: 1, durationMs: 0 };
      }
      if (control.stopped) return notAttempted(row);
      throw error;
    }
    const resolved: ResolvedRow = { ...row, userId };
    const state = ctx.journal.lookup(pairKey(userId, row.serialNumber));
    if (state?.outcome) return fromJournal(resolved, state);
    if (options.dryRun) return notAttempted(resolved, 'dry run: would create an OATH_TOKEN device for this user');
    if (control.stopped) return notAttempted(resolved);
    return assignRow(resolved, ctx);
  };

  for await (const row of rows) {
    if (order.backlog >= maxWaiting) await order.settled();
    if (row.problem || !row.user) {
      order.put(invalid(row));
      continue;
    }
    if (control.stopped) {
      order.put(notAttempted(row));
      continue;
    }
    // Identified by id and finished by an earlier run: answered here, without a slot.
    if (row.user.kind === 'id') {
      const state = ctx.journal.lookup(pairKey(row.user.value, row.serialNumber));
      if (state?.outcome) {
        order.put(fromJournal({ ...row, userId: row.user.value }, state));
        continue;
      }
    }
    while (inflight.size > 0 && (limit.activeCount + limit.pendingCount >= rowsInProgress || order.buffered >= maxWaiting)) {
      await Promise.race(inflight);
    }
    const task: Promise<void> = limit(() => process(row)).then((result) => {
      inflight.delete(task);
      judge(result);
      order.put(result);
    });
    inflight.add(task);
  }
  await Promise.all(inflight);
  await order.settled();
}
