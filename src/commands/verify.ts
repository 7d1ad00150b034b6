/**
 * `oath-bulk verify <results.csv|input.csv>`: reads each user's devices (paced and retried
 * like run) and reports, per row, whether that serial is on that user.
 *
 * Two passes: the first lists the devices of every distinct user in the file (so that a
 * serial found on another user of the file can be named), the second writes the rows.
 * Memory grows with the users and tokens in the file, which verify needs to tell
 * ON_OTHER_USER apart from MISSING.
 */
import type { RawOptions } from '../config.js';
import { StopError } from '../errors.js';
import { withRetries } from '../engine/assign-row.js';
import { orderedPool } from '../engine/ordered-pool.js';
import { UserResolver } from '../engine/user-resolver.js';
import { finalRows, scanInput } from '../input/scan.js';
import { userKey, type CheckedRow } from '../input/validate.js';
import { ApiError } from '../pingone/errors.js';
import type { Device, InventoryEntry } from '../pingone/client.js';
import { inInventory } from '../engine/import-batch.js';
import { RENAMED_RESULT_COLUMNS, RESULT_COLUMNS } from '../input/reader.js';
import { commandLine } from '../report/command-line.js';
import { prepareOutDir } from '../report/files.js';
import { buildSummary, humanSummary, stopAdvice } from '../report/summary.js';
import { Tally } from '../report/tally.js';
import { openCommand, resolveCommandConfig } from './shared/context.js';
import type { CommandDeps } from './shared/deps.js';
import { exitCode as decideExit } from './shared/exit-code.js';

export const VERIFY_STATUSES = ['PRESENT', 'MISSING', 'ON_OTHER_USER', 'USER_NOT_FOUND', 'INVALID', 'UNKNOWN'] as const;
export type VerifyStatus = (typeof VERIFY_STATUSES)[number];

/** After the columns every results file shares: where else the serial is, and what the run said. */
const OWN_COLUMNS = ['foundOnUser', 'runOutcome'];

type Listing = { readonly devices: Device[] } | { readonly status: 'USER_NOT_FOUND' | 'UNKNOWN'; readonly message: string };

