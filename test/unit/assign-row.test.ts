import { assignRow, type AssignContext, type ResolvedRow } from '../../src/engine/assign-row.js';
import { NullJournal, pairKey, type PairJournal, type PairState } from '../../src/engine/journal.js';
import type { Device, DeviceApi } from '../../src/pingone/client.js';
import { ApiError, failureFromBody } from '../../src/pingone/errors.js';
import { StopError } from '../../src/errors.js';

const U = '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93';
const row: ResolvedRow = { row: 1, line: 2, userText: U, user: { kind: 'id', value: U }, userId: U, serialNumber: '000123', extras: [] };
const uniqueness = () => new ApiError(failureFromBody(400, { code: 'INVALID_DATA', details: [{ code: 'UNIQUENESS_VIOLATION', target: 'serialNumber' }] }, undefined));
const lost = () => new ApiError({ network: 'ECONNRESET', message: 'connection reset before the answer arrived', maybeSent: true });
const status = (s: number, retryAfterMs?: number) => new ApiError(failureFromBody(s, { code: s === 429 ? 'REQUEST_LIMITED' : 'UNEXPECTED_ERROR' }, retryAfterMs));

/** A scripted PingOne: each create answers with the next script entry. */
function scripted(script: Array<Error | 'ok'>, devices: Device[] = []): DeviceApi & { creates: number; lists: number } {
  const api = {
    creates: 0,
    lists: 0,
    async createOathDevice(_u: string, serialNumber: string): Promise<Device> {
      const step = script[api.creates++] ?? 'ok';
      if (step === 'ok' || (step instanceof ApiError && step.network === 'ECONNRESET')) {
        const device = { id: `dev-${api.creates}`, type: 'OATH_TOKEN', status: 'ACTIVE', serialNumber, createdAt: new Date().toISOString() };
        devices.push(device); // a lost answer still created the device
        if (step === 'ok') return device;
      }
      throw step;
    },
    async listDevices(): Promise<Device[]> {
      api.lists++;
      return devices;
    },
    async deleteDevice(): Promise<void> {},
    async findUsers() {
      return [];
    },
  };
  return api;
}

function context(api: DeviceApi, journal: PairJournal = new NullJournal(), sleeps: number[] = []): AssignContext {
  return {
    api,
    journal,
    maxAttempts: 8,
    backoff: { baseMs: 1000, capMs: 30_000 },
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    stopping: new AbortController().signal,
    hard: new AbortController().signal,
    onSystemic: () => undefined,
  };
}

describe('assigning one row', () => {
  test('a clean 201 is CREATED with the device id', async () => {
    const result = await assignRow(row, context(scripted(['ok'])));
    expect(result).toMatchObject({ outcome: 'CREATED', deviceId: 'dev-1', httpStatus: 201, attempts: 1 });
  });

  test('a lost answer, then a uniqueness refusal, is reconciled as CREATED with the real device id', async () => {
    const api = scripted([lost(), uniqueness()]);
    const result = await assignRow(row, context(api));
    expect(result).toMatchObject({ outcome: 'CREATED', deviceId: 'dev-1', attempts: 2 });
    expect(api.lists).toBe(1);
  });

  test('a token the user already held is EXISTING, and nothing is created', async () => {
    const held: Device = { id: 'old', type: 'OATH_TOKEN', status: 'ACTIVE', serialNumber: '000123', createdAt: '2020-01-01T00:00:00Z' };
    const result = await assignRow(row, context(scripted([uniqueness()], [held])));
    expect(result).toMatchObject({ outcome: 'EXISTING', deviceId: 'old', attempts: 1 });
  });

  test('a serial held by someone else is FAILED after the check', async () => {
    const api = scripted([uniqueness()]);
    const result = await assignRow(row, context(api));
    expect(result).toMatchObject({ outcome: 'FAILED', errorCode: 'SERIAL_ALREADY_ASSIGNED', httpStatus: 400, errorDetail: 'INVALID_DATA/UNIQUENESS_VIOLATION' });
    expect(api.lists).toBe(1);
  });

  test('a 429 waits Retry-After before the next attempt', async () => {
    const sleeps: number[] = [];
    const result = await assignRow(row, context(scripted([status(429, 3000)]), undefined, sleeps));
    expect(result.outcome).toBe('CREATED');
    expect(sleeps).toEqual([3000]);
  });

  test('5xx until attempts run out is RETRIES_EXHAUSTED after exactly --max-attempts', async () => {
    const api = scripted(Array.from({ length: 8 }, () => status(503)));
    const sleeps: number[] = [];
    const result = await assignRow(row, context(api, undefined, sleeps));
    expect(result).toMatchObject({ outcome: 'FAILED', errorCode: 'RETRIES_EXHAUSTED', attempts: 8, httpStatus: 503 });
    expect(api.creates).toBe(8);
    expect(sleeps).toHaveLength(7);
  });

  test('a 404 user is FAILED USER_NOT_FOUND without retries', async () => {
    const api = scripted([new ApiError(failureFromBody(404, { code: 'NOT_FOUND', message: 'Unable to find user.' }, undefined))]);
    const result = await assignRow(row, context(api));
    expect(result).toMatchObject({ outcome: 'FAILED', errorCode: 'USER_NOT_FOUND', attempts: 1, message: 'Unable to find user.' });
  });

  test('a systemic failure stops the run and fails the row with its code', async () => {
    const stops: StopError[] = [];
    const api = scripted([new StopError('INSUFFICIENT_PERMISSIONS', 'needs a role')]);
    const result = await assignRow(row, { ...context(api), onSystemic: (e) => stops.push(e) });
    expect(result).toMatchObject({ outcome: 'FAILED', errorCode: 'INSUFFICIENT_PERMISSIONS' });
    expect(stops).toHaveLength(1);
  });

  test('a pair an earlier run started is looked for before sending again', async () => {
    const device: Device = { id: 'made-before', type: 'OATH_TOKEN', status: 'ACTIVE', serialNumber: '000123', createdAt: new Date().toISOString() };
    const states = new Map<string, PairState>([[pairKey(U, '000123'), { startedAt: Date.now() - 1000 }]]);
    const journal: PairJournal = { ...new NullJournal(), lookup: (k) => states.get(k), started: async () => undefined, finished: () => undefined, removed: async () => undefined, close: async () => undefined };
    const api = scripted([], [device]);
    const result = await assignRow(row, context(api, journal));
    expect(result).toMatchObject({ outcome: 'CREATED', deviceId: 'made-before', attempts: 0 });
    expect(api.creates).toBe(0);
  });
});
