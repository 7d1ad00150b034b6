/**
 * PSKC (RFC 6030) seed files: the RFC's own figures (typed out in test/fixtures/pskc) with the
 * values SEEDS.md gives, files this test encrypts itself (AES-192/256, 3DES, SHA-256 MACs,
 * encrypted counters), and what must be refused: wrong keys, altered MACs, entity
 * declarations, truncated logs.
 */
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { readPskc as readPskcFile, type PskcKeys } from '../../src/seeds/pskc.js';
import { Secret } from '../../src/seeds/secret.js';
import { SeedFileError } from '../../src/seeds/seed-file-error.js';
import type { SeedToken } from '../../src/seeds/token.js';

/** The tokens of a read. */
const readPskc = (...args: Parameters<typeof readPskcFile>): SeedToken[] => readPskcFile(...args).tokens;
const fixture = (name: string) => readFileSync(`test/fixtures/pskc/${name}`, 'utf8');
const RFC_SECRET = '3132333435363738393031323334353637383930'; // "12345678901234567890"
const psk = (hex: string): PskcKeys => ({ psk: Secret.own(Buffer.from(hex, 'hex')) });
const passphrase = (text: string): PskcKeys => ({ passphrase: Secret.own(Buffer.from(text)) });
const summary = (t: SeedToken) => ({ serial: t.serialNumber, type: t.type, otpLength: t.otpLength, hash: t.hashAlgorithm, counter: t.counter, timeStep: t.timeStep, secret: t.secret?.hex(), problem: t.problem?.code });
const refusal = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(SeedFileError);
    return (error as Error).message;
  }
  throw new Error('expected the file to be refused');
};

describe('the RFC 6030 figures', () => {
  test('figure 2: a plain secret, the serial from Key/@Id; a short secret warns', () => {
    const [t] = readPskc('figure2.xml', fixture('figure2.xml'));
    expect(summary(t!)).toEqual({ serial: '12345678', type: 'HOTP', otpLength: 6, hash: 'HmacSHA1', counter: 0n, timeStep: undefined, secret: '31323334', problem: undefined });
    expect(t!.warnings.join()).toMatch(/32 bits; RFC 4226 asks for at least 128/);
  });

  test('figure 3: DeviceInfo serial, 8 digits, counter 0', () => {
    expect(readPskc('figure3.xml', fixture('figure3.xml')).map(summary)).toEqual([
      { serial: '987654321', type: 'HOTP', otpLength: 8, hash: 'HmacSHA1', counter: 0n, timeStep: undefined, secret: RFC_SECRET, problem: undefined },
    ]);
  });

  test('figure 4: a key reference without a secret is refused for that token', () => {
    const [t] = readPskc('figure4.xml', fixture('figure4.xml'));
    expect(t!.problem?.code).toBe('SECRET_MISSING');
    expect(t!.problem?.message).toMatch(/out of band/);
  });

  test('figure 6: AES-128-CBC with the pre-shared key, MAC verified', () => {
    expect(readPskc('figure6.xml', fixture('figure6.xml'), psk('12345678901234567890123456789012')).map(summary)).toEqual([
      { serial: '987654321', type: 'HOTP', otpLength: 8, hash: 'HmacSHA1', counter: 0n, timeStep: undefined, secret: RFC_SECRET, problem: undefined },
    ]);
  });

  test('figure 7: PBKDF2 from the passphrase, the pskc: prefix', () => {
    expect(readPskc('figure7.xml', fixture('figure7.xml'), passphrase('qwerty')).map(summary)).toEqual([
      { serial: '987654321', type: 'HOTP', otpLength: 8, hash: 'HmacSHA1', counter: 0n, timeStep: undefined, secret: RFC_SECRET, problem: undefined },
    ]);
  });

  test('figure 8: RSA is refused as unsupported, with what to ask for', () => {
    expect(refusal(() => readPskc('figure8.xml', fixture('figure8.xml')))).toMatch(/^figure8\.xml: is encrypted to an RSA key .*unsupported; ask the vendor for a pre-shared-key or passphrase/);
  });

  test('figure 9: a leading zero stays', () => {
    expect(readPskc('figure9.xml', fixture('figure9.xml')).map((t) => t.serialNumber)).toEqual(['0755225266']);
  });

  test('figure 10: the key rollover (serial 9999999 twice, same secret, other Key Id and dates) is one token, valid over both periods, with a warning naming both', () => {
    const { tokens, warnings } = readPskcFile('figure10.xml', fixture('figure10.xml'));
    expect(tokens.map((t) => [t.serialNumber, t.problem?.code, t.copyOf])).toEqual([['654321', undefined, undefined], ['123456', undefined, undefined], ['9999999', undefined, undefined], ['9999999', undefined, 3]]);
    expect(tokens[3]!.secret).toBeUndefined();
    expect([tokens[2]!.validFrom, tokens[2]!.validUntil]).toEqual([expect.stringMatching(/^2006-03-01/), expect.stringMatching(/^2006-04-28/)]);
    expect(warnings.join('\n')).toMatch(/serial 9999999 appears 2 times with the same secret .*package 3 .*package 4/);
  });
});

