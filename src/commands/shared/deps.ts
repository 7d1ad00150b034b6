/** What every command is given: where output goes, the run's control, and the sources of its settings. */
import type { ConfigSources } from '../../config.js';
import type { RunControl } from '../../engine/control.js';
import type { Transport } from '../../pingone/http.js';

/** Where a command's warnings go: the caller's channel, else stderr. */
export function warnOf(deps: Pick<CommandDeps, 'warn' | 'stderr'>): (message: string) => void {
  return deps.warn ?? ((m: string) => deps.stderr.write(`oath-bulk: warning: ${m}\n`));
}

export interface CommandDeps extends ConfigSources {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly control: RunControl;
  /** Replaces the HTTP transport (unit tests only). */
  readonly transport?: Transport;
  /** The arguments the command was given, for the exact `next:` command to print. */
  readonly argv?: readonly string[];
  /** Hears of each summary a command writes (a folder run's lines, metrics). */
  readonly onSummary?: (summary: object) => void;
  /** --keep-reports: report sets kept per input name after a command writes its own. */
  readonly keepReports?: number;
  /** A file of a folder run: what cron schedules. */
  readonly scheduled?: boolean;
}

