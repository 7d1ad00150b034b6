/**
 * `oath-bulk unassign <userID,serialNumber csv | results.csv>`: the hardware came back. Each
 * row's device is deleted from its user; the token stays in the inventory, free, and the ledger
 * says "returned" (engine/unassign.ts). Everything is read first, so that the confirmation and
 * the dry run name every user who would lose a device and those it would leave with none.
 */
import type { RawOptions } from '../config.js';
import { LedgerNotes } from '../engine/ledger.js';
import { orderedPool } from '../engine/ordered-pool.js';
import { planUnassign, unassign, UNASSIGN_OUTCOMES, type UnassignOutcome, type UnassignPlan, type UnassignResult } from '../engine/unassign.js';
import { commandLine, followUp } from '../report/command-line.js';
import { buildSummary, humanSummary, stopAdvice } from '../report/summary.js';
import { Tally } from '../report/tally.js';
import { confirmed, overMaxUsers, type Consequences } from './shared/confirm.js';
import type { CommandDeps } from './shared/deps.js';
import { exitCode as decideExit } from './shared/exit-code.js';
import { openLifecycle } from './shared/lifecycle.js';
import { rowBreaker } from './shared/breaker.js';
import { readTokenList, type TokenRow } from './shared/token-list.js';

export { UNASSIGN_OUTCOMES, type UnassignOutcome };

