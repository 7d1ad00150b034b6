/**
 * Replacing a user's token (SPEC "After the rollout", `replace`): the user gets the new token
 * before losing the old one. Per row, each step decided by reading the user's devices first, so
 * that a rerun after a kill at any step goes on from where PingOne is:
 *
 *   read → block the old device (reason lost/stolen) → create the new device → activate it
 *   (--activate) → only once it is in place, delete the old device → retire the old token
 *   (returned to the pool, or revoked with the reason: the caller, in batches).
 *
 * A step that fails leaves the old device where it is, and the row says which step failed.
 */
import { StopError } from '../errors.js';
import type { CallOptions, Device, InventoryEntry } from '../pingone/client.js';
import { ApiError } from '../pingone/errors.js';
import type { SeedToken } from '../seeds/token.js';
import { activateDevice } from './activate.js';
import { isAbortOf, withRetries, withRetriesNoting, type AssignContext } from './assign-row.js';
import { revokedMessage, type Ledger, type LedgerFact, type RevokeReason } from './ledger.js';

export const REPLACE_OUTCOMES = ['REPLACED', 'WOULD_REPLACE', 'FAILED', 'INVALID', 'UNCONFIRMED', 'NOT_ATTEMPTED'] as const;
export type ReplaceOutcome = (typeof REPLACE_OUTCOMES)[number];
export type ReplaceStep = 'read' | 'check' | 'block' | 'import' | 'create' | 'activate' | 'delete' | 'retire';

export interface ReplaceRow {
  readonly row: number;
  readonly userID: string;
  readonly oldSerial: string;
  readonly newSerial: string;
  readonly reason?: RevokeReason;
}

export interface ReplaceResult {
  readonly outcome: ReplaceOutcome;
  /** The step that failed (FAILED), or the last one done. */
  readonly step?: ReplaceStep;
  readonly deviceId?: string;
  readonly deviceStatus?: string;
  readonly oldDeviceId?: string;
  readonly httpStatus?: number;
  readonly errorCode?: string;
  readonly message: string;
  readonly attempts: number;
  readonly finishedEarlier?: boolean;
  /** What is left to do with the old token (the caller does it): return it to the pool, or revoke it. */
  readonly retire?: 'return' | 'revoke';
}

export interface ReplaceApi {
  listDevices(userId: string, options?: CallOptions): Promise<Device[]>;
  createOathDevice(userId: string, serialNumber: string, options?: CallOptions): Promise<Device>;
  deleteDevice(userId: string, deviceId: string, options?: CallOptions): Promise<void>;
  blockDevice(userId: string, deviceId: string, options?: CallOptions): Promise<void>;
  activateDevice(userId: string, deviceId: string, otp: string, options?: CallOptions): Promise<Device>;
}

export interface ReplaceContext extends Pick<AssignContext, 'maxAttempts' | 'backoff' | 'sleep' | 'stopping' | 'hard' | 'onRetry' | 'onSystemic'> {
  readonly api: ReplaceApi;
  readonly ledger: Ledger;
  readonly by: string;
  readonly dryRun: boolean;
  readonly activate: boolean;
  /** The new tokens' seeds (--seeds): what --activate computes codes from. */
  readonly seedOf: (serial: string) => SeedToken | undefined;
  /** The inventory as read before any row (old and new serials): who holds each token, or undefined when it is not there. */
  readonly inventory: (serial: string) => InventoryEntry | undefined;
  readonly note: (fact: LedgerFact) => void;
}

const BLOCKING: ReadonlySet<string> = new Set(['lost', 'stolen']);

/** Whether the old token still needs retiring (nothing in the ledger says it was). */
function retireLeft(r: ReplaceRow, ledger: Ledger): 'return' | 'revoke' | undefined {
  const life = ledger.life(r.oldSerial);
  // "revoking" is a revoke not yet proven by its read-back (a kill): it is finished, not skipped.
  if (r.reason) return life?.revoked?.state === 'revoked' ? undefined : 'revoke';
  return life?.returned?.user?.toLowerCase() === r.userID.toLowerCase() ? undefined : 'return';
}

