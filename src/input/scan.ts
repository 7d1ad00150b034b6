/**
 * Two passes over the file. The first checks every row and fills the conflict index before
 * anything is sent, so that a file-level problem or --strict stops the run with nothing
 * done, and so that every row of a conflicting serial is known invalid before the first is
 * sent. The second streams the rows again, now final, to the engine.
 */
import { ConflictIndex } from './conflicts.js';
import { openInput, readRows, type InputLayout } from './reader.js';
import { InputError } from './input-error.js';
import { checkRow, userKey, type CheckedRow } from './validate.js';

export interface Scan {
  readonly layout: InputLayout;
  readonly rows: number;
  readonly invalid: number;
  /** The first problems, for --strict and the summary: "row N (line L): CODE: message". */
  readonly firstProblems: readonly string[];
  readonly conflicts: ConflictIndex;
}

export async function scanInput(path: string, keepProblems = 20): Promise<Scan> {
  const layout = await openInput(path);
  const conflicts = new ConflictIndex();
  let rows = 0;
  let invalid = 0;
  const firstProblems: string[] = [];
  for await (const raw of readRows(layout)) {
    rows++;
    const row = checkRow(layout, raw);
    if (row.problem || !row.user) {
      invalid++;
      if (firstProblems.length < keepProblems) firstProblems.push(describeProblem(row));
      continue;
    }
    for (const bad of conflicts.note(row.row, userKey(row.user), row.serialNumber)) {
      if (firstProblems.length < keepProblems) {
        const kind = conflicts.check(bad, row.serialNumber);
        firstProblems.push(`row ${bad}: ${kind?.code}: ${kind?.message}`);
      }
    }
  }
  if (rows === 0) throw new InputError(path, undefined, 'has a header but no data rows: add one row per token (userID,serialNumber)');
  return { layout, rows, invalid: invalid + conflicts.invalidRows, firstProblems, conflicts };
}

export function describeProblem(row: CheckedRow): string {
  return `row ${row.row} (line ${row.line}): ${row.problem?.code}: ${row.problem?.message}`;
}

/** The rows with every problem known, conflicts included, in file order. */
export async function* finalRows(scan: Pick<Scan, 'layout' | 'conflicts'>): AsyncGenerator<CheckedRow> {
  for await (const raw of readRows(scan.layout)) {
    const row = checkRow(scan.layout, raw);
    if (row.problem || !row.user) {
      yield row;
      continue;
    }
    const conflict = scan.conflicts.check(row.row, row.serialNumber);
    yield conflict ? { ...row, problem: conflict } : row;
  }
}