export async function verifyCommand(input: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  const config = resolveCommandConfig(raw, deps);
  const scan = await scanInput(input, deps.control.stopping, undefined, undefined, { workbook: true });
  await prepareOutDir(config.report.outDir);
  const ctx = await openCommand('verify', input, config, deps);
  const { logger, session, paths, startedAt } = ctx;
  const retry = ctx.retryContext();
  const resolver = new UserResolver();
  const outcomeColumn = scan.layout.extras.find((e) => e.name === 'input.outcome' || e.name === 'outcome');
  const outcomeIndex = outcomeColumn ? scan.layout.extras.indexOf(outcomeColumn) : -1;
  const reportedDevice = scan.layout.extras.findIndex((e) => e.name === 'input.deviceId');
  const carried = scan.layout.extras.map((e, i) => ({ name: e.name, i })).filter((e) => !RENAMED_RESULT_COLUMNS.has(e.name));
  const t0 = performance.now();
  logger.info({ event: 'verify.start', input, rows: scan.rows });

  // Pass 1: each distinct user's devices, once.
  const listings = new Map<string, Listing>();
  const userIds = new Map<string, string | { status: 'USER_NOT_FOUND' | 'UNKNOWN'; message: string }>();
  const holder = new Map<string, string>();
  const seen = new Set<string>();
  // Every row that can be checked, as judge() needs it: the MISSING ones are known once the
  // devices are read, without reading the file once more.
  const checkable: Judged[] = [];
  async function* distinctUsers(): AsyncGenerator<CheckedRow> {
    for await (const row of finalRows(scan)) {
      if (!row.user || (row.problem && row.problem.code !== 'DUPLICATE_ROW')) continue;
      checkable.push({ row: row.row, line: row.line, user: row.user, problem: row.problem, serialNumber: row.serialNumber });
      const key = userKey(row.user);
      if (seen.has(key)) continue;
      seen.add(key);
      yield row;
    }
  }
  await orderedPool(distinctUsers(), ctx.engine.concurrency, async (row) => {
    const key = userKey(row.user!);
    if (deps.control.stopped) return { row: row.row };
    try {
      const resolution = await resolver.resolve(row.user!, row.row, retry);
      if ('code' in resolution) {
        userIds.set(key, { status: resolution.code === 'USER_NOT_FOUND' ? 'USER_NOT_FOUND' : 'UNKNOWN', message: resolution.message });
        return { row: row.row };
      }
      userIds.set(key, resolution.userId);
      const devices = await withRetries(retry, row.row, () => session.client.listDevices(resolution.userId, { signal: deps.control.hard, notAfter: deps.control.stopping }));
      listings.set(resolution.userId, { devices });
      for (const d of devices) if (d.serialNumber) holder.set(d.serialNumber, resolution.userId);
    } catch (error) {
      if (error instanceof StopError) {
        deps.control.stop(error);
      } else if (error instanceof ApiError && error.verdict.kind === 'refused' && error.verdict.code === 'USER_NOT_FOUND') {
        const id = userIds.get(key);
        if (typeof id === 'string') listings.set(id, { status: 'USER_NOT_FOUND', message: error.message });
      } else {
        const id = userIds.get(key);
        const message = error instanceof Error ? error.message : String(error);
        if (typeof id === 'string') listings.set(id, { status: 'UNKNOWN', message: `could not read the user's devices: ${message}` });
        else userIds.set(key, { status: 'UNKNOWN', message });
      }
    }
    return { row: row.row };
  }, () => undefined);

  // Why a token is missing decides what to do: the inventory is read for those serials.
  const missing = new Set<string>();
  if (!deps.control.stopped) for (const row of checkable) if (judge(row, userIds, listings, holder, false).status === 'MISSING') missing.add(row.serialNumber);
  checkable.length = 0;
  let inventory: Map<string, InventoryEntry> | undefined;
  if (missing.size > 0 && !deps.control.stopped) {
    try {
      inventory = await inInventory([...missing], { ...retry, inventory: session.client });
    } catch (error) {
      // The inventory only explains the MISSING rows: a worker app that may not read it
      // (403) leaves them unexplained, and verify ends as it did before it read it.
      if (error instanceof StopError && error.code !== 'INSUFFICIENT_PERMISSIONS') deps.control.stop(error);
      else if (!(error instanceof StopError) && !(error instanceof ApiError)) throw error;
      logger.warn({ event: 'inventory.unreadable', message: error instanceof Error ? error.message : String(error) });
    }
  }
  const why = { notInInventory: 0, free: 0, elsewhere: 0 };

  // Pass 2: one line per row.
  const results = await ctx.openResults(carried.map((e) => e.name), [...RESULT_COLUMNS, ...OWN_COLUMNS], scan.layout);
  const tally = new Tally<VerifyStatus>(VERIFY_STATUSES, ['UNKNOWN']);
  ctx.recorder.extraNames = carried.map((e) => e.name);
  for await (const row of finalRows(scan)) {
    let verdict = judge(row, userIds, listings, holder, deps.control.stopped);
    if (verdict.status === 'MISSING' && inventory) {
      const entry = inventory.get(row.serialNumber);
      if (!entry) {
        why.notInInventory++;
        verdict = { ...verdict, code: 'SERIAL_NOT_FOUND', message: 'the user does not hold this token, and it is not in the OATH token inventory: import its seed first' };
      } else if (entry.device?.userId && entry.device.userId !== verdict.userId) {
        why.elsewhere++;
        verdict = { ...verdict, status: 'ON_OTHER_USER', foundOnUser: entry.device.userId, message: `the token is on user ${entry.device.userId} (a user this file does not name)` };
      } else if (!entry.device) {
        why.free++;
        verdict = { ...verdict, message: 'the user does not hold this token; it is in the inventory, free: running the shipment again assigns it' };
      }
    }
    const reported = reportedDevice >= 0 ? row.extras[reportedDevice] : undefined;
    if (verdict.status === 'PRESENT' && reported && verdict.device && reported !== verdict.device.id) {
      verdict = { ...verdict, message: `present, as device ${verdict.device.id}: not the device ${reported} the run reported (it was replaced since)` };
    }
    const userID = verdict.userId ?? (row.user?.kind === 'id' ? row.user.value : '');
    tally.add({ outcome: verdict.status, errorCode: verdict.code });
    if (verdict.status !== 'PRESENT') ctx.recorder.attention({ row: row.row, userID, serialNumber: row.serialNumber, outcome: verdict.status, errorCode: verdict.code, message: verdict.message, extras: carried.map((e) => row.extras[e.i] ?? '') });
    const runOutcome = outcomeIndex >= 0 ? row.extras[outcomeIndex] : undefined;
    logger.info({ event: 'row', row: row.row, userID, serialNumber: row.serialNumber, outcome: verdict.status, deviceId: verdict.device?.id, errorCode: verdict.code, foundOnUser: verdict.foundOnUser });
    await results.writeCells([
      row.row, userID, row.serialNumber, verdict.status, verdict.device?.id, verdict.device?.status, undefined, verdict.code, undefined, verdict.message, undefined, undefined,
      verdict.foundOnUser, runOutcome, ...carried.map((e) => row.extras[e.i]),
    ]);
  }
  await results.close();

  const stopped = deps.control.reason;
  const exitCode = decideExit(tally, { stopped: stopped !== undefined, good: ['PRESENT'] });
  const durationMs = Math.round(performance.now() - t0);
  const summary = buildSummary({ command: 'verify', runId: paths.runId, input, dryRun: false, startedAt, durationMs, tally, requests: session.stats, stopped, exitCode, reports: { ...paths, journal: null } });
  const args = deps.argv ?? ['verify', input];
  const allThere = tally.count('PRESENT') === tally.rows;
  await ctx.finish(
    summary,
    humanSummary({
      title: `oath-bulk verify ${input}`,
      dryRun: false,
      durationMs,
      tally,
      requests: session.stats,
      stopped,
      reports: paths,
      notes: [allThere ? 'every assignment is in place' : 'not every assignment is in place: see the outcome column'],
      next: stopped ? `${stopAdvice(stopped)}: ${commandLine(args)}` : verifyNext(tally, why, inventory !== undefined, args, input),
    }),
  );
  return exitCode;
}

