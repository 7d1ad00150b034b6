/**
 * What run, verify and rollback share: validated configuration, the PingOne session, the
 * report paths and log, and the retry context the engine works with.
 */
import type { Logger } from 'pino';
import type { Connection, EngineOptions, ReportOptions } from '../../config.js';
import type { AssignContext } from '../../engine/assign-row.js';
import { abortableSleep } from '../../engine/pacer.js';
import { NullJournal, type PairJournal } from '../../engine/journal.js';
import { StopError } from '../../errors.js';
import type { RunControl } from '../../engine/control.js';
import { reportPaths, writeFault, type ReportPaths } from '../../report/files.js';
import { openRunLog, type RunLog } from '../../report/logger.js';
import { summaryPairs, writeSummary } from '../../report/summary.js';
import { changeRecord } from '../../report/change-record.js';
import { recordedCommandLine } from '../../report/command-line.js';
import { toolVersion } from '../../report/version.js';
import { REGIONS } from '../../pingone/regions.js';
import { ResultsWriter } from '../../report/results-writer.js';
import type { InputLayout } from '../../input/reader.js';
import { renderReport, ReportRecorder, writeReport, type ReportSummary } from '../../report/html-report.js';
import { pruneReports } from './retention.js';
import { warnOf, type CommandDeps } from './deps.js';
import { openSession, type Session } from './session.js';

export interface CommandContext {
  readonly connection: Connection;
  readonly engine: EngineOptions;
  readonly report: ReportOptions;
  readonly paths: ReportPaths;
  readonly log: RunLog;
  readonly logger: Logger;
  readonly session: Session;
  readonly startedAt: Date;
  /** What the HTML report shows: the run over time, the rows that need attention. */
  readonly recorder: ReportRecorder;
  retryContext(journal?: PairJournal): AssignContext;
  /**
   * How every command ends: `<command>.end` in the log, the log closed, the summary file
   * written, the human lines on stdout (unless --quiet), and why it stopped on stderr.
   */
  finish(summary: CommandSummary, human: string, page?: { readonly notes?: readonly string[]; readonly activate?: boolean; readonly render?: (summary: CommandSummary) => string }): Promise<void>;
  /** What a report writer calls when its file cannot be written: the run stops, naming it. */
  faultHandler(path: string): (error: unknown) => void;
  /**
   * The results CSV (and the workbook beside it, completed by finish()): SPEC's columns or
   * `columns`, then `extraColumns`; `input` gives the dialect --csv-dialect input copies.
   */
  openResults(extraColumns: readonly string[], columns?: readonly string[], input?: Pick<InputLayout, 'delimiter' | 'bom' | 'encoding'>): Promise<ResultsWriter>;
}

export interface CommandSummary {
  readonly command: string;
  readonly stopped: { readonly code: string; readonly message: string } | null;
}

import type { CommandConfig } from './command-config.js';

export { resolveCommandConfig, type CommandConfig } from './command-config.js';

