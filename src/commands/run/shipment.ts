/**
 * `oath-bulk run <input.csv>`: validate the whole file, take the journal's lock, prove the
 * credentials, then assign every row and write the results, log and summary.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Ledger, LedgerCheck, LedgerNotes, newLedgerNotice } from '../../engine/ledger.js';
import type { RawOptions } from '../../config.js';
import { StopError, UsageError } from '../../errors.js';
import { runBatch } from '../../engine/batch.js';
import type { RunControl } from '../../engine/control.js';
import { NullJournal, openLockedJournal, readOnlyJournal, type PairJournal } from '../../engine/journal.js';
import { checkUnchanged, finalRows, scanInput } from '../../input/scan.js';
import { prepareOutDir, stem } from '../../report/files.js';
import type { RowResult } from '../../report/outcome.js';
import { ProgressLine } from '../../report/progress.js';
import { ResultsWriter } from '../../report/results-writer.js';
import { commandLine, followUp } from '../../report/command-line.js';
import { buildSummary, humanSummary, stopAdvice, type StopInfo } from '../../report/summary.js';
import { countsLine, Tally } from '../../report/tally.js';
import type { Logger } from 'pino';
import { activation } from '../../engine/activation.js';
import { SeedGate } from '../../engine/seed-gate.js';
import { ShipmentSeeds } from '../../engine/shipment-seeds.js';
import { IMPORT_OUTCOMES, IMPORT_POLLING, importTokens, inInventory, type ImportOutcome, type ImportResult } from '../../engine/import-batch.js';
import { pairingUnknown, Preflight } from '../../engine/preflight.js';
import type { AssignContext } from '../../engine/assign-row.js';
import type { InventoryEntry } from '../../pingone/client.js';
import { ApiError } from '../../pingone/errors.js';
import { readSeeds, seedOptions } from '../shared/seed-input.js';
import type { Scan } from '../../input/scan.js';
import type { SeedsSummary } from '../../report/summary.js';
import { IMPORT_COLUMNS, shippedFacts, writeImportResults } from '../shared/import-results.js';
import { warnOf, type CommandDeps } from '../shared/deps.js';
import { exitCode as decideExit, runGood } from '../shared/exit-code.js';
import { SEED_FLAGS } from '../shared/flags.js';
import { closeJournal, openCommand, proveCredentials, resolveCommandConfig, type CommandConfig, type CommandContext } from '../shared/context.js';

/** One shipment file: what `run <file>` does, and what a folder run does for each of its files. */
/** `ledger`: the folder run's, read up to date just before (a file of a folder reads it no second time). */
export async function runShipment(input: string, raw: RawOptions, deps: CommandDeps, scanned?: Scan, ledgerRead?: Ledger): Promise<number> {
  const dryRun = raw['dry-run'] === true;
  const activate = raw['activate'] === true;
  const preflightOn = dryRun && raw['preflight'] !== false;
  if (raw['preflight'] !== undefined && !dryRun) throw new UsageError(`--${raw['preflight'] === false ? 'no-' : ''}preflight: goes with --dry-run (a real run checks each row as it goes)`);
  const seedsFlag = typeof raw['seeds'] === 'string' && raw['seeds'].trim() !== '' ? raw['seeds'] : undefined;
  if (raw['seeds'] !== undefined && seedsFlag === undefined) throw new UsageError('--seeds: give the seed file (PSKC .xml or a seed CSV)');
  const { defaults, jobSize } = seedOptions(raw);
  const config = resolveCommandConfig(raw, deps);
  let scan;
  try {
    // A folder run has checked the file already (the same scan: the second pass still compares
    // every chunk with it, so a change since stops the run before its rows are sent).
    scan = scanned ?? (await scanInput(input, deps.control.stopping, 20, true));
  } catch (error) {
    // A signal while the file is still being checked: nothing was attempted (exit 2).
    if (deps.control.stopped && error === deps.control.stopping.reason) throw new UsageError(`stopped by a signal while ${input} was being checked: nothing was sent`);
    throw error;
  }
  if (raw['strict'] === true && scan.invalid > 0) {
    const more = scan.invalid > 10 ? `\n  … and ${scan.invalid - 10} more: run without --strict (or with --dry-run) to see every row in the results` : '';
    throw new UsageError(
      `${input}: ${scan.invalid} of ${scan.rows} rows are invalid and --strict is set, so nothing was sent or written. First problems:\n  ${scan.firstProblems.slice(0, 10).join('\n  ')}${more}`,
    );
  }
  // The seeds: --seeds, or the file itself when it carries them (the Entra layout).
  if (seedsFlag !== undefined && scan.layout.carriesSeeds) throw new UsageError(`${input} carries its own seeds (a secret column, as in the Entra layout): run it without --seeds`);
  const seedsPath = seedsFlag ?? (scan.layout.carriesSeeds ? input : undefined);
  if (activate && seedsPath === undefined) {
    throw new UsageError("--activate: the job computes each token's code from its seed, so it needs the seeds: add --seeds <the vendor's seed file> (PSKC or seed CSV), or use an assignment file that carries them (the Entra layout)");
  }
  if (seedsPath === undefined) {
    const stray = SEED_FLAGS.find((flag) => raw[flag] !== undefined);
    if (stray) throw new UsageError(`--${stray}: goes with --seeds <seed file> (or an input that carries its seeds); this run reads no seeds`);
  }
  // The ledger: a damaged one stops the run here (exit 2), before anything is read or sent.
  const warn = warnOf(deps);
  // One the folder read is taken as it is, once its file exists (a missing one is started here).
  const ledger = ledgerRead && existsSync(ledgerRead.path) ? ledgerRead : await Ledger.open(config.stateDir, config.connection.environmentId, { create: !dryRun, notice: warn, keep: 'revocations' });
  if (ledger.started) warn(newLedgerNotice(ledger));
  // The serials of the valid rows (conflicts included): what the seeds must cover, and what a
  // preflight looks up. One more read of the file, only when they are needed.
  const serials = new Set<string>();
  if (seedsPath !== undefined || preflightOn) for await (const row of finalRows(scan)) if (!row.problem && row.user) serials.add(row.serialNumber);
  // Read, decrypted and checked whole before anything is sent; wiped when the run ends, and
  // those no row needs at once.
  const seeds = seedsPath === undefined ? undefined : new ShipmentSeeds(seedsPath, (await readSeeds(seedsPath, raw, deps, defaults)).tokens);
  seeds?.wipeExcept(seeds.needed(serials));
  try {
    return await assign(input, raw, deps, { dryRun, preflight: preflightOn, activate, jobSize, config, scan, serials, seeds, ledger });
  } finally {
    seeds?.wipe();
  }
}

