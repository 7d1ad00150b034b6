/**
 * Resyncing a drifted token (SPEC "After the rollout", `resync`): two consecutive codes read off
 * the token go to the token's resync call, once. A code is spent when it is sent: a resync whose
 * answer was lost is UNCONFIRMED and never sent again (only a request PingOne cannot have seen —
 * a 429, a refused connection — is). The ledger gets "resyncing" (a salted hash of the codes,
 * never the codes) before the codes go, and "resynced" with the answer: the same codes are
 * reported, not sent, by any later run.
 */
import { scrypt } from 'node:crypto';
import { StopError } from '../errors.js';
import type { CallOptions, InventoryEntry } from '../pingone/client.js';
import { ApiError } from '../pingone/errors.js';
import { isAbortOf, Unanswered, withRetries, withRetriesOnce, type AssignContext } from './assign-row.js';
import type { Ledger } from './ledger.js';

export const RESYNC_OUTCOMES = ['RESYNCED', 'WOULD_RESYNC', 'FAILED', 'INVALID', 'UNCONFIRMED', 'NOT_ATTEMPTED'] as const;
export type ResyncOutcome = (typeof RESYNC_OUTCOMES)[number];

export interface ResyncResult {
  readonly outcome: ResyncOutcome;
  readonly httpStatus?: number;
  readonly errorCode?: string;
  readonly message: string;
  readonly attempts: number;
  readonly finishedEarlier?: boolean;
}

export interface ResyncApi {
  oathToken(serial: string, options?: CallOptions): Promise<InventoryEntry | undefined>;
  resyncToken(tokenId: string, otps: readonly [string, string], options?: CallOptions): Promise<void>;
}

export interface ResyncContext extends Pick<AssignContext, 'maxAttempts' | 'backoff' | 'sleep' | 'stopping' | 'hard' | 'onRetry' | 'onSystemic'> {
  readonly api: ResyncApi;
  readonly ledger: Ledger;
  readonly by: string;
  readonly dryRun: boolean;
}

/** Codes as read off a token: digits only, kept as text (leading zeros are part of the code). */
export function checkCodes(otp1: string, otp2: string, otpLength?: number): string | undefined {
  for (const [name, code] of [['otp1', otp1], ['otp2', otp2]] as const) {
    if (!/^\d+$/.test(code)) return `${name} is not a code of digits (a spreadsheet may have dropped its leading zeros or made it a number: keep the column as Text)`;
    if (otpLength !== undefined ? code.length !== otpLength : code.length !== 6 && code.length !== 8) return `${name} has ${code.length} digits; this token's codes have ${otpLength ?? '6 or 8'}`;
  }
  if (otp1 === otp2) return 'otp1 and otp2 are the same code: read two consecutive codes (press the button twice)';
  return undefined;
}


/**
 * What a rerun recognises a pair of codes by: a salted scrypt hash of them (N=4096, ~10 ms), so
 * that the same codes are never sent twice however the file was touched or edited, and the
 * ledger holds nothing a code can be read back from (10^12 pairs at 10 ms each).
 */
export async function codesKey(serial: string, otps: readonly [string, string]): Promise<string> {
  const hash = await new Promise<Buffer>((resolve, reject) => scrypt(`${otps[0]}:${otps[1]}`, `oath-bulk resync ${serial.toUpperCase()}`, 18, { N: 4096, r: 8, p: 1 }, (error, key) => (error ? reject(error) : resolve(key))));
  return `codes:${hash.toString('base64url')}`;
}

