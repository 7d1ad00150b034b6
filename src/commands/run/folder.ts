/**
 * `oath-bulk run <folder>` (SPEC "Operations (cron)"): every `*.csv` directly in the folder,
 * in name order, each run exactly as if alone — its own journal, lock and reports — with a
 * seed file beside it picked up by name. A file whose rows are all final in its journal costs
 * nothing: no request (not even for a token) and no new report set; it says "nothing to do".
 * One line per file, then a total; the exit code is the worst of the files'. The folder is
 * listed once: files dropped in while it runs are taken next time.
 */
import { existsSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import type { RawOptions } from '../../config.js';
import { exitCodeFor, UsageError } from '../../errors.js';
import { earlierEntry } from '../../engine/earlier.js';
import { isFinal } from '../../engine/journal-state.js';
import { readOnlyJournal } from '../../engine/journal.js';
import { Ledger } from '../../engine/ledger.js';
import { finalRows, scanInput, type Scan } from '../../input/scan.js';
import { stem } from '../../report/files.js';
import { countsLine } from '../../report/tally.js';
import { resolveCommandConfig } from '../shared/command-config.js';
import type { CommandDeps } from '../shared/deps.js';
import { exitCode as decideExit, runGood } from '../shared/exit-code.js';
import { addThisRun } from '../shared/operations.js';
import { thisRunLine, type ThisRun } from '../../report/summary.js';
import { SEED_FLAGS, SWITCHES } from '../shared/flags.js';

/** Seed files found beside `<name>.csv`, in this order of preference (README "Folder runs"). */
export const SEED_SUFFIXES = ['.pskc.xml', '.pskc', '.seeds.xml', '.seeds.csv'];

/** Reports oath-bulk writes (`<name>.<runId>.results.csv`, `.seeds.csv`, verify/rollback/import forms): never shipments, should --out-dir be the folder. */
const REPORT_NAME = /\.\d{8}T\d{6}Z(?:_\d{2})?\.(?:results|seeds)\.csv$/i;

/**
 * The assignment files of a folder: `*.csv` directly in it (a symlink to a file counts),
 * seed CSVs (`*.seeds.csv`), hidden files and oath-bulk's own reports aside, in name order.
 */
export async function shipmentFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true });
  const isFile = (e: { name: string; isFile(): boolean; isSymbolicLink(): boolean }): boolean => {
    if (e.isFile()) return true;
    if (!e.isSymbolicLink()) return false;
    try {
      return statSync(join(folder, e.name)).isFile();
    } catch {
      return false;
    }
  };
  return entries
    .filter((e) => /\.csv$/i.test(e.name) && !/\.seeds\.csv$/i.test(e.name) && !REPORT_NAME.test(e.name) && !e.name.startsWith('.') && isFile(e))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The command line of one file, for its `next:`: the folder's own, with the file in the
 * folder's place, its seed file as --seeds, and --activate only where there are seeds.
 */
export function fileArgs(argv: readonly string[], folder: string, path: string, seeds: string | undefined, activate: boolean, seeded = seeds !== undefined): string[] {
  const out: string[] = [];
  let positional = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (i === 0 && a === 'run') {
      out.push(a);
      continue;
    }
    if (a.startsWith('--')) {
      const name = a.replace(/^--(no-)?/, '').replace(/=.*$/, '');
      // --activate and the seed-file flags belong to a shipment with seeds.
      if (SEED_FLAGS.includes(name) && !seeded) {
        if (!a.includes('=') && i + 1 < argv.length) i++;
        continue;
      }
      if (name === 'activate' && !activate) {
        if (argv[i + 1] === 'true' || argv[i + 1] === 'false') i++;
        continue;
      }
      out.push(a);
      // A flag's value follows it, unless it is a switch, a --no-flag, or written --flag=value.
      if (!a.includes('=') && !a.startsWith('--no-') && !SWITCHES.includes(name) && name !== 'help' && name !== 'version' && i + 1 < argv.length) out.push(argv[++i]!);
      continue;
    }
    if (!positional && a === folder) {
      positional = true;
      out.push(path);
      continue;
    }
    out.push(a);
  }
  if (seeds !== undefined) out.push('--seeds', seeds);
  return out;
}



/** The seed file beside `<name>.csv`, if any; two candidates are a usage error for that file. */
export function seedFileFor(folder: string, file: string): string | undefined {
  const name = file.replace(/\.csv$/i, '');
  const found = SEED_SUFFIXES.map((suffix) => join(folder, name + suffix)).filter((p) => existsSync(p));
  if (found.length > 1) throw new UsageError(`${join(folder, file)}: more than one seed file beside it (${found.map((f) => basename(f)).join(', ')}): keep one`);
  return found[0];
}

