/**
 * `oath-bulk inventory`: every OATH token of the environment, where it is, to whom, and what is
 * wrong with it (SPEC "inventory"). Reads — never changes — PingOne; joins the ledger and the
 * journals (engine/inventory.ts); writes `<env>.inventory.<runId>.csv` and `.xlsx`, the HTML
 * report, the summary, and with --state one state's rows as a file `revoke` and `unassign` take.
 *
 * A rerun after a stop reads the inventory again from its first page (cursors expire), and
 * reuses the user reads the stopped reading completed (kept beside the reports for an hour, then
 * read again): a stop in the middle of 100,000 tokens costs the pages again, not the users.
 */
import { createReadStream, existsSync } from 'node:fs';
import { appendFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { RawOptions } from '../config.js';
import { UsageError } from '../errors.js';
import { ACT_STATES, INVENTORY_COLUMNS, INVENTORY_EXTRA_COLUMNS, LISTED_STATES, readInventory, WATCH_STATES, TOKEN_STATES, type Holder, type InventoryRow, type TokenState } from '../engine/inventory.js';
import { devicesInJournals } from '../engine/journal.js';
import { Ledger, LedgerDamagedError, ledgerPath } from '../engine/ledger.js';
import { prepareOutDir } from '../report/files.js';
import { commandLine, followUp } from '../report/command-line.js';
import { renderInventoryReport, UrgentList, type ListedToken, type StockGroup } from '../report/inventory-report.js';
import { ResultsWriter } from '../report/results-writer.js';
import { buildSummary, humanSummary, stopAdvice } from '../report/summary.js';
import { Tally } from '../report/tally.js';
import { openCommand, proveCredentials, resolveCommandConfig } from './shared/context.js';
import { warnOf, type CommandDeps } from './shared/deps.js';

/** How long the user reads of a stopped reading are reused by the next one. */
export const REUSE_USERS_MS = 60 * 60 * 1000;

function expiringDays(raw: RawOptions): number {
  const given = raw['expiring-within'];
  if (given === undefined) return 90;
  const text = String(given).trim();
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n > 3650) throw new UsageError(`--expiring-within: a whole number of days from 0 to 3650 (got ${JSON.stringify(String(given))})`);
  return n;
}

function statesOf(raw: RawOptions): TokenState[] {
  const given = raw['state'];
  if (given === undefined) return [];
  const names = String(given).split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  const bad = names.filter((n) => !(TOKEN_STATES as readonly string[]).includes(n));
  if (names.length === 0 || bad.length > 0) throw new UsageError(`--state: one or more of ${TOKEN_STATES.map((s) => s.toLowerCase()).join('|')}, comma-separated (got ${JSON.stringify(String(given))})`);
  return [...new Set(names)] as TokenState[];
}

/** The user reads a stopped reading completed, and the users its complete directory listing did not name, younger than REUSE_USERS_MS. */
async function reusedUsers(path: string, now: number): Promise<{ users: Map<string, Holder>; unlisted: Set<string> }> {
  const users = new Map<string, Holder>();
  const unlisted = new Set<string>();
  if (!existsSync(path)) return { users, unlisted };
  for await (const line of createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity })) {
    try {
      const r = JSON.parse(line) as { id?: unknown; at?: unknown; exists?: unknown; enabled?: unknown; username?: unknown; unlisted?: unknown };
      if (typeof r.id !== 'string' || typeof r.at !== 'number' || now - r.at > REUSE_USERS_MS || now < r.at) continue;
      if (r.unlisted === true) unlisted.add(r.id);
      else users.set(r.id, r.exists === true ? { exists: true, enabled: typeof r.enabled === 'boolean' ? r.enabled : undefined, username: typeof r.username === 'string' ? r.username : undefined } : { exists: false });
    } catch {
      // a torn line: that user is read again
    }
  }
  return { users, unlisted };
}

/**
 * What each problem state asks for, in words and as the commands to run. `written`: the --state
 * file of this reading, when it holds that state (its path is pasted as it is); otherwise the
 * reading to run first, whose own `next:` line names the file it writes.
 */
