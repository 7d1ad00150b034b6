/**
 * The README's install steps and its cron line, run as written, in a fresh clone: `git clone`,
 * `npm ci` (which builds the CLI), then the crontab's command line with cron's environment,
 * against the sandbox. The runbook cannot drift from what works.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { useSandbox } from '../support/sandbox.js';
import { shipment, tempDir } from '../support/cli.js';

const box = useSandbox('all');
const readme = readFileSync('README.md', 'utf8');

function sh(command: string, env: Record<string, string>, cwd?: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn('sh', ['-c', command], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    child.once('exit', (code) => resolvePromise({ code, out }));
  });
}

test('a fresh clone: npm ci builds the CLI, and the README\'s crontab runs a shipment as cron would', async () => {
  const dir = tempDir();
  const clone = join(dir, 'oath-bulk');
  execFileSync('git', ['clone', '--quiet', resolve('.'), clone]);
  const home = process.env['HOME'] ?? dir;
  // npm's side trips (a newer-npm check, audit, funding) reach the registry, and have stalled a
  // run here for minutes: off for every npm command of this test, as CI=true turns them off.
  const quiet = { npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false' };
  const install = /```sh\n# install\n([\s\S]*?)```/.exec(readme)?.[1]?.trim();
  expect(install).toBeDefined();
  // The install block's first line builds and packs in the checkout; then the README's
  // install without root, its ~/.local a temporary prefix here.
  const prefix = join(dir, 'prefix');
  const [build] = install!.replace(/\/opt\/oath-bulk/g, clone).split('\n');
  expect(build).toMatch(/npm ci && npm run package$/);
  const built = await sh(build!, { PATH: process.env['PATH'] ?? '', HOME: home, ...quiet }, dir);
  expect({ code: built.code, out: built.code === 0 ? '' : built.out }).toEqual({ code: 0, out: '' });
  const userInstall = /```sh\n(npm install -g [^\n]*--prefix ~\/\.local[^\n]*)\n/.exec(readme)?.[1];
  expect(userInstall).toBeDefined();
  const installed = await sh(userInstall!.replace(/~\/\.local/g, prefix), { PATH: process.env['PATH'] ?? '', HOME: home, ...quiet }, clone);
  expect({ code: installed.code, out: installed.code === 0 ? '' : installed.out }).toEqual({ code: 0, out: expect.anything() });
  const npmEnv = { PATH: `${join(prefix, 'bin')}:${process.env['PATH'] ?? ''}` };
  expect(statSync(join(clone, 'dist/bin.js')).mode & 0o111).not.toBe(0);
  // From another folder, by its installed name, with the dependency versions the tests ran with.
  const version = await sh('oath-bulk --version', { PATH: npmEnv.PATH, HOME: home }, tempDir());
  expect(version).toEqual({ code: 0, out: `${JSON.parse(readFileSync('package.json', 'utf8')).version}\n` });
  const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { version: string }> };
  const installedRoot = join(prefix, 'lib', 'node_modules', 'oath-bulk');
  for (const dep of ['axios', 'yargs', 'pino', 'csv-parse', 'saxes']) {
    expect({ dep, version: JSON.parse(readFileSync(join(installedRoot, 'node_modules', dep, 'package.json'), 'utf8')).version }).toEqual({ dep, version: lock.packages[`node_modules/${dep}`]!.version });
  }
  // Only what runs: no test or build tooling.
  expect(existsSync(join(installedRoot, 'node_modules', 'jest'))).toBe(false);
  expect(existsSync(join(installedRoot, 'node_modules', 'typescript'))).toBe(false);
  expect(existsSync(join(installedRoot, 'node_modules', 'exceljs'))).toBe(false);

  // npx from the checkout, with the settings flag: oath-bulk answers, not Node's own option parser.
  const npx = await sh('npx --no-install oath-bulk run missing.csv --settings missing.env', { PATH: process.env['PATH'] ?? '', HOME: home, ...quiet }, clone);
  expect(npx.out).toMatch(/^oath-bulk: --settings: cannot read "missing.env"/m);
  expect(npx.code).toBe(2);

  // The crontab as the README gives it: its PATH line, then the job's line without the schedule.
  const crontab = /```cron\n([\s\S]*?)```/.exec(readme)![1]!.split('\n');
  const pathLine = crontab.find((l) => l.startsWith('PATH='));
  const jobLine = crontab.find((l) => /^[\d*]/.test(l))!;
  const command = jobLine.split(/\s+/).slice(5).join(' ');
  const work = join(dir, 'work');
  const envFile = join(dir, 'pingone.env');
  writeFileSync(envFile, box.sandbox.envLines().join('\n') + '\n', { mode: 0o600 });
  const folder = join(dir, 'shipments');
  mkdirSync(folder);
  shipment(folder, 5, 'shipment.csv');
  const log = join(dir, 'oath-bulk.log');
  const metrics = join(dir, 'oath_bulk.prom');
  const line = command
    .replace(/\/opt\/oath-bulk/g, clone)
    .replace(/\/srv\/tokens\/shipments/g, folder)
    .replace(/\/etc\/oath-bulk\/pingone\.env/g, envFile)
    .replace(/\/var\/lib\/node_exporter\/oath_bulk\.prom/g, metrics)
    .replace(/\/var\/lib\/oath-bulk/g, work)
    .replace(/\/var\/log\/oath-bulk\.log/g, log);
  expect(line).not.toMatch(/\/srv\/|\/etc\/|\/var\//);
  expect(line).toMatch(/^oath-bulk run /);
  // cron's environment: its own PATH (or the crontab's), a HOME and a shell, nothing else.
  // The crontab's PATH reaches the installed oath-bulk (here under the temporary prefix).
  const cronEnv = { PATH: `${join(prefix, 'bin')}:${pathLine ? pathLine.slice(5) : '/usr/bin:/bin'}`, HOME: home, SHELL: '/bin/sh' };
  const first = await sh(line, cronEnv, '/');
  expect(first.code).toBe(0);
  expect(first.out).toBe(''); // all went to the log: cron mails nothing on success
  const logged = readFileSync(log, 'utf8');
  expect(logged).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z oath-bulk run /m);
  expect(logged).toMatch(/CREATED 5/);
  const results = parse(readFileSync(join(work, execFileSync('ls', [work], { encoding: 'utf8' }).split('\n').find((f) => f.endsWith('.results.csv'))!), 'utf8'), { columns: true }) as Array<Record<string, string>>;
  expect(results.map((r) => r['outcome'])).toEqual(Array(5).fill('CREATED'));
  expect(readFileSync(metrics, 'utf8')).toMatch(/^oath_bulk_exit_code\{command="run",input="shipment\.csv"\} 0$/m);

  // The next morning: the finished shipment costs nothing and adds no report set.
  const sets = execFileSync('ls', [work], { encoding: 'utf8' }).split('\n').filter((f) => f.endsWith('.summary.json')).length;
  const requests = box.sandbox.stats.requests;
  const again = await sh(line, cronEnv, '/');
  expect(again.code).toBe(0);
  expect(readFileSync(log, 'utf8')).toMatch(/shipment\.csv: nothing to do \(5 rows finished earlier\)/);
  expect(box.sandbox.stats.requests).toBe(requests);
  expect(execFileSync('ls', [work], { encoding: 'utf8' }).split('\n').filter((f) => f.endsWith('.summary.json')).length).toBe(sets);

  // A run with failed rows is not silent: the crontab line prints (cron mails) the exit code.
  const badFolder = join(dir, 'bad-shipments');
  mkdirSync(badFolder);
  writeFileSync(join(badFolder, 'bad.csv'), 'userID,serialNumber\n00000000-0000-4000-8000-000000000001,ZZ1\n');
  const failing = await sh(line.replace(folder, badFolder), cronEnv, '/');
  expect(failing.out).toMatch(/exit 1/);
  expect(existsSync(join(work, 'bad.journal.jsonl'))).toBe(true);
}, 240_000);
