/** Counts per outcome and per error code, for the summary JSON, the stdout summary and progress. */
import { OUTCOMES, type Outcome } from './outcome.js';

export class Tally<O extends string = Outcome> {
  readonly outcomes: Record<O, number>;
  readonly errorCodes: Record<string, number> = {};
  rows = 0;
  /** Rows answered without a request because an earlier run finished them. */
  finishedEarlier = 0;
  /** Of those, per outcome: what an earlier run did, apart from what this run did. */
  readonly earlier: Partial<Record<O, number>> = {};
  /** The rows' devices by deviceStatus (rows that hold a device: CREATED, EXISTING). */
  readonly deviceStatus: Record<string, number> = {};
  /** Rows an earlier run finished whose token the ledger says was revoked since. */
  revokedSince = 0;
  /** Rows whose device this run brought to ACTIVE; of them, those confirmed by reading the device back. */
  readonly activation = { activated: 0, confirmedByRead: 0 };

  constructor(
    private readonly names: readonly O[] = OUTCOMES as unknown as readonly O[],
    /** The outcomes a row is "not done" in (progress). */
    private readonly pending: readonly O[] = ['NOT_ATTEMPTED' as O],
  ) {
    this.outcomes = Object.fromEntries(names.map((n) => [n, 0])) as Record<O, number>;
  }

  add(result: { outcome: O; errorCode?: string; finishedEarlier?: boolean; deviceStatus?: string; activation?: 'code' | 'read'; revokedSince?: string }): void {
    this.rows++;
    if (result.revokedSince) this.revokedSince++;
    this.outcomes[result.outcome]++;
    if (result.deviceStatus && (result.outcome === 'CREATED' || result.outcome === 'EXISTING')) this.deviceStatus[result.deviceStatus] = (this.deviceStatus[result.deviceStatus] ?? 0) + 1;
    if (result.activation) {
      this.activation.activated++;
      if (result.activation === 'read') this.activation.confirmedByRead++;
    }
    if (result.finishedEarlier) {
      this.finishedEarlier++;
      this.earlier[result.outcome] = (this.earlier[result.outcome] ?? 0) + 1;
    }
    if (result.errorCode) this.errorCodes[result.errorCode] = (this.errorCodes[result.errorCode] ?? 0) + 1;
  }

  count(outcome: O): number {
    return this.outcomes[outcome] ?? 0;
  }

  /** Rows this run itself brought to `outcome` (not finished by an earlier run). */
  countNow(outcome: O): number {
    return this.count(outcome) - (this.earlier[outcome] ?? 0);
  }

  get done(): number {
    return this.rows - this.pending.reduce((n, o) => n + this.count(o), 0);
  }

  /** Error codes, most frequent first. */
  problems(): Array<[string, number]> {
    return Object.entries(this.errorCodes).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  }

  line(always?: O): string {
    return this.names.filter((o) => this.count(o) > 0 || o === (always ?? this.names[0])).map((o) => `${o} ${this.count(o)}`).join(' · ');
  }
}

/** `CREATED 3 · FAILED 1`: the non-zero counts, in their order; '' when there are none. */
export function countsLine(counts: Readonly<Record<string, number>>): string {
  return Object.entries(counts).filter(([, n]) => n > 0).map(([o, n]) => `${o} ${n}`).join(' · ');
}

