/**
 * Typed PingOne calls. Knows HTTP and PingOne's shapes; knows nothing of CSV rows.
 * Every failure leaves as an ApiError whose `verdict` tells the engine what to do.
 */
import { randomUUID } from 'node:crypto';
import type { Connection } from './connection.js';
import { UUID_RE } from '../ids.js';
import { StopError } from '../errors.js';
import type { TokenProvider } from './auth.js';
import { ApiError, failureFromBody } from './errors.js';
import type { RequestGate, RequestStats } from './gate.js';
import { RequestAborted, type HttpAnswer, type Transport } from './http.js';

export interface Device {
  readonly id: string;
  readonly type: string;
  readonly status: string;
  readonly serialNumber?: string;
  readonly createdAt?: string;
}

export interface User {
  readonly id: string;
  readonly username?: string;
  readonly email?: string;
  /** false: the user exists but cannot sign in (PINGONE.md "Users"); absent when PingOne does not say. */
  readonly enabled?: boolean;
}

type CallKind = 'create' | 'list' | 'delete' | 'lookup' | 'activate' | 'inventory' | 'job' | 'poll';

export interface CallOptions {
  /** Cuts the request, even in flight (the hard stop). */
  readonly signal?: AbortSignal;
  /** Once aborted, a request that has not been sent yet is not sent (the soft stop). */
  readonly notAfter?: AbortSignal;
  /** Sent as X-Ping-External-Transaction-ID so PingOne's logs join ours. */
  readonly correlationId?: string;
  /** Awaited after the request's turn comes and before it is written (the journal's start). */
  readonly beforeSend?: () => Promise<void>;
}

export interface DeviceApi {
  createOathDevice(userId: string, serialNumber: string, options?: CallOptions): Promise<Device>;
  listDevices(userId: string, options?: CallOptions): Promise<Device[]>;
  deleteDevice(userId: string, deviceId: string, options?: CallOptions): Promise<void>;
  findUsers(attribute: 'email' | 'username', value: string, options?: CallOptions): Promise<User[]>;
}

/** What activation and the preflight need besides devices. */
export interface UserDeviceApi {
  /** The user, or undefined when PingOne answers 404 (no such user). */
  getUser(userId: string, options?: CallOptions): Promise<User | undefined>;
  /** Activates an ACTIVATION_REQUIRED device with a code from its token (PINGONE.md "Device activation"). */
  activateDevice(userId: string, deviceId: string, otp: string, options?: CallOptions): Promise<Device>;
}

export interface ClientOptions {
  readonly connection: Connection;
  readonly transport: Transport;
  readonly tokens: TokenProvider;
  readonly gate: RequestGate;
  readonly stats: RequestStats;
  readonly timeoutMs: number;
  /**
   * --concurrency: a request takes its slot before its turn at the pacer and keeps it until
   * answered, so that a turn granted is a request written at once (never a queue of granted
   * turns that leaves in a burst when slots free up), and a journal start is only recorded
   * for a request about to be written.
   */
  readonly slots?: <T>(work: () => Promise<T>) => Promise<T>;
}

/** What a PingOne device id may look like before it goes into a URL. */
export const DEVICE_ID_RE = /^[A-Za-z0-9-]{1,64}$/;

