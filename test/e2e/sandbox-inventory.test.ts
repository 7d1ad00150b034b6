/**
 * The sandbox's OATH token inventory over real HTTP, as PINGONE.md describes PingOne's:
 * jobs that finish after a delay, duplicates reported, a failing job, paging with a cursor,
 * tokens paired to the devices created for them; under `inventory: imported` only imported
 * serials can be assigned.
 */
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
