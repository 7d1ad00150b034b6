/**
 * `oath-bulk import <seeds>`: a vendor's seed file (PSKC, or a seed CSV) into PingOne's OATH
 * token inventory, with the same operating standard as `run`: checked whole before anything
 * is sent, a journal and its lock, results/log/summary, exit codes 0/1/2/3, a dry run that
 * reads which serials the inventory already holds. Seeds, keys and passphrases never reach
 * any output (SEEDS.md "Handling seeds safely").
 */
import { join } from 'node:path';
import { Ledger, LedgerNotes, newLedgerNotice } from '../engine/ledger.js';
import type { RawOptions } from '../config.js';
import { IMPORT_OUTCOMES, IMPORT_POLLING, importTokens, type ImportOutcome } from '../engine/import-batch.js';
import { NullJournal, openLockedJournal, readOnlyJournal, type PairJournal } from '../engine/journal.js';
import { commandLine, followUp } from '../report/command-line.js';
import { prepareOutDir, stem } from '../report/files.js';
import { buildSummary, humanSummary, stopAdvice } from '../report/summary.js';
import { Tally } from '../report/tally.js';
import { readSeeds, seedOptions } from './shared/seed-input.js';
import { IMPORT_COLUMNS, shippedFacts, writeImportResults } from './shared/import-results.js';
import { closeJournal, openCommand, proveCredentials, resolveCommandConfig } from './shared/context.js';
import { warnOf, type CommandDeps } from './shared/deps.js';
import { exitCode as decideExit } from './shared/exit-code.js';

export async function importCommand(seedsPath: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  const dryRun = raw['dry-run'] === true;
  const { defaults, jobSize } = seedOptions(raw);
  const config = resolveCommandConfig(raw, deps);
  const { connection, engine, report } = config;

  // The ledger: a damaged one stops the import here (exit 2), before the file is decrypted.
  const warn = warnOf(deps);
  const ledger = await Ledger.open(config.stateDir, connection.environmentId, { create: !dryRun, notice: warn, keep: 'revocations' });
  if (ledger.started) warn(newLedgerNotice(ledger));
  // Read, decrypt and check the whole file before anything is sent.
  const { tokens } = await readSeeds(seedsPath, raw, deps, defaults);

  await prepareOutDir(report.outDir);
  const journalPath = typeof raw['journal'] === 'string' ? raw['journal'] : join(report.outDir, `${stem(seedsPath)}.import.journal.jsonl`);
  const keepJournal = raw['journal'] !== false && !dryRun;
  const locked = keepJournal ? await openLockedJournal(journalPath, connection.environmentId, deps.warn) : undefined;
  const journal: PairJournal = locked?.journal ?? (dryRun && raw['journal'] !== false ? await readOnlyJournal(journalPath, connection.environmentId) : new NullJournal());

  const ctx = await openCommand('import', seedsPath, config, deps);
  const { paths, logger, session, startedAt } = ctx;
  const t0 = performance.now();
  const tally = new Tally<ImportOutcome>(IMPORT_OUTCOMES, ['NOT_ATTEMPTED']);
  logger.info({ event: 'import.start', input: seedsPath, dryRun, tokens: tokens.length, invalid: tokens.filter((t) => t.problem).length, jobSize, journal: keepJournal ? journalPath : null });
  for (const t of tokens) for (const w of t.warnings) logger.warn({ event: 'token.warning', row: t.index, serialNumber: t.serialNumber, message: w });

  const results = await ctx.openResults([], IMPORT_COLUMNS);
  const notes = new LedgerNotes(ledger, warn);
  let failure: unknown;
  try {
    await proveCredentials(session, deps.control);
    const retry = ctx.retryContext(journal);
    let settled = 0;
    const line = (): string => `import: ${settled}/${tokens.length} tokens settled · ${session.pacer.currentRate.toFixed(1)} req/s · jobs ${session.stats.job} · retries ${session.stats.retries}`;
    const heartbeat = setInterval(() => logger.info({ event: 'progress', done: settled, total: tokens.length, requests: session.stats.total }), 30_000);
    const drawing = report.progress ? setInterval(() => deps.stderr.write(`\r\x1b[2K${line()}`), 250) : undefined;
    heartbeat.unref();
    drawing?.unref();
    // The ledger, right before the import: a revoked token is never imported again.
    await ledger.refresh();
    const outcomes = await importTokens(tokens, {
      ...retry,
      revoked: (serial) => ledger.revoked(serial),
      inventory: session.client,
      jobSize,
      dryRun,
      ...IMPORT_POLLING,
      // As many jobs in flight as requests may be: polls then fill the pace.
      jobsInFlight: engine.concurrency,
      onSettled: () => settled++,
    }).finally(() => {
      clearInterval(heartbeat);
      if (drawing) {
        clearInterval(drawing);
        deps.stderr.write(`\r\x1b[2K${line()}\n`);
      }
    });
    ctx.recorder.extraNames = ['manufacturer', 'model'];
    await writeImportResults(outcomes, results, logger, tally, ctx.recorder, dryRun);
    if (!dryRun) for (const fact of shippedFacts(outcomes, seedsPath, `import ${paths.runId}`)) notes.note(fact);
  } catch (error) {
    failure = error;
  } finally {
    for (const t of tokens) t.secret?.wipe();
    await results.close();
    await notes.flush();
    failure ??= await closeJournal(locked ?? journal, deps.control);
  }
  if (failure) {
    await ctx.log.close();
    throw failure;
  }

  const stopped = deps.control.reason;
  const good: ImportOutcome[] = dryRun ? ['IMPORTED', 'ALREADY_PRESENT', 'NOT_ATTEMPTED'] : ['IMPORTED', 'ALREADY_PRESENT'];
  const exitCode = decideExit(tally, { stopped: stopped !== undefined, good });
  const durationMs = Math.round(performance.now() - t0);
  const summary = buildSummary({ command: 'import', runId: paths.runId, input: seedsPath, dryRun, startedAt, durationMs, tally, requests: session.stats, ledger: { path: ledger.path, tokenRevoked: tally.errorCodes['TOKEN_REVOKED'] ?? 0 }, stopped, exitCode, reports: { ...paths, journal: raw['journal'] === false ? null : journalPath } });
  const args = deps.argv ?? ['import', seedsPath, ...(dryRun ? ['--dry-run'] : [])];
  let next: string | undefined;
  if (stopped) next = `${stopAdvice(stopped)}: ${commandLine(args)}`;
  else if (dryRun) next = exitCode === 0 ? `import it for real: ${commandLine(args, ['--dry-run'])}` : `correct what the problems above name, then check again: ${commandLine(args)}`;
  else if (exitCode !== 0) next = `see the rows that are not IMPORTED in the results; run again to retry what failed (imported tokens are not sent again): ${commandLine(args)}`;
  else next = `assign the tokens: ${followUp(args, 'run', '<assignments.csv>')}; then delete the plaintext seed file`;
  const revoked = tally.errorCodes['TOKEN_REVOKED'] ?? 0;
  const lines = [`ledger ${ledger.path}${ledger.started ? ' (new: it knows of no revoked token)' : ''}${revoked ? `: ${revoked} tokens refused: revoked` : ''}`];
  await ctx.finish(summary, humanSummary({ title: `oath-bulk import ${seedsPath}`, dryRun, durationMs, tally, requests: session.stats, stopped, reports: paths, notes: lines, next }), { notes: lines });
  return exitCode;
}