/** SCIM filter string literal: backslashes and quotes escaped (PINGONE.md "Other endpoints"). */
export function scimString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export class PingOneClient implements DeviceApi, UserDeviceApi {
  private readonly envBase: string;

  constructor(private readonly options: ClientOptions) {
    this.envBase = `${options.connection.apiUrl}/environments/${encodeURIComponent(options.connection.environmentId)}`;
  }

  /**
   * The only way a user id reaches a URL: it must be a UUID, then it is encoded anyway.
   * No input can make a request leave /environments/{env}/users/{user}/devices.
   */
  devicesUrl(userId: string, deviceId?: string): string {
    if (!UUID_RE.test(userId)) throw new TypeError(`not a user id: ${JSON.stringify(userId.slice(0, 60))}`);
    if (deviceId !== undefined && !DEVICE_ID_RE.test(deviceId)) throw new TypeError(`not a device id: ${JSON.stringify(deviceId.slice(0, 60))}`);
    const base = `${this.envBase}/users/${encodeURIComponent(userId)}/devices`;
    return deviceId === undefined ? base : `${base}/${encodeURIComponent(deviceId)}`;
  }

  async createOathDevice(userId: string, serialNumber: string, options: CallOptions = {}): Promise<Device> {
    const answer = await this.call('create', 'POST', this.devicesUrl(userId), options, JSON.stringify({ type: 'OATH_TOKEN', serialNumber }));
    if (answer.status === 201 || answer.status === 200) {
      const device = toDevice(answer.body);
      if (device) return device;
    }
    throw this.failure(answer);
  }

  async listDevices(userId: string, options: CallOptions = {}): Promise<Device[]> {
    const answer = await this.call('list', 'GET', `${this.devicesUrl(userId)}?limit=100`, options);
    if (answer.status === 200) {
      const embedded = (answer.body as { _embedded?: { devices?: unknown[] } } | undefined)?._embedded?.devices;
      if (Array.isArray(embedded)) return embedded.map(toDevice).filter((d): d is Device => d !== undefined);
    }
    throw this.failure(answer);
  }

  async deleteDevice(userId: string, deviceId: string, options: CallOptions = {}): Promise<void> {
    const answer = await this.call('delete', 'DELETE', this.devicesUrl(userId, deviceId), options);
    if (answer.status === 204 || answer.status === 200) return;
    throw this.failure(answer);
  }

  /**
   * Blocks a device (POST …/devices/{id}, device.block+json, empty body): it can no longer be
   * used to sign in, and stays on the user (a lost token's device, before its replacement is in place).
   */
  async blockDevice(userId: string, deviceId: string, options: CallOptions = {}): Promise<void> {
    const answer = await this.call('activate', 'POST', this.devicesUrl(userId, deviceId), options, '', 'application/vnd.pingidentity.device.block+json');
    if (answer.status >= 200 && answer.status < 300) return;
    throw this.failure(answer);
  }

  async findUsers(attribute: 'email' | 'username', value: string, options: CallOptions = {}): Promise<User[]> {
    const filter = `${attribute} eq ${scimString(value)}`;
    const url = `${this.envBase}/users?filter=${encodeURIComponent(filter)}&limit=2`;
    const answer = await this.call('lookup', 'GET', url, options);
    if (answer.status === 200) {
      const users = (answer.body as { _embedded?: { users?: unknown[] } } | undefined)?._embedded?.users;
      if (Array.isArray(users)) {
        return users.map(toUser).filter((u): u is User => u !== undefined);
      }
    }
    throw this.failure(answer);
  }

  async getUser(userId: string, options: CallOptions = {}): Promise<User | undefined> {
    if (!UUID_RE.test(userId)) throw new TypeError(`not a user id: ${JSON.stringify(userId.slice(0, 60))}`);
    const answer = await this.call('lookup', 'GET', `${this.envBase}/users/${encodeURIComponent(userId)}`, options);
    const user = answer.status === 200 ? toUser(answer.body) : undefined;
    if (user) return user;
    if (answer.status === 404) return undefined;
    throw this.failure(answer);
  }

  /** The code is sent in the body only; it never reaches a log. */
  async activateDevice(userId: string, deviceId: string, otp: string, options: CallOptions = {}): Promise<Device> {
    const answer = await this.call('activate', 'POST', this.devicesUrl(userId, deviceId), options, JSON.stringify({ otp }), 'application/vnd.pingidentity.device.activate+json');
    if (answer.status === 200 || answer.status === 201) {
      const device = toDevice(answer.body);
      if (device) return device;
    }
    throw this.failure(answer);
  }

  // --- the OATH token inventory (PINGONE.md "OATH token inventory") -----------------------

  /** POST /oathTokens: one token; the secret goes in the body and nowhere else. */
  async createOathToken(token: OathTokenBody, options: CallOptions = {}): Promise<InventoryEntry> {
    const answer = await this.call('inventory', 'POST', `${this.envBase}/oathTokens`, options, jsonBody(token));
    if (answer.status === 201 || answer.status === 200) {
      const entry = toInventoryEntry(answer.body);
      if (entry) return entry;
    }
    throw this.failure(answer);
  }

  /** POST /oathJobs: a batch create; resolves with the job's id. */
  async createOathJob(tokens: readonly OathTokenBody[], options: CallOptions = {}): Promise<string> {
    const body = jsonBody({ type: 'CREATE_OATH_TOKENS', tokens });
    const answer = await this.call('job', 'POST', `${this.envBase}/oathJobs`, options, body, 'application/vnd.pingidentity.job.oathtokens.create+json');
    const id = (answer.body as { id?: unknown } | undefined)?.id;
    if (answer.status >= 200 && answer.status < 300 && typeof id === 'string' && DEVICE_ID_RE.test(id)) return id;
    throw this.failure(answer);
  }

  /**
   * POST /oathJobs (…oathtokens.revoke+json): revokes the tokens by id, unpairing those paired
   * (forceUnpair: what PingOne does without it is unconfirmed). Resolves with the job's id.
   */
  async createRevokeJob(tokenIds: readonly string[], options: CallOptions = {}): Promise<string> {
    const body = JSON.stringify({ type: 'REVOKE_OATH_TOKENS', async: true, forceUnpair: true, tokenIds });
    const answer = await this.call('job', 'POST', `${this.envBase}/oathJobs`, options, body, 'application/vnd.pingidentity.job.oathtokens.revoke+json');
    const id = (answer.body as { id?: unknown } | undefined)?.id;
    if (answer.status >= 200 && answer.status < 300 && typeof id === 'string' && DEVICE_ID_RE.test(id)) return id;
    throw this.failure(answer);
  }

  /**
   * POST /oathTokens/{id} (device.resync+json): two consecutive codes read off a drifted token.
   * The codes travel in the body and nowhere else; a 400 is a wrong pair.
   */
  async resyncToken(tokenId: string, otps: readonly [string, string], options: CallOptions = {}): Promise<void> {
    if (!DEVICE_ID_RE.test(tokenId)) throw new TypeError('not a token id');
    const answer = await this.call('activate', 'POST', `${this.envBase}/oathTokens/${encodeURIComponent(tokenId)}`, options, JSON.stringify({ otps }), 'application/vnd.pingidentity.device.resync+json');
    if (answer.status >= 200 && answer.status < 300) return;
    throw this.failure(answer);
  }

  /** GET /oathJobs/{id}: its status, and when DONE the count created and the duplicates. */
  async getOathJob(id: string, options: CallOptions = {}): Promise<OathJob> {
    if (!DEVICE_ID_RE.test(id)) throw new TypeError('not a job id');
    const answer = await this.call('poll', 'GET', `${this.envBase}/oathJobs/${encodeURIComponent(id)}`, options);
    if (answer.status === 200 && typeof answer.body === 'object' && answer.body !== null) {
      const b = answer.body as { status?: unknown; reason?: unknown; result?: { created?: unknown; duplicates?: unknown; revoked?: unknown } };
      return {
        status: typeof b.status === 'string' ? b.status : 'UNKNOWN',
        reason: typeof b.reason === 'string' ? b.reason.slice(0, 500) : undefined,
        created: typeof b.result?.created === 'number' ? b.result.created : undefined,
        revoked: typeof b.result?.revoked === 'number' ? b.result.revoked : undefined,
        duplicates: Array.isArray(b.result?.duplicates) ? b.result.duplicates.filter((d): d is string => typeof d === 'string') : [],
      };
    }
    throw this.failure(answer);
  }

  /**
   * The inventory's token of that serial, with the device it is paired to (one filtered read,
   * following `next` should PingOne page it); undefined when the inventory does not hold it.
   */
  async oathToken(serial: string, options: CallOptions = {}): Promise<InventoryEntry | undefined> {
    let url: string | undefined = `${this.envBase}/oathTokens?filter=${encodeURIComponent(`serialNumber eq ${scimString(serial)}`)}&expand=devices`;
    while (url) {
      const page = await this.page('inventory', url, 'oathTokens', options);
      const found = page.items.map(toInventoryEntry).find((e) => e?.serialNumber === serial);
      if (found) return found;
      if (page.refused) throw page.refused;
      url = page.next;
    }
    return undefined;
  }

  /**
   * One page of the inventory at a time, one request per call: a caller that
   * retries a page asks for that page again (`next`, the cursor PingOne gave), never from the start.
   */
  async oathTokensPage(url: string | undefined, options: CallOptions = {}): Promise<{ entries: InventoryEntry[]; next?: string; count?: number; refused?: StopError }> {
    const page = await this.page('inventory', url ?? `${this.envBase}/oathTokens?limit=1000&expand=devices`, 'oathTokens', options);
    return { entries: page.items.map(toInventoryEntry).filter((e): e is InventoryEntry => e !== undefined), next: page.next, count: page.count, refused: page.refused };
  }

  /** One page of the directory (GET …/users?limit=1000; PINGONE.md "Users"), as oathTokensPage. */
  async usersPage(url: string | undefined, options: CallOptions = {}): Promise<{ users: User[]; next?: string; count?: number; refused?: StopError }> {
    const page = await this.page('lookup', url ?? `${this.envBase}/users?limit=1000`, 'users', options);
    return { users: page.items.map(toUser).filter((u): u is User => u !== undefined), next: page.next, count: page.count, refused: page.refused };
  }

  /**
   * A collection's page: its items, the next page's URL (only ever on the same API host), and
   * `count` when PingOne gives it. `refused`: the page names a next page this client does not
   * follow (nextPage) — the items are good, the listing ends there, and the caller must not take
   * it for the whole.
   */
  private async page(kind: CallKind, url: string, name: string, options: CallOptions): Promise<{ items: unknown[]; next?: string; count?: number; refused?: StopError }> {
    const origin = new URL(this.envBase).origin;
    if (new URL(url, origin).origin !== origin) throw new TypeError('a page link leaves the API host');
    const answer = await this.call(kind, 'GET', new URL(url, origin).toString(), options);
    if (answer.status !== 200) throw this.failure(answer);
    const b = answer.body as { _embedded?: Record<string, unknown>; _links?: { next?: { href?: unknown } }; count?: unknown } | undefined;
    const items = b?._embedded?.[name];
    const href = b?._links?.next?.href;
    const next = typeof href === 'string' ? this.nextPage(href, url) : undefined;
    return { items: Array.isArray(items) ? items : [], next: typeof next === 'string' ? next : undefined, refused: next instanceof StopError ? next : undefined, count: typeof b?.count === 'number' ? b.count : undefined };
  }

  /**
   * Where the next page is read. The access token never leaves the API host: a link there is
   * followed; a link to the same collection on another host (a gateway, a custom domain in front
   * of PingOne) is followed on ours, cursor and all; any other link ends the listing with an
   * error — never silently, which would pass a short listing off as the whole.
   */
  private nextPage(href: string, asked: string): string | StopError {
    const origin = new URL(this.envBase).origin;
    const next = new URL(href, origin);
    if (next.origin === origin) return next.toString();
    if (next.pathname === new URL(asked, origin).pathname) return new URL(`${next.pathname}${next.search}`, origin).toString();
    return new StopError('PAGE_LINK_REFUSED', `PingOne's link to the next page of ${new URL(asked, origin).pathname.split('/').pop()} is on ${next.host}, not the API host ${new URL(origin).host}: not followed (the access token goes to the API host only), so the listing is incomplete; check --api-url (a gateway in front of PingOne must pass its links through unchanged)`);
  }

  private failure(answer: HttpAnswer): Error {
    if (answer.status >= 200 && answer.status < 300) {
      return new ApiError({ status: answer.status, message: `unexpected answer (HTTP ${answer.status}) without the expected body`, maybeSent: true });
    }
    const error = new ApiError(failureFromBody(answer.status, answer.body, answer.retryAfterMs));
    if (error.verdict.kind === 'systemic') return new StopError(error.verdict.code, systemicMessage(error, this.options.connection));
    return error;
  }

  /**
   * One paced request. A 401 gets the token that replaced the rejected one — refreshed once
   * for the whole burst — and the request is sent again; only a freshly issued token that is
   * rejected too stops the run (PINGONE.md: "a second 401 is fatal").
   */
  private async call(kind: CallKind, method: 'GET' | 'POST' | 'DELETE', url: string, options: CallOptions, body?: string, contentType?: string): Promise<HttpAnswer> {
    let sent = await this.send(kind, method, url, undefined, options, body, contentType);
    for (let tries = 0; sent.answer.status === 401; tries++) {
      const next = await this.options.tokens.replacement(sent.token);
      if (tries >= 2) break;
      sent = await this.send(kind, method, url, next.token, options, body, contentType);
      if (sent.answer.status === 401 && next.fresh) break;
    }
    if (sent.answer.status === 401) {
      throw new StopError('ACCESS_TOKEN_REJECTED', 'PingOne rejected a freshly issued access token (401 twice): check the worker app is enabled and its roles; then rerun');
    }
    return sent.answer;
  }

  /**
   * Waits for the pacer first and takes the token after: a token taken before a wait in the
   * pacer could expire in that wait.
   */
  private send(kind: CallKind, method: string, url: string, token: string | undefined, options: CallOptions, body?: string, contentType?: string): Promise<{ answer: HttpAnswer; token: string }> {
    const slots = this.options.slots;
    const now = (): Promise<{ answer: HttpAnswer; token: string }> => this.sendNow(kind, method, url, token, options, body, contentType);
    return slots ? slots(now) : now();
  }

  private async sendNow(kind: CallKind, method: string, url: string, token: string | undefined, options: CallOptions, body?: string, contentType = 'application/json'): Promise<{ answer: HttpAnswer; token: string }> {
    const { gate, stats, transport, timeoutMs, tokens } = this.options;
    if (options.notAfter?.aborted) throw new RequestAborted(false);
    const sentAt = await gate.acquire(options.signal);
    const bearer = token ?? (await tokens.token());
    const headers: Record<string, string> = {
      authorization: `Bearer ${bearer}`,
      accept: 'application/json',
      'x-ping-external-transaction-id': (options.correlationId ?? randomUUID()).slice(0, 100),
    };
    if (body !== undefined) headers['content-type'] = contentType;
    if (options.notAfter?.aborted) throw new RequestAborted(false);
    await options.beforeSend?.();
    stats.total++;
    stats[kind]++;
    try {
      const answer = await transport({ method: method as 'GET', url, headers, body, signal: options.signal, startSignal: options.notAfter, timeoutMs, onWritten: () => gate.sent?.(sentAt) });
      if (answer.status === 429) {
        stats.rateLimited++;
        gate.rateLimited(answer.retryAfterMs, sentAt);
      } else gate.answered();
      return { answer, token: bearer };
    } catch (error) {
      if (error instanceof ApiError && error.verdict.kind === 'systemic') {
        throw new StopError(error.verdict.code, `${error.message} (${new URL(url).origin})`);
      }
      throw error;
    }
  }
}

