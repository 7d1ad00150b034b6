/**
 * Seed CSVs (SEEDS.md "Seed CSVs in the wild"): a header row naming at least the serial and
 * the secret; optional type, otpLength, counter, timeStep, hashAlgorithm, manufacturer, model.
 * The Microsoft Entra layout (`upn,serial number,secret key,time interval,manufacturer,model`)
 * is recognised from its header: base32 TOTP. The same spreadsheet hygiene as the assignment
 * file (BOM, `;`, UTF-16, leading zeros, `E+` serials) comes from the shared CSV reader.
 */
import { base32 } from '@scure/base';
import { InputError } from '../input/input-error.js';
import { normaliseHeader, openCsv, readCsvRecords, tooManyFields, type CsvFile, type RawRow } from '../input/reader.js';
import { columnsSwapped, SCIENTIFIC_RE, SERIAL_RE } from '../input/validate.js';
import { settleCopies, type SeedFileRead } from './copies.js';
import { Secret } from './secret.js';
import { checkToken, CounterError, hashFromText, parseCounter, shownCell, type SeedToken, type TokenType } from './token.js';

export type SecretEncoding = 'hex' | 'base32' | 'base64';

/** What the file leaves out: --type, --otp-length, --time-step, --secret-encoding. */
export interface SeedDefaults {
  readonly type?: TokenType;
  readonly otpLength?: number;
  readonly timeStep?: number;
  readonly secretEncoding?: SecretEncoding;
}

type Role = 'serial' | 'secret' | 'type' | 'otpLength' | 'counter' | 'timeStep' | 'hash' | 'manufacturer' | 'model' | 'upn';

const ALIASES: Record<string, Role> = {
  serial: 'serial',
  serialnumber: 'serial',
  serialno: 'serial',
  sn: 'serial',
  secret: 'secret',
  secretkey: 'secret',
  seed: 'secret',
  key: 'secret',
  type: 'type',
  tokentype: 'type',
  otplength: 'otpLength',
  otplen: 'otpLength',
  digits: 'otpLength',
  counter: 'counter',
  timestep: 'timeStep',
  timeinterval: 'timeStep',
  interval: 'timeStep',
  period: 'timeStep',
  hash: 'hash',
  hashalgorithm: 'hash',
  algorithm: 'hash',
  manufacturer: 'manufacturer',
  model: 'model',
  upn: 'upn',
};

const ENTRA_HEADER = ['upn', 'serial number', 'secret key', 'time interval', 'manufacturer', 'model'];

export interface SeedCsvLayout {
  readonly file: CsvFile;
  readonly columns: Partial<Record<Role, number>>;
  /** The Microsoft Entra upload layout: base32 TOTP, one user per token (upn). */
  readonly entra: boolean;
}

export async function openSeedCsv(path: string): Promise<SeedCsvLayout> {
  const file = await openCsv(path, 'a header row "serialNumber,secret" and one row per token');
  const normalised = file.header.map(normaliseHeader);
  const columns: Partial<Record<Role, number>> = {};
  normalised.forEach((h, i) => {
    const role = ALIASES[h];
    if (role !== undefined && columns[role] === undefined) columns[role] = i;
  });
  const where = `line ${file.headerLine}`;
  if (columns.serial === undefined || columns.secret === undefined) {
    // The cells are not shown: in a file without a header row, the first "header" is a seed.
    const known = file.header.filter((h) => ALIASES[normaliseHeader(h)] !== undefined);
    throw new InputError(
      path,
      where,
      `no ${columns.serial === undefined ? 'serial' : 'secret'} column (the first line has ${file.header.length} cells${known.length ? `; recognised: ${known.join(', ')}` : ', none a known column name'}): add a header row naming the columns serialNumber and secret (or serial, seed, secret key)`,
    );
  }
  const entra = ENTRA_HEADER.every((h, i) => (file.header[i] ?? '').trim().toLowerCase() === h);
  return { file, columns, entra };
}

