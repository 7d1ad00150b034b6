/**
 * One-time codes from a token's seed, for activating devices (issue #13): RFC 4226 HOTP at a
 * counter, RFC 6238 TOTP at a time step, with the token's hash and length. node:crypto's HMAC;
 * the seed stays in its Secret.
 */
import { createHmac } from 'node:crypto';
import type { Secret } from './secret.js';
import type { HashAlgorithm } from './token.js';

const HASHES: Record<HashAlgorithm, string> = { HmacSHA1: 'sha1', HmacSHA256: 'sha256', HmacSHA512: 'sha512' };

/** RFC 4226 §5.3: HMAC of the 8-byte counter, dynamic truncation, `digits` decimal digits. */
export function hotp(secret: Secret, counter: number | bigint, digits: number, hash: HashAlgorithm = 'HmacSHA1'): string {
  if (typeof counter === 'number' ? !Number.isSafeInteger(counter) || counter < 0 : counter < 0n || counter >= 2n ** 64n) throw new RangeError('the counter must be a whole number from 0 to 2^64 - 1');
  if (digits !== 6 && digits !== 7 && digits !== 8) throw new RangeError('codes have 6 to 8 digits');
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = secret.use((key) => createHmac(HASHES[hash], key).update(message).digest());
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  mac.fill(0);
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/** RFC 6238 §4: HOTP at T = floor((unix seconds − T0) / step), T0 = 0. */
export function totp(secret: Secret, atMs: number, digits: number, stepS = 30, hash: HashAlgorithm = 'HmacSHA1'): string {
  return hotp(secret, Math.floor(atMs / 1000 / stepS), digits, hash);
}
