/**
 * Activation from the seed (engine/activate.ts) against a fake PingOne that accepts exactly
 * one code: the token's counter ahead by one (HOTP), PingOne's clock a step off (TOTP), two
 * refusals (the row says what to do, no code in the message), a lost answer after PingOne
 * took the code (found ACTIVE), and a stop before the first attempt.
 */
import { activateDevice, activationCodes, type ActivateContext } from '../../src/engine/activate.js';
import { ApiError, failureFromBody } from '../../src/pingone/errors.js';
import type { Device } from '../../src/pingone/client.js';
import { hotp, totp } from '../../src/seeds/otp.js';
import { Secret } from '../../src/seeds/secret.js';
import type { SeedToken } from '../../src/seeds/token.js';

const RFC_SECRET = '12345678901234567890';
const wrongCode = () => new ApiError(failureFromBody(400, { code: 'INVALID_DATA', details: [{ code: 'INVALID_OTP', target: 'otp' }] }, undefined));
const lost = () => new ApiError({ network: 'ECONNRESET', message: 'connection reset before the answer arrived', maybeSent: true });

function token(type: 'HOTP' | 'TOTP', counter = 0): SeedToken {
  return { index: 1, serialNumber: 'T1', type, otpLength: 6, hashAlgorithm: 'HmacSHA1', counter: type === 'HOTP' ? BigInt(counter) : undefined, timeStep: type === 'TOTP' ? 30 : undefined, secret: Secret.own(Buffer.from(RFC_SECRET)), warnings: [] };
}

/** PingOne accepting only `accepted`; `status` is what a device read shows. */
function fake(accepted: string | (() => string), options: { loseFirstAnswer?: boolean; failFirst?: () => Error; answerStatus?: string } = {}) {
  const sent: string[] = [];
  let status = 'ACTIVATION_REQUIRED';
  let lists = 0;
  const device = (): Device => ({ id: 'd1', type: 'OATH_TOKEN', status, serialNumber: 'T1' });
  const api = {
    async activateDevice(_u: string, _d: string, otp: string): Promise<Device> {
      sent.push(otp);
      if (options.failFirst && sent.length === 1) throw options.failFirst();
      if (status === 'ACTIVE') throw wrongCode();
      if (otp !== (typeof accepted === 'string' ? accepted : accepted())) throw wrongCode();
      if (options.answerStatus) return { ...device(), status: options.answerStatus };
      status = 'ACTIVE';
      if (options.loseFirstAnswer && sent.length === 1) throw lost();
      return device();
    },
    async listDevices(): Promise<Device[]> {
      lists++;
      return [device()];
    },
  };
  const ctx: ActivateContext = {
    api,
    maxAttempts: 3,
    backoff: { baseMs: 1, capMs: 1 },
    sleep: async () => undefined,
    stopping: new AbortController().signal,
    hard: new AbortController().signal,
    onSystemic: () => undefined,
    now: () => 1_111_111_109_000,
  };
  return { ctx, sent, lists: () => lists };
}

const seed = Secret.own(Buffer.from(RFC_SECRET));

test('HOTP, the token one press ahead of the seed file: the code at the counter is refused, the next one activates', async () => {
  const { ctx, sent } = fake(hotp(seed, 1, 6));
  const result = await activateDevice(1, 'u', 'd1', token('HOTP', 0), ctx);
  expect(result).toEqual({ deviceStatus: 'ACTIVE', message: 'activated with a code computed from its seed', activatedHere: true });
  // RFC 4226 appendix D: counter 0 → 755224, counter 1 → 287082.
  expect(sent).toEqual(['755224', '287082']);
});

test('TOTP: the current step first, then the neighbour nearer the clock', async () => {
  const now = 1_111_111_109_000; // late in its step: PingOne is likelier ahead
  const step = Math.floor(now / 30_000);
  const late = (now / 30_000) - step >= 0.5;
  const neighbour = late ? step + 1 : step - 1;
  const { ctx, sent } = fake(totp(seed, neighbour * 30_000, 6));
  const result = await activateDevice(1, 'u', 'd1', token('TOTP'), ctx);
  expect(result.deviceStatus).toBe('ACTIVE');
  expect(sent).toEqual([totp(seed, now, 6), totp(seed, neighbour * 30_000, 6)]);
  expect(activationCodes(token('TOTP'), now).map((c) => c.at)).toEqual([`time step ${step}`, `time step ${neighbour}`]);
});

