/**
 * Importing checked seed tokens into PingOne's OATH token inventory (SPEC "oath-bulk import"):
 * in jobs of --job-size tokens, each polled (paced and retried like every request) until DONE
 * or FAILED. A FAILED job does not sink its good tokens: it is split in halves until the bad
 * ones stand alone, and those are created one by one, so each token ends IMPORTED,
 * ALREADY_PRESENT or FAILED with PingOne's reason.
 *
 * Exactly once, as for devices: every token's start is in the journal (durable) before its
 * job is sent. A job whose answer was lost is never simply sent again (its tokens would come
 * back as duplicates of themselves): the inventory is read first, and what is there is
 * IMPORTED. A rerun reports finished tokens from the journal and checks started ones the same
 * way.
 */
import { StopError } from '../errors.js';
import { ApiError } from '../pingone/errors.js';
import { RequestAborted } from '../pingone/http.js';
import type { CallOptions, InventoryEntry, OathJob, OathTokenBody } from '../pingone/client.js';
import { revokedMessage, type TokenLife } from './ledger.js';
import type { SeedToken } from '../seeds/token.js';
import { unanswered, Unanswered, withRetries, withRetriesOnce, type AssignContext } from './assign-row.js';


export const IMPORT_OUTCOMES = ['IMPORTED', 'ALREADY_PRESENT', 'FAILED', 'INVALID', 'UNCONFIRMED', 'NOT_ATTEMPTED'] as const;
export type ImportOutcome = (typeof IMPORT_OUTCOMES)[number];

export interface ImportResult {
  readonly token: SeedToken;
  readonly outcome: ImportOutcome;
  readonly tokenId?: string;
  readonly errorCode?: string;
  readonly message?: string;
  readonly finishedEarlier?: boolean;
}

/** What the import needs of PingOne. */
export interface InventoryApi {
  createOathToken(token: OathTokenBody, options?: CallOptions): Promise<InventoryEntry>;
  createOathJob(tokens: readonly OathTokenBody[], options?: CallOptions): Promise<string>;
  getOathJob(id: string, options?: CallOptions): Promise<OathJob>;
  oathToken(serial: string, options?: CallOptions): Promise<InventoryEntry | undefined>;
  /** One page of the whole inventory: `url` undefined for the first, else the `next` of the one before. */
  oathTokensPage(url: string | undefined, options?: CallOptions): Promise<{ entries: InventoryEntry[]; next?: string; refused?: StopError }>;
}

export interface ImportContext extends Omit<AssignContext, 'api'> {
  readonly inventory: InventoryApi;
  readonly jobSize: number;
  readonly dryRun: boolean;
  /** Poll delays: from the first to the cap, doubling. */
  readonly pollFirstMs: number;
  readonly pollMaxMs: number;
  /** A job not DONE or FAILED by then is given up on (its tokens are checked in the inventory). */
  readonly jobTimeoutMs: number;
  /** Jobs in flight at once. */
  readonly jobsInFlight: number;
  /**
   * Read which tokens the inventory holds before sending any (`run --seeds`: import only what
   * it lacks): those are ALREADY_PRESENT without a request to create them.
   */
  readonly checkInventory?: boolean;
  /** The inventory as already read for these serials (a preflight): not read again. */
  readonly present?: ReadonlyMap<string, InventoryEntry>;
  /** Keep the seeds of settled tokens (activation needs them; the caller wipes them). */
  readonly keepSecrets?: boolean;
  /** Hears of each token settled (progress). */
  readonly onSettled?: (result: ImportResult) => void;
  /** The ledger (read right before the import): a revoked token is never imported again. */
  readonly revoked?: (serial: string) => TokenLife['revoked'];
}

/** The context of one import: serials sent in a job whose answer never came. */
interface Run extends ImportContext {
  readonly lost: Set<string>;
  /** Jobs of these tokens sent again after a lost answer, in a row. */
  readonly resends: number;
}



/** Below this many tokens to look up, one filtered read each; above, the whole inventory paged. */
const LOOKUP_ONE_BY_ONE = 50;
/** A failed job is split until its parts are this small; then its tokens go one by one. */
const SINGLE_BELOW = 8;