/** A token as sent to PingOne (PINGONE.md): the secret as hex. */
export interface OathTokenBody {
  readonly serialNumber: string;
  readonly secret: string;
  readonly type: 'HOTP' | 'TOTP';
  readonly otpLength: number;
  readonly hashAlgorithm?: string;
  /** RFC 4226's counter is 64 bits: a bigint, written into the JSON as its digits (jsonBody). */
  readonly hotp?: { readonly counter: bigint };
  readonly totp?: { readonly timeStep: number };
}

export interface InventoryEntry {
  readonly id: string;
  readonly serialNumber: string;
  /** HOTP or TOTP, and the code length, when PingOne says. */
  readonly type?: string;
  readonly otpLength?: number;
  /** The device the token is paired to, and its user. */
  readonly device?: { readonly id: string; readonly userId?: string };
  /** When PingOne says the token was put in the inventory. */
  readonly createdAt?: string;
}

export interface OathJob {
  readonly status: string;
  readonly reason?: string;
  readonly created?: number;
  /** A revoke job: how many tokens it revoked. */
  readonly revoked?: number;
  readonly duplicates: readonly string[];
}

/**
 * JSON text in which a bigint is written as its digits: a HOTP counter past 2^53 would lose
 * digits as a JavaScript number (SEEDS.md "Integrity"), and JSON.stringify refuses bigints.
 */
