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
import { finalRows, scanInput } from '../input/scan.js';
import type { Transport } from '../pingone/http.js';
import { prepareOutDir, stem } from '../report/files.js';
import type { RowResult } from '../report/outcome.js';
import { ProgressLine } from '../report/progress.js';
import { ResultsWriter } from '../report/results-writer.js';
import { humanSummary } from '../report/summary.js';
import { Tally } from '../report/tally.js';
import { openCommand, resolveCommandConfig } from './context.js';

export interface CommandDeps extends ConfigSources {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly control: RunControl;
  /** Replaces the HTTP transport (unit tests only). */
  readonly transport?: Transport;
}

export async function runCommand(input: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  const dryRun = raw['dry-run'] === true;
  const config = resolveCommandConfig(raw, deps);
  const { connection, engine, report } = config;
  const scan = await scanInput(input);
  if (raw['strict'] === true && scan.invalid > 0) {
    throw new UsageError(
      `${input}: ${scan.invalid} of ${scan.rows} rows are invalid and --strict is set, so nothing was sent or written. First problems:\n  ${scan.firstProblems.slice(0, 10).join('\n  ')}`,
    );
  }
  await prepareOutDir(report.outDir);
  const journalPath = typeof raw['journal'] === 'string' ? raw['journal'] : join(report.outDir, `${stem(input)}.journal.jsonl`);
  const keepJournal = raw['journal'] !== false && !dryRun;

  // Taken before any report is created: a run refused the lock leaves nothing behind.
  const locked = keepJournal ? await openLockedJournal(journalPath, connection.environmentId) : undefined;
  const journal: PairJournal = locked?.journal ?? (dryRun ? await readOnlyJournal(journalPath, connection.environmentId) : new NullJournal());

  const t0 = performance.now();
  const ctx = await openCommand('run', input, config, deps);
  const { paths, log, logger, session, startedAt } = ctx;
  const results = await ResultsWriter.open(paths.results, scan.layout.extras.map((e) => e.name));
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

  const progress = report.progress ? new ProgressLine(deps.stderr, { tally, total: scan.rows, rate: () => session.pacer.currentRate, retries: () => session.stats.retries }) : undefined;
  progress?.start();
  const heartbeat = setInterval(() => logger.info({ event: 'progress', done: tally.done, total: scan.rows, outcomes: tally.outcomes, requests: session.stats.total }), 30_000);
  heartbeat.unref();

  const emit = async (result: RowResult): Promise<void> => {
    tally.add(result);
    if (result.attempts === 0 && result.outcome !== 'INVALID' && result.outcome !== 'NOT_ATTEMPTED') tally.fromJournal++;
    const { extras, ...fields } = result;
    void extras;
    const level = result.outcome === 'CREATED' || result.outcome === 'EXISTING' ? 'info' : 'warn';
    logger[level]({ event: 'row', ...fields });
    await results.write(result);
  };

  let failure: unknown;
  try {
    try {
      await session.tokens.token();
    } catch (error) {
      if (!(error instanceof StopError)) throw error;
      control.stop(error);
    }
    await runBatch(finalRows(scan), ctx.retryContext(journal), control, { concurrency: engine.concurrency, maxConsecutiveFailures: engine.maxConsecutiveFailures, dryRun }, { emit });
  } catch (error) {
    failure = error;
  } finally {
    clearInterval(heartbeat);
    progress?.stop();
    control.dispose();
    await results.close();
    await (locked ?? journal).close().catch((error: unknown) => {
      failure ??= error;
    });
  }
  if (failure) {
    logger.error({ event: 'run.error', err: failure });
    await log.close();
    throw failure;
  }

  const stopped = control.reason;
  const exitCode = stopped ? 3 : dryRun ? (tally.outcomes.INVALID > 0 ? 1 : 0) : tally.exitCode();
  const durationMs = Math.round(performance.now() - t0);
  const summary = {
    command: 'run',
    runId: paths.runId,
    input,
    dryRun,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    durationMs,
    rows: tally.rows,
    outcomes: tally.outcomes,
    errorCodes: tally.errorCodes,
    finishedEarlier: tally.fromJournal,
    requests: session.stats,
    rowsPerSecond: durationMs > 0 ? Math.round((tally.done / durationMs) * 100_000) / 100 : null,
    stopped: stopped ? { code: stopped.code, message: stopped.message } : null,
    exitCode,
    reports: { results: paths.results, log: paths.log, summary: paths.summary, journal: keepJournal ? journalPath : null },
  };
  await ctx.finish(summary, humanSummary({ ...summary, tally, command: `oath-bulk run ${input}` }));
  return exitCode;
}

