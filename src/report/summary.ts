/**
 * The summary JSON beside the results, and the short human summary on stdout: one shape for
 * run, verify and rollback, so that scripts read any of them the same way.
 */
import { resolve } from 'node:path';
import { writePrivateWhole } from './files.js';
import { ADVICE, type Tally } from './tally.js';

export interface StopInfo {
  readonly code: string;
  readonly message: string;
}

export interface ReportSet {
  readonly results: string;
  readonly log: string;
  readonly summary: string;
  /** The HTML report. */
  readonly report: string;
  /** The results as an .xlsx workbook (null: not written). */
  readonly workbook: string | null;
  /** The journal the command read or wrote (absolute), or null when it kept none. */
  readonly journal: string | null;
}

/** The summary JSON: the same keys for every command. */
export interface CommandSummary {
  readonly command: 'run' | 'verify' | 'rollback' | 'import' | 'revoke' | 'unassign' | 'replace' | 'resync' | 'inventory';
  readonly runId: string;
  readonly input: string;
  readonly dryRun: boolean;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly rows: number;
  readonly outcomes: Record<string, number>;
  readonly errorCodes: Record<string, number>;
  readonly finishedEarlier: number;
  /** Devices the rows hold (created, or the user held them) that PingOne left ACTIVATION_REQUIRED: their users are asked for a code at first sign-in. */
  readonly activationRequired: number;
  /** Rows whose device this run brought to ACTIVE with a code computed from the token's seed (--activate). */
  readonly activated: number;
  /** Of `activated`, those confirmed by reading the device back after an unclear answer. */
  readonly activation: { readonly activated: number; readonly confirmedByRead: number };
  /** The rows' devices (CREATED and EXISTING rows) by deviceStatus, as the results CSV has them. */
  readonly deviceStatus: Record<string, number>;
  /** `run` with seeds: the seed file and what importing the tokens the run needed came to; else null. */
  readonly seeds: SeedsSummary | null;
  /** The ledger the command read and wrote, and what it decided; null for commands that do not use it. */
  readonly ledger: { readonly path: string; readonly [fact: string]: unknown } | null;
  /** What this run itself did, apart from what earlier runs had finished (`outcomes` counts both). */
  readonly thisRun: ThisRun;
  readonly requests: object;
  readonly rowsPerSecond: number | null;
  readonly stopped: StopInfo | null;
  readonly exitCode: number;
  readonly reports: ReportSet;
}

/** What one run itself did: devices created, tokens imported, devices activated. */
export interface ThisRun {
  readonly created: number;
  readonly imported: number;
  readonly activated: number;
}

export const thisRunLine = (t: ThisRun): string => `this run: created ${t.created}, imported ${t.imported}, activated ${t.activated}`;

export interface SeedsSummary {
  readonly file: string;
  readonly tokens: number;
  readonly outcomes: Record<string, number>;
  readonly errorCodes: Record<string, number>;
  /** Tokens an earlier run of this journal had imported already. */
  readonly finishedEarlier: number;
  /** Tokens this run imported. */
  readonly importedNow: number;
  readonly results: string | null;
}

export function buildSummary(fields: {
  command: CommandSummary['command'];
  runId: string;
  input: string;
  dryRun: boolean;
  startedAt: Date;
  durationMs: number;
  tally: Tally<string>;
  requests: object;
  seeds?: SeedsSummary | null;
  /** The ledger the command read and wrote (commands that import, assign or revoke), and what it decided. */
  ledger?: { path: string; [fact: string]: unknown } | null;
  stopped: StopInfo | undefined | null;
  exitCode: number;
  reports: Omit<ReportSet, 'journal' | 'workbook'> & { journal?: string | null; workbook?: string | null };
}): CommandSummary {
  const { tally, durationMs } = fields;
  return {
    command: fields.command,
    runId: fields.runId,
    input: resolve(fields.input),
    dryRun: fields.dryRun,
    startedAt: fields.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    durationMs,
    rows: tally.rows,
    outcomes: { ...tally.outcomes },
    errorCodes: { ...tally.errorCodes },
    finishedEarlier: tally.finishedEarlier,
    activationRequired: tally.deviceStatus['ACTIVATION_REQUIRED'] ?? 0,
    activated: tally.activation.activated,
    activation: { ...tally.activation },
    deviceStatus: { ...tally.deviceStatus },
    seeds: fields.seeds ? { ...fields.seeds, file: resolve(fields.seeds.file), results: fields.seeds.results ? resolve(fields.seeds.results) : null } : null,
    thisRun: {
      created: fields.dryRun ? 0 : tally.countNow('CREATED'),
      imported: fields.dryRun ? 0 : fields.command === 'import' ? tally.countNow('IMPORTED') : (fields.seeds?.importedNow ?? 0),
      activated: tally.activation.activated,
    },
    ledger: fields.ledger ?? null,
    requests: fields.requests,
    rowsPerSecond: durationMs > 0 ? Math.round((tally.done / durationMs) * 100_000) / 100 : null,
    stopped: fields.stopped ? { code: fields.stopped.code, message: fields.stopped.message } : null,
    exitCode: fields.exitCode,
    reports: {
      results: resolve(fields.reports.results),
      log: resolve(fields.reports.log),
      summary: resolve(fields.reports.summary),
      report: resolve(fields.reports.report),
      workbook: fields.reports.workbook ? resolve(fields.reports.workbook) : null,
      journal: fields.reports.journal ? resolve(fields.reports.journal) : null,
    },
  };
}