export function jsonBody(value: unknown): string {
  const marks: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'bigint') return v;
    marks.push(v.toString());
    return `\u0000bigint${marks.length - 1}\u0000`;
  });
  return marks.length === 0 ? text : text.replace(/"\\u0000bigint(\d+)\\u0000"/g, (_m, i: string) => marks[Number(i)]!);
}

function toInventoryEntry(value: unknown): InventoryEntry | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v['id'] !== 'string' || typeof v['serialNumber'] !== 'string') return undefined;
  // expand=devices: HAL's `_embedded.devices[]` or a plain `devices[]` (PINGONE.md: unconfirmed).
  const embedded = (v['_embedded'] as { devices?: unknown } | undefined)?.devices;
  const devices = Array.isArray(embedded) ? embedded : Array.isArray(v['devices']) ? v['devices'] : undefined;
  const d = devices?.find((x): x is Record<string, unknown> => typeof x === 'object' && x !== null);
  const userId = (d?.['user'] as { id?: unknown } | undefined)?.id;
  return {
    id: v['id'],
    serialNumber: v['serialNumber'],
    type: typeof v['type'] === 'string' ? v['type'] : undefined,
    otpLength: typeof v['otpLength'] === 'number' ? v['otpLength'] : undefined,
    device: d && typeof d['id'] === 'string' ? { id: d['id'], userId: typeof userId === 'string' ? userId : undefined } : undefined,
    createdAt: typeof v['createdAt'] === 'string' ? v['createdAt'] : undefined,
  };
}

