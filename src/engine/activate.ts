/**
 * Activating a device PingOne created ACTIVATION_REQUIRED (SPEC "`run` with seeds,
 * activation, and a preflight"; PINGONE.md "Device activation"): the job holds the token's
 * seed, computes its current code (RFC 4226 HOTP at the token's counter, RFC 6238 TOTP at the
 * current step, the token's hash and length) and sends it to the device's activate endpoint.
 * A refused code is tried once more with the next one (HOTP: counter + 1; TOTP: the adjacent
 * step nearer the clock), then the row says what to do. A code never reaches any output.
 */
import { StopError } from '../errors.js';
import { ApiError } from '../pingone/errors.js';
import type { DeviceApi, UserDeviceApi } from '../pingone/client.js';
import { hotp } from '../seeds/otp.js';
import type { SeedToken } from '../seeds/token.js';
import { isAbortOf, withRetries, type AssignContext } from './assign-row.js';

export type ActivateContext = Pick<AssignContext, 'maxAttempts' | 'backoff' | 'sleep' | 'stopping' | 'hard' | 'onRetry' | 'onSystemic'> & {
  readonly api: Pick<DeviceApi, 'listDevices'> & Pick<UserDeviceApi, 'activateDevice'>;
  /** Epoch ms (TOTP steps); tests move it. */
  readonly now?: () => number;
};

export interface Activation {
  /** ACTIVE when the device is active (activated now, or found so); otherwise what it still is. */
  readonly deviceStatus: string;
  /** Set when the device is not active: ACTIVATION_FAILED, or ACTIVATION_NOT_ATTEMPTED when the run stopped first. */
  readonly errorCode?: 'ACTIVATION_FAILED' | 'ACTIVATION_NOT_ATTEMPTED';
  readonly message: string;
  /** A code of this run activated it (a clear answer, not a device found active). */
  readonly activatedHere: boolean;
  /** This run sent its code and the answer was unclear; the device, read back, is ACTIVE. */
  readonly confirmedByRead?: boolean;
  /** PingOne refused both codes computed from the seed. */
  readonly refused?: boolean;
}

/** The code to send at `now`: the token's current one (`next` false), or its nearest neighbour. */
export function activationCode(token: SeedToken, now: number, next: boolean): { code: string; at: string } {
  const secret = token.secret;
  if (!secret || !token.type || !token.otpLength) throw new TypeError('a token without its seed cannot be activated');
  const hash = token.hashAlgorithm ?? 'HmacSHA1';
  if (token.type === 'HOTP') {
    const c = (token.counter ?? 0n) + (next ? 1n : 0n);
    return { code: hotp(secret, c, token.otpLength, hash), at: `counter ${c}` };
  }
  const stepS = token.timeStep ?? 30;
  const exact = now / 1000 / stepS;
  const step = Math.floor(exact);
  // Late in the step PingOne's clock is likelier ahead of ours; early, behind.
  const s = next ? (exact - step >= 0.5 ? step + 1 : step - 1) : step;
  // RFC 6238: TOTP is HOTP at the step number.
  return { code: hotp(secret, s, token.otpLength, hash), at: `time step ${s}` };
}

/** Both codes at `now`, in the order they are tried. */
export function activationCodes(token: SeedToken, now: number): Array<{ code: string; at: string }> {
  return [activationCode(token, now, false), activationCode(token, now, true)];
}

export const NOT_ATTEMPTED_MESSAGE = 'the run stopped before the device was activated: run again with --activate to activate it';

/**
 * `readFirst`: a device this run did not just create (an earlier run's, or one the user
 * already held) is read before any code is sent: one activated meanwhile (the user's first
 * sign-in) gets no code.
 */
const STOPPED: Activation = { deviceStatus: 'ACTIVATION_REQUIRED', errorCode: 'ACTIVATION_NOT_ATTEMPTED', message: NOT_ATTEMPTED_MESSAGE, activatedHere: false };

/** A stop or a systemic refusal met while activating, as the row's activation; undefined for anything else. */
function trouble(error: unknown, ctx: ActivateContext): Activation | undefined {
  if (isAbortOf(error, ctx.stopping)) return STOPPED;
  if (error instanceof StopError) {
    ctx.onSystemic(error);
    return { deviceStatus: 'ACTIVATION_REQUIRED', errorCode: 'ACTIVATION_FAILED', message: `not activated: ${error.message}`, activatedHere: false };
  }
  return undefined;
}