/** How the commands poll a job: 250 ms doubling to 5 s; given up on after 10 minutes. */
export const IMPORT_POLLING = { pollFirstMs: 250, pollMaxMs: 5000, jobTimeoutMs: 10 * 60_000 } as const;

function body(t: SeedToken): OathTokenBody {
  return {
    serialNumber: t.serialNumber,
    secret: t.secret!.hex(),
    type: t.type!,
    otpLength: t.otpLength!,
    hashAlgorithm: t.hashAlgorithm,
    ...(t.type === 'HOTP' ? { hotp: { counter: t.counter ?? 0n } } : { totp: { timeStep: t.timeStep ?? 30 } }),
  };
}

/** Imports `tokens`; results in the tokens' order. */
export async function importTokens(tokens: readonly SeedToken[], ctx: ImportContext): Promise<ImportResult[]> {
  const results = new Map<SeedToken, ImportResult>();
  const settle = (r: ImportResult): void => {
    results.set(r.token, r);
    ctx.onSettled?.(r);
    const serial = r.token.serialNumber;
    if (r.outcome === 'IMPORTED' || r.outcome === 'ALREADY_PRESENT') {
      if (!r.finishedEarlier && !ctx.dryRun) ctx.journal.imported(serial, r.token.index, { outcome: r.outcome, tokenId: r.tokenId });
    } else if (r.outcome === 'FAILED' && !ctx.dryRun) ctx.journal.importCleared(serial, r.token.index);
    if (!ctx.keepSecrets && (r.outcome === 'IMPORTED' || r.outcome === 'ALREADY_PRESENT' || r.outcome === 'FAILED' || r.outcome === 'UNCONFIRMED')) r.token.secret?.wipe();
  };

  const pending: SeedToken[] = [];
  const started: SeedToken[] = [];
  /** Tokens an earlier run sent in jobs it recorded, by job: followed to their end first. */
  const byJob = new Map<string, SeedToken[]>();
  /** Serials an earlier run sent more than once (a lost answer, a rerun). */
  const sentTwice = new Set<string>();
  for (const t of tokens) {
    // An equal copy of another token of the file (seeds/copies.ts) is that token: reported with it.
    if (t.copyOf !== undefined) continue;
    if (t.problem) {
      settle({ token: t, outcome: 'INVALID', errorCode: t.problem.code, message: t.problem.message });
      continue;
    }
    const earlier = ctx.journal.lookupImport(t.serialNumber);
    const revoked = ctx.revoked?.(t.serialNumber);
    if (revoked && (earlier?.outcome === 'IMPORTED' || earlier?.outcome === 'ALREADY_PRESENT')) {
      settle({ token: t, outcome: earlier.outcome, tokenId: earlier.tokenId, finishedEarlier: true, message: `finished by an earlier run; revoked since ${revoked.at.slice(0, 10)} (${revoked.reason ?? 'revoked'}): nothing sent` });
    } else if (revoked) {
      settle({ token: t, outcome: 'FAILED', errorCode: 'TOKEN_REVOKED', message: revokedMessage(t.serialNumber, revoked) });
    } else if (earlier?.outcome === 'IMPORTED' || earlier?.outcome === 'ALREADY_PRESENT') {
      settle({ token: t, outcome: earlier.outcome, tokenId: earlier.tokenId, finishedEarlier: true, message: 'finished by an earlier run; nothing sent' });
    } else if (earlier?.windows) {
      started.push(t);
      const job = earlier.jobs?.[earlier.jobs.length - 1];
      if ((earlier.jobs?.length ?? 0) > 1 || earlier.windows.length > 1) sentTwice.add(t.serialNumber);
      if (job !== undefined && !ctx.dryRun) byJob.set(job, [...(byJob.get(job) ?? []), t]);
    } else pending.push(t);
  }
  // A serial this tool has sent before: a later job calling it a duplicate found our own token.
  const lost = new Set(started.map((t) => t.serialNumber));

  // An earlier run's jobs, still running or ended unheard: their own answer says what they made.
  if (byJob.size > 0) {
    const followed = await followJobs(byJob, { ...ctx, lost: sentTwice, resends: 0 }, settle);
    for (let i = started.length - 1; i >= 0; i--) if (followed.has(started[i]!)) started.splice(i, 1);
  }

  // An earlier run sent these and never learned how its job ended; a dry run reads all, and
  // so does an import of only what the inventory lacks.
  const toCheck = ctx.dryRun || ctx.checkInventory ? [...started, ...pending] : started;
  if (ctx.checkInventory) pending.length = 0;
  if (toCheck.length > 0) {
    const wasStarted = new Set(started);
    let present: ReadonlyMap<string, InventoryEntry>;
    try {
      present = ctx.present ?? (await inInventory(toCheck.map((t) => t.serialNumber), ctx));
    } catch (error) {
      if (!(error instanceof StopError) && !(error instanceof ApiError) && !(error instanceof RequestAborted) && !ctx.stopping.aborted) throw error;
      if (error instanceof StopError) ctx.onSystemic(error);
      for (const t of toCheck) settle(notDone(t, wasStarted.has(t), 'the inventory could not be read'));
      return inOrder(tokens, results);
    }
    for (const t of toCheck) {
      const entry = present.get(t.serialNumber);
      if (ctx.dryRun) {
        settle(entry ? { token: t, outcome: 'ALREADY_PRESENT', tokenId: entry.id, message: 'dry run: already in the inventory' } : { token: t, outcome: 'NOT_ATTEMPTED', message: 'dry run: would import' });
      } else if (entry && wasStarted.has(t)) {
        settle({ token: t, outcome: 'IMPORTED', tokenId: entry.id, message: 'imported by an earlier run whose job ended unheard; found in the inventory' });
      } else if (entry) {
        settle({ token: t, outcome: 'ALREADY_PRESENT', tokenId: entry.id, message: 'already in the inventory; not sent again' });
      } else {
        // An earlier run's start for it made nothing: no claim remains. (A token with no
        // start needs no record.)
        if (wasStarted.has(t)) ctx.journal.importCleared(t.serialNumber, t.index);
        pending.push(t);
      }
    }
    if (ctx.dryRun) return inOrder(tokens, results);
  }

  // Jobs of --job-size, a few in flight at once.
  const chunks: SeedToken[][] = [];
  const ordered = [...pending].sort((a, b) => a.index - b.index);
  for (let i = 0; i < ordered.length; i += ctx.jobSize) chunks.push(ordered.slice(i, i + ctx.jobSize));
  let next = 0;
  const run: Run = { ...ctx, lost, resends: 0 };
  const worker = async (): Promise<void> => {
    while (next < chunks.length) {
      const chunk = chunks[next++]!;
      try {
        await importChunk(chunk, run, settle);
      } catch (error) {
        // The journal could not record the starts (a full disk): nothing of this job was sent.
        if (!(error instanceof StopError)) throw error;
        ctx.onSystemic(error);
        for (const t of chunk) if (!results.has(t)) settle({ token: t, outcome: 'NOT_ATTEMPTED', message: `${error.message}; nothing of this token was sent` });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, ctx.jobsInFlight) }, worker));
  return inOrder(tokens, results);
}

