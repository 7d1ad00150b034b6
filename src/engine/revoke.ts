/**
 * Revoking tokens (SPEC "After the rollout", `revoke`): the ledger first, then PingOne.
 *
 * For each job of tokens: a "revoking" fact per token is appended and synced — from then on no
 * command imports or assigns the serial, whatever happens next — then a REVOKE_OATH_TOKENS
 * job (forceUnpair: a paired token's device goes with it) is sent and followed to its end, and
 * the inventory is read back: a token gone from it is REVOKED, and "revoked" is appended. A
 * serial the inventory does not hold is marked revoked at once (never to be imported). A rerun
 * reads the inventory before sending anything, so a token an earlier run revoked is reported,
 * not revoked again; only tokens proven still present are ever sent in a job again.
 */
import { AbortError } from 'p-retry';
import { StopError } from '../errors.js';
import type { CallOptions, InventoryEntry, OathJob } from '../pingone/client.js';
import { ApiError } from '../pingone/errors.js';
import { RequestAborted } from '../pingone/http.js';
import { Unanswered, withRetriesOnce, type AssignContext } from './assign-row.js';
import { inInventory, pollJob } from './import-batch.js';
import type { Ledger, LedgerFact, RevokeReason } from './ledger.js';

export const REVOKE_OUTCOMES = ['REVOKED', 'NOT_IN_INVENTORY', 'WOULD_REVOKE', 'FAILED', 'INVALID', 'SKIPPED', 'UNCONFIRMED', 'NOT_ATTEMPTED'] as const;
export type RevokeOutcome = (typeof REVOKE_OUTCOMES)[number];

export interface RevokeResult {
  readonly serialNumber: string;
  readonly outcome: RevokeOutcome;
  /** The user who lost a device (REVOKED), or would (WOULD_REVOKE). */
  readonly userID?: string;
  readonly deviceId?: string;
  readonly httpStatus?: number;
  readonly errorCode?: string;
  readonly message: string;
  /** Revoke jobs the token was sent in by this run. */
  readonly attempts: number;
  readonly finishedEarlier?: boolean;
}

/** What revoking needs of PingOne. */
export interface RevokeApi {
  createRevokeJob(tokenIds: readonly string[], options?: CallOptions): Promise<string>;
  getOathJob(id: string, options?: CallOptions): Promise<OathJob>;
  oathToken(serial: string, options?: CallOptions): Promise<InventoryEntry | undefined>;
  oathTokensPage(url: string | undefined, options?: CallOptions): Promise<{ entries: InventoryEntry[]; next?: string; refused?: StopError }>;
}

export interface RevokeContext extends Pick<AssignContext, 'maxAttempts' | 'backoff' | 'sleep' | 'stopping' | 'hard' | 'onRetry' | 'onSystemic'> {
  readonly api: RevokeApi;
  readonly ledger: Ledger;
  readonly reason: RevokeReason;
  /** Who revokes, for the ledger: `revoke <runId>`. */
  readonly by: string;
  readonly dryRun: boolean;
  readonly jobSize: number;
  readonly jobsInFlight: number;
  readonly pollFirstMs: number;
  readonly pollMaxMs: number;
  readonly jobTimeoutMs: number;
  /** Hears of each token settled (progress). */
  readonly onSettled?: (result: RevokeResult) => void;
}

/** Rounds of jobs: a token still in the inventory after its job is sent in one more. */
const ROUNDS = 2;


/**
 * Revokes `serials` (valid and distinct), given the inventory as read for them just before
 * (`present`: what the dry run and the confirmation were shown). Results by serial.
 */
