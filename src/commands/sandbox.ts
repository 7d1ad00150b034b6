/**
 * `oath-bulk sandbox`: the PingOne simulator on loopback, for demos, tests and drills.
 * Prints the settings to use as KEY=value lines (what --env-file reads), runs until
 * SIGINT/SIGTERM, then prints what it saw.
 */
import { readFileSync } from 'node:fs';
import { writeFile, chmod } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { UsageError } from '../errors.js';
import { parseFaultMix } from '../sandbox/faults.js';
import { PingOneSandbox, type DirectoryUser } from '../sandbox/server.js';
import type { CommandDeps } from './shared/deps.js';

function num(raw: Record<string, unknown>, flag: string, min: number, max: number, problems: string[]): number {
  const value = Number(raw[flag]);
  if (!Number.isFinite(value) || value < min || value > max) problems.push(`--${flag}: expected a number from ${min} to ${max}, got ${JSON.stringify(raw[flag])}`);
  return value;
}

export function readDirectory(path: string): DirectoryUser[] {
  let rows: Array<Record<string, string>>;
  try {
    rows = parse(readFileSync(path, 'utf8'), { columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()), skip_empty_lines: true, trim: true, bom: true });
  } catch (error) {
    throw new UsageError(`--users: cannot read ${path} as CSV with id,username,email columns (${(error as Error).message.split('\n')[0]})`);
  }
  return rows.map((r) => ({ id: (r['id'] ?? r['userid'] ?? '').toLowerCase(), username: r['username'] || undefined, email: r['email'] || undefined })).filter((u) => u.id !== '');
}

export async function sandboxCommand(raw: Record<string, unknown>, deps: CommandDeps): Promise<number> {
  const problems: string[] = [];
  const port = num(raw, 'port', 0, 65535, problems);
  const rateLimit = num(raw, 'rate-limit', 0, 100000, problems);
  const latencyMs = num(raw, 'latency', 0, 600000, problems);
  const slowMs = num(raw, 'slow-ms', 0, 600000, problems);
  const tokenTtlS = num(raw, 'token-ttl', 1, 86400, problems);
  const maxDevicesPerUser = num(raw, 'max-devices', 1, 15, problems);
  const seed = num(raw, 'seed', 0, 2 ** 32, problems);
  const jobSizeLimit = num(raw, 'job-size-limit', 1, 100000, problems);
  const jobDelayMs = num(raw, 'job-delay', 0, 600000, problems);
  const inventoryPageSize = num(raw, 'inventory-page-size', 1, 1000, problems);
  const populate = raw['populate'] === undefined ? 0 : num(raw, 'populate', 0, 100_000, problems);
  const onUserDeleted = raw['on-user-deleted'] === undefined ? 'orphan' : String(raw['on-user-deleted']);
  if (onUserDeleted !== 'orphan' && onUserDeleted !== 'free') problems.push(`--on-user-deleted: expected orphan or free, got ${JSON.stringify(onUserDeleted)}`);
  const inventory = raw['inventory'] === undefined ? 'open' : String(raw['inventory']);
  if (inventory !== 'open' && inventory !== 'imported') problems.push(`--inventory: expected open or imported, got ${JSON.stringify(inventory)}`);
  let faults = {};
  try {
    faults = parseFaultMix(String(raw['faults'] ?? ''));
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (problems.length > 0) throw new UsageError(problems.join('\n'), problems);
  const users = typeof raw['users'] === 'string' ? readDirectory(raw['users']) : [];

  const failJobSerials = typeof raw['fail-job-serials'] === 'string' ? raw['fail-job-serials'].split(',').map((x) => x.trim()).filter(Boolean) : [];
  const sandbox = new PingOneSandbox({
    port, rateLimit, latencyMs, slowMs, tokenTtlS, maxDevicesPerUser, seed, faults, users, forbidden: raw['forbidden'] === true, recordArrivals: false,
    inventory: inventory as 'open' | 'imported', jobSizeLimit, jobDelayMs, failJobSerials, activationRequired: raw['activation-required'] === true,
    inventoryPageSize, onUserDeleted: onUserDeleted as 'orphan' | 'free',
  });
  try {
    await sandbox.start();
  } catch (error) {
    throw new UsageError(`--port: cannot listen on 127.0.0.1:${port} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const made = populate > 0 ? sandbox.populate({ tokens: populate }) : undefined;
  const lines = sandbox.envLines();
  if (typeof raw['env-out'] === 'string') {
    await writeFile(raw['env-out'], lines.join('\n') + '\n', { mode: 0o600 });
    await chmod(raw['env-out'], 0o600);
  }
  deps.stdout.write(`# oath-bulk sandbox: a PingOne simulator on ${sandbox.url} (Ctrl-C stops it)\n`);
  deps.stdout.write(
    inventory === 'imported'
      ? '# only serials imported into its token inventory (oathTokens, oathJobs) can be assigned; user ids beginning 00000000- do not exist\n'
      : '# serials beginning UNKNOWN are not in its token inventory; user ids beginning 00000000- do not exist\n',
  );
  if (made) deps.stdout.write(`# populated: ${populate} tokens POP000001…: ${made.free.length} free, ${made.assigned.length} on users, ${made.pending.length} waiting for a first code, ${made.disabled.length} on disabled users, ${made.deleted.length} on deleted users (--on-user-deleted ${onUserDeleted})\n`);
  deps.stdout.write(lines.join('\n') + '\n');

  await new Promise<void>((resolve) => {
    if (deps.control.stopped) resolve();
    else deps.control.stopping.addEventListener('abort', () => resolve(), { once: true });
  });
  await sandbox.stop();
  deps.stderr.write(`sandbox: ${sandbox.stats.requests} requests, ${sandbox.stats.devicesCreated} devices created, statuses ${JSON.stringify(sandbox.stats.byStatus)}\n`);
  return 0;
}
