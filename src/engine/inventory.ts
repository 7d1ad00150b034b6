/**
 * `inventory` (SPEC "inventory"): every token of the environment and what is true of it, from
 * four sources joined here — PingOne's inventory with the paired devices (`expand=devices`),
 * the users those devices name (exists? enabled?), the ledger (revoked, handed out, returned,
 * shipped) and the journals (the status this tool saw a device in).
 *
 * The reading: the inventory's pages one after the other, each retried on its own (a failed
 * page is asked for again with the cursor PingOne gave, never the listing from the start); a
 * free token is classified and handed on as its page arrives; a paired token waits for its
 * user. The users then: by directory pages while that is fewer requests than one read per user
 * still needed, then one read each for the rest — which also confirms, by a 404, every user the
 * directory did not list (no token is called orphaned on the strength of a missing line).
 * Memory: the tokens of one page, plus one small record per paired token and per user (the
 * join), plus the journals' device statuses and the ledger.
 *
 * Never guessed: a token whose user (or, with `deviceStatus`, whose device) could not be read
 * after retries is UNKNOWN, and so is every token the reading did not get to join (a stop).
 */
import pLimit from 'p-limit';
import { StopError } from '../errors.js';
import { ApiError } from '../pingone/errors.js';
import type { CallOptions, Device, InventoryEntry, User } from '../pingone/client.js';
import { withRetries, type AssignContext } from './assign-row.js';
import type { TokenLife } from './ledger.js';

export const TOKEN_STATES = ['FREE', 'ASSIGNED', 'ACTIVATION_PENDING', 'HOLDER_DISABLED', 'ORPHANED', 'UNACCOUNTED', 'REVOKED_PRESENT', 'EXPIRED', 'EXPIRING', 'UNKNOWN'] as const;
export type TokenState = (typeof TOKEN_STATES)[number];

/** States that ask for someone to act, first in every report. */
export const PROBLEM_STATES: readonly TokenState[] = ['ORPHANED', 'UNACCOUNTED', 'REVOKED_PRESENT', 'EXPIRED', 'UNKNOWN', 'ACTIVATION_PENDING', 'EXPIRING', 'HOLDER_DISABLED'];

export const INVENTORY_COLUMNS = ['serialNumber', 'type', 'otpLength', 'state', 'problem', 'userID', 'username', 'deviceId', 'deviceStatus', 'shipment', 'importedAt', 'validUntil'] as const;
/** Columns after SPEC's: what the report groups by, and why in words. */
export const INVENTORY_EXTRA_COLUMNS = ['manufacturer', 'model', 'message'] as const;

export interface InventoryRow {
  readonly serialNumber: string;
  readonly type?: string;
  readonly otpLength?: number;
  readonly state: TokenState;
  readonly problem?: string;
  readonly userID?: string;
  readonly username?: string;
  readonly deviceId?: string;
  readonly deviceStatus?: string;
  readonly shipment?: string;
  readonly importedAt?: string;
  readonly validUntil?: string;
  readonly manufacturer?: string;
  readonly model?: string;
  readonly message?: string;
}

/** What is known of a user a device names. */
export type Holder =
  | { readonly exists: true; readonly enabled?: boolean; readonly username?: string }
  | { readonly exists: false }
  | { readonly failed: string };

/** The device's status, as the journals or a read say; `failed`: the read failed after retries. */
export type DeviceFact = { readonly status: string; readonly from: 'journal' | 'read' } | { readonly failed: string };

export interface Judgement {
  readonly life?: TokenLife;
  readonly holder?: Holder;
  readonly device?: DeviceFact;
  readonly now: number;
  /** EXPIRING: vendor validity ends within this many ms. */
  readonly expiringMs: number;
}

const day = (iso: string): string => iso.slice(0, 10);

/**
 * One token's state, problem and reason in words. The order: what is wrong with the token
 * itself (revoked yet present), then its holder (deleted, read failed), what the ledger says
 * happened to it (handed out and not back), its vendor validity, its holder on leave, its device.
 */