export async function replaceRow(r: ReplaceRow, ctx: ReplaceContext): Promise<ReplaceResult> {
  const opts = { signal: ctx.hard, notAfter: ctx.stopping };
  let attempts = 0;
  let step: ReplaceStep = 'read';
  let created = false;
  const read = async (): Promise<Device[]> => {
    attempts++;
    return withRetries(ctx, r.row, () => ctx.api.listDevices(r.userID, opts));
  };
  const fail = (errorCode: string, message: string, fields: Partial<ReplaceResult> = {}): ReplaceResult => ({ outcome: 'FAILED', step, errorCode, message: `step ${step}: ${message}`, attempts, ...fields });
  let old: Device | undefined;
  let neu: Device | undefined;
  /** The ledger: the new token is with this user (called on one path of the row only; a rerun after a kill adds what was lost). */
  const handedOut = (device: Device): void => {
    if (ctx.ledger.life(r.newSerial)?.handedOut?.user?.toLowerCase() === r.userID.toLowerCase()) return;
    ctx.note({ e: 'handed-out', sn: r.newSerial, user: r.userID, by: ctx.by, device: device.id });
  };
  try {
    const devices = await read();
    old = devices.find((d) => d.serialNumber === r.oldSerial);
    neu = devices.find((d) => d.serialNumber === r.newSerial);
    step = 'check';
    const revoked = ctx.ledger.revoked(r.newSerial);
    if (revoked && !neu) return fail('TOKEN_REVOKED', `${revokedMessage(r.newSerial, revoked)}; the old device stays`, { oldDeviceId: old?.id });
    if (!old && !neu) return fail('OLD_NOT_ON_USER', `${r.oldSerial} is not on user ${r.userID} (nor is ${r.newSerial}): nothing to replace; check the row`);
    const sameUser = (e: InventoryEntry | undefined): boolean => !e?.device?.userId || e.device.userId.toLowerCase() === r.userID.toLowerCase();
    if (!old && neu && !sameUser(ctx.inventory(r.oldSerial))) {
      // The old serial is someone else's now (a typo in the row, or given out since): never retired from here.
      return fail('SERIAL_ASSIGNED_ELSEWHERE', `${r.oldSerial} is not on user ${r.userID} but on ${ctx.inventory(r.oldSerial)!.device!.userId}: it is neither returned nor revoked by this row; check the row`, { deviceId: neu.id, deviceStatus: neu.status });
    }
    if (!neu) {
      // The new token, before anything is done to the old one: in the inventory (or in --seeds), and nobody else's.
      const entry = ctx.inventory(r.newSerial);
      if (!sameUser(entry)) return fail('SERIAL_ASSIGNED_ELSEWHERE', `the new token ${r.newSerial} is on another user (${entry!.device!.userId}): nothing was done; the old device stays`, { oldDeviceId: old?.id });
      if (!entry && !ctx.seedOf(r.newSerial)) return fail('SERIAL_NOT_FOUND', `the new token ${r.newSerial} is not in the OATH token inventory, nor in a seed file given with --seeds: import it (or give --seeds), then run again; nothing was done, the old device stays`, { oldDeviceId: old?.id });
    }
    if (!old && neu) {
      // An earlier run put the new one in place and deleted the old one.
      const retire = retireLeft(r, ctx.ledger);
      handedOut(neu);
      return { outcome: 'REPLACED', step: 'delete', deviceId: neu.id, deviceStatus: neu.status, attempts, finishedEarlier: true, retire, message: `replaced by an earlier run: ${r.newSerial} is on the user and ${r.oldSerial} is not${retire ? '' : '; nothing sent'}` };
    }
    const o = old!;
    const block = r.reason !== undefined && BLOCKING.has(r.reason) && o.status !== 'BLOCKED';
    if (ctx.dryRun) {
      const plan = [block ? `block ${r.oldSerial}` : '', neu ? '' : `create ${r.newSerial}`, ctx.activate && (neu?.status ?? 'ACTIVATION_REQUIRED') === 'ACTIVATION_REQUIRED' ? 'activate it' : '', `delete ${r.oldSerial}'s device`, r.reason ? `revoke ${r.oldSerial} (${r.reason})` : `return ${r.oldSerial} to the pool`].filter(Boolean);
      return { outcome: 'WOULD_REPLACE', step: 'check', deviceId: neu?.id, oldDeviceId: o.id, attempts, message: `dry run: would ${plan.join(', then ')}` };
    }
    // A lost or stolen token is out of service from now on, whatever happens next (write-ahead).
    const markRevoking = async (): Promise<void> => {
      if (!r.reason || ctx.ledger.revoked(r.oldSerial)) return;
      await ctx.ledger.append([{ e: 'revoking', sn: r.oldSerial, reason: r.reason, by: ctx.by, user: r.userID, device: o.id }]);
    };
    if (r.reason && BLOCKING.has(r.reason)) await markRevoking();
    if (block) {
      step = 'block';
      attempts++;
      await withRetries(ctx, r.row, () => ctx.api.blockDevice(r.userID, o.id, opts));
    }
    if (!neu) {
      step = 'create';
      try {
        neu = await withRetriesNoting(ctx, r.row, () => {
          attempts++;
          return ctx.api.createOathDevice(r.userID, r.newSerial, opts);
        }, () => (created = true));
      } catch (error) {
        if (isAbortOf(error, ctx.stopping) || error instanceof StopError) throw error;
        // A create whose answer was lost, or a refusal: the user's devices say what is there.
        neu = (await read()).find((d) => d.serialNumber === r.newSerial);
        if (!neu) {
          const e = error as ApiError;
          const code = e instanceof ApiError ? e.rowCode : 'RETRIES_EXHAUSTED';
          return fail(code, `the new device could not be created (${e instanceof Error ? e.message : String(e)}); the old device stays${block ? ' (blocked)' : ''}`, { oldDeviceId: o.id, httpStatus: e instanceof ApiError ? e.status : undefined });
        }
      }
    }
    const n = neu;
    handedOut(n);
    if (ctx.activate && n.status === 'ACTIVATION_REQUIRED') {
      step = 'activate';
      const token = ctx.seedOf(r.newSerial);
      if (!token) return fail('ACTIVATION_FAILED', `no seed for ${r.newSerial} in --seeds: the new device waits for a code; the old device stays`, { deviceId: n.id, deviceStatus: n.status, oldDeviceId: o.id });
      const a = await activateDevice(r.row, r.userID, n.id, token, ctx);
      attempts++;
      if (a.deviceStatus !== 'ACTIVE') return fail(a.errorCode ?? 'ACTIVATION_FAILED', `${a.message}; the old device stays`, { deviceId: n.id, deviceStatus: a.deviceStatus, oldDeviceId: o.id });
      neu = { ...n, status: 'ACTIVE' };
    }
    const inPlace = neu.status === 'ACTIVE' || (neu.status === 'ACTIVATION_REQUIRED' && !ctx.activate);
    if (!inPlace) return fail('NEW_DEVICE_NOT_READY', `the new device is ${neu.status}, not in place: the old device stays`, { deviceId: neu.id, deviceStatus: neu.status, oldDeviceId: o.id });
    step = 'delete';
    await markRevoking();
    try {
      await withRetries(ctx, r.row, async () => {
        attempts++;
        await ctx.api.deleteDevice(r.userID, o.id, opts);
      });
    } catch (error) {
      // Gone already (our own delete whose answer was lost, or someone else's): the old device is gone.
      if (!(error instanceof ApiError && error.verdict.kind === 'refused' && error.status === 404)) throw error;
    }
    const retire = retireLeft(r, ctx.ledger);
    return { outcome: 'REPLACED', step: 'delete', deviceId: neu.id, deviceStatus: neu.status, oldDeviceId: o.id, attempts, retire, message: `${r.newSerial} in place (${neu.status}), ${r.oldSerial}'s device deleted` };
  } catch (error) {
    const fields = { deviceId: neu?.id, deviceStatus: neu?.status, oldDeviceId: old?.id };
    if (isAbortOf(error, ctx.stopping)) {
      if (step === 'read') return { outcome: 'NOT_ATTEMPTED', attempts, message: 'the command stopped before this row: run the same command again to finish' };
      return { outcome: 'UNCONFIRMED', step, errorCode: 'UNCONFIRMED', attempts, ...fields, message: `the command stopped at step ${step}${created ? ' (a create was sent unanswered)' : ''}: the old device stays until the new one is in place; run the same command again (it reads the user's devices first)` };
    }
    if (error instanceof StopError) {
      ctx.onSystemic(error);
      return { outcome: 'FAILED', step, errorCode: error.code, message: error.message, attempts, ...fields };
    }
    if (error instanceof ApiError) {
      const code = error.rowCode;
      return { outcome: 'FAILED', step, httpStatus: error.status, errorCode: code, attempts, ...fields, message: `step ${step}: ${error.message}${step === 'delete' ? '; the new device is in place and the old one is still there: run the same command again to delete it' : '; the old device stays'}` };
    }
    throw error;
  }
}
