/**
 * `oath-bulk replace <userID,oldSerial,newSerial csv> [--seeds …] [--activate] [--reason …]`:
 * each user gets the new token before losing the old one (engine/replace.ts). The new serials
 * the inventory lacks are imported first from --seeds; the old tokens are then returned to the
 * pool, or — with a reason — revoked and marked in the ledger, in batches (engine/revoke.ts).
 */
import type { RawOptions } from '../config.js';
import { UsageError } from '../errors.js';
import { IMPORT_POLLING, importTokens, inInventory } from '../engine/import-batch.js';
import { LedgerNotes, REVOKE_REASONS, type RevokeReason } from '../engine/ledger.js';
import { orderedPool } from '../engine/ordered-pool.js';
import { REPLACE_OUTCOMES, replaceRow, type ReplaceOutcome, type ReplaceResult, type ReplaceRow } from '../engine/replace.js';
import { followEarlierJobs, revokeTokens, type RevokeResult } from '../engine/revoke.js';
import { ShipmentSeeds } from '../engine/shipment-seeds.js';
import { InputError } from '../input/input-error.js';
import type { InventoryEntry } from '../pingone/client.js';
import { normaliseHeader, openCsv, readCsvRecords, type CsvFile } from '../input/reader.js';
import { checkSerial } from '../input/validate.js';
import { UUID_RE } from '../ids.js';
import { commandLine } from '../report/command-line.js';
import { buildSummary, humanSummary, stopAdvice } from '../report/summary.js';
import { Tally } from '../report/tally.js';
import { confirmed, overMaxUsers } from './shared/confirm.js';
import type { CommandDeps } from './shared/deps.js';
import { exitCode as decideExit } from './shared/exit-code.js';
import { openLifecycle } from './shared/lifecycle.js';
import { rowBreaker } from './shared/breaker.js';
import { shippedFacts } from './shared/import-results.js';
import { readSeeds, seedOptions } from './shared/seed-input.js';

export { REPLACE_OUTCOMES, type ReplaceOutcome };

interface Row extends Partial<ReplaceRow> {
  readonly row: number;
  readonly line: number;
  readonly extras: readonly string[];
  readonly problem?: { readonly code: string; readonly message: string };
}

function reasonOf(value: unknown, where: string): RevokeReason | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'string' && (REVOKE_REASONS as readonly string[]).includes(value)) return value as RevokeReason;
  throw new UsageError(`${where}: expected ${REVOKE_REASONS.join('|')}, got ${JSON.stringify(String(value).slice(0, 30))}`);
}

async function readReplacements(path: string, defaultReason: RevokeReason | undefined): Promise<{ file: CsvFile; rows: Row[]; extraNames: string[] }> {
  const file = await openCsv(path, 'a header row "userID,oldSerial,newSerial" (and reason, if rows differ)', { workbook: true });
  const names = file.header.map(normaliseHeader);
  const at = (...n: string[]): number => names.findIndex((h) => n.includes(h));
  const user = at('userid');
  const oldAt = at('oldserial', 'oldserialnumber');
  const newAt = at('newserial', 'newserialnumber');
  const reasonAt = at('reason');
  const missing = [user < 0 ? 'userID' : '', oldAt < 0 ? 'oldSerial' : '', newAt < 0 ? 'newSerial' : ''].filter(Boolean);
  if (missing.length > 0) throw new InputError(path, `line ${file.headerLine}`, `no ${missing.join(', ')} column: replace reads userID,oldSerial,newSerial (and an optional reason column)`);
  const own = new Set([user, oldAt, newAt, reasonAt]);
  const extras = file.header.map((name, index) => ({ name, index })).filter((e) => !own.has(e.index) && e.name !== '');
  const rows: Row[] = [];
  const seen = new Set<string>();
  for await (const raw of readCsvRecords(file)) {
    const cell = (i: number): string => (raw.fields[i] ?? '').trim();
    const base = { row: raw.row, line: raw.line, userID: cell(user), oldSerial: cell(oldAt), newSerial: cell(newAt), extras: extras.map((e) => raw.fields[e.index] ?? '') };
    const where = `row ${raw.row} (line ${raw.line})`;
    let problem: Row['problem'];
    let reason: RevokeReason | undefined = defaultReason;
    try {
      if (reasonAt >= 0 && cell(reasonAt) !== '') reason = reasonOf(cell(reasonAt), `${where}: reason`);
    } catch (error) {
      problem = { code: 'REASON_INVALID', message: (error as Error).message };
    }
    const oldProblem = checkSerial(base.oldSerial);
    const newProblem = checkSerial(base.newSerial);
    if (!problem && !UUID_RE.test(base.userID)) problem = { code: 'USER_ID_INVALID', message: `${where}: userID ${JSON.stringify(base.userID.slice(0, 60))} is not a user id` };
    else if (!problem && oldProblem) problem = { code: oldProblem.code, message: `${where}: oldSerial: ${oldProblem.message}` };
    else if (!problem && newProblem) problem = { code: newProblem.code, message: `${where}: newSerial: ${newProblem.message}` };
    else if (!problem && base.oldSerial === base.newSerial) problem = { code: 'SAME_SERIAL', message: `${where}: oldSerial and newSerial are the same` };
    else if (!problem && (seen.has(base.oldSerial) || seen.has(base.newSerial))) problem = { code: 'DUPLICATE_ROW', message: `${where}: a serial of this row is named by an earlier row: each token is replaced once` };
    if (!problem) {
      seen.add(base.oldSerial);
      seen.add(base.newSerial);
    }
    rows.push({ ...base, reason, problem });
  }
  if (rows.length === 0) throw new InputError(path, undefined, 'has a header but no rows');
  return { file, rows, extraNames: extras.map((e) => e.name) };
}

