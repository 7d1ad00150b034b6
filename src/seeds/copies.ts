/**
 * One conflict policy for every command that reads seeds (SEEDS.md "Integrity"): a serial the
 * file gives two different tokens (secret, type, length, counter, time step or hash) is
 * SEED_CONFLICT on every copy, none of which is imported or assigned, whichever command reads
 * the file; copies equal in all of those are one token (RFC 6030 figure 10's key rollover:
 * the earliest start and the latest expiry are kept, and a warning names both places). Two
 * serials with one secret draw a warning: a package spliced into another passes every MAC.
 *
 * Secrets are compared by a keyed digest (HMAC-SHA256 under a key drawn for this read and
 * never written), so no second copy of a seed is kept to compare with.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { SeedToken } from './token.js';

/** What reading a seed file came to: its tokens in file order, and what the operator must be told. */
export interface SeedFileRead {
  readonly tokens: SeedToken[];
  readonly warnings: string[];
}

/** Refusals of a copy that still take part in the comparison: the copy is a token, refused for a value. */
const COMPARED = new Set(['SECRET_INVALID', 'SECRET_MISSING', 'SECRET_TOO_LONG', 'OTP_LENGTH_UNSUPPORTED', 'TIME_STEP_UNSUPPORTED', 'HASH_UNSUPPORTED', 'TYPE_MISSING', 'COUNTER_INVALID', 'UNSUPPORTED_TOKEN']);

interface Seen {
  readonly token: SeedToken;
  readonly digest: string;
  readonly fields: string;
}

/** `where(t)`: a token's place for messages ("line 5", "package 3 (line 40)"). */
export function settleCopies(tokens: readonly SeedToken[], where: (t: SeedToken) => string): SeedFileRead {
  const key = randomBytes(32);
  const digestOf = (t: SeedToken): string => (t.secret ? t.secret.use((b) => createHmac('sha256', key).update(b).digest('base64')) : '');
  const bySerial = new Map<string, Seen[]>();
  const bySecret = new Map<string, string>();
  const warnings: string[] = [];
  const splices: string[] = [];
  for (const t of tokens) {
    // A device's other keys (OCRA, PIN: UNSUPPORTED_ALGORITHM) share its serial and take no
    // part; nor does a row whose serial is missing, hidden or not a serial. A copy refused for
    // anything else (7 digits, a secret that does not decode) still says something else about
    // the serial than its valid copy: that is a conflict too.
    if (t.serialNumber === '' || (t.problem && !COMPARED.has(t.problem.code))) continue;
    const seen: Seen = { token: t, digest: digestOf(t), fields: `${t.type}|${t.otpLength}|${t.hashAlgorithm}|${t.counter ?? ''}|${t.timeStep ?? ''}` };
    const list = bySerial.get(t.serialNumber);
    if (list) list.push(seen);
    else bySerial.set(t.serialNumber, [seen]);
    if (seen.digest !== '') {
      const other = bySecret.get(seen.digest);
      if (other !== undefined && other !== t.serialNumber) splices.push(`${other} and ${t.serialNumber} (${where(t)})`);
      else bySecret.set(seen.digest, t.serialNumber);
    }
  }
  key.fill(0);

  const replaced = new Map<SeedToken, SeedToken>();
  for (const [serial, copies] of bySerial) {
    if (copies.length < 2) continue;
    // Copies all refused already stay as they are: none of them goes anywhere.
    if (copies.every((c) => c.token.problem)) continue;
    const first = copies[0]!;
    const differing = copies.find((c) => c.digest !== first.digest || c.fields !== first.fields || (c.token.problem === undefined) !== (first.token.problem === undefined));
    if (differing) {
      const what = differing.digest !== first.digest ? 'two different secrets' : 'two different token settings (type, length, counter, time step or hash)';
      const places = copies.map((c) => where(c.token)).join(' and ');
      for (const c of copies) {
        c.token.secret?.wipe();
        replaced.set(c.token, {
          ...c.token,
          secret: undefined,
          problem: { code: 'SEED_CONFLICT', message: `serial ${serial} has ${what} in this file, at ${places}: neither is imported or assigned; ask the vendor which is right and correct the file` },
        });
      }
      continue;
    }
    // Equal copies: one token, valid over the union of their validity.
    const from = copies.map((c) => c.token.validFrom).filter((d): d is string => d !== undefined).sort()[0];
    const until = copies.map((c) => c.token.validUntil).filter((d): d is string => d !== undefined).sort().pop();
    replaced.set(first.token, { ...first.token, validFrom: from, validUntil: until });
    for (const c of copies.slice(1)) {
      c.token.secret?.wipe();
      replaced.set(c.token, { ...c.token, secret: undefined, copyOf: first.token.index, warnings: [...c.token.warnings, `the same token as ${where(first.token)}: imported once`] });
    }
    warnings.push(`serial ${serial} appears ${copies.length} times with the same secret and settings (${copies.map((c) => where(c.token)).join(', ')}; a key rollover?): it is one token, valid ${from ?? 'from its import'} to ${until ?? 'no stated end'}`);
  }
  if (splices.length > 0) {
    warnings.push(`${splices.length} pair${splices.length === 1 ? '' : 's'} of serials carry the same secret (${splices.slice(0, 5).join('; ')}${splices.length > 5 ? '; …' : ''}): a package may have been copied into another, which every MAC check passes; ask the vendor before assigning them`);
  }
  return { tokens: tokens.map((t) => replaced.get(t) ?? t), warnings };
}
