/**
 * PSKC seed files (SEEDS.md "PSKC 1.0" and "Older PSKC documents"): RFC 6030 and the pre-RFC
 * drafts vendors still ship (`Device`/`DeviceId`, `Key KeyId KeyAlgorithm`, `Data Name=…` with
 * `Value`/`ValueDigest`, a container-level `EncryptionMethod` with its `IV`), read in one
 * streaming XML pass (xml.ts), plain or protected (pskc-crypto.ts).
 *
 * Protected means checked, as a property of the container: a container that declares
 * encryption or a MAC promises protected secrets, so a plain secret inside it is a tampered
 * file, and so is an encrypted secret whose MAC cannot be checked; either refuses the whole
 * file, naming the token. A container with no protection imports with a warning, and is
 * refused when the operator gave a key (it is not the file they were told it is) unless
 * --allow-unencrypted. File-level problems are SeedFileErrors (exit 2 before anything is
 * sent, one line, no secret in it); token-level problems make that token INVALID.
 */
import { Secret } from './secret.js';
import { SeedFileError } from './seed-file-error.js';
import { ContainerKey, PBKDF2_URIS, base64, needsMac, type PskcKeys } from './pskc-crypto.js';
import { settleCopies, type SeedFileRead } from './copies.js';
import { checkToken, CounterError, hashFromText, parseCounter, type SeedToken, type TokenProblem, type TokenType } from './token.js';
import { child, childText, children, readXml, type XmlElement } from './xml.js';

export type { PskcKeys } from './pskc-crypto.js';

export interface PskcOptions {
  /** The operator confirms that a file without protection is what the vendor sent (--allow-unencrypted). */
  readonly allowUnencrypted?: boolean;
}

/** Larger than any real shipment (100,000 tokens at ~1.5 KB each), small enough to refuse junk. */
export const MAX_PSKC_BYTES = 256 * 1024 * 1024;

const RFC_NS = 'urn:ietf:params:xml:ns:keyprov:pskc';
/** The pre-RFC drafts' container namespaces. */
const DRAFT_NS = new Set(['urn:ietf:params:xml:ns:keyprov:container:1.0', 'urn:ietf:params:xml:ns:keyprov:pskc:1.0']);

