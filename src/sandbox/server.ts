/**
 * The PingOne simulator: a node:http server on loopback that answers like PingOne does
 * (PINGONE.md) for everything oath-bulk uses: the token endpoint (client_secret_basic and
 * client_secret_post), OATH device create/list/delete with PingOne's error bodies, a token
 * inventory, missing users, a per-user device limit, users filtered by email or username,
 * a server-side rate limit answering 429 + Retry-After, token expiry, and seeded faults.
 *
 * Conventions (documented in the README, so that samples run against it as they are):
 * - every UUID is a user, except those beginning "00000000-" (404);
 * - every serial of letters and digits is in the token inventory, except those beginning
 *   "UNKNOWN" (case-insensitive), which PingOne would not know.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { drawFault, seededRandom, type FaultKind, type FaultMix } from './faults.js';
import { OathInventory, type ExpandShape, type InventoryOptions } from './inventory.js';

export const SANDBOX_DEFAULTS = {
  environmentId: '5d1e0000-0b1c-4b1a-9a11-5a0d5a0d5a0d',
  clientId: 'a11ce000-0b1c-4b1a-9a11-5a0d5a0d5a0d',
  clientSecret: 'sandbox-secret-change-me',
} as const;

export const UNKNOWN_SERIAL_PREFIX = 'UNKNOWN';
export const MISSING_USER_PREFIX = '00000000-';

export interface DirectoryUser {
  readonly id: string;
  readonly username?: string;
  readonly email?: string;
}

export interface SandboxOptions {
  readonly host?: string;
  readonly port?: number;
  readonly environmentId?: string;
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** Seconds an access token lives (PingOne: 3600). */
  readonly tokenTtlS?: number;
  /** Requests per second accepted, all requests counted; 0 = no limit. */
  readonly rateLimit?: number;
  /** Delay added to every answer, in ms. */
  readonly latencyMs?: number;
  readonly maxDevicesPerUser?: number;
  readonly faults?: FaultMix;
  readonly seed?: number;
  /** How long a "slow" answer takes, in ms. */
  readonly slowMs?: number;
  /** The `expire` fault spares tokens younger than this (ms): tokens expire mid-run, not at birth. */
  readonly expireMinAgeMs?: number;
  /** Answer every API call 403 INSUFFICIENT_PERMISSIONS (a worker app without its role). */
  readonly forbidden?: boolean;
  readonly users?: readonly DirectoryUser[];
  /** Keep every arrival time (for rate measurements); on by default. */
  readonly recordArrivals?: boolean;
  /** How far this PingOne's clock is off ours, in ms (negative: behind): shows in createdAt. */
  readonly clockSkewMs?: number;
  /** The token endpoint takes requests and never answers (a hung identity provider). */
  readonly hangToken?: boolean;
  /** The Retry-After value sent with a 429 (default: the seconds until the window frees). */
  readonly retryAfter?: string;
  /**
   * `open` (default): every serial of letters and digits is in the token inventory but those
   * beginning UNKNOWN. `imported`: only the serials imported through oathTokens/oathJobs are.
   */
  readonly inventory?: 'open' | 'imported';
  /** How `expand=devices` shows a paired token's device: `_embedded.devices[]` (default), `devices[]`, or ignored. */
  readonly expandDevices?: ExpandShape;
  /** Tokens one oathJob may hold (default 1,000). */
  readonly jobSizeLimit?: number;
  /** How long an oathJob stays IN_PROGRESS, in ms (default 200). */
  readonly jobDelayMs?: number;
  /** An oathJob holding any of these serials FAILS whole. */
  readonly failJobSerials?: readonly string[];
  /** Devices are created ACTIVATION_REQUIRED (the user proves the token at first sign-in). */
  readonly activationRequired?: boolean;
}

export interface SandboxDevice {
  readonly id: string;
  readonly userId: string;
  readonly serialNumber: string;
  status: string;
  readonly createdAt: string;
}

