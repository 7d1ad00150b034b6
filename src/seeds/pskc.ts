/**
 * PSKC 1.0 (RFC 6030) seed files: plaintext, pre-shared-key and PBKDF2-passphrase encrypted
 * (AES-128/192/256-CBC, 3DES-CBC, HMAC-SHA1/SHA2 MACs), any namespace prefix, many
 * KeyPackages (SEEDS.md "PSKC 1.0"). File-level problems (not PSKC, a DOCTYPE or entity
 * declaration, a MAC that does not verify, a wrong or missing key, an unsupported
 * encryption) are SeedFileErrors: exit 2 before anything is sent, one line, no secret in it.
 * Token-level problems make that token INVALID and leave the others.
 */
import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { Secret } from './secret.js';
import { SeedFileError } from './seed-file-error.js';
import { checkToken, hashFromText, markDuplicates, type SeedToken, type TokenType } from './token.js';

/** Where the keys come from: bytes read from --psk-file, or a passphrase (file or prompt). */
export interface PskcKeys {
  readonly psk?: Secret;
  readonly passphrase?: Secret;
}

/** Larger than any real shipment (100,000 tokens at ~1.5 KB each), small enough to refuse junk. */
export const MAX_PSKC_BYTES = 256 * 1024 * 1024;

const CIPHERS: Record<string, { name: string; keyBytes: number; blockBytes: number }> = {
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc': { name: 'aes-128-cbc', keyBytes: 16, blockBytes: 16 },
  'http://www.w3.org/2001/04/xmlenc#aes192-cbc': { name: 'aes-192-cbc', keyBytes: 24, blockBytes: 16 },
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc': { name: 'aes-256-cbc', keyBytes: 32, blockBytes: 16 },
  'http://www.w3.org/2001/04/xmlenc#tripledes-cbc': { name: 'des-ede3-cbc', keyBytes: 24, blockBytes: 8 },
};

const MACS: Record<string, string> = {
  'http://www.w3.org/2000/09/xmldsig#hmac-sha1': 'sha1',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha224': 'sha224',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha384': 'sha384',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha512': 'sha512',
};

const PBKDF2 = new Set(['http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2', 'http://www.w3.org/2009/xmlenc11#pbkdf2']);

const PRFS: Record<string, string> = {
  '': 'sha1',
  'http://www.w3.org/2000/09/xmldsig#hmac-sha1': 'sha1',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha512': 'sha512',
};

function algorithmType(uri: string | undefined): TokenType | undefined {
  const u = (uri ?? '').trim().toLowerCase();
  if (/^urn:ietf:params:xml:ns:keyprov:pskc[:#]hotp$/.test(u)) return 'HOTP';
  if (/^urn:ietf:params:xml:ns:keyprov:pskc[:#]totp$/.test(u)) return 'TOTP';
  return undefined;
}

type Node = Record<string, unknown>;

const asNode = (v: unknown): Node | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Node) : undefined);
const text = (v: unknown): string | undefined => {
  if (typeof v === 'string') return v.trim();
  const n = asNode(v);
  if (n && typeof n['#text'] === 'string') return n['#text'].trim();
  return undefined;
};
const attr = (n: Node | undefined, name: string): string | undefined => (n && typeof n[`@_${name}`] === 'string' ? (n[`@_${name}`] as string) : undefined);
const b64 = (s: string): Buffer | undefined => {
  const compact = s.replace(/\s+/g, '');
  return /^[A-Za-z0-9+/]*={0,2}$/.test(compact) && compact.length % 4 === 0 ? Buffer.from(compact, 'base64') : undefined;
};

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false,
  trimValues: true,
});

/** Line number of an offset, for messages. */
function lineAt(xml: string, offset: number): number {
  let line = 1;
  for (let i = xml.indexOf('\n'); i !== -1 && i < offset; i = xml.indexOf('\n', i + 1)) line++;
  return line;
}

function parseChecked(file: string, xml: string, part: string, offset: number, whole: string): Node {
  const valid = XMLValidator.validate(part);
  if (valid !== true) {
    throw new SeedFileError(file, `is not well-formed XML at line ${lineAt(whole, offset) + valid.err.line - 1}: ${valid.err.msg.replace(/\s+/g, ' ').slice(0, 120)}`);
  }
  return parser.parse(part) as Node;
}

/**
 * Reads a PSKC document; `file` names it in messages. The container's head (keys, MAC) is
 * parsed on its own, then each KeyPackage in turn: memory holds one package's tree at a time,
 * not the whole file's (a 100,000-token file is ~40 MB of XML and would take ~700 MB as one
 * tree).
 */
