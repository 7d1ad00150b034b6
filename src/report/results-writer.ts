/**
 * The results CSV: one line per input data row, in input order, with the input's extra
 * columns carried through. Every cell passes through safeCell. close() resolves once the
 * file is written and closed.
 */
import { stringify, type Stringifier } from 'csv-stringify';
import { RESULT_COLUMNS } from '../input/reader.js';
import { safeCell } from './csv-safe.js';
import { openPrivate } from './files.js';
import type { RowResult } from './outcome.js';

export class ResultsWriter {
  private constructor(
    private readonly csv: Stringifier,
    private readonly done: Promise<void>,
  ) {}

  static async open(path: string, extraColumns: readonly string[], columns: readonly string[] = RESULT_COLUMNS): Promise<ResultsWriter> {
    const handle = await openPrivate(path);
    const csv = stringify({ header: true, columns: [...columns, ...extraColumns].map(safeCell), record_delimiter: 'unix' });
    const out = handle.createWriteStream();
    csv.pipe(out);
    const done = new Promise<void>((resolve, reject) => {
      out.on('close', resolve);
      out.on('error', reject);
      csv.on('error', reject);
    });
    return new ResultsWriter(csv, done);
  }

  /** Writes one row; resolves when the stream can take more (back-pressure). */
  async write(result: RowResult): Promise<void> {
    const ok = this.csv.write(toCells(result));
    if (!ok) await new Promise<void>((resolve) => this.csv.once('drain', resolve));
  }

  /** Writes a row of arbitrary cells, in column order (verify and rollback results). */
  async writeCells(cells: readonly unknown[]): Promise<void> {
    const ok = this.csv.write(cells.map(safeCell));
    if (!ok) await new Promise<void>((resolve) => this.csv.once('drain', resolve));
  }

  async close(): Promise<void> {
    this.csv.end();
    await this.done;
  }
}

function toCells(r: RowResult): string[] {
  return [
    r.row, r.userID, r.serialNumber, r.outcome, r.deviceId, r.deviceStatus, r.httpStatus,
    r.errorCode, r.errorDetail, r.message, r.attempts, r.durationMs, ...r.extras,
  ].map(safeCell);
}