/** The results in the tokens' order; a token nothing was learned of is NOT_ATTEMPTED; a copy shares its token's outcome. */
function inOrder(tokens: readonly SeedToken[], results: Map<SeedToken, ImportResult>): ImportResult[] {
  const byIndex = new Map<number, ImportResult>();
  for (const r of results.values()) byIndex.set(r.token.index, r);
  return tokens.map((t) => {
    if (t.copyOf === undefined) return results.get(t) ?? notDone(t, false, STOPPED_BEFORE);
    const twin = byIndex.get(t.copyOf);
    const outcome = twin?.outcome ?? 'NOT_ATTEMPTED';
    return { token: t, outcome, tokenId: twin?.tokenId, errorCode: twin?.errorCode, finishedEarlier: twin?.finishedEarlier, message: `the same token as #${t.copyOf} of this file (same secret and settings): imported once, as that one` };
  });
}

const STOPPED_BEFORE = 'the import stopped before this token';

function notDone(t: SeedToken, sent: boolean, why: string): ImportResult {
  return sent
    ? { token: t, outcome: 'UNCONFIRMED', errorCode: 'UNCONFIRMED', message: `${why}: whether this token was imported is not known; the next run checks the inventory first` }
    : { token: t, outcome: 'NOT_ATTEMPTED', message: `${why}; run it again to finish` };
}