export function readPskc(file: string, xml: string, keys: PskcKeys = {}): SeedToken[] {
  if (xml.length > MAX_PSKC_BYTES) throw new SeedFileError(file, `is larger than ${MAX_PSKC_BYTES / 1024 / 1024} MB: not a token shipment`);
  // Entity expansion is how XML files attack readers (XXE, billion laughs): refuse any.
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new SeedFileError(file, 'declares a DOCTYPE or entities, which a seed file never needs: refused unread (ask the vendor for a plain PSKC file)');
  const root = /<((?:[A-Za-z_][\w.-]*:)?)KeyContainer\b[^>]*>/.exec(xml);
  if (!root) throw new SeedFileError(file, 'has no KeyContainer: not a PSKC (RFC 6030) seed file');
  const prefix = root[1]!;
  const closing = new RegExp(`</${prefix.replace(/[.]/g, '\\.')}KeyContainer\\s*>\\s*$`);
  if (!closing.test(xml)) {
    throw new SeedFileError(file, `is cut short (no closing </${prefix}KeyContainer>, line ${lineAt(xml, xml.length)}): a log saved while it was still being written? Get the complete file`);
  }
  const packageRe = /<((?:[A-Za-z_][\w.-]*:)?)KeyPackage\b[\s\S]*?<\/\1KeyPackage\s*>/g;
  packageRe.lastIndex = root.index + root[0].length;
  const first = packageRe.exec(xml);
  if (!first) throw new SeedFileError(file, 'holds no KeyPackage: no tokens in it');
  // The head: the container with what comes before the first package (keys, MAC method).
  const head = parseChecked(file, xml, `${xml.slice(root.index, first.index)}</${prefix}KeyContainer>`, root.index, xml);
  const container = asNode(head['KeyContainer']) ?? (head['KeyContainer'] === '' ? {} : undefined);
  if (!container) throw new SeedFileError(file, 'has no KeyContainer: not a PSKC (RFC 6030) seed file');
  const version = attr(container, 'Version');
  if (version !== undefined && version !== '1.0') throw new SeedFileError(file, `is PSKC version ${version}; this reads version 1.0`);

  const crypto = new Decryptor(file, container, keys);
  const tokens: SeedToken[] = [];
  try {
    for (let m: RegExpExecArray | null = first; m; m = packageRe.exec(xml)) {
      const pkg = asNode(parseChecked(file, xml, m[0], m.index, xml)['KeyPackage']) ?? {};
      tokens.push(readPackage(tokens.length + 1, pkg, crypto));
    }
  } catch (error) {
    // The file is refused whole: the seeds read so far are dropped, zeroed first.
    for (const t of tokens) t.secret?.wipe();
    throw error;
  } finally {
    crypto.wipe();
  }
  return markDuplicates(tokens);
}

