/**
 * `oath-bulk revoke <serials.csv|results.csv|seed file> --reason lost|stolen|defective|retired`:
 * takes tokens out of service for good (SPEC "After the rollout"). The inventory is read for
 * the file's serials, so that the dry run and the confirmation name every user who would lose a
 * device (and those left with none); then the ledger, revoke jobs with forceUnpair, and the
 * inventory read back (engine/revoke.ts). The ledger is the command's journal: a rerun reports
 * what an earlier run revoked and sends only what is still there.
 */
import pLimit from 'p-limit';
import type { RawOptions } from '../config.js';
import { StopError, UsageError } from '../errors.js';
import { inInventory, IMPORT_POLLING } from '../engine/import-batch.js';
import { REVOKE_REASONS, type RevokeReason } from '../engine/ledger.js';
import { followEarlierJobs, REVOKE_OUTCOMES, revokeTokens, type RevokeOutcome, type RevokeResult } from '../engine/revoke.js';
import { withRetries } from '../engine/assign-row.js';
import type { InventoryEntry } from '../pingone/client.js';
import { ApiError } from '../pingone/errors.js';
import { commandLine, followUp } from '../report/command-line.js';
import { buildSummary, humanSummary, stopAdvice } from '../report/summary.js';
import { Tally } from '../report/tally.js';
import { confirmed, overMaxUsers, type Consequences } from './shared/confirm.js';
import type { CommandContext } from './shared/context.js';
import { openLifecycle } from './shared/lifecycle.js';
import type { CommandDeps } from './shared/deps.js';
import { exitCode as decideExit } from './shared/exit-code.js';
import { seedOptions } from './shared/seed-input.js';
import { readTokenList, type TokenRow } from './shared/token-list.js';

export { REVOKE_OUTCOMES, type RevokeOutcome };

function reasonOf(raw: RawOptions): RevokeReason {
  const given = raw['reason'];
  if (typeof given !== 'string' || !(REVOKE_REASONS as readonly string[]).includes(given)) {
    throw new UsageError(`--reason: required, one of ${REVOKE_REASONS.join('|')} (got ${given === undefined ? 'none' : JSON.stringify(String(given))}): the ledger keeps why each token went out of service`);
  }
  return given as RevokeReason;
}