/** Resyncs one token; the codes go to PingOne and nowhere else (the ledger keeps codesKey). */
export async function resyncToken(row: number, serial: string, otps: readonly [string, string], ctx: ResyncContext, expect?: 'HOTP' | 'TOTP'): Promise<ResyncResult> {
  const input = await codesKey(serial, otps);
  const earlier = ctx.ledger.life(serial)?.resync;
  if (earlier && earlier.input === input) {
    const outcome = earlier.state === 'resyncing' ? 'UNCONFIRMED' : (earlier.outcome as ResyncOutcome);
    return { outcome, errorCode: outcome === 'FAILED' ? 'INVALID_OTP' : outcome === 'UNCONFIRMED' ? 'UNCONFIRMED' : undefined, finishedEarlier: true, attempts: 0, message: `these codes were sent by an earlier run (${earlier.by ?? 'resync'}, ${earlier.at.slice(0, 19)}Z) and are spent${earlier.state === 'resyncing' ? ' (its answer was never heard)' : ''}: nothing sent; to try again, read two new codes off the token` };
  }
  let attempts = 0;
  try {
    attempts++;
    const token = await withRetries(ctx, row, () => ctx.api.oathToken(serial, { signal: ctx.hard, notAfter: ctx.stopping }));
    if (!token) return { outcome: 'FAILED', errorCode: 'SERIAL_NOT_FOUND', attempts, message: `${serial} is not in the OATH token inventory: nothing to resync (check the serial)` };
    if (expect && token.type && token.type !== expect) {
      return expect === 'HOTP'
        ? { outcome: 'FAILED', errorCode: 'TOTP_AT_TERMINAL', attempts, message: `${serial} is a TOTP token: its codes go stale in a file; resync it at a terminal, typing the codes as you read them: oath-bulk resync --totp ${serial}` }
        : { outcome: 'FAILED', errorCode: 'NOT_TOTP', attempts, message: `${serial} is a ${token.type} token: put it in a file (serialNumber,otp1,otp2) for oath-bulk resync <file>` };
    }
    const problem = checkCodes(otps[0], otps[1], token.otpLength);
    if (problem) return { outcome: 'INVALID', errorCode: 'OTP_INVALID', attempts, message: problem };
    if (ctx.dryRun) return { outcome: 'WOULD_RESYNC', attempts, message: 'dry run: the token is in the inventory and the codes are well formed; nothing sent (the codes stay unspent)' };
    if (ctx.stopping.aborted) return { outcome: 'NOT_ATTEMPTED', attempts, message: 'the command stopped before this row; run it again to finish' };
    await ctx.ledger.append([{ e: 'resyncing', sn: serial, input, by: ctx.by }]);
    // Sent and unheard: the codes may be spent. Never sent again.
    await withRetriesOnce(ctx, row, async () => {
      attempts++;
      await ctx.api.resyncToken(token.id, otps, { signal: ctx.hard, notAfter: ctx.stopping });
    });
    await ctx.ledger.append([{ e: 'resynced', sn: serial, input, by: ctx.by, outcome: 'RESYNCED' }]);
    return { outcome: 'RESYNCED', httpStatus: 200, attempts, message: 'resynced: PingOne found the two codes and moved the token on past them' };
  } catch (error) {
    const cause = error instanceof Unanswered ? error.original : error;
    if (error instanceof Unanswered) {
      return { outcome: 'UNCONFIRMED', errorCode: 'UNCONFIRMED', attempts, message: `the codes were sent and the answer never came (${cause instanceof Error ? cause.message : String(cause)}): they are spent and are not sent again; check the token (sign in with it), or read two new codes and run again` };
    }
    if (cause instanceof ApiError && cause.verdict.kind === 'refused' && cause.status === 400) {
      await ctx.ledger.append([{ e: 'resynced', sn: serial, input, by: ctx.by, outcome: 'FAILED' }]);
      return { outcome: 'FAILED', httpStatus: 400, errorCode: 'INVALID_OTP', attempts, message: 'PingOne found no two consecutive codes like these near the token\'s position: read two new codes, one right after the other, and run again (the pair sent is spent)' };
    }
    if (isAbortOf(cause, ctx.stopping)) return { outcome: 'NOT_ATTEMPTED', attempts, message: 'the command stopped before this row; run it again to finish' };
    if (cause instanceof StopError) {
      ctx.onSystemic(cause);
      return { outcome: 'FAILED', errorCode: cause.code, attempts, message: cause.message };
    }
    if (cause instanceof ApiError) return { outcome: 'FAILED', httpStatus: cause.status, errorCode: cause.rowCode, attempts, message: cause.message };
    throw cause;
  }
}
