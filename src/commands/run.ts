/**
 * `oath-bulk run <input.csv>`: validate the whole file, take the journal's lock, prove the
 * credentials, then assign every row and write the results, log and summary.
 */
import { join } from 'node:path';
import type { ConfigSources, RawOptions } from '../config.js';
import { StopError, UsageError } from '../errors.js';
import { runBatch } from '../engine/batch.js';
import type { RunControl } from '../engine/control.js';
import { NullJournal, openLockedJournal, readOnlyJournal, type PairJournal } from '../engine/journal.js';
import { checkUnchanged, finalRows, scanInput } from '../input/scan.js';
import type { Transport } from '../pingone/http.js';
import { prepareOutDir, stem } from '../report/files.js';
import type { RowResult } from '../report/outcome.js';
import { ProgressLine } from '../report/progress.js';
import { ResultsWriter } from '../report/results-writer.js';
import { commandLine } from '../report/command-line.js';
import { buildSummary, humanSummary, stopAdvice, type StopInfo } from '../report/summary.js';
import { Tally } from '../report/tally.js';
import { closeJournal, openCommand, proveCredentials, resolveCommandConfig } from './context.js';

export interface CommandDeps extends ConfigSources {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly control: RunControl;
  /** Replaces the HTTP transport (unit tests only). */
  readonly transport?: Transport;
  /** The arguments the command was given, for the exact `next:` command to print. */
  readonly argv?: readonly string[];
}

export async function runCommand(input: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  const dryRun = raw['dry-run'] === true;
  const config = resolveCommandConfig(raw, deps);
  const { connection, engine, report } = config;
  let scan;
  try {
    scan = await scanInput(input, deps.control.stopping);
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
  await prepareOutDir(report.outDir);
  // Journals that earlier releases named by folding odd characters are not guessed at (two
  // inputs could share one): --journal points at them (README).
  const journalPath = typeof raw['journal'] === 'string' ? raw['journal'] : join(report.outDir, `${stem(input)}.journal.jsonl`);
  const keepJournal = raw['journal'] !== false && !dryRun;

  // Taken before any report is created: a run refused the lock leaves nothing behind.
  const locked = keepJournal ? await openLockedJournal(journalPath, connection.environmentId) : undefined;
  // A dry run reads (never writes) the journal the real run would use; none with --no-journal.
  const journal: PairJournal = locked?.journal ?? (dryRun && raw['journal'] !== false ? await readOnlyJournal(journalPath, connection.environmentId) : new NullJournal());

  const t0 = performance.now();
  const ctx = await openCommand('run', input, config, deps);
  const { paths, log, logger, session, startedAt } = ctx;
  const results = await ResultsWriter.open(paths.results, scan.layout.extras.map((e) => e.name), undefined, ctx.faultHandler(paths.results));
  const { control } = deps;
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
    await (locked ?? journal).close().catch(() => undefined);
    await log.close();
    throw new UsageError(control.reason.message);
  }

  const progress = report.progress ? new ProgressLine(deps.stderr, { tally, total: scan.rows, rate: () => session.pacer.currentRate, retries: () => session.stats.retries }) : undefined;
  progress?.start();
  const heartbeat = setInterval(() => logger.info({ event: 'progress', done: tally.done, total: scan.rows, outcomes: tally.outcomes, requests: session.stats.total }), 30_000);
  heartbeat.unref();

  let activationRequired = 0;
  const emit = async (result: RowResult): Promise<void> => {
    tally.add(result);
    if (result.outcome === 'CREATED' && result.deviceStatus === 'ACTIVATION_REQUIRED') activationRequired++;
    const { extras, finishedEarlier, ...fields } = result;
    void extras;
    void finishedEarlier;
    const level = result.outcome === 'CREATED' || result.outcome === 'EXISTING' ? 'info' : 'warn';
    logger[level]({ event: 'row', ...fields });
    // The log cannot push back on pino: rows wait here when it falls behind the disk.
    if (log.backlog > 4 << 20) await log.flush();
    await results.write(result);
  };

  let failure: unknown;
  try {
    await proveCredentials(session, control);
    if (!control.stopped) await checkUnchanged(scan);
    const changed = (): void => control.stop(new StopError('INPUT_CHANGED', `${input} changed during the run (edited, or replaced): nothing read after the change was sent; run again once the file is final`));
    await runBatch(finalRows(scan, changed), ctx.retryContext(journal), control, { concurrency: engine.concurrency, maxConsecutiveFailures: engine.maxConsecutiveFailures, dryRun }, { emit });
  } catch (error) {
    failure = error;
  } finally {
    clearInterval(heartbeat);
    progress?.stop();
    control.dispose();
    await results.close();
    failure ??= await closeJournal(locked ?? journal, control);
  }
  if (failure) {
    logger.error({ event: 'run.error', err: failure });
    await log.close();
    throw failure;
  }

  const stopped = control.reason;
  // A dry run's NOT_ATTEMPTED rows are the ones it would send.
  const exitCode = stopped ? 3 : tally.exitCode(dryRun ? ['CREATED', 'EXISTING', 'NOT_ATTEMPTED'] : ['CREATED', 'EXISTING']);
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
    activationRequired,
    stopped,
    exitCode,
    reports: { ...paths, journal: raw['journal'] === false ? null : journalPath },
  });
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
      notes: activationRequired > 0 ? [`${activationRequired} devices are ACTIVATION_REQUIRED: those users are asked for a code from their token at their first sign-in (deviceStatus in the results)`] : [],
      next: nextStep(tally, dryRun, stopped, args),
    }),
  );
  return exitCode;
}

/** The next step, matching why the run ended, with the exact command to run. */
export function nextStep(tally: Tally, dryRun: boolean, stopped: StopInfo | undefined, args: readonly string[]): string | undefined {
  const again = commandLine(args);
  if (stopped) return `${stopAdvice(stopped)}: ${again}`;
  const o = tally.outcomes;
  if (dryRun) {
    if (o.FAILED + o.INVALID + o.UNCONFIRMED === 0) return o.NOT_ATTEMPTED > 0 ? `run it for real: ${commandLine(args, ['--dry-run'])}` : undefined;
    return `correct what the problems above name (the rows are in the results), then check again: ${again}`;
  }
  if (o.FAILED + o.INVALID > 0) return `fix what the problems above say (in the input or in PingOne), then run again (finished rows are not sent again): ${again}`;
  if (o.UNCONFIRMED + o.NOT_ATTEMPTED > 0) return `run again to finish (finished rows are not sent again): ${again}`;
  return undefined;
}
