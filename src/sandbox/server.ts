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
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { drawFault, seededRandom, type FaultKind, type FaultMix } from './faults.js';
import { OathInventory, type ExpandShape, type InventoryOptions } from './inventory.js';
import { maxInWindow, parseJson, parseJsonExact, pingError, readBody, sleep, wrongType, type Answer } from './answers.js';
import { tokenAnswer } from './auth.js';
import { DeviceStore, type DeviceRules, type SandboxDevice } from './devices.js';
import { lookupAnswer, userAnswer, userExists, type DirectoryUser } from './users.js';

export { maxInWindow } from './answers.js';
export { MISSING_USER_PREFIX, type DirectoryUser } from './users.js';
export type { SandboxDevice } from './devices.js';

export const SANDBOX_DEFAULTS = {
  environmentId: '5d1e0000-0b1c-4b1a-9a11-5a0d5a0d5a0d',
  clientId: 'a11ce000-0b1c-4b1a-9a11-5a0d5a0d5a0d',
  clientSecret: 'sandbox-secret-change-me',
} as const;

export const UNKNOWN_SERIAL_PREFIX = 'UNKNOWN';


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
  /** Answer only the OATH token inventory's calls 403 (a role that manages devices, not tokens). */
  readonly forbidInventory?: boolean;
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
  /** Requests about these users (ids, lower case) are answered after slowMs: a row that holds up the ones after it. */
  readonly slowUsers?: readonly string[];
  /**
   * What deleting a user does to their OATH tokens — unconfirmed for PingOne (PINGONE.md), so
   * the sandbox has both and never decides silently: `orphan` (default) keeps each token paired
   * to a device that names the vanished user; `free` drops the devices and frees the tokens.
   */
  readonly onUserDeleted?: 'orphan' | 'free';
  /** The most tokens one inventory page holds, whatever `limit` asks (PingOne: 1,000): tests page with a few. */
  readonly inventoryPageSize?: number;
}


/** What populate() makes: shares of the tokens (0..1), as fractions. */
export interface PopulateSpec {
  readonly tokens: number;
  /** Share of the tokens on a user (default 0.6); of those, waiting for a first code (0.05), on a disabled user (0.02), on a deleted one (0.02). */
  readonly assigned?: number;
  readonly pending?: number;
  readonly disabled?: number;
  readonly deleted?: number;
  /** Serials are <prefix>000001 … (default POP). */
  readonly prefix?: string;
  readonly seed?: number;
}

export interface PopulateResult {
  readonly free: string[];
  /** Active devices on enabled users. */
  readonly assigned: Array<{ serialNumber: string; userId: string }>;
  /** Devices waiting for their first code, on enabled users. */
  readonly pending: Array<{ serialNumber: string; userId: string }>;
  readonly disabled: Array<{ serialNumber: string; userId: string }>;
  readonly deleted: Array<{ serialNumber: string; userId: string }>;
}

