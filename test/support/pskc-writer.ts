/**
 * A vendor's PSKC (RFC 6030) shipment, as end-to-end tests need one: several tokens, each
 * secret AES-128-CBC encrypted under a pre-shared key with an HMAC-SHA1 MAC (RFC 6030 §6.1,
 * the layout of its figure 6).
 */
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';

export interface PskcToken {
  readonly serial: string;
  readonly type: 'HOTP' | 'TOTP';
  readonly secretHex: string;
  readonly counter?: number;
  readonly digits?: 6 | 8;
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
    return `<KeyPackage><DeviceInfo><Manufacturer>Manufacturer</Manufacturer><SerialNo>${t.serial}</SerialNo></DeviceInfo>
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