/** What an operator does about each error code. */
export const ADVICE: Record<string, string> = {
  SERIAL_NOT_FOUND: 'the token is not in the OATH token inventory: give its seed file (run --seeds, or oath-bulk import), then rerun',
  SERIAL_ALREADY_ASSIGNED: 'the token is on another user: unassign it there, or give this user another token',
  MAX_DEVICES_REACHED: "the user has the most MFA devices allowed: remove an old device or raise the MFA policy's limit",
  USER_NOT_FOUND: 'no such user in this environment: check the userID (or email/username) in the input',
  USER_AMBIGUOUS: 'several users match that email/username: use the userID instead',
  CONFLICT: 'PingOne reported a conflict: rerun; if it persists, check the user in the admin console',
  REQUEST_REFUSED: 'PingOne refused the request: see the message column',
  RETRIES_EXHAUSTED: 'PingOne or the network kept failing: rerun later to finish these rows',
  SERIAL_MANGLED: 'a spreadsheet turned serials into numbers: format the column as Text, export again',
  SERIAL_INVALID: 'serials are letters and digits only: correct the rows',
  SERIAL_TOO_LONG: 'serials are at most 50 characters: correct the rows',
  SERIAL_MISSING: 'fill in the serial number',
  SERIAL_ASSIGNED_ELSEWHERE: 'the token is on another user than the file says: nothing was done to it; check the row',
  LAST_DEVICE: "it is the user's only MFA device: give them another first, or pass --allow-last-device",
  OLD_NOT_ON_USER: 'the old token is not on that user: check the row',
  INVALID_OTP: 'PingOne did not find the two codes near the token: read two new codes, one right after the other',
  TOTP_AT_TERMINAL: 'a TOTP token: resync it at a terminal with --totp <serial>',
  TOKEN_REVOKED: 'the ledger says the token was revoked: it is never imported or assigned again; take it out of the file (reinstate it only if revoked by mistake)',
  // inventory's problem codes
  USER_DELETED: 'ORPHANED: on a user who no longer exists; revoke them (inventory --state orphaned, then revoke that file)',
  HANDED_OUT_NOT_RETURNED: 'UNACCOUNTED: handed out, never returned, free in PingOne; revoke them, or unassign those that came back (inventory --state unaccounted)',
  REVOKED_IN_LEDGER: 'REVOKED_PRESENT: revoked in the ledger, yet in PingOne; revoke them again (inventory --state revoked_present)',
  USER_DISABLED: 'informational: disabled users (on leave) keep their tokens; nothing to do',
  WAITING_FOR_FIRST_CODE: 'informational: the users have not signed in with their token yet',
  VENDOR_EXPIRED: "past the vendor's validity: do not hand out; replace those assigned",
  VENDOR_EXPIRES_SOON: "the vendor's validity ends within --expiring-within days: order replacements",
  USER_READ_FAILED: 'a user could not be read after the retries: run inventory again',
  USER_NOT_READ: 'the reading stopped before these users were read: run inventory again',
  DEVICE_READ_FAILED: 'a device could not be read after the retries: run inventory again',
  DEVICE_WITHOUT_USER: 'PingOne pairs these tokens to a device that names no user: check them in the console',
  PAGE_LINK_REFUSED: "the next page's link is on another host: check --api-url (a gateway must pass PingOne's links through unchanged)",
  REVOKE_NOT_CONFIRMED: 'the token is still in the inventory after its revoke jobs: run the same revoke again (the ledger keeps it out meanwhile)',
  REVOKE_JOB_FAILED: 'PingOne failed the revoke job: run the same revoke again; if it keeps failing, revoke the token in the PingOne console',
  USER_ID_INVALID: 'userID must be the PingOne user id (a UUID)',
  USER_ID_MISSING: 'fill in the userID',
  EMAIL_INVALID: 'correct the email address',
  USERNAME_INVALID: 'correct the username',
  DUPLICATE_ROW: 'delete the repeated rows (the first one is processed)',
  SERIAL_CONFLICT: 'each token goes to one user: correct the rows that share a serial',
  TOO_MANY_FIELDS: 'quote values that contain the separator',
  INSUFFICIENT_PERMISSIONS: 'give the worker app a role that can manage MFA devices (e.g. Identity Data Admin) on this environment',
  LICENSE_EXCEEDED: 'the PingOne license does not allow more: contact your Ping account team',
  CREDENTIALS_REFUSED: 'check the client id, client secret and --token-auth',
  ACCESS_TOKEN_REJECTED: 'check the worker app is enabled and has its roles',
  ENVIRONMENT_NOT_FOUND: 'check --environment-id and --region',
  TLS_ERROR: 'the server certificate is not trusted: for a corporate proxy set NODE_EXTRA_CA_CERTS',
  BREAKER_TRIPPED: 'PingOne or the network is failing for every row: check status, then rerun',
  TOKEN_UNAVAILABLE: 'the token endpoint kept failing: check PingOne status, then rerun',
  UNCONFIRMED: "a request was sent but its answer never came: run the same command again; it reads PingOne first and settles the row (nothing is done twice)",
  CONFIGURATION_SUSPECTED: 'every row so far failed the same way: check the settings named above',
  INTERRUPTED: 'the run was stopped by a signal',
  DEVICE_CHANGED: 'the device now carries another serial: left alone',
  NOT_CREATED_BY_THIS_JOB: "the run's journal does not record that this job created the device: left alone",
  ROW_UNREADABLE: 'the results row is damaged: compare it with the log',
  SECRET_INVALID: "the seed is not valid in its encoding: check --secret-encoding (hex, base32, base64) or ask the vendor for the file again",
  SECRET_MISSING: 'the token has no seed in the file: ask the vendor for it',
  SECRET_TOO_LONG: 'PingOne takes seeds of at most 100 bytes: ask the vendor',
  OTP_LENGTH_UNSUPPORTED: 'PingOne takes 6- or 8-digit tokens only',
  TIME_STEP_UNSUPPORTED: 'PingOne takes TOTP steps of 30 or 60 seconds only',
  HASH_UNSUPPORTED: 'PingOne takes SHA1, SHA256 or SHA512 (HOTP: SHA1 only)',
  TYPE_MISSING: 'the file does not say HOTP or TOTP: give --type',
  SEED_CONFLICT: 'the seed file gives the serial two different secrets or settings: neither is imported or assigned; ask the vendor which is right and correct the file',
  COUNTER_INVALID: 'the HOTP counter is not a whole number from 0 to 2^64 - 1: correct it in the seed file',
  COLUMNS_SWAPPED: 'a seed sits under the serial column and a short value under the secret column: put each in its column (the cells are not shown)',
  UNSUPPORTED_ALGORITHM: 'not an HOTP/TOTP token: PingOne cannot take it',
  UNSUPPORTED_TOKEN: 'a token PingOne cannot take: see the message column',
  IMPORT_REFUSED: "PingOne refused the token: see the message column for its reason",
  FIELD_COUNT: 'a row has a cell missing (or a value with the separator unquoted): correct it; its cells are not shown',
  UPN_INVALID: 'correct the upn: a PingOne username or email',
  ACTIVATION_FAILED: 'the device was created but not activated: see the message column; the user is asked for a code at first sign-in, or run again with --activate',
  ACTIVATION_NOT_ATTEMPTED: 'the run stopped before activating: run again with --activate',
  PAIRING_UNKNOWN: "the preflight cannot tell who holds these serials (PingOne's inventory answer left out the paired devices): run for real, or check the serials in the console",
  INVENTORY_UNREADABLE: "the OATH token inventory could not be read: check PingOne's status, then run again",
};
