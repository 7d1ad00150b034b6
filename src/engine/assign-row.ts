/**
 * One row's life: skip it if an earlier run finished it, reconcile it if an earlier run
 * started it, announce the create in the journal, create it with retries, and — before a
 * row is ever called FAILED after a refusal or a lost answer — read the user's devices to
 * see whether the token is there after all (SPEC "Exactly once").
 */
import pRetry, { AbortError } from 'p-retry';
import { StopError } from '../errors.js';
import type { CheckedRow } from '../input/validate.js';
import { ApiError } from '../pingone/errors.js';
import { RequestAborted } from '../pingone/http.js';
import type { Device, DeviceApi } from '../pingone/client.js';
import type { RowResult } from '../report/outcome.js';
import { retryDelay, type BackoffOptions } from './backoff.js';
import { pairKey, type PairJournal, type PairState } from './journal.js';

/** How far PingOne's clock may be behind ours when telling "we created it" from "it was there". */
const CLOCK_SKEW_MS = 120_000;

export interface RetryEvent {
  readonly row: number;
  readonly attempt: number;
  readonly delayMs: number;
  readonly httpStatus?: number;
  readonly errorCode: string;
  readonly message: string;
}

export interface AssignContext {
  readonly api: DeviceApi;
  readonly journal: PairJournal;
  readonly maxAttempts: number;
  readonly backoff: BackoffOptions;
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Soft stop: no new attempts. */
  readonly stopping: AbortSignal;
  /** Hard stop: cut requests in flight. */
  readonly hard: AbortSignal;
  readonly onRetry?: (event: RetryEvent) => void;
  readonly onSystemic: (error: StopError) => void;
}

export interface ResolvedRow extends CheckedRow {
  /** The PingOne user id (from the file, or resolved from email/username). */
  readonly userId: string;
}

type Base = Pick<RowResult, 'row' | 'userID' | 'serialNumber' | 'extras'>;

function base(row: ResolvedRow): Base {
  return { row: row.row, userID: row.userId, serialNumber: row.serialNumber, extras: row.extras };
}

export function fromJournal(row: ResolvedRow, state: PairState): RowResult {
  return {
    ...base(row),
    outcome: state.outcome!,
    deviceId: state.deviceId,
    deviceStatus: state.deviceStatus,
    message: 'finished by an earlier run; nothing sent',
    attempts: 0,
    durationMs: 0,
  };
}

export function notAttempted(row: CheckedRow & { userId?: string }, message = 'the run stopped before this row; run again to finish', attempts = 0): RowResult {
  return {
    row: row.row,
    userID: row.userId ?? row.userText,
    serialNumber: row.serialNumber,
    extras: row.extras,
    outcome: 'NOT_ATTEMPTED',
    message,
    attempts,
    durationMs: 0,
  };
}

/** The run is stopping and this row was cut short by it (not refused by PingOne). */
function isAbort(error: unknown, ctx: AssignContext): boolean {
  if (error instanceof RequestAborted) return true;
  if (!ctx.stopping.aborted) return false;
  return error === ctx.stopping.reason || (!(error instanceof ApiError) && !(error instanceof StopError));
}

/** The row's pair in the journal, and what earlier runs recorded for it. */
export interface JournalEntry {
  readonly key: string;
  readonly prior?: PairState;
}

export function journalEntry(row: ResolvedRow, journal: PairJournal): JournalEntry {
  const key = pairKey(row.userId, row.serialNumber);
  return { key, prior: journal.lookup(key) };
}