export function classify(entry: InventoryEntry, j: Judgement): InventoryRow {
  const shipment = j.life?.shipment;
  const base = {
    serialNumber: entry.serialNumber,
    type: entry.type,
    otpLength: entry.otpLength,
    userID: entry.device?.userId,
    username: j.holder && 'exists' in j.holder && j.holder.exists ? j.holder.username : undefined,
    deviceId: entry.device?.id,
    deviceStatus: j.device && 'status' in j.device ? j.device.status : undefined,
    shipment: shipment?.name,
    importedAt: entry.createdAt && Date.parse(entry.createdAt) > 0 ? entry.createdAt : shipment?.at,
    validUntil: shipment?.validUntil,
    manufacturer: shipment?.manufacturer,
    model: shipment?.model,
  };
  const row = (state: TokenState, problem?: string, message?: string): InventoryRow => ({ ...base, state, problem, message });
  const revoked = j.life?.revoked;
  if (revoked) {
    return row('REVOKED_PRESENT', 'REVOKED_IN_LEDGER', `the ledger says ${revoked.state === 'revoking' ? 'a revoke was started' : 'revoked'}${revoked.reason ? ` (${revoked.reason})` : ''} on ${day(revoked.at)}${revoked.by ? ` by ${revoked.by}` : ''}, yet PingOne still holds the token${entry.device ? ' and it is paired' : ''}: revoke it again`);
  }
  const until = base.validUntil ? Date.parse(base.validUntil) : NaN;
  const expired = Number.isFinite(until) && until <= j.now;
  const expiring = Number.isFinite(until) && !expired && until - j.now <= j.expiringMs;
  if (entry.device) {
    const holder = j.holder;
    if (!entry.device.userId) return row('UNKNOWN', 'DEVICE_WITHOUT_USER', 'PingOne pairs the token to a device but names no user for it: check it in the console');
    if (!holder) return row('UNKNOWN', 'USER_NOT_READ', 'the reading stopped before this token\'s user was read: run inventory again');
    if ('failed' in holder) return row('UNKNOWN', 'USER_READ_FAILED', `its user could not be read (${holder.failed}): run inventory again`);
    if (!holder.exists) return row('ORPHANED', 'USER_DELETED', 'paired to a user who no longer exists (404): the hardware left with them; revoke it (unassign cannot reach a deleted user\'s devices)');
    if (holder.enabled === false) return row('HOLDER_DISABLED', 'USER_DISABLED', 'its user is disabled (on leave, or leaving): not to reclaim while the user may come back');
    if (expired) return row('EXPIRED', 'VENDOR_EXPIRED', `the vendor's validity ended on ${day(base.validUntil!)}: replace it`);
    const device = j.device;
    if (device && 'failed' in device) return row('UNKNOWN', 'DEVICE_READ_FAILED', `its device could not be read (${device.failed}): run inventory again`);
    if (device?.status === 'ACTIVATION_REQUIRED') return row('ACTIVATION_PENDING', 'WAITING_FOR_FIRST_CODE', device.from === 'journal' ? 'waiting for its first code when oath-bulk last saw it (journal); --device-status reads it now' : 'waiting for its first code: the user has not signed in with it yet');
    if (expiring) return row('EXPIRING', 'VENDOR_EXPIRES_SOON', `the vendor's validity ends on ${day(base.validUntil!)}`);
    return row('ASSIGNED');
  }
  const out = j.life?.handedOut;
  if (out) {
    // userID: the last holder the ledger knows (PingOne names none now), so that the row, fed to
    // unassign once the hardware is back, records the return against the right user.
    return { ...row('UNACCOUNTED', 'HANDED_OUT_NOT_RETURNED', `handed out${out.user ? ` to ${out.user}` : ''} on ${day(out.at)}${out.by ? ` by ${out.by}` : ''}, never returned nor revoked, and free in PingOne now (its device deleted, or its user): the hardware is still out there — revoke it, or unassign it if it is back in the drawer`), userID: out.user };
  }
  if (expired) return row('EXPIRED', 'VENDOR_EXPIRED', `the vendor's validity ended on ${day(base.validUntil!)}: do not hand it out`);
  if (expiring) return row('EXPIRING', 'VENDOR_EXPIRES_SOON', `the vendor's validity ends on ${day(base.validUntil!)}: hand it out first, or not at all`);
  return row('FREE');
}

