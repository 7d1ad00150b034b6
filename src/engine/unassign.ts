/**
 * Unassigning a token (SPEC "After the rollout", `unassign`): the hardware came back, so the
 * user's device for that serial is deleted and the token stays in the inventory, free for the
 * next user; the ledger records it "returned". Two steps, so that the confirmation can name
 * the users before anything is deleted: `planUnassign` reads (the user's devices; the
 * inventory when the serial is not on the user), `unassign` deletes.
 *
 * Never deleted: a device of another user (SERIAL_ASSIGNED_ELSEWHERE), nor a user's last MFA
 * device unless --allow-last-device. A rerun reads again: a device gone, with the ledger saying
 * this user returned the token, is reported UNASSIGNED by the earlier run.
 */
import { StopError } from '../errors.js';
import type { Device, InventoryEntry } from '../pingone/client.js';
import { ApiError } from '../pingone/errors.js';
import type { CallOptions } from '../pingone/client.js';
import { isAbortOf, withRetries, withRetriesNoting, type AssignContext } from './assign-row.js';
import type { Ledger, LedgerFact } from './ledger.js';

export const UNASSIGN_OUTCOMES = ['UNASSIGNED', 'NOT_ASSIGNED', 'WOULD_UNASSIGN', 'FAILED', 'INVALID', 'SKIPPED', 'UNCONFIRMED', 'NOT_ATTEMPTED'] as const;
export type UnassignOutcome = (typeof UNASSIGN_OUTCOMES)[number];

export interface UnassignResult {
  readonly outcome: UnassignOutcome;
  readonly deviceId?: string;
  readonly deviceStatus?: string;
  readonly httpStatus?: number;
  readonly errorCode?: string;
  readonly message: string;
  readonly attempts: number;
  readonly finishedEarlier?: boolean;
}

/** What a row would do, as read: a device to delete, or an outcome already. */
export interface UnassignPlan {
  readonly userID: string;
  readonly serialNumber: string;
  readonly device?: Device;
  /** The user's other MFA devices (any type). */
  readonly others: number;
  readonly settled?: UnassignResult;
  readonly reads: number;
}

export interface UnassignApi {
  listDevices(userId: string, options?: CallOptions): Promise<Device[]>;
  deleteDevice(userId: string, deviceId: string, options?: CallOptions): Promise<void>;
  oathToken(serial: string, options?: CallOptions): Promise<InventoryEntry | undefined>;
}

export interface UnassignContext extends Pick<AssignContext, 'maxAttempts' | 'backoff' | 'sleep' | 'stopping' | 'hard' | 'onRetry' | 'onSystemic'> {
  readonly api: UnassignApi;
  readonly ledger: Ledger;
  readonly by: string;
  readonly dryRun: boolean;
  readonly allowLastDevice: boolean;
  /** Facts for the ledger, appended in batches by the caller. */
  readonly note: (fact: LedgerFact) => void;
}

const failed = (error: unknown, reads: number): UnassignResult => {
  if (error instanceof ApiError) return { outcome: 'FAILED', httpStatus: error.status, errorCode: error.rowCode, message: error.message, attempts: reads };
  if (error instanceof StopError) return { outcome: 'FAILED', errorCode: error.code, message: error.message, attempts: reads };
  throw error;
};

