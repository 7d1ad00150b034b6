/**
 * What verify and rollback share with run: configuration, the PingOne session, the report
 * files, the retry context, and a results writer with its own columns.
 */
import type { Logger } from 'pino';
import {
  resolveAll, resolveConnection, resolveEngineOptions, resolveReportOptions,
  type Connection, type EngineOptions, type RawOptions, type ReportOptions,
} from '../config.js';
import type { AssignContext } from '../engine/assign-row.js';
import { abortableSleep } from '../engine/pacer.js';
import { NullJournal, type PairJournal } from '../engine/journal.js';
import { prepareOutDir, reportPaths, type ReportPaths } from '../report/files.js';
import { openRunLog, type RunLog } from '../report/logger.js';
import type { CommandDeps } from './run.js';
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
  retryContext(journal?: PairJournal): AssignContext;
}

export async function openCommand(command: string, input: string, raw: RawOptions, deps: CommandDeps): Promise<CommandContext> {
  const [connection, engine, report] = resolveAll(
    () => resolveConnection(raw, deps),
    () => resolveEngineOptions(raw),
    () => resolveReportOptions(raw, deps),
  );
  await prepareOutDir(report.outDir);
  const startedAt = new Date();
  const paths = await reportPaths(report.outDir, input, command, startedAt);
  const log = await openRunLog(paths.log, report.logLevel, { runId: paths.runId, command });
  const session = openSession(connection, engine, log.logger, deps.transport);
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
    retryContext: (journal = new NullJournal()) => ({
      api: session.client,
      journal,
      maxAttempts: engine.maxAttempts,
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
  };
}