describe('what varies between vendors', () => {
  test('any namespace prefix, and base64 broken over lines', () => {
    const prefixed = fixture('figure3.xml')
      .replace(/<(\/?)([A-Z][A-Za-z]*)/g, '<$1t:$2')
      .replace('xmlns=', 'xmlns:t=')
      .replace('MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=', 'MTIzNDU2Nzg5\n   MDEyMzQ1Njc4\n   OTA=');
    expect(readPskc('prefixed.xml', prefixed).map(summary)[0]).toMatchObject({ serial: '987654321', secret: RFC_SECRET });
  });

  test.each([
    ['HMAC-SHA256', 'HmacSHA256'],
    ['sha256', 'HmacSHA256'],
    ['SHA-512', 'HmacSHA512'],
    ['HMAC-SHA1', 'HmacSHA1'],
  ])('a TOTP Suite of %j is %s', (suite, hash) => {
    const xml = build({ type: 'totp', suite, interval: '60' });
    expect(readPskc('suite.xml', xml).map(summary)[0]).toMatchObject({ type: 'TOTP', hash, timeStep: 60, counter: undefined });
  });

  test.each([
    ['aes192-cbc', 24],
    ['aes256-cbc', 32],
    ['tripledes-cbc', 24],
  ])('%s with an HMAC-SHA256 MAC and an encrypted counter', (cipher, keyBytes) => {
    const key = randomBytes(keyBytes);
    const xml = build({ cipher, key, counter: 42, mac: 'sha256' });
    const [t] = readPskc('enc.xml', xml, { psk: Secret.own(Buffer.from(key)) });
    expect(summary(t!)).toMatchObject({ serial: 'ENC0001', secret: RFC_SECRET, counter: 42n, problem: undefined });
  });

  test.each([
    [{ length: '7' }, 'OTP_LENGTH_UNSUPPORTED'],
    [{ type: 'totp', interval: '45' }, 'TIME_STEP_UNSUPPORTED'],
    [{ suite: 'HMAC-SHA256' }, 'HASH_UNSUPPORTED'],
    [{ suite: 'MD5' }, 'HASH_UNSUPPORTED'],
    [{ serial: '283599:1' }, 'SERIAL_INVALID'],
    [{ algorithm: 'urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1' }, 'UNSUPPORTED_ALGORITHM'],
    [{ type: 'totp', time: '1000' }, 'UNSUPPORTED_TOKEN'],
  ])('a token with %j is INVALID %s, and its secret is gone', (options, code) => {
    const [t] = readPskc('rules.xml', build(options as BuildOptions));
    expect(t!.problem?.code).toBe(code);
    expect(t!.secret).toBeUndefined();
  });
});

describe('files that are refused before anything is sent', () => {
  test('a wrong pre-shared key', () => {
    expect(refusal(() => readPskc('figure6.xml', fixture('figure6.xml'), psk('12345678901234567890123456789013')))).toMatch(/wrong key or passphrase, or a corrupt file|MAC .* does not verify/);
  });

  test('a wrong passphrase', () => {
    expect(refusal(() => readPskc('figure7.xml', fixture('figure7.xml'), passphrase('qwertz')))).toMatch(/wrong key or passphrase|MAC .* does not verify/);
  });

  test('no key given: says which flag brings it', () => {
    expect(refusal(() => readPskc('figure6.xml', fixture('figure6.xml')))).toMatch(/--psk-file/);
    expect(refusal(() => readPskc('figure7.xml', fixture('figure7.xml')))).toMatch(/--passphrase-file/);
  });

  test('a pre-shared key of the wrong size', () => {
    expect(refusal(() => readPskc('figure6.xml', fixture('figure6.xml'), psk('1234567890')))).toMatch(/needs a 128-bit key .* 40 bits/);
  });

  test('an altered ValueMAC', () => {
    const tampered = fixture('figure6.xml').replace('Su+NvtQfmvfJzF6bmQiJqoLRExc=', 'Tu+NvtQfmvfJzF6bmQiJqoLRExc=');
    expect(refusal(() => readPskc('tampered.xml', tampered, psk('12345678901234567890123456789012')))).toMatch(/the MAC of the secret does not verify: the file was altered/);
  });

  test.each([
    ['XXE', '<?xml version="1.0"?><!DOCTYPE KeyContainer [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"><KeyPackage><Key Id="&xxe;"/></KeyPackage></KeyContainer>'],
    ['billion laughs', '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><KeyContainer>&lol2;</KeyContainer>'],
  ])('%s: an entity declaration is refused unread', (_name, xml) => {
    expect(refusal(() => readPskc('evil.xml', xml))).toMatch(/declares a DOCTYPE or entities/);
  });

  test('a log cut short (no closing </KeyContainer>) is a clear file-level error', () => {
    const cut = fixture('figure10.xml').replace(/<\/KeyContainer>\s*$/, '');
    expect(refusal(() => readPskc('log.xml', cut))).toMatch(/^log\.xml: is cut short \(no closing <\/KeyContainer>, line \d+\)/);
  });

  test('not PSKC at all', () => {
    expect(refusal(() => readPskc('other.xml', '<?xml version="1.0"?><root/>'))).toMatch(/no KeyContainer/);
  });
});

