/**
 * The rows of an `.xlsx` workbook's first sheet, as text records, for the commands that take
 * a results file (verify, rollback): the workbook oath-bulk writes beside its results CSV,
 * or one an operator saved from it in Excel.
 *
 * Read here, not with a spreadsheet library: exceljs's streaming reader writes a worksheet
 * that comes before the workbook's relationships in the archive (ours, Excel's) to a temporary
 * file, uncompressed and in plain text, left behind by a crash; and its memory grew with the
 * rows. Here the file (at most MAX_WORKBOOK_BYTES) is read into memory, its ZIP directory read,
 * the shared strings parsed (capped), and the sheet inflated and parsed as a stream (saxes),
 * row by row: memory is the file, the shared strings and one row. A formula is read as its
 * text (`=…`), never run; numbers and dates as the sheet stores them; a cell or row longer
 * than a CSV row may be is refused, as is a sheet that inflates past MAX_SHEET_BYTES (a ZIP
 * bomb). Line numbers are the sheet's row numbers.
 */
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createInflateRaw, inflateRawSync } from 'node:zlib';
import { SaxesParser } from 'saxes';
import { chunkDigester, DIGEST_CHUNK, type ChunkDigests } from './chunk-digests.js';
import { InputError } from './input-error.js';

/** The largest workbook read (bytes on disk): a 100,000-row results workbook is about 5 MB. */
export const MAX_WORKBOOK_BYTES = 64 * 1024 * 1024;
/** The most a sheet may inflate to, and the shared strings. */
export const MAX_SHEET_BYTES = 1024 * 1024 * 1024;
const MAX_SHARED_STRINGS_BYTES = 128 * 1024 * 1024;
/** The longest row (all its cells' text), as for a CSV record. */
const MAX_ROW_CHARS = 1_000_000;
/** The most rows read from the sheet. */
export const MAX_WORKBOOK_ROWS = 1_000_000;

export interface WorkbookRecord {
  readonly line: number;
  readonly fields: string[];
}

interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly offset: number;
}

class Unreadable extends Error {}

