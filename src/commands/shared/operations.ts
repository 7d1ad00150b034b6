/**
 * What a command run from cron needs around it (SPEC "Operations (cron)"): a healthcheck
 * ping at the start and with the exit code at the end (healthchecks.io's protocol, which
 * Cronitor-style and Uptime Kuma push monitors accept too), Prometheus text-format metrics
 * for node_exporter's textfile collector, written atomically, and report retention. None of
 * them can fail the run: a ping or a metrics file that cannot be written is a warning.
 */
import { createHash, randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { resolveOpsOptions, type OpsOptions, type RawOptions } from '../../config.js';
import { isLoopbackHost } from '../../pingone/regions.js';
import { exitCodeFor, UsageError } from '../../errors.js';
import { acquireLockWithin, LockHeldError, type HeldLock } from '../../engine/lock.js';
import { isFolder, prepareOutDir, stem } from '../../report/files.js';
import { resolveCommandConfig } from './command-config.js';
import { countsLine } from '../../report/tally.js';
import type { CommandDeps } from './deps.js';
import { thisRunLine, type ThisRun } from '../../report/summary.js';

/** A ping waits this long at most: a monitor that hangs must not hold the job. */
export const PING_TIMEOUT_MS = 5_000;

/** What the metrics and the end ping need of a command's summary. */
export interface RunFacts {
  readonly command: string;
  readonly input: string;
  readonly outcomes?: Record<string, number>;
  readonly errorCodes?: Record<string, number>;
  readonly requests?: { readonly total?: number; readonly rateLimited?: number; readonly retries?: number };
  readonly durationMs?: number;
  readonly exitCode: number;
  readonly finishedAt?: string;
  /** A folder run stopped before it reached this input. */
  readonly notRun?: boolean;
  /** What the run itself did (absent: nothing, e.g. a file with nothing to do). */
  readonly thisRun?: ThisRun;
  /** inventory: tokens per state, when the whole inventory was read (null: the reading stopped). */
  readonly tokens?: Readonly<Record<string, number>> | null;
}

/** What a set of runs did themselves, added up. */
export function addThisRun(runs: readonly Pick<RunFacts, 'thisRun'>[]): ThisRun {
  const sum = { created: 0, imported: 0, activated: 0 };
  for (const r of runs) {
    sum.created += r.thisRun?.created ?? 0;
    sum.imported += r.thisRun?.imported ?? 0;
    sum.activated += r.thisRun?.activated ?? 0;
  }
  return sum;
}

/** The ping URL without its path, which is a secret of sorts (anyone with it can ping). */
function shown(url: string): string {
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return 'the healthcheck URL';
  }
}

