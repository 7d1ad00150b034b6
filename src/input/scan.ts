/**
 * Two passes over the file. The first checks every row and fills the conflict index before
 * anything is sent, so that a file-level problem or --strict stops the run with nothing
 * done, and so that every row of a conflicting serial is known invalid before the first is
 * sent. The second streams the rows again, now final, to the engine.
 */
import { ConflictIndex } from './conflicts.js';
import { UsageError } from '../errors.js';
import { inputChanged, openInput, readRows, type InputLayout } from './reader.js';
import { InputError } from './input-error.js';
import { checkRow, userKey, type CheckedRow } from './validate.js';

/**
 * Data row -> file line, for messages ("row N (line L)"). Lines run ahead of rows by the
 * header and by blank lines and multi-line fields: only the rows where that lead changes are
 * kept, so a clean file costs one entry.
 */
export class LineMap {
  private readonly rows: number[] = [];
  private readonly leads: number[] = [];

  note(row: number, line: number): void {
    const lead = line - row;
    if (this.leads.length === 0 || this.leads[this.leads.length - 1] !== lead) {
      this.rows.push(row);
      this.leads.push(lead);
    }
  }

  lineOf = (row: number): number => {
    let lo = 0;
    let hi = this.rows.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.rows[mid]! <= row) lo = mid;
      else hi = mid - 1;
    }
    return row + (this.leads[lo] ?? 1);
  };
}

export interface Scan {
  readonly layout: InputLayout;
  readonly lines: LineMap;
  readonly rows: number;
  readonly invalid: number;
  /** The first problems, for --strict and the summary: "row N (line L): CODE: message". */
  readonly firstProblems: readonly string[];
  readonly conflicts: ConflictIndex;
  /** What the first pass read, chunk by chunk, when asked: the second pass must read the same bytes. */
  readonly digests?: string[];
}

/**
 * `stopping`: a stop (a signal) ends the check within 1,000 rows, with the stop's reason.
 * `recordDigests`: keep a digest of every 16 KB, for a second pass that sends (run).
 */
export async function scanInput(path: string, stopping?: AbortSignal, keepProblems = 20, recordDigests = false, options: { workbook?: boolean } = {}): Promise<Scan> {
  const layout = await openInput(path, options);
  const conflicts = new ConflictIndex();
  const lines = new LineMap();
  const digests: string[] | undefined = recordDigests ? [] : undefined;
  let rows = 0;
  let invalid = 0;
  const firstProblems: string[] = [];
  for await (const raw of readRows(layout, digests && { list: digests, mode: 'record' })) {
    rows++;
    if (rows % 1000 === 0) stopping?.throwIfAborted();
    lines.note(raw.row, raw.line);
    const row = checkRow(layout, raw);
    if (row.problem || !row.user) {
      invalid++;
      if (firstProblems.length < keepProblems) firstProblems.push(describeProblem(row));
      continue;
    }
    for (const bad of conflicts.note(row.row, userKey(row.user), row.serialNumber)) {
      if (firstProblems.length < keepProblems) {
        const kind = conflicts.check(bad, row.serialNumber, lines.lineOf);
        firstProblems.push(`row ${bad} (line ${lines.lineOf(bad)}): ${kind?.code}: ${kind?.message}`);
      }
    }
  }
  if (rows === 0) throw new InputError(path, undefined, 'has a header but no data rows: add one row per token (userID,serialNumber)');
  if (await inputChanged(layout)) throw new InputError(path, undefined, CHANGED);
  return { layout, lines, rows, invalid: invalid + conflicts.invalidRows, firstProblems, conflicts, digests };
}

const CHANGED = 'changed while it was being checked (written to, or replaced): run again once the file is final';

/**
 * Before anything is sent: the file must still be the one the first pass checked (--strict,
 * conflicts and the counts were judged on it). Exit 2, nothing sent.
 */
export async function checkUnchanged(scan: Pick<Scan, 'layout'>): Promise<void> {
  if (await inputChanged(scan.layout)) {
    throw new UsageError(`${scan.layout.path}: changed since it was checked (written to, or replaced), so nothing was sent: run again once the file is final`);
  }
}

export function describeProblem(row: CheckedRow): string {
  return `row ${row.row} (line ${row.line}): ${row.problem?.code}: ${row.problem?.message}`;
}

/**
 * The rows with every problem known, conflicts included, in file order: only the bytes the
 * first pass checked, each 16 KB compared with what it read. `onChanged` hears of a
 * difference (an edit while the run goes on) before the rows of that part are handed out;
 * the rows go on being given, so that every row is reported (the run stops sending).
 */
export async function* finalRows(scan: Pick<Scan, 'layout' | 'conflicts' | 'lines'> & { digests?: string[] }, onChanged?: () => void): AsyncGenerator<CheckedRow> {
  const digests = scan.digests && onChanged ? { list: scan.digests, mode: 'verify' as const, onMismatch: onChanged } : undefined;
  for await (const raw of readRows(scan.layout, digests)) {
    const row = checkRow(scan.layout, raw);
    if (row.problem || !row.user) {
      yield row;
      continue;
    }
    const conflict = scan.conflicts.check(row.row, row.serialNumber, scan.lines.lineOf);
    yield conflict ? { ...row, problem: conflict } : row;
  }
}