/** What reading the inventory needs of PingOne. */
export interface InventoryApi {
  oathTokensPage(url: string | undefined, options?: CallOptions): Promise<{ entries: InventoryEntry[]; next?: string; count?: number; refused?: StopError }>;
  usersPage(url: string | undefined, options?: CallOptions): Promise<{ users: User[]; next?: string; count?: number; refused?: StopError }>;
  getUser(userId: string, options?: CallOptions): Promise<User | undefined>;
  listDevices(userId: string, options?: CallOptions): Promise<Device[]>;
}

export interface InventoryReadContext extends Pick<AssignContext, 'maxAttempts' | 'backoff' | 'sleep' | 'stopping' | 'hard' | 'onRetry'> {
  readonly api: InventoryApi;
  readonly concurrency: number;
  /** What the ledger says of a serial (undefined: nothing, or no ledger). */
  readonly life: (serial: string) => TokenLife | undefined;
  /** Device statuses the journals recorded, by device id. */
  readonly journal: ReadonlyMap<string, string | undefined>;
  /** --device-status: one read of the devices of each user whose device's status is not known. */
  readonly readDevices: boolean;
  /** Users read by an earlier reading that stopped (reused), by lower-case id. */
  readonly reused: ReadonlyMap<string, Holder>;
  /** Users a complete directory listing of an earlier reading did not name: read one by one, without the directory. */
  readonly unlisted: ReadonlySet<string>;
  /** Each user read completed (kept for a rerun). */
  readonly onUser?: (id: string, holder: Holder) => void;
  /** Each user a complete directory listing did not name (kept for a rerun). */
  readonly onUnlisted?: (id: string) => void;
  readonly onPage?: (tokens: number, count: number | undefined) => void;
  readonly now: number;
  readonly expiringMs: number;
  /** Each token's row, as soon as it is known (free tokens page by page, paired ones after the join). */
  readonly emit: (row: InventoryRow) => Promise<void>;
}

export interface InventoryReading {
  readonly tokens: number;
  /** The inventory's own count, from its first page, when PingOne gives one. */
  readonly count?: number;
  readonly pages: number;
  /** The listing reached its last page. */
  readonly complete: boolean;
  readonly users: { readonly distinct: number; readonly reused: number; readonly directoryPages: number; readonly reads: number; readonly failed: number; readonly via: 'none' | 'reads' | 'directory' | 'directory+reads' };
  readonly devices: { readonly fromJournal: number; readonly reads: number; readonly failed: number; readonly unknown: number };
  /** Why the reading ended early (a systemic refusal, a page unreadable after its retries). */
  readonly stopped?: StopError;
}

interface Paired {
  readonly entry: InventoryEntry;
  readonly userKey?: string;
}

function problemOf(error: unknown): string {
  if (!(error instanceof ApiError)) return (error as Error).message?.slice(0, 80) ?? 'error';
  const code = 'code' in error.verdict ? error.verdict.code : '';
  return `${error.status ? `HTTP ${error.status} ` : ''}${code}`.trim() || error.message.slice(0, 80);
}

/**
 * Reads the inventory and joins it. A systemic refusal (credentials, permissions), or an
 * inventory page that still fails after its retries (INVENTORY_UNREADABLE), ends the reading
 * (`stopped`): every token read so far is still emitted, the paired ones not joined UNKNOWN.
 */