function adviceFor(args: readonly string[], written: (state: TokenState) => string | undefined): Record<string, string> {
  const steps = (state: TokenState, command: 'revoke' | 'unassign', flags: readonly string[]): string => {
    const file = written(state);
    if (file) return followUp(args, command, file, flags);
    return `${followUp(args, 'inventory', '', ['--state', state.toLowerCase()]).replace(/ '' /, ' ')}\nthen: oath-bulk ${command} <the …${state.toLowerCase()}.csv it writes> ${flags.join(' ')} (its next: line has the whole command)`;
  };
  return {
    ORPHANED: `On a user who no longer exists: the hardware left with them. Revoke them (they can never sign anyone in again):\n${steps('ORPHANED', 'revoke', ['--reason', 'lost', '--dry-run'])}\nBack in the drawer? PingOne keeps them paired to the vanished user, whose devices cannot be reached, so unassign cannot free them: revoke them with --reason retired, then reinstate them and import them again from the box's seed file.`,
    UNACCOUNTED: `Handed out and never returned, now free in PingOne (the device or the user was deleted outside oath-bulk): the hardware is still out there. If it did not come back, revoke them:\n${steps('UNACCOUNTED', 'revoke', ['--reason', 'lost', '--dry-run'])}\nThose back in the drawer: unassign records their return against the last holder (userID), even one deleted since, and they count as FREE again (put those rows in a file of their own):\n${steps('UNACCOUNTED', 'unassign', ['--dry-run'])}`,
    REVOKED_PRESENT: `The ledger says revoked, yet PingOne still holds them (a revoke that did not finish, or an import outside oath-bulk): revoke them again.\n${steps('REVOKED_PRESENT', 'revoke', ['--reason', 'retired', '--dry-run'])}`,
    EXPIRED: 'Past the validity the vendor gives: do not hand out a free one; replace an assigned one (oath-bulk replace).',
    UNKNOWN: 'A read failed after its retries (or the reading stopped first): nothing is claimed about them. Run inventory again.',
    ACTIVATION_PENDING: 'Waiting for their first code: remind the users, or activate them with codes (oath-bulk run --activate with the seeds).',
    EXPIRING: 'Their vendor validity ends soon: order replacements.',
    HOLDER_DISABLED: 'Their users are disabled (on leave, or leaving): informational. Reclaim only once the user is gone for good.',
  };
}

function countInto(groups: Map<string, { total: number; states: Record<string, number> }>, key: string, state: string): void {
  const g = groups.get(key) ?? { total: 0, states: {} };
  g.total++;
  g.states[state] = (g.states[state] ?? 0) + 1;
  groups.set(key, g);
}