/**
 * Which of `serials` the inventory holds, with the device each is paired to: one filtered
 * read per serial for a few, else the whole inventory paged (1,000 a page) — at most 100
 * requests for a full environment.
 */
export async function inInventory(serials: readonly string[], ctx: Pick<ImportContext, 'hard' | 'stopping' | 'maxAttempts' | 'backoff' | 'sleep' | 'onRetry'> & { readonly inventory: Pick<InventoryApi, 'oathToken' | 'oathTokensPage'> }): Promise<Map<string, InventoryEntry>> {
  const found = new Map<string, InventoryEntry>();
  const wanted = new Set(serials);
  const opts = { signal: ctx.hard, notAfter: ctx.stopping };
  if (serials.length <= LOOKUP_ONE_BY_ONE) {
    for (const serial of serials) {
      const entry = await withRetries(ctx, 0, () => ctx.inventory.oathToken(serial, opts));
      if (entry) found.set(serial, entry);
    }
    return found;
  }
  // Page by page, each retried on its own: a page that fails is asked for again with the cursor
  // PingOne gave, not the listing from its start (100 pages for a full environment).
  let url: string | undefined;
  do {
    const page = await withRetries(ctx, 0, () => ctx.inventory.oathTokensPage(url, opts));
    for (const e of page.entries) if (wanted.has(e.serialNumber)) found.set(e.serialNumber, e);
    // A listing that ends early is never taken for the whole: a token not found there may be present.
    if (page.refused) throw page.refused;
    url = page.next;
  } while (url !== undefined);
  return found;
}

/**
 * One job of tokens. `split`: a part of a job that FAILED; small parts go one by one, so that
 * each token gets PingOne's own answer.
 */
async function importChunk(chunk: SeedToken[], ctx: Run, settle: (r: ImportResult) => void, split = false, reason?: string): Promise<void> {
  if (split && chunk.length < SINGLE_BELOW) {
    for (const t of chunk) await importOne(t, ctx, settle, reason);
    return;
  }
  if (ctx.stopping.aborted) {
    for (const t of chunk) settle(notDone(t, false, STOPPED_BEFORE));
    return;
  }
  // All the job's starts share one write and one sync (group commit).
  const at = Date.now();
  await Promise.all(chunk.map((t) => ctx.journal.importStarted(t.serialNumber, t.index, at, at + ctx.timeoutMs)));
  const opts = { signal: ctx.hard, notAfter: ctx.stopping };
  const halves = async (why: string): Promise<void> => {
    const half = Math.ceil(chunk.length / 2);
    await importChunk(chunk.slice(0, half), ctx, settle, true, why);
    await importChunk(chunk.slice(half), ctx, settle, true, why);
  };
  let jobId: string;
  try {
    // Retried only when PingOne cannot have acted on it (429, refused connection): a job whose
    // answer was lost may be running, and sending it again would make its tokens duplicates.
    jobId = await withRetriesOnce(ctx, chunk[0]!.index, () => ctx.inventory.createOathJob(chunk.map(body), opts));
  } catch (error) {
    // PingOne refused the job itself (too large, a token it will not take): nothing was created.
    if (error instanceof ApiError && error.verdict.kind === 'refused') return halves(error.message);
    if (error instanceof Unanswered && !ctx.stopping.aborted) return resend(chunk, ctx, settle);
    if (error instanceof Unanswered) return afterLoss(chunk, error.original, ctx, settle, 'the job was sent and its answer never came');
    // Never sent (a stop before it was written), or refused before PingOne acted (429s, refused connection).
    return notSent(chunk, error, ctx, settle);
  }
  // Recorded at once: a run killed while the job runs lets the next one follow it to its end.
  ctx.journal.importJobSent(jobId, chunk.map((t) => t.serialNumber));
  let job: OathJob;
  try {
    job = await pollJob(jobId, ctx, chunk[0]!.index);
  } catch (error) {
    return afterLoss(chunk, error, ctx, settle, `job ${jobId} could not be followed to its end`);
  }
  if (job.status === 'DONE') return settleDone(chunk, job, ctx, settle);
  // FAILED: isolate the token(s) it failed for; the good ones import.
  return halves(job.reason ?? 'the job failed');
}

