/**
 * `oath-bulk import <seeds>`: a vendor's seed file (PSKC, or a seed CSV) into PingOne's OATH
 * token inventory, with the same operating standard as `run`: checked whole before anything
 * is sent, a journal and its lock, results/log/summary, exit codes 0/1/2/3, a dry run that
 * reads which serials the inventory already holds. Seeds, keys and passphrases never reach
 * any output (SEEDS.md "Handling seeds safely").
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RawOptions } from '../config.js';
import { UsageError } from '../errors.js';
import { IMPORT_OUTCOMES, importTokens, type ImportOutcome } from '../engine/import-batch.js';
import { NullJournal, openLockedJournal, readOnlyJournal, type PairJournal } from '../engine/journal.js';
import { commandLine } from '../report/command-line.js';
import { prepareOutDir, stem } from '../report/files.js';
import { ResultsWriter } from '../report/results-writer.js';
import { buildSummary, humanSummary, stopAdvice } from '../report/summary.js';
import { Tally } from '../report/tally.js';
import { MAX_PSKC_BYTES, readPskc, type PskcKeys } from '../seeds/pskc.js';
import { readSeedCsv, type SecretEncoding, type SeedDefaults } from '../seeds/seed-csv.js';
import { Secret } from '../seeds/secret.js';
import { SeedFileError } from '../seeds/seed-file-error.js';
import type { SeedToken } from '../seeds/token.js';
import { closeJournal, openCommand, proveCredentials, resolveCommandConfig } from './context.js';
import type { CommandDeps } from './run.js';

export const IMPORT_COLUMNS = ['row', 'serialNumber', 'type', 'otpLength', 'outcome', 'tokenId', 'errorCode', 'message', 'manufacturer', 'model'];

/** Default tokens per job: large enough that 100,000 tokens are 200 jobs, small enough that a failed job is split in ~9 steps. */
export const DEFAULT_JOB_SIZE = 500;

function choice<T extends string>(raw: RawOptions, flag: string, allowed: readonly T[], problems: string[]): T | undefined {
  const v = raw[flag];
  if (v === undefined) return undefined;
  const s = String(v).trim();
  const hit = allowed.find((a) => a.toLowerCase() === s.toLowerCase());
  if (!hit) problems.push(`--${flag}: expected ${allowed.join(' or ')}, got ${JSON.stringify(s)}`);
  return hit;
}

function whole(raw: RawOptions, flag: string, allowed: readonly number[] | [number, number], problems: string[], range = false): number | undefined {
  const v = raw[flag];
  if (v === undefined) return undefined;
  const n = Number(v);
  const ok = Number.isInteger(n) && (range ? n >= allowed[0]! && n <= allowed[1]! : allowed.includes(n));
  if (!ok) problems.push(`--${flag}: expected ${range ? `a whole number from ${allowed[0]} to ${allowed[1]}` : allowed.join(' or ')}, got ${JSON.stringify(v)}`);
  return ok ? n : undefined;
}