/** Decodes a secret as written; undefined when it is not valid in that encoding. */
export function decodeSecret(text: string, encoding: SecretEncoding): Buffer | undefined {
  const t = text.trim();
  if (encoding === 'hex') return /^(?:[0-9a-fA-F]{2})+$/.test(t) ? Buffer.from(t, 'hex') : undefined;
  if (encoding === 'base64') {
    const c = t.replace(/\s+/g, '');
    return /^[A-Za-z0-9+/]+={0,2}$/.test(c) && c.length % 4 === 0 ? Buffer.from(c, 'base64') : undefined;
  }
  // base32: lenient about case, spaces, padding and trailing bits (Microsoft's own example has
  // non-zero trailing bits), strict about the alphabet.
  const c = t.toUpperCase().replace(/[\s-]/g, '').replace(/=+$/, '');
  if (!/^[A-Z2-7]+$/.test(c)) return undefined;
  const usable = Math.floor((c.length * 5) / 8);
  const padded = c + 'A'.repeat((8 - (c.length % 8)) % 8);
  try {
    return Buffer.from(base32.decode(padded)).subarray(0, usable);
  } catch {
    return undefined;
  }
}

function parseType(text: string | undefined): TokenType | undefined | 'bad' {
  if (text === undefined || text === '') return undefined;
  const t = text.trim().toUpperCase();
  return t === 'HOTP' || t === 'TOTP' ? t : 'bad';
}

function parseWhole(text: string | undefined): number | undefined | 'bad' {
  if (text === undefined || text.trim() === '') return undefined;
  return /^\d{1,15}$/.test(text.trim()) ? Number(text.trim()) : 'bad';
}

/** Every token of the file, checked; the secrets of INVALID tokens are wiped. */
export async function readSeedCsv(path: string, defaults: SeedDefaults = {}): Promise<SeedFileRead & { layout: SeedCsvLayout }> {
  const layout = await openSeedCsv(path);
  const tokens: SeedToken[] = [];
  for await (const raw of readCsvRecords(layout.file)) tokens.push(readRow(layout, raw, defaults));
  if (tokens.length === 0) throw new InputError(path, undefined, 'has a header but no tokens: one row per token');
  // Most rows with a seed under the serial and a short value under the secret: the header
  // itself names the columns the wrong way round. Nothing of the file is used.
  const swapped = tokens.filter((t) => t.problem?.code === 'COLUMNS_SWAPPED').length;
  if (swapped * 2 > tokens.length) {
    for (const t of tokens) t.secret?.wipe();
    throw new InputError(path, `line ${layout.file.headerLine}`, `${swapped} of ${tokens.length} rows have a seed-like value (128 bits or more) under the serial column and a short one under the secret column: the header names the columns the wrong way round. Nothing was sent and no cell is shown; swap the names in the header, then run again`);
  }
  return { layout, ...settleCopies(tokens, (t) => `line ${t.line}`) };
}