/** A DONE job: what it created is IMPORTED; a "duplicate" is ALREADY_PRESENT unless this tool sent it before. */
function settleDone(chunk: readonly SeedToken[], job: OathJob, ctx: Run, settle: (r: ImportResult) => void): void {
  const duplicates = new Set(job.duplicates);
  for (const t of chunk) {
    if (!duplicates.has(t.serialNumber)) settle({ token: t, outcome: 'IMPORTED' });
    // A "duplicate" of a token this tool sent in an earlier job (its answer lost, or its run
    // killed while it ran): that job made it.
    else if (ctx.lost.has(t.serialNumber)) settle({ token: t, outcome: 'IMPORTED', message: 'imported by an earlier job of this tool, whose end was not heard at the time' });
    else settle({ token: t, outcome: 'ALREADY_PRESENT', message: 'PingOne already held this serial' });
  }
}

/**
 * Jobs an earlier run sent and recorded but never saw end: each is polled (it may still be
 * running) and settles its tokens as if this run had sent it. A job PingOne no longer knows,
 * or one that FAILED, leaves its tokens to the inventory check that follows. Returns the
 * tokens settled.
 */
async function followJobs(byJob: ReadonlyMap<string, SeedToken[]>, ctx: Run, settle: (r: ImportResult) => void): Promise<Set<SeedToken>> {
  const done = new Set<SeedToken>();
  for (const [id, chunk] of byJob) {
    if (ctx.stopping.aborted) break;
    let job: OathJob;
    try {
      job = await pollJob(id, ctx, chunk[0]!.index);
    } catch (error) {
      if (error instanceof StopError) {
        ctx.onSystemic(error);
        break;
      }
      continue;
    }
    if (job.status !== 'DONE') continue;
    settleDone(chunk, job, ctx, (r) => {
      done.add(r.token);
      settle(r);
    });
  }
  return done;
}

/**
 * The job's answer was lost: wait a moment, read the inventory, count what is there as
 * IMPORTED (this run's job made it), and send the rest again in a new job.
 */
async function resend(chunk: SeedToken[], ctx: Run, settle: (r: ImportResult) => void): Promise<void> {
  for (const t of chunk) ctx.lost.add(t.serialNumber);
  // As many lost answers in a row as --max-attempts allows attempts; then the inventory decides.
  if (ctx.resends >= ctx.maxAttempts) return afterLoss(chunk, new Error('lost answers'), ctx, settle, 'the job was sent and its answer never came, again and again');
  try {
    await ctx.sleep(ctx.pollMaxMs, ctx.hard);
    const present = await inInventory(chunk.map((t) => t.serialNumber), ctx);
    const missing: SeedToken[] = [];
    for (const t of chunk) {
      const entry = present.get(t.serialNumber);
      if (entry) settle({ token: t, outcome: 'IMPORTED', tokenId: entry.id, message: 'the answer to its job was lost; found in the inventory' });
      else missing.push(t);
    }
    if (missing.length > 0) await importChunk(missing, { ...ctx, resends: ctx.resends + 1 }, settle, missing.length < SINGLE_BELOW);
  } catch (error) {
    return afterLoss(chunk, error, ctx, settle, 'the job was sent and its answer never came');
  }
}

/** A job or create that PingOne cannot have acted on: its claims are cleared. */
function notSent(chunk: SeedToken[], error: unknown, ctx: Run, settle: (r: ImportResult) => void): void {
  if (error instanceof StopError) ctx.onSystemic(error);
  for (const t of chunk) {
    if (ctx.stopping.aborted || !(error instanceof ApiError)) {
      ctx.journal.importCleared(t.serialNumber, t.index);
      settle({ token: t, outcome: 'NOT_ATTEMPTED', message: 'the import stopped before this token was sent; run it again to finish' });
    } else settle({ token: t, outcome: 'FAILED', errorCode: 'RETRIES_EXHAUSTED', message: `${error.message}: nothing was created; run it again later` });
  }
}

