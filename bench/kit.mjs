// Shared by the benchmark scripts: shipments on disk, a sandbox per measurement, and the CLI
// run as a user runs it, with its own CPU time and peak RSS (bench/rusage.mjs).
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PingOneSandbox } from '../dist/sandbox/server.js';

const BIN = resolve('dist/bin.js');
const RUSAGE = resolve('bench/rusage.mjs');

export function benchKit(work, { bin = BIN } = {}) {
  function userId(n) {
    return `b0b1c2d3-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
  }

  async function shipment(name, n, prefix = 'BN') {
    const path = join(work, `${name}.csv`);
    const out = createWriteStream(path);
    out.write('userID,serialNumber\n');
    for (let i = 1; i <= n; i++) {
      if (!out.write(`${userId(i)},${prefix}${String(i).padStart(9, '0')}\n`)) await new Promise((r) => out.once('drain', r));
    }
    await new Promise((r) => out.end(r));
    return path;
  }

  async function withSandbox(options, fn) {
    const sandbox = new PingOneSandbox(options);
    await sandbox.start();
    try {
      return await fn(sandbox);
    } finally {
      await sandbox.stop();
    }
  }

  function env(sandbox) {
    return {
      PATH: process.env.PATH,
      PINGONE_ENVIRONMENT_ID: sandbox.environmentId,
      PINGONE_CLIENT_ID: sandbox.clientId,
      PINGONE_CLIENT_SECRET: sandbox.clientSecret,
      PINGONE_API_URL: `${sandbox.url}/v1`,
      PINGONE_AUTH_URL: sandbox.url,
      // The bench's own ledger: never the machine's.
      OATH_BULK_STATE_DIR: join(work, 'state'),
    };
  }

  /** Runs the CLI as a user does; returns wall time, exit code, and the job's own CPU and peak RSS. */
  async function job(sandbox, args) {
    const out = mkdtempSync(join(work, 'out-'));
    const rusageFile = join(out, 'rusage.json');
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', RUSAGE, '--', bin, ...args, '--out-dir', out, '--quiet'], {
      env: { ...env(sandbox), OATH_BULK_RUSAGE_FILE: rusageFile },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const code = await new Promise((r) => child.once('exit', r));
    const ms = performance.now() - started;
    const usage = JSON.parse(readFileSync(rusageFile, 'utf8'));
    const summaryFile = readdirSync(out).find((f) => f.endsWith('.summary.json'));
    const summary = summaryFile ? JSON.parse(readFileSync(join(out, summaryFile), 'utf8')) : undefined;
    rmSync(out, { recursive: true, force: true });
    return { code, ms, cpuMs: usage.userMs + usage.systemMs, maxRssMb: usage.maxRssKb / 1024, summary };
  }

  return { userId, shipment, withSandbox, env, job };
}
