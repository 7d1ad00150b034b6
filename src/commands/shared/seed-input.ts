/**
 * The seed flags of `import` and `run --seeds`, turned into what the seed reader takes: the
 * defaults a file leaves out, the job size, the key or passphrase read from their files (never
 * flag values), and a hidden prompt for a passphrase when a person is at a terminal.
 */
import { readFileSync } from 'node:fs';
import type { RawOptions } from '../../config.js';
import { UsageError } from '../../errors.js';
import type { SeedFileRead } from '../../seeds/copies.js';
import { readSeedFile, warnIfShared } from '../../seeds/read-seeds.js';
import type { SecretEncoding, SeedDefaults } from '../../seeds/seed-csv.js';
import { Secret } from '../../seeds/secret.js';
import type { CommandDeps } from './deps.js';

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

/** Reads, decrypts and checks the whole seed file named by `path`, with the command's seed flags. */
export async function readSeeds(path: string, raw: RawOptions, deps: CommandDeps, defaults: SeedDefaults): Promise<SeedFileRead> {
  let psk: Secret | undefined;
  let passphrase: Secret | undefined;
  try {
    if (typeof raw['psk-file'] === 'string') {
      warnIfShared(raw['psk-file'], deps.warn, 'the key to the seeds');
      psk = readPsk(raw['psk-file']);
    }
    if (typeof raw['passphrase-file'] === 'string') {
      warnIfShared(raw['passphrase-file'], deps.warn, 'the passphrase to the seeds');
      passphrase = readPassphrase(raw['passphrase-file']);
    }
  } catch (error) {
    psk?.wipe();
    throw error;
  }
  return readSeedFile(path, {
    psk,
    passphrase,
    askPassphrase: process.stdin.isTTY && deps.isTTY ? (question) => promptHidden(deps, question) : undefined,
    allowUnencrypted: raw['allow-unencrypted'] === true,
    defaults,
    warn: deps.warn,
  });
}