interface Plan {
  readonly dryRun: boolean;
  /** A dry run that reads the inventory and the users. */
  readonly preflight: boolean;
  readonly activate: boolean;
  readonly jobSize: number;
  readonly config: CommandConfig;
  readonly scan: Scan;
  readonly serials: ReadonlySet<string>;
  readonly seeds?: ShipmentSeeds;
  /** The environment's ledger: revoked tokens are never imported or assigned; hand-outs and shipments are recorded. */
  readonly ledger: Ledger;
}

async function assign(input: string, raw: RawOptions, deps: CommandDeps, plan: Plan): Promise<number> {
  const { dryRun, activate, config, scan } = plan;
  const { connection, engine, report } = config;
  await prepareOutDir(report.outDir);
  const { journalPath, keepJournal, locked, journal } = await openRunJournal(input, raw, plan, deps.warn);

  const t0 = performance.now();
  const ctx = await openCommand('run', input, config, deps);
  const { paths, log, logger, session, startedAt } = ctx;
  const extraNames = scan.layout.extras.map((e) => e.name);
  const results = await ctx.openResults(extraNames, undefined, scan.layout);
  ctx.recorder.extraNames = extraNames;
  const { control } = deps;
  // Every row counted as it finishes, before it waits its turn in the results' input order:
  // the progress line and the progress events count what is done, and, once every row has
  // been written, the summary counts the same rows as the results CSV.
  const tally = new Tally();

  logger.info({
    event: 'run.start',
    input,
    dryRun,
    rows: scan.rows,
    invalidRows: scan.invalid,
    journal: keepJournal ? journalPath : null,
    tookOverLockFrom: locked?.tookOver ?? null,
    journalRead: locked?.journal.report ?? null,
    settings: {
      environmentId: connection.environmentId,
      clientId: connection.clientId,
      region: connection.region,
      apiUrl: connection.apiUrl,
      authUrl: connection.authUrl,
      tokenAuth: connection.tokenAuth,
      ...engine,
      encoding: scan.layout.encoding,
      delimiter: scan.layout.delimiter,
    },
  });

  // The log and the reports must be writable before anything is sent: else exit 2, nothing attempted.
  await Promise.all([log.flush(), results.flush()]);
  if (control.reason?.code === 'WRITE_FAILED') {
    await results.close();
    await results.abandonWorkbook();
    await (locked ?? journal).close().catch(() => undefined);
    await log.close();
    throw new UsageError(control.reason.message);
  }

  const progress = report.progress ? new ProgressLine(deps.stderr, { tally, total: scan.rows, rate: () => session.pacer.currentRate, retries: () => session.stats.retries }) : undefined;
  progress?.start();
  const heartbeat = setInterval(() => logger.info({ event: 'progress', done: tally.done, total: scan.rows, outcomes: tally.outcomes, requests: session.stats.total }), 30_000);
  heartbeat.unref();

  let activationHalted: string | undefined;
  const warn = deps.warn ?? ((m: string) => deps.stderr.write(`${report.progress ? '\r\x1b[2K' : ''}oath-bulk: warning: ${m}\n`));
  const notes = new LedgerNotes(plan.ledger, warn);
  const by = `run ${paths.runId}`;
  const emit = async (result: RowResult): Promise<void> => {
    const done = result.outcome === 'CREATED' || result.outcome === 'EXISTING';
    if (!(done || (dryRun && result.outcome === 'NOT_ATTEMPTED')) || result.errorCode) ctx.recorder.attention(result);
    // The log carries the results' columns, without what the results file adds or keeps inside.
    const { extras: _extras, finishedEarlier: _earlier, activationRefused: _refused, activation: _activation, ...fields } = result;
    logger[done ? 'info' : 'warn']({ event: 'row', ...fields });
    // The log cannot push back on pino: rows wait here when it falls behind the disk.
    if (log.backlog > 4 << 20) await log.flush();
    await results.write(result);
    // The ledger: who holds the token now, said by the run that found it so (a rerun adds nothing).
    if (done && !dryRun && !result.finishedEarlier && !result.revokedSince) {
      notes.note({ e: 'handed-out', sn: result.serialNumber, user: result.userID, by, file: basename(input), device: result.deviceId });
    }
  };

  let failure: unknown;
  let seedsSummary: SeedsSummary | null = null;
  try {
    seedsSummary = await sendRows(input, plan, deps, ctx, journal, emit, notes, {
      restart: () => progress?.restart(),
      finished: (result) => tally.add(result),
      halted: (why) => {
        activationHalted = why;
      },
    });
  } catch (error) {
    failure = error;
  } finally {
    clearInterval(heartbeat);
    progress?.stop();
    control.dispose();
    await results.close();
    await notes.flush();
    failure ??= await closeJournal(locked ?? journal, control);
  }
  if (failure) {
    await results.abandonWorkbook();
    logger.error({ event: 'run.error', err: failure });
    await log.close();
    throw failure;
  }

  const stopped = control.reason;
  const exitCode = decideExit(tally, { stopped: stopped !== undefined, good: runGood(dryRun), activate });
  const durationMs = Math.round(performance.now() - t0);
  const summary = buildSummary({
    command: 'run',
    runId: paths.runId,
    input,
    dryRun,
    startedAt,
    durationMs,
    tally,
    requests: session.stats,
    seeds: seedsSummary,
    ledger: { path: plan.ledger.path, tokenRevoked: tally.errorCodes['TOKEN_REVOKED'] ?? 0, revokedSince: tally.revokedSince },
    stopped,
    exitCode,
    reports: { ...paths, journal: raw['journal'] === false ? null : journalPath },
  });
  const lines = runNotes(seedsSummary, activationHalted, tally, activate);
  lines.push(ledgerLine(plan.ledger, tally));
  const args = deps.argv ?? ['run', input, ...(dryRun ? ['--dry-run'] : [])];
  await ctx.finish(
    summary,
    humanSummary({
      title: `oath-bulk run ${input}`,
      dryRun,
      durationMs,
      tally,
      requests: session.stats,
      stopped,
      reports: paths,
      notes: lines,
      next: nextStep(tally, dryRun, stopped, args, paths.results, input),
    }),
    { notes: lines, activate },
  );
  return exitCode;
}

