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
import { hotp, totp } from '../seeds/otp.js';
import type { SeedToken } from '../seeds/token.js';
import { isAbortOf, withRetries, type AssignContext } from './assign-row.js';

export type ActivateContext = Pick<AssignContext, 'maxAttempts' | 'backoff' | 'sleep' | 'stopping' | 'hard' | 'onRetry' | 'onSystemic'> & {
  readonly api: Pick<DeviceApi, 'listDevices'> & Pick<UserDeviceApi, 'activateDevice'>;
  /** Epoch ms (TOTP steps); tests move it. */
  readonly now?: () => number;
};

export interface Activation {
  /** ACTIVE when activated (now or found so); otherwise what the device still is. */
  readonly deviceStatus: string;
  /** Set when the device is not active: ACTIVATION_FAILED, or NOT_ATTEMPTED when the run stopped first. */
  readonly errorCode?: 'ACTIVATION_FAILED' | 'ACTIVATION_NOT_ATTEMPTED';
  readonly message: string;
}

/** The codes to try, in order: the token's current one, then its nearest neighbour. */
export function activationCodes(token: SeedToken, now: number): Array<{ code: string; at: string }> {
  const secret = token.secret;
  if (!secret || !token.type || !token.otpLength) throw new TypeError('a token without its seed cannot be activated');
  const hash = token.hashAlgorithm ?? 'HmacSHA1';
  if (token.type === 'HOTP') {
    const c = token.counter ?? 0;
    return [
      { code: hotp(secret, c, token.otpLength, hash), at: `counter ${c}` },
      { code: hotp(secret, c + 1, token.otpLength, hash), at: `counter ${c + 1}` },
    ];
  }
  const stepS = token.timeStep ?? 30;
  const step = Math.floor(now / 1000 / stepS);
  // Late in the step PingOne's clock is likelier ahead of ours; early, behind.
  const neighbour = (now / 1000 / stepS) - step >= 0.5 ? step + 1 : step - 1;
  return [
    { code: totp(secret, step * stepS * 1000, token.otpLength, stepS, hash), at: `time step ${step}` },
    { code: totp(secret, neighbour * stepS * 1000, token.otpLength, stepS, hash), at: `time step ${neighbour}` },
  ];
}

export async function activateDevice(row: number, userId: string, deviceId: string, token: SeedToken, ctx: ActivateContext): Promise<Activation> {
  const codes = activationCodes(token, (ctx.now ?? Date.now)());
  const call = { signal: ctx.hard, notAfter: ctx.stopping };
  const stopped: Activation = {
    deviceStatus: 'ACTIVATION_REQUIRED',
    errorCode: 'ACTIVATION_NOT_ATTEMPTED',
    message: 'created; the run stopped before the device was activated: run again with --activate to activate it',
  };
  let last: unknown;
  for (const { code } of codes) {
    try {
      const device = await withRetries(ctx, row, () => ctx.api.activateDevice(userId, deviceId, code, call));
      return { deviceStatus: device.status || 'ACTIVE', message: 'created and activated with a code computed from its seed' };
    } catch (error) {
      if (isAbortOf(error, ctx.stopping)) return stopped;
      if (error instanceof StopError) {
        ctx.onSystemic(error);
        return { deviceStatus: 'ACTIVATION_REQUIRED', errorCode: 'ACTIVATION_FAILED', message: `created; not activated: ${error.message}` };
      }
      if (!(error instanceof ApiError)) throw error;
      last = error;
      // A refused code: try the next one. Anything else (retries exhausted): look at the device.
      if (error.verdict.kind !== 'refused') break;
    }
  }
  // An answer lost after PingOne took the code, or a device activated meanwhile: read it.
  try {
    const devices = await withRetries(ctx, row, () => ctx.api.listDevices(userId, call));
    const device = devices.find((d) => d.id === deviceId);
    if (device && device.status === 'ACTIVE') return { deviceStatus: 'ACTIVE', message: 'created and activated with a code computed from its seed (found active after an unclear answer)' };
    if (!device) return { deviceStatus: 'ACTIVATION_REQUIRED', errorCode: 'ACTIVATION_FAILED', message: 'created, but the device is no longer on the user (deleted meanwhile?): check the user in PingOne' };
  } catch (error) {
    if (isAbortOf(error, ctx.stopping)) return stopped;
    if (error instanceof StopError) ctx.onSystemic(error);
  }
  const e = last as ApiError;
  if (e.verdict.kind === 'refused') {
    const tried = codes.map((c) => c.at).join(' and ');
    return {
      deviceStatus: 'ACTIVATION_REQUIRED',
      errorCode: 'ACTIVATION_FAILED',
      message: `created; PingOne refused the codes computed from the seed at ${tried} (${e.message}): the seed file may not match this token, or the token has drifted. The user is asked for a code at first sign-in; or resync the token in PingOne, then run again with --activate`,
    };
  }
  return { deviceStatus: 'ACTIVATION_REQUIRED', errorCode: 'ACTIVATION_FAILED', message: `created; activation failed: ${e.message}; run again with --activate to try again` };
}
