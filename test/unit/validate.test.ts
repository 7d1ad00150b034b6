import { checkRow, checkSerial } from '../../src/input/validate.js';
import { ConflictIndex } from '../../src/input/conflicts.js';
import type { InputLayout } from '../../src/input/reader.js';

const layout: InputLayout = {
  path: 'x.csv',
  name: 'x.csv',
  encoding: 'utf-8',
  delimiter: ',', bom: false,
  header: ['userID', 'serialNumber', 'note'],
  columns: { userID: 0, serialNumber: 1 },
  extras: [{ name: 'note', index: 2 }],
  carriesSeeds: false,
  fingerprint: { size: 0, mtimeMs: 0, ino: 0, dev: 0 },
};
const U = '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93';

describe('row validation', () => {
  test.each([
    ['a plain serial', [U, 'ABC123'], undefined],
    ['leading zeros kept', [U, '000123'], undefined],
    ['50 characters', [U, 'A'.repeat(50)], undefined],
    ['upper-case UUID', [U.toUpperCase(), '1'], undefined],
    ['empty serial', [U, ''], 'SERIAL_MISSING'],
    ['Excel scientific notation', [U, '2.30873E+13'], 'SERIAL_MANGLED'],
    ['Excel scientific notation, comma decimal', [U, '2,30873E+13'], 'SERIAL_MANGLED'],
    ['51 characters', [U, 'A'.repeat(51)], 'SERIAL_TOO_LONG'],
    ['a space inside', [U, 'AB 12'], 'SERIAL_INVALID'],
    ['a dash', [U, 'AB-12'], 'SERIAL_INVALID'],
    ['a non-ASCII letter', [U, 'ÄB12'], 'SERIAL_INVALID'],
    ['empty userID', ['', 'A1'], 'USER_ID_MISSING'],
    ['userID not a UUID', ['jdoe', 'A1'], 'USER_ID_INVALID'],
    ['userID with a slash', [`${U}/../x`, 'A1'], 'USER_ID_INVALID'],
    ['userID with %2F', [`${U.slice(0, 30)}%2F1234`, 'A1'], 'USER_ID_INVALID'],
    ['userID with ? and #', [`${U}?x#`, 'A1'], 'USER_ID_INVALID'],
    ['too many fields', [U, 'A1', 'note', 'surplus'], 'TOO_MANY_FIELDS'],
    ['trailing empty field is tolerated', [U, 'A1', 'note', ''], undefined],
  ])('%s', (_name, fields, code) => {
    const row = checkRow(layout, { row: 1, line: 2, fields });
    expect(row.problem?.code).toBe(code);
  });

  test('the message says what was expected and what was got', () => {
    expect(checkSerial('2.30873E+13')?.message).toMatch(/expected the token's serial number, got "2.30873E\+13": a spreadsheet turned it into a number/);
    expect(checkRow(layout, { row: 3, line: 4, fields: ['jdoe', 'A1'] }).problem?.message).toBe(
      'expected a userID such as 5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93, got "jdoe"',
    );
  });

  test('extra columns are carried, missing ones are empty', () => {
    expect(checkRow(layout, { row: 1, line: 2, fields: [U, 'A1'] }).extras).toEqual(['']);
    expect(checkRow(layout, { row: 1, line: 2, fields: [U, 'A1', 'desk 4'] }).extras).toEqual(['desk 4']);
  });
});

describe('conflicts inside a file', () => {
  const V = '11111111-2222-4333-8444-555555555555';
  function judge(rows: Array<[string, string]>): Array<string | undefined> {
    const index = new ConflictIndex();
    rows.forEach(([user, serial], i) => index.note(i + 1, user, serial));
    return rows.map(([, serial], i) => index.check(i + 1, serial, (r) => r + 1)?.code);
  }

  test('one serial to two users: every row of it is invalid', () => {
    expect(judge([[U, 'S1'], [V, 'S1'], [U, 'S2'], [U, 'S1']])).toEqual(['SERIAL_CONFLICT', 'SERIAL_CONFLICT', undefined, 'SERIAL_CONFLICT']);
  });

  test('an exact repeat is invalid, the first stays valid', () => {
    expect(judge([[U, 'S1'], [U, 'S1'], [U, 'S1']])).toEqual([undefined, 'DUPLICATE_ROW', 'DUPLICATE_ROW']);
  });

  test('one user with two serials is valid', () => {
    expect(judge([[U, 'S1'], [U, 'S2']])).toEqual([undefined, undefined]);
  });

  test('invalid rows are counted as they are found', () => {
    const index = new ConflictIndex();
    index.note(1, U, 'S1');
    index.note(2, U, 'S1');
    index.note(3, V, 'S1');
    expect(index.invalidRows).toBe(3);
  });
});

describe('spreadsheet-safe cells', () => {
  test.each(['=1+2', '+1', '-1', '@x', '\tx', '\rx'])('%j is escaped', async (value) => {
    const { safeCell } = await import('../../src/report/csv-safe.js');
    expect(safeCell(value)).toBe(`'${value}`);
  });
  test('ordinary values are untouched', async () => {
    const { safeCell } = await import('../../src/report/csv-safe.js');
    expect(safeCell('00123')).toBe('00123');
    expect(safeCell(201)).toBe('201');
    expect(safeCell(undefined)).toBe('');
  });
});

describe('the conflict index at scale', () => {
  test('100,000 serials: lookups stay exact through growth, repeats and conflicts found', () => {
    const index = new ConflictIndex();
    const user = (i: number) => `u-${i % 5000}`;
    for (let i = 1; i <= 100_000; i++) expect(index.note(i, user(i), `S${i}`)).toEqual([]);
    expect(index.size).toBe(100_000);
    expect(index.note(100_001, user(42), 'S42')).toEqual([100_001]);
    expect(index.note(100_002, 'someone-else', 'S77')).toEqual([77, 100_002]);
    const lineOf = (r: number) => r + 1;
    expect(index.check(42, 'S42', lineOf)).toBeUndefined();
    expect(index.check(100_001, 'S42', lineOf)?.message).toMatch(/^repeats row 42 \(line 43\)/);
    // Each row of a conflict names the other one, never itself.
    expect(index.check(77, 'S77', lineOf)?.message).toMatch(/at row 100002 \(line 100003\)/);
    expect(index.check(100_002, 'S77', lineOf)?.message).toMatch(/at row 77 \(line 78\)/);
    expect(index.check(99_999, 'S99999', lineOf)).toBeUndefined();
    expect(index.check(1, 'NEVER-SEEN', lineOf)).toBeUndefined();
    expect(index.invalidRows).toBe(3);
  });
});
