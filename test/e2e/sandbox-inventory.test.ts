/**
 * The sandbox's OATH token inventory over real HTTP, as PINGONE.md describes PingOne's:
 * jobs that finish after a delay, duplicates reported, a failing job, paging with a cursor,
 * tokens paired to the devices created for them; under `inventory: imported` only imported
 * serials can be assigned.
 */
import { createHmac } from 'node:crypto';
import { useSandbox } from '../support/sandbox.js';

const box = useSandbox();

async function api(method: string, path: string, body?: unknown, type = 'application/json'): Promise<{ status: number; body: any }> {
  const s = box.sandbox;
  const auth = Buffer.from(`${s.clientId}:${s.clientSecret}`).toString('base64');
  const token = (await (await fetch(`${s.url}/${s.environmentId}/as/token`, { method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' })).json()) as { access_token: string };
  const res = await fetch(`${s.url}/v1/environments/${s.environmentId}${path}`, { method, headers: { authorization: `Bearer ${token.access_token}`, 'content-type': type }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: res.status === 204 ? undefined : await res.json() };
}

const JOB = 'application/vnd.pingidentity.job.oathtokens.create+json';
const token = (serial: string) => ({ serialNumber: serial, secret: '3132333435363738393031323334353637383930', type: 'TOTP', otpLength: 6, totp: { timeStep: 30 } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a job imports its tokens after a delay, reports duplicates, and only imported serials can then be assigned', async () => {
  box.sandbox.configure({ inventory: 'imported', jobDelayMs: 100 });
  const user = 'a0b1c2d3-0000-4000-8000-000000000001';
  expect((await api('POST', `/users/${user}/devices`, { type: 'OATH_TOKEN', serialNumber: 'INV1' })).body.details[0].target).toBe('serialNumber');

  const job = await api('POST', '/oathJobs', { type: 'CREATE_OATH_TOKENS', tokens: [token('INV1'), token('INV2')] }, JOB);
  expect(job.status).toBe(202);
  expect((await api('GET', `/oathJobs/${job.body.id}`)).body.status).toBe('IN_PROGRESS');
  await sleep(150);
  expect((await api('GET', `/oathJobs/${job.body.id}`)).body).toMatchObject({ status: 'DONE', result: { created: 2, duplicates: [] } });

  const again = await api('POST', '/oathJobs', { type: 'CREATE_OATH_TOKENS', tokens: [token('INV2'), token('INV3')] }, JOB);
  await sleep(150);
  expect((await api('GET', `/oathJobs/${again.body.id}`)).body).toMatchObject({ status: 'DONE', result: { created: 1, duplicates: ['INV2'] } });

  const device = await api('POST', `/users/${user}/devices`, { type: 'OATH_TOKEN', serialNumber: 'INV1' });
  expect(device.status).toBe(201);
  const found = await api('GET', `/oathTokens?filter=${encodeURIComponent('serialNumber eq "INV1"')}&expand=devices`);
  expect(found.body._embedded.oathTokens).toHaveLength(1);
  expect(found.body._embedded.oathTokens[0]._embedded.devices[0]).toEqual({ id: device.body.id, user: { id: user } });
  expect(JSON.stringify(found.body)).not.toMatch(/3132333435/);
});

test('a job holding a failing serial FAILS whole with a reason; one-by-one creates report duplicates as PingOne does', async () => {
  box.sandbox.configure({ failJobSerials: ['BAD1'], jobDelayMs: 0 });
  const job = await api('POST', '/oathJobs', { type: 'CREATE_OATH_TOKENS', tokens: [token('OK1'), token('BAD1')] }, JOB);
  expect((await api('GET', `/oathJobs/${job.body.id}`)).body).toMatchObject({ status: 'FAILED', reason: expect.stringMatching(/BAD1/) });
  expect(box.sandbox.inventory.has('OK1')).toBe(false);
  expect((await api('POST', '/oathTokens', token('OK1'))).status).toBe(201);
  const dup = await api('POST', '/oathTokens', token('OK1'));
  expect(dup.status).toBe(400);
  expect(dup.body.details[0].code).toBe('UNIQUENESS_VIOLATION');
});

test('the inventory pages with a cursor: following next reaches every token once', async () => {
  box.sandbox.configure({ jobDelayMs: 0 });
  await api('POST', '/oathJobs', { type: 'CREATE_OATH_TOKENS', tokens: Array.from({ length: 25 }, (_, i) => token(`PG${i}`)) }, JOB);
  const seen: string[] = [];
  let next: string | undefined = '/oathTokens?limit=10';
  while (next) {
    const page: { body: any } = await api('GET', next);
    seen.push(...page.body._embedded.oathTokens.map((t: { serialNumber: string }) => t.serialNumber));
    const href: string | undefined = page.body._links.next?.href;
    next = href ? href.slice(href.indexOf('/oathTokens')) : undefined;
  }
  expect(seen.sort()).toEqual(Array.from({ length: 25 }, (_, i) => `PG${i}`).sort());
});

const REVOKE = 'application/vnd.pingidentity.job.oathtokens.revoke+json';

/** RFC 4226 §5.3, computed here, apart from the sandbox's and oath-bulk's own. */
function code(secretHex: string, counter: number, digits = 6): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', Buffer.from(secretHex, 'hex')).update(message).digest();
  const o = mac[mac.length - 1]! & 0x0f;
  return String((((mac[o]! & 0x7f) << 24) | (mac[o + 1]! << 16) | (mac[o + 2]! << 8) | mac[o + 3]!) % 10 ** digits).padStart(digits, '0');
}

test('a revoke job (forceUnpair) takes its tokens out of the inventory when it finishes, the paired one off its user too; the serial can then be imported again', async () => {
  box.sandbox.configure({ inventory: 'imported', jobDelayMs: 50 });
  const user = 'a0b1c2d3-0000-4000-8000-000000000021';
  for (const serial of ['RVK1', 'RVK2']) expect((await api('POST', '/oathTokens', token(serial))).status).toBe(201);
  const device = await api('POST', `/users/${user}/devices`, { type: 'OATH_TOKEN', serialNumber: 'RVK1' });
  expect(device.status).toBe(201);
  const ids = ['RVK1', 'RVK2'].map((s) => box.sandbox.inventory.get(s)!.id);
  expect((await api('POST', '/oathJobs', { type: 'REVOKE_OATH_TOKENS', tokenIds: ids }, JOB)).status).toBe(400);
  const job = await api('POST', '/oathJobs', { type: 'REVOKE_OATH_TOKENS', async: true, forceUnpair: true, tokenIds: [...ids, 'no-such-token'] }, REVOKE);
  expect(job.status).toBe(202);
  expect(job.body).toMatchObject({ type: 'REVOKE_OATH_TOKENS', status: 'IN_PROGRESS' });
  // Until the job is done, nothing is gone.
  expect(box.sandbox.devicesOf(user)).toHaveLength(1);
  await sleep(80);
  expect((await api('GET', `/oathJobs/${job.body.id}`)).body).toMatchObject({ status: 'DONE', result: { revoked: 2 } });
  expect(box.sandbox.inventory.has('RVK1')).toBe(false);
  expect(box.sandbox.inventory.has('RVK2')).toBe(false);
  expect(box.sandbox.devicesOf(user)).toEqual([]);
  // PingOne keeps no revoked state: the same serial imports again.
  expect((await api('POST', '/oathTokens', token('RVK1'))).status).toBe(201);

  // Without forceUnpair a paired token stays (what PingOne does there is unconfirmed).
  const d2 = await api('POST', `/users/${user}/devices`, { type: 'OATH_TOKEN', serialNumber: 'RVK1' });
  expect(d2.status).toBe(201);
  const kept = await api('POST', '/oathJobs', { type: 'REVOKE_OATH_TOKENS', forceUnpair: false, tokenIds: [box.sandbox.inventory.get('RVK1')!.id] }, REVOKE);
  await sleep(80);
  expect((await api('GET', `/oathJobs/${kept.body.id}`)).body).toMatchObject({ status: 'DONE', result: { revoked: 0 } });
  expect(box.sandbox.devicesOf(user)).toHaveLength(1);
});

test('resync takes two consecutive codes of a drifted token (HOTP ahead, TOTP clock off), a wrong pair is a 400; a device can be blocked and unblocked', async () => {
  box.sandbox.configure({ activationRequired: true });
  const secret = '3132333435363738393031323334353637383930';
  const RESYNC = 'application/vnd.pingidentity.device.resync+json';
  expect((await api('POST', '/oathTokens', { serialNumber: 'SYNC1', secret, type: 'HOTP', otpLength: 6, hotp: { counter: 0 } })).status).toBe(201);
  const hotpId = box.sandbox.inventory.get('SYNC1')!.id;
  // The token was pressed 40 times in a drawer: its codes are 40 ahead of PingOne's counter.
  expect((await api('POST', `/oathTokens/${hotpId}`, { otps: [code(secret, 40), code(secret, 42)] }, RESYNC)).body.details[0].code).toBe('INVALID_OTP');
  expect((await api('POST', `/oathTokens/${hotpId}`, { otps: [code(secret, 40), code(secret, 41)] }, 'application/json')).status).toBe(415);
  expect((await api('POST', `/oathTokens/${hotpId}`, { otps: ['12345'] }, RESYNC)).status).toBe(400);
  const synced = await api('POST', `/oathTokens/${hotpId}`, { otps: [code(secret, 40), code(secret, 41)] }, RESYNC);
  expect(synced.status).toBe(200);
  expect(box.sandbox.inventory.counterText('SYNC1')).toBe('42');

  // A TOTP token whose clock runs 5 minutes (10 steps) ahead: after the resync its code activates.
  expect((await api('POST', '/oathTokens', token('SYNC2'))).status).toBe(201);
  const step = Math.floor(Date.now() / 30_000);
  const totpId = box.sandbox.inventory.get('SYNC2')!.id;
  expect((await api('POST', `/oathTokens/${totpId}`, { otps: [code(secret, step + 10), code(secret, step + 11)] }, RESYNC)).status).toBe(200);
  const user = 'a0b1c2d3-0000-4000-8000-000000000022';
  const device = await api('POST', `/users/${user}/devices`, { type: 'OATH_TOKEN', serialNumber: 'SYNC2' });
  expect(device.body.status).toBe('ACTIVATION_REQUIRED');
  const ACTIVATE = 'application/vnd.pingidentity.device.activate+json';
  expect((await api('POST', `/users/${user}/devices/${device.body.id}`, { otp: code(secret, Math.floor(Date.now() / 30_000) + 11) }, ACTIVATE)).body.status).toBe('ACTIVE');

  const blocked = await api('POST', `/users/${user}/devices/${device.body.id}`, undefined, 'application/vnd.pingidentity.device.block+json');
  expect(blocked.body.status).toBe('BLOCKED');
  expect(box.sandbox.devicesOf(user)[0]!.status).toBe('BLOCKED');
  const unblocked = await api('POST', `/users/${user}/devices/${device.body.id}`, undefined, 'application/vnd.pingidentity.device.unblock+json');
  expect(unblocked.body.status).toBe('ACTIVE');
});

test('people leave and go on leave: a disabled user says enabled false; a deleted one is 404, its tokens orphaned or freed as the sandbox is set (PingOne\'s choice is unconfirmed); the directory and the inventory page with a cursor', async () => {
  box.sandbox.configure({ inventory: 'imported', jobDelayMs: 0, inventoryPageSize: 3 });
  const job = await api('POST', '/oathJobs', { type: 'CREATE_OATH_TOKENS', tokens: Array.from({ length: 7 }, (_, i) => token(`LV${i}`)) }, JOB);
  expect((await api('GET', `/oathJobs/${job.body.id}`)).body.status).toBe('DONE');
  const user = (n: number) => `a0b1c2d3-0000-4000-8000-${String(n).padStart(12, '0')}`;
  for (let i = 0; i < 5; i++) box.sandbox.seedDevice(user(i + 1), `LV${i}`);
  box.sandbox.disableUser(user(1));
  box.sandbox.deleteUser(user(2));
  box.sandbox.configure({ onUserDeleted: 'free' });
  box.sandbox.deleteUser(user(3));
  expect((await api('GET', `/users/${user(1)}`)).body).toMatchObject({ id: user(1), enabled: false });
  expect((await api('GET', `/users/${user(4)}`)).body).toMatchObject({ enabled: true });
  expect((await api('GET', `/users/${user(2)}`)).status).toBe(404);
  expect((await api('GET', `/users/${user(2)}/devices`)).status).toBe(404);

  // The inventory, three tokens a page whatever `limit` asks: user 2's token still names them (orphaned), user 3's is free.
  const tokens: any[] = [];
  let next: string | undefined = '/oathTokens?limit=1000&expand=devices';
  let pages = 0;
  while (next) {
    const page: { body: any } = await api('GET', next);
    pages++;
    tokens.push(...page.body._embedded.oathTokens);
    const href: string | undefined = page.body._links.next?.href;
    next = href ? href.slice(href.indexOf('/oathTokens')) : undefined;
  }
  expect(pages).toBe(3);
  const holder = (sn: string) => tokens.find((t) => t.serialNumber === sn)?._embedded?.devices?.[0]?.user.id;
  expect([holder('LV0'), holder('LV1'), holder('LV2'), holder('LV3'), holder('LV5')]).toEqual([user(1), user(2), undefined, user(4), undefined]);

  // The directory in pages: every holder but the deleted ones.
  const seen: Array<{ id: string; enabled: boolean }> = [];
  let dir: string | undefined = '/users?limit=2';
  while (dir) {
    const page: { body: any } = await api('GET', dir);
    seen.push(...page.body._embedded.users.map((u: { id: string; enabled: boolean }) => ({ id: u.id, enabled: u.enabled })));
    const href: string | undefined = page.body._links.next?.href;
    dir = href ? href.slice(href.indexOf('/users')) : undefined;
  }
  expect(seen).toEqual([{ id: user(1), enabled: false }, { id: user(4), enabled: true }, { id: user(5), enabled: true }]);
});

test('the open inventory stands in a token for any serial, but not for one revoked and not imported again; --populate makes a lived-in environment', async () => {
  const made = box.sandbox.populate({ tokens: 40, prefix: 'OPN', assigned: 0.5 });
  const serial = made.free[0]!;
  const found = await api('GET', `/oathTokens?filter=${encodeURIComponent(`serialNumber eq "${serial}"`)}`);
  expect(found.body._embedded.oathTokens).toHaveLength(1);
  const revoke = await api('POST', '/oathJobs', { type: 'REVOKE_OATH_TOKENS', async: true, forceUnpair: true, tokenIds: [found.body._embedded.oathTokens[0].id] }, 'application/vnd.pingidentity.job.oathtokens.revoke+json');
  expect(revoke.status).toBe(202);
  await sleep(250);
  expect((await api('GET', `/oathTokens?filter=${encodeURIComponent(`serialNumber eq "${serial}"`)}`)).body._embedded.oathTokens).toEqual([]);
  expect((await api('POST', `/users/a0b1c2d3-0000-4000-8000-000000000077/devices`, { type: 'OATH_TOKEN', serialNumber: serial })).status).toBe(400);
  // Imported again: there once more.
  expect((await api('POST', '/oathTokens', token(serial))).status).toBe(201);
  expect((await api('GET', `/oathTokens?filter=${encodeURIComponent(`serialNumber eq "${serial}"`)}`)).body._embedded.oathTokens).toHaveLength(1);
  expect(made.free.length + made.assigned.length + made.pending.length + made.disabled.length + made.deleted.length).toBe(40);
});

test('a deleted user with several tokens, where PingOne frees them: every one is free, none left on the vanished user', () => {
  box.sandbox.configure({ onUserDeleted: 'free' });
  const user = 'a0b1c2d3-0000-4000-8000-000000000088';
  for (const serial of ['MANY1', 'MANY2', 'MANY3']) {
    box.sandbox.inventory.createOne(token(serial));
    box.sandbox.seedDevice(user, serial);
  }
  box.sandbox.deleteUser(user);
  expect(box.sandbox.devicesOf(user)).toEqual([]);
  expect(['MANY1', 'MANY2', 'MANY3'].map((s) => box.sandbox.inventory.get(s)?.device)).toEqual([undefined, undefined, undefined]);
});