/** `<url>/<suffix>`, the suffix in the path even when the URL has a query. */
export function pingUrl(base: string, suffix: string): string {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${suffix}`;
  return url.toString();
}

/** POSTs `body` to `url`; never throws. Returns the problem, if any, for a warning. */
export async function ping(url: string, body: string, timeoutMs = PING_TIMEOUT_MS): Promise<string | undefined> {
  try {
    // Loaded for a ping only: most commands send none.
    const { default: axios } = await import('axios');
    const answer = await axios.post(url, body, {
      timeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      headers: { 'content-type': 'text/plain; charset=utf-8', 'user-agent': 'oath-bulk' },
      maxRedirects: 3,
      validateStatus: () => true,
      // HTTPS_PROXY/NO_PROXY as for PingOne; a monitor on loopback never goes through one.
      proxy: isLoopbackHost(new URL(url).hostname) ? false : undefined,
    });
    return answer.status >= 200 && answer.status < 300 ? undefined : `HTTP ${answer.status}`;
  } catch (error) {
    const e = error as { code?: string; message?: string };
    return e.code ?? e.message ?? 'failed';
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/**
 * The Prometheus text exposition format (version 0.0.4): one HELP and TYPE per metric, then
 * its samples; every metric a gauge of the last run. Labels: the command and the input's file
 * name, plus the outcome or error code.
 */
export function prometheusText(runs: readonly RunFacts[], at = new Date(), previous = ''): string {
  const metrics: Array<{ name: string; help: string; samples: Array<[Record<string, string>, number]> }> = [
    { name: 'oath_bulk_rows', help: 'Rows of the last run, per outcome.', samples: [] },
    { name: 'oath_bulk_errors', help: 'Rows of the last run, per error code.', samples: [] },
    { name: 'oath_bulk_requests', help: 'Requests the last run sent to PingOne.', samples: [] },
    { name: 'oath_bulk_rate_limited', help: 'Requests of the last run answered 429.', samples: [] },
    { name: 'oath_bulk_retries', help: 'Retries in the last run.', samples: [] },
    { name: 'oath_bulk_duration_seconds', help: 'How long the last run took.', samples: [] },
    { name: 'oath_bulk_exit_code', help: 'Exit code of the last run: 0 done, 1 rows failed, 2 nothing attempted, 3 stopped.', samples: [] },
    { name: 'oath_bulk_last_run_timestamp_seconds', help: 'When the last run ended, in Unix seconds.', samples: [] },
    { name: 'oath_bulk_run_actions', help: 'What the last run itself did, apart from what earlier runs had finished: devices created, tokens imported, devices activated.', samples: [] },
    { name: 'oath_bulk_tokens', help: 'OATH tokens of the environment per state, at the last complete inventory reading (alert on low FREE stock, on ORPHANED or UNACCOUNTED).', samples: [] },
    { name: 'oath_bulk_tokens_read_timestamp_seconds', help: 'When the last complete inventory reading ended, in Unix seconds (alert when it is old: the counts are stale).', samples: [] },
  ];
  const by = new Map(metrics.map((m) => [m.name, m.samples]));
  const carried: string[] = [];
  for (const run of runs) {
    const inventory = run.command === 'inventory';
    // An inventory reads the environment, not an input: its series carry the command alone, and
    // its tokens per state are oath_bulk_tokens (not rows, which a stopped reading would undercount).
    const base: Record<string, string> = inventory ? { command: run.command } : { command: run.command, input: basename(run.input) };
    if (!inventory) {
      for (const [outcome, n] of Object.entries(run.outcomes ?? {})) by.get('oath_bulk_rows')!.push([{ ...base, outcome }, n]);
      for (const [code, n] of Object.entries(run.errorCodes ?? {})) by.get('oath_bulk_errors')!.push([{ ...base, code }, n]);
    }
    by.get('oath_bulk_requests')!.push([base, run.requests?.total ?? 0]);
    by.get('oath_bulk_rate_limited')!.push([base, run.requests?.rateLimited ?? 0]);
    by.get('oath_bulk_retries')!.push([base, run.requests?.retries ?? 0]);
    by.get('oath_bulk_duration_seconds')!.push([base, (run.durationMs ?? 0) / 1000]);
    by.get('oath_bulk_exit_code')!.push([base, run.exitCode]);
    if (inventory) {
      // A reading that stopped counts nothing (a partial count would look like stock running
      // out): the last complete reading's counts and time stay, so that an alert on their age fires.
      if (run.tokens) {
        for (const [state, n] of Object.entries(run.tokens)) by.get('oath_bulk_tokens')!.push([{ state }, n]);
        const ended = run.finishedAt ? Date.parse(run.finishedAt) : at.getTime();
        by.get('oath_bulk_tokens_read_timestamp_seconds')!.push([{}, Math.floor((Number.isNaN(ended) ? at.getTime() : ended) / 1000)]);
      } else carried.push(...previous.split('\n').filter((l) => /^oath_bulk_tokens(\{|_read_timestamp_seconds )/.test(l)));
    } else for (const [action, n] of Object.entries(addThisRun([run]))) by.get('oath_bulk_run_actions')!.push([{ ...base, action }, n]);
    // An input a stopped folder run never reached has no last run to date.
    if (run.notRun) continue;
    const ended = run.finishedAt ? Date.parse(run.finishedAt) : at.getTime();
    by.get('oath_bulk_last_run_timestamp_seconds')!.push([base, Math.floor((Number.isNaN(ended) ? at.getTime() : ended) / 1000)]);
  }
  const lines: string[] = [];
  for (const m of metrics) {
    const kept = m.samples.length === 0 ? carried.filter((l) => l.startsWith(`${m.name}{`) || l.startsWith(`${m.name} `)) : [];
    if (m.samples.length === 0 && kept.length === 0) continue;
    lines.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} gauge`, ...kept);
    for (const [labels, value] of m.samples) {
      const text = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      lines.push(`${m.name}${text ? `{${text}}` : ''} ${Number.isFinite(value) ? value : 0}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Temp file in the same directory, then rename: the collector never reads half a file. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temp, text, { mode: 0o644 });
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}



function endLine(runs: readonly RunFacts[], code: number): string {
  const rows: Record<string, number> = {};
  for (const r of runs) for (const [o, n] of Object.entries(r.outcomes ?? {})) rows[o] = (rows[o] ?? 0) + n;
  const counts = countsLine(rows);
  return `oath-bulk: exit ${code}${runs.length ? ` · ${runs.length} input${runs.length === 1 ? '' : 's'}` : ''}${counts ? ` · ${counts}` : ''} · ${thisRunLine(addThisRun(runs))}\n`;
}

/**
 * Runs a command with the healthcheck pings around it and the metrics and retention after
 * it. `input` labels a run that ended before it wrote any summary (a usage error).
 */
export async function withOperations(command: string, input: string, raw: RawOptions, deps: CommandDeps, body: (deps: CommandDeps) => Promise<number>): Promise<number> {
  // What cron schedules is a real run of a folder: the settings file's monitoring applies to
  // that alone, so that a command typed by hand with the same settings file (a file's own
  // next:, a verify, a dry run) never pings cron's monitor nor replaces its metrics.
  const folder = command === 'run' && isFolder(input);
  const dryRun = raw['dry-run'] === true;
  const ops: OpsOptions = resolveOpsOptions(raw, deps, folder && !dryRun, folder);
  // Two runs of one folder (cron overlapping a slow morning, or a run by hand): the second
  // takes the folder's lock before anything else, or attempts nothing — no ping, no metrics.
  // A dry run writes nothing a real run would read: it takes no lock.
  const lock = folder && !dryRun ? await folderLock(input, raw, deps, ops.lockWaitS) : undefined;
  try {
    return await monitored(command, input, deps, ops, body);
  } finally {
    await lock?.release();
  }
}

/**
 * Where a folder's lock lives: named after the folder's real path (a digest of it beside its
 * name), so that `.`, a relative or an absolute path, or a link to it, are one folder, and two
 * folders of one name are two.
 */
export function folderLockPath(folder: string, outDir: string): string {
  let real: string;
  try {
    real = realpathSync(resolve(folder));
  } catch {
    real = resolve(folder);
  }
  return join(outDir, `${stem(real)}-${createHash('sha256').update(real).digest('hex').slice(0, 8)}.folder.lock`);
}

/**
 * The folder's lock, in --out-dir beside its files' journals: taken at once, or within
 * `waitS` seconds while another run of the folder finishes; a stale one (its run is gone) is
 * taken over as a journal's is.
 */
async function folderLock(folder: string, raw: RawOptions, deps: CommandDeps, waitS: number): Promise<HeldLock> {
  const { report } = resolveCommandConfig(raw, deps);
  await prepareOutDir(report.outDir);
  const path = folderLockPath(folder, report.outDir);
  try {
    return await acquireLockWithin(path, waitS * 1000);
  } catch (error) {
    if (!(error instanceof LockHeldError)) throw error;
    const { pid, host, startedAt } = error.owner;
    throw new UsageError(`another run of ${folder} holds its lock ${path} (pid ${pid ?? 'unknown'}${host ? ` on ${host}` : ''}, started ${startedAt ?? 'at an unknown time'}): it is doing this folder's work, so this run attempted nothing${waitS > 0 ? ` after waiting ${waitS} s` : ''}; --lock-wait <seconds> waits for it`);
  }
}

async function monitored(command: string, input: string, deps: CommandDeps, ops: OpsOptions, body: (deps: CommandDeps) => Promise<number>): Promise<number> {
  const warn = (message: string): void => {
    if (deps.warn) deps.warn(message);
    else deps.stderr.write(`oath-bulk: warning: ${message}\n`);
  };
  if (ops.healthcheckUrl) {
    const problem = await ping(pingUrl(ops.healthcheckUrl, 'start'), `oath-bulk ${command} ${basename(input)}: started\n`);
    if (problem) warn(`healthcheck start ping to ${shown(ops.healthcheckUrl)} failed (${problem}); the run goes on`);
  }
  const runs: RunFacts[] = [];
  const inner: CommandDeps = {
    ...deps,
    keepReports: ops.keepReports,
    onSummary: (summary) => {
      runs.push(summary as RunFacts);
      deps.onSummary?.(summary);
    },
  };
  let code: number;
  let failure: unknown;
  try {
    code = await body(inner);
  } catch (error) {
    failure = error;
    code = exitCodeFor(error);
  }
  if (ops.metricsFile) {
    // One input: its exit code is the command's (a summary written before a later fault says less).
    const facts = runs.length === 1 ? [{ ...runs[0]!, exitCode: code }] : runs.length > 0 ? runs : [{ command, input, exitCode: code }];
    try {
      const previous = command === 'inventory' ? await readFile(ops.metricsFile, 'utf8').catch(() => '') : '';
      await writeAtomically(ops.metricsFile, prometheusText(facts, new Date(), previous));
    } catch (error) {
      warn(`cannot write the metrics file ${ops.metricsFile} (${(error as NodeJS.ErrnoException).code ?? 'error'}); the run's outcome is unaffected`);
    }
  }
  if (ops.healthcheckUrl) {
    const problem = await ping(pingUrl(ops.healthcheckUrl, String(code)), endLine(runs, code));
    if (problem) warn(`healthcheck ping to ${shown(ops.healthcheckUrl)} failed (${problem}); the run's outcome is unaffected`);
  }
  if (failure !== undefined) throw failure;
  return code;
}