function readPackage(index: number, pkg: Node, crypto: Decryptor): SeedToken {
  const device = asNode(pkg['DeviceInfo']);
  const key = asNode(pkg['Key']) ?? {};
  const serialNumber = text(device?.['SerialNo']) ?? attr(key, 'Id') ?? '';
  const manufacturer = text(device?.['Manufacturer']);
  const model = text(device?.['Model']);
  const base = { index, serialNumber, manufacturer, model };
  const refused = (code: 'UNSUPPORTED_ALGORITHM' | 'UNSUPPORTED_TOKEN' | 'SECRET_MISSING' | 'SECRET_INVALID', message: string): SeedToken => ({ ...base, problem: { code, message }, warnings: [] });

  const algorithm = attr(key, 'Algorithm');
  const type = algorithmType(algorithm);
  if (!type) return refused('UNSUPPORTED_ALGORITHM', `algorithm ${JSON.stringify(algorithm ?? 'none')} is not an OATH HOTP or TOTP token: skipped`);
  const params = asNode(key['AlgorithmParameters']);
  const format = asNode(params?.['ResponseFormat']);
  const encoding = attr(format, 'Encoding');
  if (encoding !== undefined && encoding.toUpperCase() !== 'DECIMAL') return refused('UNSUPPORTED_TOKEN', `codes encoded ${encoding}: PingOne takes decimal codes`);
  const lengthText = attr(format, 'Length');
  const otpLength = lengthText === undefined ? 6 : Number(lengthText);
  const suite = text(params?.['Suite']);
  const hashAlgorithm = hashFromText(suite);
  if (key['KeyReference'] !== undefined && asNode(key['Data'])?.['Secret'] === undefined) {
    return refused('SECRET_MISSING', 'the key is a reference to a key held elsewhere (KeyReference), not a secret: derive it out of band with the vendor');
  }
  if (asNode(key['Policy'])?.['PINPolicy'] !== undefined) {
    return refused('UNSUPPORTED_TOKEN', 'the token has a PIN policy, which PingOne cannot enforce');
  }
  const data = asNode(key['Data']) ?? {};
  let secret: Secret | undefined;
  let counter: number | undefined;
  let timeStep: number | undefined;
  const warnings: string[] = [];
  try {
    const raw = crypto.value(data['Secret'], 'the secret');
    if (raw) secret = Secret.own(raw);
    const counterValue = crypto.number(data['Counter'], 'the counter');
    counter = counterValue;
    const interval = crypto.number(data['TimeInterval'], 'the time interval');
    const time = crypto.number(data['Time'], 'the time');
    const drift = crypto.number(data['TimeDrift'], 'the time drift');
    if (time !== undefined && time !== 0) return refused('UNSUPPORTED_TOKEN', `a Time of ${time}: PingOne counts TOTP steps from the Unix epoch only`);
    if (drift !== undefined && drift !== 0) warnings.push(`a drift of ${drift} steps is recorded, which PingOne cannot import: resync the token after assignment if its codes are refused`);
    timeStep = type === 'TOTP' ? (interval ?? 30) : undefined;
  } catch (error) {
    if (error instanceof TokenValueError) return refused('SECRET_INVALID', error.message);
    throw error;
  }
  const token = { ...base, type, otpLength, hashAlgorithm, counter: type === 'HOTP' ? (counter ?? 0) : undefined, timeStep, secret };
  const checked = checkToken(token, suite);
  if (checked.problem) secret?.wipe();
  return { ...token, secret: checked.problem ? undefined : secret, problem: checked.problem, warnings: [...warnings, ...checked.warnings] };
}

/** A value of one token that cannot be read: that token is INVALID. */
class TokenValueError extends Error {}

/** The file's encryption and MAC keys, and how to read a (possibly encrypted) value. */
class Decryptor {
  private key?: Buffer;
  private macKey?: Buffer;
  private macHash?: string;

  constructor(
    private readonly file: string,
    container: Node,
    keys: PskcKeys,
  ) {
    const encryption = asNode(container['EncryptionKey']) ?? (container['EncryptionKey'] === '' ? {} : undefined);
    if (!encryption) return;
    if (encryption['X509Data'] !== undefined) {
      throw new SeedFileError(file, 'is encrypted to an RSA key (X509Data): unsupported; ask the vendor for a pre-shared-key or passphrase-protected PSKC file');
    }
    const derived = asNode(encryption['DerivedKey']);
    if (derived) {
      this.key = this.derive(derived, keys.passphrase);
    } else {
      if (!keys.psk) throw new SeedFileError(file, `is encrypted with a pre-shared key${text(encryption['KeyName']) ? ` (${JSON.stringify(text(encryption['KeyName']))})` : ''}: give it with --psk-file`);
      this.key = keys.psk.use((b) => Buffer.from(b));
    }
    const mac = asNode(container['MACMethod']);
    if (mac) {
      const algorithm = attr(mac, 'Algorithm') ?? '';
      this.macHash = MACS[algorithm];
      if (!this.macHash) throw new SeedFileError(file, `uses the MAC ${JSON.stringify(algorithm)}: unsupported`);
      const macKey = asNode(mac['MACKey']);
      if (!macKey) throw new SeedFileError(file, 'names a MAC method but holds no MAC key');
      this.macKey = this.decrypt(macKey, 'the MAC key');
    }
  }

  private derive(derived: Node, passphrase: Secret | undefined): Buffer {
    const method = asNode(derived['KeyDerivationMethod']);
    const algorithm = attr(method, 'Algorithm') ?? '';
    if (!PBKDF2.has(algorithm)) throw new SeedFileError(this.file, `derives its key with ${JSON.stringify(algorithm)}: unsupported (PBKDF2 only)`);
    if (!passphrase) throw new SeedFileError(this.file, 'is protected by a passphrase: give it with --passphrase-file (or at the prompt on a terminal)');
    const params = asNode(method?.['PBKDF2-params']) ?? {};
    const salt = b64(text(asNode(params['Salt'])?.['Specified']) ?? '');
    const iterations = Number(text(params['IterationCount']));
    const length = Number(text(params['KeyLength']));
    const prf = PRFS[attr(asNode(params['PRF']), 'Algorithm') ?? ''];
    if (!salt || !Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000 || ![16, 24, 32].includes(length) || !prf) {
      throw new SeedFileError(this.file, 'has PBKDF2 parameters this reader cannot use (salt, iteration count, key length or PRF)');
    }
    return passphrase.use((p) => pbkdf2Sync(p, salt, iterations, length, prf));
  }