/** Where the run's facts go: its journal under its lock, a dry run's read-only, or none. */
async function openRunJournal(input: string, raw: RawOptions, plan: Plan, warn?: (message: string) => void): Promise<{ journalPath: string; keepJournal: boolean; locked?: Awaited<ReturnType<typeof openLockedJournal>>; journal: PairJournal }> {
  const { dryRun, config } = plan;
  // Journals that earlier releases named by folding odd characters are not guessed at (two
  // inputs could share one): --journal points at them (README).
  const journalPath = typeof raw['journal'] === 'string' ? raw['journal'] : join(config.report.outDir, `${stem(input)}.journal.jsonl`);
  const keepJournal = raw['journal'] !== false && !dryRun;
  // Taken before any report is created: a run refused the lock leaves nothing behind.
  const locked = keepJournal ? await openLockedJournal(journalPath, config.connection.environmentId, warn) : undefined;
  // A dry run reads (never writes) the journal the real run would use; none with --no-journal.
  const journal: PairJournal = locked?.journal ?? (dryRun && raw['journal'] !== false ? await readOnlyJournal(journalPath, config.connection.environmentId) : new NullJournal());
  return { journalPath, keepJournal, locked, journal };
}

/** What sending the rows reports back while it goes, for the summary and the progress line. */
interface SendHooks {
  /** The import took its time: the ETA is about the rows. */
  restart(): void;
  /** A row finished (before it waits for the rows before it to be written). */
  finished(result: RowResult): void;
  halted(why: string): void;
}