interface Finished {
  readonly rows: number;
  readonly outcomes: Record<string, number>;
  readonly invalid: number;
  /** Finished rows whose token the ledger says was revoked since: serial, day, reason. */
  readonly revokedSince: string[];
}

/**
 * Whether every row of the file is final in its journal (invalid rows aside: no run can send
 * them), read without a request and without writing anything. With --activate, a device still
 * ACTIVATION_REQUIRED is not final.
 */
async function finishedAlready(path: string, scan: Scan, raw: RawOptions, deps: CommandDeps, activate: boolean, ledgerNow: () => Promise<Ledger>): Promise<Finished | undefined> {
  // Without a journal nothing can be known finished.
  if (raw['journal'] === false) return undefined;
  const { connection, report } = resolveCommandConfig(raw, deps);
  const journalPath = join(report.outDir, `${stem(path)}.journal.jsonl`);
  if (!existsSync(journalPath)) return undefined;
  const journal = await readOnlyJournal(journalPath, connection.environmentId);
  // The ledger as a run would read it: a damaged one stops the file here (exit 2).
  const ledger = await ledgerNow();
  const revokedSince: string[] = [];
  const outcomes: Record<string, number> = {};
  let rows = 0;
  let invalid = 0;
  for await (const row of finalRows(scan)) {
    rows++;
    if (row.problem || !row.user) {
      invalid++;
      continue;
    }
    const state = earlierEntry(row, journal).prior;
    // --activate: a device still waiting for a code (the job's, or one the user held) is work
    // left; so is one whose codes PingOne refused: the run reads it (no code) and exits 1 until
    // the user has activated it.
    const revoked = ledger.revoked(row.serialNumber);
    // A token revoked since its row finished has no device left to activate: final.
    if (!isFinal(state, activate) && !(revoked && state?.outcome)) return undefined;
    if (revoked) revokedSince.push(`${row.serialNumber} ${revoked.at.slice(0, 10)}${revoked.reason ? ` ${revoked.reason}` : ''}`);
    outcomes[state!.outcome!] = (outcomes[state!.outcome!] ?? 0) + 1;
  }
  if (invalid > 0) outcomes['INVALID'] = invalid;
  return { rows, outcomes, invalid, revokedSince };
}

const counts = (outcomes: Record<string, number>): string => countsLine(outcomes) || 'no rows';

