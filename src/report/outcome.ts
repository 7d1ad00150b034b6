/** What happened to one input row: one line of the results CSV, one "row" event in the log. */
export type Outcome = 'CREATED' | 'EXISTING' | 'FAILED' | 'INVALID' | 'UNCONFIRMED' | 'NOT_ATTEMPTED';

export const OUTCOMES: readonly Outcome[] = ['CREATED', 'EXISTING', 'FAILED', 'INVALID', 'UNCONFIRMED', 'NOT_ATTEMPTED'];

export interface RowResult {
  readonly row: number;
  readonly userID: string;
  readonly serialNumber: string;
  readonly outcome: Outcome;
  readonly deviceId?: string;
  readonly deviceStatus?: string;
  readonly httpStatus?: number;
  readonly errorCode?: string;
  readonly errorDetail?: string;
  readonly message?: string;
  readonly attempts: number;
  readonly durationMs: number;
  readonly extras: readonly string[];
  /** Reported from the journal: an earlier run finished the row; nothing was sent. */
  readonly finishedEarlier?: boolean;
  /**
   * This run brought the device from ACTIVATION_REQUIRED to ACTIVE: `code` on a clear answer to
   * its code, `read` when the answer was unclear and the device, read back, was ACTIVE.
   */
  readonly activation?: 'code' | 'read';
  /** An earlier run finished the row and the ledger says its token was revoked since (when). */
  readonly revokedSince?: string;
  /** An earlier run's activation codes for the device were refused (journal). */
  readonly activationRefused?: boolean;
}
