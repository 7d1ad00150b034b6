/** A folder run's per-file command line (its `next:`), and which files of a folder are shipments. */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileArgs, shipmentFiles } from '../../src/commands/run/folder.js';
import { commandLine } from '../../src/report/command-line.js';

test('each file gets the folder\'s command with itself in the folder\'s place, its seeds, and --activate only with seeds; flag values equal to the folder stay', () => {
  const argv = ['run', '--out-dir', 'in', 'in', '--activate', '--psk-file=k.key', '--settings', 'p.env', '--healthcheck-url', 'https://hc-ping.com/uuid', '--metrics-file', 'x.prom', '--type', 'TOTP'];
  expect(fileArgs(argv, 'in', 'in/a.csv', undefined, false)).toEqual(['run', '--out-dir', 'in', 'in/a.csv', '--settings', 'p.env', '--healthcheck-url', 'https://hc-ping.com/uuid', '--metrics-file', 'x.prom']);
  expect(fileArgs(argv, 'in', 'in/b.csv', 'in/b.pskc.xml', true)).toEqual(['run', '--out-dir', 'in', 'in/b.csv', '--activate', '--psk-file=k.key', '--settings', 'p.env', '--healthcheck-url', 'https://hc-ping.com/uuid', '--metrics-file', 'x.prom', '--type', 'TOTP', '--seeds', 'in/b.pskc.xml']);
  // An Entra file carries its seeds: --activate stays, no --seeds is added.
  expect(fileArgs(argv, 'in', 'in/e.csv', undefined, true, true)).toContain('--activate');
  // next: never carries the monitoring flags.
  expect(commandLine(fileArgs(argv, 'in', 'in/a.csv', undefined, false))).toBe('oath-bulk run --out-dir in in/a.csv --settings p.env');
});

test('shipments: *.csv files and links to files; not seed CSVs, reports, hidden files or folders', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'oath-bulk-folder-'));
  for (const name of ['b.csv', 'a.csv', 'a.seeds.csv', 'a.20261129T063000Z.results.csv', 'a.verify.20261129T063000Z_02.results.csv', 'a.20261129T063000Z.seeds.csv', '.hidden.csv', 'notes.txt', 'A.CSV']) writeFileSync(join(dir, name), 'x');
  mkdirSync(join(dir, 'sub.csv'));
  symlinkSync(join(dir, 'b.csv'), join(dir, 'link.csv'));
  symlinkSync(join(dir, 'missing'), join(dir, 'dangling.csv'));
  expect(await shipmentFiles(dir)).toEqual(['A.CSV', 'a.csv', 'b.csv', 'link.csv']);
});

test('review of #19: one folder has one lock however its path is typed (., ./, a relative or absolute path, a link); two folders of one name have two', async () => {
  const { folderLockPath } = await import('../../src/commands/shared/operations.js');
  const root = mkdtempSync(join(tmpdir(), 'oath-bulk-lockname-'));
  mkdirSync(join(root, 'a', 'in'), { recursive: true });
  mkdirSync(join(root, 'b', 'in'), { recursive: true });
  symlinkSync(join(root, 'a', 'in'), join(root, 'link'));
  const out = join(root, 'out');
  const here = process.cwd();
  try {
    process.chdir(join(root, 'a', 'in'));
    const names = ['.', './', join(root, 'a', 'in'), join(root, 'a', 'in', '.'), join(root, 'link'), '../in'].map((f) => folderLockPath(f, out));
    expect(new Set(names).size).toBe(1);
    expect(names[0]).not.toMatch(/\/\.\.?folder\.lock$|\/\.folder\.lock$/);
    expect(folderLockPath(join(root, 'b', 'in'), out)).not.toBe(names[0]);
  } finally {
    process.chdir(here);
  }
});