export async function readInventory(ctx: InventoryReadContext): Promise<InventoryReading> {
  const opts = { signal: ctx.hard, notAfter: ctx.stopping };
  const paired: Paired[] = [];
  let tokens = 0;
  let pages = 0;
  let count: number | undefined;
  let complete = false;
  let failure: unknown;
  const judge = (entry: InventoryEntry, holder?: Holder, device?: DeviceFact): InventoryRow => classify(entry, { life: ctx.life(entry.serialNumber), holder, device, now: ctx.now, expiringMs: ctx.expiringMs });
  try {
    let url: string | undefined;
    do {
      if (ctx.stopping.aborted) break;
      const page = await withRetries(ctx, 0, () => ctx.api.oathTokensPage(url, opts));
      pages++;
      if (pages === 1) count = page.count;
      for (const entry of page.entries) {
        tokens++;
        if (entry.device) paired.push({ entry, userKey: entry.device.userId?.toLowerCase() });
        else await ctx.emit(judge(entry));
      }
      ctx.onPage?.(tokens, count);
      if (page.refused) {
        failure = page.refused;
        break;
      }
      url = page.next;
      complete = url === undefined;
    } while (url !== undefined);
  } catch (error) {
    if (error instanceof StopError || ctx.stopping.aborted) failure = error instanceof StopError ? error : undefined;
    else if (error instanceof ApiError) failure = new StopError('INVENTORY_UNREADABLE', `a page of the OATH token inventory could not be read after ${ctx.maxAttempts} attempts (${problemOf(error)}): the reading is incomplete; run inventory again (it starts over: cursors expire)`);
    else throw error;
  }

  // The users the paired tokens name.
  const holders = new Map<string, Holder>();
  const needed = new Set<string>();
  let reused = 0;
  for (const p of paired) {
    if (!p.userKey || holders.has(p.userKey)) continue;
    const earlier = ctx.reused.get(p.userKey);
    if (earlier && !('failed' in earlier)) {
      holders.set(p.userKey, earlier);
      reused++;
    } else needed.add(p.userKey);
  }
  const distinct = reused + needed.size;
  let directoryPages = 0;
  let reads = 0;
  let failedUsers = 0;
  const settle = (id: string, holder: Holder): void => {
    holders.set(id, holder);
    needed.delete(id);
    if (!('failed' in holder)) ctx.onUser?.(id, holder);
  };
  try {
    // One read per user costs as much as a directory page: for a single user, or only users an
    // earlier complete listing did not name, the directory spares nothing.
    if (failure === undefined && needed.size >= 2 && ![...needed].every((id) => ctx.unlisted.has(id))) {
      // The directory while its pages are fewer than the reads they spare: after each page, the
      // pages left (from its count; unknown: as many as read so far) against the users still needed.
      let url: string | undefined;
      let listed = 0;
      for (;;) {
        if (ctx.stopping.aborted) break;
        const page = await withRetries(ctx, 0, () => ctx.api.usersPage(url, opts));
        directoryPages++;
        listed += page.users.length;
        for (const u of page.users) {
          const id = u.id.toLowerCase();
          if (needed.has(id)) settle(id, { exists: true, enabled: u.enabled, username: u.username });
        }
        // A directory that names a next page this client does not follow is only a shortcut
        // lost: the users still needed are read one by one.
        if (page.refused) break;
        if (!page.next) {
          // The whole directory: the users still needed are not in it (a read confirms each).
          for (const id of needed) ctx.onUnlisted?.(id);
          break;
        }
        if (needed.size === 0) break;
        const perPage = Math.max(1, page.users.length);
        const left = page.count !== undefined ? Math.ceil(Math.max(0, page.count - listed) / perPage) : directoryPages;
        if (left >= needed.size) break;
        url = page.next;
      }
    }
  } catch (error) {
    if (error instanceof StopError) failure ??= error;
    else if (!(error instanceof ApiError) && !ctx.stopping.aborted) throw error;
    // A directory page that fails: the users it would have listed are read one by one (a stop: none is).
  }
  if (failure === undefined) {
    const limit = pLimit(Math.max(1, ctx.concurrency));
    const stop = await settleAll([...needed].map((id) => limit(async () => {
      if (ctx.stopping.aborted) return;
      try {
        const user = await withRetries(ctx, 0, () => ctx.api.getUser(id, opts));
        reads++;
        settle(id, user ? { exists: true, enabled: user.enabled, username: user.username } : { exists: false });
      } catch (error) {
        if (error instanceof StopError || ctx.stopping.aborted) throw error;
        if (!(error instanceof ApiError)) throw error;
        reads++;
        failedUsers++;
        holders.set(id, { failed: problemOf(error) });
      }
    })));
    if (stop instanceof StopError) failure = stop;
    else if (stop !== undefined && !ctx.stopping.aborted) throw stop;
  }

  // The devices' statuses: the journals', then (--device-status) one read per user for the rest.
  const devices = new Map<string, DeviceFact>();
  let fromJournal = 0;
  let deviceReads = 0;
  let failedDevices = 0;
  for (const p of paired) {
    const status = ctx.journal.get(p.entry.device!.id);
    if (status !== undefined) {
      devices.set(p.entry.device!.id, { status, from: 'journal' });
      fromJournal++;
    }
  }
  // --device-status: a read for each user holding a device whose status could change the
  // token's state — one no journal knows, or one a journal last saw waiting for its code (the
  // user may have signed in since; an ACTIVE device does not go back to waiting). Not for a
  // disabled or deleted user's, a revoked or an expired token's: their state stands either way.
  const toRead = new Map<string, string[]>();
  for (const p of paired) {
    if (!ctx.readDevices || !p.userKey) continue;
    const known = devices.get(p.entry.device!.id);
    if (known && 'status' in known && known.status === 'ACTIVE') continue;
    const without = judge(p.entry, holders.get(p.userKey)).state;
    if (without !== 'ASSIGNED' && without !== 'EXPIRING') continue;
    toRead.set(p.userKey, [...(toRead.get(p.userKey) ?? []), p.entry.device!.id]);
  }
  if (failure === undefined && toRead.size > 0) {
    const limit = pLimit(Math.max(1, ctx.concurrency));
    const stop = await settleAll([...toRead].map(([user, ids]) => limit(async () => {
      if (ctx.stopping.aborted) return;
      try {
        const list = await withRetries(ctx, 0, () => ctx.api.listDevices(user, opts));
        deviceReads++;
        for (const d of list) if (ids.includes(d.id)) devices.set(d.id, { status: d.status, from: 'read' });
        // A device the user no longer has (deleted since the inventory was read): its status is not known.
        for (const id of ids) if (!list.some((d) => d.id === id)) devices.set(id, { failed: 'the device is gone since the inventory was read' });
      } catch (error) {
        if (error instanceof StopError || ctx.stopping.aborted || !(error instanceof ApiError)) throw error;
        deviceReads++;
        failedDevices += ids.length;
        for (const id of ids) devices.set(id, { failed: problemOf(error) });
      }
    })));
    if (stop instanceof StopError) failure = stop;
    else if (stop !== undefined && !ctx.stopping.aborted) throw stop;
  }
  // Devices the reading stopped before: not read, so their tokens' state is not claimed.
  for (const ids of toRead.values()) {
    for (const id of ids) {
      const d = devices.get(id);
      if (!d || ('status' in d && d.from === 'journal')) devices.set(id, { failed: 'not read: the reading stopped first' });
    }
  }

  let unknownStatus = 0;
  for (const p of paired) {
    const device = devices.get(p.entry.device!.id);
    if (!device) unknownStatus++;
    await ctx.emit(judge(p.entry, p.userKey ? holders.get(p.userKey) : undefined, device));
  }
  const via = directoryPages > 0 ? (reads > 0 ? 'directory+reads' : 'directory') : reads > 0 ? 'reads' : 'none';
  return {
    tokens,
    count,
    pages,
    complete,
    users: { distinct, reused, directoryPages, reads, failed: failedUsers, via },
    devices: { fromJournal, reads: deviceReads, failed: failedDevices, unknown: unknownStatus },
    stopped: failure instanceof StopError ? failure : undefined,
  };
}

/** Waits for every task; resolves with the first failure (a stop), if any. */
async function settleAll(tasks: Array<Promise<void>>): Promise<unknown> {
  const results = await Promise.allSettled(tasks);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  return failed?.reason;
}
