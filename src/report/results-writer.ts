/**
 * The results CSV: one line per input data row, in input order, with the input's extra
 * columns carried through. Every cell passes through safeCell. close() resolves once the
 * file is written and closed.
 */
import { stringify, type Stringifier } from 'csv-stringify';
import { stringify as stringifySync } from 'csv-stringify/sync';
import { RESULT_COLUMNS, type Delimiter } from '../input/reader.js';
import { safeCell } from './csv-safe.js';
import { openPrivate } from './files.js';
import { LineFile } from './line-file.js';
import type { RowResult } from './outcome.js';
import { ResultsWorkbook } from './workbook.js';

/** How the CSV is written: SPEC's contract (comma, no BOM), or the input's dialect (--csv-dialect input). */
export interface CsvDialect {
  readonly delimiter: Delimiter;
  readonly bom: boolean;
}

export const CONTRACT_DIALECT: CsvDialect = { delimiter: ',', bom: false };

/** Columns that hold numbers: numeric cells in the workbook. */
const NUMERIC_COLUMNS: ReadonlySet<string> = new Set(['row', 'httpStatus', 'attempts', 'durationMs', 'index', 'otpLength']);

export interface ResultsOptions {
  /** The workbook beside the CSV (the same rows, for people), or none. */
  readonly workbook?: string;
  readonly dialect?: CsvDialect;
}

/** Queued bytes above which a writer waits for the disk (back-pressure). */
const BACKLOG_BYTES = 1 << 20;

export class ResultsWriter {
  private constructor(
    private readonly csv: Stringifier,
    private readonly file: LineFile,
    /** The workbook beside the CSV, while it is being written. */
    private workbook: ResultsWorkbook | undefined,
  ) {}

  /** `onFault`: the file cannot be written (a full disk …); rows after it are dropped. */
  static async open(path: string, extraColumns: readonly string[], columns: readonly string[] = RESULT_COLUMNS, onFault: (error: unknown) => void = () => undefined, options: ResultsOptions = {}): Promise<ResultsWriter> {
    const handle = await openPrivate(path);
    const file = new LineFile(handle, onFault);
    const { delimiter, bom } = options.dialect ?? CONTRACT_DIALECT;
    // The header goes out now, not with the first row: a file that cannot be written is found
    // before anything is sent (flush()).
    const names = [...columns, ...extraColumns];
    const header = names.map(safeCell);
    file.write((bom ? '\uFEFF' : '') + stringifySync([header], { record_delimiter: 'unix', delimiter }));
    const csv = stringify({ header: false, columns: header, record_delimiter: 'unix', delimiter });
    csv.on('data', (chunk: Buffer | string) => file.write(String(chunk)));
    const workbook = options.workbook ? await ResultsWorkbook.open(options.workbook, names, NUMERIC_COLUMNS) : undefined;
    return new ResultsWriter(csv, file, workbook);
  }

  /** Resolves once what was written so far is on its way to disk (or its fault reported). */
  flush(): Promise<void> {
    return this.file.flush();
  }

  /** Writes one row; waits while the disk is behind. */
  async write(result: RowResult): Promise<void> {
    const cells = toCells(result);
    await this.workbook?.write(cells);
    this.csv.write(cells.map(safeCell));
    if (this.file.backlog > BACKLOG_BYTES) await this.file.flush();
  }

  /** Writes a row of arbitrary cells, in column order (verify and rollback results). */
  async writeCells(cells: readonly unknown[]): Promise<void> {
    await this.workbook?.write(cells);
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

  /**
   * Completes the workbook with its summary sheet (after close()). Throws when it could not be
   * written: it is a view of the CSV, and the caller warns rather than fails the run.
   */
  async closeWorkbook(summary: ReadonlyArray<readonly [string, string | number]>): Promise<void> {
    const workbook = this.workbook;
    this.workbook = undefined;
    await workbook?.close(summary);
  }

  /** No workbook after all (the command failed before its summary): no partial file is left. */
  async abandonWorkbook(): Promise<void> {
    const workbook = this.workbook;
    this.workbook = undefined;
    await workbook?.abandon();
  }
}

function toCells(r: RowResult): unknown[] {
  return [
    r.row, r.userID, r.serialNumber, r.outcome, r.deviceId, r.deviceStatus, r.httpStatus,
    r.errorCode, r.errorDetail, r.message, r.attempts, r.durationMs, ...r.extras,
  ];
}
