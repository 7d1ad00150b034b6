import { assignRow, type ResolvedRow } from '../../src/engine/assign-row.js';
import { pairKey } from '../../src/engine/journal.js';
import { assignContext } from '../support/assign-context.js';
import { MemoryDisk } from '../support/memory-journal.js';
import type { CallOptions, Device, DeviceApi } from '../../src/pingone/client.js';
import { ApiError, failureFromBody } from '../../src/pingone/errors.js';
import { StopError } from '../../src/errors.js';

const U = '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93';
const row: ResolvedRow = { row: 1, line: 2, userText: U, user: { kind: 'id', value: U }, userId: U, serialNumber: '000123', extras: [] };
const uniqueness = () => new ApiError(failureFromBody(400, { code: 'INVALID_DATA', details: [{ code: 'UNIQUENESS_VIOLATION', target: 'serialNumber' }] }, undefined));
const lost = () => new ApiError({ network: 'ECONNRESET', message: 'connection reset before the answer arrived', maybeSent: true });
const status = (s: number, retryAfterMs?: number) => new ApiError(failureFromBody(s, { code: s === 429 ? 'REQUEST_LIMITED' : 'UNEXPECTED_ERROR' }, retryAfterMs));

/**
 * A scripted PingOne: each create answers with the next script entry. Its clock runs
 * `skewMs` off ours (negative: behind), as a real server's may, and shows in createdAt.
 */
function scripted(script: Array<Error | 'ok'>, devices: Device[] = [], skewMs = 0): DeviceApi & { creates: number; lists: number } {
  const api = {
    creates: 0,
    lists: 0,
    async createOathDevice(_u: string, serialNumber: string, options?: CallOptions): Promise<Device> {
      // As the real client: the hook runs once the request's turn has come, before it is written.
      await options?.beforeSend?.();
      const step = script[api.creates++] ?? 'ok';
      if (step === 'ok' || (step instanceof ApiError && step.network === 'ECONNRESET')) {
        const device = { id: `dev-${api.creates}`, type: 'OATH_TOKEN', status: 'ACTIVE', serialNumber, createdAt: new Date(Date.now() + skewMs).toISOString() };
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

const context = assignContext;

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

  test('a 201 is CREATED even when PingOne\'s clock is minutes behind ours', async () => {
    const result = await assignRow(row, context(scripted(['ok'], [], -3 * 60_000)));
    expect(result).toMatchObject({ outcome: 'CREATED', httpStatus: 201 });
  });

  test('a lost answer with PingOne\'s clock four minutes behind is still CREATED: skew never turns our device EXISTING', async () => {
    const result = await assignRow(row, context(scripted([lost(), uniqueness()], [], -4 * 60_000)));
    expect(result).toMatchObject({ outcome: 'CREATED', deviceId: 'dev-1' });
  });

  test('a lost answer, and the token turns out to have been put on the user by hand an hour before: EXISTING', async () => {
    const byHand: Device = { id: 'by-hand', type: 'OATH_TOKEN', status: 'ACTIVE', serialNumber: '000123', createdAt: new Date(Date.now() - 3_600_000).toISOString() };
    const api = scripted([new ApiError({ network: 'ETIMEDOUT', message: 'no answer', maybeSent: true }), uniqueness()], [byHand]);
    // The timeout's create did nothing here (the device existed): only the old device is found.
    api.createOathDevice = async (_u, _s, options) => {
      await options?.beforeSend?.();
      api.creates++;
      throw api.creates === 1 ? new ApiError({ network: 'ETIMEDOUT', message: 'no answer', maybeSent: true }) : uniqueness();
    };
    const result = await assignRow(row, context(api));
    expect(result).toMatchObject({ outcome: 'EXISTING', deviceId: 'by-hand' });
  });

  test('every create\'s start is on disk before the create is written', async () => {
    const disk = new MemoryDisk();
    const journal = disk.open();
    const seen: boolean[] = [];
    const api = scripted([status(503), 'ok']);
    const create = api.createOathDevice.bind(api);
    api.createOathDevice = async (u, s, options) =>
      create(u, s, {
        beforeSend: async () => {
          await options?.beforeSend?.();
          seen.push(disk.durableStart(pairKey(U, '000123')));
        },
      });
    const result = await assignRow(row, context(api, journal));
    expect(result.outcome).toBe('CREATED');
    expect(seen).toEqual([true, true]);
  });

  test('a pair an earlier run started is looked for before sending again, and judged by when that create was out', async () => {
    const disk = new MemoryDisk();
    const first = disk.open();
    const sentAt = Date.now() - 1000;
    await first.started(pairKey(U, '000123'), 1, sentAt, sentAt + 30_000);
    disk.kill();
    const device: Device = { id: 'made-before', type: 'OATH_TOKEN', status: 'ACTIVE', serialNumber: '000123', createdAt: new Date(sentAt + 200).toISOString() };
    const api = scripted([], [device]);
    const result = await assignRow(row, context(api, disk.open()));
    expect(result).toMatchObject({ outcome: 'CREATED', deviceId: 'made-before', attempts: 0 });
    expect(api.creates).toBe(0);
  });

  test('a refusal settles the pair: a device put on the user by hand a day later is EXISTING', async () => {
    const disk = new MemoryDisk();
    const api = scripted([new ApiError(failureFromBody(400, { code: 'REQUEST_FAILED', details: [{ code: 'LIMIT_EXCEEDED' }] }, undefined))]);
    const refused = await assignRow(row, context(api, disk.open()));
    expect(refused).toMatchObject({ outcome: 'FAILED', errorCode: 'MAX_DEVICES_REACHED' });
    await new Promise((r) => setImmediate(r));
    expect(disk.lines.some((l) => l.includes('"e":"clear"'))).toBe(true);
    const later: Device = { id: 'by-hand', type: 'OATH_TOKEN', status: 'ACTIVE', serialNumber: '000123', createdAt: new Date(Date.now() + 86_400_000).toISOString() };
    const again = scripted([uniqueness()], [later]);
    expect(await assignRow(row, context(again, disk.open()))).toMatchObject({ outcome: 'EXISTING', deviceId: 'by-hand' });
  });
});
