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
import { pairKey, type PairJournal, type PairState, type Window } from './journal.js';

/**
 * How far PingOne's clock may be off ours. Only a create whose answer never came is ever
 * judged by time, and then the allowance widens the window towards CREATED: a device of ours
 * is never called EXISTING because of skew (README "What decides CREATED").
 */
export const CLOCK_ALLOWANCE_MS = 5 * 60_000;

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
  /** Per request (--timeout): how long after it is written PingOne can still act on a create. */
  readonly timeoutMs: number;
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

export function fromJournal(row: CheckedRow & { userId?: string }, state: PairState): RowResult {
  return {
    row: row.row,
    userID: row.userId ?? state.userId ?? '',
    serialNumber: row.serialNumber,
    extras: row.extras,
    finishedEarlier: true,
    ...(state.activationRefused ? { activationRefused: true } : {}),
    // A device pair's journal holds only CREATED or EXISTING.
    outcome: state.outcome as 'CREATED' | 'EXISTING',
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
    userID: row.userId ?? (row.user?.kind === 'id' ? row.user.value : ''),
    serialNumber: row.serialNumber,
    extras: row.extras,
    outcome: 'NOT_ATTEMPTED',
    message,
    attempts,
    durationMs: 0,
  };
}

/** A create was (maybe) sent and the run stopped before its answer: the next run checks. */
export function unconfirmed(row: ResolvedRow, attempts: number, message: string): RowResult {
  return { ...base(row), outcome: 'UNCONFIRMED', errorCode: 'UNCONFIRMED', message, attempts, durationMs: 0 };
}

/** The run is stopping and this row was cut short by it (not refused by PingOne). */
/** A request PingOne may have carried out without our hearing of it (lost answer, timeout, 5xx, cut mid-flight). */
export function unanswered(error: unknown): boolean {
  return (error instanceof ApiError && error.maybeSent && error.verdict.kind === 'retry' && !error.verdict.rateLimited) || (error instanceof RequestAborted && error.sent);
}

/** A request that may have reached PingOne and whose answer never came: ends its retries (withRetriesOnce). */
export class Unanswered extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original));
  }
}

/**
 * withRetries for a request PingOne must get at most once (a job that may be running, codes that
 * may be spent): it is retried only while PingOne cannot have acted on it (429, a refused
 * connection); an attempt whose answer was lost ends the retries with Unanswered.
 */
export function withRetriesOnce<T>(ctx: Parameters<typeof withRetries>[0], row: number, attempt: () => Promise<T>): Promise<T> {
  return withRetries(ctx, row, async () => {
    try {
      return await attempt();
    } catch (error) {
      throw unanswered(error) ? new Unanswered(error) : error;
    }
  });
}

/**
 * withRetries that calls `unheard` for each attempt whose answer was lost (PingOne may have
 * carried it out): a delete that later meets a 404 was then this command's own.
 */
export function withRetriesNoting<T>(ctx: Parameters<typeof withRetries>[0], row: number, attempt: () => Promise<T>, unheard: () => void): Promise<T> {
  return withRetries(ctx, row, async () => {
    try {
      return await attempt();
    } catch (error) {
      if (unanswered(error)) unheard();
      throw error;
    }
  });
}

/** Whether `error` is the stop cutting the work short (not a refusal, not a systemic stop). */
export function isAbortOf(error: unknown, stopping: AbortSignal): boolean {
  if (error instanceof RequestAborted) return true;
  if (!stopping.aborted) return false;
  return error === stopping.reason || (!(error instanceof ApiError) && !(error instanceof StopError));
}

import { aliasKey } from './earlier.js';

export { aliasKey, earlierEntry } from './earlier.js';

/** The row's pair in the journal, and what earlier runs recorded for it. */
export interface JournalEntry {
  readonly key: string;
  readonly prior?: PairState;
}

/** Whether the device was created while one of our creates was out unanswered. */
export function createdWithin(device: Device, windows: readonly Window[]): boolean {
  if (windows.length === 0) return false;
  // No creation time to go by: the serial appeared after a create of ours went unanswered.
  const created = device.createdAt === undefined ? NaN : Date.parse(device.createdAt);
  if (Number.isNaN(created)) return true;
  return windows.some((w) => created >= w.from - CLOCK_ALLOWANCE_MS && created <= w.until + CLOCK_ALLOWANCE_MS);
}

export function journalEntry(row: ResolvedRow, journal: PairJournal): JournalEntry {
  const key = pairKey(row.userId, row.serialNumber);
  return { key, prior: journal.lookup(key) };
}

/**
 * `entry`: the row's journal entry, when the caller has already looked it up.
 *
 * What decides CREATED (README "What decides CREATED"): a 201 to a create of this job is
 * proof. Otherwise a device found on the user is CREATED only if it was created while a
 * create of ours was out and its answer never came (the journal's and this run's windows);
 * anything else found is EXISTING.
 */