export async function replaceCommand(path: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  const dryRun = raw['dry-run'] === true;
  const activate = raw['activate'] === true;
  const defaultReason = reasonOf(raw['reason'], '--reason');
  const seedsPath = typeof raw['seeds'] === 'string' && raw['seeds'] !== '' ? raw['seeds'] : undefined;
  if (activate && !seedsPath) throw new UsageError('--activate: the codes are computed from the new tokens\' seeds: add --seeds <the seed file of the new tokens>');
  const { defaults, jobSize } = seedOptions(raw);
  const list = await readReplacements(path, defaultReason);
  const life = await openLifecycle('replace', path, raw, deps, list, 'replace deletes the old devices once the new ones are in place', ['oldSerial', 'oldDeviceId', 'step', 'reason']);
  const { ctx, ledger, limit, results } = life;
  const { paths, logger, session, startedAt } = ctx;
  const control = deps.control;
  const t0 = performance.now();
  const tally = new Tally<ReplaceOutcome>(REPLACE_OUTCOMES, ['NOT_ATTEMPTED']);
  const notes = new LedgerNotes(ledger, life.warn);
  const retry = ctx.retryContext();
  const valid = list.rows.filter((r): r is Row & ReplaceRow => !r.problem);
  logger.info({ event: 'replace.start', input: path, dryRun, activate, rows: list.rows.length, seeds: seedsPath ?? null });
  let seeds: ShipmentSeeds | undefined;
  let refused: string | undefined;
  let failure: unknown;
  const importFailed = new Map<string, string>();
  const done = new Map<number, ReplaceResult>();
  try {
    seeds = seedsPath ? new ShipmentSeeds(seedsPath, (await readSeeds(seedsPath, raw, deps, defaults)).tokens) : undefined;
    seeds?.wipeExcept(seeds.needed(new Set(valid.map((r) => r.newSerial))));
    await life.prove();
    const users = new Set(valid.map((r) => r.userID));
    const consequences = { command: 'replace', environmentId: ctx.connection.environmentId, action: `replace ${valid.length} OATH token${valid.length === 1 ? '' : 's'} (each new device in place before the old one is deleted)`, users: users.size, leftWithNone: [] };
    if (!dryRun && !control.stopped) {
      refused = overMaxUsers(consequences, limit);
      if (!refused && !(await confirmed(consequences, raw, deps))) refused = 'replace: not confirmed; nothing was changed';
    }
    // Who holds each old and new token now, before any row; then the new tokens the inventory
    // lacks, from --seeds (never a revoked one).
    let present = new Map<string, InventoryEntry>();
    if (!refused && !control.stopped && valid.length > 0) present = await inInventory([...new Set(valid.flatMap((r) => [r.oldSerial, r.newSerial]))], { ...retry, inventory: session.client });
    if (seeds && !refused && !control.stopped) {
      const needed = seeds.needed(new Set(valid.map((r) => r.newSerial).filter((s) => !present.has(s))));
      await ledger.refresh();
      const imported = await importTokens(needed, { ...retry, inventory: session.client, jobSize, dryRun, ...IMPORT_POLLING, jobsInFlight: ctx.engine.concurrency, present, keepSecrets: activate, revoked: (s) => ledger.revoked(s) });
      for (const r of imported) if (r.outcome !== 'IMPORTED' && r.outcome !== 'ALREADY_PRESENT' && !(dryRun && r.outcome === 'NOT_ATTEMPTED')) importFailed.set(r.token.serialNumber, `${r.outcome}${r.errorCode ? ` ${r.errorCode}` : ''}: ${r.message ?? ''}`);
      if (!dryRun) for (const fact of shippedFacts(imported, seeds.path, `replace ${paths.runId}`)) notes.note(fact);
    }
    const rctx = { ...retry, api: session.client, ledger, by: `replace ${paths.runId}`, dryRun, activate, seedOf: (s: string) => seeds?.bySerial.get(s), inventory: (s: string) => present.get(s), note: (f: Parameters<LedgerNotes['note']>[0]) => notes.note(f) };
    const judge = rowBreaker(ctx.engine.maxConsecutiveFailures, control, 'replace');
    if (!refused) {
      await orderedPool((valid), ctx.engine.concurrency, async (r) => {
        if (control.stopped) return { row: r.row, result: { outcome: 'NOT_ATTEMPTED' as const, attempts: 0, message: 'the command stopped before this row: run the same command again to finish' } };
        const failedImport = importFailed.get(r.newSerial);
        if (failedImport) return { row: r.row, result: { outcome: 'FAILED' as const, step: 'import' as const, errorCode: failedImport.includes('TOKEN_REVOKED') ? 'TOKEN_REVOKED' : 'IMPORT_FAILED', attempts: 0, message: `step import: ${r.newSerial} could not be imported from ${seedsPath} (${failedImport}); the old device stays` } };
        return { row: r.row, result: await replaceRow(r, rctx) };
      }, ({ row, result }) => {
        judge(result.errorCode);
        done.set(row, result);
      });
    }
    // The old tokens: revoked (with a reason), in batches; else returned to the pool.
    if (!dryRun) await retire(valid, done, { ...retry, api: session.client, ledger, by: `replace ${paths.runId}`, jobSize, jobsInFlight: ctx.engine.concurrency, ...IMPORT_POLLING, note: (f) => notes.note(f) });
    for (const row of list.rows) {
      const r: ReplaceResult = row.problem ? { outcome: 'INVALID', errorCode: row.problem.code, message: row.problem.message, attempts: 0 } : (done.get(row.row) ?? { outcome: 'NOT_ATTEMPTED', attempts: 0, message: refused ?? 'the command stopped before this row: run the same command again to finish' });
      tally.add({ outcome: r.outcome, errorCode: r.errorCode, finishedEarlier: r.finishedEarlier, deviceStatus: r.deviceStatus });
      if (r.outcome !== 'REPLACED' && r.outcome !== 'WOULD_REPLACE') ctx.recorder.attention({ row: row.row, userID: row.userID ?? '', serialNumber: row.newSerial ?? '', outcome: r.outcome, errorCode: r.errorCode, message: r.message, extras: row.extras });
      logger[r.outcome === 'FAILED' || r.outcome === 'UNCONFIRMED' ? 'warn' : 'info']({ event: 'row', row: row.row, userID: row.userID, serialNumber: row.newSerial, oldSerial: row.oldSerial, outcome: r.outcome, step: r.step, errorCode: r.errorCode, attempts: r.attempts });
      await results.writeCells([row.row, row.userID ?? '', row.newSerial ?? '', r.outcome, r.deviceId, r.deviceStatus, r.httpStatus, r.errorCode, undefined, r.message, r.attempts, undefined, row.oldSerial ?? '', r.oldDeviceId, r.step, row.reason ?? '', ...row.extras]);
    }
  } catch (error) {
    failure = error;
  } finally {
    seeds?.wipeExcept([]);
    await notes.flush();
    failure = await life.close(failure);
  }
  if (failure) throw failure;

  const stopped = control.reason ?? (refused ? { code: 'REFUSED', message: refused } : undefined);
  const good: ReplaceOutcome[] = dryRun ? ['REPLACED', 'WOULD_REPLACE'] : ['REPLACED'];
  const exitCode = refused ? 2 : decideExit(tally, { stopped: stopped !== undefined, good });
  const durationMs = Math.round(performance.now() - t0);
  const summary = buildSummary({ command: 'replace', runId: paths.runId, input: path, dryRun, startedAt, durationMs, tally, requests: session.stats, ledger: { path: ledger.path }, stopped, exitCode, reports: { ...paths, journal: null } });
  const args = deps.argv ?? ['replace', path, ...(dryRun ? ['--dry-run'] : [])];
  let next: string;
  if (refused) next = `${refused.endsWith('nothing was changed') ? 'nothing was changed; to replace them' : 'check the file, then'}: ${commandLine(args)}`;
  else if (stopped) next = `${stopAdvice(stopped)}: ${commandLine(args)}`;
  else if (dryRun) next = tally.count('WOULD_REPLACE') > 0 ? `to replace them: ${commandLine(args, ['--dry-run'], ['--yes'])}` : 'nothing to replace';
  else if (exitCode !== 0) next = `see the rows that are not REPLACED (the step column says where each stopped; their old devices stay), then run the same command again: ${commandLine(args)}`;
  else next = 'every user holds the new token and no longer the old one; the old tokens are back in the pool or revoked (reason column)';
  await ctx.finish(summary, humanSummary({ title: `oath-bulk replace ${path}`, dryRun, durationMs, tally, requests: session.stats, stopped, reports: paths, next }));
  return exitCode;
}

