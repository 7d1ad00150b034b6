/**
 * Streams a shipment CSV: detects encoding (UTF-8 with or without BOM, UTF-16 with BOM,
 * i.e. Excel's "Unicode text") and separator (comma, semicolon, tab), reads the header,
 * and yields one record at a time with its data-row number and file line, so that memory
 * stays flat however long the file is (SPEC "Input").
 */
import { open, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse, CsvError } from 'csv-parse';
import { InputError, show } from './input-error.js';
import { chunkDigester, DIGEST_CHUNK, type ChunkDigests } from './chunk-digests.js';
import { workbookRecords } from './workbook-rows.js';

/** `xlsx`: a workbook's first sheet (verify and rollback take the results workbook). */
export type Encoding = 'utf-8' | 'utf-16le' | 'utf-16be' | 'xlsx';
export type Delimiter = ',' | ';' | '\t';

/** Which input column plays which part. `userID` or one of `email`/`username` names the user. */
export interface Columns {
  readonly userID?: number;
  readonly email?: number;
  readonly username?: number;
  /** Microsoft Entra's `upn`: a username, else an email (README "Who a row names"). */
  readonly upn?: number;
  readonly serialNumber: number;
}

export interface InputLayout {
  readonly path: string;
  readonly name: string;
  readonly encoding: Encoding;
  readonly delimiter: Delimiter;
  /** The file began with a byte order mark (Excel's "CSV UTF-8" does). */
  readonly bom: boolean;
  readonly header: readonly string[];
  readonly columns: Columns;
  /** Other columns, carried through to the results under these names. */
  readonly extras: ReadonlyArray<{ readonly name: string; readonly index: number }>;
  /**
   * The file carries token seeds too (a secret column, as in the Entra layout): it is its own
   * seed file, and that column is never read as an assignment nor carried anywhere.
   */
  readonly carriesSeeds: boolean;
  /** Where the seeds are, in such a file: only ever looked at to catch swapped columns. */
  readonly secretColumn?: number;
  /** The file as it was checked: every pass reads these bytes only, and a change is noticed. */
  readonly fingerprint: Fingerprint;
}

export interface Fingerprint {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  readonly dev: number;
}

function fingerprintOf(info: { size: number; mtimeMs: number; ino: number; dev: number }): Fingerprint {
  return { size: info.size, mtimeMs: info.mtimeMs, ino: info.ino, dev: info.dev };
}

/** Cells beyond the header's width that hold something: a value with the separator unquoted. */
export function tooManyFields(fields: readonly string[], width: number): boolean {
  return fields.length > width && fields.slice(width).some((f) => f !== '');
}

/** Whether the file is no longer the one that was checked (appended to, edited, replaced). */
export async function inputChanged(layout: InputLayout): Promise<boolean> {
  try {
    const now = fingerprintOf(await stat(layout.path));
    const was = layout.fingerprint;
    return now.size !== was.size || now.mtimeMs !== was.mtimeMs || now.ino !== was.ino || now.dev !== was.dev;
  } catch {
    return true;
  }
}

export interface RawRow {
  /** 1-based data row number (blank lines are not rows). */
  readonly row: number;
  /** File line on which the record starts. */
  readonly line: number;
  readonly fields: readonly string[];
}

/** Column names that the results CSV uses itself; an input column of that name is renamed `input.<name>`. */
export const RESULT_COLUMNS = [
  'row', 'userID', 'serialNumber', 'outcome', 'deviceId', 'deviceStatus', 'httpStatus',
  'errorCode', 'errorDetail', 'message', 'attempts', 'durationMs',
] as const;

/** The renamed result columns of a results file given as input (verify, rollback): not carried through again. */
export const RENAMED_RESULT_COLUMNS: ReadonlySet<string> = new Set(RESULT_COLUMNS.map((c) => `input.${c}`));

const ALIASES: Record<string, keyof Columns> = {
  userid: 'userID',
  serialnumber: 'serialNumber',
  serial: 'serialNumber',
  email: 'email',
  emailaddress: 'email',
  username: 'username',
  upn: 'upn',
};

