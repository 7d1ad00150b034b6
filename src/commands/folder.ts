/**
 * `oath-bulk run <folder>` (SPEC "Operations (cron)"): every `*.csv` directly in the folder,
 * in name order, each run exactly as if alone — its own journal, lock and reports — with a
 * seed file beside it picked up by name. A file whose rows are all final in its journal costs
 * nothing: no request (not even for a token) and no new report set; it says "nothing to do".
 * One line per file, then a total; the exit code is the worst of the files'. The folder is
 * listed once: files dropped in while it runs are taken next time.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import type { RawOptions } from '../config.js';
import { exitCodeFor, UsageError } from '../errors.js';
import { aliasKey } from '../engine/assign-row.js';
import { pairKey, readOnlyJournal } from '../engine/journal.js';
import { finalRows, scanInput } from '../input/scan.js';
import { stem } from '../report/files.js';
import { resolveCommandConfig } from './context.js';
import { runCommand, type CommandDeps } from './run.js';

/** Seed files found beside `<name>.csv`, in this order of preference (README "Folder runs"). */
export const SEED_SUFFIXES = ['.pskc.xml', '.pskc', '.seeds.xml', '.seeds.csv'];

/** The assignment files of a folder: `*.csv` directly in it, seed CSVs (`*.seeds.csv`) aside, in name order. */
export async function shipmentFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && /\.csv$/i.test(e.name) && !/\.seeds\.csv$/i.test(e.name) && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
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
}

/**
 * Whether every row of the file is final in its journal (invalid rows aside: no run can send
 * them), read without a request and without writing anything. With --activate, a device still
 * ACTIVATION_REQUIRED is not final.
 */
async function finishedAlready(path: string, raw: RawOptions, deps: CommandDeps, activate: boolean): Promise<Finished | undefined> {
  const { connection, report } = resolveCommandConfig(raw, deps);
  const journalPath = join(report.outDir, `${stem(path)}.journal.jsonl`);
  if (!existsSync(journalPath)) return undefined;
  const scan = await scanInput(path);
  const journal = await readOnlyJournal(journalPath, connection.environmentId);
  const outcomes: Record<string, number> = {};
  let rows = 0;
  let invalid = 0;
  for await (const row of finalRows(scan)) {
    rows++;
    if (row.problem || !row.user) {
      invalid++;
      continue;
    }
    const alias = aliasKey(row);
    const state = alias === undefined ? journal.lookup(pairKey(row.user.value, row.serialNumber)) : journal.lookupAlias(alias);
    if (!state?.outcome) return undefined;
    if (activate && state.outcome === 'CREATED' && state.deviceStatus === 'ACTIVATION_REQUIRED') return undefined;
    outcomes[state.outcome] = (outcomes[state.outcome] ?? 0) + 1;
  }
  if (invalid > 0) outcomes['INVALID'] = invalid;
  return { rows, outcomes, invalid };
}

const counts = (outcomes: Record<string, number>): string =>
  Object.entries(outcomes).filter(([, n]) => n > 0).map(([o, n]) => `${o} ${n}`).join(' · ') || 'no rows';

export async function runFolder(folder: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  for (const flag of ['seeds', 'journal'] as const) {
    if (typeof raw[flag] === 'string') {
      throw new UsageError(`--${flag}: not with a folder: ${flag === 'seeds' ? "each shipment's seed file is found beside it by name (<name>.pskc.xml, <name>.pskc, <name>.seeds.xml or <name>.seeds.csv)" : 'each file has its own journal in --out-dir'}`);
    }
  }
  const files = await shipmentFiles(folder);
  if (files.length === 0) throw new UsageError(`${folder}: no shipment files (*.csv) directly in it: put each shipment's assignment CSV there`);
  const quiet = raw['quiet'] === true;
  const out = (line: string): void => {
    if (!quiet) deps.stdout.write(line);
  };
  const t0 = Date.now();
  out(`${new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')} oath-bulk run ${folder}: ${files.length} file${files.length === 1 ? '' : 's'}\n`);
  const activate = raw['activate'] === true;
  const total: Record<string, number> = {};
  let worst = 0;
  let nothing = 0;
  for (const file of files) {
    const path = join(folder, file);
    const add = (outcomes: Record<string, number>): void => {
      for (const [o, n] of Object.entries(outcomes)) total[o] = (total[o] ?? 0) + n;
    };
    if (deps.control.stopped) {
      out(`  ${file}: not run: the run was stopped (${deps.control.reason?.code}); run again to take it\n`);
      worst = Math.max(worst, 3);
      continue;
    }
    let code: number;
    try {
      const seeds = seedFileFor(folder, file);
      // --activate applies to the shipments whose seeds are beside them.
      const fileRaw: RawOptions = { ...raw, seeds, activate: activate && seeds !== undefined };
      const done = await finishedAlready(path, fileRaw, deps, activate && seeds !== undefined);
      if (done) {
        code = done.invalid > 0 ? 1 : 0;
        nothing++;
        add(done.outcomes);
        out(`  ${file}: nothing to do (${done.rows - done.invalid} rows finished earlier${done.invalid ? `; ${done.invalid} invalid rows wait for a fix in the file` : ''}) · exit ${code}\n`);
        deps.onSummary?.({ command: 'run', input: path, outcomes: done.outcomes, errorCodes: {}, requests: { total: 0, rateLimited: 0, retries: 0 }, durationMs: 0, exitCode: code, finishedAt: new Date().toISOString(), nothingToDo: true });
        worst = Math.max(worst, code);
        continue;
      }
      let summary: { outcomes?: Record<string, number>; reports?: { summary?: string }; stopped?: { code: string } | null } | undefined;
      const control = deps.control.child();
      try {
        code = await runCommand(path, fileRaw, {
          ...deps,
          control,
          // One line per file here; the file's own summary is in its reports.
          stdout: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
          argv: (deps.argv ?? ['run', folder]).map((a) => (a === folder ? path : a)),
          onSummary: (s) => {
            summary = s as typeof summary;
            deps.onSummary?.(s);
          },
        });
      } finally {
        control.dispose();
      }
      add(summary?.outcomes ?? {});
      out(`  ${file}: ${counts(summary?.outcomes ?? {})}${summary?.stopped ? ` · STOPPED (${summary.stopped.code})` : ''} · exit ${code}${summary?.reports?.summary ? ` · ${summary.reports.summary}` : ''}\n`);
    } catch (error) {
      code = exitCodeFor(error);
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      deps.stderr.write(`oath-bulk: ${path}: ${message}\n`);
      out(`  ${file}: exit ${code} · ${message}\n`);
      deps.onSummary?.({ command: 'run', input: path, exitCode: code, finishedAt: new Date().toISOString() });
    }
    worst = Math.max(worst, code);
  }
  out(`  total: ${files.length} files${nothing ? ` (${nothing} with nothing to do)` : ''} · ${counts(total)} · ${((Date.now() - t0) / 1000).toFixed(1)}s · exit ${worst}\n`);
  return worst;
}