function readRow(layout: SeedCsvLayout, raw: RawRow, defaults: SeedDefaults): SeedToken {
  const { columns, entra } = layout;
  const at = (role: Role): string | undefined => {
    const i = columns[role];
    return i === undefined ? undefined : (raw.fields[i] ?? '').trim();
  };
  // A cell missing shifts the others: a seed could land in the serial column. Nothing of such a
  // row is read, and none of its cells is shown.
  const width = layout.file.header.length;
  if (raw.fields.length < width || tooManyFields(raw.fields, width)) {
    return { index: raw.row, line: raw.line, serialNumber: '', problem: { code: 'FIELD_COUNT', message: `expected ${width} fields as in the header, got ${raw.fields.length}: a cell is missing or a value holds the separator unquoted (the cells are not shown: one may be a seed)` }, warnings: [] };
  }
  const serialNumber = at('serial') ?? '';
  const base = { index: raw.row, line: raw.line, serialNumber, manufacturer: at('manufacturer') || undefined, model: at('model') || undefined };
  let bytes: Buffer | undefined;
  const invalid = (code: 'SECRET_INVALID' | 'TYPE_MISSING' | 'OTP_LENGTH_UNSUPPORTED' | 'TIME_STEP_UNSUPPORTED' | 'SERIAL_INVALID' | 'COUNTER_INVALID', message: string): SeedToken => {
    bytes?.fill(0);
    return { ...base, problem: { code, message }, warnings: [] };
  };

  const encoding: SecretEncoding = entra ? 'base32' : (defaults.secretEncoding ?? 'hex');
  const secretText = at('secret') ?? '';
  bytes = secretText === '' ? undefined : decodeSecret(secretText, encoding);
  // A seed under the serial column and a short value under the secret column: neither cell
  // goes anywhere (the serial would be a seed in PingOne and every report).
  if (columnsSwapped(serialNumber, (bytes?.length ?? 0) * 8, encoding === 'base64')) {
    bytes?.fill(0);
    return { index: raw.row, line: raw.line, serialNumber: '', problem: { code: 'COLUMNS_SWAPPED', message: 'the serial cell looks like a seed (128 bits or more) and the secret cell is short: the columns are swapped in this row. Neither cell is shown; put the serial and the secret in their columns' }, warnings: [] };
  }
  if (secretText !== '' && !bytes) {
    // The length and the alphabet say what is wrong; the value itself is never shown.
    const odd = encoding === 'hex' && /^[0-9a-fA-F]+$/.test(secretText) ? ' (an odd number of hex digits)' : '';
    return invalid('SECRET_INVALID', `the secret is not valid ${encoding}${odd}; check --secret-encoding (hex, base32 or base64)`);
  }
  if (SCIENTIFIC_RE.test(serialNumber)) {
    return invalid('SERIAL_INVALID', `serial ${JSON.stringify(serialNumber)}: a spreadsheet turned it into a number; format the column as Text and export again`);
  }
  // Any other serial that is not one is not shown, nor kept: in a seed file it may be a seed.
  if (serialNumber !== '' && !SERIAL_RE.test(serialNumber)) {
    bytes?.fill(0);
    return { ...base, serialNumber: '', problem: { code: 'SERIAL_INVALID', message: `the serial cell (${serialNumber.length} characters, not shown: in a seed file it may be a seed) is not 1-50 ASCII letters and digits; correct it in the file` }, warnings: [] };
  }
  const typeText = at('type');
  const parsedType = entra ? 'TOTP' : parseType(typeText);
  if (parsedType === 'bad') return invalid('TYPE_MISSING', `type ${shownCell(typeText!)}: expected HOTP or TOTP`);
  const type = parsedType ?? defaults.type;
  const otp = parseWhole(at('otpLength'));
  if (otp === 'bad') return invalid('OTP_LENGTH_UNSUPPORTED', `otpLength ${shownCell(at('otpLength')!)}: expected 6 or 8`);
  const step = parseWhole(at('timeStep'));
  if (step === 'bad') return invalid('TIME_STEP_UNSUPPORTED', `time step ${shownCell(at('timeStep')!)}: expected 30 or 60`);
  const counterText = at('counter') ?? '';
  let counter: bigint | undefined;
  try {
    counter = counterText === '' ? undefined : parseCounter(counterText);
  } catch (error) {
    if (error instanceof CounterError) return invalid('COUNTER_INVALID', error.message);
    throw error;
  }
  const hashText = at('hash');
  const token = {
    ...base,
    type,
    otpLength: otp ?? defaults.otpLength ?? 6,
    hashAlgorithm: hashFromText(hashText),
    counter: type === 'HOTP' ? (counter ?? 0n) : undefined,
    timeStep: type === 'TOTP' ? (step ?? defaults.timeStep ?? 30) : undefined,
    secret: bytes ? Secret.own(bytes) : undefined,
  };
  const checked = checkToken(token, hashText);
  if (checked.problem) token.secret?.wipe();
  return { ...token, secret: checked.problem ? undefined : token.secret, problem: checked.problem, warnings: checked.warnings };
}