/** Seed columns (seed-csv.ts's names for the secret): the file then carries its own seeds. */
const SECRET_COLUMNS = new Set(['secret', 'secretkey', 'seed']);
/** Any other column whose name says it holds secrets is never carried, nor shown. */
const SECRET_NAME = /secret|seed|passphrase|password/;
/** A cell that could be a seed (hex or base32 of 8 bytes or more): never shown in a message. */
const SEED_LIKE = /^(?:[0-9a-fA-F]{16,}|[A-Za-z2-7]{16,}=*)$/;

const MAX_RECORD_BYTES = 1_000_000;
const SNIFF_BYTES = 64 * 1024;

/** A header cell as the column names are matched: lower case, without spaces, `_`, `.` or `-`. */
export function normaliseHeader(name: string): string {
  return name.toLowerCase().replace(/[\s_.-]/g, '');
}

const ZIP = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

const MAGIC: Array<[Buffer, string]> = [
  [Buffer.from('%PDF-'), 'is a PDF document, not a CSV file: export the shipment list as CSV'],
  [Buffer.from([0x89, 0x50, 0x4e, 0x47]), 'is a PNG image, not a CSV file'],
  [Buffer.from([0xff, 0xd8, 0xff]), 'is a JPEG image, not a CSV file'],
  [Buffer.from('GIF8'), 'is a GIF image, not a CSV file'],
  [Buffer.from([0x50, 0x4b, 0x03, 0x04]), 'is a ZIP archive (an .xlsx workbook?), not a CSV file: in Excel use Save As → "CSV UTF-8"'],
  [Buffer.from([0xd0, 0xcf, 0x11, 0xe0]), 'is an old Excel/Office document, not a CSV file: in Excel use Save As → "CSV UTF-8"'],
];

/** A CSV file opened and checked: its encoding, separator and header. */
export interface CsvFile {
  readonly path: string;
  readonly name: string;
  readonly encoding: Encoding;
  readonly delimiter: Delimiter;
  readonly bom: boolean;
  readonly header: readonly string[];
  readonly headerLine: number;
  readonly fingerprint: Fingerprint;
}

/**
 * Opens a CSV of any kind (assignments, seeds): refuses binaries by their magic bytes,
 * detects UTF-8/UTF-16 and the separator, reads the header. `expected` says in messages what
 * the header should be.
 */
export async function openCsv(path: string, expected = 'a header row "userID,serialNumber" and one row per token', options: { workbook?: boolean } = {}): Promise<CsvFile> {
  const name = basename(path);
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(path, undefined, code === 'ENOENT' ? 'no such file: check the path' : `cannot read it (${code})`);
  }
  if (info.isDirectory()) throw new InputError(path, undefined, 'is a directory: give the path of the CSV file');
  if (!info.isFile()) throw new InputError(path, undefined, 'is not a regular file: give the path of the CSV file');
  if (info.size === 0) throw new InputError(path, undefined, `is empty: expected ${expected}`);

  const head = Buffer.alloc(Math.min(SNIFF_BYTES, info.size));
  const handle = await open(path, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new InputError(path, undefined, `cannot read it (${error.code})`);
  });
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  const fingerprint = fingerprintOf(info);
  if (options.workbook && head.subarray(0, 4).equals(ZIP)) {
    for await (const record of workbookRecords(path, fingerprint.size)) {
      return { path, name, encoding: 'xlsx', delimiter: ',', bom: false, header: record.fields, headerLine: record.line, fingerprint };
    }
    throw new InputError(path, undefined, `holds no rows in its first sheet: expected ${expected}`);
  }
  for (const [magic, problem] of MAGIC) {
    if (head.subarray(0, magic.length).equals(magic)) throw new InputError(path, undefined, problem);
  }
  let encoding: Encoding = 'utf-8';
  if (head[0] === 0xff && head[1] === 0xfe) encoding = 'utf-16le';
  else if (head[0] === 0xfe && head[1] === 0xff) encoding = 'utf-16be';

  const sniffText = decodeSniff(head, encoding, path);
  const delimiter = detectDelimiter(sniffText);
  const bom = encoding !== 'utf-8' || (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf);

  for await (const record of parseRecords(path, encoding, delimiter, fingerprint.size)) {
    return { path, name, encoding, delimiter, bom, header: record.fields.map((f) => f.trim()), headerLine: record.line, fingerprint };
  }
  throw new InputError(path, undefined, `holds only blank lines: expected ${expected}`);
}