export async function inventoryCommand(raw: RawOptions, deps: CommandDeps): Promise<number> {
  const days = expiringDays(raw);
  const wanted = statesOf(raw);
  const readDevices = raw['device-status'] === true;
  const config = resolveCommandConfig(raw, deps);
  const { connection } = config;
  const env = connection.environmentId;
  const warn = warnOf(deps);
  // Read only: a missing ledger is not created, and the reading says what it cannot tell.
  const ledgerFile = ledgerPath(config.stateDir, env);
  const ledgerThere = existsSync(ledgerFile);
  // A damaged ledger stops what imports or assigns; this reading goes on without it, says so, and exits 1.
  let ledger: Ledger | undefined;
  let ledgerDamaged: string | undefined;
  try {
    ledger = await Ledger.open(config.stateDir, env, { create: false, keep: 'all' });
  } catch (error) {
    if (!(error instanceof LedgerDamagedError)) throw error;
    ledgerDamaged = error.message;
    warn(`${error.message}; this inventory goes on without it: UNACCOUNTED, REVOKED_PRESENT and the shipments cannot be told`);
  }
  await prepareOutDir(config.report.outDir);
  const { journals, devices: journal } = await devicesInJournals(config.report.outDir, env, warn);
  const ctx = await openCommand('inventory', env, config, deps);
  const { paths, logger, session, startedAt } = ctx;
  const control = deps.control;
  const args = deps.argv ?? ['inventory'];
  const prefix = paths.results.replace(/\.csv$/, '');
  const stateFile = (state: string): string => `${prefix}.${state.toLowerCase()}.csv`;
  const columns = [...INVENTORY_COLUMNS, ...INVENTORY_EXTRA_COLUMNS];
  const results = await ctx.openResults([], columns);
  const selected = wanted.length > 0 ? await ResultsWriter.open(stateFile(wanted.join('_')), [], columns, ctx.faultHandler(stateFile(wanted.join('_')))) : undefined;
  const usersPath = join(config.report.outDir, `${env}.inventory.users.jsonl`);
  const now = Date.now();
  const { users: reused, unlisted } = await reusedUsers(usersPath, now);
  const tally = new Tally<TokenState>(TOKEN_STATES, []);
  const byModel = new Map<string, { total: number; states: Record<string, number> }>();
  const byShipment = new Map<string, { total: number; states: Record<string, number> }>();
  const problems = new UrgentList(LISTED_STATES);
  const expiring = new UrgentList(['EXPIRED', 'ORPHANED', 'UNACCOUNTED', 'EXPIRING', 'ASSIGNED', 'ACTIVATION_PENDING', 'HOLDER_DISABLED', 'FREE']);
  let selectedRows = 0;
  const expiringMs = days * 86_400_000;
  const t0 = performance.now();
  logger.info({ event: 'inventory.start', environmentId: env, ledger: ledgerThere ? ledgerFile : null, journals: journals.length, deviceStatus: readDevices, expiringWithinDays: days, reusedUsers: reused.size });
  const userLines: string[] = [];
  /** A user read (or a user a complete directory did not name), kept for a rerun in batches. */
  const remember = (record: object): void => {
    userLines.push(JSON.stringify({ ...record, at: Date.now() }) + '\n');
    if (userLines.length >= 500) void flushUsers();
  };
  const flushUsers = async (): Promise<void> => {
    if (userLines.length === 0) return;
    const text = userLines.splice(0).join('');
    await appendFile(usersPath, text, { mode: 0o600 }).catch(() => undefined);
  };
  let reading: Awaited<ReturnType<typeof readInventory>> | undefined;
  let failure: unknown;
  try {
    await proveCredentials(session, control);
    if (!control.stopped) {
      const retry = ctx.retryContext();
      reading = await readInventory({
        ...retry,
        api: session.client,
        concurrency: ctx.engine.concurrency,
        life: (serial) => ledger?.life(serial),
        journal,
        readDevices,
        reused,
        unlisted,
        onUnlisted: (id) => remember({ id, unlisted: true }),
        now,
        expiringMs,
        onUser: (id, holder) => remember({ id, ...holder }),
        onPage: (tokens, count) => logger.debug({ event: 'inventory.page', tokens, count }),
        emit: async (row: InventoryRow) => {
          tally.add({ outcome: row.state, errorCode: row.problem });
          // The row's fields are named as the columns.
          const cells = columns.map((c) => row[c]);
          await results.writeCells(cells);
          if (selected && wanted.includes(row.state)) {
            selectedRows++;
            await selected.writeCells(cells);
          }
          countInto(byModel, row.manufacturer || row.model ? `${row.manufacturer ?? '?'} / ${row.model ?? '?'}` : 'not known', row.state);
          if (row.shipment) countInto(byShipment, row.shipment, row.state);
          else countInto(byShipment, 'not known (imported outside oath-bulk, or before its ledger)', row.state);
          const listed: ListedToken = { serialNumber: row.serialNumber, state: row.state, problem: row.problem, userID: row.userID, username: row.username, validUntil: row.validUntil, message: row.message };
          if (LISTED_STATES.includes(row.state)) problems.add(listed);
          if (row.validUntil && Date.parse(row.validUntil) - now <= expiringMs) expiring.add(listed);
        },
      });
      if (reading.stopped) control.stop(reading.stopped);
    }
  } catch (error) {
    failure = error;
  } finally {
    await flushUsers();
    for (const writer of [results, selected]) {
      try {
        await writer?.close();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure) {
      await results.abandonWorkbook();
      await ctx.log.close();
    }
  }
  if (failure) throw failure;

  const complete = reading?.complete === true && !control.stopped;
  // A complete reading needs no reuse: the next one reads its users afresh.
  if (complete) await unlink(usersPath).catch(() => undefined);
  // A signal's stop says what it means here: no rows wait, the reading is incomplete.
  const stopped = control.reason?.code === 'INTERRUPTED' ? { code: 'INTERRUPTED', message: `${control.reason.message.split(':')[0]}: the reading is incomplete (the tokens read are in the results, those not joined UNKNOWN); run inventory again: it reads from the first page` } : control.reason;
  const unknown = tally.count('UNKNOWN');
  const exitCode = stopped ? 3 : unknown > 0 || ledgerDamaged ? 1 : 0;
  const durationMs = Math.round(performance.now() - t0);
  const counts = Object.fromEntries(TOKEN_STATES.map((s) => [s, tally.count(s)])) as Record<TokenState, number>;
  const summary = buildSummary({ command: 'inventory', runId: paths.runId, input: env, dryRun: false, startedAt, durationMs, tally, requests: session.stats, ledger: ledgerThere ? { path: ledgerFile, ...(ledgerDamaged ? { damaged: ledgerDamaged } : {}) } : null, stopped, exitCode, reports: { ...paths, journal: null } });
  const stock = (m: Map<string, StockGroup>): Record<string, StockGroup> => Object.fromEntries([...m].sort((a, b) => b[1].total - a[1].total));
  Object.assign(summary, {
    input: env,
    // Without the ledger it should have, UNACCOUNTED and REVOKED_PRESENT tokens would count as FREE: no counts for the metrics.
    tokens: complete && !ledgerDamaged ? counts : null,
    tokensRead: counts,
    reading: reading ? { complete, pages: reading.pages, inventoryCount: reading.count ?? null, users: reading.users, devices: reading.devices } : { complete: false },
    expiringWithinDays: days,
    deviceStatus: readDevices ? 'read' : 'journals',
    journals,
    ledgerMissing: ledgerThere ? null : ledgerFile,
    stateFile: selected ? { states: wanted, path: stateFile(wanted.join('_')), rows: selectedRows } : null,
    stock: { byModel: stock(byModel), byShipment: stock(byShipment) },
  });
  const notes: string[] = [];
  if (ledgerDamaged) notes.push(`LEDGER DAMAGED (${ledgerDamaged.split(': the ledger is damaged')[0]}): read without it, so UNACCOUNTED, REVOKED_PRESENT and the shipments cannot be told; repair it, then run inventory again`);
  if (!ledgerThere) notes.push(`NO LEDGER at ${ledgerFile}: which tokens were handed out, returned or revoked is not known here, so UNACCOUNTED and REVOKED_PRESENT cannot be told, and shipments are not known (--state-dir, or OATH_BULK_STATE_DIR in the settings file, names where the ledger is)`);
  if (reading) {
    const u = reading.users;
    notes.push(`read ${reading.tokens} token${reading.tokens === 1 ? '' : 's'} in ${reading.pages} page${reading.pages === 1 ? '' : 's'}${complete ? '' : ' (INCOMPLETE: the reading stopped; run inventory again)'}; users ${u.distinct}: ${u.directoryPages} directory page${u.directoryPages === 1 ? '' : 's'} + ${u.reads} read${u.reads === 1 ? '' : 's'}${u.reused ? `, ${u.reused} reused from the stopped reading` : ''}`);
    if (complete && reading.count !== undefined && reading.count !== reading.tokens) notes.push(`PingOne's first page counted ${reading.count} tokens, ${reading.tokens} were read: tokens imported or revoked during the reading? Run inventory again for a still picture`);
    const d = reading.devices;
    if (d.unknown > 0) notes.push(`device status not known for ${d.unknown} paired token${d.unknown === 1 ? '' : 's'} (no journal here has them${readDevices ? '' : '; --device-status reads them: one request per user'})`);
    if (d.reads > 0) notes.push(`device status read for ${d.reads} user${d.reads === 1 ? '' : 's'}${d.failed ? ` (${d.failed} failed)` : ''}`);
  }
  if (selected) notes.push(`${wanted.join(', ')}: ${selectedRows} token${selectedRows === 1 ? '' : 's'} in ${stateFile(wanted.join('_'))}${complete ? '' : ' (INCOMPLETE: only the tokens read before the stop)'}`);
  let next: string;
  if (stopped) next = `${stopAdvice(stopped)}: ${commandLine(args)}`;
  else if (selected && selectedRows > 0) next = wanted.every((s) => s === 'ORPHANED' || s === 'UNACCOUNTED' || s === 'REVOKED_PRESENT') ? `see who would lose what: ${followUp(args, 'revoke', stateFile(wanted.join('_')), ['--reason', 'lost', '--dry-run'])}` : `the tokens are in ${stateFile(wanted.join('_'))}`;
  else if (counts.ORPHANED + counts.UNACCOUNTED + counts.REVOKED_PRESENT > 0) next = `tokens to reclaim: list them with ${followUp(args, 'inventory', '', ['--state', (['ORPHANED', 'UNACCOUNTED', 'REVOKED_PRESENT'] as const).filter((k) => counts[k] > 0).join(',').toLowerCase()]).replace(/ '' /, ' ')} (the report says what to do with each)`;
  else next = `nothing to reclaim; ${counts.FREE} token${counts.FREE === 1 ? '' : 's'} free`;
  const human = humanSummary({ title: `oath-bulk inventory of environment ${env}`, dryRun: false, durationMs, tally, requests: session.stats, stopped, reports: paths, notes, next }).replace(/\n {2}rows (\d+): /, '\n  tokens $1: ');
  const page = {
    states: TOKEN_STATES,
    act: ACT_STATES,
    watch: WATCH_STATES,
    counts,
    byModel,
    byShipment,
    problems: problems.shown,
    moreProblems: problems.more,
    expiring: expiring.shown,
    moreExpiring: expiring.more,
    expiringWithinDays: days,
    // Only a file of that state alone: a combined one (orphaned,assigned) would revoke healthy tokens too.
    advice: adviceFor(args, (state) => (selected && complete && wanted.length === 1 && wanted[0] === state ? stateFile(state) : undefined)),
    notes,
    next,
  };
  await ctx.finish(summary, human, { notes, render: (s) => renderInventoryReport(s as never, page) });
  return exitCode;
}


