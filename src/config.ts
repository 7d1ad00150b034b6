/**
 * Flags + environment + --settings (--env-file) -> one validated, immutable configuration.
 * Every problem is collected and reported at once, before any network call (exit 2).
 * Precedence: flag > --settings file > process environment.
 */
import { readFileSync, statSync } from 'node:fs';
import { UsageError } from './errors.js';
import { REGIONS, isLoopbackHost, isRegion, type Region } from './pingone/regions.js';
import type { Connection, TokenAuth } from './pingone/connection.js';
import { LOG_LEVELS, type LogLevel } from './report/logger.js';
import { UUID_RE } from './ids.js';

export type { Connection, TokenAuth } from './pingone/connection.js';

export interface EngineOptions {
  readonly concurrency: number;
  readonly rate: number;
  readonly maxAttempts: number;
  readonly timeoutMs: number;
  readonly maxConsecutiveFailures: number;
  /** First retry delay and the longest one, in ms (backoff doubles in between, with jitter). */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** How long PingOne may be unreachable (nothing but connection failures) before the run stops. */
  readonly maxUnreachableMs: number;
}

export interface ReportOptions {
  readonly outDir: string;
  readonly progress: boolean;
  readonly logLevel: LogLevel;
  readonly quiet: boolean;
  /** `contract` (comma, no BOM: SPEC's results CSV) or `input` (the input file's separator and BOM). */
  readonly csvDialect: 'contract' | 'input';
}

export { LOG_LEVELS, type LogLevel } from './report/logger.js';

/** Raw values as yargs hands them over: anything may be missing or of the wrong type. */
export type RawOptions = Readonly<Record<string, unknown>>;

export interface ConfigSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly isTTY: boolean;
  /** A warning for stderr (settings that work but should be fixed). */
  readonly warn?: (message: string) => void;
}

export { UUID_RE } from './ids.js';