/**
 * The summary as (field, value) pairs, for the workbook's summary sheet: nested keys joined
 * with dots (`outcomes.CREATED`), lists joined; the report paths left out (the workbook is one).
 */
export function summaryPairs(summary: object, extra: ReadonlyArray<readonly [string, string]> = []): Array<[string, string | number]> {
  const pairs: Array<[string, string | number]> = [];
  const walk = (value: unknown, key: string): void => {
    if (value === null || value === undefined) pairs.push([key, '']);
    else if (typeof value === 'number') pairs.push([key, value]);
    else if (Array.isArray(value)) pairs.push([key, value.map(String).join('; ')]);
    else if (typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, key ? `${key}.${k}` : k);
    else pairs.push([key, String(value)]);
  };
  for (const [k, v] of Object.entries(summary)) if (k !== 'reports') walk(v, k);
  return [...pairs, ...extra.map(([k, v]): [string, string] => [k, v])];
}

/** Written whole or not at all: a temporary file, synced, then renamed into place. */
export async function writeSummary(path: string, summary: object): Promise<void> {
  await writePrivateWhole(path, JSON.stringify(summary, null, 2) + '\n', true);
}

/** How many problem codes the human summary lists before "and N more". */
const PROBLEMS_SHOWN = 15;

export interface HumanSummaryInput {
  /** What was run, for the first line: `oath-bulk run shipment.csv`. */
  readonly title: string;
  readonly dryRun: boolean;
  readonly durationMs: number;
  readonly tally: Tally<string>;
  readonly requests: { total: number; retries: number; rateLimited: number };
  readonly stopped: StopInfo | null | undefined;
  readonly reports: { results: string; log: string; summary: string; report?: string; workbook?: string | null };
  /** Lines particular to the command, after the counts. */
  readonly notes?: readonly string[];
  /** What to do next, or nothing when nothing is left to do. */
  readonly next?: string;
  /** When it ended (default: now). */
  readonly at?: Date;
}

export function humanSummary(s: HumanSummaryInput): string {
  const lines: string[] = [];
  const seconds = (s.durationMs / 1000).toFixed(1);
  const state = s.stopped ? `STOPPED (${s.stopped.code})` : s.dryRun ? 'dry run finished' : 'finished';
  // The time first: in a log that cron appends to, each run's lines are found and dated.
  lines.push(`${(s.at ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z')} ${s.title}: ${state} in ${seconds}s`);
  lines.push(`  rows ${s.tally.rows}: ${s.tally.line()}${s.tally.finishedEarlier ? ` (${s.tally.finishedEarlier} finished by an earlier run)` : ''}`);
  lines.push(`  requests ${s.requests.total} · retries ${s.requests.retries} · rate-limited ${s.requests.rateLimited}`);
  const problems = s.tally.problems();
  if (problems.length > 0) {
    lines.push('  problems:');
    for (const [code, count] of problems.slice(0, PROBLEMS_SHOWN)) lines.push(`    ${code} ×${count}${ADVICE[code] ? ` — ${ADVICE[code]}` : ''}`);
    if (problems.length > PROBLEMS_SHOWN) lines.push(`    and ${problems.length - PROBLEMS_SHOWN} more codes: see errorCodes in ${s.reports.summary}`);
  }
  for (const note of s.notes ?? []) lines.push(`  ${note}`);
  if (s.stopped) lines.push(`  why it stopped: ${s.stopped.message}`);
  lines.push(reportLines(s.reports));
  if (s.next) lines.push(`  next: ${s.next}`);
  return lines.join('\n') + '\n';
}

/** Where a command's reports are, as the last lines of its human summary. */
export function reportLines(reports: { results: string; log: string; summary: string; report?: string; workbook?: string | null }): string {
  return `  results  ${reports.results}${reports.workbook ? `\n  workbook ${reports.workbook}` : ''}\n  log      ${reports.log}\n  summary  ${reports.summary}${reports.report ? `\n  report   ${reports.report}` : ''}`;
}

/** What to do about a stop, by its code: the fix, before running again. */
export function stopAdvice(stop: StopInfo): string {
  switch (stop.code) {
    case 'INTERRUPTED':
      return 'run the same command again to finish';
    case 'ENVIRONMENT_NOT_FOUND':
      return 'check --environment-id and --region (or --api-url and --auth-url), then run again';
    case 'CREDENTIALS_REFUSED':
      return 'check the client id and secret (and --token-auth), then run again';
    case 'CONFIGURATION_SUSPECTED':
      return 'check the settings the message names, then run again';
    case 'CONNECTION_LOST':
      return 'once PingOne can be reached again (the network, a proxy, status.pingidentity.com), run again to finish';
    default:
      return `${ADVICE[stop.code] ?? 'fix the cause above'}; then run again`;
  }
}
