/** The .xlsx writer's cells and the workbook reader verify and rollback use (#20). */
import { closeSync, openSync, ftruncateSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import ExcelJS from 'exceljs';
import { columnName, xmlText, XlsxWriter } from '../../src/report/xlsx-writer.js';
import { MAX_WORKBOOK_BYTES, workbookRecords } from '../../src/input/workbook-rows.js';
import { openInput } from '../../src/input/reader.js';

const dir = mkdtempSync(join(tmpdir(), 'oath-bulk-xlsx-'));

async function records(path: string): Promise<Array<{ line: number; fields: string[] }>> {
  const { size } = await import('node:fs').then((fs) => fs.statSync(path));
  const all = [];
  for await (const r of workbookRecords(path, size)) all.push(r);
  return all;
}

test('column names and cell text: A…Z, AA…; XML escaped, characters XML cannot hold dropped, Excel\'s 32,767 limit kept', () => {
  expect([0, 25, 26, 51, 52, 701, 702].map(columnName)).toEqual(['A', 'Z', 'AA', 'AZ', 'BA', 'ZZ', 'AAA']);
  expect(xmlText('a<b>&"c"\u0001\u000b\td\n')).toBe('a&lt;b&gt;&amp;&quot;c&quot;\td\n');
  expect(xmlText('x'.repeat(40_000))).toHaveLength(32_767);
  expect(xmlText('emoji 😀 ok, lone \uD800 not')).toBe('emoji 😀 ok, lone  not');
});

test('what the writer writes, the reader reads back: text stays text (leading zeros, formulas, control characters), numbers stay numbers', async () => {
  const path = join(dir, 'cells.xlsx');
  const book = XlsxWriter.open(path);
  await book.sheet('results', [{ name: 'row', width: 8, numeric: true }, { name: 'serialNumber', width: 20 }, { name: 'note', width: 20 }]);
  await book.row([1, '00412345678901', '=HYPERLINK("http://evil","x")']);
  await book.row([2, '1E5', 'tab\there <b>']);
  await book.row([3, undefined, '']);
  await book.finish();
  const back = await records(path);
  expect(back).toEqual([
    { line: 1, fields: ['row', 'serialNumber', 'note'] },
    { line: 2, fields: ['1', '00412345678901', '=HYPERLINK("http://evil","x")'] },
    { line: 3, fields: ['2', '1E5', 'tab\there <b>'] },
    { line: 4, fields: ['3'] },
  ]);
});

test('a workbook saved by Excel (shared strings, a formula, a number): formulas are read as their text, never run; numbers as Excel shows them', async () => {
  const path = join(dir, 'excel.xlsx');
  const book = new ExcelJS.Workbook();
  const sheet = book.addWorksheet('edited');
  sheet.addRow(['row', 'userID', 'serialNumber', 'outcome', 'deviceId']);
  sheet.addRow([1, 'a0b1c2d3-0000-4000-8000-000000000001', 412345678901, 'CREATED', { formula: 'CONCAT("d","1")', result: 'd1' }]);
  sheet.addRow([]);
  sheet.addRow([2, { richText: [{ text: 'a0b1c2d3-0000-4000-8000-' }, { text: '000000000002' }] }, 'SER2', 'CREATED', 'dev-2']);
  await book.xlsx.writeFile(path);
  expect(await records(path)).toEqual([
    { line: 1, fields: ['row', 'userID', 'serialNumber', 'outcome', 'deviceId'] },
    { line: 2, fields: ['1', 'a0b1c2d3-0000-4000-8000-000000000001', '412345678901', 'CREATED', '=CONCAT("d","1")'] },
    { line: 4, fields: ['2', 'a0b1c2d3-0000-4000-8000-000000000002', 'SER2', 'CREATED', 'dev-2'] },
  ]);
});

test('a workbook is read only where the command takes one, and only up to its size cap; a damaged one is named, not a stack trace', async () => {
  const path = join(dir, 'results.xlsx');
  const book = XlsxWriter.open(path);
  await book.sheet('results', [{ name: 'userID', width: 10 }, { name: 'serialNumber', width: 10 }]);
  await book.row(['a0b1c2d3-0000-4000-8000-000000000001', 'S1']);
  await book.finish();
  // `run` takes CSV only: the workbook is refused with what to do.
  await expect(openInput(path)).rejects.toThrow(/is a ZIP archive \(an \.xlsx workbook\?\), not a CSV file/);
  await expect(openInput(path, { workbook: true })).resolves.toMatchObject({ encoding: 'xlsx', header: ['userID', 'serialNumber'] });

  const huge = join(dir, 'huge.xlsx');
  const fd = openSync(huge, 'w');
  writeSync(fd, Buffer.from([0x50, 0x4b, 0x03, 0x04]));
  ftruncateSync(fd, MAX_WORKBOOK_BYTES + 1);
  closeSync(fd);
  await expect(openInput(huge, { workbook: true })).rejects.toThrow(/huge\.xlsx: is a workbook of 67 MB, more than the 64 MB read: give the results CSV instead/);

  const broken = join(dir, 'broken.xlsx');
  const bfd = openSync(broken, 'w');
  writeSync(bfd, Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(200, 7)]));
  closeSync(bfd);
  await expect(openInput(broken, { workbook: true })).rejects.toThrow(/broken\.xlsx: cannot be read as an \.xlsx workbook/);
});

test('the reader keeps cell text as it is (an entity is unescaped once), writes nothing to disk, and refuses a row longer than a CSV row may be', async () => {
  const path = join(dir, 'entities.xlsx');
  const book = XlsxWriter.open(path);
  await book.sheet('results', [{ name: 'userID', width: 10 }, { name: 'note', width: 10 }]);
  await book.row(['u1', '<b>&amp;"x"</b> &lt;']);
  await book.finish();
  const before = readdirSync(tmpdir()).length;
  expect((await records(path))[1]!.fields).toEqual(['u1', '<b>&amp;"x"</b> &lt;']);
  expect(readdirSync(tmpdir()).length).toBe(before);

  const long = join(dir, 'long.xlsx');
  const big = XlsxWriter.open(long);
  await big.sheet('results', [{ name: 'userID', width: 10 }, { name: 'a', width: 10 }, { name: 'b', width: 10 }, { name: 'c', width: 10 }]);
  await big.row(['u1', 'x'.repeat(30_000), 'y'.repeat(30_000), 'z'.repeat(30_000)]);
  for (let i = 0; i < 40; i++) await big.row(['u2', 'x'.repeat(30_000)]);
  await big.finish();
  // Cells of 30,000 characters are fine; a row past 1,000,000 characters is not a results row.
  expect((await records(long)).length).toBe(42);
  const huge = join(dir, 'huge-row.xlsx');
  const h = XlsxWriter.open(huge);
  await h.sheet('results', Array.from({ length: 40 }, (_, i) => ({ name: `c${i}`, width: 10 })));
  await h.row(Array.from({ length: 40 }, () => 'w'.repeat(30_000)));
  await h.finish();
  await expect(records(huge)).rejects.toThrow(/huge-row\.xlsx: row 2: a row longer than 1,000,000 characters/);
});