export async function revokeCommand(path: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  const dryRun = raw['dry-run'] === true;
  const reason = reasonOf(raw);
  const { jobSize } = seedOptions(raw);
  const list = await readTokenList(path, 'the serials to revoke, a results file of oath-bulk run, or the seed file of the box');
  const life = await openLifecycle('revoke', path, raw, deps, list, 'revoke takes tokens out of service for good and their devices off their users', ['reason']);
  const { ctx, ledger, limit, results } = life;
  const { connection, engine } = ctx;
  const { paths, logger, session, startedAt } = ctx;
  const t0 = performance.now();
  const valid = list.rows.filter((r) => !r.problem && !r.skip);
  let serials = valid.map((r) => r.serialNumber);
  /** Results-file rows whose token is on another user now: theirs, never revoked from here. */
  const elsewhere = new Map<string, string>();
  logger.info({ event: 'revoke.start', input: path, kind: list.kind, dryRun, reason, rows: list.rows.length, serials: serials.length, ledger: ledger.path });
  const tally = new Tally<RevokeOutcome>(REVOKE_OUTCOMES, ['NOT_ATTEMPTED']);
  const retry = ctx.retryContext();
  const control = deps.control;
  let outcomes = new Map<string, RevokeResult>();
  let refused: string | undefined;
  let consequences: Consequences | undefined;
  let failure: unknown;
  try {
    await life.prove();
    // The inventory for the file's serials: who holds each token now.
    let present: Map<string, InventoryEntry> | undefined;
    if (!control.stopped && serials.length > 0) {
      try {
        // A killed revoke's jobs first: the inventory then shows what they did.
        if (!dryRun) {
          const followed = await followEarlierJobs(serials, { ...retry, api: session.client, ledger, ...IMPORT_POLLING });
          if (followed > 0) logger.info({ event: 'revoke.earlierJobs', jobs: followed });
        }
        present = await inInventory(serials, { ...retry, inventory: session.client });
      } catch (error) {
        if (error instanceof StopError) control.stop(error);
        else if (error instanceof ApiError) control.stop(new StopError('INVENTORY_UNREADABLE', `the OATH token inventory could not be read (${error.message}): nothing was revoked; run the same command again later`));
        else if (!control.stopped) throw error;
      }
    }
    if (present && !control.stopped) {
      if (list.kind === 'results') {
        for (const row of valid) {
          const holder = present.get(row.serialNumber)?.device?.userId;
          if (holder && row.userID && holder.toLowerCase() !== row.userID.toLowerCase()) elsewhere.set(row.serialNumber, holder);
        }
        serials = serials.filter((s) => !elsewhere.has(s));
      }
      const losing = new Set<string>();
      for (const s of serials) {
        const user = present.get(s)?.device?.userId;
        if (user) losing.add(user);
      }
      // Who would be left with no MFA device: read for the dry run and for the question on a
      // terminal (one read per user); with --yes nobody is asked, and the dry run has told.
      const ask = !dryRun && raw['yes'] !== true;
      const leftWithNone = dryRun || ask ? await usersLeftWithNone(losing, new Set(serials), ctx, retry) : undefined;
      consequences = { command: 'revoke', environmentId: connection.environmentId, action: `revoke ${serials.length} OATH token${serials.length === 1 ? '' : 's'} for good (reason: ${reason})`, users: losing.size, leftWithNone };
      refused = dryRun ? undefined : overMaxUsers(consequences, limit);
      if (!refused && ask && !(await confirmed(consequences, raw, deps))) refused = 'revoke: not confirmed; nothing was revoked';
      if (!refused && !control.stopped) {
        outcomes = await revokeTokens(serials, present, {
          ...retry,
          api: session.client,
          ledger,
          reason,
          by: `revoke ${paths.runId}`,
          dryRun,
          jobSize,
          jobsInFlight: engine.concurrency,
          ...IMPORT_POLLING,
        });
      }
    }
    const none = new Set(consequences?.leftWithNone ?? []);
    for (const row of list.rows) {
      const holder = elsewhere.get(row.serialNumber);
      const r: RevokeResult = holder && !row.problem
        ? { serialNumber: row.serialNumber, outcome: 'FAILED', errorCode: 'SERIAL_ASSIGNED_ELSEWHERE', userID: row.userID, attempts: 0, message: `the results file gave ${row.serialNumber} to ${row.userID ?? 'its user'}, but it is on ${holder} now (unassigned and given out again since?): not revoked; if that token is lost too, revoke it from a list of serials` }
        : resultOf(row, outcomes.get(row.serialNumber), refused, none);
      tally.add({ outcome: r.outcome, errorCode: r.errorCode, finishedEarlier: r.finishedEarlier });
      if (!['REVOKED', 'NOT_IN_INVENTORY', 'WOULD_REVOKE', 'SKIPPED'].includes(r.outcome)) ctx.recorder.attention({ row: row.row, userID: r.userID ?? '', serialNumber: row.serialNumber, outcome: r.outcome, errorCode: r.errorCode, message: r.message, extras: row.extras });
      logger[r.outcome === 'FAILED' || r.outcome === 'UNCONFIRMED' ? 'warn' : 'info']({ event: 'row', row: row.row, serialNumber: row.serialNumber, userID: r.userID, deviceId: r.deviceId, outcome: r.outcome, errorCode: r.errorCode, attempts: r.attempts });
      await results.writeCells([row.row, r.userID ?? '', row.serialNumber, r.outcome, r.deviceId, undefined, r.httpStatus, r.errorCode, undefined, r.message, r.attempts, undefined, r.outcome === 'REVOKED' || r.outcome === 'NOT_IN_INVENTORY' || r.outcome === 'WOULD_REVOKE' ? reason : '', ...row.extras]);
    }
  } catch (error) {
    failure = error;
  } finally {
    failure = await life.close(failure);
  }
  if (failure) throw failure;

  const stopped = control.reason ?? (refused ? { code: 'REFUSED', message: refused } : undefined);
  const good: RevokeOutcome[] = dryRun ? ['REVOKED', 'NOT_IN_INVENTORY', 'WOULD_REVOKE', 'SKIPPED'] : ['REVOKED', 'NOT_IN_INVENTORY', 'SKIPPED'];
  // A file that names no token to revoke did not do what was asked.
  const nothing = !dryRun && tally.count('REVOKED') + tally.count('NOT_IN_INVENTORY') === 0 && tally.count('SKIPPED') > 0;
  const exitCode = refused ? 2 : nothing ? 1 : decideExit(tally, { stopped: stopped !== undefined, good });
  const durationMs = Math.round(performance.now() - t0);
  const summary = buildSummary({ command: 'revoke', runId: paths.runId, input: path, dryRun, startedAt, durationMs, tally, requests: session.stats, ledger: { path: ledger.path }, stopped, exitCode, reports: { ...paths, journal: null } });
  const usersLosing = consequences?.users ?? 0;
  Object.assign(summary, { reason, kind: list.kind, usersLosingDevice: usersLosing, usersLeftWithNoDevice: consequences?.leftWithNone ?? null });
  const args = deps.argv ?? ['revoke', path, '--reason', reason, ...(dryRun ? ['--dry-run'] : [])];
  let next: string;
  if (refused) next = `${refused.startsWith('revoke: not confirmed') ? 'nothing was revoked; to revoke them' : 'check the file, then'}: ${commandLine(args)}`;
  else if (stopped) next = `${stopAdvice(stopped)}: ${commandLine(args)}`;
  else if (dryRun) next = tally.count('WOULD_REVOKE') + tally.count('NOT_IN_INVENTORY') > 0 ? `to revoke them: ${commandLine(args, ['--dry-run'], ['--yes'])}` : 'nothing to revoke: every token of the file is revoked already';
  else if (exitCode !== 0) next = `see the rows that are not REVOKED in the results, then run the same command again (revoked tokens are not sent again): ${commandLine(args)}`;
  else if (tally.count('REVOKED') + tally.count('NOT_IN_INVENTORY') === 0) next = 'nothing was revoked: no row of the file names a token its user holds (see the SKIPPED rows)';
  else next = `the tokens are out of service for good: the ledger (${ledger.path}) keeps them out of every import and run${usersLosing > 0 ? `; tell the ${usersLosing} user${usersLosing === 1 ? '' : 's'} named in the results that their token no longer works, and give them another: ${followUp(args, 'run', '<shipment.csv>')}` : ''}`;
  const notes: string[] = [];
  if (consequences) notes.push(`${dryRun ? 'would take a device from' : 'users losing a device:'} ${usersLosing} user${usersLosing === 1 ? '' : 's'}${dryRun ? ' (userID in the results)' : ''}`);
  if (consequences?.leftWithNone?.length) notes.push(`LEFT WITH NO MFA DEVICE: ${consequences.leftWithNone.length} user${consequences.leftWithNone.length === 1 ? '' : 's'} (${consequences.leftWithNone.slice(0, 10).join(', ')}${consequences.leftWithNone.length > 10 ? ', …' : ''}): give them another way to sign in first`);
  // A serial neither in PingOne nor ever seen by the ledger may be a typo: the real token would still work.
  const unknown = [...outcomes.values()].filter((o) => o.outcome === 'NOT_IN_INVENTORY' && !ledger.life(o.serialNumber)?.handedOut && !ledger.life(o.serialNumber)?.shipment).map((o) => o.serialNumber);
  if (unknown.length > 0) notes.push(`CHECK FOR TYPOS: ${unknown.length} serial${unknown.length === 1 ? ' is' : 's are'} neither in the inventory nor known to the ledger (${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ', …' : ''}): marked revoked all the same; if one is a typo, the real token still works — revoke it by its right serial`);
  if (list.kind === 'results') notes.push(`from a results file: only its CREATED and EXISTING rows are revoked (${tally.count('SKIPPED')} other rows SKIPPED)`);
  await ctx.finish(summary, humanSummary({ title: `oath-bulk revoke ${path}`, dryRun, durationMs, tally, requests: session.stats, stopped, reports: paths, notes, next }), { notes });
  return exitCode;
}