export async function assignRow(row: ResolvedRow, ctx: AssignContext, entry: JournalEntry = journalEntry(row, ctx.journal)): Promise<RowResult> {
  const now = Date.now;
  const started = now();
  const { key, prior } = entry;
  const alias = aliasKey(row);
  let attempts = 0;
  /** Creates of ours whose answer never came: earlier runs', then this run's. */
  const windows: Window[] = [...(prior?.windows ?? [])];
  let outstanding: number | undefined;
  /** A start was recorded for the row in this run. */
  let recorded = false;
  const correlationId = `oath-bulk-${row.row}-${started.toString(36)}`;

  const settle = (device: Device, outcome: 'CREATED' | 'EXISTING', httpStatus: number | undefined, message: string | undefined): RowResult => {
    ctx.journal.finished(key, row.row, { outcome, deviceId: device.id, deviceStatus: device.status, alias });
    return { ...base(row), outcome, deviceId: device.id, deviceStatus: device.status, httpStatus, message, attempts, durationMs: now() - started };
  };
  const found = (device: Device, note: string): RowResult =>
    createdWithin(device, windows)
      ? settle(device, 'CREATED', undefined, note)
      : settle(device, 'EXISTING', undefined, 'the user already held this token; nothing was created');

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

  const stopped = (checking: boolean): RowResult => {
    if (windows.length === 0 && recorded) {
      // Every create recorded for the row was answered (or never written): nothing of ours exists.
      ctx.journal.cleared(key, row.row);
    }
    if (windows.length > 0) {
      return unconfirmed(row, attempts, checking
        ? 'the run stopped while checking whether an earlier create made this device; the next run checks this user\'s devices before sending again'
        : 'a create was sent and the run stopped before PingOne answered; the device may exist: the next run checks this user\'s devices before sending again');
    }
    return notAttempted(row, undefined, attempts);
  };

  try {
    if (windows.length > 0) {
      // An earlier run sent a create and never learned its fate: look before sending again.
      const device = await findOnUser(row, ctx);
      if (device) return found(device, 'created by an earlier run whose answer was lost; found on the user');
      // Nothing came of those creates: no claim remains.
      ctx.journal.cleared(key, row.row);
      windows.length = 0;
    }
    const device = await withRetries(ctx, row.row, async () => {
      outstanding = undefined;
      try {
        return await ctx.api.createOathDevice(row.userId, row.serialNumber, {
          signal: ctx.hard,
          notAfter: ctx.stopping,
          correlationId,
          // Each create's start is on disk before the create is written (README "Exactly once").
          beforeSend: async () => {
            const at = now();
            recorded = true;
            await ctx.journal.started(key, row.row, at, at + ctx.timeoutMs);
            attempts++;
            outstanding = at;
          },
        });
      } catch (error) {
        // An attempt PingOne may have carried out (lost answer, timeout, 5xx): its effect is unknown.
        if (unanswered(error) && outstanding !== undefined) windows.push({ from: outstanding, until: now() });
        // Stopped after its start was recorded but before it was written: not an attempt.
        if (error instanceof RequestAborted && !error.sent && outstanding !== undefined) attempts--;
        outstanding = undefined;
        throw error;
      }
    });
    // A 201 to our own request: proof, whatever the clocks say.
    return settle(device, 'CREATED', 201, undefined);
  } catch (error) {
    if (isAbortOf(error, ctx.stopping)) return stopped(false);
    if (error instanceof StopError && error.code === 'WRITE_FAILED') {
      // The journal could not record the start: this create was never sent.
      ctx.onSystemic(error);
      return stopped(false);
    }
    if (error instanceof StopError) return systemic(error);
    if (!(error instanceof ApiError)) throw error;
    const verdict = error.verdict;
    const refused = verdict.kind === 'refused';
    if (refused && verdict.code === 'USER_NOT_FOUND') {
      // No user, no device: nothing of ours can exist.
      ctx.journal.cleared(key, row.row);
      return failed(error, verdict.code);
    }
    try {
      const device = await findOnUser(row, ctx);
      if (device) return found(device, 'created; the answer was lost and the device was found on the user');
    } catch (checkError) {
      if (isAbortOf(checkError, ctx.stopping)) {
        // PingOne refused it, and the run stopped before the user's devices told why: a
        // refusal made nothing of ours; the next run tries (and checks) again.
        if (refused && windows.length === 0) {
          ctx.journal.cleared(key, row.row);
          return failed(error, verdict.code, `${error.message}; the run stopped before the user's devices were read to tell more: the next run checks again`);
        }
        return stopped(true);
      }
      if (checkError instanceof StopError) return systemic(checkError);
      if (windows.length > 0) {
        return { ...unconfirmed(row, attempts, `${error.message}; a create may have worked but the user's devices could not be read to confirm: the next run checks them first`), httpStatus: error.status, durationMs: now() - started };
      }
      // Every create was answered (refused, or never carried out): nothing of ours exists.
      ctx.journal.cleared(key, row.row);
      return failed(error, refused ? verdict.code : 'RETRIES_EXHAUSTED', `${error.message}; the user's devices could not be read to confirm`);
    }
    // Not on the user: whatever was sent made nothing.
    ctx.journal.cleared(key, row.row);
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
export function withRetries<T>(ctx: Pick<AssignContext, 'maxAttempts' | 'backoff' | 'sleep' | 'stopping' | 'onRetry'>, row: number, attempt: () => Promise<T>): Promise<T> {
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
