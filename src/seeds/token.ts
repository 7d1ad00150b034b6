/**
 * One token of a seed file, as read, and PingOne's rules for it (SEEDS.md "What PingOne
 * accepts"). A token that breaks a rule carries a problem with a stable code and is INVALID;
 * the others go ahead.
 */
import type { Secret } from './secret.js';
import { SERIAL_RE } from '../input/validate.js';

export type TokenType = 'HOTP' | 'TOTP';
export type HashAlgorithm = 'HmacSHA1' | 'HmacSHA256' | 'HmacSHA512';

export interface TokenProblem {
  readonly code:
    | 'SERIAL_INVALID'
    | 'SERIAL_MISSING'
    | 'SECRET_MISSING'
    | 'SECRET_INVALID'
    | 'SECRET_TOO_LONG'
    | 'OTP_LENGTH_UNSUPPORTED'
    | 'TIME_STEP_UNSUPPORTED'
    | 'HASH_UNSUPPORTED'
    | 'TYPE_MISSING'
    | 'SEED_CONFLICT'
    | 'COUNTER_INVALID'
    | 'COLUMNS_SWAPPED'
    | 'UNSUPPORTED_ALGORITHM'
    | 'UNSUPPORTED_TOKEN'
    | 'FIELD_COUNT';
  readonly message: string;
}

export interface SeedToken {
  /** 1-based: the KeyPackage's place in a PSKC file, or the data row of a CSV. */
  readonly index: number;
  /** Where to look in the file (a CSV line, a PSKC key's line), when known. */
  readonly line?: number;
  /** A PSKC file's package (KeyPackage or Device) the token is in. */
  readonly packageNo?: number;
  readonly serialNumber: string;
  readonly type?: TokenType;
  readonly otpLength?: number;
  readonly hashAlgorithm?: HashAlgorithm;
  /** HOTP: a 64-bit counter (RFC 4226), exact at any size: never a JavaScript number. */
  readonly counter?: bigint;
  readonly timeStep?: number;
  readonly secret?: Secret;
  readonly manufacturer?: string;
  readonly model?: string;
  /** Vendor validity (PSKC StartDate/ExpiryDate, the drafts' Expiry), ISO 8601. */
  readonly validFrom?: string;
  readonly validUntil?: string;
  /** An equal copy of the token with this index (one token twice in the file, e.g. a key rollover): imported once, there. */
  readonly copyOf?: number;
  readonly problem?: TokenProblem;
  /** What imports but an operator should know (a short secret, a drift PingOne cannot take). */
  readonly warnings: readonly string[];
}

/** PingOne takes the secret as hex of at most 200 characters. */
const MAX_SECRET_BYTES = 100;
/** RFC 4226 §4 R6: at least 128 bits. Shorter ones import, with a warning. */
const MIN_SECRET_BYTES = 16;

/** `HMAC-SHA256`, `sha256`, `SHA-256`, `HmacSHA256` … as PingOne's name; undefined if unknown. */
export function hashFromText(text: string | undefined): HashAlgorithm | undefined {
  if (text === undefined || text.trim() === '') return 'HmacSHA1';
  const t = text.trim().toUpperCase().replace(/^HMAC[-_ ]?/, '').replace(/[-_ ]/g, '');
  if (t === 'SHA1') return 'HmacSHA1';
  if (t === 'SHA256') return 'HmacSHA256';
  if (t === 'SHA512') return 'HmacSHA512';
  return undefined;
}

/** The first rule the token breaks, or undefined. Duplicates are found across the file (markDuplicates). */
export function checkToken(token: Omit<SeedToken, 'problem' | 'warnings'>, hashText?: string): { problem?: TokenProblem; warnings: string[] } {
  const warnings: string[] = [];
  const serial = token.serialNumber;
  if (serial === '') return { problem: { code: 'SERIAL_MISSING', message: 'the token has no serial number' }, warnings };
  if (!SERIAL_RE.test(serial)) {
    return {
      problem: {
        code: 'SERIAL_INVALID',
        message: `serial ${JSON.stringify(serial.slice(0, 60))}: PingOne takes 1-50 ASCII letters and digits; ask the vendor for the printed serial, or map it before importing`,
      },
      warnings,
    };
  }
  if (!token.type) return { problem: { code: 'TYPE_MISSING', message: 'neither the file nor --type says whether the token is HOTP or TOTP' }, warnings };
  if (!token.secret || token.secret.length === 0) return { problem: { code: 'SECRET_MISSING', message: 'the token carries no secret' }, warnings };
  if (token.secret.length > MAX_SECRET_BYTES) {
    return { problem: { code: 'SECRET_TOO_LONG', message: `the secret is ${token.secret.length} bytes; PingOne takes at most ${MAX_SECRET_BYTES} (200 hex characters)` }, warnings };
  }
  if (token.secret.length < MIN_SECRET_BYTES) warnings.push(`the secret is ${token.secret.length * 8} bits; RFC 4226 asks for at least 128`);
  if (token.otpLength !== 6 && token.otpLength !== 8) {
    return { problem: { code: 'OTP_LENGTH_UNSUPPORTED', message: `codes of ${token.otpLength ?? 'unknown'} digits: PingOne takes 6 or 8` }, warnings };
  }
  if (token.hashAlgorithm === undefined) {
    return { problem: { code: 'HASH_UNSUPPORTED', message: `hash ${shownCell(hashText ?? '')}: PingOne takes SHA1, SHA256 or SHA512` }, warnings };
  }
  if (token.type === 'HOTP' && token.hashAlgorithm !== 'HmacSHA1') {
    return { problem: { code: 'HASH_UNSUPPORTED', message: `an HOTP token with ${token.hashAlgorithm}: PingOne takes HOTP with SHA1 only` }, warnings };
  }
  if (token.type === 'TOTP' && token.timeStep !== 30 && token.timeStep !== 60) {
    return { problem: { code: 'TIME_STEP_UNSUPPORTED', message: `a time step of ${token.timeStep ?? 'unknown'} s: PingOne takes 30 or 60` }, warnings };
  }
  return { warnings };
}

/**
 * A cell of a seed file, for a message: short values as they are; a longer one only by its
 * length, since in a seed file it may be a seed in the wrong column.
 */
export function shownCell(text: string): string {
  return text.length <= 12 ? JSON.stringify(text) : `(a value of ${text.length} characters, not shown: it may be a seed)`;
}

/** RFC 4226's counter is 8 bytes: the largest value PingOne's counter can hold. */
const MAX_COUNTER = 2n ** 64n - 1n;

/** A counter's decimal text, exactly; a TokenProblem-worthy RangeError when it is not a 64-bit whole number. */
export function parseCounter(text: string): bigint {
  const t = text.trim();
  if (!/^\d{1,20}$/.test(t) || BigInt(t) > MAX_COUNTER) throw new CounterError(`the counter ${shownCell(t)} is not a whole number from 0 to 2^64 - 1 (RFC 4226's 8-byte counter)`);
  return BigInt(t);
}

/** A counter that is not a 64-bit whole number: the token is INVALID COUNTER_INVALID. */
export class CounterError extends Error {
  readonly code = 'COUNTER_INVALID' as const;
}