/** A row's outcome, whatever became of its serial. */
function resultOf(row: TokenRow, r: RevokeResult | undefined, refused: string | undefined, leftWithNone: ReadonlySet<string>): RevokeResult {
  if (row.problem) return { serialNumber: row.serialNumber, outcome: 'INVALID', errorCode: row.problem.code, message: row.problem.message, attempts: 0 };
  if (row.skip) return { serialNumber: row.serialNumber, outcome: 'SKIPPED', userID: row.userID, message: row.skip, attempts: 0 };
  if (!r) return { serialNumber: row.serialNumber, outcome: 'NOT_ATTEMPTED', message: refused ?? 'the command stopped before this token: run the same command again to finish', attempts: 0 };
  if (r.userID && leftWithNone.has(r.userID) && r.outcome === 'WOULD_REVOKE') return { ...r, message: `${r.message}; that user would be left with NO MFA device` };
  return r;
}

/** The users of `losing` who hold no MFA device besides the tokens being revoked (one read each). */
async function usersLeftWithNone(losing: ReadonlySet<string>, serials: ReadonlySet<string>, ctx: CommandContext, retry: ReturnType<CommandContext['retryContext']>): Promise<string[]> {
  const limit = pLimit(ctx.engine.concurrency);
  const none: string[] = [];
  await Promise.all([...losing].map((user) => limit(async () => {
    if (retry.stopping.aborted) return;
    try {
      const devices = await withRetries(retry, 0, () => ctx.session.client.listDevices(user, { signal: retry.hard, notAfter: retry.stopping }));
      if (devices.every((d) => d.serialNumber !== undefined && serials.has(d.serialNumber))) none.push(user);
    } catch (error) {
      if (error instanceof StopError) throw error;
      // Not known: not claimed either way.
    }
  })));
  return none.sort();
}
