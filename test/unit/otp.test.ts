/** RFC 4226 appendix D and RFC 6238 appendix B test vectors (SEEDS.md "Test vectors"). */
import { hotp, totp } from '../../src/seeds/otp.js';
import { Secret } from '../../src/seeds/secret.js';

const ascii = (text: string) => Secret.own(Buffer.from(text, 'ascii'));
const SHA1 = '12345678901234567890';
const SHA256 = '12345678901234567890123456789012';
const SHA512 = '1234567890123456789012345678901234567890123456789012345678901234';

test('HOTP, RFC 4226 appendix D: counters 0 to 9, 6 digits; 8 digits at counter 0', () => {
  const codes = Array.from({ length: 10 }, (_, c) => hotp(ascii(SHA1), c, 6));
  expect(codes).toEqual(['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489']);
  expect(hotp(ascii(SHA1), 0, 8)).toBe('84755224');
});

test.each([
  [59, '94287082', '46119246', '90693936'],
  [1111111109, '07081804', '68084774', '25091201'],
  [1111111111, '14050471', '67062674', '99943326'],
  [1234567890, '89005924', '91819424', '93441116'],
  [2000000000, '69279037', '90698825', '38618901'],
  [20000000000, '65353130', '77737706', '47863826'],
])('TOTP, RFC 6238 appendix B at T = %i s: SHA1, SHA256, SHA512, 8 digits, 30 s steps', (t, sha1, sha256, sha512) => {
  expect(totp(ascii(SHA1), t * 1000, 8, 30, 'HmacSHA1')).toBe(sha1);
  expect(totp(ascii(SHA256), t * 1000, 8, 30, 'HmacSHA256')).toBe(sha256);
  expect(totp(ascii(SHA512), t * 1000, 8, 30, 'HmacSHA512')).toBe(sha512);
});

test('a 60-second step is the 30-second code of half the counter', () => {
  const secret = ascii(SHA1);
  expect(totp(secret, 120_000, 6, 60)).toBe(hotp(secret, 2, 6));
});