/** A user id of its own for the i-th populated token (a UUID the sandbox takes as a user). */
function userIdFor(prefix: string, i: number): string {
  const h = createHash('sha256').update(`${prefix}:user:${i}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`.replace(/^00000000/, '10000000');
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
  private readonly devices = new DeviceStore();
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
    // A revoke job with forceUnpair takes the token off its user: the device goes with it.
    this.inventory.onUnpair = (device) => void this.devices.remove(device.userId, device.id);
    this.inventory.deviceOf = (serial) => {
      const d = this.devices.holding(serial);
      return d ? { id: d.id, userId: d.userId } : undefined;
    };
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
    return this.devices.all();
  }

  devicesOf(userId: string): SandboxDevice[] {
    return this.devices.of(userId);
  }

  /** Puts a device on a user behind oath-bulk's back (a token already held). */
  seedDevice(userId: string, serialNumber: string, createdAt = new Date(Date.now() - 86_400_000).toISOString(), status = this.options.activationRequired ? 'ACTIVATION_REQUIRED' : 'ACTIVE'): SandboxDevice {
    const device = this.devices.add(userId, serialNumber, createdAt, status);
    // As an admin's assignment in the console would: the inventory's token is paired to it.
    this.inventory.pair(serialNumber, { id: device.id, userId: device.userId });
    return device;
  }

  /**
   * A lived-in environment (demos, tests, the benchmark): `tokens` imported tokens `<prefix>000001`…,
   * a share of them on users of their own (some devices still waiting for their first code), and
   * some of those users disabled or deleted (their tokens orphaned or freed, as onUserDeleted says).
   * Deterministic for a given seed. Returns what it made, for assertions.
   */
  populate(spec: PopulateSpec): PopulateResult {
    const random = seededRandom(spec.seed ?? 7);
    const prefix = spec.prefix ?? 'POP';
    const result: PopulateResult = { free: [], assigned: [], pending: [], disabled: [], deleted: [] };
    const day = 86_400_000;
    for (let i = 1; i <= spec.tokens; i++) {
      const serialNumber = `${prefix}${String(i).padStart(6, '0')}`;
      const secret = createHash('sha1').update(`${prefix}:${i}:${spec.seed ?? 7}`).digest('hex');
      const [status] = this.inventory.createOne({ serialNumber, secret, type: 'TOTP', otpLength: 6 });
      if (status !== 201) continue;
      if (random() >= (spec.assigned ?? 0.6)) {
        result.free.push(serialNumber);
        continue;
      }
      const userId = userIdFor(prefix, i);
      const pending = random() < (spec.pending ?? 0.05);
      this.seedDevice(userId, serialNumber, new Date(Date.now() - Math.floor(random() * 400) * day).toISOString(), pending ? 'ACTIVATION_REQUIRED' : 'ACTIVE');
      const fate = random();
      const item = { serialNumber, userId };
      if (fate < (spec.deleted ?? 0.02)) result.deleted.push(item);
      else if (fate < (spec.deleted ?? 0.02) + (spec.disabled ?? 0.02)) result.disabled.push(item);
      else if (pending) result.pending.push(item);
      else result.assigned.push(item);
    }
    for (const { userId } of result.disabled) this.disableUser(userId);
    for (const { userId } of result.deleted) this.deleteUser(userId);
    return result;
  }

  removeDevice(userId: string, deviceId: string): boolean {
    const device = this.devices.remove(userId, deviceId);
    if (device) this.inventory.unpair(device.id, device.serialNumber);
    return device !== undefined;
  }

  /** What the device handlers need of the rest of the sandbox, as it is set now. */
  private deviceRules(): DeviceRules {
    return {
      known: (serial) => (this.options.inventory === 'imported' ? this.inventory.has(serial) : !serial.toUpperCase().startsWith(UNKNOWN_SERIAL_PREFIX) && !this.inventory.wasRemoved(serial)),
      maxDevicesPerUser: this.options.maxDevicesPerUser ?? 5,
      activationRequired: this.options.activationRequired === true,
      clockSkewMs: this.options.clockSkewMs ?? 0,
      inventory: this.inventory,
      count: (event) => this.stats[event]++,
    };
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
    if (url.pathname === '/__sandbox/populate' && req.method === 'POST') {
      // Drills: a lived-in environment. Body: {"tokens":n,"assigned"?,"pending"?,"disabled"?,"deleted"?,"prefix"?,"seed"?}.
      const spec = parseJson(body) as PopulateSpec | undefined;
      if (!spec || typeof spec.tokens !== 'number') return this.json(res, 400, { message: 'expected {"tokens": n}' });
      const made = this.populate(spec);
      this.json(res, 200, Object.fromEntries(Object.entries(made).map(([k, v]) => [k, v.length])));
      return;
    }
    if (url.pathname === '/__sandbox/users' && req.method === 'POST') {
      // Drills: people leave and go on leave. Body: [{"userId","deleted"?:true,"disabled"?:true|false}].
      const items = parseJson(body);
      if (Array.isArray(items)) {
        for (const i of items) {
          if (i?.deleted === true) this.deleteUser(String(i.userId));
          if (typeof i?.disabled === 'boolean') this.disableUser(String(i.userId), i.disabled);
        }
      }
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
    if (route.kind === 'token') {
      if (route.env !== this.environmentId) return this.answer(res, 404, pingError('NOT_FOUND', 'Unable to find environment.'));
      const { answer, token } = tokenAnswer(req, body, { clientId: this.clientId, clientSecret: this.clientSecret, ttlS: this.options.tokenTtlS ?? 3600 });
      if (token) {
        this.tokens.set(token, { issuedAt: Date.now(), expiresAt: Date.now() + (this.options.tokenTtlS ?? 3600) * 1000 });
        this.tokensIssued.push(token);
        this.stats.tokensIssued++;
      }
      return this.answer(res, answer[0], answer[1]);
    }

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
    if (this.options.forbidden || (this.options.forbidInventory && route.kind.startsWith('oath'))) {
      return this.answer(res, 403, pingError('ACCESS_FAILED', 'The request could not be completed. You do not have access to this resource.', [{ code: 'INSUFFICIENT_PERMISSIONS', message: 'Actor does not have permissions to access the requested resource.' }]));
    }

    const [status, answer] = this.api(route, req, url, body);
    if (fault === 'lost') {
      req.socket.destroy();
      return;
    }
    if (fault === 'slow' || (route.userId !== undefined && this.options.slowUsers?.includes(route.userId))) await sleep(this.options.slowMs ?? 2000);
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
    if (m && m[2] && method === 'POST') return { kind: 'oathResync', env: m[1]!, deviceId: m[2] };
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

  /** Users deleted (404 from then on) and disabled (`enabled: false`), ids in lower case. */
  private readonly deletedUsers = new Set<string>();
  private readonly disabledUsers = new Set<string>();

  /** A user leaves: deleted from the directory; their tokens orphaned or freed (options.onUserDeleted). */
  deleteUser(userId: string): void {
    const id = userId.toLowerCase();
    this.deletedUsers.add(id);
    // A copy: removeDevice takes each out of the list being walked.
    if ((this.options.onUserDeleted ?? 'orphan') === 'free') for (const d of [...this.devices.of(id)]) this.removeDevice(id, d.id);
  }

  /** A user on leave: `enabled: false`; their devices stay. */
  disableUser(userId: string, disabled = true): void {
    if (disabled) this.disabledUsers.add(userId.toLowerCase());
    else this.disabledUsers.delete(userId.toLowerCase());
  }

  private api(route: Route, req: IncomingMessage, url: URL, body: string): Answer {
    const base = `${this.url}/v1/environments/${route.env}`;
    if (route.kind === 'lookup') return url.searchParams.has('filter') ? lookupAnswer(url, this.users, this.environmentId) : this.directory(url, base);
    if (route.kind.startsWith('oath')) return this.oath(route, req, url, body, base);
    const userId = route.userId!;
    if (!userExists(userId) || this.deletedUsers.has(userId)) return [404, pingError('NOT_FOUND', 'Unable to find user.')];
    const list = this.devices.of(userId);
    const show = (d: SandboxDevice): Record<string, unknown> => this.deviceBody(d);
    switch (route.kind) {
      case 'user': {
        const [status, user] = userAnswer(userId, this.users, base, this.environmentId);
        return [status, { ...(user as object), enabled: !this.disabledUsers.has(userId) }];
      }
      case 'activate': {
        const device = list.find((d) => d.id === route.deviceId);
        if (!device) return [404, pingError('NOT_FOUND', 'Unable to find device.')];
        const type = req.headers['content-type'] ?? '';
        // One URL, three actions, told apart by the content type (PINGONE.md).
        if (/^application\/vnd\.pingidentity\.device\.(un)?block\+json/i.test(type)) return this.devices.block(device, /\.unblock\+/i.test(type), show);
        return this.devices.activate(device, type, body, this.deviceRules(), show);
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
        return this.devices.create(userId, req.headers['content-type'] ?? '', body, this.deviceRules(), show);
      default:
        return [404, pingError('NOT_FOUND', 'The requested resource was not found.')];
    }
  }

  /**
   * GET …/users?limit=N (no filter): the directory in pages, following a cursor — the users
   * --users names and every user who holds a device, deleted ones left out.
   */
  private directory(url: URL, base: string): Answer {
    const ids = new Set<string>([...this.users.map((u) => u.id.toLowerCase()), ...this.devices.all().map((d) => d.userId.toLowerCase())]);
    const all = [...ids].filter((id) => userExists(id) && !this.deletedUsers.has(id)).sort();
    const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get('limit') ?? 100) || 100));
    const start = Number(url.searchParams.get('cursor') ?? 0) || 0;
    const page = all.slice(start, start + limit);
    const next = start + limit < all.length ? `${base}/users?limit=${limit}&cursor=${start + limit}` : undefined;
    return [200, { _links: { self: { href: `${base}/users` }, ...(next ? { next: { href: next } } : {}) }, _embedded: { users: page.map((id) => ({ ...(userAnswer(id, this.users, base, this.environmentId)[1] as object), enabled: !this.disabledUsers.has(id) })) }, count: all.length, size: page.length }];
  }

  private oath(route: Route, req: IncomingMessage, url: URL, body: string, base: string): Answer {
    const type = req.headers['content-type'] ?? '';
    switch (route.kind) {
      case 'oathCreate':
        if (!/^application\/json/i.test(type)) return wrongType('application/json');
        return this.inventory.createOne(parseJsonExact(body));
      case 'oathJob':
        if (/^application\/vnd\.pingidentity\.job\.oathtokens\.revoke\+json/i.test(type)) return this.inventory.revokeJob(parseJsonExact(body), base);
        if (!/^application\/vnd\.pingidentity\.job\.oathtokens\.create\+json/i.test(type)) return wrongType('application/vnd.pingidentity.job.oathtokens.create+json');
        return this.inventory.createJob(parseJsonExact(body), base);
      case 'oathResync':
        return this.inventory.resync(route.deviceId!, type, parseJsonExact(body));
      case 'oathJobStatus':
        return this.inventory.jobStatus(route.deviceId!, base);
      case 'oathList':
        return this.inventory.list(url, base, this.options.inventory === 'imported' ? undefined : {
          known: (serial) => /^[A-Za-z0-9]{1,50}$/.test(serial) && !serial.toUpperCase().startsWith(UNKNOWN_SERIAL_PREFIX),
          paired: () => this.devices.paired(),
        }, this.options.expandDevices, this.options.inventoryPageSize);
      case 'oathDelete':
        return this.inventory.remove(route.deviceId!);
      default:
        return [404, pingError('NOT_FOUND', 'The requested resource was not found.')];
    }
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

export type { FaultKind };
