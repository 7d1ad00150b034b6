/**
 * The keys of a protected PSKC container and how its values are opened (RFC 6030 §6, SEEDS.md
 * "Encryption"): AES-CBC and 3DES-CBC with the IV in front of the ciphertext, each value's MAC
 * checked before it is trusted; key wrap (RFC 3394, its padded form RFC 5649, and RFC 3217's
 * 3DES wrap), which checks itself; keys from --psk-file or PBKDF2 over a passphrase.
 * Every failure is a SeedFileError that names what failed and never holds a key or a value.
 */
import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import type { Secret } from './secret.js';
import { SeedFileError } from './seed-file-error.js';

/** Where the keys come from: bytes read from --psk-file, or a passphrase (file or prompt). */
export interface PskcKeys {
  readonly psk?: Secret;
  readonly passphrase?: Secret;
}

const XMLENC = 'http://www.w3.org/2001/04/xmlenc#';
const XMLENC11 = 'http://www.w3.org/2009/xmlenc11#';

interface Cbc {
  readonly kind: 'cbc';
  readonly name: string;
  readonly keyBytes: number;
  readonly blockBytes: number;
}
interface Wrap {
  readonly kind: 'wrap';
  /** Node's names: RFC 3394 first, then the padded RFC 5649 form; 3DES: RFC 3217. */
  readonly names: readonly string[];
  readonly keyBytes: number;
}

const CIPHERS: Record<string, Cbc | Wrap> = {
  [`${XMLENC}aes128-cbc`]: { kind: 'cbc', name: 'aes-128-cbc', keyBytes: 16, blockBytes: 16 },
  [`${XMLENC}aes192-cbc`]: { kind: 'cbc', name: 'aes-192-cbc', keyBytes: 24, blockBytes: 16 },
  [`${XMLENC}aes256-cbc`]: { kind: 'cbc', name: 'aes-256-cbc', keyBytes: 32, blockBytes: 16 },
  [`${XMLENC}tripledes-cbc`]: { kind: 'cbc', name: 'des-ede3-cbc', keyBytes: 24, blockBytes: 8 },
  [`${XMLENC}kw-aes128`]: { kind: 'wrap', names: ['id-aes128-wrap', 'id-aes128-wrap-pad'], keyBytes: 16 },
  [`${XMLENC}kw-aes192`]: { kind: 'wrap', names: ['id-aes192-wrap', 'id-aes192-wrap-pad'], keyBytes: 24 },
  [`${XMLENC}kw-aes256`]: { kind: 'wrap', names: ['id-aes256-wrap', 'id-aes256-wrap-pad'], keyBytes: 32 },
  [`${XMLENC11}kw-aes-128-pad`]: { kind: 'wrap', names: ['id-aes128-wrap-pad'], keyBytes: 16 },
  [`${XMLENC11}kw-aes-192-pad`]: { kind: 'wrap', names: ['id-aes192-wrap-pad'], keyBytes: 24 },
  [`${XMLENC11}kw-aes-256-pad`]: { kind: 'wrap', names: ['id-aes256-wrap-pad'], keyBytes: 32 },
  [`${XMLENC}kw-tripledes`]: { kind: 'wrap', names: ['des3-wrap'], keyBytes: 24 },
};

const WRAP_IVS: Record<string, Buffer | null> = {
  wrap: Buffer.from('a6a6a6a6a6a6a6a6', 'hex'),
  'wrap-pad': Buffer.from('a65959a6', 'hex'),
};

const MACS: Record<string, string> = {
  'http://www.w3.org/2000/09/xmldsig#hmac-sha1': 'sha1',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha224': 'sha224',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha384': 'sha384',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha512': 'sha512',
};

export const PBKDF2_URIS = new Set(['http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2', `${XMLENC11}pbkdf2`]);

const PRFS: Record<string, string> = {
  '': 'sha1',
  'http://www.w3.org/2000/09/xmldsig#hmac-sha1': 'sha1',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha512': 'sha512',
};

/** Strict base64 (Buffer.from drops what it does not know): undefined when it is not. */
export function base64(text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, '');
  return /^[A-Za-z0-9+/]*={0,2}$/.test(compact) && compact.length % 4 === 0 ? Buffer.from(compact, 'base64') : undefined;
}

/** The MAC algorithm URI's hash, or undefined when it is not one this reader knows. */
export function macHash(uri: string): string | undefined {
  return MACS[uri.trim()];
}

/** PBKDF2 parameters as the container gives them. */
export interface Pbkdf2Params {
  readonly salt?: Buffer;
  readonly iterations: number;
  readonly keyLength: number;
  readonly prfUri: string;
}

/** Whether a value is encrypted in a way that needs a MAC beside it (CBC) or checks itself (key wrap). */
export function needsMac(methodUri: string): boolean {
  return CIPHERS[methodUri.trim()]?.kind !== 'wrap';
}

/**
 * The container's encryption key (and MAC key, once set). `file` names the file in messages.
 */
export class ContainerKey {
  private key?: Buffer;
  private macKey?: Buffer;
  private macAlgorithm?: string;

  constructor(readonly file: string) {}

  get hasKey(): boolean {
    return this.key !== undefined;
  }

  get hasMacKey(): boolean {
    return this.macKey !== undefined;
  }

  /** The pre-shared key from --psk-file. */
  usePsk(psk: Secret | undefined, keyName: string | undefined): void {
    if (!psk) throw new SeedFileError(this.file, `is encrypted with a pre-shared key${keyName ? ` (${JSON.stringify(keyName.slice(0, 60))})` : ''}: give it with --psk-file`);
    this.key = psk.use((b) => Buffer.from(b));
  }

