/**
 * End-to-end helpers: the built CLI (dist/bin.js) run as a user runs it, in a child process,
 * against a sandbox listening on loopback in the test process.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import type { PingOneSandbox } from '../../src/sandbox/server.js';

export const BIN = resolve('dist/bin.js');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export function tempDir(prefix = 'oath-bulk-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Each sandbox's ledger folder: a test's revokes never reach another test's sandbox, nor the machine's own state. */
const STATE_DIRS = new WeakMap<PingOneSandbox, string>();

export function stateDirOf(sandbox: PingOneSandbox): string {
  let dir = STATE_DIRS.get(sandbox);
  if (!dir) {
    STATE_DIRS.set(sandbox, (dir = join(tempDir('oath-bulk-state-'), 'state')));
    // An established machine: its ledger exists (a command that has to start one says so on stderr).
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, `${sandbox.environmentId}.ledger.jsonl`), JSON.stringify({ ledger: 'oath-bulk', v: 1, environmentId: sandbox.environmentId, createdAt: new Date().toISOString() }) + '\n', { mode: 0o600 });
  }
  return dir;
}

/** Environment for a CLI child that talks to `sandbox`. */
export function sandboxEnv(sandbox: PingOneSandbox): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '',
    OATH_BULK_STATE_DIR: stateDirOf(sandbox),
    PINGONE_ENVIRONMENT_ID: sandbox.environmentId,
    PINGONE_CLIENT_ID: sandbox.clientId,
    PINGONE_CLIENT_SECRET: sandbox.clientSecret,
    PINGONE_API_URL: `${sandbox.url}/v1`,
    PINGONE_AUTH_URL: sandbox.url,
  };
}

export function runCli(args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolvePromise) => {
    execFile(process.execPath, ['--', BIN, ...args], { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolvePromise({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

export function startCli(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--', BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
}

export type ResultRow = Record<string, string>;

/** The newest report of a kind in `dir` (results.csv, log.jsonl, summary.json). */
export function latest(dir: string, suffix: string): string {
  const files = readdirSync(dir).filter((f) => f.endsWith(suffix)).sort();
  if (files.length === 0) throw new Error(`no *${suffix} in ${dir}`);
  return join(dir, files[files.length - 1]!);
}

export function readResults(dir: string): ResultRow[] {
  return parse(readFileSync(latest(dir, '.results.csv'), 'utf8'), { columns: true }) as ResultRow[];
}

export function readLog(dir: string): Array<Record<string, unknown>> {
  return readFileSync(latest(dir, '.log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A shipment CSV of `n` rows for distinct users. */
export function shipment(dir: string, n: number, name = 'shipment.csv', serialPrefix = 'SN'): { path: string; rows: Array<{ userID: string; serialNumber: string }> } {
  const rows = Array.from({ length: n }, (_, i) => ({ userID: userId(i + 1), serialNumber: `${serialPrefix}${String(i + 1).padStart(8, '0')}` }));
  const path = join(dir, name);
  writeFileSync(path, 'userID,serialNumber\n' + rows.map((r) => `${r.userID},${r.serialNumber}`).join('\n') + '\n');
  return { path, rows };
}

/** A deterministic user id for row n. */
export function userId(n: number): string {
  const hex = n.toString(16).padStart(12, '0');
  return `a0b1c2d3-0000-4000-8000-${hex}`;
}
