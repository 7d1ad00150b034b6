/**
 * Row rules (SPEC "Input"). A row that breaks one becomes INVALID with a stable code and a
 * message that says what was expected and what was got; nothing is sent for it.
 */
import { UUID_RE } from '../ids.js';
import { show } from './input-error.js';
import { tooManyFields, type InputLayout, type RawRow } from './reader.js';

export interface RowProblem {
  readonly code: string;
  readonly message: string;
}

/** How the row names its user. */
export type UserRef =
  | { readonly kind: 'id'; readonly value: string }
  | { readonly kind: 'email' | 'username' | 'upn'; readonly value: string };

export interface CheckedRow {
  readonly row: number;
  readonly line: number;
  /** As written in the file (trimmed), for the results. */
  readonly userText: string;
  readonly user?: UserRef;
  readonly serialNumber: string;
  readonly extras: readonly string[];
  readonly problem?: RowProblem;
}

/** PingOne's serials: 1–50 ASCII letters and digits. */
export const SERIAL_RE = /^[A-Za-z0-9]{1,50}$/;
/** What Excel makes of a long digit string: 2.30873E+13. */
export const SCIENTIFIC_RE = /^\d+(?:[.,]\d+)?E\+?\d+$/i;

/**
 * A cell that looks like a seed of 128 bits or more, however it is written: 32+ hex digits,
 * 26+ base32 characters, and in a base64 file 22+ base64 characters; a `0x` prefix, grouping
 * spaces, colons and dashes, and padding do not hide it.
 */
export function seedLike(cell: string, base64 = false): boolean {
  const c = cell.trim().replace(/^0x/i, '').replace(/[\s:-]/g, '').replace(/=+$/, '');
  return /^[0-9a-fA-F]{32,}$/.test(c) || /^[A-Za-z2-7]{26,}$/.test(c) || (base64 && /^[A-Za-z0-9+/]{22,}$/.test(c));
}

/**
 * A seed-file row whose columns are swapped: its serial cell looks like a seed while its secret
 * holds fewer than 128 bits (SEEDS.md "Integrity"). `secretBits`: what the secret cell decodes to.
 */
export function columnsSwapped(serialCell: string, secretBits: number, base64 = false): boolean {
  return seedLike(serialCell, base64) && secretBits < 128;
}
const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;

export function checkSerial(serial: string): RowProblem | undefined {
  if (serial === '') return { code: 'SERIAL_MISSING', message: 'expected a serial number, got an empty cell' };
  if (SCIENTIFIC_RE.test(serial)) {
    return {
      code: 'SERIAL_MANGLED',
      message: `expected the token's serial number, got ${show(serial)}: a spreadsheet turned it into a number; format the column as Text and export again`,
    };
  }
  if (serial.length > 50) return { code: 'SERIAL_TOO_LONG', message: `expected at most 50 letters and digits, got ${serial.length} characters (${show(serial)})` };
  if (!SERIAL_RE.test(serial)) {
    const bad = [...serial].find((ch) => !/[A-Za-z0-9]/.test(ch))!;
    return { code: 'SERIAL_INVALID', message: `expected only ASCII letters and digits, got ${show(serial)} (contains ${show(bad)})` };
  }
  return undefined;
}

