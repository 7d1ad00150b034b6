/**
 * The results CSV: one line per input data row, in input order, with the input's extra
 * columns carried through. Every cell passes through safeCell. close() resolves once the
 * file is written and closed.
 */
import { stringify, type Stringifier } from 'csv-stringify';
import { stringify as stringifySync } from 'csv-stringify/sync';
import { RESULT_COLUMNS } from '../input/reader.js';
import { safeCell } from './csv-safe.js';
import { openPrivate } from './files.js';
import { LineFile } from './line-file.js';
import type { RowResult } from './outcome.js';

/** Queued bytes above which a writer waits for the disk (back-pressure). */
const BACKLOG_BYTES = 1 << 20;

export class ResultsWriter {
  private constructor(
    private readonly csv: Stringifier,
    private readonly file: LineFile,
  ) {}

  /** `onFault`: the file cannot be written (a full disk …); rows after it are dropped. */
  static async open(path: string, extraColumns: readonly string[], columns: readonly string[] = RESULT_COLUMNS, onFault: (error: unknown) => void = () => undefined): Promise<ResultsWriter> {
    const handle = await openPrivate(path);
    const file = new LineFile(handle, onFault);
    // The header goes out now, not with the first row: a file that cannot be written is found
    // before anything is sent (flush()).
    const header = [...columns, ...extraColumns].map(safeCell);
    file.write(stringifySync([header], { record_delimiter: 'unix' }));
    const csv = stringify({ header: false, columns: header, record_delimiter: 'unix' });
    csv.on('data', (chunk: Buffer | string) => file.write(String(chunk)));
    return new ResultsWriter(csv, file);
  }

  /** Resolves once what was written so far is on its way to disk (or its fault reported). */
  flush(): Promise<void> {
    return this.file.flush();
  }

  /** Writes one row; waits while the disk is behind. */
  async write(result: RowResult): Promise<void> {
    this.csv.write(toCells(result));
    if (this.file.backlog > BACKLOG_BYTES) await this.file.flush();
  }

  /** Writes a row of arbitrary cells, in column order (verify and rollback results). */
  async writeCells(cells: readonly unknown[]): Promise<void> {
    this.csv.write(cells.map(safeCell));
    if (this.file.backlog > BACKLOG_BYTES) await this.file.flush();
  }

  /** Resolves once the file is written (or its fault reported) and closed; never hangs. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.csv.once('end', resolve);
      this.csv.end();
      this.csv.resume();
    });
    await this.file.close();
  }
}

function toCells(r: RowResult): string[] {
  return [
    r.row, r.userID, r.serialNumber, r.outcome, r.deviceId, r.deviceStatus, r.httpStatus,
    r.errorCode, r.errorDetail, r.message, r.attempts, r.durationMs, ...r.extras,
  ].map(safeCell);
}