describe('secrets do not leak', () => {
  test('a Secret prints as [REDACTED] every way it can be printed, and is zeroed by wipe()', () => {
    const [t] = readPskc('figure3.xml', fixture('figure3.xml'));
    const secret = t!.secret!;
    for (const shown of [String(secret), `${secret}`, JSON.stringify({ secret }), inspect(secret), inspect(t, { depth: 5 })]) {
      expect(shown).not.toMatch(/3132333435|MTIzNDU2|12345678901234567890/);
    }
    secret.wipe();
    expect(secret.length).toBe(0);
  });

  test('no error message carries a key, passphrase or secret', () => {
    const messages = [
      refusal(() => readPskc('figure6.xml', fixture('figure6.xml'), psk('12345678901234567890123456789013'))),
      refusal(() => readPskc('figure7.xml', fixture('figure7.xml'), passphrase('qwertz'))),
    ];
    for (const m of messages) expect(m).not.toMatch(/1234567890123456789013|qwertz|MTIzNDU2|3132333435/);
  });
});

interface BuildOptions {
  serial?: string;
  type?: 'hotp' | 'totp';
  algorithm?: string;
  suite?: string;
  length?: string;
  interval?: string;
  time?: string;
  cipher?: string;
  key?: Buffer;
  counter?: number;
  mac?: 'sha1' | 'sha256';
}

/** A PSKC file of one token, encrypted by this test when `cipher` is given. */
function build(o: BuildOptions): string {
  const secret = Buffer.from('12345678901234567890');
  const algorithm = o.algorithm ?? `urn:ietf:params:xml:ns:keyprov:pskc:${o.type ?? 'hotp'}`;
  const macKey = randomBytes(20);
  const names: Record<string, string> = { 'aes192-cbc': 'aes-192-cbc', 'aes256-cbc': 'aes-256-cbc', 'tripledes-cbc': 'des-ede3-cbc' };
  const encrypt = (plain: Buffer): string => {
    const ivBytes = o.cipher === 'tripledes-cbc' ? 8 : 16;
    const iv = randomBytes(ivBytes);
    const c = createCipheriv(names[o.cipher!]!, o.key!, iv);
    return Buffer.concat([iv, c.update(plain), c.final()]).toString('base64');
  };
  const macUri = o.mac === 'sha256' ? 'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256' : 'http://www.w3.org/2000/09/xmldsig#hmac-sha1';
  const value = (plain: Buffer, decimal?: string): string => {
    if (!o.cipher) return `<PlainValue>${decimal ?? plain.toString('base64')}</PlainValue>`;
    const cv = encrypt(plain);
    const mac = createHmac(o.mac ?? 'sha1', macKey).update(Buffer.from(cv, 'base64')).digest('base64');
    return `<EncryptedValue><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#${o.cipher}"/><xenc:CipherData><xenc:CipherValue>${cv}</xenc:CipherValue></xenc:CipherData></EncryptedValue><ValueMAC>${mac}</ValueMAC>`;
  };
  const counter = o.counter === undefined ? '' : `<Counter>${o.cipher ? value(Buffer.from(new BigUint64Array([BigInt(o.counter)]).buffer).reverse()) : `<PlainValue>${o.counter}</PlainValue>`}</Counter>`;
  const header = o.cipher
    ? `<EncryptionKey><ds:KeyName>PSK</ds:KeyName></EncryptionKey><MACMethod Algorithm="${macUri}"><MACKey><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#${o.cipher}"/><xenc:CipherData><xenc:CipherValue>${encrypt(macKey)}</xenc:CipherValue></xenc:CipherData></MACKey></MACMethod>`
    : '';
  return `<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
${header}
<KeyPackage><DeviceInfo><SerialNo>${o.serial ?? 'ENC0001'}</SerialNo></DeviceInfo>
<Key Id="k1" Algorithm="${algorithm}">
<AlgorithmParameters>${o.suite ? `<Suite>${o.suite}</Suite>` : ''}<ResponseFormat Length="${o.length ?? '6'}" Encoding="DECIMAL"/></AlgorithmParameters>
<Data><Secret>${value(secret)}</Secret>${counter}${o.interval ? `<TimeInterval><PlainValue>${o.interval}</PlainValue></TimeInterval>` : ''}${o.time ? `<Time><PlainValue>${o.time}</PlainValue></Time>` : ''}</Data>
</Key></KeyPackage>
</KeyContainer>`;
}
