/**
 * File-level problems, through the built CLI: exit 2 before any request, one line on
 * stderr naming the file (and the line, where there is one) and the fix, never a stack trace.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { useSandbox } from '../support/sandbox.js';
import { runCli, sandboxEnv, tempDir } from '../support/cli.js';

const FIXTURES = resolve('test', 'fixtures', 'input');
const box = useSandbox('all');

const cases: Array<[string, RegExp]> = [
  ['does-not-exist.csv', /does-not-exist\.csv: no such file: check the path$/],
  ['empty.csv', /empty\.csv: is empty: expected a header row "userID,serialNumber"/],
  ['header-only.csv', /header-only\.csv: has a header but no data rows: add one row per token/],
  ['blank-lines-only.csv', /blank-lines-only\.csv: holds only blank lines: expected a header row/],
  ['no-header.csv', /no-header\.csv: line 1: no serialNumber column .* The first line looks like data: add a header row "userID,serialNumber"\.$/],
  ['missing-userid-column.csv', /missing-userid-column\.csv: line 1: no userID column \(the header has "user", "serialNumber"\): name it userID/],
  ['missing-serial-column.csv', /missing-serial-column\.csv: line 1: no serialNumber column \(the header has "userID", "token"\): name it serialNumber/],
  ['duplicate-header.csv', /duplicate-header\.csv: line 1: the header names the userID column twice \("userID" and "user_id"\): keep one/],
  ['binary-junk.bin', /binary-junk\.bin: (line \d+: contains a NUL byte: this is a binary file|line \d+: is not valid UTF-8 text)/],
  ['photo-of-the-box.png', /photo-of-the-box\.png: is a PNG image, not a CSV file$/],
  ['packing-list.pdf', /packing-list\.pdf: is a PDF document, not a CSV file: export the shipment list as CSV$/],
  ['workbook.xlsx', /workbook\.xlsx: is a ZIP archive \(an \.xlsx workbook\?\), not a CSV file: in Excel use Save As → "CSV UTF-8"$/],
  ['unterminated-quote.csv', /unterminated-quote\.csv: line \d+: a quoted field is never closed: look for a stray " \(quote\)/],
  ['nul-byte.csv', /nul-byte\.csv: line 2: contains a NUL byte: this is a binary file, not a CSV text file$/],
  ['invalid-utf8.csv', /invalid-utf8\.csv: line 2: is not valid UTF-8 text: save the file as "CSV UTF-8"$/],
];

test.each(cases)('%s: exit 2, one clear line, nothing sent', async (name, expected) => {
  const dir = tempDir();
  const before = box.sandbox.stats.requests;
  const result = await runCli(['run', join(FIXTURES, name), '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(result.code).toBe(2);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^oath-bulk: /);
  expect(lines[0]).toMatch(expected);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.stdout).toBe('');
  expect(box.sandbox.stats.requests).toBe(before);
});

test('a folder given as the input is a folder run: one without shipments is nothing to do (exit 0), nothing sent', async () => {
  const dir = tempDir();
  const before = box.sandbox.stats.requests;
  const result = await runCli(['run', join(FIXTURES, 'a-directory'), '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(result.code).toBe(0);
  expect(result.stderr).toBe('');
  expect(result.stdout).toMatch(/a-directory: 0 files\n {2}nothing to do: no shipment files \(\*\.csv\) directly in it\n$/);
  expect(box.sandbox.stats.requests).toBe(before);
});

test('a 10 MB single field is refused as a file-level problem, with its line', async () => {
  const dir = tempDir();
  const path = join(dir, 'huge-field.csv');
  writeFileSync(path, `userID,serialNumber,note\n5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93,S1,"${'x'.repeat(10 * 1024 * 1024)}"\n`);
  const result = await runCli(['run', path, '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/huge-field\.csv: line 2: a row is longer than 1 MB: this is not a shipment list, or a quote is unbalanced\n$/);
});

test('--strict with invalid rows: exit 2, the first problems listed, nothing sent or written', async () => {
  const dir = join(tempDir(), 'reports');
  const before = box.sandbox.stats.requests;
  const result = await runCli(['run', join(FIXTURES, 'bad-serials.csv'), '--out-dir', dir, '--strict'], sandboxEnv(box.sandbox));
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/bad-serials\.csv: 5 of 6 rows are invalid and --strict is set, so nothing was sent or written\. First problems:\n {2}row 1 \(line 2\): SERIAL_INVALID: expected only ASCII letters and digits, got "AB 12"/);
  expect(box.sandbox.stats.requests).toBe(before);
  expect((await import('node:fs')).existsSync(dir)).toBe(false);
});

test('a messy but readable file runs: valid rows are processed, invalid ones reported', async () => {
  const dir = tempDir();
  const result = await runCli(['run', join(FIXTURES, 'bad-userids.csv'), '--out-dir', dir], sandboxEnv(box.sandbox));
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/rows 9: CREATED 1 · INVALID 8/);
});
