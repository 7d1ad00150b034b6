/** The settings every PingOne command needs, resolved and validated together (light: no client, no log). */
import { environmentFrom, resolveAll, resolveConnection, resolveEngineOptions, resolveReportOptions, type ConfigSources, type Connection, type EngineOptions, type RawOptions, type ReportOptions } from '../../config.js';
import { stateDirectory } from '../../engine/ledger.js';
import type { CommandDeps } from './deps.js';

export interface CommandConfig {
  readonly connection: Connection;
  readonly engine: EngineOptions;
  readonly report: ReportOptions;
  /** Where the environment's ledger lives (--state-dir, OATH_BULK_STATE_DIR, $XDG_STATE_HOME/oath-bulk). */
  readonly stateDir: string;
}

/** Every setting a PingOne command needs, validated together before anything else. */
export function resolveCommandConfig(raw: RawOptions, deps: CommandDeps): CommandConfig {
  const [connection, engine, report] = resolveAll(
    () => resolveConnection(raw, deps),
    () => resolveEngineOptions(raw),
    () => resolveReportOptions(raw, deps),
  );
  return { connection, engine, report, stateDir: resolveStateDir(raw, deps) };
}

/** The state directory: the flag, else OATH_BULK_STATE_DIR from the settings file or the environment, else the XDG default. */
export function resolveStateDir(raw: RawOptions, sources: ConfigSources): string {
  const flag = raw['state-dir'];
  return stateDirectory(typeof flag === 'string' ? flag : undefined, environmentFrom(raw, sources));
}