/** Tokens whose job (or create) ended unheard: what the inventory holds is IMPORTED, the rest UNCONFIRMED. */
async function afterLoss(chunk: SeedToken[], error: unknown, ctx: Run, settle: (r: ImportResult) => void, why: string): Promise<void> {
  if (error instanceof StopError) ctx.onSystemic(error);
  let present: Map<string, InventoryEntry> | undefined;
  if (!ctx.hard.aborted) {
    try {
      // Read even while the run stops: it settles what was sent.
      present = await inInventory(chunk.map((t) => t.serialNumber), { ...ctx, stopping: new AbortController().signal });
    } catch {
      present = undefined;
    }
  }
  for (const t of chunk) {
    const entry = present?.get(t.serialNumber);
    if (entry) settle({ token: t, outcome: 'IMPORTED', tokenId: entry.id, message: `${why}; found in the inventory` });
    else settle(notDone(t, true, why));
  }
}

/** Follows a job (create or revoke) to DONE or FAILED: polls from pollFirstMs doubling to pollMaxMs; gives up after jobTimeoutMs. */
export async function pollJob(id: string, ctx: Pick<ImportContext, 'maxAttempts' | 'backoff' | 'sleep' | 'stopping' | 'hard' | 'onRetry' | 'pollFirstMs' | 'pollMaxMs' | 'jobTimeoutMs'> & { readonly inventory: Pick<InventoryApi, 'getOathJob'> }, row = 0): Promise<OathJob> {
  const deadline = Date.now() + ctx.jobTimeoutMs;
  let delay = ctx.pollFirstMs;
  for (;;) {
    const job = await withRetries(ctx, row, () => ctx.inventory.getOathJob(id, { signal: ctx.hard }));
    if (job.status === 'DONE' || job.status === 'FAILED') return job;
    if (Date.now() + delay > deadline) throw new Error(`job ${id} was still ${job.status} after ${Math.round(ctx.jobTimeoutMs / 1000)} s`);
    await ctx.sleep(delay, ctx.hard);
    delay = Math.min(ctx.pollMaxMs, delay * 2);
  }
}

/** One token on its own (POST /oathTokens): PingOne's answer for exactly this token. */
async function importOne(t: SeedToken, ctx: Run, settle: (r: ImportResult) => void, jobReason?: string): Promise<void> {
  if (ctx.stopping.aborted) return settle(notDone(t, false, STOPPED_BEFORE));
  await ctx.journal.importStarted(t.serialNumber, t.index, Date.now(), Date.now() + ctx.timeoutMs);
  let uncertain = false;
  try {
    const entry = await withRetries(ctx, t.index, async () => {
      try {
        return await ctx.inventory.createOathToken(body(t), { signal: ctx.hard, notAfter: ctx.stopping });
      } catch (error) {
        if (unanswered(error)) uncertain = true;
        throw error;
      }
    });
    settle({ token: t, outcome: 'IMPORTED', tokenId: entry.id });
  } catch (error) {
    // After a lost answer, "already exists" may be our own earlier attempt: the inventory decides.
    if (error instanceof ApiError && error.verdict.kind === 'refused' && !uncertain) {
      if (error.detailCode === 'UNIQUENESS_VIOLATION') return settle({ token: t, outcome: 'ALREADY_PRESENT', message: 'PingOne already held this serial' });
      return settle({ token: t, outcome: 'FAILED', errorCode: 'IMPORT_REFUSED', message: `${error.message}${jobReason ? ` (the job said: ${jobReason})` : ''}` });
    }
    if (error instanceof ApiError && !uncertain) return settle({ token: t, outcome: 'FAILED', errorCode: 'RETRIES_EXHAUSTED', message: `${error.message}: nothing was created; run it again later` });
    if (uncertain || unanswered(error)) return afterLoss([t], error, ctx, settle, 'the token was sent and its answer never came');
    return notSent([t], error, ctx, settle);
  }
}