/** Every data record after the header of a CSV file, numbered (only the bytes that were checked). */
export async function* readCsvRecords(file: Pick<CsvFile, 'path' | 'encoding' | 'delimiter' | 'fingerprint'>, digests?: ChunkDigests): AsyncGenerator<RawRow> {
  let row = 0;
  let first = true;
  for await (const record of parseRecords(file.path, file.encoding, file.delimiter, file.fingerprint.size, digests)) {
    if (first) {
      first = false;
      continue;
    }
    row++;
    yield { row, line: record.line, fields: record.fields };
  }
}

/** Opens and checks the file, and reads its header. `workbook`: an .xlsx is read too (its first sheet). */
export async function openInput(path: string, options: { workbook?: boolean } = {}): Promise<InputLayout> {
  const { name, encoding, delimiter, bom, header, headerLine, fingerprint } = await openCsv(path, undefined, options);
  const where = `line ${headerLine}`;

  const found: Partial<Record<keyof Columns, number>> = {};
  const extras: Array<{ name: string; index: number }> = [];
  let carriesSeeds = false;
  let secretColumn: number | undefined;
  const lastNamed = header.reduce((last, cell, index) => (cell === '' ? last : index), -1);
  header.forEach((cell, index) => {
    if (SECRET_COLUMNS.has(normaliseHeader(cell))) {
      carriesSeeds = true;
      secretColumn ??= index;
      return;
    }
    if (SECRET_NAME.test(normaliseHeader(cell))) return;
    const role = ALIASES[normaliseHeader(cell)];
    if (role === undefined) {
      if (index > lastNamed) return; // trailing separators on the header line
      const name = cell === '' ? `column${index + 1}` : (RESULT_COLUMNS as readonly string[]).includes(cell) ? `input.${cell}` : cell;
      extras.push({ name, index });
      return;
    }
    if (found[role] !== undefined) {
      throw new InputError(path, where, `the header names the ${role} column twice (${show(header[found[role]!]!)} and ${show(cell)}): keep one`);
    }
    found[role] = index;
    // The results' userID column holds the resolved id: keep the name the row was given by.
    if (role === 'email' || role === 'username' || role === 'upn') extras.push({ name: cell, index });
  });

  const looksLikeData = header.some((cell) => /^[0-9a-f]{8}-[0-9a-f]{4}-/i.test(cell) || /^\d{6,}$/.test(cell));
  const hint = looksLikeData ? ' The first line looks like data: add a header row "userID,serialNumber".' : '';
  const has = `the header has ${header.map((h) => (SEED_LIKE.test(h) ? '(a cell not shown)' : show(h, 30))).join(', ')}`;
  if (found.serialNumber === undefined) {
    throw new InputError(path, where, `no serialNumber column (${has}): name it serialNumber (or serial, serial_number).${hint}`);
  }
  if (found.userID === undefined && found.email === undefined && found.username === undefined && found.upn === undefined) {
    throw new InputError(path, where, `no userID column (${has}): name it userID (or user_id; email or username also work).${hint}`);
  }
  return {
    path,
    name,
    encoding,
    delimiter,
    bom,
    header,
    columns: found as Columns,
    extras,
    carriesSeeds,
    secretColumn,
    fingerprint,
  };
}

function decodeSniff(head: Buffer, encoding: Encoding, path: string): string {
  // The sniff may end inside a multi-byte character: decode leniently, then check for NULs.
  const text = new TextDecoder(encoding).decode(head);
  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    const line = text.slice(0, nul).split('\n').length;
    throw new InputError(path, `line ${line}`, 'contains a NUL byte: this is a binary file, not a CSV text file');
  }
  return text;
}