/** Reads what the row would do: the user's devices, and where the serial is when it is not on the user. */
export async function planUnassign(row: number, userID: string, serialNumber: string, ctx: UnassignContext): Promise<UnassignPlan> {
  const opts = { signal: ctx.hard, notAfter: ctx.stopping };
  let reads = 0;
  const plan = (fields: Partial<UnassignPlan>): UnassignPlan => ({ userID, serialNumber, others: 0, reads, ...fields });
  try {
    reads++;
    // A user who no longer exists (404) holds no device we could delete; what the inventory
    // says of the token then decides the row (below).
    // Only a user the ledger says held this token: any other 404 is a user who never existed (a typo).
    const life = ctx.ledger.life(serialNumber);
    const held = [life?.handedOut?.user, life?.returned?.user].some((u) => u?.toLowerCase() === userID.toLowerCase());
    const devices = await withRetries(ctx, row, () => ctx.api.listDevices(userID, opts)).catch((error: unknown) => {
      if (held && error instanceof ApiError && error.verdict.kind === 'refused' && error.status === 404) return undefined;
      throw error;
    });
    const device = devices?.find((d) => d.serialNumber === serialNumber);
    if (device) return plan({ device, others: devices!.length - 1 });
    reads++;
    const entry = await withRetries(ctx, row, () => ctx.api.oathToken(serialNumber, opts));
    const holder = entry?.device?.userId;
    if (holder && holder.toLowerCase() !== userID.toLowerCase()) {
      return plan({ settled: { outcome: 'FAILED', errorCode: 'SERIAL_ASSIGNED_ELSEWHERE', deviceId: entry.device?.id, message: `${serialNumber} is on another user (${holder}), not on ${userID}: refused, nothing deleted; check the file (the other user keeps it)`, attempts: reads } });
    }
    if (!devices && holder) {
      return plan({ settled: { outcome: 'FAILED', errorCode: 'USER_NOT_FOUND', httpStatus: 404, deviceId: entry.device?.id, message: `${userID} no longer exists, and PingOne keeps ${serialNumber} paired to them: a deleted user's devices cannot be reached, so unassign cannot free it; revoke it (--reason retired), then reinstate it and import it again from its seed file to hand it out`, attempts: reads } });
    }
    if (life?.returned?.user?.toLowerCase() === userID.toLowerCase()) {
      return plan({ settled: { outcome: 'UNASSIGNED', finishedEarlier: true, message: `returned by an earlier run (${life.returned.by ?? 'unassign'}, ${life.returned.at.slice(0, 10)}); ${entry ? 'free in the inventory' : 'not in the inventory'}: nothing sent`, attempts: 0 } });
    }
    if (!entry) return plan({ settled: { outcome: 'NOT_ASSIGNED', message: `${serialNumber} is not on this user and not in the inventory: nothing to unassign (revoked, or never imported)`, attempts: reads } });
    // Gone from the user, free in the inventory, and the ledger has it with this user: a kill
    // after the delete, or a delete in the console. Recorded as returned; not claimed as ours.
    const back = life?.handedOut?.user?.toLowerCase() === userID.toLowerCase();
    if (back && !ctx.dryRun) ctx.note({ e: 'returned', sn: serialNumber, user: userID, by: ctx.by });
    const record = back ? (ctx.dryRun ? '; its return would be recorded in the ledger' : '; its return is recorded in the ledger') : '';
    return plan({ settled: { outcome: 'NOT_ASSIGNED', message: `${devices ? 'not on this user' : `${userID} no longer exists`}; free in the inventory already: nothing to unassign${record}`, attempts: reads } });
  } catch (error) {
    if (isAbortOf(error, ctx.stopping)) return plan({ settled: { outcome: 'NOT_ATTEMPTED', message: 'the command stopped before this row: run the same command again to finish', attempts: reads } });
    if (error instanceof StopError) ctx.onSystemic(error);
    return plan({ settled: failed(error, reads) });
  }
}

/** The plan carried out: the device deleted, the return recorded. */
export async function unassign(row: number, p: UnassignPlan, ctx: UnassignContext): Promise<UnassignResult> {
  if (p.settled) return p.settled;
  const device = p.device!;
  const base = { deviceId: device.id, deviceStatus: device.status };
  if (p.others === 0 && !ctx.allowLastDevice) {
    return { ...base, outcome: 'FAILED', errorCode: 'LAST_DEVICE', message: `this is ${p.userID}'s only MFA device: unassigning it would leave them no way to sign in with MFA; give them another device first, or pass --allow-last-device`, attempts: p.reads };
  }
  const last = p.others === 0 ? '; it was their last MFA device (--allow-last-device)' : '';
  if (ctx.dryRun) return { ...base, outcome: 'WOULD_UNASSIGN', message: `dry run: would delete device ${device.id} (the token stays in the inventory, free)${last}`, attempts: p.reads };
  if (ctx.stopping.aborted) return { ...base, outcome: 'NOT_ATTEMPTED', message: 'the command stopped before this row: run the same command again to finish', attempts: p.reads };
  let attempts = p.reads;
  let sentUnanswered = false;
  const opts = { signal: ctx.hard, notAfter: ctx.stopping };
  const done = (message: string, httpStatus: number): UnassignResult => {
    ctx.note({ e: 'returned', sn: p.serialNumber, user: p.userID, by: ctx.by, device: device.id });
    return { ...base, outcome: 'UNASSIGNED', httpStatus, message: `${message}; the token is free in the inventory${last}`, attempts };
  };
  try {
    await withRetriesNoting(ctx, row, () => {
      attempts++;
      return ctx.api.deleteDevice(p.userID, device.id, opts);
    }, () => (sentUnanswered = true));
    return done('device deleted', 204);
  } catch (error) {
    if (error instanceof ApiError && error.verdict.kind === 'refused' && error.status === 404) {
      // Our own delete whose answer was lost, then "not found": ours worked.
      if (sentUnanswered) return done('device deleted (the answer to the delete was lost, and the device is gone)', 404);
      return { ...base, outcome: 'NOT_ASSIGNED', httpStatus: 404, message: 'the device went between the read and the delete: nothing to unassign', attempts };
    }
    if (isAbortOf(error, ctx.stopping)) {
      return sentUnanswered
        ? { ...base, outcome: 'UNCONFIRMED', errorCode: 'UNCONFIRMED', message: 'a delete was sent and the command stopped before PingOne answered: run the same command again (it reads the user\'s devices first)', attempts }
        : { ...base, outcome: 'NOT_ATTEMPTED', message: 'the command stopped before this row: run the same command again to finish', attempts };
    }
    if (error instanceof StopError) ctx.onSystemic(error);
    return { ...base, ...failed(error, attempts) };
  }
}