function checkUser(layout: InputLayout, fields: readonly string[]): { text: string; user?: UserRef; problem?: RowProblem } {
  const { columns } = layout;
  const at = (index: number | undefined): string => (index === undefined ? '' : (fields[index] ?? ''));
  const id = at(columns.userID);
  if (id !== '' || (columns.email === undefined && columns.username === undefined && columns.upn === undefined)) {
    if (id === '') return { text: id, problem: { code: 'USER_ID_MISSING', message: 'expected a userID (a UUID), got an empty cell' } };
    if (!UUID_RE.test(id)) {
      return { text: id, problem: { code: 'USER_ID_INVALID', message: `expected a userID such as 5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93, got ${show(id)}` } };
    }
    return { text: id, user: { kind: 'id', value: id.toLowerCase() } };
  }
  const email = at(columns.email);
  if (email !== '') {
    if (!EMAIL_RE.test(email) || email.length > 254) return { text: email, problem: { code: 'EMAIL_INVALID', message: `expected an email address, got ${show(email)}` } };
    return { text: email, user: { kind: 'email', value: email } };
  }
  const username = at(columns.username);
  if (username !== '') {
    if (username.length > 128 || /[\u0000-\u001f]/.test(username)) {
      return { text: username, problem: { code: 'USERNAME_INVALID', message: `expected a username, got ${show(username)}` } };
    }
    return { text: username, user: { kind: 'username', value: username } };
  }
  const upn = at(columns.upn);
  if (upn !== '') {
    if (upn.length > 256 || /[\u0000-\u001f\s]/.test(upn)) return { text: upn, problem: { code: 'UPN_INVALID', message: `expected a user principal name (a username or an email), got ${show(upn)}` } };
    return { text: upn, user: { kind: 'upn', value: upn } };
  }
  return { text: '', problem: { code: 'USER_ID_MISSING', message: 'expected a userID, email or username, got empty cells' } };
}

export function checkRow(layout: InputLayout, raw: RawRow): CheckedRow {
  const { fields } = raw;
  const serialNumber = fields[layout.columns.serialNumber] ?? '';
  const extras = layout.extras.map((e) => fields[e.index] ?? '');
  const user = checkUser(layout, fields);
  const base = { row: raw.row, line: raw.line, userText: user.text, serialNumber, extras };

  const width = layout.header.length;
  // A row of a file that carries seeds with a cell missing (a seed shifts into another column),
  // or with a seed under its serial column: nothing of the row is kept or shown.
  const hidden = (problem: RowProblem): CheckedRow => ({ row: raw.row, line: raw.line, userText: '', serialNumber: '', extras: extras.map(() => ''), problem });
  if (layout.carriesSeeds && (fields.length < width || tooManyFields(fields, width))) {
    return hidden({ code: 'FIELD_COUNT', message: `expected ${width} fields as in the header, got ${fields.length}: a cell is missing or a value holds the separator unquoted (the cells are not shown: this file carries seeds)` });
  }
  // The secret cell's length bounds its bits from above: 6 a character at most.
  if (layout.secretColumn !== undefined && columnsSwapped(serialNumber, (fields[layout.secretColumn] ?? '').replace(/[\s=-]/g, '').length * 6)) {
    return hidden({ code: 'COLUMNS_SWAPPED', message: 'the serial cell looks like a seed (128 bits or more) and the secret cell is short: the columns are swapped in this row. Neither cell is shown; put the serial and the secret in their columns' });
  }
  if (tooManyFields(fields, width)) {
    return {
      ...base,
      problem: {
        code: 'TOO_MANY_FIELDS',
        message: `expected ${width} fields as in the header, got ${fields.length}: a value with a "${layout.delimiter === '\t' ? 'tab' : layout.delimiter}" in it must be quoted`,
      },
    };
  }
  if (user.problem) return { ...base, problem: user.problem };
  const serialProblem = checkSerial(serialNumber);
  // In a file that carries seeds, a serial cell that is not a serial may be a seed: not shown.
  if (serialProblem && layout.carriesSeeds && serialProblem.code !== 'SERIAL_MANGLED' && serialProblem.code !== 'SERIAL_MISSING') {
    return hidden({ code: serialProblem.code, message: `the serial cell (${serialNumber.length} characters, not shown: this file carries seeds) is not 1-50 ASCII letters and digits; correct it in the file` });
  }
  if (serialProblem) return { ...base, user: user.user, problem: serialProblem };
  return { ...base, user: user.user };
}

/** The identity used for conflict detection and the journal: case-insensitive. */
export function userKey(user: UserRef): string {
  return user.kind === 'id' ? user.value.toLowerCase() : `${user.kind}:${user.value.toLowerCase()}`;
}
