/**
 * The tokens a command after the rollout is given (`revoke`, and the commands that follow it):
 * a CSV (or workbook) with a serialNumber column; a results file of `run`, of which only the
 * CREATED and EXISTING rows name a token the run gave its user (the other rows name serials
 * that may be someone else's); or a seed file, read for its serials only. Every row is kept,
 * with why it is not acted on when it is not.
 */
import { InputError } from '../../input/input-error.js';
import { normaliseHeader, openCsv, readCsvRecords, RESULT_COLUMNS, type CsvFile } from '../../input/reader.js';
import { checkSerial } from '../../input/validate.js';
import { UUID_RE } from '../../ids.js';
import { readSeedSerials } from '../../seeds/serials.js';
import { readHead } from '../../seeds/read-seeds.js';
import { looksLikeXml } from '../../seeds/xml.js';

export type TokenListKind = 'serials' | 'results' | 'seeds';

export interface TokenRow {
  readonly row: number;
  readonly line: number;
  readonly serialNumber: string;
  /** A results file: the user the run gave the token to; a serials file with a userID column: that user. */
  readonly userID?: string;
  /** A results file: the run's outcome for the row. */
  readonly runOutcome?: string;
  /** The row is not valid: INVALID with this code and message. */
  readonly problem?: { readonly code: string; readonly message: string };
  /** The row is valid but names no token to act on (a results row the run did not finish). */
  readonly skip?: string;
  /** Other columns, carried through to the results. */
  readonly extras: readonly string[];
}

export interface TokenList {
  readonly kind: TokenListKind;
  readonly path: string;
  readonly rows: readonly TokenRow[];
  readonly extraNames: readonly string[];
  /** The CSV as read (its dialect, for --csv-dialect input); none for a seed file. */
  readonly file?: CsvFile;
}

const SERIAL_NAMES = new Set(['serialnumber', 'serial', 'serialno']);
const SECRET_NAMES = new Set(['secret', 'secretkey', 'seed']);
const RESULT_NAMES = ['row', 'userID', 'serialNumber', 'outcome'];
/** Outcomes of `run` whose row names a token the run's user holds. */
const HELD = new Set(['CREATED', 'EXISTING']);

function firstBytes(path: string): Buffer {
  try {
    return readHead(path, 4096);
  } catch {
    // openCsv says what is wrong with it.
    return Buffer.alloc(0);
  }
}

/** Reads the whole list; file-level problems throw (exit 2) before anything is sent. */
export async function readTokenList(path: string, what: string, options: { readonly users?: boolean } = {}): Promise<TokenList> {
  const expected = `a header row with ${options.users ? 'userID and serialNumber columns' : 'a serialNumber column'} (${what})`;
  const noSeeds = (): never => {
    throw new InputError(path, undefined, `is a seed file: ${what} is a CSV with userID and serialNumber columns, or a results file of oath-bulk run`);
  };
  if (looksLikeXml(firstBytes(path))) return options.users ? noSeeds() : seedList(path);
  const file = await openCsv(path, expected, { workbook: true });
  const names = file.header.map(normaliseHeader);
  if (names.some((n) => SECRET_NAMES.has(n))) return options.users ? noSeeds() : seedList(path);
  const where = `line ${file.headerLine}`;
  const isResults = RESULT_NAMES.every((n) => file.header.includes(n));
  const serialAt = isResults ? file.header.indexOf('serialNumber') : names.findIndex((n) => SERIAL_NAMES.has(n));
  if (serialAt < 0) throw new InputError(path, where, `no serialNumber column (the header has ${file.header.slice(0, 10).map((h) => JSON.stringify(h.slice(0, 30))).join(', ')}): name it serialNumber, or give a results file of oath-bulk run, or the seed file of the box`);
  const userAt = isResults ? file.header.indexOf('userID') : names.findIndex((n) => n === 'userid');
  if (options.users && userAt < 0) throw new InputError(path, where, `no userID column: ${what} names the user of each token (a userID column, the PingOne user id), or give a results file of oath-bulk run`);
  const outcomeAt = isResults ? file.header.indexOf('outcome') : -1;
  const own = new Set([serialAt, userAt, outcomeAt]);
  // A results file's own columns are not carried (the command writes its own); a list's other columns are.
  const resultOwn = new Set<string>([...RESULT_COLUMNS, 'activation', 'runOutcome']);
  const extras = file.header.map((name, index) => ({ name, index })).filter((e) => !own.has(e.index) && !(isResults && (resultOwn.has(e.name) || e.name.startsWith('input.'))) && e.name !== '');
  const rows: TokenRow[] = [];
  const seen = new Map<string, number>();
  for await (const raw of readCsvRecords(file)) {
    const serialNumber = (raw.fields[serialAt] ?? '').trim();
    const userID = userAt >= 0 ? (raw.fields[userAt] ?? '').trim() : undefined;
    const runOutcome = outcomeAt >= 0 ? (raw.fields[outcomeAt] ?? '').trim() : undefined;
    const base = { row: raw.row, line: raw.line, serialNumber, userID, runOutcome, extras: extras.map((e) => raw.fields[e.index] ?? '') };
    if (isResults && !HELD.has(runOutcome ?? '')) {
      rows.push({ ...base, skip: `the run's outcome for this row was ${runOutcome || 'empty'}: the run gave this user no token here, so the serial may be someone else's; not acted on` });
      continue;
    }
    rows.push(checked(base, seen, options.users === true || (userAt >= 0 && isResults)));
  }
  if (rows.length === 0) throw new InputError(path, undefined, `has a header but no rows: expected ${expected}`);
  // A list's own column named as one of the results' (an inventory file's deviceId, message …) is
  // carried as input.<name>, as run does: the results never have a column twice.
  const extraNames = extras.map((e) => ((RESULT_COLUMNS as readonly string[]).includes(e.name) ? `input.${e.name}` : e.name));
  return { kind: isResults ? 'results' : 'serials', path, rows, extraNames, file };
}

async function seedList(path: string): Promise<TokenList> {
  const seen = new Map<string, number>();
  const rows = (await readSeedSerials(path)).map((s) => checked({ ...s, extras: [] }, seen, false));
  return { kind: 'seeds', path, rows, extraNames: [] };
}

function checked(row: TokenRow, seen: Map<string, number>, needUser: boolean): TokenRow {
  const serialProblem = checkSerial(row.serialNumber);
  if (serialProblem) return { ...row, problem: { code: serialProblem.code, message: `row ${row.row} (line ${row.line}): ${serialProblem.message}` } };
  if (needUser && !UUID_RE.test(row.userID ?? '')) return { ...row, problem: { code: 'USER_ID_INVALID', message: `row ${row.row} (line ${row.line}): userID ${JSON.stringify((row.userID ?? '').slice(0, 60))} is not a user id` } };
  const earlier = seen.get(row.serialNumber);
  if (earlier !== undefined) return { ...row, problem: { code: 'DUPLICATE_ROW', message: `row ${row.row} (line ${row.line}): serial ${row.serialNumber} is named again (first in row ${earlier}); it is acted on once, there` } };
  seen.set(row.serialNumber, row.row);
  return row;
}