export interface SandboxStats {
  requests: number;
  byKind: Record<string, number>;
  byStatus: Record<string, number>;
  faults: Record<string, number>;
  createsReceived: number;
  devicesCreated: number;
  /** Activation requests received, and those that activated a device. */
  activationsReceived: number;
  activations: number;
  tokensIssued: number;
  /** Paths that matched no PingOne route (should stay empty). */
  strayPaths: string[];
}

interface Route {
  readonly kind: string;
  readonly env: string;
  readonly userId?: string;
  readonly deviceId?: string;
}

export class PingOneSandbox {
  readonly environmentId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly tokensIssued: string[] = [];
  readonly stats: SandboxStats = { requests: 0, byKind: {}, byStatus: {}, faults: {}, createsReceived: 0, devicesCreated: 0, activationsReceived: 0, activations: 0, tokensIssued: 0, strayPaths: [] };
  /** Arrival time (epoch ms, sub-ms precision) of every request. */
  readonly arrivals: number[] = [];
  options: SandboxOptions;

  private readonly server: http.Server;
  /** token -> when it was issued and when it expires (epoch ms) */
  private readonly tokens = new Map<string, { issuedAt: number; expiresAt: number }>();
  private readonly devices = new Map<string, SandboxDevice[]>();
  private readonly bySerial = new Map<string, SandboxDevice>();
  private readonly accepted: number[] = [];
  private acceptedHead = 0;
  private random: () => number;
  private users: readonly DirectoryUser[];
  /** The OATH token inventory (oathTokens, oathJobs). */
  readonly inventory: OathInventory;