export async function unassignCommand(path: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  const dryRun = raw['dry-run'] === true;
  const allowLastDevice = raw['allow-last-device'] === true;
  const list = await readTokenList(path, 'the tokens to unassign', { users: true });
  const life = await openLifecycle('unassign', path, raw, deps, list, 'unassign deletes devices from their users');
  const { ctx, ledger, limit, results } = life;
  const { paths, logger, session, startedAt } = ctx;
  const control = deps.control;
  const t0 = performance.now();
  const valid = list.rows.filter((r) => !r.problem && !r.skip);
  logger.info({ event: 'unassign.start', input: path, kind: list.kind, dryRun, rows: list.rows.length, allowLastDevice });
  const tally = new Tally<UnassignOutcome>(UNASSIGN_OUTCOMES, ['NOT_ATTEMPTED']);
  const notes = new LedgerNotes(ledger, life.warn);
  const retry = ctx.retryContext();
  const uctx = { ...retry, api: session.client, ledger, by: `unassign ${paths.runId}`, dryRun, allowLastDevice, note: (f: Parameters<LedgerNotes['note']>[0]) => notes.note(f) };
  let refused: string | undefined;
  let consequences: Consequences | undefined;
  let failure: unknown;
  try {
    await life.prove();
    // Read first: what each row would delete, and what each user would be left with.
    const plans = new Map<number, UnassignPlan>();
    if (!control.stopped) {
      await orderedPool((valid), ctx.engine.concurrency, async (row) => ({ row: row.row, plan: await planUnassign(row.row, row.userID!, row.serialNumber, uctx) }), ({ row, plan }) => {
        plans.set(row, plan);
      });
    }
    const perUser = new Map<string, { devices: number; deletes: number }>();
    for (const p of plans.values()) {
      if (!p.device) continue;
      const u = perUser.get(p.userID) ?? { devices: p.others + 1, deletes: 0 };
      u.deletes++;
      perUser.set(p.userID, u);
    }
    // A user whose every device the file takes is left with none: each of those rows needs --allow-last-device.
    for (const [row, p] of plans) {
      const u = p.device ? perUser.get(p.userID)! : undefined;
      if (u) plans.set(row, { ...p, others: Math.max(0, u.devices - u.deletes) });
    }
    const leftWithNone = [...perUser].filter(([, u]) => u.deletes >= u.devices).map(([user]) => user).sort();
    const losing = allowLastDevice ? perUser.size : [...perUser].filter(([, u]) => u.deletes < u.devices).length;
    consequences = { command: 'unassign', environmentId: ctx.connection.environmentId, action: `unassign ${plans.size} OATH token${plans.size === 1 ? '' : 's'} (their devices deleted; the tokens stay in the inventory, free)`, users: losing, leftWithNone: allowLastDevice ? leftWithNone : [] };
    if (!dryRun && !control.stopped && losing > 0) {
      refused = overMaxUsers(consequences, limit);
      if (!refused && !(await confirmed(consequences, raw, deps))) refused = 'unassign: not confirmed; nothing was deleted';
    }
    const rows = list.rows;
    const judge = rowBreaker(ctx.engine.maxConsecutiveFailures, control, 'unassign');
    await orderedPool((rows), ctx.engine.concurrency, async (row) => ({ row: row.row, item: row, r: await outcomeOf(row, plans.get(row.row), refused, uctx) }), async ({ item: row, r }) => {
      judge(r.errorCode);
      tally.add({ outcome: r.outcome, errorCode: r.errorCode, finishedEarlier: r.finishedEarlier });
      if (!['UNASSIGNED', 'NOT_ASSIGNED', 'WOULD_UNASSIGN', 'SKIPPED'].includes(r.outcome)) ctx.recorder.attention({ row: row.row, userID: row.userID ?? '', serialNumber: row.serialNumber, outcome: r.outcome, errorCode: r.errorCode, message: r.message, extras: row.extras });
      logger[r.outcome === 'FAILED' || r.outcome === 'UNCONFIRMED' ? 'warn' : 'info']({ event: 'row', row: row.row, userID: row.userID, serialNumber: row.serialNumber, deviceId: r.deviceId, outcome: r.outcome, errorCode: r.errorCode, attempts: r.attempts });
      await results.writeCells([row.row, row.userID ?? '', row.serialNumber, r.outcome, r.deviceId, r.deviceStatus, r.httpStatus, r.errorCode, undefined, r.message, r.attempts, undefined, ...row.extras]);
    });
  } catch (error) {
    failure = error;
  } finally {
    await notes.flush();
    failure = await life.close(failure);
  }
  if (failure) throw failure;

  const stopped = control.reason ?? (refused ? { code: 'REFUSED', message: refused } : undefined);
  const good: UnassignOutcome[] = dryRun ? ['UNASSIGNED', 'NOT_ASSIGNED', 'WOULD_UNASSIGN', 'SKIPPED'] : ['UNASSIGNED', 'NOT_ASSIGNED', 'SKIPPED'];
  const exitCode = refused ? 2 : decideExit(tally, { stopped: stopped !== undefined, good });
  const durationMs = Math.round(performance.now() - t0);
  const summary = buildSummary({ command: 'unassign', runId: paths.runId, input: path, dryRun, startedAt, durationMs, tally, requests: session.stats, ledger: { path: ledger.path }, stopped, exitCode, reports: { ...paths, journal: null } });
  Object.assign(summary, { kind: list.kind, usersLosingDevice: consequences?.users ?? 0, usersLeftWithNoDevice: consequences?.leftWithNone ?? null });
  const args = deps.argv ?? ['unassign', path, ...(dryRun ? ['--dry-run'] : [])];
  let next: string;
  const last = tally.errorCodes['LAST_DEVICE'] ?? 0;
  if (refused) next = `${refused.endsWith('nothing was deleted') ? 'nothing was deleted; to unassign them' : 'check the file, then'}: ${commandLine(args)}`;
  else if (stopped) next = `${stopAdvice(stopped)}: ${commandLine(args)}`;
  else if (dryRun) next = tally.count('WOULD_UNASSIGN') > 0 ? `to unassign them: ${commandLine(args, ['--dry-run'], ['--yes'])}` : 'nothing to unassign';
  else if (last > 0 && exitCode !== 0 && tally.count('FAILED') === last) next = `${last} row${last === 1 ? '' : 's'} would leave a user with no MFA device: give them another device first, or to unassign anyway: ${commandLine(args, [], ['--allow-last-device'])}`;
  else if (exitCode !== 0) next = `see the rows that are not UNASSIGNED in the results, then run the same command again (done rows are not sent again): ${commandLine(args)}`;
  else next = tally.count('UNASSIGNED') > 0 ? `the tokens are free in the inventory: to give them to other users, put them in a shipment file and run it (${followUp(args, 'run', '<shipment.csv>')})` : 'nothing was left to unassign';
  const lines: string[] = [];
  if (consequences && consequences.users > 0) lines.push(`${dryRun ? 'would take a device from' : 'users who lost a device:'} ${consequences.users} user${consequences.users === 1 ? '' : 's'}`);
  if (consequences?.leftWithNone?.length) lines.push(`LEFT WITH NO MFA DEVICE (--allow-last-device): ${consequences.leftWithNone.slice(0, 10).join(', ')}${consequences.leftWithNone.length > 10 ? ', …' : ''}`);
  await ctx.finish(summary, humanSummary({ title: `oath-bulk unassign ${path}`, dryRun, durationMs, tally, requests: session.stats, stopped, reports: paths, notes: lines, next }), { notes: lines });
  return exitCode;
}

async function outcomeOf(row: TokenRow, plan: UnassignPlan | undefined, refused: string | undefined, ctx: Parameters<typeof unassign>[2]): Promise<UnassignResult> {
  if (row.problem) return { outcome: 'INVALID', errorCode: row.problem.code, message: row.problem.message, attempts: 0 };
  if (row.skip) return { outcome: 'SKIPPED', message: row.skip, attempts: 0 };
  if (!plan) return { outcome: 'NOT_ATTEMPTED', message: 'the command stopped before this row: run the same command again to finish', attempts: 0 };
  if (refused && !plan.settled) return { outcome: 'NOT_ATTEMPTED', deviceId: plan.device?.id, message: refused, attempts: plan.reads };
  return unassign(row.row, plan, ctx);
}