export async function revokeTokens(serials: readonly string[], present: ReadonlyMap<string, InventoryEntry>, ctx: RevokeContext): Promise<Map<string, RevokeResult>> {
  const results = new Map<string, RevokeResult>();
  const settle = (r: RevokeResult): void => {
    results.set(r.serialNumber, r);
    ctx.onSettled?.(r);
  };
  const { ledger, dryRun } = ctx;
  const marks: LedgerFact[] = [];
  const toRevoke: InventoryEntry[] = [];
  for (const serialNumber of serials) {
    const life = ledger.revoked(serialNumber);
    const entry = present.get(serialNumber);
    if (entry) {
      if (dryRun) {
        const user = entry.device?.userId;
        settle({ serialNumber, outcome: 'WOULD_REVOKE', userID: user, deviceId: entry.device?.id, attempts: 0, message: entry.device ? `dry run: would revoke it and take its device off user ${user ?? '(unknown)'}` : 'dry run: would revoke it (free in the inventory: no user loses a device)' });
      } else toRevoke.push(entry);
      continue;
    }
    if (life) {
      // Revoked by an earlier run (its read-back made, or not): gone from PingOne, nothing to send.
      if (life.state === 'revoking' && !dryRun) marks.push({ e: 'revoked', sn: serialNumber, reason: life.reason, by: life.by, user: life.user, device: life.device });
      settle({ serialNumber, outcome: 'REVOKED', userID: life.user, deviceId: life.device, attempts: 0, finishedEarlier: true, message: `revoked by an earlier run (${life.by ?? 'revoke'}, ${life.at.slice(0, 10)}${life.reason ? `, ${life.reason}` : ''}); not in the inventory: nothing sent` });
      continue;
    }
    if (!dryRun) marks.push({ e: 'revoked', sn: serialNumber, reason: ctx.reason, by: ctx.by });
    settle({ serialNumber, outcome: 'NOT_IN_INVENTORY', attempts: 0, message: dryRun ? 'dry run: not in the inventory; would be marked revoked in the ledger, so that it is never imported or assigned' : 'not in the inventory: marked revoked in the ledger, so that it is never imported or assigned' });
  }
  if (dryRun) return results;
  await ledger.append(marks);

  const attempts = new Map<string, number>();
  const why = new Map<string, { code: string; message: string; status?: number }>();
  let remaining = toRevoke;
  for (let round = 1; round <= ROUNDS && remaining.length > 0; round++) {
    if (ctx.stopping.aborted) break;
    const sent = new Set<string>();
    const chunks: InventoryEntry[][] = [];
    for (let i = 0; i < remaining.length; i += ctx.jobSize) chunks.push(remaining.slice(i, i + ctx.jobSize));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < chunks.length && !ctx.stopping.aborted) {
        const chunk = chunks[next++]!;
        await sendJob(chunk, ctx, sent, attempts, why);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.max(1, ctx.jobsInFlight) }, worker));
    } catch (error) {
      if (!(error instanceof StopError)) throw error;
      ctx.onSystemic(error);
    }
    if (sent.size === 0) break;
    // The read-back: a token gone from the inventory is revoked; one still there goes again.
    const sentEntries = remaining.filter((e) => sent.has(e.serialNumber));
    let still: Map<string, InventoryEntry>;
    try {
      still = await inInventory(sentEntries.map((e) => e.serialNumber), { ...ctx, inventory: ctx.api });
    } catch (error) {
      if (error instanceof StopError) ctx.onSystemic(error);
      else if (!(error instanceof ApiError) && !(error instanceof RequestAborted) && !ctx.stopping.aborted) throw error;
      for (const e of sentEntries) {
        settle({ serialNumber: e.serialNumber, outcome: 'UNCONFIRMED', errorCode: 'UNCONFIRMED', userID: e.device?.userId, deviceId: e.device?.id, attempts: attempts.get(e.serialNumber) ?? 0, message: `a revoke job was sent and the inventory could not be read back (${error instanceof Error ? error.message : String(error)}): the ledger marks it revoking (it is never assigned again); run the same command again to confirm` });
      }
      remaining = remaining.filter((e) => !sent.has(e.serialNumber));
      break;
    }
    const gone = sentEntries.filter((e) => !still.has(e.serialNumber));
    await ledger.append(gone.map((e) => ({ e: 'revoked', sn: e.serialNumber, reason: ctx.reason, by: ctx.by, user: e.device?.userId, device: e.device?.id })));
    for (const e of gone) {
      settle({ serialNumber: e.serialNumber, outcome: 'REVOKED', userID: e.device?.userId, deviceId: e.device?.id, attempts: attempts.get(e.serialNumber) ?? 1, message: e.device ? `revoked; its device was taken off user ${e.device.userId ?? '(unknown)'}` : 'revoked (it was free in the inventory)' });
    }
    remaining = remaining.filter((e) => still.has(e.serialNumber) || !sent.has(e.serialNumber));
  }
  for (const e of remaining) {
    if (results.has(e.serialNumber)) continue;
    const tried = attempts.get(e.serialNumber) ?? 0;
    const reason = why.get(e.serialNumber);
    const base = { serialNumber: e.serialNumber, userID: e.device?.userId, deviceId: e.device?.id, attempts: tried };
    if (tried === 0 && reason && reason.code !== 'UNCONFIRMED') {
      settle({ ...base, outcome: 'FAILED', httpStatus: reason.status, errorCode: reason.code, message: `${reason.message}: the ledger marks it revoking (it is never assigned again); run the same command again` });
    } else if (tried === 0) {
      const marked = ledger.revoked(e.serialNumber)?.state === 'revoking';
      settle({ ...base, outcome: 'NOT_ATTEMPTED', message: `${reason?.message ?? 'the command stopped before this token was sent'}${marked ? '; the ledger marks it revoking already (it is never assigned again)' : ''}: run the same command again to finish` });
    } else if (reason?.code === 'UNCONFIRMED' || ctx.stopping.aborted) {
      settle({ ...base, outcome: 'UNCONFIRMED', errorCode: 'UNCONFIRMED', message: `${reason?.message ?? 'the command stopped while its revoke job ran'}: the ledger marks it revoking (it is never assigned again); run the same command again: it reads the inventory first and sends only what is still there` });
    } else {
      settle({ ...base, outcome: 'FAILED', httpStatus: reason?.status, errorCode: reason?.code ?? 'REVOKE_NOT_CONFIRMED', message: `still in the inventory after ${tried} revoke job${tried === 1 ? '' : 's'}${reason ? ` (${reason.message})` : ''}: the ledger marks it revoking, so no command assigns it; run the same command again, or revoke it in the PingOne console` });
    }
  }
  return results;
}

