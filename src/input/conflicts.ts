/**
 * Conflicts inside one file (SPEC "Input"): rows that give one serial to different users are
 * all invalid; an exact repeat of an earlier pair is invalid (DUPLICATE_ROW). The first pass
 * over the file fills the index, the second asks it about each row. One map entry per
 * distinct serial is the memory this costs: the only state that grows with the file.
 */
import type { RowProblem } from './validate.js';

const CONFLICT = '!';

export class ConflictIndex {
  /** serial -> "<first row>\t<user key>", prefixed with "!" once another user claims it. */
  private readonly serials = new Map<string, string>();

  /** Rows found invalid so far by conflicts and repeats. */
  invalidRows = 0;

  /** Records a valid row; returns the rows that this row shows to be invalid (it, and the first row of a newly conflicting serial). */
  note(row: number, user: string, serial: string): number[] {
    const seen = this.serials.get(serial);
    if (seen === undefined) {
      this.serials.set(serial, `${row}\t${user}`);
      return [];
    }
    if (seen.startsWith(CONFLICT)) {
      this.invalidRows++;
      return [row];
    }
    if (seen.slice(seen.indexOf('\t') + 1) === user) {
      this.invalidRows++;
      return [row];
    }
    this.serials.set(serial, CONFLICT + seen);
    this.invalidRows += 2;
    return [Number(seen.slice(0, seen.indexOf('\t'))), row];
  }

  check(row: number, serial: string): RowProblem | undefined {
    const seen = this.serials.get(serial);
    if (seen === undefined) return undefined;
    const conflict = seen.startsWith(CONFLICT);
    const firstRow = Number(seen.slice(conflict ? 1 : 0, seen.indexOf('\t')));
    if (conflict) {
      return {
        code: 'SERIAL_CONFLICT',
        message: `serial ${serial} is given to more than one user in this file (first at row ${firstRow}): a token goes to one user; correct the rows and run again`,
      };
    }
    if (row !== firstRow) {
      return { code: 'DUPLICATE_ROW', message: `repeats row ${firstRow} (same user and serial): delete the repeat` };
    }
    return undefined;
  }

  get size(): number {
    return this.serials.size;
  }
}