/** Parses `KEY=value` lines (optional `export `, quotes, `#` comments). */
export function parseEnvFile(text: string, file: string): { values: Record<string, string>; problems: string[] } {
  const values: Record<string, string> = {};
  const problems: string[] = [];
  text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((rawLine, index) => {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) {
      // Never echo the line: it may be a secret with a typo in it.
      const key = /^(?:export\s+)?([A-Z][A-Z0-9_]*)\b/.exec(line)?.[1];
      problems.push(
        `--settings: ${file} line ${index + 1}${key ? ` (${key})` : ''}: expected KEY=value with "=" right after the name; the line is not shown, as it may hold a secret`,
      );
      return;
    }
    let value = match[2]!;
    const quoted = /^(['"])(.*)\1$/.exec(value);
    if (quoted) value = quoted[2]!;
    else value = value.replace(/\s+#.*$/, '');
    values[match[1]!] = value;
  });
  return { values, problems };
}

function describe(value: unknown): string {
  return JSON.stringify(String(value));
}

class Collector {
  readonly problems: string[] = [];
  add(flag: string, expected: string, got: unknown): void {
    this.problems.push(`${flag}: expected ${expected}, got ${got === undefined ? 'nothing' : describe(got)}`);
  }
  throwIfAny(): void {
    if (this.problems.length > 0) {
      throw new UsageError(this.problems.join('\n'), this.problems);
    }
  }
}

/** Loads --settings (if any) and merges it over the process environment. */
export function environmentFrom(raw: RawOptions, sources: ConfigSources): Record<string, string | undefined> {
  const envFile = raw['settings'] ?? raw['env-file'];
  if (envFile === undefined) return { ...sources.env };
  // One command asks several times (its connection, its monitoring; each file of a folder):
  // the file is read, and its warning given, once per process environment.
  const read = SETTINGS_READ.get(sources.env) ?? new Map<string, Record<string, string | undefined>>();
  SETTINGS_READ.set(sources.env, read);
  const known = read.get(String(envFile));
  if (known) return known;
  const merged = readSettings(String(envFile), sources);
  read.set(String(envFile), merged);
  return merged;
}

/** Settings files read so far, by the environment they were merged over. */
const SETTINGS_READ = new WeakMap<object, Map<string, Record<string, string | undefined>>>();

function readSettings(envFile: string, sources: ConfigSources): Record<string, string | undefined> {
  let text: string;
  try {
    text = readFileSync(String(envFile), 'utf8');
  } catch (error) {
    throw new UsageError(`--settings: cannot read ${describe(envFile)}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  const { values, problems } = parseEnvFile(text, String(envFile));
  if (problems.length > 0) throw new UsageError(problems.join('\n'), problems);
  warnIfShared(String(envFile), sources);
  const merged = { ...sources.env, ...values };
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const origin = new Map<string, string>();
  for (const key of Object.keys(values)) {
    const line = lines.findIndex((l) => new RegExp(`^\\s*(?:export\\s+)?${key}\\s*=`).test(l)) + 1;
    origin.set(key, `${key} in ${String(envFile)} line ${line}`);
  }
  ORIGINS.set(merged, origin);
  return merged;
}

/** Where each value of an environment came from (a --settings file line), for messages. */
const ORIGINS = new WeakMap<object, Map<string, string>>();

/** A file holding the client secret that others on the machine may read: say how to close it. */
function warnIfShared(path: string, sources: ConfigSources): void {
  try {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      sources.warn?.(`${path} is readable by ${mode & 0o007 ? 'every user' : 'its group'} (mode ${mode.toString(8)}) and holds the client secret: run chmod 600 ${path}`);
    }
  } catch {
    // Read a moment ago: nothing to add.
  }
}

/** `--region`, or `--region (PINGONE_REGION in pingone.env line 4)` when the value came from there. */
function label(raw: RawOptions, flag: string, env: Record<string, string | undefined>, variable: string): string {
  const fromFlag = raw[flag];
  if (fromFlag !== undefined && fromFlag !== null && String(fromFlag) !== '') return `--${flag}`;
  const origin = ORIGINS.get(env)?.get(variable);
  return origin ? `--${flag} (${origin})` : env[variable] !== undefined ? `--${flag} (${variable} in the environment)` : `--${flag}`;
}

function pick(raw: RawOptions, flag: string, env: Record<string, string | undefined>, variable: string): string | undefined {
  const fromFlag = raw[flag];
  if (fromFlag !== undefined && fromFlag !== null && String(fromFlag) !== '') return String(fromFlag).trim();
  const fromEnv = env[variable];
  return fromEnv === undefined || fromEnv.trim() === '' ? undefined : fromEnv.trim();
}

function checkUrl(c: Collector, flag: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    c.add(flag, 'an absolute URL such as https://api.pingone.eu/v1', value);
    return value;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    c.add(flag, 'an https:// URL (plain http is allowed only on loopback hosts)', value);
  }
  if (url.username || url.password) c.add(flag, 'a URL without credentials in it', `${url.protocol}//***@${url.host}`);
  return value.replace(/\/+$/, '');
}

function readSecretFile(c: Collector, path: string): string | undefined {
  try {
    const stat = statSync(path);
    if (!stat.isFile()) {
      c.add('--client-secret-file', 'a file holding the worker app client secret', path);
      return undefined;
    }
    const secret = readFileSync(path, 'utf8').replace(/^\uFEFF/, '').trim();
    if (secret === '') c.add('--client-secret-file', 'a file holding the client secret', `${path} (empty)`);
    return secret;
  } catch (error) {
    c.add('--client-secret-file', 'a readable file holding the client secret', `${path} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    return undefined;
  }
}

/** Connection settings: environment, worker app credentials, hosts. */
export function resolveConnection(raw: RawOptions, sources: ConfigSources): Connection {
  const c = new Collector();
  const env = environmentFrom(raw, sources);

  const environmentId = pick(raw, 'environment-id', env, 'PINGONE_ENVIRONMENT_ID');
  if (environmentId === undefined) c.add('--environment-id', 'the PingOne environment id (or PINGONE_ENVIRONMENT_ID)', undefined);
  else if (!UUID_RE.test(environmentId)) c.add(label(raw, 'environment-id', env, 'PINGONE_ENVIRONMENT_ID'), 'a UUID such as 9c4a1e2b-…', environmentId);

  const clientId = pick(raw, 'client-id', env, 'PINGONE_CLIENT_ID');
  if (clientId === undefined) c.add('--client-id', 'the worker app client id (or PINGONE_CLIENT_ID)', undefined);
  else if (!/^[A-Za-z0-9._~-]{1,200}$/.test(clientId)) c.add(label(raw, 'client-id', env, 'PINGONE_CLIENT_ID'), 'a client id of letters, digits and -._~', clientId);

  let clientSecret: string | undefined;
  const secretFile = raw['client-secret-file'];
  if (secretFile !== undefined && secretFile !== null && String(secretFile) !== '') {
    clientSecret = readSecretFile(c, String(secretFile));
    if (clientSecret !== undefined) warnIfShared(String(secretFile), sources);
  }
  else clientSecret = env['PINGONE_CLIENT_SECRET'];
  if (clientSecret === undefined || clientSecret === '') {
    if (!c.problems.some((p) => p.startsWith('--client-secret-file'))) {
      c.add('--client-secret-file', 'a file holding the client secret (or PINGONE_CLIENT_SECRET in the environment)', undefined);
    }
  }

  const regionRaw = (pick(raw, 'region', env, 'PINGONE_REGION') ?? 'NA').toUpperCase();
  let region: Region = 'NA';
  if (isRegion(regionRaw)) region = regionRaw;
  else c.add(label(raw, 'region', env, 'PINGONE_REGION'), `one of ${Object.keys(REGIONS).join('|')}`, regionRaw);

  const apiRaw = pick(raw, 'api-url', env, 'PINGONE_API_URL');
  const authRaw = pick(raw, 'auth-url', env, 'PINGONE_AUTH_URL');
  const apiUrl = apiRaw === undefined ? REGIONS[region].apiUrl : checkUrl(c, label(raw, 'api-url', env, 'PINGONE_API_URL'), apiRaw);
  const authUrl = authRaw === undefined ? REGIONS[region].authUrl : checkUrl(c, label(raw, 'auth-url', env, 'PINGONE_AUTH_URL'), authRaw);

  const tokenAuthRaw = (pick(raw, 'token-auth', env, 'PINGONE_TOKEN_AUTH') ?? 'basic').toLowerCase();
  if (tokenAuthRaw !== 'basic' && tokenAuthRaw !== 'post') c.add(label(raw, 'token-auth', env, 'PINGONE_TOKEN_AUTH'), 'basic or post', tokenAuthRaw);

  c.throwIfAny();
  return Object.freeze({
    environmentId: environmentId!.toLowerCase(),
    clientId: clientId!,
    clientSecret: clientSecret!,
    region,
    apiUrl,
    authUrl,
    tokenAuth: tokenAuthRaw as TokenAuth,
  });
}

function numberOption(c: Collector, raw: RawOptions, flag: string, fallback: number, min: number, max: number, integer: boolean): number {
  const value = raw[flag];
  if (value === undefined || value === null) return fallback;
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    c.add(`--${flag}`, `${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`, value);
    return fallback;
  }
  return n;
}

export function resolveEngineOptions(raw: RawOptions): EngineOptions {
  const c = new Collector();
  const options = {
    concurrency: numberOption(c, raw, 'concurrency', 8, 1, 256, true),
    rate: numberOption(c, raw, 'rate', 20, 0.1, 10000, false),
    maxAttempts: numberOption(c, raw, 'max-attempts', 8, 1, 20, true),
    timeoutMs: numberOption(c, raw, 'timeout', 30000, 100, 600000, true),
    maxConsecutiveFailures: numberOption(c, raw, 'max-consecutive-failures', 25, 1, 1000000, true),
    maxUnreachableMs: numberOption(c, raw, 'max-unreachable', 60, 1, 3600, false) * 1000,
    backoffBaseMs: numberOption(c, raw, 'backoff-base', 1000, 1, 600000, true),
    backoffMaxMs: numberOption(c, raw, 'backoff-max', 30000, 1, 600000, true),
  };
  c.throwIfAny();
  return Object.freeze(options);
}

export function resolveReportOptions(raw: RawOptions, sources: ConfigSources): ReportOptions {
  const c = new Collector();
  const level = String(raw['log-level'] ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) c.add('--log-level', LOG_LEVELS.join('|'), raw['log-level']);
  const outDir = String(raw['out-dir'] ?? 'reports');
  if (outDir.trim() === '') c.add('--out-dir', 'a directory path', outDir);
  const csvDialect = String(raw['csv-dialect'] ?? 'contract');
  if (csvDialect !== 'contract' && csvDialect !== 'input') c.add('--csv-dialect', 'contract|input', raw['csv-dialect']);
  c.throwIfAny();
  const quiet = raw['quiet'] === true;
  const progressFlag = raw['progress'];
  return Object.freeze({
    outDir,
    logLevel: level as LogLevel,
    quiet,
    csvDialect: csvDialect as ReportOptions['csvDialect'],
    progress: !quiet && (typeof progressFlag === 'boolean' ? progressFlag : sources.isTTY),
  });
}

/** Cron-grade operations (README "Runbook"): flags, else OATH_BULK_… settings. */
export interface OpsOptions {
  /** A folder run: how long to wait for another run of the same folder (--lock-wait). */
  readonly lockWaitS: number;
  /** Pinged at `<url>/start` and `<url>/<exit code>` (healthchecks.io's protocol). */
  readonly healthcheckUrl?: string;
  /** Prometheus text-format metrics, written atomically at the end of every run. */
  readonly metricsFile?: string;
  /** Report sets kept per input name (the journal is never removed). */
  readonly keepReports?: number;
}

/**
 * `scheduled`: a real `run` of a folder (what cron runs). The settings file's healthcheck URL
 * and metrics file apply only to it: a verify, rollback, import, dry run or single-file run by
 * hand with the same settings file must not ping cron's monitor nor replace its metrics. Flags
 * apply to any command.
 */
export function resolveOpsOptions(raw: RawOptions, sources: ConfigSources, scheduled: boolean, folder = scheduled): OpsOptions {
  const all = environmentFrom(raw, sources);
  const env = scheduled ? all : { ...all, OATH_BULK_HEALTHCHECK_URL: undefined, OATH_BULK_METRICS_FILE: undefined };
  const c = new Collector();
  const url = pick(raw, 'healthcheck-url', env, 'OATH_BULK_HEALTHCHECK_URL');
  let healthcheckUrl: string | undefined;
  if (url !== undefined) {
    // The URL is a capability: a problem with it shows its scheme and host only.
    const where = label(raw, 'healthcheck-url', env, 'OATH_BULK_HEALTHCHECK_URL');
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      c.add(where, 'an absolute https:// URL such as https://hc-ping.com/<uuid> (the value is not shown: it is a ping key)', '…');
    }
    if (parsed && parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname))) {
      c.add(where, 'an https:// URL (plain http is allowed only on loopback hosts: the URL is a ping key)', `${parsed.protocol}//${parsed.host}/…`);
    } else if (parsed) healthcheckUrl = url.replace(/\/+$/, '');
  }
  const metricsFile = pick(raw, 'metrics-file', env, 'OATH_BULK_METRICS_FILE');
  if (metricsFile !== undefined && !/\.prom$/.test(metricsFile)) c.add(label(raw, 'metrics-file', env, 'OATH_BULK_METRICS_FILE'), 'a path ending in .prom (what node_exporter\'s textfile collector reads)', metricsFile);
  const keep = pick(raw, 'keep-reports', env, 'OATH_BULK_KEEP_REPORTS');
  let keepReports: number | undefined;
  if (keep !== undefined) {
    keepReports = Number(keep);
    if (!Number.isInteger(keepReports) || keepReports < 1 || keepReports > 10000) c.add(label(raw, 'keep-reports', env, 'OATH_BULK_KEEP_REPORTS'), 'a whole number of report sets to keep, 1 or more', keep);
  }
  // Only a folder run waits for another run of its folder: elsewhere the flag is a mistake, and
  // the setting (shared with every command through the settings file) is not read.
  let lockWaitS = 0;
  if (!folder && raw['lock-wait'] !== undefined) c.add('--lock-wait', 'a folder run (only a folder run waits for another run of its folder)', String(raw['lock-wait']));
  const wait = folder ? (raw['lock-wait'] === '' ? '' : pick(raw, 'lock-wait', all, 'OATH_BULK_LOCK_WAIT')) : undefined;
  if (wait !== undefined) {
    lockWaitS = /^\d+(?:\.\d+)?$/.test(wait.trim()) ? Number(wait) : NaN;
    if (!Number.isFinite(lockWaitS) || lockWaitS < 0 || lockWaitS > 86_400) c.add(label(raw, 'lock-wait', all, 'OATH_BULK_LOCK_WAIT'), 'seconds to wait for the folder lock, from 0 to 86400', wait);
  }
  c.throwIfAny();
  return Object.freeze({ healthcheckUrl, metricsFile, keepReports, lockWaitS });
}

/** Runs every resolver and reports all of their problems together. */
export function resolveAll<T extends unknown[]>(...resolvers: { [K in keyof T]: () => T[K] }): T {
  const problems: string[] = [];
  const results = resolvers.map((resolve) => {
    try {
      return resolve();
    } catch (error) {
      if (error instanceof UsageError) {
        problems.push(...error.problems);
        return undefined;
      }
      throw error;
    }
  });
  if (problems.length > 0) throw new UsageError(problems.join('\n'), problems);
  return results as T;
}