/**
 * Where a row's fate is decided: the credentials proved, the preflight's reads (a dry run),
 * the run's seeds imported, then every row through the batch — gated by what the import came
 * to, explained, and activated. Returns what the seeds' import came to.
 */
async function sendRows(input: string, plan: Plan, deps: CommandDeps, ctx: CommandContext, journal: PairJournal, emit: (result: RowResult) => Promise<void>, notes: LedgerNotes, hooks: SendHooks): Promise<SeedsSummary | null> {
  const { dryRun, activate, scan, seeds } = plan;
  const { engine } = plan.config;
  const { session, logger } = ctx;
  const { control } = deps;
  let seedsSummary: SeedsSummary | null = null;
  await proveCredentials(session, control);
  if (!control.stopped) await checkUnchanged(scan);
  const retry = ctx.retryContext(journal);
  // The preflight of a dry run: the inventory for every serial of the file, read once.
  let preflight: Preflight | undefined;
  let present: Map<string, InventoryEntry> | undefined;
  if (plan.preflight && !control.stopped) {
    present = await readInventory([...plan.serials], { ...retry, inventory: session.client }, control);
    if (present) preflight = new Preflight({ inventory: present, seeds, activate, users: session.client, pairingUnknown: pairingUnknown(present, journal.pairedSerials()) }, retry);
  }
  // A dry run without the preflight reads nothing of the inventory.
  let imports: readonly ImportResult[] = [];
  if (seeds && !control.stopped && (!dryRun || plan.preflight)) {
    ({ summary: seedsSummary, outcomes: imports } = await importSeeds(seeds, plan, ctx, retry, present, logger, notes));
  }
  const seedGate = seeds ? new SeedGate(seeds, imports) : undefined;
  hooks.restart();
  const changed = (): void => control.stop(new StopError('INPUT_CHANGED', `${input} changed during the run (edited, or replaced): nothing read after the change was sent; run again once the file is final`));
  const activating = activate && seeds
    ? activation(seeds, { ...retry, api: session.client }, journal, {
      dryRun,
      maxRefusedInARow: engine.maxConsecutiveFailures,
      // A folder run (cron) sends no more codes where PingOne refused an earlier run's.
      retryRefused: deps.scheduled !== true,
      onHalted: (why) => {
        hooks.halted(why);
        logger.warn({ event: 'activation.halted', message: why });
      },
    })
    : undefined;
  const ledger = new LedgerCheck(plan.ledger);
  await runBatch(finalRows(scan, changed), retry, control, { concurrency: engine.concurrency, maxConsecutiveFailures: engine.maxConsecutiveFailures, dryRun }, {
    emit,
    revoked: (serial) => ledger.revoked(serial),
    finished: hooks.finished,
    predict: preflight ? (row, plain) => preflight.predict(row, plain) : undefined,
    gate: seedGate ? (row) => seedGate.gate(row) : undefined,
    after: seedGate || activating ? async (row, result) => {
      const explained = seedGate ? seedGate.explain(result) : { result };
      // A token an earlier run imported and PingOne no longer holds: the next run imports it again.
      if (explained.staleImport !== undefined && !dryRun) journal.importCleared(explained.staleImport, row.row);
      return activating ? activating(row, explained.result) : explained.result;
    } : undefined,
  });
  return seedsSummary;
}