  /** Decrypts an EncryptedValue-like node (EncryptionMethod + CipherData), checking the key. */
  private decrypt(node: Node, what: string): Buffer {
    if (!this.key) throw new SeedFileError(this.file, `holds ${what} encrypted, but no EncryptionKey says how`);
    const algorithm = attr(asNode(node['EncryptionMethod']), 'Algorithm') ?? '';
    const cipher = CIPHERS[algorithm];
    if (!cipher) throw new SeedFileError(this.file, `encrypts ${what} with ${JSON.stringify(algorithm)}: unsupported (AES-CBC and 3DES-CBC only; no RSA, no key wrap)`);
    if (this.key.length !== cipher.keyBytes) {
      throw new SeedFileError(this.file, `needs a ${cipher.keyBytes * 8}-bit key for ${cipher.name}, and the key given is ${this.key.length * 8} bits: wrong --psk-file?`);
    }
    const whole = b64(text(asNode(node['CipherData'])?.['CipherValue']) ?? '');
    if (!whole || whole.length < cipher.blockBytes * 2 || (whole.length - cipher.blockBytes) % cipher.blockBytes !== 0) {
      throw new SeedFileError(this.file, `holds ${what} as a CipherValue that is not valid base64 ciphertext`);
    }
    try {
      const decipher = createDecipheriv(cipher.name, this.key, whole.subarray(0, cipher.blockBytes));
      return Buffer.concat([decipher.update(whole.subarray(cipher.blockBytes)), decipher.final()]);
    } catch {
      throw new SeedFileError(this.file, `cannot be decrypted (${what}): wrong key or passphrase, or a corrupt file`);
    }
  }

  /** The bytes of a Data child (Secret …): PlainValue base64, or EncryptedValue with its MAC checked. */
  value(node: unknown, what: string): Buffer | undefined {
    const n = asNode(node);
    if (!n) return undefined;
    const plain = text(n['PlainValue']);
    if (plain !== undefined) {
      const bytes = b64(plain);
      if (!bytes) throw new TokenValueError(`${what} is not valid base64`);
      return bytes;
    }
    const encrypted = asNode(n['EncryptedValue']);
    if (!encrypted) return undefined;
    const bytes = this.decrypt(encrypted, what);
    try {
      this.verify(encrypted, text(n['ValueMAC']), what);
    } catch (error) {
      bytes.fill(0);
      throw error;
    }
    return bytes;
  }

  /** A number: decimal PlainValue, or an encrypted value (decimal text, or a big-endian integer). */
  number(node: unknown, what: string): number | undefined {
    const n = asNode(node);
    if (!n) return undefined;
    const plain = text(n['PlainValue']);
    if (plain !== undefined) {
      if (!/^-?\d{1,15}$/.test(plain)) throw new TokenValueError(`${what} ${JSON.stringify(plain.slice(0, 20))} is not a whole number`);
      return Number(plain);
    }
    const bytes = this.value(node, what);
    if (!bytes) return undefined;
    const asText = bytes.toString('latin1');
    if (/^\d{1,15}$/.test(asText)) return Number(asText);
    if (bytes.length <= 8) return Number(Buffer.concat([Buffer.alloc(8 - bytes.length), bytes]).readBigUInt64BE(0));
    throw new TokenValueError(`${what} cannot be read as a number`);
  }

  /** ValueMAC = HMAC(MAC key, IV ‖ ciphertext), in constant time; a mismatch refuses the file. */
  private verify(encrypted: Node, mac: string | undefined, what: string): void {
    if (!this.macKey || !this.macHash) return;
    const whole = b64(text(asNode(encrypted['CipherData'])?.['CipherValue']) ?? '')!;
    const expected = createHmac(this.macHash, this.macKey).update(whole).digest();
    const given = mac === undefined ? undefined : b64(mac);
    if (!given || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new SeedFileError(this.file, `the MAC of ${what} does not verify: the file was altered, or the key or passphrase is wrong`);
    }
  }

  wipe(): void {
    this.key?.fill(0);
    this.macKey?.fill(0);
  }
}
