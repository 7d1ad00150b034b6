/**
 * Reading a seed file (SEEDS.md): PSKC (plain, pre-shared key, or passphrase) or a seed CSV,
 * told apart by their first bytes, checked whole before anything is sent. What it needs comes
 * in as parameters (keys, a way to ask for a passphrase, where warnings go): it knows nothing
 * of commands, flags or terminals. Keys and passphrases are wiped after use; a file readable
 * by others draws a warning.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { UsageError } from '../errors.js';
import type { SeedFileRead } from './copies.js';
import { MAX_PSKC_BYTES, readPskc } from './pskc.js';
import { readSeedCsv, type SeedDefaults } from './seed-csv.js';
import type { Secret } from './secret.js';
import { SeedFileError } from './seed-file-error.js';
import { looksLikeXml } from './xml.js';

export interface SeedSources {
  /** The pre-shared key (--psk-file): owned by the reader, wiped once used. */
  readonly psk?: Secret;
  /** The passphrase (--passphrase-file): owned by the reader, wiped once used. */
  readonly passphrase?: Secret;
  /** Asks for the passphrase a file needs when none was given (a terminal); absent: nobody to ask. */
  readonly askPassphrase?: (question: string) => Promise<Secret>;
  /** The operator confirms that a file without protection is what the vendor sent. */
  readonly allowUnencrypted?: boolean;
  /** What a seed CSV leaves out. */
  readonly defaults?: SeedDefaults;
  /** Where the operator's warnings go (stderr). */
  readonly warn?: (message: string) => void;
}

const SNIFF_BYTES = 64 * 1024;

/** The first `bytes` of the file. */
export function readHead(path: string, bytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    return buffer.subarray(0, readSync(fd, buffer, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

/** A warning when a file holding `what` is readable by group or others. */
export function warnIfShared(path: string, warn: ((message: string) => void) | undefined, what: string): void {
  try {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) warn?.(`${path} is readable by ${mode & 0o007 ? 'every user' : 'its group'} (mode ${mode.toString(8)}) and holds ${what}: run chmod 600 ${path}`);
  } catch {
    // Read in a moment: its own error says what is wrong.
  }
}

/**
 * Reads, decrypts and checks the whole seed file before anything is sent. Warnings the
 * operator must see (an unprotected file, a key rollover, two serials with one secret,
 * expired tokens) go to stderr and are returned with the tokens.
 */
export async function readSeedFile(path: string, sources: SeedSources): Promise<SeedFileRead> {
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
  warnIfShared(path, sources.warn, 'token seeds');
  const read = looksLikeXml(head) ? await readPskcFile(path, head, sources) : await readCsvSeeds(path, head, sources.defaults ?? {});
  const expired = read.tokens.filter((t) => !t.problem && t.validUntil !== undefined && Date.parse(t.validUntil) < Date.now());
  const warnings = [...read.warnings];
  if (expired.length > 0) {
    warnings.push(`${expired.length} token${expired.length === 1 ? ' is' : 's are'} past the expiry date the vendor gives (${expired.slice(0, 5).map((t) => `${t.serialNumber} on ${t.validUntil!.slice(0, 10)}`).join(', ')}${expired.length > 5 ? ', …' : ''}): imported as asked; check with the vendor before handing them out`);
  }
  for (const w of warnings) sources.warn?.(w);
  return { tokens: read.tokens, warnings };
}

async function readCsvSeeds(path: string, head: Buffer, defaults: SeedDefaults): Promise<SeedFileRead> {
  head.fill(0);
  const { tokens, warnings } = await readSeedCsv(path, defaults);
  return { tokens, warnings };
}

async function readPskcFile(path: string, bytes: Buffer, sources: SeedSources): Promise<SeedFileRead> {
  let passphrase = sources.passphrase;
  const options = { allowUnencrypted: sources.allowUnencrypted === true };
  try {
    return readPskc(path, bytes, { psk: sources.psk, passphrase }, options);
  } catch (error) {
    // Protected by a passphrase that was not given: ask, when someone can be asked.
    if (error instanceof SeedFileError && /--passphrase-file/.test(error.message) && !passphrase && sources.askPassphrase) {
      passphrase = await sources.askPassphrase(`Passphrase for ${path}: `);
      return readPskc(path, bytes, { psk: sources.psk, passphrase }, options);
    }
    throw error;
  } finally {
    sources.psk?.wipe();
    passphrase?.wipe();
    bytes.fill(0);
  }
}
