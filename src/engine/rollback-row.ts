/**
 * Undoing one row of a run: delete the device the run created, and only if the run's
 * journal records that this job created exactly that device (README "What decides CREATED").
 * Checks first that the device is still on that user with that serial; records the deletion
 * in the journal so that the next run assigns the token anew.
 */
import { StopError } from '../errors.js';
import { ApiError } from '../pingone/errors.js';
import { withRetries, withRetriesNoting, type AssignContext } from './assign-row.js';
import { pairKey, type PairJournal } from './journal.js';

export const ROLLBACK_OUTCOMES = ['DELETED', 'WOULD_DELETE', 'ALREADY_GONE', 'CHANGED', 'SKIPPED', 'FAILED', 'NOT_ATTEMPTED'] as const;
export type RollbackOutcome = (typeof ROLLBACK_OUTCOMES)[number];

/** One row of the results file being undone. */
export interface RollbackTarget {
  readonly row: number;
  readonly userID: string;
  readonly serialNumber: string;
  readonly deviceId: string;
  readonly runOutcome: string;
  readonly extras: readonly string[];
  /** Why the row cannot be used, when it is damaged. */
  readonly problem?: string;
}

export interface RollbackResult {
  readonly outcome: RollbackOutcome;
  readonly httpStatus?: number;
  readonly errorCode?: string;
  readonly errorDetail?: string;
  readonly message?: string;
  readonly attempts: number;
}

export interface RollbackContext extends Pick<AssignContext, 'api' | 'maxAttempts' | 'backoff' | 'sleep' | 'stopping' | 'hard' | 'onRetry' | 'onSystemic'> {
  /** The run's journal; `undefined` when the run kept none (--no-journal). */
  readonly runJournal: PairJournal | undefined;
  readonly journalPath?: string;
  readonly dryRun: boolean;
}

export async function undoRow(t: RollbackTarget, ctx: RollbackContext): Promise<RollbackResult> {
  let attempts = 0;
  if (t.runOutcome !== 'CREATED') {
    const why =
      t.runOutcome === 'EXISTING'
        ? 'the user held this token before the run: never touched'
        : t.runOutcome === 'UNCONFIRMED'
          ? 'the run could not confirm this create: run the input again (it settles the row), then roll back from its results'
          : `not created by the run (${t.runOutcome || 'no outcome'})`;
    return { outcome: 'SKIPPED', message: why, attempts };
  }
  if (t.problem) return { outcome: 'FAILED', errorCode: 'ROW_UNREADABLE', message: t.problem, attempts };
  if (ctx.stopping.aborted) return { outcome: 'NOT_ATTEMPTED', message: 'the rollback stopped before this row; run it again to finish', attempts };
  const key = pairKey(t.userID, t.serialNumber);
  const recorded = ctx.runJournal?.lookup(key);
  const ours = ctx.runJournal === undefined || (recorded?.outcome === 'CREATED' && recorded.deviceId === t.deviceId);
  const forget = async (): Promise<void> => {
    if (!ctx.dryRun && ctx.runJournal && ours) await ctx.runJournal.removed(key, t.row, t.deviceId);
  };
  const opts = { signal: ctx.hard, notAfter: ctx.stopping };
  let deleteUnanswered = false;
  try {
    attempts++;
    const devices = await withRetries(ctx, t.row, () => ctx.api.listDevices(t.userID, opts));
    const device = devices.find((d) => d.id === t.deviceId);
    if (!device) {
      await forget();
      return { outcome: 'ALREADY_GONE', message: 'the device is no longer on the user', attempts };
    }
    if (device.serialNumber !== t.serialNumber) {
      return { outcome: 'CHANGED', errorCode: 'DEVICE_CHANGED', message: `device ${t.deviceId} now carries serial ${device.serialNumber ?? 'none'}: left alone`, attempts };
    }
    if (!ours) {
      return {
        outcome: 'SKIPPED',
        errorCode: 'NOT_CREATED_BY_THIS_JOB',
        message: `the journal ${ctx.journalPath ?? ''} does not record that this job created device ${t.deviceId}: left alone`,
        attempts,
      };
    }
    if (ctx.dryRun) return { outcome: 'WOULD_DELETE', message: 'dry run: would delete this device', attempts };
    await withRetriesNoting(ctx, t.row, () => {
      attempts++;
      return ctx.api.deleteDevice(t.userID, t.deviceId, opts);
    }, () => (deleteUnanswered = true));
    await forget();
    return { outcome: 'DELETED', httpStatus: 204, attempts };
  } catch (error) {
    if (error instanceof StopError) {
      ctx.onSystemic(error);
      return { outcome: 'FAILED', errorCode: error.code, message: error.message, attempts };
    }
    if (error instanceof ApiError) {
      if (error.verdict.kind === 'refused' && error.verdict.code === 'USER_NOT_FOUND') {
        await forget();
        // Our own delete whose answer was lost, then "not found": it was our delete that worked.
        if (deleteUnanswered) return { outcome: 'DELETED', httpStatus: 404, message: 'deleted: the answer to the delete was lost, and the device is gone', attempts };
        return { outcome: 'ALREADY_GONE', httpStatus: 404, message: 'the user or device no longer exists', attempts };
      }
      return { outcome: 'FAILED', httpStatus: error.status, errorCode: error.rowCode, errorDetail: error.detail || undefined, message: error.message, attempts };
    }
    if (ctx.stopping.aborted) {
      return deleteUnanswered
        ? { outcome: 'FAILED', errorCode: 'UNCONFIRMED', message: 'a delete was sent and the rollback stopped before PingOne answered: run the rollback again to check', attempts }
        : { outcome: 'NOT_ATTEMPTED', message: 'the rollback stopped before this row; run it again to finish', attempts };
    }
    throw error;
  }
}