function algorithmType(uri: string | undefined): TokenType | undefined {
  const u = (uri ?? '').trim().toLowerCase();
  const m = /^(?:urn:ietf:params:xml:ns:keyprov:pskc|http:\/\/www\.ietf\.org\/keyprov\/pskc)[:#](hotp|totp)$/.exec(u);
  return m ? (m[1]!.toUpperCase() as TokenType) : undefined;
}

/** What the container's head declares: how its values are protected. */
interface Protection {
  /** EncryptionKey, MACMethod, MACAlgorithm or a draft EncryptionMethod/DigestMethod: secrets must be protected. */
  readonly declared: boolean;
  /** The drafts' container-level cipher and IV (values are ciphertext alone). */
  readonly draftCipher?: { readonly uri: string; readonly iv?: Buffer };
  /** The drafts' digest method: HMAC keyed with the encryption key, over the plaintext. */
  readonly draftDigest?: string;
}

/**
 * Reads a PSKC document (text, or bytes in any encoding XML allows); `file` names it in
 * messages. The tokens in document order, and the warnings an operator must see.
 */
export function readPskc(file: string, input: string | Buffer, keys: PskcKeys = {}, options: PskcOptions = {}): SeedFileRead {
  if (input.length > MAX_PSKC_BYTES) throw new SeedFileError(file, `is larger than ${MAX_PSKC_BYTES / 1024 / 1024} MB: not a token shipment`);
  const key = new ContainerKey(file);
  const head: XmlElement[] = [];
  const tokens: SeedToken[] = [];
  const warnings: string[] = [];
  let draft = false;
  let protection: Protection | undefined;
  let packages = 0;

  const setUp = (): Protection => {
    const find = (name: string): XmlElement | undefined => head.find((e) => e.name === name);
    const encryptionKey = find('EncryptionKey');
    const macMethod = find('MACMethod');
    const macAlgorithm = find('MACAlgorithm');
    const draftMethod = draft ? find('EncryptionMethod') : undefined;
    const draftDigest = draft ? find('DigestMethod') : undefined;
    const declared = [encryptionKey, macMethod, macAlgorithm, draftMethod, draftDigest].some((e) => e !== undefined);
    if (encryptionKey) {
      if (child(encryptionKey, 'X509Data')) throw new SeedFileError(file, 'is encrypted to an RSA key (X509Data): unsupported; ask the vendor for a pre-shared-key or passphrase-protected PSKC file');
      const derived = child(encryptionKey, 'DerivedKey');
      if (derived) {
        const method = child(derived, 'KeyDerivationMethod');
        const algorithm = method?.attrs.get('Algorithm') ?? '';
        if (!PBKDF2_URIS.has(algorithm)) throw new SeedFileError(file, `derives its key with ${JSON.stringify(algorithm.slice(0, 100))}: unsupported (PBKDF2 only)`);
        const params = child(method, 'PBKDF2-params');
        key.derive(
          {
            salt: base64(childText(child(params, 'Salt'), 'Specified') ?? ''),
            iterations: Number(childText(params, 'IterationCount')),
            keyLength: Number(childText(params, 'KeyLength')),
            prfUri: child(params, 'PRF')?.attrs.get('Algorithm') ?? '',
          },
          keys.passphrase,
        );
      } else key.usePsk(keys.psk, childText(encryptionKey, 'KeyName'));
    } else if (draftMethod) {
      // The drafts name no key: it is the one the vendor sent apart (--psk-file).
      key.usePsk(keys.psk, undefined);
    }
    if (macMethod) {
      const macKey = child(macMethod, 'MACKey');
      const algorithm = macMethod.attrs.get('Algorithm') ?? '';
      // RFC 6030 §6.1.1: the MAC key travels encrypted; without one, the encryption key is used (as the drafts did).
      key.setMac(algorithm, macKey ? openElement(key, macKey, 'the MAC key', 'the MACMethod') : 'encryption-key');
    } else if (macAlgorithm) key.setMac(macAlgorithm.text.trim(), 'encryption-key');
    else if (draftDigest) key.setMac(draftDigest.attrs.get('Algorithm') ?? draftDigest.attrs.get('algorithm') ?? '', 'encryption-key');
    if (!declared) {
      if ((keys.psk || keys.passphrase) && !options.allowUnencrypted) {
        throw new SeedFileError(
          file,
          `is not encrypted (no EncryptionKey, no MAC), though a ${keys.psk ? 'key (--psk-file)' : 'passphrase'} was given: this is not the protected file the vendor was to send, and anyone who handled it may know every seed. Ask the vendor for the file as shipped; if they confirm it was sent unprotected, add --allow-unencrypted`,
        );
      }
      warnings.push(`${file} is not encrypted: anyone who copied it on its way knows every seed in it. Import it only if the vendor sent it so, over a channel you trust; delete it after the import`);
    }
    const ivText = draftMethod ? childText(draftMethod, 'IV') : undefined;
    return {
      declared,
      draftCipher: draftMethod ? { uri: draftMethod.attrs.get('Algorithm') ?? draftMethod.attrs.get('algorithm') ?? '', iv: ivText === undefined ? undefined : base64(ivText) } : undefined,
      draftDigest: draftDigest?.attrs.get('Algorithm'),
    };
  };

  try {
    readXml(file, input, {
      root(element) {
        if (element.name === 'SecretContainer') throw new SeedFileError(file, 'is an OATH SecretContainer (a 2006 draft, before PSKC): unsupported; ask the vendor for a PSKC (RFC 6030) file');
        if (element.name !== 'KeyContainer') throw new SeedFileError(file, `has no KeyContainer (its root is <${element.name}>): not a PSKC (RFC 6030) seed file`);
        draft = DRAFT_NS.has(element.ns);
        if (!draft && element.ns !== RFC_NS && element.ns !== '') throw new SeedFileError(file, `has a KeyContainer in the namespace ${JSON.stringify(element.ns.slice(0, 100))}: not a PSKC namespace this reader knows`);
        const version = element.attrs.get('Version') ?? element.attrs.get('version');
        if (version !== undefined && version !== '1.0') throw new SeedFileError(file, `is PSKC version ${version.slice(0, 20)}; this reads version 1.0`);
      },
      child(element) {
        if (element.name === 'KeyPackage' || element.name === 'Device') {
          // A Device of the drafts may hold several keys; a KeyPackage holds one.
          if (element.name === 'Device') draft = true;
          protection ??= setUp();
          packages++;
          for (const k of keysOf(element)) tokens.push(readKey(file, { index: tokens.length + 1, packageNo: packages, line: k.line, pkg: element, key: k }, key, protection));
          return;
        }
        if (['EncryptionKey', 'MACMethod', 'MACAlgorithm', 'EncryptionMethod', 'DigestMethod'].includes(element.name)) {
          if (protection) throw new SeedFileError(file, `declares <${element.name}> (line ${element.line}) after its first token: the keys come first in a PSKC file; ask the vendor for the file as shipped`);
          head.push(element);
        }
      },
    });
    if (packages === 0) throw new SeedFileError(file, 'holds no KeyPackage: no tokens in it');
    if (!protection) setUp();
  } catch (error) {
    // The file is refused whole: the seeds read so far are dropped, zeroed first.
    for (const t of tokens) t.secret?.wipe();
    throw error;
  } finally {
    key.wipe();
  }
  const settled = settleCopies(tokens, (t) => `package ${t.packageNo ?? t.index} (line ${t.line})`);
  return { tokens: settled.tokens, warnings: [...warnings, ...settled.warnings] };
}

export function keysOf(pkg: XmlElement): XmlElement[] {
  const keys = [...children(pkg, 'Key'), ...children(pkg, 'Secret')];
  return keys.length > 0 ? keys : [{ name: 'Key', ns: '', attrs: new Map(), children: [], text: '', line: pkg.line }];
}

/**
 * Opens an RFC-style EncryptedValue (EncryptionMethod + CipherData). `mac`: the value's
 * ValueMAC, checked before anything is decrypted — RFC 6030 §6.1.1: CBC needs the MAC over
 * IV ‖ ciphertext; key wrap checks itself (a MAC given is checked too). Without `mac` (the MAC
 * key itself) nothing is checked.
 */
function openElement(key: ContainerKey, node: XmlElement, what: string, where: string, mac?: { readonly value?: string }): Buffer {
  const method = child(node, 'EncryptionMethod')?.attrs.get('Algorithm') ?? '';
  const whole = base64(childText(child(node, 'CipherData'), 'CipherValue') ?? '');
  if (!whole) throw new SeedFileError(key.file, `${where}: ${what} is not valid base64 ciphertext`);
  if (mac && (needsMac(method) || (mac.value !== undefined && key.hasMacKey))) key.verify(whole, mac.value, what, where);
  return key.decrypt(method, whole, what);
}

/** A value of one token that cannot be read: that token is INVALID with this code. */
class TokenValueError extends Error {
  constructor(
    readonly code: TokenProblem['code'],
    message: string,
  ) {
    super(message);
  }
}

interface Place {
  readonly index: number;
  readonly packageNo: number;
  readonly line: number;
  readonly pkg: XmlElement;
  readonly key: XmlElement;
}

/** A token's serial: the package's SerialNo, else (the drafts, some vendors) the key's id. */
export function serialOf(pkg: XmlElement, key: XmlElement): string {
  const device = child(pkg, 'DeviceInfo') ?? child(pkg, 'DeviceId');
  return childText(device, 'SerialNo') || key.attrs.get('Id') || key.attrs.get('KeyId') || key.attrs.get('SecretId') || '';
}

/** One token: its identity and parameters, its values opened and checked. */
function readKey(file: string, place: Place, crypt: ContainerKey, protection: Protection): SeedToken {
  const { pkg, key } = place;
  const device = child(pkg, 'DeviceInfo') ?? child(pkg, 'DeviceId');
  const serialNumber = serialOf(pkg, key);
  const where = `package ${place.packageNo} (line ${place.line}${serialNumber ? `, serial ${JSON.stringify(serialNumber.slice(0, 50))}` : ''})`;
  const policy = child(key, 'Policy');
  const validity = validityOf([childText(device, 'StartDate'), childText(policy, 'StartDate'), childText(key, 'StartDate')], [childText(device, 'ExpiryDate'), childText(device, 'Expiry'), childText(policy, 'ExpiryDate'), childText(key, 'ExpiryDate')]);
  const base = { index: place.index, packageNo: place.packageNo, line: place.line, serialNumber, manufacturer: childText(device, 'Manufacturer'), model: childText(device, 'Model'), ...validity };
  const refused = (code: TokenProblem['code'], message: string): SeedToken => ({ ...base, problem: { code, message }, warnings: [] });

  const algorithm = key.attrs.get('Algorithm') ?? key.attrs.get('KeyAlgorithm') ?? key.attrs.get('SecretAlgorithm');
  const type = algorithmType(algorithm);
  const params = child(key, 'AlgorithmParameters') ?? child(key, 'Usage');
  const format = child(params, 'ResponseFormat');
  const values = valuesOf(key);
  // Protected means checked: a plain secret in a protected container is refused whatever the algorithm.
  if (protection.declared && values.secret && !isProtected(values.secret)) {
    throw new SeedFileError(file, `${where}: the secret is not encrypted, though the file declares encryption or a MAC: a protected file with an unprotected secret has been altered (whoever edited it knows that seed). Nothing of the file is imported; ask the vendor for the file as shipped`);
  }
  if (!type) return refused('UNSUPPORTED_ALGORITHM', `algorithm ${JSON.stringify((algorithm ?? 'none').slice(0, 100))} is not an OATH HOTP or TOTP token: skipped`);
  const encoding = format?.attrs.get('Encoding') ?? format?.attrs.get('Format');
  if (encoding !== undefined && encoding.toUpperCase() !== 'DECIMAL') return refused('UNSUPPORTED_TOKEN', `codes encoded ${encoding.slice(0, 20)}: PingOne takes decimal codes`);
  const lengthText = format?.attrs.get('Length');
  const otpLength = lengthText === undefined ? 6 : Number(lengthText);
  const suite = childText(params, 'Suite');
  const hashAlgorithm = hashFromText(suite);
  if (child(key, 'KeyReference') !== undefined && !values.secret) {
    return refused('SECRET_MISSING', 'the key is a reference to a key held elsewhere (KeyReference), not a secret: derive it out of band with the vendor');
  }
  if (child(policy, 'PINPolicy') !== undefined) return refused('UNSUPPORTED_TOKEN', 'the token has a PIN policy, which PingOne cannot enforce');

  let secret: Secret | undefined;
  const warnings: string[] = [];
  let counter: bigint | undefined;
  let timeStep: number | undefined;
  try {
    const raw = values.secret && (open(values.secret, 'the secret', where, crypt, protection, 'bytes') as Buffer | undefined);
    if (raw) secret = Secret.own(raw);
    // A number value as decimal text, opened and checked like any value.
    const numberOf = (value: Value | undefined, what: string): string | undefined => value && numberText(open(value, what, where, crypt, protection, 'number'), what);
    const counterText = numberOf(values.counter, 'the counter');
    counter = counterText === undefined ? undefined : parseCounter(counterText);
    const interval = small(numberOf(values.timeInterval, 'the time interval'), 'the time interval');
    const time = small(numberOf(values.time, 'the time'), 'the time');
    const drift = small(numberOf(values.timeDrift, 'the time drift'), 'the time drift');
    if (time !== undefined && time !== 0) {
      secret?.wipe();
      return refused('UNSUPPORTED_TOKEN', `a Time of ${time}: PingOne counts TOTP steps from the Unix epoch only`);
    }
    if (drift !== undefined && drift !== 0) warnings.push(`a drift of ${drift} steps is recorded, which PingOne cannot import: resync the token after assignment if its codes are refused`);
    timeStep = type === 'TOTP' ? (interval ?? 30) : undefined;
  } catch (error) {
    secret?.wipe();
    if (error instanceof TokenValueError || error instanceof CounterError) return refused(error.code, error.message);
    throw error;
  }
  const token = { ...base, type, otpLength, hashAlgorithm, counter: type === 'HOTP' ? (counter ?? 0n) : undefined, timeStep, secret };
  const checked = checkToken(token, suite);
  if (checked.problem) secret?.wipe();
  return { ...token, secret: checked.problem ? undefined : secret, problem: checked.problem, warnings: [...warnings, ...checked.warnings] };
}

/** A value as the file holds it: RFC 6030's PlainValue / EncryptedValue (+ ValueMAC), or the drafts' Value (+ ValueDigest). */
type Value =
  | { readonly form: 'plain'; readonly text: string }
  | { readonly form: 'encrypted'; readonly node: XmlElement; readonly mac?: string }
  | { readonly form: 'draft'; readonly text: string; readonly digest?: string };

interface Values {
  readonly secret?: Value;
  readonly counter?: Value;
  readonly time?: Value;
  readonly timeInterval?: Value;
  readonly timeDrift?: Value;
}

const DRAFT_NAMES: Record<string, keyof Values> = { SECRET: 'secret', COUNTER: 'counter', TIME: 'time', TIME_INTERVAL: 'timeInterval', TIME_DRIFT: 'timeDrift' };
const RFC_NAMES: Record<string, keyof Values> = { Secret: 'secret', Counter: 'counter', Time: 'time', TimeInterval: 'timeInterval', TimeDrift: 'timeDrift' };

function valuesOf(key: XmlElement): Values {
  const values: Partial<Record<keyof Values, Value>> = {};
  for (const data of children(key, 'Data')) {
    const name = data.attrs.get('Name');
    if (name !== undefined) {
      // The drafts: <Data Name="SECRET"><Value>…</Value><ValueDigest>…</ValueDigest></Data>
      const slot = DRAFT_NAMES[name.toUpperCase()];
      if (slot && !values[slot]) values[slot] = { form: 'draft', text: childText(data, 'Value') ?? '', digest: childText(data, 'ValueDigest') };
      continue;
    }
    for (const item of data.children) {
      const slot = RFC_NAMES[item.name];
      if (!slot || values[slot]) continue;
      const plain = childText(item, 'PlainValue');
      const encrypted = child(item, 'EncryptedValue');
      if (plain !== undefined) values[slot] = { form: 'plain', text: plain };
      else if (encrypted) values[slot] = { form: 'encrypted', node: encrypted, mac: childText(item, 'ValueMAC') };
    }
  }
  return values;
}

function isProtected(value: Value): boolean {
  return value.form === 'encrypted' || (value.form === 'draft' && value.digest !== undefined);
}

/**
 * A value's bytes (a secret), or for `number` its decimal text or big-endian bytes. Encrypted
 * values are decrypted and their MAC checked before anything is trusted.
 */
function open(value: Value, what: string, where: string, crypt: ContainerKey, protection: Protection, as: 'bytes' | 'number'): Buffer | string | undefined {
  if (value.form === 'plain') {
    if (as === 'number') return value.text;
    const bytes = base64(value.text);
    if (!bytes) throw new TokenValueError('SECRET_INVALID', `${what} is not valid base64`);
    return bytes;
  }
  if (value.form === 'encrypted') return openElement(crypt, value.node, what, where, { value: value.mac });
  // The drafts: a Value is base64; in a container that declares a cipher, one with a digest is
  // ciphertext (IV from the container, else in front), its digest an HMAC of the plaintext
  // keyed with the encryption key.
  const bytes = base64(value.text);
  if (!bytes) throw new TokenValueError(what === 'the secret' ? 'SECRET_INVALID' : 'COUNTER_INVALID', `${what} is not valid base64`);
  if (!protection.declared || value.digest === undefined) return bytes;
  if (!protection.draftCipher) throw new SeedFileError(crypt.file, `${where}: ${what} carries a digest but the file declares no EncryptionMethod`);
  const plain = crypt.decrypt(protection.draftCipher.uri, bytes, what, protection.draftCipher.iv);
  try {
    // Vendors' files digest the plaintext (ActivIdentity); some the stored ciphertext: either is a check.
    if (!crypt.matches(plain, value.digest)) crypt.verify(bytes, value.digest, what, where);
  } catch (error) {
    plain.fill(0);
    throw error;
  }
  return plain;
}

/** A number value as decimal text: decimal text as is, or big-endian bytes (at most 8). */
function numberText(value: Buffer | string | undefined, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value.trim();
  const asText = value.toString('latin1');
  if (/^\d{1,20}$/.test(asText)) return asText;
  if (value.length <= 8) return Buffer.concat([Buffer.alloc(8 - value.length), value]).readBigUInt64BE(0).toString();
  throw new TokenValueError('COUNTER_INVALID', `${what} cannot be read as a number`);
}

/** A small whole number (intervals, times, drift), or INVALID. */
function small(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?\d{1,15}$/.test(text)) throw new TokenValueError(what === 'the time interval' ? 'TIME_STEP_UNSUPPORTED' : 'UNSUPPORTED_TOKEN', `${what} ${JSON.stringify(text.slice(0, 20))} is not a whole number`);
  return Number(text);
}

/** Vendor validity: the latest start and the earliest expiry the file states, as ISO dates. */
function validityOf(starts: Array<string | undefined>, ends: Array<string | undefined>): { validFrom?: string; validUntil?: string } {
  const dates = (texts: Array<string | undefined>): number[] => texts.map(parseDate).filter((d): d is number => d !== undefined);
  const from = dates(starts);
  const until = dates(ends);
  return {
    ...(from.length ? { validFrom: new Date(Math.max(...from)).toISOString() } : {}),
    ...(until.length ? { validUntil: new Date(Math.min(...until)).toISOString() } : {}),
  };
}

/** xs:dateTime / xs:date, or the drafts' MM/DD/YYYY. */
function parseDate(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const us = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(text.trim());
  const ms = us ? Date.UTC(Number(us[3]), Number(us[1]) - 1, Number(us[2])) : /^\d{4}-\d{2}-\d{2}/.test(text.trim()) ? Date.parse(text.trim()) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}