/** The device as PingOne has it now: active, gone, or (undefined) still waiting; errors thrown. */
async function lookUp(row: number, userId: string, deviceId: string, ctx: ActivateContext): Promise<Activation | undefined> {
  const devices = await withRetries(ctx, row, () => ctx.api.listDevices(userId, { signal: ctx.hard, notAfter: ctx.stopping }));
  const device = devices.find((d) => d.id === deviceId);
  if (!device) return { deviceStatus: 'ACTIVATION_REQUIRED', errorCode: 'ACTIVATION_FAILED', message: 'the device is no longer on the user (deleted meanwhile?): check the user in PingOne', activatedHere: false };
  if (device.status === 'ACTIVE') return { deviceStatus: 'ACTIVE', message: 'already active (activated meanwhile, as at the user\'s first sign-in): no code sent', activatedHere: false };
  return undefined;
}

/**
 * Reads the device (one read of the user's devices, no code sent): its activation when it is
 * active already or gone, undefined when it still waits for a code. A read that fails is an
 * ACTIVATION_FAILED that says so.
 */
export async function readActivation(row: number, userId: string, deviceId: string, ctx: ActivateContext): Promise<Activation | undefined> {
  try {
    return await lookUp(row, userId, deviceId, ctx);
  } catch (error) {
    const t = trouble(error, ctx);
    if (t) return t;
    if (!(error instanceof ApiError)) throw error;
    return { deviceStatus: 'ACTIVATION_REQUIRED', errorCode: 'ACTIVATION_FAILED', message: `not activated: the device could not be read (${error.message}); run again with --activate`, activatedHere: false };
  }
}

export async function activateDevice(row: number, userId: string, deviceId: string, token: SeedToken, ctx: ActivateContext, readFirst = false): Promise<Activation> {
  const now = ctx.now ?? Date.now;
  const call = { signal: ctx.hard, notAfter: ctx.stopping };
  if (readFirst) {
    const found = await readActivation(row, userId, deviceId, ctx);
    if (found) return found;
  }
  let last: unknown;
  const tried: string[] = [];
  for (const next of [false, true]) {
    try {
      // The code is computed for each attempt: a TOTP step may pass during a backoff.
      const device = await withRetries(ctx, row, () => {
        const { code, at } = activationCode(token, now(), next);
        if (!tried.includes(at)) tried.push(at);
        return ctx.api.activateDevice(userId, deviceId, code, call);
      });
      if (device.status === 'ACTIVE') return { deviceStatus: 'ACTIVE', message: 'activated with a code computed from its seed', activatedHere: true };
      // A 200 that does not say ACTIVE proves nothing: the device is read below.
      last = undefined;
      break;
    } catch (error) {
      const t = trouble(error, ctx);
      if (t) return t;
      if (!(error instanceof ApiError)) throw error;
      last = error;
      // A refused code: try the next one. Anything else (retries exhausted): read the device.
      if (error.verdict.kind !== 'refused') break;
    }
  }
  // An answer lost after PingOne took the code, an unclear answer, or a device activated meanwhile.
  try {
    const found = await lookUp(row, userId, deviceId, ctx);
    if (found) return found.deviceStatus === 'ACTIVE' ? { ...found, confirmedByRead: true, message: 'active: found so after an unclear answer to its activation (by this run\'s code, or meanwhile)' } : found;
  } catch (error) {
    const t = trouble(error, ctx);
    if (t) return t;
  }
  const e = last as ApiError | undefined;
  // A 400 to a code is the code refused; another refusal (the device or user gone: 404) is not.
  if (e && e.verdict.kind === 'refused' && e.status === 400) {
    return {
      deviceStatus: 'ACTIVATION_REQUIRED',
      errorCode: 'ACTIVATION_FAILED',
      message: `PingOne refused the codes computed from the seed at ${tried.join(' and ')} (${e.message}): the seed file may not match this token, or the token has drifted. The user is asked for a code at first sign-in; or resync the token in PingOne, then run again with --activate`,
      activatedHere: false,
      refused: true,
    };
  }
  return { deviceStatus: 'ACTIVATION_REQUIRED', errorCode: 'ACTIVATION_FAILED', message: `not activated: ${e ? e.message : 'PingOne answered without saying the device is ACTIVE'}; run again with --activate to try again`, activatedHere: false };
}