/** Retires the old tokens of the rows that replaced them: revoke jobs per reason, or "returned" in the ledger. */
async function retire(rows: ReadonlyArray<ReplaceRow>, done: Map<number, ReplaceResult>, ctx: Omit<Parameters<typeof revokeTokens>[2], 'reason' | 'dryRun'> & { note: (f: Parameters<LedgerNotes['note']>[0]) => void }): Promise<void> {
  const byReason = new Map<RevokeReason, ReplaceRow[]>();
  for (const r of rows) {
    const d = done.get(r.row);
    if (d?.outcome !== 'REPLACED' || !d.retire) continue;
    if (d.retire === 'return') {
      ctx.note({ e: 'returned', sn: r.oldSerial, user: r.userID, by: ctx.by, device: d.oldDeviceId });
      done.set(r.row, { ...d, message: `${d.message}; ${r.oldSerial} returned to the pool` });
    } else byReason.set(r.reason!, [...(byReason.get(r.reason!) ?? []), r]);
  }
  for (const [reason, group] of byReason) {
    let outcomes: Map<string, RevokeResult>;
    /** The rows whose old token is still theirs to revoke. */
    let mine: ReplaceRow[] = group;
    try {
      // A killed run's revoke jobs first: the inventory then shows what they did.
      await followEarlierJobs(group.map((r) => r.oldSerial), ctx);
      const present = await inInventory(group.map((r) => r.oldSerial), { ...ctx, inventory: ctx.api });
      // A token on another user by now is theirs: never revoked from here.
      const theirs = group.filter((r) => { const u = present.get(r.oldSerial)?.device?.userId; return u !== undefined && u.toLowerCase() !== r.userID.toLowerCase(); });
      for (const r of theirs) {
        const d = done.get(r.row)!;
        done.set(r.row, { ...d, outcome: 'FAILED', step: 'retire', errorCode: 'SERIAL_ASSIGNED_ELSEWHERE', message: `${d.message}; step retire: ${r.oldSerial} is on another user now (${present.get(r.oldSerial)!.device!.userId}): not revoked from here` });
      }
      mine = group.filter((r) => !theirs.includes(r));
      outcomes = await revokeTokens(mine.map((r) => r.oldSerial), present, { ...ctx, reason, dryRun: false });
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      outcomes = new Map(mine.map((r): [string, RevokeResult] => [r.oldSerial, { serialNumber: r.oldSerial, outcome: 'FAILED', message: error.message, attempts: 0 }]));
    }
    for (const r of mine) {
      const d = done.get(r.row)!;
      const o = outcomes.get(r.oldSerial);
      done.set(r.row, o && (o.outcome === 'REVOKED' || o.outcome === 'NOT_IN_INVENTORY')
        ? { ...d, message: `${d.message}; ${r.oldSerial} revoked (${reason})` }
        : { ...d, outcome: 'FAILED', step: 'retire', errorCode: o?.errorCode ?? 'REVOKE_NOT_CONFIRMED', message: `${d.message}; step retire: ${r.oldSerial} could not be revoked (${o?.message ?? 'not attempted'}): run the same command again` });
    }
  }
}