/** The separator that splits the first line most, counting only outside quotes. */
export function detectDelimiter(text: string): Delimiter {
  const counts: Record<Delimiter, number> = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === '\n' || ch === '\r')) break;
    else if (!quoted && (ch === ',' || ch === ';' || ch === '\t')) counts[ch]++;
  }
  const best = (Object.keys(counts) as Delimiter[]).sort((a, b) => counts[b] - counts[a])[0]!;
  return counts[best] > 0 ? best : ',';
}

async function* decoded(path: string, encoding: Exclude<Encoding, 'xlsx'>, size?: number, digests?: ChunkDigests): AsyncGenerator<string> {
  const digest = chunkDigester(digests);
  const decoder = new TextDecoder(encoding, { fatal: true });
  let line = 1;
  // Only the bytes that were checked: rows appended later are never read.
  const range = size === undefined ? {} : { end: Math.max(0, size - 1) };
  for await (const chunk of createReadStream(path, { highWaterMark: DIGEST_CHUNK, ...range })) {
    digest(chunk as Buffer);
    let text: string;
    try {
      text = decoder.decode(chunk as Buffer, { stream: true });
    } catch {
      // Find the line of the first bad byte: a lenient decode marks it with U+FFFD.
      const lenient = new TextDecoder(encoding).decode(chunk as Buffer);
      const at = lenient.indexOf('\uFFFD');
      const badLine = line + (at < 0 ? 0 : (lenient.slice(0, at).match(/\n/g)?.length ?? 0));
      throw new InputError(path, `line ${badLine}`, `is not valid ${encoding.toUpperCase()} text: save the file as "CSV UTF-8"`);
    }
    if (text.includes('\u0000')) {
      const nul = text.indexOf('\u0000');
      throw new InputError(path, `line ${line + (text.slice(0, nul).match(/\n/g)?.length ?? 0)}`, 'contains a NUL byte: this is a binary file, not a CSV text file');
    }
    line += text.match(/\n/g)?.length ?? 0;
    yield text;
  }
  try {
    const rest = decoder.decode();
    if (rest) yield rest;
  } catch {
    throw new InputError(path, `line ${line}`, `ends inside a ${encoding.toUpperCase()} character: the file is cut short or not text`);
  }
}

interface ParsedRecord {
  readonly line: number;
  readonly fields: string[];
}

async function* parseRecords(path: string, encoding: Encoding, delimiter: Delimiter, size?: number, digests?: ChunkDigests): AsyncGenerator<ParsedRecord> {
  if (encoding === 'xlsx') {
    yield* workbookRecords(path, size ?? (await stat(path)).size, digests);
    return;
  }
  const parser = parse({
    delimiter,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    trim: true,
    max_record_size: MAX_RECORD_BYTES,
    info: true,
  });
  const source = Readable.from(decoded(path, encoding, size, digests));
  const piping = pipeline(source, parser).catch(() => undefined);
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number; raw?: string } }>) {
      const fields = item.record.map((f) => f.trim());
      if (fields.every((f) => f === '')) continue; // ",,," rows that spreadsheets leave behind
      yield { line: item.info.lines, fields };
    }
  } catch (error) {
    throw asInputError(error, path);
  } finally {
    source.destroy();
    await piping;
  }
}

function asInputError(error: unknown, path: string): unknown {
  if (error instanceof InputError) return error;
  if (error instanceof CsvError) {
    const where = (error as CsvError & { lines?: number }).lines ? `line ${(error as CsvError & { lines?: number }).lines}` : undefined;
    switch (error.code) {
      case 'CSV_QUOTE_NOT_CLOSED':
        return new InputError(path, where, 'a quoted field is never closed: look for a stray " (quote) on this line or before it');
      case 'CSV_MAX_RECORD_SIZE':
        return new InputError(path, where, `a row is longer than ${MAX_RECORD_BYTES / 1_000_000} MB: this is not a shipment list, or a quote is unbalanced`);
      default:
        return new InputError(path, where, `cannot be read as CSV (${error.code}): ${error.message.split(':')[0]}`);
    }
  }
  return error;
}

/** Every data record after the header, numbered. */
export function readRows(layout: InputLayout, digests?: ChunkDigests): AsyncGenerator<RawRow> {
  return readCsvRecords(layout, digests);
}
