/**
 * A workbook for people, a CSV for scripts (#20): beside the results CSV (SPEC's dialect, or
 * the input's with --csv-dialect input) an .xlsx that Excel opens as it is; verify and
 * rollback take the results in either CSV dialect and as the .xlsx. The built CLI against the
 * sandbox over loopback; the workbook read back with exceljs.
 */
import { readFileSync, statSync, writeFileSync, readdirSync, copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import ExcelJS from 'exceljs';
import { useSandbox } from '../support/sandbox.js';
import { latest, readResults, runCli, sandboxEnv, tempDir, userId } from '../support/cli.js';

const box = useSandbox('all');

const BOM = '\uFEFF';

/** A shipment as Excel in a ';' locale saves it: ';'-separated, with a BOM; a serial with leading zeros, a note that looks like a formula. */
function excelInput(dir: string, n: number, prefix: string, firstUser: number, lead: string): string {
  const path = join(dir, 'shipment.csv');
  const lines = ['userID;serialNumber;note'];
  for (let i = 1; i <= n; i++) lines.push(`${userId(firstUser + i)};${i === 1 ? lead : `${prefix}${String(i).padStart(4, '0')}`};${i === 1 ? '=1+1' : `desk ${i}`}`);
  writeFileSync(path, BOM + lines.join('\r\n') + '\r\n');
  return path;
}

async function readBook(path: string): Promise<ExcelJS.Workbook> {
  const book = new ExcelJS.Workbook();
  await book.xlsx.readFile(path);
  return book;
}

test('run: the results CSV keeps the contract; the .xlsx beside it has text serials, typed cells, a frozen filterable header and the summary', async () => {
  const dir = tempDir('oath-bulk-book-');
  const input = excelInput(dir, 6, 'WBA', 0, '00412345678901');
  const result = await runCli(['run', input, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(result.code).toBe(0);
  const csvPath = latest(dir, '.results.csv');
  const csv = readFileSync(csvPath, 'utf8');
  expect(csv.startsWith('row,userID,serialNumber,outcome,')).toBe(true);
  expect(csv).toContain(',00412345678901,CREATED,');
  // The CSV guards the formula-looking cell; the workbook types it as text instead.
  expect(csv).toContain(",'=1+1");

  const xlsx = latest(dir, '.results.xlsx');
  expect(xlsx).toBe(csvPath.replace(/\.csv$/, '.xlsx'));
  expect(statSync(xlsx).mode & 0o077).toBe(0);
  expect(result.stdout).toContain(`workbook ${xlsx}`);
  const summary = JSON.parse(readFileSync(latest(dir, '.summary.json'), 'utf8'));
  expect(summary.reports.workbook).toBe(xlsx);
  expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);

  const book = await readBook(xlsx);
  const sheet = book.getWorksheet('results')!;
  expect(sheet.rowCount).toBe(7);
  expect(sheet.getRow(1).values).toEqual([undefined, 'row', 'userID', 'serialNumber', 'outcome', 'deviceId', 'deviceStatus', 'httpStatus', 'errorCode', 'errorDetail', 'message', 'attempts', 'durationMs', 'note']);
  const first = sheet.getRow(2);
  expect(first.getCell(3).value).toBe('00412345678901');
  expect(first.getCell(3).type).toBe(ExcelJS.ValueType.String);
  expect(first.getCell(3).numFmt).toBe('@');
  expect(first.getCell(1).value).toBe(1);
  expect(first.getCell(4).value).toBe('CREATED');
  expect(first.getCell(13).value).toBe('=1+1');
  expect(first.getCell(13).type).toBe(ExcelJS.ValueType.String);
  expect(sheet.views[0]).toMatchObject({ state: 'frozen', ySplit: 1 });
  expect(sheet.autoFilter).toBeTruthy();
  const pairs = new Map<string, unknown>();
  book.getWorksheet('summary')!.eachRow((row, n) => {
    if (n > 1) pairs.set(String(row.getCell(1).value), row.getCell(2).value);
  });
  expect(pairs.get('outcomes.CREATED')).toBe(6);
  expect(pairs.get('command')).toBe('run');
  expect(pairs.get('next')).toMatch(/oath-bulk verify/);
  // A second reader, independent of exceljs (openpyxl, as .ci/run installs it), sees the same.
  const py = spawnSync('/usr/bin/python3', ['-c', [
    'import json, sys, openpyxl',
    'wb = openpyxl.load_workbook(sys.argv[1])',
    'ws = wb["results"]',
    'print(json.dumps([ws.max_row, ws.freeze_panes, ws.auto_filter.ref, ws["C2"].value, ws["C2"].data_type, ws["C2"].number_format, ws["A2"].value, ws["M2"].value, ws["M2"].data_type, wb.sheetnames]))',
  ].join('\n'), xlsx], { encoding: 'utf8' });
  expect(py.stderr).toBe('');
  expect(JSON.parse(py.stdout)).toEqual([7, 'A2', 'A1:M7', '00412345678901', 's', '@', 1, '=1+1', 's', ['results', 'summary']]);

  // verify and rollback take the workbook as they take the CSV.
  const verify = await runCli(['verify', xlsx, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(verify.stderr).toBe('');
  expect(verify.code).toBe(0);
  expect(readResults(dir).map((r) => r['outcome'])).toEqual(Array(6).fill('PRESENT'));
  const dry = await runCli(['rollback', xlsx, '--dry-run', '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(dry.code).toBe(0);
  expect(dry.stdout).toMatch(/WOULD_DELETE 6/);
});

test("--csv-dialect input: a ';'+BOM input gives ';'+BOM results, which rollback reads as it reads the contract's", async () => {
  const dir = tempDir('oath-bulk-book-');
  const input = excelInput(dir, 4, 'WBB', 100, '00512345678901');
  const result = await runCli(['run', input, '--out-dir', dir, '--csv-dialect', 'input'], sandboxEnv(box.sandbox));
  expect(result.code).toBe(0);
  const csvPath = latest(dir, '.results.csv');
  const csv = readFileSync(csvPath, 'utf8');
  expect(csv.startsWith(`${BOM}row;userID;serialNumber;outcome;`)).toBe(true);
  expect(csv).toContain(';00512345678901;CREATED;');
  // The other commands read it: rollback undoes exactly what the run created.
  const copy = join(dir, 'semicolon.results.csv');
  copyFileSync(csvPath, copy);
  const rollback = await runCli(['rollback', csvPath, '--yes', '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(rollback.stderr).toBe('');
  expect(rollback.code).toBe(0);
  expect(rollback.stdout).toMatch(/DELETED 4/);
  const bad = await runCli(['run', input, '--out-dir', dir, '--csv-dialect', 'excel'], sandboxEnv(box.sandbox));
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/--csv-dialect.*contract\|input/);
});

test('100,000 rows: the workbook is written within the memory budget (a process of its own, peak RSS ≤ 150 MB) and read back with one row per row, serials as text', async () => {
  const dir = tempDir('oath-bulk-book-');
  const csv = join(dir, 'big.results.csv');
  const xlsx = join(dir, 'big.results.xlsx');
  // The results writer of the build, as the CLI uses it, in a process of its own.
  const script = `
    const { ResultsWriter } = await import(${JSON.stringify(resolve('dist/report/results-writer.js'))});
    const w = await ResultsWriter.open(${JSON.stringify(csv)}, ['note'], undefined, (e) => { throw e; }, { workbook: ${JSON.stringify(xlsx)} });
    for (let i = 1; i <= 100000; i++) {
      await w.write({ row: i, userID: 'a0b1c2d3-0000-4000-8000-' + String(i).padStart(12, '0'), serialNumber: i === 1 ? '00412345678901' : String(i).padStart(14, '0'), outcome: 'CREATED', deviceId: 'd' + i, deviceStatus: 'ACTIVE', httpStatus: 201, attempts: 1, durationMs: 12, extras: ['desk ' + i] });
    }
    await w.close();
    await w.closeWorkbook([['rows', 100000]]);
    process.stdout.write(String(process.resourceUsage().maxRSS));
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(child.stderr).toBe('');
  const peakMb = Number(child.stdout) / 1024;
  expect(peakMb).toBeGreaterThan(10);
  expect(peakMb).toBeLessThanOrEqual(150);

  let rows = 0;
  let first: unknown[] | undefined;
  let last: unknown[] | undefined;
  const reader = new ExcelJS.stream.xlsx.WorkbookReader(xlsx, { worksheets: 'emit', sharedStrings: 'cache', styles: 'ignore', hyperlinks: 'ignore', entries: 'ignore' });
  for await (const sheet of reader) {
    for await (const row of sheet) {
      rows++;
      if (row.number === 2) first = row.values as unknown[];
      last = row.values as unknown[];
    }
    break;
  }
  expect(rows).toBe(100_001);
  expect(first![3]).toBe('00412345678901');
  expect(first![1]).toBe(1);
  expect(last![1]).toBe(100_000);
  expect(last![3]).toBe('00000000100000');
}, 120_000);
