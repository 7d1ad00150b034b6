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
import { assignRow, earlierEntry, fromJournal, journalEntry, notAttempted, type AssignContext, type ResolvedRow } from './assign-row.js';
import type { RunControl } from './control.js';
import { orderedPool } from './ordered-pool.js';
import { UserResolver } from './user-resolver.js';
import { revokedMessage, revokedWhy, type TokenLife } from './ledger.js';

export interface BatchOptions {
  readonly concurrency: number;
  readonly maxConsecutiveFailures: number;
  /** Validate and plan only: no row is sent. */
  readonly dryRun: boolean;
}

export interface BatchHooks {
  /** Each result, in input order. */
  readonly emit: (result: RowResult) => Promise<void> | void;
  /** Each result as soon as its row is finished, in any order (progress). */
  readonly finished?: (result: RowResult) => void;
  /** Dry run: what the real run would do with the row (the preflight); `plain` is "would create". */
  readonly predict?: (row: ResolvedRow, plain: string) => Promise<RowResult>;
  /** Before a row is sent: a result instead of the create (its seed could not be imported). */
  readonly gate?: (row: ResolvedRow) => RowResult | undefined;
  /** A row's result before it is emitted (activation of a device created ACTIVATION_REQUIRED). */
  readonly after?: (row: CheckedRow, result: RowResult) => Promise<RowResult>;
  /** The ledger: whether the row's token is revoked (never assigned again), read right before the row is sent. */
  readonly revoked?: (serial: string) => Promise<TokenLife['revoked']>;
}

/** A row whose token the ledger has revoked: FAILED TOKEN_REVOKED, nothing sent. */
function revokedRow(row: CheckedRow & { userId?: string }, revoked: NonNullable<TokenLife['revoked']>): RowResult {
  return { ...notAttempted(row), outcome: 'FAILED', errorCode: 'TOKEN_REVOKED', message: revokedMessage(row.serialNumber, revoked) };
}

/** A row an earlier run finished whose token was revoked since: final, not a failure; the device went with the revoke. */
function revokedSince(result: RowResult, revoked: NonNullable<TokenLife['revoked']>): RowResult {
  const day = revoked.at.slice(0, 10);
  const { deviceStatus: _gone, ...rest } = result;
  return {
    ...rest,
    revokedSince: revoked.at,
    message: `finished by an earlier run; revoked since ${day} (${revokedWhy(revoked)}): the token is out of service and its device gone; nothing sent`,
  };
}

function invalid(row: CheckedRow): RowResult {
  return {
    row: row.row,
    userID: row.user?.kind === 'id' ? row.user.value : '',
    serialNumber: row.serialNumber,
    extras: row.extras,
    outcome: 'INVALID',
    errorCode: row.problem!.code,
    message: `row ${row.row} (line ${row.line}): ${row.problem!.message}`,
    attempts: 0,
    durationMs: 0,
  };
}

export async function runBatch(rows: AsyncIterable<CheckedRow>, ctx: AssignContext, control: RunControl, options: BatchOptions, hooks: BatchHooks): Promise<void> {
  const resolver = new UserResolver();
  let breaker = { code: '', count: 0 };
  // Every row sent so far failed with one row code and none succeeded: a setting is wrong.
  let uniform: { code: string; count: number } | undefined = { code: '', count: 0 };

  const judge = (result: RowResult): void => {
    // A dry run's failures are predictions, each row's own: it judges every row.
    if (options.dryRun) return;
    // Decided by the ledger with nothing sent: says nothing of PingOne or the settings.
    if (result.errorCode === 'TOKEN_REVOKED' && result.attempts === 0) return;
    if (uniform && (result.outcome === 'CREATED' || result.outcome === 'EXISTING')) uniform = undefined;
    if (uniform && result.outcome === 'FAILED' && result.errorCode && ROW_SPECIFIC_CODES.has(result.errorCode)) {
      uniform = uniform.code === '' || uniform.code === result.errorCode ? { code: result.errorCode, count: uniform.count + 1 } : undefined;
      if (uniform && uniform.count >= options.maxConsecutiveFailures) {
        control.stop(new StopError('CONFIGURATION_SUSPECTED', suspectedMessage(uniform.code, uniform.count)));
        uniform = undefined;
      }
    }
    // An unanswered create counts as a failure that is not the row's own (UNCONFIRMED).
    if ((result.outcome !== 'FAILED' && result.outcome !== 'UNCONFIRMED') || !result.errorCode || ROW_SPECIFIC_CODES.has(result.errorCode)) {
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

  const after = hooks.after;
  const process = after ? async (row: CheckedRow): Promise<RowResult> => after(row, await decide(row)) : (row: CheckedRow): Promise<RowResult> => decide(row);
  const decide = async (row: CheckedRow): Promise<RowResult> => {
    if (row.problem || !row.user) return invalid(row);
    // The ledger, right before the row is sent: a revoked token is never assigned again.
    const revoked = await hooks.revoked?.(row.serialNumber);
    // What an earlier run finished is reported as such, whether or not this run goes on.
    const { key: idKey, prior: earlier } = earlierEntry(row, ctx.journal);
    if (earlier?.outcome) return revoked ? revokedSince(fromJournal(row, earlier), revoked) : fromJournal(row, earlier);
    if (revoked) return revokedRow(row, revoked);
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
    // A row that names its user by id was looked up above under its pair; an email or username
    // row's pair is known only now.
    const entry = idKey !== undefined ? { key: idKey, prior: earlier } : journalEntry(resolved, ctx.journal);
    if (entry.prior?.outcome) return revoked ? revokedSince(fromJournal(resolved, entry.prior), revoked) : fromJournal(resolved, entry.prior);
    if (options.dryRun) {
      if (entry.prior?.windows) {
        return notAttempted(resolved, "dry run: an earlier run's create went unanswered; the real run reads the user's devices first, then creates the device if it is not there");
      }
      const plain = 'dry run: would create an OATH_TOKEN device for this user';
      return hooks.predict ? hooks.predict(resolved, plain) : notAttempted(resolved, plain);
    }
    if (control.stopped) return notAttempted(resolved);
    const blocked = hooks.gate?.(resolved);
    if (blocked) return blocked;
    return assignRow(resolved, ctx, entry);
  };

  // Rows in progress: more than requests in flight (the session bounds those to
  // --concurrency), so that rows waiting out a backoff leave room for others.
  const rowsInProgress = Math.min(1024, options.concurrency * 4);
  await orderedPool(rows, rowsInProgress, process, async (result) => {
    judge(result);
    await hooks.emit(result);
  }, hooks.finished);
}

/** Why every row failing one way is a setting, and which settings to check. */
function suspectedMessage(code: string, count: number): string {
  const causes: Record<string, string> = {
    USER_NOT_FOUND:
      'PingOne knows none of these users here: --api-url may be wrong (it must end in /v1, e.g. https://api.pingone.eu/v1), --environment-id may name another environment, or --region may not be the environment\'s',
    SERIAL_NOT_FOUND: 'the token seeds are not in this environment\'s OATH token inventory: import them first, or check that --environment-id names the environment they were imported into',
    SERIAL_ALREADY_ASSIGNED: 'these tokens are already assigned: another tool (or a run with another journal) assigned them; check the shipment and the journal',
    MAX_DEVICES_REACHED: 'every user is at the MFA policy\'s device limit: raise it or remove old devices',
  };
  return `the first ${count} rows sent all failed with ${code} and none succeeded, so the run stopped: ${causes[code] ?? 'check the settings'}. Fix that, then run again; if those rows really are wrong, raise --max-consecutive-failures`;
}