function toUser(value: unknown): User | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const u = value as Record<string, unknown>;
  if (typeof u['id'] !== 'string') return undefined;
  return { id: u['id'], username: typeof u['username'] === 'string' ? u['username'] : undefined, email: typeof u['email'] === 'string' ? u['email'] : undefined, enabled: typeof u['enabled'] === 'boolean' ? u['enabled'] : undefined };
}

function toDevice(value: unknown): Device | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v['id'] !== 'string') return undefined;
  return {
    id: v['id'],
    type: String(v['type'] ?? ''),
    status: String(v['status'] ?? ''),
    serialNumber: typeof v['serialNumber'] === 'string' ? v['serialNumber'] : undefined,
    createdAt: typeof v['createdAt'] === 'string' ? v['createdAt'] : undefined,
  };
}

/** What a systemic refusal means and what the operator does about it. */
function systemicMessage(error: ApiError, connection: Connection): string {
  const said = `PingOne answered ${error.status} ${error.detail}`;
  if (error.verdict.kind === 'systemic' && error.verdict.code === 'LICENSE_EXCEEDED') {
    return `${said}: the license does not allow this; contact your Ping Identity account team`;
  }
  return `${said}: the worker app needs a role that can manage MFA devices (Identity Data Admin, or a custom role with device permissions) on environment ${connection.environmentId}; grant it, then rerun`;
}