/** What to do after a verify, by what it found and, for a MISSING token, why it is missing. */
function verifyNext(tally: Tally<VerifyStatus>, why: { notInInventory: number; free: number; elsewhere: number }, inventoryRead: boolean, args: readonly string[], input: string): string {
  const missing = tally.count('MISSING');
  if (tally.count('PRESENT') === tally.rows) return `nothing to do: every assignment is in place; to check again later: ${commandLine(args)}`;
  const steps: string[] = [];
  if (why.notInInventory > 0) steps.push(`${why.notInInventory} missing tokens are not in the OATH token inventory: import their seeds first (oath-bulk import <seed file>, or run the shipment with --seeds <seed file>)`);
  if (why.free > 0) steps.push(`${why.free} missing tokens are free in the inventory: run the shipment again to assign them (rows finished are not sent again)`);
  const unexplained = missing - why.notInInventory - why.free;
  if (unexplained > 0) steps.push(inventoryRead ? `${unexplained} missing tokens: see the message column` : `${unexplained} missing tokens (the inventory could not be read to say why): run the shipment again; a token not in the inventory needs its seed imported first`);
  if (tally.count('ON_OTHER_USER') > 0) steps.push('tokens on another user: unassign them there, or correct the shipment');
  if (tally.count('USER_NOT_FOUND') > 0) steps.push('users not found: correct the userID (or email/username) in the shipment');
  if (tally.count('UNKNOWN') > 0) steps.push(`rows not checked: verify again: ${commandLine(args)}`);
  if (tally.count('INVALID') > 0) steps.push(`invalid rows: correct them in ${input}`);
  return steps.join('; then ') + `; then verify again: ${commandLine(args)}`;
}

/** What judge() reads of a row. */
type Judged = Pick<CheckedRow, 'row' | 'line' | 'user' | 'problem' | 'serialNumber'>;

function judge(
  row: Judged,
  userIds: Map<string, string | { status: 'USER_NOT_FOUND' | 'UNKNOWN'; message: string }>,
  listings: Map<string, Listing>,
  holder: Map<string, string>,
  stopped: boolean,
): { status: VerifyStatus; code?: string; userId?: string; device?: Device; foundOnUser?: string; message?: string } {
  if (!row.user || (row.problem && row.problem.code !== 'DUPLICATE_ROW')) {
    return { status: 'INVALID', code: row.problem?.code, message: row.problem ? `row ${row.row} (line ${row.line}): ${row.problem.message}` : 'no user' };
  }
  const id = userIds.get(userKey(row.user));
  if (id === undefined) return { status: 'UNKNOWN', message: stopped ? 'not checked: the run stopped' : 'not checked' };
  if (typeof id !== 'string') return { status: id.status, code: id.status === 'USER_NOT_FOUND' ? 'USER_NOT_FOUND' : undefined, message: id.message };
  const listing = listings.get(id);
  if (!listing) return { status: 'UNKNOWN', userId: id, message: stopped ? 'not checked: the run stopped' : 'not checked' };
  if ('status' in listing) return { status: listing.status, code: listing.status === 'USER_NOT_FOUND' ? 'USER_NOT_FOUND' : undefined, userId: id, message: listing.message };
  const device = listing.devices.find((d) => d.serialNumber === row.serialNumber);
  if (device) return { status: 'PRESENT', userId: id, device };
  const other = holder.get(row.serialNumber);
  if (other && other !== id) return { status: 'ON_OTHER_USER', userId: id, foundOnUser: other, message: `the token is on user ${other}` };
  return { status: 'MISSING', userId: id, message: 'the user does not hold this token' };
}
