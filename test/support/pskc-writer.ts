/**
 * A vendor's PSKC (RFC 6030) shipment, as end-to-end tests need one: several tokens, each
 * secret AES-128-CBC encrypted under a pre-shared key with an HMAC-SHA1 MAC (RFC 6030 §6.1,
 * the layout of its figure 6).
 */
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PskcToken {
  readonly serial: string;
  readonly type: 'HOTP' | 'TOTP';
  readonly secretHex: string;
  readonly counter?: number;
  readonly digits?: 6 | 8;
  /** DeviceInfo's Model and ExpiryDate (ISO date-time), when the vendor states them. */
  readonly model?: string;
  readonly expiry?: string;
}

export function encryptedPskc(tokens: readonly PskcToken[], key: Buffer): string {
  const macKey = randomBytes(20);
  const encrypt = (plain: Buffer): string => {
    const iv = randomBytes(16);
    const c = createCipheriv('aes-128-cbc', key, iv);
    return Buffer.concat([iv, c.update(plain), c.final()]).toString('base64');
  };
  const packages = tokens.map((t, i) => {
    const cv = encrypt(Buffer.from(t.secretHex, 'hex'));
    const mac = createHmac('sha1', macKey).update(Buffer.from(cv, 'base64')).digest('base64');
    const data = `<Secret><EncryptedValue><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/><xenc:CipherData><xenc:CipherValue>${cv}</xenc:CipherValue></xenc:CipherData></EncryptedValue><ValueMAC>${mac}</ValueMAC></Secret>${
      t.type === 'HOTP' ? `<Counter><PlainValue>${t.counter ?? 0}</PlainValue></Counter>` : '<TimeInterval><PlainValue>30</PlainValue></TimeInterval>'
    }`;
    return `<KeyPackage><DeviceInfo><Manufacturer>Manufacturer</Manufacturer><SerialNo>${t.serial}</SerialNo>${t.model ? `<Model>${t.model}</Model>` : ''}${t.expiry ? `<ExpiryDate>${t.expiry}</ExpiryDate>` : ''}</DeviceInfo>
<Key Id="k${i + 1}" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:${t.type.toLowerCase()}">
<AlgorithmParameters><ResponseFormat Length="${t.digits ?? 6}" Encoding="DECIMAL"/></AlgorithmParameters>
<Data>${data}</Data></Key></KeyPackage>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
<EncryptionKey><ds:KeyName>Pre-shared-key</ds:KeyName></EncryptionKey>
<MACMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1"><MACKey><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/><xenc:CipherData><xenc:CipherValue>${encrypt(macKey)}</xenc:CipherValue></xenc:CipherData></MACKey></MACMethod>
${packages.join('\n')}
</KeyContainer>`;
}

const XMLENC = 'http://www.w3.org/2001/04/xmlenc#';

/**
 * One token secret key-wrapped under `key` (RFC 6030 §6.1, RFC 3394; RFC 5649's padded form
 * where the secret is not a multiple of 8 bytes, or when `padded`), in an RFC 6030 container
 * with a pre-shared key and no MAC (key wrap checks itself).
 */
export function keyWrappedPskc(serial: string, secret: Buffer, key: Buffer, options: { padded?: boolean; tripleDes?: boolean } = {}): string {
  const bits = key.length * 8;
  let uri: string;
  let wrapped: Buffer;
  if (options.tripleDes) {
    uri = `${XMLENC}kw-tripledes`;
    const c = createCipheriv('des3-wrap', key, null);
    wrapped = Buffer.concat([c.update(secret), c.final()]);
  } else {
    uri = `${XMLENC}kw-aes${bits}`;
    const padded = options.padded || secret.length % 8 !== 0;
    const c = createCipheriv(padded ? `id-aes${bits}-wrap-pad` : `id-aes${bits}-wrap`, key, Buffer.from(padded ? 'a65959a6' : 'a6a6a6a6a6a6a6a6', 'hex'));
    wrapped = Buffer.concat([c.update(secret), c.final()]);
  }
  return `<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
<EncryptionKey><ds:KeyName>Pre-shared-key</ds:KeyName></EncryptionKey>
<KeyPackage><DeviceInfo><Manufacturer>Manufacturer</Manufacturer><SerialNo>${serial}</SerialNo></DeviceInfo>
<Key Id="k1" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp"><AlgorithmParameters><ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters>
<Data><Secret><EncryptedValue><xenc:EncryptionMethod Algorithm="${uri}"/><xenc:CipherData><xenc:CipherValue>${wrapped.toString('base64')}</xenc:CipherValue></xenc:CipherData></EncryptedValue></Secret><Counter><PlainValue>0</PlainValue></Counter></Data>
</Key></KeyPackage>
</KeyContainer>`;
}

export interface DraftToken {
  readonly serial: string;
  readonly type: 'hotp' | 'totp';
  readonly secret: Buffer;
  readonly counter?: bigint;
  readonly expiry?: string;
}

/**
 * A pre-RFC draft container as ActivIdentity (HID) customer files are laid out
 * (`urn:ietf:params:xml:ns:keyprov:container:1.0`, Device/DeviceId, Key KeyId/KeyAlgorithm,
 * Data Name=…/Value). With `key`: AES-128-CBC under a container-level IV (each Value the
 * ciphertext alone), each ValueDigest an HMAC-SHA1 of the plaintext keyed with the encryption key.
 */
export function draftPskc(tokens: readonly DraftToken[], key?: Buffer): string {
  const iv = randomBytes(16);
  const value = (plain: Buffer): string => {
    if (!key) return `<Value>${plain.toString('base64')}</Value>`;
    const c = createCipheriv('aes-128-cbc', key, iv);
    const cipher = Buffer.concat([c.update(plain), c.final()]);
    return `<Value>${cipher.toString('base64')}</Value><ValueDigest>${createHmac('sha1', key).update(plain).digest('base64')}</ValueDigest>`;
  };
  const counter = (n: bigint): Buffer => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(n);
    return b;
  };
  const devices = tokens.map((t) => `<Device><DeviceId><Manufacturer>ActivIdentity</Manufacturer><SerialNo>${t.serial}</SerialNo>${t.expiry ? `<Expiry>${t.expiry}</Expiry>` : ''}</DeviceId>
<Key KeyAlgorithm="http://www.ietf.org/keyprov/pskc#${t.type}" KeyId="${t.serial}"><Issuer>ActivIdentity</Issuer><Usage OTP="true"><ResponseFormat Format="DECIMAL" Length="6"/></Usage>
<Data Name="SECRET">${value(t.secret)}</Data>${t.type === 'hotp' ? `<Data Name="COUNTER">${value(counter(t.counter ?? 0n))}</Data>` : `<Data Name="TIME_INTERVAL"><Value>${counter(30n).toString('base64')}</Value></Data>`}
</Key></Device>`);
  return `<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:container:1.0" version="1.0">
${key ? `<EncryptionMethod Algorithm="${XMLENC}aes128-cbc"><IV>${iv.toString('base64')}</IV></EncryptionMethod><DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1"/>` : ''}
${devices.join('\n')}
</KeyContainer>`;
}

/** A shipment on disk as a vendor and IT send it: an encrypted PSKC file, its key file, and an assignment CSV (token i to user i + firstUser). */
export interface SeededShipment {
  readonly dir: string;
  readonly tokens: PskcToken[];
  readonly pskc: string;
  readonly keyFile: string;
  readonly assignments: string;
}

export const SHIPMENT_KEY = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');

export function seededShipment(dir: string, n: number, options: { prefix?: string; type?: (i: number) => 'HOTP' | 'TOTP'; firstUser?: number; userId: (n: number) => string; extraRows?: string }): SeededShipment {
  const tokens: PskcToken[] = Array.from({ length: n }, (_, i) => ({
    serial: `${options.prefix ?? 'SHIP'}${String(i + 1).padStart(4, '0')}`,
    type: options.type ? options.type(i) : 'HOTP',
    secretHex: randomBytes(20).toString('hex'),
    counter: 0,
  }));
  const pskc = join(dir, 'vendor.pskc.xml');
  writeFileSync(pskc, encryptedPskc(tokens, SHIPMENT_KEY), { mode: 0o600 });
  const keyFile = join(dir, 'vendor.key');
  writeFileSync(keyFile, SHIPMENT_KEY.toString('hex') + '\n', { mode: 0o600 });
  const assignments = join(dir, 'assign.csv');
  writeFileSync(assignments, 'userID,serialNumber\n' + tokens.map((t, i) => `${options.userId(i + 1 + (options.firstUser ?? 0))},${t.serial}`).join('\n') + '\n' + (options.extraRows ?? ''));
  return { dir, tokens, pskc, keyFile, assignments };
}