/** A key file: raw 16/24/32 bytes, or that many bytes as hex text. Never echoed. */
function readPsk(path: string): Secret {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new UsageError(`--psk-file: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const asText = bytes.toString('latin1').trim();
  if (/^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{48}|[0-9a-fA-F]{64})$/.test(asText)) {
    bytes.fill(0);
    return Secret.own(Buffer.from(asText, 'hex'));
  }
  if ([16, 24, 32].includes(bytes.length)) return Secret.own(bytes);
  const length = bytes.length;
  bytes.fill(0);
  throw new UsageError(`--psk-file: ${path} holds ${length} bytes; expected a key of 16, 24 or 32 bytes, raw or as hex text`);
}

function readPassphrase(path: string): Secret {
  try {
    const bytes = readFileSync(path);
    // One trailing newline is the editor's, not the passphrase's.
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0a) end--;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;
    const secret = Secret.own(Buffer.from(bytes.subarray(0, end)));
    bytes.fill(0);
    return secret;
  } catch (error) {
    throw new UsageError(`--passphrase-file: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Asks on the terminal without echoing what is typed. */
async function promptHidden(deps: CommandDeps, question: string): Promise<Secret> {
  const stdin = process.stdin;
  deps.stderr.write(question);
  const chunks: Buffer[] = [];
  stdin.setRawMode?.(true);
  stdin.resume();
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (data: Buffer): void => {
        for (const byte of data) {
          if (byte === 0x0d || byte === 0x0a) {
            stdin.off('data', onData);
            resolve();
            return;
          }
          if (byte === 0x03) {
            stdin.off('data', onData);
            reject(new UsageError('import: no passphrase given; nothing was imported'));
            return;
          }
          if (byte === 0x7f) chunks.pop();
          else chunks.push(Buffer.from([byte]));
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode?.(false);
    stdin.pause();
    deps.stderr.write('\n');
  }
  const secret = Secret.own(Buffer.concat(chunks));
  for (const c of chunks) c.fill(0);
  return secret;
}

function warnIfShared(path: string, deps: CommandDeps, what: string): void {
  try {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) deps.warn?.(`${path} is readable by ${mode & 0o007 ? 'every user' : 'its group'} (mode ${mode.toString(8)}) and holds ${what}: run chmod 600 ${path}`);
  } catch {
    // Read in a moment: its own error says what is wrong.
  }
}

async function readSeeds(path: string, raw: RawOptions, deps: CommandDeps, defaults: SeedDefaults): Promise<SeedToken[]> {
  let head: Buffer;
  try {
    const info = statSync(path);
    if (!info.isFile()) throw new SeedFileError(path, 'is not a file: give the seed file (PSKC .xml or a seed CSV)');
    if (info.size > MAX_PSKC_BYTES) throw new SeedFileError(path, `is larger than ${MAX_PSKC_BYTES / 1024 / 1024} MB: not a token shipment`);
    head = readFileSync(path);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new SeedFileError(path, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}): check the path`);
  }
  warnIfShared(path, deps, 'token seeds');
  const text = head.toString('utf8').replace(/^\uFEFF/, '');
  if (!text.trimStart().startsWith('<')) {
    head.fill(0);
    return (await readSeedCsv(path, defaults)).tokens;
  }
  const keys: { psk?: Secret; passphrase?: Secret } = {};
  if (typeof raw['psk-file'] === 'string') {
    warnIfShared(raw['psk-file'], deps, 'the key to the seeds');
    keys.psk = readPsk(raw['psk-file']);
  }
  if (typeof raw['passphrase-file'] === 'string') {
    warnIfShared(raw['passphrase-file'], deps, 'the passphrase to the seeds');
    keys.passphrase = readPassphrase(raw['passphrase-file']);
  }
  try {
    return readPskc(path, text, keys as PskcKeys);
  } catch (error) {
    // Protected by a passphrase that was not given: ask, when a person is at a terminal.
    if (error instanceof SeedFileError && /--passphrase-file/.test(error.message) && !keys.passphrase && process.stdin.isTTY && deps.isTTY) {
      keys.passphrase = await promptHidden(deps, `Passphrase for ${path}: `);
      return readPskc(path, text, keys as PskcKeys);
    }
    throw error;
  } finally {
    keys.psk?.wipe();
    keys.passphrase?.wipe();
    head.fill(0);
  }
}

export async function importCommand(seedsPath: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  const dryRun = raw['dry-run'] === true;
  for (const flag of ['psk', 'passphrase']) {
    if (raw[flag] !== undefined) throw new UsageError(`--${flag}: not accepted, because a key on the command line shows in \`ps\` and shell history; use --${flag}-file <path>`);
  }
  const problems: string[] = [];
  const defaults: SeedDefaults = {
    type: choice(raw, 'type', ['HOTP', 'TOTP'] as const, problems),
    otpLength: whole(raw, 'otp-length', [6, 8], problems),
    timeStep: whole(raw, 'time-step', [30, 60], problems),
    secretEncoding: choice<SecretEncoding>(raw, 'secret-encoding', ['hex', 'base32', 'base64'], problems),
  };
  const jobSize = whole(raw, 'job-size', [1, 1000], problems, true) ?? DEFAULT_JOB_SIZE;
  if (problems.length > 0) throw new UsageError(problems.join('\n'), problems);
  const config = resolveCommandConfig(raw, deps);
  const { connection, engine, report } = config;

  // Read, decrypt and check the whole file before anything is sent.
  const tokens = await readSeeds(seedsPath, raw, deps, defaults);

  await prepareOutDir(report.outDir);
  const journalPath = typeof raw['journal'] === 'string' ? raw['journal'] : join(report.outDir, `${stem(seedsPath)}.import.journal.jsonl`);
  const keepJournal = raw['journal'] !== false && !dryRun;
  const locked = keepJournal ? await openLockedJournal(journalPath, connection.environmentId) : undefined;
  const journal: PairJournal = locked?.journal ?? (dryRun && raw['journal'] !== false ? await readOnlyJournal(journalPath, connection.environmentId) : new NullJournal());

  const ctx = await openCommand('import', seedsPath, config, deps);
  const { paths, logger, session, startedAt } = ctx;
  const t0 = performance.now();
  const tally = new Tally<ImportOutcome>(IMPORT_OUTCOMES, ['NOT_ATTEMPTED']);
  logger.info({ event: 'import.start', input: seedsPath, dryRun, tokens: tokens.length, invalid: tokens.filter((t) => t.problem).length, jobSize, journal: keepJournal ? journalPath : null });
  for (const t of tokens) for (const w of t.warnings) logger.warn({ event: 'token.warning', row: t.index, serialNumber: t.serialNumber, message: w });

  const results = await ResultsWriter.open(paths.results, [], IMPORT_COLUMNS, ctx.faultHandler(paths.results));
  let failure: unknown;
  try {
    await proveCredentials(session, deps.control);
    const retry = ctx.retryContext(journal);
    let settled = 0;
    const line = (): string => `import: ${settled}/${tokens.length} tokens settled · ${session.pacer.currentRate.toFixed(1)} req/s · jobs ${session.stats.job} · retries ${session.stats.retries}`;
    const heartbeat = setInterval(() => logger.info({ event: 'progress', done: settled, total: tokens.length, requests: session.stats.total }), 30_000);
    const drawing = report.progress ? setInterval(() => deps.stderr.write(`\r\x1b[2K${line()}`), 250) : undefined;
    heartbeat.unref();
    drawing?.unref();
    const outcomes = await importTokens(tokens, {
      ...retry,
      inventory: session.client,
      jobSize,
      dryRun,
      pollFirstMs: 250,
      pollMaxMs: 5000,
      jobTimeoutMs: 10 * 60_000,
      // As many jobs in flight as requests may be: polls then fill the pace.
      jobsInFlight: engine.concurrency,
      onSettled: () => settled++,
    }).finally(() => {
      clearInterval(heartbeat);
      if (drawing) {
        clearInterval(drawing);
        deps.stderr.write(`\r\x1b[2K${line()}\n`);
      }
    });
    for (const r of outcomes) {
      const t = r.token;
      tally.add({ outcome: r.outcome, errorCode: r.errorCode, finishedEarlier: r.finishedEarlier });
      logger[r.outcome === 'FAILED' || r.outcome === 'INVALID' || r.outcome === 'UNCONFIRMED' ? 'warn' : 'info']({ event: 'row', row: t.index, serialNumber: t.serialNumber, outcome: r.outcome, tokenId: r.tokenId, errorCode: r.errorCode });
      await results.writeCells([t.index, t.serialNumber, t.type, t.otpLength, r.outcome, r.tokenId, r.errorCode, r.message, t.manufacturer, t.model]);
    }
  } catch (error) {
    failure = error;
  } finally {
    for (const t of tokens) t.secret?.wipe();
    await results.close();
    failure ??= await closeJournal(locked ?? journal, deps.control);
  }
  if (failure) {
    await ctx.log.close();
    throw failure;
  }

  const stopped = deps.control.reason;
  const good: ImportOutcome[] = dryRun ? ['IMPORTED', 'ALREADY_PRESENT', 'NOT_ATTEMPTED'] : ['IMPORTED', 'ALREADY_PRESENT'];
  const exitCode = stopped ? 3 : tally.exitCode(good);
  const durationMs = Math.round(performance.now() - t0);
  const summary = buildSummary({ command: 'import', runId: paths.runId, input: seedsPath, dryRun, startedAt, durationMs, tally, requests: session.stats, stopped, exitCode, reports: { ...paths, journal: raw['journal'] === false ? null : journalPath } });
  const args = deps.argv ?? ['import', seedsPath, ...(dryRun ? ['--dry-run'] : [])];
  let next: string | undefined;
  if (stopped) next = `${stopAdvice(stopped)}: ${commandLine(args)}`;
  else if (dryRun) next = exitCode === 0 ? `import it for real: ${commandLine(args, ['--dry-run'])}` : `correct what the problems above name, then check again: ${commandLine(args)}`;
  else if (exitCode !== 0) next = `see the rows that are not IMPORTED in the results; run again to retry what failed (imported tokens are not sent again): ${commandLine(args)}`;
  else next = 'assign the tokens: oath-bulk run <assignments.csv> --settings <file>; then delete the plaintext seed file';
  await ctx.finish(summary, humanSummary({ title: `oath-bulk import ${seedsPath}`, dryRun, durationMs, tally, requests: session.stats, stopped, reports: paths, next }));
  return exitCode;
}