export async function runFolder(folder: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  for (const flag of ['seeds', 'journal'] as const) {
    if (typeof raw[flag] === 'string') {
      throw new UsageError(`--${flag}: not with a folder: ${flag === 'seeds' ? "each shipment's seed file is found beside it by name (<name>.pskc.xml, <name>.pskc, <name>.seeds.xml or <name>.seeds.csv)" : 'each file has its own journal in --out-dir'}`);
    }
  }
  const files = await shipmentFiles(folder);
  const quiet = raw['quiet'] === true;
  const out = (line: string): void => {
    if (!quiet) deps.stdout.write(line);
  };
  const t0 = Date.now();
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  out(`${new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')} oath-bulk run ${folder}: ${plural(files.length, 'file')}\n`);
  if (files.length === 0) {
    // An empty drop folder is the ordinary state between shipments.
    out('  nothing to do: no shipment files (*.csv) directly in it\n');
    return 0;
  }
  const activate = raw['activate'] === true;
  // The same warning (a settings file others can read …) once, not once per file.
  const warned = new Set<string>();
  const warn = deps.warn ? (message: string): void => {
    if (!warned.has(message)) {
      warned.add(message);
      deps.warn!(message);
    }
  } : undefined;
  const total: Record<string, number> = {};
  /** What each file's run did itself, for the total. */
  const didThisRun: Array<{ thisRun?: ThisRun }> = [];
  let worst = 0;
  let nothing = 0;
  let notRun = 0;
  const now = (): string => new Date().toISOString();
  // The ledger, read once for the whole folder and brought up to date before each file (what
  // was appended since: a revoke typed while the folder runs is seen by the next file).
  let ledger: Ledger | undefined;
  const ledgerNow = async (): Promise<Ledger> => {
    if (ledger && existsSync(ledger.path)) {
      await ledger.refresh();
      return ledger;
    }
    const { connection, stateDir } = resolveCommandConfig(raw, deps);
    ledger = await Ledger.open(stateDir, connection.environmentId, { create: false, notice: warn, keep: 'revocations' });
    return ledger;
  };
  for (const file of files) {
    const path = join(folder, file);
    const add = (outcomes: Record<string, number>): void => {
      for (const [o, n] of Object.entries(outcomes)) total[o] = (total[o] ?? 0) + n;
    };
    if (deps.control.stopped) {
      out(`  ${file}: not run: the run was stopped (${deps.control.reason?.code}); run again to take it · exit 3\n`);
      deps.onSummary?.({ command: 'run', input: path, exitCode: 3, notRun: true });
      notRun++;
      worst = Math.max(worst, 3);
      continue;
    }
    if (!existsSync(path)) {
      out(`  ${file}: gone since the folder was listed: skipped\n`);
      continue;
    }
    let code: number;
    let summary: { outcomes?: Record<string, number>; reports?: { summary?: string }; stopped?: { code: string } | null; exitCode?: number; thisRun?: ThisRun } | undefined;
    try {
      const seeds = seedFileFor(folder, file);
      // Checked once: the finished check and the run read this scan's rows.
      const scan = await scanInput(path, deps.control.stopping, 20, true);
      const seeded = seeds !== undefined || scan.layout.carriesSeeds;
      // --activate, and the seed-file flags, apply to the shipments that have seeds.
      const fileRaw: Record<string, unknown> = { ...raw, seeds, activate: activate && seeded };
      if (!seeded) for (const flag of SEED_FLAGS) delete fileRaw[flag];
      const done = await finishedAlready(path, scan, fileRaw, { ...deps, warn }, activate && seeded, ledgerNow);
      if (done) {
        code = decideExit({ rows: done.rows, outcomes: done.outcomes, errorCodes: {} }, { good: runGood(false) });
        nothing++;
        add(done.outcomes);
        const since = done.revokedSince.length > 0 ? `; ${done.revokedSince.length} revoked since (${done.revokedSince.slice(0, 5).join(', ')}${done.revokedSince.length > 5 ? ', …' : ''}): out of service, not assigned again` : '';
        out(`  ${file}: nothing to do (${done.rows - done.invalid} rows finished earlier${since}${done.invalid ? `; ${done.invalid} invalid rows wait for a fix in the file` : ''}) · exit ${code}\n`);
        deps.onSummary?.({ command: 'run', input: path, outcomes: done.outcomes, errorCodes: {}, requests: { total: 0, rateLimited: 0, retries: 0 }, durationMs: 0, exitCode: code, finishedAt: now() });
        worst = Math.max(worst, code);
        continue;
      }
      const control = deps.control.child();
      try {
        const fileDeps: CommandDeps = {
          ...deps,
          warn,
          control,
          scheduled: true,
          // One line per file here; the file's own summary is in its reports.
          stdout: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
          argv: fileArgs(deps.argv ?? ['run', folder], folder, path, seeds, activate && seeded, seeded),
          // Reported once the file is done, with the exit code it ended with.
          onSummary: (s) => {
            summary = s as typeof summary;
          },
        };
        // Loaded only when a file has work: a morning of finished files loads no client, no log.
        const { runShipment } = await import('./shipment.js');
        code = await runShipment(path, fileRaw, fileDeps, scan, ledger ? await ledgerNow() : undefined);
      } finally {
        control.dispose();
      }
    } catch (error) {
      code = exitCodeFor(error);
      const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
      const shown = message.startsWith(path) ? message : `${path}: ${message}`;
      deps.stderr.write(`oath-bulk: ${shown}\n`);
      if (!summary) out(`  ${file}: exit ${code} · ${message.startsWith(path) ? message.slice(path.length).replace(/^:\s*/, '') : message}\n`);
    }
    if (summary) {
      add(summary.outcomes ?? {});
      didThisRun.push(summary);
      out(`  ${file}: ${counts(summary.outcomes ?? {})}${summary.stopped ? ` · STOPPED (${summary.stopped.code})` : ''} · exit ${code}${summary.reports?.summary ? ` · ${summary.reports.summary}` : ''}\n`);
    }
    deps.onSummary?.(summary ? { ...summary, exitCode: code } : { command: 'run', input: path, exitCode: code, finishedAt: now() });
    worst = Math.max(worst, code);
  }
  const asides = [nothing ? `${nothing} with nothing to do` : '', notRun ? `${notRun} not run` : ''].filter(Boolean).join(', ');
  out(`  total: ${plural(files.length, 'file')}${asides ? ` (${asides})` : ''} · ${counts(total)} · ${thisRunLine(addThisRun(didThisRun))} · ${((Date.now() - t0) / 1000).toFixed(1)}s · exit ${worst}\n`);
  out(`  next: ${worst === 0
    ? 'nothing is left to do in this folder; to check a file\'s assignments in PingOne: oath-bulk verify <its results.csv> (in the reports folder)'
    : worst === 3 || deps.control.stopped
      ? 'run again to finish (files and rows finished are not sent again); the lines above say why it stopped'
      : 'see the files above that did not exit 0 (the problems are in their results and reports); the next run retries what is left'}\n`);
  return worst;
}
