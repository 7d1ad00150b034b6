// Section 8 of `npm run bench`, and on its own: `npm run build && node bench/startup.mjs [bin]`.
// What every cron morning and every small command pays before it does anything: the CLI's
// `--version`, `--help`, and a folder of finished shipments ("nothing to do", no request),
// each the median of 7 runs: wall time and peak RSS of the process. `bin` lets another build
// be measured (a before/after comparison). Node alone (`node -e 0`) is the floor.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const RUSAGE = resolve('bench/rusage.mjs');
const RUNS = 7;

async function once(args, env) {
  const file = join(mkdtempSync(join(tmpdir(), 'oath-bulk-rusage-')), 'r.json');
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', RUSAGE, ...args], { env: { ...env, OATH_BULK_RUSAGE_FILE: file }, stdio: ['ignore', 'ignore', 'ignore'] });
  const code = await new Promise((r) => child.once('exit', r));
  const ms = performance.now() - started;
  const usage = JSON.parse(readFileSync(file, 'utf8'));
  return { code, ms, rssMb: usage.maxRssKb / 1024 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(args, env) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await once(args, env));
  return { ms: median(runs.map((r) => r.ms)), rssMb: median(runs.map((r) => r.rssMb)), code: runs[0].code };
}

export async function startupBench(bin = 'dist/bin.js', log = () => undefined) {
  const BIN = resolve(bin);
  const { PingOneSandbox } = await import(pathToFileURL(resolve(bin, '../sandbox/server.js')).href);
  const work = mkdtempSync(join(tmpdir(), 'oath-bulk-startup-'));
  const sandbox = new PingOneSandbox();
  await sandbox.start();
  try {
    const env = { PATH: process.env.PATH, PINGONE_ENVIRONMENT_ID: sandbox.environmentId, PINGONE_CLIENT_ID: sandbox.clientId, PINGONE_CLIENT_SECRET: sandbox.clientSecret, PINGONE_API_URL: `${sandbox.url}/v1`, PINGONE_AUTH_URL: sandbox.url };
    // A folder of three shipments, run once so that every row is final.
    const folder = join(work, 'in');
    const out = join(work, 'out');
    mkdirSync(folder);
    for (const name of ['a', 'b', 'c']) {
      writeFileSync(join(folder, `${name}.csv`), 'userID,serialNumber\n' + Array.from({ length: 20 }, (_, i) => `c0b1c2d3-0000-4000-8000-${String(i + 1).padStart(12, '0')},ST${name.toUpperCase()}${String(i).padStart(6, '0')}`).join('\n') + '\n');
    }
    const first = await once(['--', BIN, 'run', folder, '--out-dir', out, '--quiet'], env);
    if (first.code !== 0) throw new Error(`the folder's first run exited ${first.code}`);
    const requests = sandbox.stats.requests;
    const rows = [];
    const cases = [
      ['node alone (node -e 0)', ['-e', '0']],
      ['oath-bulk --version', ['--', BIN, '--version']],
      ['oath-bulk --help', ['--', BIN, '--help']],
      ['run <folder> of 3 finished shipments ("nothing to do")', ['--', BIN, 'run', folder, '--out-dir', out, '--quiet']],
    ];
    const results = {};
    for (const [name, args] of cases) {
      log(`8. startup: ${name}`);
      const r = await measure(args, env);
      results[name] = r;
      rows.push([name, `${(r.ms / 1000).toFixed(2)} s, ${r.rssMb.toFixed(0)} MB peak RSS (median of ${RUNS}), exit ${r.code}`]);
    }
    if (sandbox.stats.requests !== requests) throw new Error('a finished folder sent requests');
    return { results, rows };
  } finally {
    await sandbox.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { rows } = await startupBench(process.argv[2] ?? 'dist/bin.js', (m) => process.stderr.write(m + '\n'));
  process.stdout.write(['| measure | result |', '| --- | --- |', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n') + '\n');
}
