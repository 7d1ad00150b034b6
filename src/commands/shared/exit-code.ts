/**
 * The one decision of a command's exit code (SPEC "Exit codes"), asked by a single shipment,
 * a folder run's finished files, import and verify alike: 3 when the run was stopped; 1 when
 * a row's outcome is not one of the command's good ones, or a row that is good still waits on
 * work the run was asked for (an activation PingOne refused, a preflight that cannot tell who
 * holds a serial); else 0.
 */

/** Error codes that keep a row with a good outcome from being done. */
const UNFINISHED = ['PAIRING_UNKNOWN'];
/** With --activate, a device left waiting for its code is work not done. */
const UNACTIVATED = 'ACTIVATION_FAILED';

export interface Counts {
  readonly rows: number;
  readonly outcomes: Readonly<Record<string, number>>;
  readonly errorCodes: Readonly<Record<string, number>>;
}

export function exitCode(counts: Counts, options: { readonly stopped?: boolean; readonly good: readonly string[]; readonly activate?: boolean }): 0 | 1 | 3 {
  if (options.stopped) return 3;
  const unfinished = UNFINISHED.reduce((n, code) => n + (counts.errorCodes[code] ?? 0), 0) + (options.activate ? (counts.errorCodes[UNACTIVATED] ?? 0) : 0);
  if (unfinished > 0) return 1;
  const good = options.good.reduce((n, o) => n + (counts.outcomes[o] ?? 0), 0);
  return good === counts.rows ? 0 : 1;
}

/** The good outcomes of `run`: a dry run's NOT_ATTEMPTED rows are the ones it would send. */
export const runGood = (dryRun: boolean): readonly string[] => (dryRun ? ['CREATED', 'EXISTING', 'NOT_ATTEMPTED'] : ['CREATED', 'EXISTING']);
