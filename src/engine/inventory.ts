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

/** States that ask for someone to act, first in every report, most urgent first. */
export const ACT_STATES: readonly TokenState[] = ['ORPHANED', 'UNACCOUNTED', 'REVOKED_PRESENT', 'EXPIRED', 'UNKNOWN'];
/** States to keep an eye on: after those, before the rest. */
export const WATCH_STATES: readonly TokenState[] = ['ACTIVATION_PENDING', 'HOLDER_DISABLED', 'EXPIRING'];
/** The tokens a report lists one by one (those waiting for a first code too; expiring ones have a list of their own). */
export const LISTED_STATES: readonly TokenState[] = [...ACT_STATES, 'ACTIVATION_PENDING'];

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
  readonly users: { readonly distinct: number; readonly reused: number; readonly directoryPages: number; readonly reads: number; readonly failed: number };
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
  const judge = (entry: InventoryEntry, holder?: Holder, device?: DeviceFact): InventoryRow => classify(entry, { life: ctx.life(entry.serialNumber), holder, device, now: ctx.now, expiringMs: ctx.expiringMs });
  const listing = await readPages(ctx, (entry) => ctx.emit(judge(entry)));
  let failure = listing.failure;
  const users = await readHolders(listing.paired, ctx, failure === undefined);
  failure ??= users.failure;
  const devices = await readDeviceStatuses(listing.paired, users.holders, ctx, failure === undefined, judge);
  failure ??= devices.failure;
  let unknown = 0;
  for (const p of listing.paired) {
    const device = devices.facts.get(p.entry.device!.id);
    if (!device) unknown++;
    await ctx.emit(judge(p.entry, p.userKey ? users.holders.get(p.userKey) : undefined, device));
  }
  return {
    tokens: listing.tokens,
    count: listing.count,
    pages: listing.pages,
    complete: listing.complete,
    users: users.counts,
    devices: { ...devices.counts, unknown },
    stopped: failure,
  };
}

interface Phase {
  /** Why the reading must end here (undefined: it goes on). */
  readonly failure?: StopError;
}

/** The inventory's pages, each retried on its own cursor: free tokens handed on as they come, paired ones kept for the join. */
async function readPages(ctx: InventoryReadContext, free: (entry: InventoryEntry) => Promise<void>): Promise<Phase & { paired: Paired[]; tokens: number; pages: number; count?: number; complete: boolean }> {
  const opts = { signal: ctx.hard, notAfter: ctx.stopping };
  const paired: Paired[] = [];
  let tokens = 0;
  let pages = 0;
  let count: number | undefined;
  let url: string | undefined;
  try {
    do {
      if (ctx.stopping.aborted) break;
      const page = await withRetries(ctx, 0, () => ctx.api.oathTokensPage(url, opts));
      pages++;
      if (pages === 1) count = page.count;
      for (const entry of page.entries) {
        tokens++;
        if (entry.device) paired.push({ entry, userKey: entry.device.userId?.toLowerCase() });
        else await free(entry);
      }
      ctx.onPage?.(tokens, count);
      if (page.refused) return { failure: page.refused, paired, tokens, pages, count, complete: false };
      url = page.next;
      if (url === undefined) return { paired, tokens, pages, count, complete: true };
    } while (url !== undefined);
  } catch (error) {
    if (error instanceof StopError) return { failure: error, paired, tokens, pages, count, complete: false };
    if (error instanceof ApiError && !ctx.stopping.aborted) {
      const failure = new StopError('INVENTORY_UNREADABLE', `a page of the OATH token inventory could not be read after ${ctx.maxAttempts} attempts (${problemOf(error)}): the reading is incomplete; run inventory again (it starts over: cursors expire)`);
      return { failure, paired, tokens, pages, count, complete: false };
    }
    if (!ctx.stopping.aborted) throw error;
  }
  return { paired, tokens, pages, count, complete: false };
}

/**
 * The users the paired tokens name: those a stopped reading read (reused), then the directory
 * while its pages are fewer than the reads they spare, then one read for each user still
 * needed — which also confirms, by a 404, every user the directory did not list.
 */