  /** A key derived from the passphrase (PBKDF2). */
  derive(params: Pbkdf2Params, passphrase: Secret | undefined): void {
    if (!passphrase) throw new SeedFileError(this.file, 'is protected by a passphrase: give it with --passphrase-file (or at the prompt on a terminal)');
    const prf = PRFS[params.prfUri];
    const { salt, iterations, keyLength } = params;
    if (!salt || !Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000 || ![16, 24, 32].includes(keyLength) || !prf) {
      throw new SeedFileError(this.file, 'has PBKDF2 parameters this reader cannot use (salt, iteration count, key length or PRF)');
    }
    this.key = passphrase.use((p) => pbkdf2Sync(p, salt, iterations, keyLength, prf));
  }

  /** The MAC key: decrypted from the container (RFC 6030), or the encryption key itself (the older drafts). */
  setMac(algorithmUri: string, key: Buffer | 'encryption-key'): void {
    const hash = macHash(algorithmUri);
    if (!hash) {
      if (key !== 'encryption-key') key.fill(0);
      throw new SeedFileError(this.file, `uses the MAC ${JSON.stringify(algorithmUri.slice(0, 100))}: unsupported (HMAC-SHA1/224/256/384/512)`);
    }
    this.macAlgorithm = hash;
    this.macKey = key === 'encryption-key' ? Buffer.from(this.requireKey('the MAC key')) : key;
  }

  private requireKey(what: string): Buffer {
    if (!this.key) throw new SeedFileError(this.file, `holds ${what} encrypted, but no EncryptionKey says with what key`);
    return this.key;
  }

  /**
   * Opens an encrypted value. CBC: `whole` is IV ‖ ciphertext, unless `iv` is given apart (the
   * older drafts). Key wrap: `whole` is the wrapped value.
   */
  decrypt(methodUri: string, whole: Buffer, what: string, iv?: Buffer): Buffer {
    const key = this.requireKey(what);
    const cipher = CIPHERS[methodUri.trim()];
    if (!cipher) throw new SeedFileError(this.file, `encrypts ${what} with ${JSON.stringify(methodUri.slice(0, 100))}: unsupported (AES-CBC, 3DES-CBC and AES/3DES key wrap; no RSA)`);
    if (key.length !== cipher.keyBytes) {
      throw new SeedFileError(this.file, `needs a ${cipher.keyBytes * 8}-bit key for ${methodUri.replace(/^.*#/, '')}, and the key given is ${key.length * 8} bits: wrong --psk-file?`);
    }
    const corrupt = (): never => {
      throw new SeedFileError(this.file, `cannot be decrypted (${what}): wrong key or passphrase, or a corrupt file`);
    };
    if (cipher.kind === 'wrap') {
      if (whole.length < 16 || whole.length % 8 !== 0) corrupt();
      // RFC 3394 checks its IV and RFC 5649 its length and padding: a wrong key or a flipped
      // bit fails both. Peers accept either form under the kw-aes URIs.
      for (const name of cipher.names) {
        try {
          const d = createDecipheriv(name, key, name === 'des3-wrap' ? null : WRAP_IVS[name.endsWith('-pad') ? 'wrap-pad' : 'wrap']!);
          return Buffer.concat([d.update(whole), d.final()]);
        } catch {
          // the next form, else corrupt
        }
      }
      return corrupt();
    }
    const ivBytes = iv ?? whole.subarray(0, cipher.blockBytes);
    const body = iv ? whole : whole.subarray(cipher.blockBytes);
    if (ivBytes.length !== cipher.blockBytes || body.length === 0 || body.length % cipher.blockBytes !== 0) {
      throw new SeedFileError(this.file, `holds ${what} as a CipherValue that is not valid ${cipher.name} ciphertext`);
    }
    try {
      const decipher = createDecipheriv(cipher.name, key, ivBytes);
      return Buffer.concat([decipher.update(body), decipher.final()]);
    } catch {
      return corrupt();
    }
  }

  /**
   * Checks a value's MAC (`over`: the bytes the format MACs) in constant time; a missing MAC
   * key or MAC refuses the file: a protected value that cannot be checked is not trusted.
   */
  verify(over: Buffer, mac: string | undefined, what: string, where: string): void {
    if (!this.macKey || !this.macAlgorithm) throw new SeedFileError(this.file, `${where}: ${what} is encrypted with CBC and carries no MAC this file lets be checked (no MACMethod with a MAC key): refused, since an unchecked value may have been altered; ask the vendor for the file as shipped`);
    if (mac === undefined) throw new SeedFileError(this.file, `${where}: ${what} has no MAC, though the file declares a MAC method: refused as altered; ask the vendor for the file as shipped`);
    const expected = createHmac(this.macAlgorithm, this.macKey).update(over).digest();
    const given = base64(mac);
    if (!given || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new SeedFileError(this.file, `${where}: the MAC of ${what} does not verify: the file was altered, or the key or passphrase is wrong`);
    }
  }

  /** Whether `mac` is the MAC of `over` (no error either way). */
  matches(over: Buffer, mac: string): boolean {
    if (!this.macKey || !this.macAlgorithm) return false;
    const expected = createHmac(this.macAlgorithm, this.macKey).update(over).digest();
    const given = base64(mac);
    return given !== undefined && given.length === expected.length && timingSafeEqual(given, expected);
  }

  wipe(): void {
    this.key?.fill(0);
    this.macKey?.fill(0);
    this.key = undefined;
    this.macKey = undefined;
  }
}