test('both codes refused: the device stays ACTIVATION_REQUIRED with ACTIVATION_FAILED and what to do; no code in the message', async () => {
  const { ctx, sent, lists } = fake('000000');
  const result = await activateDevice(1, 'u', 'd1', token('HOTP', 5), ctx);
  expect(result.deviceStatus).toBe('ACTIVATION_REQUIRED');
  expect(result.errorCode).toBe('ACTIVATION_FAILED');
  expect(result.message).toMatch(/refused the codes computed from the seed at counter 5 and counter 6 .*resync the token in PingOne, then run again with --activate/);
  for (const code of sent) expect(result.message).not.toContain(code);
  expect(sent).toHaveLength(2);
  expect(lists()).toBe(1);
});

test('an answer lost after PingOne took the code: the device is read and found ACTIVE', async () => {
  const { ctx, sent } = fake(hotp(seed, 0, 6), { loseFirstAnswer: true });
  const result = await activateDevice(1, 'u', 'd1', token('HOTP', 0), ctx);
  expect(result.deviceStatus).toBe('ACTIVE');
  expect(result.message).toMatch(/found so after an unclear answer/);
  // Not counted as this run's activation: the job cannot prove whose code it was.
  expect(result.activatedHere).toBe(false);
  // The resend of the used code and the next code are refused; the device read settles it.
  expect(sent.length).toBeGreaterThanOrEqual(2);
});

test('a run stopping before the first attempt activates nothing and says to run again', async () => {
  const { ctx, sent } = fake(hotp(seed, 0, 6));
  const stop = new AbortController();
  stop.abort(new Error('SIGTERM'));
  const result = await activateDevice(1, 'u', 'd1', token('HOTP', 0), { ...ctx, stopping: stop.signal, api: { ...ctx.api, activateDevice: async () => { throw new (await import('../../src/pingone/http.js')).RequestAborted(false); } } });
  expect(result).toMatchObject({ deviceStatus: 'ACTIVATION_REQUIRED', errorCode: 'ACTIVATION_NOT_ATTEMPTED' });
  expect(sent).toEqual([]);
});

test('TOTP: a code is computed for each attempt, so a step that passes during a backoff does not turn a good seed into ACTIVATION_FAILED', async () => {
  let clock = 1_111_111_100_000; // early in a step
  const busy = () => new ApiError(failureFromBody(503, { code: 'UNEXPECTED_ERROR' }, undefined));
  const { ctx, sent } = fake(() => totp(seed, clock, 6), { failFirst: busy });
  const result = await activateDevice(1, 'u', 'd1', token('TOTP'), {
    ...ctx,
    now: () => clock,
    // The backoff after the 503 lasts 90 s: three steps later.
    sleep: async () => {
      clock += 90_000;
    },
  });
  expect(result).toMatchObject({ deviceStatus: 'ACTIVE', activatedHere: true });
  expect(sent).toEqual([totp(seed, 1_111_111_100_000, 6), totp(seed, 1_111_111_190_000, 6)]);
});

test('a 200 that does not say ACTIVE is not taken for an activation: the device is read, and the row says it is not active', async () => {
  const { ctx, lists } = fake(hotp(seed, 0, 6), { answerStatus: 'ACTIVATION_REQUIRED' });
  const result = await activateDevice(1, 'u', 'd1', token('HOTP', 0), ctx);
  expect(result).toMatchObject({ deviceStatus: 'ACTIVATION_REQUIRED', errorCode: 'ACTIVATION_FAILED', activatedHere: false });
  expect(lists()).toBe(1);
});

test('a device this run did not create is read first: active already, no code is sent', async () => {
  const { ctx, sent } = fake(hotp(seed, 0, 6));
  await activateDevice(1, 'u', 'd1', token('HOTP', 0), ctx);
  sent.length = 0;
  const again = await activateDevice(1, 'u', 'd1', token('HOTP', 0), ctx, true);
  expect(again).toMatchObject({ deviceStatus: 'ACTIVE', activatedHere: false });
  expect(again.message).toMatch(/already active/);
  expect(sent).toEqual([]);
});

test('a 404 to an activation (the device or its user gone) is not a refused code: no breaker count, no refusal recorded', async () => {
  const gone = () => new ApiError(failureFromBody(404, { code: 'NOT_FOUND', message: 'Unable to find device.' }, undefined));
  const { ctx } = fake(hotp(seed, 0, 6));
  const result = await activateDevice(1, 'u', 'd1', token('HOTP', 0), {
    ...ctx,
    api: { activateDevice: async () => { throw gone(); }, listDevices: async () => { throw gone(); } },
  });
  expect(result).toMatchObject({ deviceStatus: 'ACTIVATION_REQUIRED', errorCode: 'ACTIVATION_FAILED' });
  expect(result.refused).toBeUndefined();
});