/** Report paths, the log and the PingOne session of one command run; --out-dir must exist. */
export async function openCommand(command: string, input: string, config: CommandConfig, deps: CommandDeps): Promise<CommandContext> {
  const { connection, engine, report } = config;
  const startedAt = new Date();
  const paths = await reportPaths(report.outDir, input, command, startedAt);
  const fault = (path: string) => (error: unknown) => deps.control.stop(writeFault(path, error));
  const log = await openRunLog(paths.log, report.logLevel, { runId: paths.runId, command }, fault(paths.log));
  const session = openSession(connection, engine, log.logger, deps.transport, deps.control.stopping, {
    // While the progress line is drawn, a warning clears it first and takes a line of its
    // own (the line is drawn again below it).
    warn: (message) => deps.stderr.write(`${report.progress ? '\r\x1b[2K' : ''}oath-bulk: warning: ${message}\n`),
    stop: (error) => deps.control.stop(error),
  });
  const recorder = new ReportRecorder(() => session.stats);
  recorder.start();
  let results: ResultsWriter | undefined;
  const backoff = { baseMs: engine.backoffBaseMs, capMs: engine.backoffMaxMs };
  return {
    connection,
    engine,
    report,
    paths,
    log,
    logger: log.logger,
    session,
    startedAt,
    recorder,
    retryContext: (journal = new NullJournal()) => ({
      api: session.client,
      journal,
      maxAttempts: engine.maxAttempts,
      timeoutMs: engine.timeoutMs,
      backoff,
      sleep: abortableSleep,
      stopping: deps.control.stopping,
      hard: deps.control.hard,
      onRetry: (e) => {
        session.stats.retries++;
        log.logger.info({ event: 'retry', ...e });
      },
      onSystemic: (error) => deps.control.stop(error),
    }),
    faultHandler: fault,
    openResults: async (extraColumns, columns, input) => {
      const dialect = report.csvDialect === 'input' && input && input.encoding !== 'xlsx' ? { delimiter: input.delimiter, bom: input.bom } : undefined;
      results = await ResultsWriter.open(paths.results, extraColumns, columns, fault(paths.results), { workbook: paths.workbook, dialect });
      return results;
    },
    finish: async (given, human, page) => {
      const next = /\n {2}next: ([^\n]*)/.exec(human)?.[1] ?? '';
      // The change record: where, by whom, with what, when, and the outcome in one sentence.
      let summary: CommandSummary = {
        ...given,
        ...changeRecord(given as unknown as Parameters<typeof changeRecord>[0], {
          environmentId: connection.environmentId,
          apiUrl: connection.apiUrl,
          // The region names the host only when the host is the region's: --api-url overrides it.
          region: connection.apiUrl === REGIONS[connection.region]?.apiUrl ? connection.region : null,
          version: toolVersion(),
          commandLine: recordedCommandLine(deps.argv ?? [given.command]),
          next,
          activate: page?.activate === true,
        }),
      };
      const warn = warnOf(deps);
      // The workbook is a view of the results: one that cannot be written is a warning, and
      // the summary and the human lines say so; the run's outcome stands.
      const workbook = results;
      results = undefined;
      if (workbook) {
        try {
          await workbook.closeWorkbook(summaryPairs(summary));
        } catch (error) {
          const problem = writeFault(paths.workbook, error).message;
          warn(`the workbook was not written: ${problem}`);
          human = human.replace(/\n {2}workbook [^\n]*/, `\n  workbook not written (${problem.split(':')[0]})`);
          summary = notWritten(summary, 'workbook');
        }
      } else summary = notWritten(summary, 'workbook');
      log.logger.info({ event: `${summary.command}.end`, ...summary });
      await log.close();
      recorder.stop();
      // The HTML report is a view of the summary and the results: one that cannot be written
      // is a warning, its line says so, and the summary names none; the run's outcome stands.
      let reportProblem: string | undefined;
      try {
        await writeReport(paths.report, page?.render ? page.render(summary) : renderReport(summary as unknown as ReportSummary, recorder, { rateCap: engine.rate, next: next || undefined, notes: page?.notes, journal: (summary as { reports?: { journal?: string | null } }).reports?.journal ?? undefined }));
      } catch (error) {
        reportProblem = writeFault(paths.report, error).message;
        warn(`the HTML report was not written: ${reportProblem}`);
        summary = notWritten(summary, 'report');
      }
      let unwritten: StopError | undefined;
      try {
        await writeSummary(paths.summary, summary);
      } catch (error) {
        unwritten = writeFault(paths.summary, error);
      }
      if (reportProblem !== undefined) human = human.replace(/\n {2}report {3}[^\n]*/, `\n  report   not written (${reportProblem.split(':')[0]})`);
      if (deps.keepReports && !unwritten) {
        const removed = await pruneReports(report.outDir, input, command, deps.keepReports, paths.runId).catch(() => []);
        if (removed.length > 0) log.logger.info({ event: 'reports.pruned', files: removed.length });
      }
      deps.onSummary?.(summary);
      // The summary is part of the truth: a run whose summary could not be written is stopped,
      // and its human summary says so rather than "finished".
      const shown = unwritten && !summary.stopped ? human.replace(/: (finished|dry run finished) in /, ': STOPPED (WRITE_FAILED) in ').replace(/\n {2}summary {2}[^\n]*/, `\n  summary  not written: ${unwritten.message}`).replace(/\n {2}next: [^\n]*/, '\n  next: free space there (or choose another --out-dir), then run the same command again') : human;
      const withNext = unwritten && !summary.stopped && !/\n {2}next: /.test(shown) ? `${shown}  next: free space there (or choose another --out-dir), then run the same command again\n` : shown;
      if (!report.quiet) deps.stdout.write(withNext);
      if (summary.stopped) deps.stderr.write(`oath-bulk: stopped (${summary.stopped.code}): ${summary.stopped.message}\n`);
      if (unwritten && summary.stopped?.code !== 'WRITE_FAILED') throw unwritten;
    },
  };
}

/** The summary naming no file of that kind (none was written). */
function notWritten<S extends CommandSummary>(summary: S, kind: 'workbook' | 'report'): S {
  const reports = (summary as { reports?: Record<string, string | null> }).reports;
  return reports?.[kind] ? { ...summary, reports: { ...reports, [kind]: null } } : summary;
}

/** Gets the first access token: refused credentials stop the command (exit 3) with nothing sent. */
export async function proveCredentials(session: Session, control: RunControl): Promise<void> {
  try {
    await session.tokens.token();
  } catch (error) {
    if (!(error instanceof StopError)) throw error;
    control.stop(error);
  }
}

/** Closes a command's journal: a write fault has stopped the command already; anything else is returned as its failure. */
export async function closeJournal(journal: { close(options?: { stopped?: boolean }): Promise<void> } | undefined, control: RunControl): Promise<unknown> {
  try {
    await journal?.close({ stopped: control.stopped });
    return undefined;
  } catch (error) {
    if (!(error instanceof StopError)) return error;
    control.stop(error);
    return undefined;
  }
}
