/**
 * Reading a seed file for `import` and `run --seeds`: PSKC (plain, pre-shared key, or
 * passphrase, asked for on a terminal when needed) or a seed CSV, with the flags that fill in
 * what the file leaves out. Keys and passphrases come from files (never flag values) and are
 * wiped after use; a file readable by others draws a warning.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { RawOptions } from '../config.js';
import { UsageError } from '../errors.js';
import type { CommandDeps } from '../commands/run.js';
import type { SeedFileRead } from './copies.js';
import { MAX_PSKC_BYTES, readPskc, type PskcKeys } from './pskc.js';
import { readSeedCsv, type SecretEncoding, type SeedDefaults } from './seed-csv.js';
import { Secret } from './secret.js';
import { SeedFileError } from './seed-file-error.js';
import { looksLikeXml } from './xml.js';

/** Default tokens per job: large enough that 100,000 tokens are 200 jobs, small enough that a failed job is split in ~9 steps. */
export const DEFAULT_JOB_SIZE = 500;

/** --type, --otp-length, --time-step, --secret-encoding and --job-size, checked together; keys never as values. */
export function seedOptions(raw: RawOptions): { defaults: SeedDefaults; jobSize: number } {
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
  return { defaults, jobSize };
}

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
            reject(new UsageError(`${question.replace(/^Passphrase for (.*): $/, '$1')}: no passphrase given; nothing was sent`));
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

const SNIFF_BYTES = 64 * 1024;

/** The first `bytes` of the file. */
function readHead(path: string, bytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    return buffer.subarray(0, readSync(fd, buffer, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

function warnIfShared(path: string, deps: CommandDeps, what: string): void {
  try {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) deps.warn?.(`${path} is readable by ${mode & 0o007 ? 'every user' : 'its group'} (mode ${mode.toString(8)}) and holds ${what}: run chmod 600 ${path}`);
  } catch {
    // Read in a moment: its own error says what is wrong.
  }
}

/**
 * Reads, decrypts and checks the whole seed file before anything is sent. Warnings the
 * operator must see (an unprotected file, a key rollover, two serials with one secret,
 * expired tokens) go to stderr and are returned with the tokens.
 */
export async function readSeeds(path: string, raw: RawOptions, deps: CommandDeps, defaults: SeedDefaults): Promise<SeedFileRead> {
  let head: Buffer;
  try {
    const info = statSync(path);
    if (!info.isFile()) throw new SeedFileError(path, 'is not a file: give the seed file (PSKC .xml or a seed CSV)');
    if (info.size > MAX_PSKC_BYTES) throw new SeedFileError(path, `is larger than ${MAX_PSKC_BYTES / 1024 / 1024} MB: not a token shipment`);
    // The first 64 KB tell XML (in any encoding XML allows) from CSV; only PSKC is read whole
    // here: a CSV is streamed by its own reader.
    head = readHead(path, SNIFF_BYTES);
    const blank = head.toString('utf8').replace(/^\uFEFF/, '').trim() === '';
    if (head.length < info.size && (blank || looksLikeXml(head))) {
      head.fill(0);
      head = readFileSync(path);
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new SeedFileError(path, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}): check the path`);
  }
  warnIfShared(path, deps, 'token seeds');
  const read = looksLikeXml(head) ? await readPskcFile(path, head, raw, deps) : await readCsvSeeds(path, head, defaults);
  const expired = read.tokens.filter((t) => !t.problem && t.validUntil !== undefined && Date.parse(t.validUntil) < Date.now());
  const warnings = [...read.warnings];
  if (expired.length > 0) {
    warnings.push(`${expired.length} token${expired.length === 1 ? ' is' : 's are'} past the expiry date the vendor gives (${expired.slice(0, 5).map((t) => `${t.serialNumber} on ${t.validUntil!.slice(0, 10)}`).join(', ')}${expired.length > 5 ? ', …' : ''}): imported as asked; check with the vendor before handing them out`);
  }
  for (const w of warnings) deps.warn?.(w);
  return { tokens: read.tokens, warnings };
}

async function readCsvSeeds(path: string, head: Buffer, defaults: SeedDefaults): Promise<SeedFileRead> {
  head.fill(0);
  const { tokens, warnings } = await readSeedCsv(path, defaults);
  return { tokens, warnings };
}

async function readPskcFile(path: string, bytes: Buffer, raw: RawOptions, deps: CommandDeps): Promise<SeedFileRead> {
  const keys: { psk?: Secret; passphrase?: Secret } = {};
  if (typeof raw['psk-file'] === 'string') {
    warnIfShared(raw['psk-file'], deps, 'the key to the seeds');
    keys.psk = readPsk(raw['psk-file']);
  }
  if (typeof raw['passphrase-file'] === 'string') {
    warnIfShared(raw['passphrase-file'], deps, 'the passphrase to the seeds');
    keys.passphrase = readPassphrase(raw['passphrase-file']);
  }
  const options = { allowUnencrypted: raw['allow-unencrypted'] === true };
  try {
    return readPskc(path, bytes, keys as PskcKeys, options);
  } catch (error) {
    // Protected by a passphrase that was not given: ask, when a person is at a terminal.
    if (error instanceof SeedFileError && /--passphrase-file/.test(error.message) && !keys.passphrase && process.stdin.isTTY && deps.isTTY) {
      keys.passphrase = await promptHidden(deps, `Passphrase for ${path}: `);
      return readPskc(path, bytes, keys as PskcKeys, options);
    }
    throw error;
  } finally {
    keys.psk?.wipe();
    keys.passphrase?.wipe();
    bytes.fill(0);
  }
}