  constructor(options: SandboxOptions = {}) {
    this.options = options;
    this.environmentId = options.environmentId ?? SANDBOX_DEFAULTS.environmentId;
    this.clientId = options.clientId ?? SANDBOX_DEFAULTS.clientId;
    this.clientSecret = options.clientSecret ?? SANDBOX_DEFAULTS.clientSecret;
    this.random = seededRandom(options.seed ?? 1);
    this.users = options.users ?? [];
    this.inventory = new OathInventory(this.inventoryOptions());
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) this.json(res, 500, { code: 'UNEXPECTED_ERROR', message: 'sandbox failure' });
      });
    });
    this.server.keepAliveTimeout = 10_000;
  }

  /** Changes settings of a running sandbox (rate limit, faults, …). */
  configure(changes: Partial<SandboxOptions>): void {
    this.options = { ...this.options, ...changes };
    if (changes.seed !== undefined) this.random = seededRandom(changes.seed);
    if (changes.users) this.users = changes.users;
    this.inventory.options = this.inventoryOptions();
  }

  private inventoryOptions(): InventoryOptions {
    return {
      jobSizeLimit: this.options.jobSizeLimit ?? 1000,
      jobDelayMs: this.options.jobDelayMs ?? 200,
      failJobSerials: new Set(this.options.failJobSerials ?? []),
    };
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => resolve());
    });
    return this.url;
  }

  get url(): string {
    const address = this.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  /** KEY=value settings for oath-bulk (what `oath-bulk sandbox` prints, --env-file reads). */
  envLines(): string[] {
    return [
      `PINGONE_ENVIRONMENT_ID=${this.environmentId}`,
      `PINGONE_CLIENT_ID=${this.clientId}`,
      `PINGONE_CLIENT_SECRET=${this.clientSecret}`,
      `PINGONE_API_URL=${this.url}/v1`,
      `PINGONE_AUTH_URL=${this.url}`,
    ];
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Every device, for assertions. */
  allDevices(): SandboxDevice[] {
    return [...this.devices.values()].flat();
  }

  devicesOf(userId: string): SandboxDevice[] {
    return this.devices.get(userId.toLowerCase()) ?? [];
  }

  /** Puts a device on a user behind oath-bulk's back (a token already held). */
  seedDevice(userId: string, serialNumber: string, createdAt = new Date(Date.now() - 86_400_000).toISOString()): SandboxDevice {
    return this.addDevice(userId.toLowerCase(), serialNumber, createdAt);
  }

  removeDevice(userId: string, deviceId: string): boolean {
    const list = this.devices.get(userId.toLowerCase()) ?? [];
    const index = list.findIndex((d) => d.id === deviceId);
    if (index < 0) return false;
    const [device] = list.splice(index, 1);
    this.bySerial.delete(device!.serialNumber);
    this.inventory.unpair(device!.id);
    return true;
  }

  /** Highest number of requests that arrived within any window of `windowMs`. */
  maxInWindow(windowMs = 1000, from = 0): number {
    return maxInWindow(this.arrivals.slice(from), windowMs);
  }

  // --- request handling -------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = performance.timeOrigin + performance.now();
    this.stats.requests++;
    if (this.options.recordArrivals !== false) this.arrivals.push(arrived);
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://sandbox');

    if (url.pathname === '/__sandbox/state' && req.method === 'GET') {
      this.json(res, 200, { stats: this.stats, devices: this.allDevices(), maxInWindow: this.maxInWindow() });
      return;
    }
    if (url.pathname === '/__sandbox/seed' && req.method === 'POST') {
      // Drills: put tokens on users behind oath-bulk's back. Body: [{"userId","serialNumber"}].
      const items = parseJson(body);
      if (Array.isArray(items)) for (const i of items) this.seedDevice(String(i.userId), String(i.serialNumber));
      this.json(res, 204, undefined);
      return;
    }

    const route = this.route(req.method ?? 'GET', url.pathname);
    this.count('byKind', route?.kind ?? 'stray');
    if (!route) {
      this.stats.strayPaths.push(`${req.method} ${url.pathname}`);
      return this.answer(res, 404, pingError('NOT_FOUND', 'The requested resource was not found.'));
    }
    if (route.kind === 'token' && this.options.hangToken) {
      this.count('byStatus', 'hung');
      return;
    }
    if (!this.admit(arrived)) {
      res.setHeader('retry-after', this.options.retryAfter ?? String(this.retryAfterS(arrived)));
      return this.answer(res, 429, pingError('REQUEST_LIMITED', 'The request was rate limited.', [{ code: 'LIMIT_EXCEEDED', message: 'Too many requests.' }]));
    }
    if (route.kind === 'token') return this.token(req, res, route, body);

    const fault = drawFault(this.options.faults ?? {}, this.random);
    if (fault) this.count('faults', fault);
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault === '5xx') return this.answer(res, 503, pingError('UNEXPECTED_ERROR', 'An unexpected error occurred.'));
    if (fault === 'html502') {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>');
      this.count('byStatus', '502');
      return;
    }

    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    // A token expires in the middle of a run, not the moment it is issued: the fault spares
    // young tokens (5 s by default), as a real expiry would.
    const held = bearer === undefined ? undefined : this.tokens.get(bearer);
    if (fault === 'expire' && held && Date.now() - held.issuedAt >= (this.options.expireMinAgeMs ?? 5000)) held.expiresAt = 0;
    const expires = held?.expiresAt;
    if (expires === undefined || expires <= Date.now()) {
      return this.answer(res, 401, pingError('ACCESS_FAILED', 'The request could not be completed. You do not have access to this resource.', [{ code: 'INVALID_TOKEN', message: 'The access token is invalid or expired.' }]));
    }
    if (route.env !== this.environmentId) return this.answer(res, 404, pingError('NOT_FOUND', 'Unable to find environment.'));
    if (this.options.forbidden) {
      return this.answer(res, 403, pingError('ACCESS_FAILED', 'The request could not be completed. You do not have access to this resource.', [{ code: 'INSUFFICIENT_PERMISSIONS', message: 'Actor does not have permissions to access the requested resource.' }]));
    }

    const [status, answer] = this.api(route, req, url, body);
    if (fault === 'lost') {
      req.socket.destroy();
      return;
    }
    if (fault === 'slow') await sleep(this.options.slowMs ?? 2000);
    return this.answer(res, status, answer);
  }

  private route(method: string, path: string): Route | undefined {
    let m = /^\/([0-9a-f-]{36})\/as\/token$/.exec(path);
    if (m && method === 'POST') return { kind: 'token', env: m[1]! };
    m = /^\/v1\/environments\/([0-9a-f-]{36})\/users\/([0-9a-fA-F-]{36})\/devices$/.exec(path);
    if (m && (method === 'POST' || method === 'GET')) return { kind: method === 'POST' ? 'create' : 'list', env: m[1]!, userId: m[2]!.toLowerCase() };
    m = /^\/v1\/environments\/([0-9a-f-]{36})\/users\/([0-9a-fA-F-]{36})\/devices\/([A-Za-z0-9-]{1,64})$/.exec(path);
    if (m && (method === 'DELETE' || method === 'GET')) return { kind: method === 'DELETE' ? 'delete' : 'read', env: m[1]!, userId: m[2]!.toLowerCase(), deviceId: m[3]! };
    if (m && method === 'POST') return { kind: 'activate', env: m[1]!, userId: m[2]!.toLowerCase(), deviceId: m[3]! };
    m = /^\/v1\/environments\/([0-9a-f-]{36})\/users\/([0-9a-fA-F-]{36})$/.exec(path);
    if (m && method === 'GET') return { kind: 'user', env: m[1]!, userId: m[2]!.toLowerCase() };
    m = /^\/v1\/environments\/([0-9a-f-]{36})\/users$/.exec(path);
    if (m && method === 'GET') return { kind: 'lookup', env: m[1]! };
    m = /^\/v1\/environments\/([0-9a-f-]{36})\/oathTokens(?:\/([A-Za-z0-9-]{1,64}))?$/.exec(path);
    if (m && !m[2] && (method === 'POST' || method === 'GET')) return { kind: method === 'POST' ? 'oathCreate' : 'oathList', env: m[1]! };
    if (m && m[2] && method === 'DELETE') return { kind: 'oathDelete', env: m[1]!, deviceId: m[2] };
    m = /^\/v1\/environments\/([0-9a-f-]{36})\/oathJobs(?:\/([A-Za-z0-9-]{1,64}))?$/.exec(path);
    if (m && !m[2] && method === 'POST') return { kind: 'oathJob', env: m[1]! };
    if (m && m[2] && method === 'GET') return { kind: 'oathJobStatus', env: m[1]!, deviceId: m[2] };
    return undefined;
  }

  /** Sliding one-second window over accepted requests. */
  private admit(now: number): boolean {
    const limit = this.options.rateLimit ?? 0;
    if (limit <= 0) return true;
    while (this.acceptedHead < this.accepted.length && this.accepted[this.acceptedHead]! <= now - 1000) this.acceptedHead++;
    if (this.acceptedHead > 10_000) {
      this.accepted.splice(0, this.acceptedHead);
      this.acceptedHead = 0;
    }
    if (this.accepted.length - this.acceptedHead >= limit) return false;
    this.accepted.push(now);
    return true;
  }

  private retryAfterS(now: number): number {
    const oldest = this.accepted[this.acceptedHead] ?? now;
    return Math.max(1, Math.ceil((oldest + 1000 - now) / 1000));
  }

  private token(req: IncomingMessage, res: ServerResponse, route: Route, body: string): void {
    if (route.env !== this.environmentId) {
      return this.answer(res, 404, pingError('NOT_FOUND', 'Unable to find environment.'));
    }
    const form = new URLSearchParams(body);
    let id: string | undefined;
    let secret: string | undefined;
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (basic) {
      const decoded = Buffer.from(basic, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const unform = (s: string): string => decodeURIComponent(s.replace(/\+/g, ' '));
      id = unform(decoded.slice(0, colon));
      secret = unform(decoded.slice(colon + 1));
    } else {
      id = form.get('client_id') ?? undefined;
      secret = form.get('client_secret') ?? undefined;
    }
    if (form.get('grant_type') !== 'client_credentials') {
      return this.answer(res, 400, { error: 'unsupported_grant_type', error_description: 'The grant type is not supported.' });
    }
    if (id !== this.clientId || secret !== this.clientSecret) {
      return this.answer(res, 401, { error: 'invalid_client', error_description: 'Request denied: Unsupported authentication method or invalid client credentials.' });
    }
    const ttl = this.options.tokenTtlS ?? 3600;
    const token = `sbx.${randomBytes(24).toString('base64url')}`;
    this.tokens.set(token, { issuedAt: Date.now(), expiresAt: Date.now() + ttl * 1000 });
    this.tokensIssued.push(token);
    this.stats.tokensIssued++;
    return this.answer(res, 200, { access_token: token, token_type: 'Bearer', expires_in: ttl, scope: '' });
  }

  private userExists(userId: string): boolean {
    return !userId.startsWith(MISSING_USER_PREFIX);
  }

  private api(route: Route, req: IncomingMessage, url: URL, body: string): [number, unknown] {
    const base = `${this.url}/v1/environments/${route.env}`;
    if (route.kind === 'lookup') return this.lookup(url);
    if (route.kind.startsWith('oath')) return this.oath(route, req, url, body, base);
    const userId = route.userId!;
    if (!this.userExists(userId)) return [404, pingError('NOT_FOUND', 'Unable to find user.')];
    const list = this.devices.get(userId) ?? [];
    switch (route.kind) {
      case 'user': {
        const known = this.users.find((u) => u.id.toLowerCase() === userId);
        return [200, { _links: { self: { href: `${base}/users/${userId}` } }, id: userId, environment: { id: this.environmentId }, username: known?.username ?? `user-${userId.slice(0, 8)}`, ...(known?.email ? { email: known.email } : {}), enabled: true }];
      }
      case 'activate': {
        const device = list.find((d) => d.id === route.deviceId);
        if (!device) return [404, pingError('NOT_FOUND', 'Unable to find device.')];
        return this.activate(device, req, body);
      }
      case 'list':
        return [200, { _links: { self: { href: `${base}/users/${userId}/devices` } }, _embedded: { devices: list.map((d) => this.deviceBody(d)) }, count: list.length, size: list.length }];
      case 'read': {
        const device = list.find((d) => d.id === route.deviceId);
        return device ? [200, this.deviceBody(device)] : [404, pingError('NOT_FOUND', 'Unable to find device.')];
      }
      case 'delete':
        return this.removeDevice(userId, route.deviceId!) ? [204, undefined] : [404, pingError('NOT_FOUND', 'Unable to find device.')];
      case 'create':
        return this.create(userId, list, req, body);
      default:
        return [404, pingError('NOT_FOUND', 'The requested resource was not found.')];
    }
  }

  private oath(route: Route, req: IncomingMessage, url: URL, body: string, base: string): [number, unknown] {
    const type = req.headers['content-type'] ?? '';
    switch (route.kind) {
      case 'oathCreate':
        if (!/^application\/json/i.test(type)) return [415, pingError('INVALID_REQUEST', 'Content-Type must be application/json.')];
        return this.inventory.createOne(parseJsonExact(body));
      case 'oathJob':
        if (!/^application\/vnd\.pingidentity\.job\.oathtokens\.create\+json/i.test(type)) {
          return [415, pingError('INVALID_REQUEST', 'Content-Type must be application/vnd.pingidentity.job.oathtokens.create+json.')];
        }
        return this.inventory.createJob(parseJsonExact(body), base);
      case 'oathJobStatus':
        return this.inventory.jobStatus(route.deviceId!, base);
      case 'oathList':
        return this.inventory.list(url, base, this.options.inventory === 'imported' ? undefined : {
          known: (serial) => /^[A-Za-z0-9]{1,50}$/.test(serial) && !serial.toUpperCase().startsWith(UNKNOWN_SERIAL_PREFIX),
          paired: () => this.bySerial.values(),
        }, this.options.expandDevices);
      case 'oathDelete':
        return this.inventory.remove(route.deviceId!);
      default:
        return [404, pingError('NOT_FOUND', 'The requested resource was not found.')];
    }
  }

  private create(userId: string, list: SandboxDevice[], req: IncomingMessage, body: string): [number, unknown] {
    this.stats.createsReceived++;
    if (!/^application\/json/i.test(req.headers['content-type'] ?? '')) {
      return [415, pingError('INVALID_REQUEST', 'Content-Type must be application/json.')];
    }
    const input = parseJson(body) as { type?: unknown; serialNumber?: unknown } | undefined;
    if (!input || typeof input !== 'object') return [400, pingError('INVALID_REQUEST', 'The request body is not valid JSON.')];
    if (input.type !== 'OATH_TOKEN') {
      return [400, pingError('INVALID_DATA', 'The request could not be completed. One or more validation errors were in the request.', [{ code: 'INVALID_VALUE', target: 'type', message: 'type must be OATH_TOKEN here' }])];
    }
    if (typeof input.serialNumber !== 'string' || input.serialNumber === '') {
      return [400, pingError('INVALID_DATA', 'The request could not be completed. One or more validation errors were in the request.', [{ code: 'REQUIRED_VALUE', target: 'serialNumber', message: 'serialNumber is required and must be a string' }])];
    }
    const serial = input.serialNumber;
    const known = this.options.inventory === 'imported' ? this.inventory.has(serial) : !serial.toUpperCase().startsWith(UNKNOWN_SERIAL_PREFIX);
    if (!/^[A-Za-z0-9]{1,50}$/.test(serial) || !known) {
      return [400, pingError('INVALID_DATA', 'The request could not be completed. One or more validation errors were in the request.', [{ code: 'INVALID_VALUE', target: 'serialNumber', message: `No OATH token with serial number ${serial} exists in this environment.` }])];
    }
    if (this.bySerial.has(serial)) {
      return [400, pingError('INVALID_DATA', 'The request could not be completed. One or more validation errors were in the request.', [{ code: 'UNIQUENESS_VIOLATION', target: 'serialNumber', message: 'The OATH token is already paired with a user.' }])];
    }
    const max = this.options.maxDevicesPerUser ?? 5;
    if (list.length >= max) {
      return [400, pingError('REQUEST_FAILED', 'The request could not be completed.', [{ code: 'LIMIT_EXCEEDED', message: `The user has reached the maximum number of devices (${max}).`, innerError: { maximumAllowed: max } }])];
    }
    const device = this.addDevice(userId, serial, new Date(Date.now() + (this.options.clockSkewMs ?? 0)).toISOString());
    this.inventory.pair(serial, { id: device.id, userId });
    this.stats.devicesCreated++;
    return [201, this.deviceBody(device)];
  }

  /**
   * POST …/devices/{id} (device.activate+json, {"otp"}): the code is checked against the
   * token's seed as imported (HOTP: the counter and the next ACTIVATION_HOTP_WINDOW - 1; TOTP:
   * the current step ± 1). A wrong code is a 400; an HOTP code used moves the counter past it.
   */
  private activate(device: SandboxDevice, req: IncomingMessage, body: string): [number, unknown] {
    this.stats.activationsReceived++;
    if (!/^application\/vnd\.pingidentity\.device\.activate\+json/i.test(req.headers['content-type'] ?? '')) {
      return [415, pingError('INVALID_REQUEST', 'Content-Type must be application/vnd.pingidentity.device.activate+json.')];
    }
    const otp = (parseJson(body) as { otp?: unknown } | undefined)?.otp;
    if (typeof otp !== 'string' || !/^\d{6,8}$/.test(otp)) {
      return [400, pingError('INVALID_DATA', 'The request could not be completed. One or more validation errors were in the request.', [{ code: 'REQUIRED_VALUE', target: 'otp', message: 'otp is required: 6 or 8 digits' }])];
    }
    if (device.status !== 'ACTIVATION_REQUIRED') {
      return [400, pingError('INVALID_DATA', 'The request could not be completed. One or more validation errors were in the request.', [{ code: 'INVALID_VALUE', target: 'status', message: `The device is ${device.status}; only an ACTIVATION_REQUIRED device can be activated.` }])];
    }
    const token = this.inventory.get(device.serialNumber);
    if (!token || !this.inventory.checkCode(token, otp)) {
      return [400, pingError('INVALID_DATA', 'The request could not be completed. One or more validation errors were in the request.', [{ code: 'INVALID_OTP', target: 'otp', message: 'The one-time passcode is not valid.' }])];
    }
    device.status = 'ACTIVE';
    this.stats.activations++;
    return [200, this.deviceBody(device)];
  }

  private addDevice(userId: string, serialNumber: string, createdAt: string): SandboxDevice {
    const device: SandboxDevice = { id: randomUUID(), userId, serialNumber, status: this.options.activationRequired ? 'ACTIVATION_REQUIRED' : 'ACTIVE', createdAt };
    const list = this.devices.get(userId) ?? [];
    list.push(device);
    this.devices.set(userId, list);
    this.bySerial.set(serialNumber, device);
    return device;
  }

  private lookup(url: URL): [number, unknown] {
    const filter = url.searchParams.get('filter') ?? '';
    const m = /^(email|username) eq "((?:[^"\\]|\\.)*)"$/.exec(filter);
    if (!m) {
      return [400, pingError('INVALID_REQUEST', 'The filter is not supported.', [{ code: 'INVALID_FILTER', target: 'filter', message: `unsupported filter ${filter}` }])];
    }
    const attribute = m[1] as 'email' | 'username';
    const value = m[2]!.replace(/\\(.)/g, '$1').toLowerCase();
    const found = this.users.filter((u) => (u[attribute] ?? '').toLowerCase() === value);
    return [200, { _embedded: { users: found.map((u) => ({ id: u.id, username: u.username, email: u.email, environment: { id: this.environmentId } })) }, count: found.length, size: found.length }];
  }

  private deviceBody(d: SandboxDevice): Record<string, unknown> {
    return {
      _links: { self: { href: `${this.url}/v1/environments/${this.environmentId}/users/${d.userId}/devices/${d.id}` } },
      id: d.id,
      environment: { id: this.environmentId },
      user: { id: d.userId },
      type: 'OATH_TOKEN',
      status: d.status,
      serialNumber: d.serialNumber,
      tokenType: 'TOTP',
      createdAt: d.createdAt,
      updatedAt: d.createdAt,
    };
  }

  private count(group: 'byKind' | 'byStatus' | 'faults', key: string): void {
    this.stats[group][key] = (this.stats[group][key] ?? 0) + 1;
  }

  private answer(res: ServerResponse, status: number, body: unknown): void {
    const latency = this.options.latencyMs ?? 0;
    const send = (): void => this.json(res, status, body);
    if (latency > 0) setTimeout(send, latency);
    else send();
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    this.count('byStatus', String(status));
    if (res.destroyed) return;
    if (body === undefined) {
      res.writeHead(status);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
}

/** Largest number of events within any half-open window [t, t + windowMs). */
export function maxInWindow(times: readonly number[], windowMs = 1000): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

function pingError(code: string, message: string, details?: unknown[]): Record<string, unknown> {
  return { id: randomUUID(), code, message, ...(details ? { details } : {}) };
}

function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** JSON whose long whole numbers (a 64-bit HOTP counter) keep their digits, as text. */
function parseJsonExact(text: string): any {
  return parseJson(text.replace(/("counter"\s*:\s*)(\d{16,})(?=\s*[,}])/g, '$1"$2"'));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 8 * 1024 * 1024) {
        req.destroy();
        reject(new Error('body too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export type { FaultKind };
