/**
 * The results as an `.xlsx` workbook, for people: beside the results CSV (which stays the
 * contract for scripts), the same rows with ids and serials as text cells (Excel keeps
 * `00412345678901` as it is), numbers as numbers, the header frozen and filterable, and a
 * second sheet with the summary. Written row by row (xlsx-writer.ts), so that 100,000 rows
 * cost no more memory than ten; into a temporary file renamed into place when complete, so
 * that a workbook that exists is whole. Only its owner can read it.
 *
 * A cell is typed, never escaped: a text cell beginning with `=` is text to Excel, not a
 * formula, so the CSV's `'` guard is not needed (nor added) here.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { XlsxWriter, type SheetColumn } from './xlsx-writer.js';

export class ResultsWorkbook {
  private failed?: unknown;

  private constructor(
    private readonly path: string,
    private readonly temp: string,
    private readonly book: XlsxWriter,
  ) {}

  /** `numericColumns`: the columns written as numbers (row, attempts …); every other cell is text. */
  static async open(path: string, header: readonly string[], numericColumns: ReadonlySet<string>): Promise<ResultsWorkbook> {
    const temp = `${path}.partial`;
    const book = XlsxWriter.open(temp);
    const workbook = new ResultsWorkbook(path, temp, book);
    try {
      await book.sheet('results', header.map((name) => ({ name, width: widthOf(name), numeric: numericColumns.has(name) })));
    } catch (error) {
      workbook.failed = error;
    }
    return workbook;
  }

  /** One row, in column order. A workbook that cannot be written stops taking rows; close() says why. */
  async write(cells: readonly unknown[]): Promise<void> {
    if (this.failed) return;
    try {
      await this.book.row(cells);
    } catch (error) {
      this.failed = error;
    }
  }

  /**
   * The summary sheet (name, value pairs), then the file completed and renamed into place.
   * Throws when the workbook could not be written; the temporary file is then removed.
   */
  async close(summary: ReadonlyArray<readonly [string, string | number]>): Promise<void> {
    try {
      if (this.failed) throw this.failed;
      const columns: SheetColumn[] = [{ name: 'field', width: 30 }, { name: 'value', width: 100, numeric: true }];
      await this.book.sheet('summary', columns);
      for (const [field, value] of summary) await this.book.row([field, value]);
      await this.book.finish();
      // Synced before it takes its name: a workbook that exists is whole, even after a power cut.
      const handle = await open(this.temp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(this.temp, this.path);
    } catch (error) {
      await this.abandon();
      throw error;
    }
  }

  /** Gives up the workbook (the command failed before its summary): no partial file is left. */
  async abandon(): Promise<void> {
    this.book.abandon();
    await unlink(this.temp).catch(() => undefined);
  }
}

function widthOf(name: string): number {
  if (name === 'userID' || name === 'deviceId') return 38;
  if (name === 'message') return 80;
  if (name === 'serialNumber') return 20;
  return Math.max(10, Math.min(30, name.length + 4));
}
