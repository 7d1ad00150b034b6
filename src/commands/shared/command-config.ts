/** The settings every PingOne command needs, resolved and validated together (light: no client, no log). */
import { resolveAll, resolveConnection, resolveEngineOptions, resolveReportOptions, type Connection, type EngineOptions, type RawOptions, type ReportOptions } from '../../config.js';
import type { CommandDeps } from './deps.js';

export interface CommandConfig {
  readonly connection: Connection;
  readonly engine: EngineOptions;
  readonly report: ReportOptions;
}

/** Every setting a PingOne command needs, validated together before anything else. */
export function resolveCommandConfig(raw: RawOptions, deps: CommandDeps): CommandConfig {
  const [connection, engine, report] = resolveAll(
    () => resolveConnection(raw, deps),
    () => resolveEngineOptions(raw),
    () => resolveReportOptions(raw, deps),
  );
  return { connection, engine, report };
}