/** One job: the write-ahead facts synced, the job sent and followed to its end. */
async function sendJob(chunk: readonly InventoryEntry[], ctx: RevokeContext, sent: Set<string>, attempts: Map<string, number>, why: Map<string, { code: string; message: string; status?: number }>): Promise<void> {
  const { ledger } = ctx;
  // Write-ahead: synced before the job is sent. A fact already there (an earlier round or run) is not written again.
  await ledger.append(chunk.filter((e) => ledger.revoked(e.serialNumber)?.state !== 'revoking').map((e) => ({ e: 'revoking', sn: e.serialNumber, reason: ctx.reason, by: ctx.by, user: e.device?.userId, device: e.device?.id })));
  const note = (code: string, message: string, status?: number): void => {
    for (const e of chunk) why.set(e.serialNumber, { code, message, status });
  };
  const markSent = (): void => {
    for (const e of chunk) {
      sent.add(e.serialNumber);
      attempts.set(e.serialNumber, (attempts.get(e.serialNumber) ?? 0) + 1);
    }
  };
  let jobId: string;
  try {
    // A job whose answer was lost may be running: the read-back decides, never a resend.
    jobId = await withRetriesOnce(ctx, 0, async () => {
      if (ctx.stopping.aborted) throw new AbortError('stopped');
      return ctx.api.createRevokeJob(chunk.map((e) => e.id), { signal: ctx.hard, notAfter: ctx.stopping });
    });
  } catch (error) {
    if (error instanceof Unanswered) {
      markSent();
      note('UNCONFIRMED', `the revoke job was sent and its answer never came (${error.message})`);
      return;
    }
    if (error instanceof StopError) throw error;
    if (error instanceof ApiError) return note(error.rowCode, `PingOne refused the revoke job: ${error.message}`, error.status);
    // Stopped before it was written.
    return;
  }
  markSent();
  // Recorded at once: a rerun after a kill follows this job to its end before it reads the inventory.
  await ledger.append(chunk.map((e) => ({ e: 'revoking', sn: e.serialNumber, reason: ctx.reason, by: ctx.by, user: e.device?.userId, device: e.device?.id, job: jobId })));
  try {
    const job = await pollJob(jobId, { ...ctx, inventory: ctx.api });
    if (job.status === 'FAILED') note('REVOKE_JOB_FAILED', `revoke job ${jobId} FAILED: ${job.reason ?? 'no reason given'}`);
  } catch (error) {
    if (error instanceof StopError) throw error;
    note('UNCONFIRMED', `revoke job ${jobId} could not be followed to its end (${error instanceof Error ? error.message : String(error)})`);
  }
}

/**
 * Revoke jobs an earlier run sent for these serials and never saw end (a kill): followed to
 * their end first, so that the inventory read next shows what they did and nothing is sent
 * twice. A job PingOne no longer knows is left to the read-back. Returns how many were followed.
 */
export async function followEarlierJobs(serials: readonly string[], ctx: Pick<RevokeContext, 'api' | 'ledger' | 'maxAttempts' | 'backoff' | 'sleep' | 'stopping' | 'hard' | 'onRetry' | 'pollFirstMs' | 'pollMaxMs' | 'jobTimeoutMs'>): Promise<number> {
  const jobs = new Set<string>();
  for (const s of serials) {
    const r = ctx.ledger.revoked(s);
    if (r?.state === 'revoking' && r.job) jobs.add(r.job);
  }
  for (const id of jobs) {
    try {
      await pollJob(id, { ...ctx, inventory: ctx.api });
    } catch (error) {
      if (error instanceof StopError) throw error;
      // Unknown to PingOne, or not ending: the inventory read next decides.
    }
  }
  return jobs.size;
}
