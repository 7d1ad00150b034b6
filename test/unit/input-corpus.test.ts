/**
 * The bad-input corpus, read through the real streaming reader from real files: what each
 * file yields row by row. (File-level refusals are exercised through the CLI in
 * test/e2e/input-corpus.test.ts.)
 */
import { join } from 'node:path';
import { finalRows, scanInput } from '../../src/input/scan.js';

const FIXTURES = join('test', 'fixtures', 'input');
const U = ['5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93', '6a9d3b5f-2c8e-4d4f-8b3a-1e7f9c2d8ba4', '7bae4c60-3d9f-4e50-9c4b-2f80ad3e9cb5', '8cbf5d71-4ea0-4f61-8d5c-3091be4fadc6'];

async function rows(name: string) {
  const scan = await scanInput(join(FIXTURES, name));
  const out = [];
  for await (const row of finalRows(scan)) out.push(row);
  return { scan, rows: out, codes: out.map((r) => r.problem?.code ?? 'OK') };
}

describe('the input corpus', () => {
  test('excel-unicode-text.txt: UTF-16LE with BOM, tab separated (Excel "Unicode text") is decoded and read', async () => {
    const { scan, rows: r, codes } = await rows('excel-unicode-text.txt');
    expect(scan.layout).toMatchObject({ encoding: 'utf-16le', delimiter: '\t' });
    expect(codes).toEqual(['OK', 'OK']);
    expect(r.map((x) => [x.userText, x.serialNumber, ...x.extras])).toEqual([[U[0], '00123456', 'Müller'], [U[1], '00123457', 'Søren']]);
  });

  test('utf16be-bom.csv: UTF-16BE with BOM is read', async () => {
    const { scan, codes } = await rows('utf16be-bom.csv');
    expect(scan.layout.encoding).toBe('utf-16be');
    expect(codes).toEqual(['OK']);
  });

  test('excel-european.csv: semicolons, CRLF and a UTF-8 BOM', async () => {
    const { scan, rows: r } = await rows('excel-european.csv');
    expect(scan.layout.delimiter).toBe(';');
    expect(scan.layout.extras.map((e) => e.name)).toEqual(['Abteilung']);
    expect(r.map((x) => [x.userText, x.serialNumber, x.extras[0], x.problem])).toEqual([[U[0], '00123456', 'Einkauf', undefined], [U[1], '00123457', 'Vertrieb', undefined]]);
  });

  test('tabs.tsv: tab separated', async () => {
    expect((await rows('tabs.tsv')).codes).toEqual(['OK', 'OK']);
  });

  test('quoted-spaces.csv: surrounding whitespace is trimmed, inside and outside quotes', async () => {
    const { rows: r } = await rows('quoted-spaces.csv');
    expect([r[0]!.userText, r[0]!.serialNumber, r[0]!.extras[0], r[0]!.problem]).toEqual([U[0], '00123456', 'desk, 4', undefined]);
  });

  test('extra-columns.csv: columns in any order, extras carried with their names', async () => {
    const { scan, rows: r } = await rows('extra-columns.csv');
    expect(scan.layout.extras.map((e) => e.name)).toEqual(['Department', 'Site', 'Notes']);
    expect(r[0]!.extras).toEqual(['Finance', 'Leeds', 'a "quoted" note']);
    expect(r[0]!.serialNumber).toBe('00123456');
  });

  test('field-count.csv: too many fields is invalid, too few is fine while the required ones are there', async () => {
    expect((await rows('field-count.csv')).codes).toEqual(['TOO_MANY_FIELDS', 'OK', 'SERIAL_MISSING', 'OK']);
  });

  test('blank-lines.csv: blank lines and ",," rows are skipped and not numbered', async () => {
    const { rows: r } = await rows('blank-lines.csv');
    expect(r.map((x) => [x.row, x.serialNumber, x.problem?.code])).toEqual([[1, '00123456', undefined], [2, '00123457', undefined]]);
  });

  test('leading-zeros.csv: serials stay strings, leading zeros and all', async () => {
    expect((await rows('leading-zeros.csv')).rows.map((x) => x.serialNumber)).toEqual(['000000000001', '0023087347003972']);
  });

  test('scientific-notation.csv: 2.30873E+13 is invalid with a spreadsheet hint', async () => {
    const { rows: r, codes } = await rows('scientific-notation.csv');
    expect(codes).toEqual(['SERIAL_MANGLED', 'OK', 'SERIAL_MANGLED']);
    expect(r[0]!.problem!.message).toMatch(/format the column as Text and export again/);
  });

  test('bad-serials.csv: spaces, dashes, non-ASCII, 51 characters, empty', async () => {
    expect((await rows('bad-serials.csv')).codes).toEqual(['SERIAL_INVALID', 'SERIAL_INVALID', 'SERIAL_INVALID', 'SERIAL_TOO_LONG', 'OK', 'SERIAL_MISSING']);
  });

  test('bad-userids.csv: not UUIDs, path tricks (/ .. %2F ? #), whitespace inside, empty; upper case is fine', async () => {
    expect((await rows('bad-userids.csv')).codes).toEqual([
      'USER_ID_INVALID', 'USER_ID_INVALID', 'USER_ID_INVALID', 'USER_ID_INVALID', 'USER_ID_INVALID', 'USER_ID_INVALID', 'USER_ID_INVALID', 'USER_ID_MISSING', 'OK',
    ]);
  });

  test('duplicate-pairs.csv: repeats of an earlier pair are DUPLICATE_ROW, the first is kept', async () => {
    const { scan, codes } = await rows('duplicate-pairs.csv');
    expect(codes).toEqual(['OK', 'OK', 'DUPLICATE_ROW', 'DUPLICATE_ROW']);
    expect(scan.invalid).toBe(2);
  });

  test('serial-to-two-users.csv: every row of a serial given to two users is invalid, the first too', async () => {
    const { scan, codes } = await rows('serial-to-two-users.csv');
    expect(codes).toEqual(['SERIAL_CONFLICT', 'OK', 'SERIAL_CONFLICT']);
    expect(scan.invalid).toBe(2);
  });

  test('same-user-two-serials.csv: one user with two tokens is valid', async () => {
    expect((await rows('same-user-two-serials.csv')).codes).toEqual(['OK', 'OK']);
  });

  test('mixed-separators.csv: rows split by another separator are invalid rows, not a crash', async () => {
    const { scan, codes } = await rows('mixed-separators.csv');
    expect(scan.layout.delimiter).toBe(',');
    expect(codes).toEqual(['OK', 'USER_ID_INVALID', 'USER_ID_INVALID']);
  });

  test('formula-injection.csv: formula-looking values are data; a formula as serial is invalid', async () => {
    const { rows: r, codes } = await rows('formula-injection.csv');
    expect(codes).toEqual(['OK', 'OK', 'SERIAL_INVALID']);
    expect(r[0]!.extras).toEqual(['=1+2', '@SUM(A1)']);
  });

  test('header-aliases.csv: User_Id and "Serial Number" are recognised', async () => {
    expect((await rows('header-aliases.csv')).codes).toEqual(['OK']);
  });

  test('trailing-separators.csv: empty trailing header cells are not columns', async () => {
    const { scan, codes } = await rows('trailing-separators.csv');
    expect(scan.layout.extras).toEqual([]);
    expect(codes).toEqual(['OK', 'OK']);
  });

  test('crlf-quoted-newline.csv: a quoted value may span lines', async () => {
    const { rows: r } = await rows('crlf-quoted-newline.csv');
    expect(r.map((x) => [x.row, x.extras[0]])).toEqual([[1, 'line one\r\nline two'], [2, 'plain']]);
  });
});
