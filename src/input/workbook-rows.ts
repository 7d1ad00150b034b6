/**
 * The rows of an `.xlsx` workbook's first sheet, as text records, for the commands that take
 * a results file (verify, rollback): the workbook oath-bulk writes beside its results CSV,
 * or one an operator saved from it in Excel. Streamed (exceljs's reader), capped in size and
 * rows; a formula is read as its text, never evaluated; numbers and dates as Excel shows them
 * in a plain cell. Line numbers are the sheet's row numbers.
 */
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { InputError } from './input-error.js';

/** The largest workbook read (bytes on disk): a 100,000-row results workbook is about 6 MB. */
export const MAX_WORKBOOK_BYTES = 64 * 1024 * 1024;
/** The most rows read from the sheet. */
export const MAX_WORKBOOK_ROWS = 1_000_000;

export interface WorkbookRecord {
  readonly line: number;
  readonly fields: string[];
}

/** A cell's value as text: what the cell holds, never the result of running a formula. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') {
    const v = value as { formula?: string; sharedFormula?: string; richText?: Array<{ text?: string }>; text?: unknown; error?: string };
    if (typeof v.formula === 'string') return `=${v.formula}`;
    if (typeof v.sharedFormula === 'string') return `=${v.sharedFormula}`;
    if (Array.isArray(v.richText)) return v.richText.map((r) => r.text ?? '').join('');
    if (v.text !== undefined) return cellText(v.text);
    if (typeof v.error === 'string') return v.error;
  }
  return String(value);
}

/**
 * Every non-blank row of the first sheet. `digests` as for a CSV: a digest of every 16 KB of
 * the file, recorded or compared, so that a second pass notices a changed file.
 */
export async function* workbookRecords(path: string, size: number, digests?: { list: string[]; mode: 'record' | 'verify'; onMismatch?: () => void }): AsyncGenerator<WorkbookRecord> {
  if (size > MAX_WORKBOOK_BYTES) {
    throw new InputError(path, undefined, `is a workbook of ${Math.round(size / 1_000_000)} MB, more than the ${MAX_WORKBOOK_BYTES / 1024 / 1024} MB read: give the results CSV instead`);
  }
  const { default: ExcelJS } = await import('exceljs');
  let chunkNo = 0;
  let mismatch = false;
  const source = createReadStream(path, { highWaterMark: 16 * 1024, end: Math.max(0, size - 1) });
  const digesting = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (digests) {
        const digest = createHash('sha1').update(chunk).digest('base64');
        if (digests.mode === 'record') digests.list.push(digest);
        else if (!mismatch && digests.list[chunkNo] !== digest) {
          mismatch = true;
          digests.onMismatch?.();
        }
        chunkNo++;
      }
      done(null, chunk);
    },
  });
  source.on('error', (error) => digesting.destroy(error));
  const reader = new ExcelJS.stream.xlsx.WorkbookReader(source.pipe(digesting), { worksheets: 'emit', sharedStrings: 'cache', hyperlinks: 'ignore', styles: 'ignore', entries: 'ignore' });
  let rows = 0;
  try {
    for await (const sheet of reader) {
      for await (const row of sheet) {
        if (++rows > MAX_WORKBOOK_ROWS) throw new InputError(path, `row ${row.number}`, `has more than ${MAX_WORKBOOK_ROWS.toLocaleString('en')} rows: give the results CSV instead`);
        const values = (row.values as unknown[]).slice(1);
        const fields = Array.from({ length: values.length }, (_, i) => cellText(values[i]).trim());
        if (fields.every((f) => f === '')) continue;
        yield { line: row.number, fields };
      }
      // The first sheet holds the rows; the others (the summary) are not read.
      break;
    }
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(path, undefined, `cannot be read as an .xlsx workbook (${(error as Error).message.split('\n')[0]}): save it again from Excel, or give the results CSV`);
  } finally {
    source.destroy();
    digesting.destroy();
  }
}