/** `entry`: the row's journal entry, when the caller has already looked it up. */
export async function assignRow(row: ResolvedRow, ctx: AssignContext, entry: JournalEntry = journalEntry(row, ctx.journal)): Promise<RowResult> {
  const now = Date.now;
  const started = now();
  const { key, prior } = entry;
  let attempts = 0;
  let firstSentAt: number | undefined;
  let uncertain = false;
  const correlationId = `oath-bulk-${row.row}-${started.toString(36)}`;

  const finish = (device: Device, since: number | undefined, note?: string): RowResult => {
    const outcome =
      since === undefined ? 'EXISTING' : device.createdAt === undefined || Date.parse(device.createdAt) >= since - CLOCK_SKEW_MS ? 'CREATED' : 'EXISTING';
    ctx.journal.finished(key, row.row, { outcome, deviceId: device.id, deviceStatus: device.status });
    return {
      ...base(row),
      outcome,
      deviceId: device.id,
      deviceStatus: device.status,
      httpStatus: note ? undefined : 201,
      message: outcome === 'EXISTING' ? 'the user already held this token' : note,
      attempts,
      durationMs: now() - started,
    };
  };

  const failed = (error: ApiError, code: string, message?: string): RowResult => ({
    ...base(row),
    outcome: 'FAILED',
    httpStatus: error.status,
    errorCode: code,
    errorDetail: error.detail || undefined,
    message: message ?? error.message,
    attempts,
    durationMs: now() - started,
  });

  const systemic = (error: StopError): RowResult => {
    ctx.onSystemic(error);
    return { ...base(row), outcome: 'FAILED', errorCode: error.code, message: error.message, attempts, durationMs: now() - started };
  };

  try {
    if (prior?.startedAt !== undefined) {
      // An earlier run sent a create and never learned its fate: look before sending again.
      const found = await findOnUser(row, ctx);
      if (found) return finish(found, prior.startedAt, 'found on the user after an interrupted run');
    }
    await ctx.journal.started(key, row.row, now());
    const device = await withRetries(ctx, row.row, async () => {
      firstSentAt ??= now();
      attempts++;
      try {
        return await ctx.api.createOathDevice(row.userId, row.serialNumber, { signal: ctx.hard, notAfter: ctx.stopping, correlationId });
      } catch (error) {
        // An attempt PingOne may have carried out (lost answer, timeout, 5xx): its effect is unknown.
        if (error instanceof ApiError && error.maybeSent && error.verdict.kind === 'retry' && !error.verdict.rateLimited) uncertain = true;
        throw error;
      }
    });
    return finish(device, firstSentAt);
  } catch (error) {
    if (isAbort(error, ctx)) return notAttempted(row, attempts > 0 ? 'stopped before PingOne answered; the next run checks this user\'s devices first' : undefined, attempts);
    if (error instanceof StopError) return systemic(error);
    if (!(error instanceof ApiError)) throw error;
    const verdict = error.verdict;
    const refused = verdict.kind === 'refused';
    if ((refused && verdict.code !== 'USER_NOT_FOUND') || uncertain) {
      try {
        const found = await findOnUser(row, ctx);
        const since = prior?.startedAt ?? (uncertain ? firstSentAt : undefined);
        if (found) return finish(found, since, 'created; the answer was lost and the device was found on the user');
      } catch (checkError) {
        if (isAbort(checkError, ctx)) return notAttempted(row, 'stopped while checking the user\'s devices; the next run checks again', attempts);
        if (checkError instanceof StopError) return systemic(checkError);
        return failed(error, refused ? verdict.code : 'RETRIES_EXHAUSTED', `${error.message}; the user's devices could not be read to confirm`);
      }
    }
    if (refused) return failed(error, verdict.code);
    return failed(error, 'RETRIES_EXHAUSTED', `${attempts} attempts failed; last: ${error.message}`);
  }
}

/** Reads the user's devices (with retries) and returns the one carrying the row's serial. */
async function findOnUser(row: ResolvedRow, ctx: AssignContext): Promise<Device | undefined> {
  const devices = await withRetries(ctx, row.row, () => ctx.api.listDevices(row.userId, { signal: ctx.hard, notAfter: ctx.stopping }));
  return devices.find((d) => d.serialNumber === row.serialNumber);
}

/**
 * p-retry drives the attempts; the delay policy is ours (Retry-After, else backoff with
 * jitter), so p-retry's own timeouts are zero. Only failures that can succeed later are
 * retried: p-retry would otherwise retry everything but TypeErrors.
 */
export function withRetries<T>(ctx: AssignContext, row: number, attempt: () => Promise<T>): Promise<T> {
  // No `signal` for p-retry: it would throw away an answer that arrives after the stop
  // (a device created, reported as not attempted). A stop prevents the next attempt instead.
  return pRetry(async (n) => {
    if (n > 1 && ctx.stopping.aborted) throw new AbortError(ctx.stopping.reason as Error);
    return attempt();
  }, {
    retries: ctx.maxAttempts - 1,
    minTimeout: 0,
    maxTimeout: 0,
    factor: 1,
    randomize: false,
    shouldRetry: ({ error }) => error instanceof ApiError && error.verdict.kind === 'retry',
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
      if (!(error instanceof ApiError) || error.verdict.kind !== 'retry' || retriesLeft <= 0) return;
      const delayMs = retryDelay(attemptNumber, error.retryAfterMs, ctx.backoff);
      ctx.onRetry?.({ row, attempt: attemptNumber, delayMs, httpStatus: error.status, errorCode: error.verdict.code, message: error.message });
      await ctx.sleep(delayMs, ctx.stopping);
    },
  });
}