/** The human summary's notes: the seeds, activation. */
function runNotes(seedsSummary: SeedsSummary | null, activationHalted: string | undefined, tally: Tally, activate: boolean): string[] {
  const { activated, confirmedByRead } = tally.activation;
  const activationRequired = tally.deviceStatus['ACTIVATION_REQUIRED'] ?? 0;
  const activeBefore = (tally.deviceStatus['ACTIVE'] ?? 0) - activated;
  const notes: string[] = [];
  if (seedsSummary) {
    const counts = countsLine(seedsSummary.outcomes);
    notes.push(seedsSummary.tokens === 0
      ? `seeds: ${seedsSummary.file} holds none of this file's serials: is it the seed file of this shipment?`
      : `seeds ${seedsSummary.tokens} needed from ${seedsSummary.file}: ${counts}${seedsSummary.finishedEarlier ? ` (${seedsSummary.finishedEarlier} by an earlier run)` : ''}${seedsSummary.results ? ` (${seedsSummary.results})` : ''}`);
  }
  if (activationHalted) notes.push(activationHalted.replace(/^activation stopped/, 'ACTIVATION STOPPED'));
  if (activated > 0) {
    notes.push(`${activated} devices activated with codes computed from their seeds (${confirmedByRead > 0 ? `${confirmedByRead} confirmed by reading the device back after an unclear answer` : 'deviceStatus ACTIVE'})${activate && activeBefore > 0 ? `; ${activeBefore} more were ACTIVE already (an earlier run, or the user at sign-in)` : ''}`);
  }
  if (activationRequired > 0) {
    notes.push(activate
      ? `${activationRequired} devices are still ACTIVATION_REQUIRED (see errorCode and message): those users are asked for a code from their token at their first sign-in`
      : `${activationRequired} devices are ACTIVATION_REQUIRED: those users are asked for a code from their token at their first sign-in (deviceStatus in the results; with the seeds at hand, --activate activates them)`);
  }
  return notes;
}

/** Where the ledger is (the one this run read: a cron job with another one would not see a revoke), and what it decided. */
function ledgerLine(ledger: Ledger, tally: Tally): string {
  const revoked = tally.errorCodes['TOKEN_REVOKED'] ?? 0;
  const decided = [revoked ? `${revoked} rows refused: token revoked` : '', tally.revokedSince ? `${tally.revokedSince} rows revoked since they were finished` : ''].filter(Boolean).join('; ');
  return `ledger ${ledger.path}${ledger.started ? ' (new: it knows of no revoked token)' : ''}${decided ? `: ${decided}` : ''}`;
}

