/** Counts per outcome and per error code, for the summary JSON, the stdout summary and progress. */
import { OUTCOMES, type Outcome, type RowResult } from './outcome.js';

export class Tally {
  readonly outcomes: Record<Outcome, number> = { CREATED: 0, EXISTING: 0, FAILED: 0, INVALID: 0, NOT_ATTEMPTED: 0 };
  readonly errorCodes: Record<string, number> = {};
  rows = 0;
  /** Rows answered without a request because an earlier run finished them. */
  fromJournal = 0;

  add(result: RowResult): void {
    this.rows++;
    this.outcomes[result.outcome]++;
    if (result.errorCode) this.errorCodes[result.errorCode] = (this.errorCodes[result.errorCode] ?? 0) + 1;
  }

  get done(): number {
    return this.rows - this.outcomes.NOT_ATTEMPTED;
  }

  /** SPEC exit codes 0/1 for a run that finished. */
  exitCode(): 0 | 1 {
    return this.outcomes.FAILED + this.outcomes.INVALID + this.outcomes.NOT_ATTEMPTED === 0 ? 0 : 1;
  }

  topErrors(n: number): Array<[string, number]> {
    return Object.entries(this.errorCodes).sort((a, b) => b[1] - a[1]).slice(0, n);
  }

  line(): string {
    return OUTCOMES.filter((o) => this.outcomes[o] > 0 || o === 'CREATED').map((o) => `${o} ${this.outcomes[o]}`).join(' · ');
  }
}

/** What an operator does about each error code. */
export const ADVICE: Record<string, string> = {
  SERIAL_NOT_FOUND: 'import the token seeds into the environment first (MFA → OATH tokens), then rerun',
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
};