async function readHolders(paired: readonly Paired[], ctx: InventoryReadContext, go: boolean): Promise<Phase & { holders: Map<string, Holder>; counts: InventoryReading['users'] }> {
  const opts = { signal: ctx.hard, notAfter: ctx.stopping };
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
  let failed = 0;
  const settle = (id: string, holder: Holder): void => {
    holders.set(id, holder);
    needed.delete(id);
    if (!('failed' in holder)) ctx.onUser?.(id, holder);
  };
  const counts = (): InventoryReading['users'] => ({ distinct, reused, directoryPages, reads, failed });
  if (!go) return { holders, counts: counts() };
  // One read per user costs as much as a directory page: for a single user, or only users an
  // earlier complete listing did not name, the directory spares nothing.
  if (needed.size >= 2 && ![...needed].every((id) => ctx.unlisted.has(id))) {
    try {
      let url: string | undefined;
      let listed = 0;
      while (!ctx.stopping.aborted) {
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
        // After each page, the pages left (from its count; unknown: as many as read so far) against the users still needed.
        const left = page.count !== undefined ? Math.ceil(Math.max(0, page.count - listed) / Math.max(1, page.users.length)) : directoryPages;
        if (needed.size === 0 || left >= needed.size) break;
        url = page.next;
      }
    } catch (error) {
      if (error instanceof StopError) return { failure: error, holders, counts: counts() };
      // A directory page that fails: the users it would have listed are read one by one (a stop: none is).
      if (!(error instanceof ApiError) && !ctx.stopping.aborted) throw error;
    }
  }
  const failure = await eachLimited([...needed], ctx, async (id) => {
    try {
      const user = await withRetries(ctx, 0, () => ctx.api.getUser(id, opts));
      reads++;
      settle(id, user ? { exists: true, enabled: user.enabled, username: user.username } : { exists: false });
    } catch (error) {
      if (!(error instanceof ApiError) || ctx.stopping.aborted) throw error;
      reads++;
      failed++;
      holders.set(id, { failed: problemOf(error) });
    }
  });
  return { failure, holders, counts: counts() };
}

/**
 * The devices' statuses: the journals', then (--device-status) a read for each user holding a
 * device whose status could change the token's state — one no journal knows, or one a journal
 * last saw waiting for its code (the user may have signed in since; an ACTIVE device does not go
 * back to waiting). Not a disabled or deleted user's, a revoked or an expired token's: their
 * state stands either way. A device the reading stopped before is not claimed either way.
 */
async function readDeviceStatuses(paired: readonly Paired[], holders: ReadonlyMap<string, Holder>, ctx: InventoryReadContext, go: boolean, judge: (entry: InventoryEntry, holder?: Holder) => InventoryRow): Promise<Phase & { facts: Map<string, DeviceFact>; counts: Omit<InventoryReading['devices'], 'unknown'> }> {
  const opts = { signal: ctx.hard, notAfter: ctx.stopping };
  const facts = new Map<string, DeviceFact>();
  const toRead = new Map<string, string[]>();
  let fromJournal = 0;
  let reads = 0;
  let failed = 0;
  for (const p of paired) {
    const id = p.entry.device!.id;
    const status = ctx.journal.get(id);
    if (status !== undefined) {
      facts.set(id, { status, from: 'journal' });
      fromJournal++;
    }
    if (!ctx.readDevices || !p.userKey || status === 'ACTIVE') continue;
    const without = judge(p.entry, holders.get(p.userKey)).state;
    if (without === 'ASSIGNED' || without === 'EXPIRING') toRead.set(p.userKey, [...(toRead.get(p.userKey) ?? []), id]);
  }
  const failure = go
    ? await eachLimited([...toRead], ctx, async ([user, ids]) => {
        try {
          const list = await withRetries(ctx, 0, () => ctx.api.listDevices(user, opts));
          reads++;
          // A device the user no longer has (deleted since the inventory was read): its status is not known.
          for (const id of ids) {
            const d = list.find((x) => x.id === id);
            facts.set(id, d ? { status: d.status, from: 'read' } : { failed: 'the device is gone since the inventory was read' });
          }
        } catch (error) {
          if (!(error instanceof ApiError) || ctx.stopping.aborted) throw error;
          reads++;
          failed += ids.length;
          for (const id of ids) facts.set(id, { failed: problemOf(error) });
        }
      })
    : undefined;
  for (const ids of toRead.values()) {
    for (const id of ids) {
      const d = facts.get(id);
      if (!d || ('status' in d && d.from === 'journal')) facts.set(id, { failed: 'not read: the reading stopped first' });
    }
  }
  return { failure, facts, counts: { fromJournal, reads, failed } };
}

/**
 * `work` over `items`, --concurrency at a time, none started after a stop. Resolves with the
 * StopError that ended it, if any; a stop by signal is no failure of its own (the control has it).
 */
async function eachLimited<T>(items: readonly T[], ctx: Pick<InventoryReadContext, 'concurrency' | 'stopping'>, work: (item: T) => Promise<void>): Promise<StopError | undefined> {
  const limit = pLimit(Math.max(1, ctx.concurrency));
  const results = await Promise.allSettled(items.map((item) => limit(async () => {
    if (!ctx.stopping.aborted) await work(item);
  })));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason as unknown;
  if (failed === undefined || failed instanceof StopError) return failed;
  if (ctx.stopping.aborted) return undefined;
  throw failed;
}