/** The next step, matching why the run ended, with the exact command to run. */
export function nextStep(tally: Tally, dryRun: boolean, stopped: StopInfo | undefined, args: readonly string[], results?: string, input?: string): string | undefined {
  const again = commandLine(args);
  if (stopped) return `${stopAdvice(stopped)}: ${again}`;
  const o = tally.outcomes;
  if (dryRun) {
    if (o.FAILED + o.INVALID + o.UNCONFIRMED === 0) {
      return o.NOT_ATTEMPTED > 0
        ? `run it for real: ${commandLine(args, ['--dry-run', '--preflight', '--no-preflight'])}`
        : `nothing to do: every row is in place already (a real run would send nothing); to check PingOne: ${followUp(args, 'verify', input ?? '<input.csv>')}`;
    }
    return `correct what the problems above name (the rows are in the results), then check again: ${again}`;
  }
  if ((tally.errorCodes['ACTIVATION_FAILED'] ?? 0) > 0 && o.FAILED + o.INVALID === 0) return `see why the devices were not activated (message column); run again to retry the activation (finished rows are not sent again): ${again}`;
  if (o.FAILED + o.INVALID > 0) return `fix what the problems above say (in the input or in PingOne), then run again (finished rows are not sent again): ${again}`;
  if (o.UNCONFIRMED + o.NOT_ATTEMPTED > 0) return `run again to finish (finished rows are not sent again): ${again}`;
  return results ? `check what PingOne holds now, for the change record: ${followUp(args, 'verify', results)}` : undefined;
}

/** The inventory for `serials` (a preflight); a read that fails stops the run (exit 3). */
async function readInventory(serials: string[], ctx: Parameters<typeof inInventory>[1] & Pick<AssignContext, 'onSystemic'>, control: RunControl): Promise<Map<string, InventoryEntry> | undefined> {
  try {
    return await inInventory(serials, ctx);
  } catch (error) {
    if (control.stopped) return undefined;
    if (error instanceof StopError) control.stop(error);
    else if (error instanceof ApiError) control.stop(new StopError('INVENTORY_UNREADABLE', `the OATH token inventory could not be read (${error.message}): nothing was checked; run the dry run again later`));
    else throw error;
    return undefined;
  }
}

/**
 * `run` with seeds: imports the tokens the file names that the inventory lacks (and only
 * those) through the same code as `import`, journaled in the run's journal; their outcomes go
 * to `<name>.<runId>.seeds.csv`, the log and the summary. A dry run reads, imports nothing.
 */
async function importSeeds(seeds: ShipmentSeeds, plan: Plan, ctx: CommandContext, retry: AssignContext, present: Map<string, InventoryEntry> | undefined, logger: Logger, notes: LedgerNotes): Promise<{ summary: SeedsSummary; outcomes: readonly ImportResult[] }> {
  const needed = seeds.needed(plan.serials);
  const path = ctx.paths.results.replace(/\.results\.csv$/, '.seeds.csv');
  const tally = new Tally<ImportOutcome>(IMPORT_OUTCOMES, ['NOT_ATTEMPTED']);
  logger.info({ event: 'seeds.start', seeds: seeds.path, tokens: seeds.tokens.length, needed: needed.length, jobSize: plan.jobSize });
  for (const t of needed) for (const w of t.warnings) logger.warn({ event: 'token.warning', row: t.index, serialNumber: t.serialNumber, message: w });
  const results = await ResultsWriter.open(path, [], IMPORT_COLUMNS, ctx.faultHandler(path));
  let outcomes: ImportResult[];
  // The ledger, right before the import: a revoked token is never imported again.
  await plan.ledger.refresh();
  try {
    outcomes = await importTokens(needed, {
      revoked: (serial) => plan.ledger.revoked(serial),
      ...retry,
      inventory: ctx.session.client,
      jobSize: plan.jobSize,
      dryRun: plan.dryRun,
      checkInventory: true,
      present,
      // Activation needs the seeds after the import; otherwise each is wiped once settled.
      keepSecrets: plan.activate,
      ...IMPORT_POLLING,
      jobsInFlight: ctx.engine.concurrency,
    });
    await writeImportResults(outcomes, results, logger, tally, undefined, plan.dryRun);
    if (!plan.dryRun) for (const fact of shippedFacts(outcomes, seeds.path, `run ${ctx.paths.runId}`)) notes.note(fact);
  } finally {
    await results.close();
  }
  logger.info({ event: 'seeds.end', outcomes: tally.outcomes, errorCodes: tally.errorCodes });
  return { summary: { file: seeds.path, tokens: needed.length, outcomes: { ...tally.outcomes }, errorCodes: { ...tally.errorCodes }, finishedEarlier: tally.finishedEarlier, importedNow: tally.countNow('IMPORTED'), results: path }, outcomes };
}