/** The archive's central directory: every entry by name. */
function zipEntries(zip: Buffer): Map<string, ZipEntry> {
  const min = Math.max(0, zip.length - 65_557);
  let end = -1;
  for (let i = zip.length - 22; i >= min; i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new Unreadable('no ZIP directory (the file is cut short, or not a workbook)');
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries = new Map<string, ZipEntry>();
  for (let n = 0; n < count; n++) {
    if (at + 46 > zip.length || zip.readUInt32LE(at) !== 0x02014b50) throw new Unreadable('a damaged ZIP directory');
    const nameLength = zip.readUInt16LE(at + 28);
    const entry: ZipEntry = {
      method: zip.readUInt16LE(at + 10),
      compressedSize: zip.readUInt32LE(at + 20),
      size: zip.readUInt32LE(at + 24),
      offset: zip.readUInt32LE(at + 42),
      name: zip.toString('utf8', at + 46, at + 46 + nameLength),
    };
    if (entry.compressedSize === 0xffffffff || entry.offset === 0xffffffff) throw new Unreadable('a ZIP64 archive (larger than this reader takes)');
    entries.set(entry.name.replace(/^\//, ''), entry);
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return entries;
}

/** The stored bytes of an entry (still compressed). */
function stored(zip: Buffer, entry: ZipEntry): Buffer {
  const at = entry.offset;
  if (at + 30 > zip.length || zip.readUInt32LE(at) !== 0x04034b50) throw new Unreadable(`a damaged ZIP entry (${entry.name})`);
  const start = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
  if (start + entry.compressedSize > zip.length) throw new Unreadable(`a ZIP entry cut short (${entry.name})`);
  if (entry.method !== 0 && entry.method !== 8) throw new Unreadable(`a ZIP entry compressed in a way this reader does not take (${entry.name})`);
  return zip.subarray(start, start + entry.compressedSize);
}

/** A small entry whole, as text (capped). */
function text(zip: Buffer, entry: ZipEntry, cap: number): string {
  const data = stored(zip, entry);
  try {
    return (entry.method === 0 ? data : inflateRawSync(data, { maxOutputLength: cap })).toString('utf8');
  } catch (error) {
    throw new Unreadable(`${entry.name} ${(error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? `inflates past ${cap / 1024 / 1024} MB` : 'cannot be inflated'}`);
  }
}

/** Parses a small XML part whole, calling `on` for each open tag, text and close tag. */
function parseWhole(xml: string, handlers: { open?: (name: string, attrs: Record<string, string>) => void; text?: (t: string) => void; close?: (name: string) => void }): void {
  const parser = new SaxesParser({ xmlns: false });
  parser.on('error', (e) => {
    throw new Unreadable(`malformed XML (${e.message.split('\n')[0]})`);
  });
  if (handlers.open) parser.on('opentag', (tag) => handlers.open!(local(tag.name), tag.attributes as Record<string, string>));
  if (handlers.text) parser.on('text', handlers.text);
  if (handlers.close) parser.on('closetag', (tag) => handlers.close!(local(tag.name)));
  parser.write(xml).close();
}

const local = (name: string): string => name.slice(name.indexOf(':') + 1);

/** Where the first sheet is: xl/workbook.xml's first <sheet>, through xl/_rels/workbook.xml.rels. */
function firstSheet(zip: Buffer, entries: Map<string, ZipEntry>): ZipEntry {
  const workbook = entries.get('xl/workbook.xml');
  const rels = entries.get('xl/_rels/workbook.xml.rels');
  if (!workbook || !rels) throw new Unreadable('no xl/workbook.xml (not an .xlsx workbook)');
  let rid: string | undefined;
  parseWhole(text(zip, workbook, 16 << 20), {
    open: (name, attrs) => {
      if (name === 'sheet' && rid === undefined) rid = Object.entries(attrs).find(([k]) => local(k) === 'id' && k !== 'sheetId')?.[1];
    },
  });
  let target: string | undefined;
  parseWhole(text(zip, rels, 16 << 20), {
    open: (name, attrs) => {
      if (name === 'Relationship' && attrs['Id'] === rid) target = attrs['Target'];
    },
  });
  if (!target) throw new Unreadable('the workbook names no sheet');
  const path = target.startsWith('/') ? target.slice(1) : `xl/${target}`.replace(/\/[^/]+\/\.\.\//g, '/');
  const sheet = entries.get(path);
  if (!sheet) throw new Unreadable(`its first sheet (${path}) is missing`);
  return sheet;
}

/** The shared strings, in order: each <si>'s text (its runs joined, phonetic runs left out). */
function sharedStrings(zip: Buffer, entries: Map<string, ZipEntry>): string[] {
  const entry = entries.get('xl/sharedStrings.xml');
  if (!entry) return [];
  const strings: string[] = [];
  let current: string[] | undefined;
  let inT = false;
  let phonetic = 0;
  parseWhole(text(zip, entry, MAX_SHARED_STRINGS_BYTES), {
    open: (name) => {
      if (name === 'si') current = [];
      else if (name === 'rPh') phonetic++;
      else if (name === 't' && phonetic === 0) inT = true;
    },
    text: (t) => {
      if (inT && current) current.push(t);
    },
    close: (name) => {
      if (name === 't') inT = false;
      else if (name === 'rPh') phonetic--;
      else if (name === 'si' && current) {
        strings.push(current.join(''));
        current = undefined;
      }
    },
  });
  return strings;
}

/** "C12" → 2 (the column, from 0). */
function columnOf(ref: string | undefined): number | undefined {
  const m = /^([A-Z]{1,3})\d*$/.exec(ref ?? '');
  if (!m) return undefined;
  let n = 0;
  for (const ch of m[1]!) n = n * 26 + (ch.charCodeAt(0) - 64);
  return n - 1;
}

/**
 * Every non-blank row of the first sheet. `digests` as for a CSV: a digest of every 16 KB of
 * the file, recorded or compared, so that a second pass notices a changed file.
 */
export async function* workbookRecords(path: string, size: number, digests?: ChunkDigests): AsyncGenerator<WorkbookRecord> {
  if (size > MAX_WORKBOOK_BYTES) {
    throw new InputError(path, undefined, `is a workbook of ${Math.round(size / 1_000_000)} MB, more than the ${MAX_WORKBOOK_BYTES / 1024 / 1024} MB read: give the results CSV instead`);
  }
  const zip = (await readFile(path)).subarray(0, size);
  const digest = chunkDigester(digests);
  for (let at = 0; digests && at < zip.length; at += DIGEST_CHUNK) digest(zip.subarray(at, at + DIGEST_CHUNK));
  let sheet: ZipEntry;
  let strings: string[];
  try {
    const entries = zipEntries(zip);
    sheet = firstSheet(zip, entries);
    strings = sharedStrings(zip, entries);
  } catch (error) {
    if (error instanceof Unreadable) throw new InputError(path, undefined, `cannot be read as an .xlsx workbook (${error.message}): save it again from Excel, or give the results CSV`);
    throw error;
  }
  yield* sheetRows(path, zip, sheet, strings);
}

async function* sheetRows(path: string, zip: Buffer, sheet: ZipEntry, strings: readonly string[]): AsyncGenerator<WorkbookRecord> {
  const ready: WorkbookRecord[] = [];
  let failure: Error | undefined;
  const parser = new SaxesParser({ xmlns: false, position: true });
  let row: { line: number; fields: string[]; chars: number } | undefined;
  let rowsSeen = 0;
  let lastRow = 0;
  let cell: { column: number; type: string; value: string[]; formula: string[] | undefined; inline: boolean } | undefined;
  let collect: string[] | undefined;
  const refuse = (where: string | undefined, problem: string): void => {
    failure ??= new InputError(path, where, problem);
  };
  parser.on('error', (e) => {
    failure ??= new InputError(path, undefined, `cannot be read as an .xlsx workbook (its sheet is malformed XML: ${e.message.split('\n')[0]}): save it again from Excel, or give the results CSV`);
  });
  parser.on('opentag', (tag) => {
    const name = local(tag.name);
    const attrs = tag.attributes as Record<string, string>;
    if (name === 'row') {
      const r = Number(attrs['r']);
      lastRow = Number.isInteger(r) && r > lastRow ? r : lastRow + 1;
      row = { line: lastRow, fields: [], chars: 0 };
    } else if (name === 'c' && row) {
      cell = { column: columnOf(attrs['r']) ?? row.fields.length, type: attrs['t'] ?? 'n', value: [], formula: undefined, inline: false };
    } else if (cell && name === 'v') collect = cell.value;
    else if (cell && name === 'f') collect = cell.formula = [];
    else if (cell && name === 'is') cell.inline = true;
    else if (cell?.inline && name === 't') collect = cell.value;
    else if (cell?.inline && name === 'rPh') collect = undefined;
  });
  parser.on('text', (t) => {
    if (!collect || !row) return;
    row.chars += t.length;
    if (row.chars > MAX_ROW_CHARS) refuse(`row ${row.line}`, `a row longer than ${MAX_ROW_CHARS.toLocaleString('en')} characters: this is not a results file, or a cell was pasted into by mistake`);
    else collect.push(t);
  });
  parser.on('closetag', (tag) => {
    const name = local(tag.name);
    if (name === 'v' || name === 'f' || name === 't') collect = undefined;
    else if (name === 'c' && cell && row) {
      const raw = cell.value.join('');
      let value: string;
      if (cell.formula && cell.formula.length > 0) value = `=${cell.formula.join('')}`;
      else if (cell.type === 's') value = strings[Number(raw)] ?? '';
      else if (cell.type === 'b') value = raw === '1' ? 'TRUE' : 'FALSE';
      else value = raw;
      while (row.fields.length < cell.column) row.fields.push('');
      row.fields[cell.column] = value.trim();
      cell = undefined;
    } else if (name === 'row' && row) {
      if (row.fields.some((f) => f !== '')) {
        if (++rowsSeen > MAX_WORKBOOK_ROWS) refuse(`row ${row.line}`, `has more than ${MAX_WORKBOOK_ROWS.toLocaleString('en')} rows: give the results CSV instead`);
        else ready.push({ line: row.line, fields: row.fields });
      }
      row = undefined;
    }
  });

  let data: Readable;
  try {
    data = sheet.method === 0 ? Readable.from([stored(zip, sheet)]) : Readable.from([stored(zip, sheet)]).pipe(createInflateRaw());
  } catch (error) {
    if (error instanceof Unreadable) throw new InputError(path, undefined, `cannot be read as an .xlsx workbook (${error.message}): save it again from Excel, or give the results CSV`);
    throw error;
  }
  let inflated = 0;
  // A character may straddle two chunks.
  const utf8 = new StringDecoder('utf8');
  try {
    for await (const chunk of data) {
      inflated += (chunk as Buffer).length;
      if (inflated > MAX_SHEET_BYTES) refuse(undefined, `its sheet inflates past ${MAX_SHEET_BYTES / 1024 / 1024} MB: not a results workbook; give the results CSV`);
      if (!failure) parser.write(utf8.write(chunk as Buffer));
      if (failure) throw failure;
      while (ready.length > 0) yield ready.shift()!;
    }
    if (!failure) parser.write(utf8.end()).close();
  } catch (error) {
    if (error instanceof InputError) throw error;
    if (failure) throw failure;
    throw new InputError(path, undefined, `cannot be read as an .xlsx workbook (its sheet cannot be inflated): save it again from Excel, or give the results CSV`);
  } finally {
    data.destroy();
  }
  if (failure) throw failure;
  while (ready.length > 0) yield ready.shift()!;
}
