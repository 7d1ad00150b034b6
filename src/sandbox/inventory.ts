/**
 * The sandbox's OATH token inventory (PINGONE.md "OATH token inventory"): tokens created one by
 * one or through batch jobs that finish after a delay, looked up by serial, listed in pages
 * with a cursor, with the devices they are paired to; duplicates reported as PingOne does.
 * The secret is taken and never returned.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { invalidData, pingError, wrongType, type Answer } from './answers.js';

/** HOTP codes accepted ahead of the token's counter (look-ahead, RFC 4226 §7.4). */
export const ACTIVATION_HOTP_WINDOW = 10;

export interface InventoryToken {
  readonly id: string;
  readonly serialNumber: string;
  readonly type: 'HOTP' | 'TOTP';
  readonly otpLength: number;
  readonly hashAlgorithm: string;
  readonly timeStep?: number;
  /** HOTP: the next counter value the token's codes are expected from (moves as codes are used); 64-bit, exact. */
  counter?: bigint;
  /** Kept to check activation codes; never returned by the API. */
  readonly secretHex: string;
  readonly createdAt: string;
  device?: { readonly id: string; readonly userId: string };
  /** TOTP: how many steps the token's clock runs ahead of ours (negative: behind), learnt by a resync. */
  driftSteps?: number;
}

/** How far a resync looks for the two codes: HOTP counters ahead, TOTP steps either way (± 20 minutes at 30 s). */
export const RESYNC_HOTP_WINDOW = 100;
export const RESYNC_TOTP_STEPS = 40;

export interface InventoryOptions {
  /** Tokens a job may hold (PingOne's own limit is unconfirmed: make it a setting). */
  readonly jobSizeLimit: number;
  /** How long a job stays IN_PROGRESS, in ms. */
  readonly jobDelayMs: number;
  /** A job holding any of these serials FAILS whole (a drill for isolating bad tokens). */
  readonly failJobSerials: ReadonlySet<string>;
}

/**
 * A batch create. Its tokens are created when it finishes, not when it is accepted: a client
 * that reads the inventory while a job runs does not find them yet (PINGONE.md: poll until DONE).
 */
export interface Job {
  readonly id: string;
  readonly doneAt: number;
  /** CREATE_OATH_TOKENS or REVOKE_OATH_TOKENS. */
  readonly type: 'CREATE_OATH_TOKENS' | 'REVOKE_OATH_TOKENS';
  readonly tokens: readonly InventoryToken[];
  /** A revoke job: the token ids it names, and whether paired tokens are unpaired. */
  readonly tokenIds?: readonly string[];
  readonly forceUnpair?: boolean;
  status: 'IN_PROGRESS' | 'DONE' | 'FAILED';
  reason?: string;
  created: number;
  duplicates: string[];
  revoked?: number;
}


/**
 * How `expand=devices` shows a paired token's device (PINGONE.md: unconfirmed): HAL's
 * `_embedded.devices[]`, a plain `devices[]`, or not at all (a server that ignores the expansion).
 */
export type ExpandShape = 'embedded' | 'plain' | 'ignored';

const SERIAL_RE = /^[A-Za-z0-9]{1,50}$/;
/** An environment holds at most this many tokens (PINGONE.md). */
export const INVENTORY_CAP = 100_000;

function invalid(message: string, target = 'serialNumber', code = 'INVALID_VALUE'): Answer {
  return invalidData([{ code, target, message }]);
}

export class OathInventory {
  private readonly bySerial = new Map<string, InventoryToken>();
  private readonly byId = new Map<string, InventoryToken>();
  private readonly jobs = new Map<string, Job>();
  /** Tokens created, one by one or in jobs (for assertions). */
  created = 0;
  /**
   * Serials taken out of the inventory (revoked, deleted) and not imported since: the open
   * inventory, which stands in a token for any serial, no longer does for these.
   */
  private readonly removed = new Set<string>();
  /** Serials named in revoke jobs, and how many jobs named each (for assertions: nothing revoked twice). */
  readonly revokesSent = new Map<string, number>();

  /** The device already holding a serial, if any (set by the server): a token imported after it is paired to it, as PingOne shows it. */
  deviceOf: (serial: string) => { readonly id: string; readonly userId: string } | undefined = () => undefined;

  /** Called when a revoke unpairs a token: the user's device goes (set by the server). */
  onUnpair: (device: { readonly id: string; readonly userId: string }) => void = () => undefined;

  constructor(public options: InventoryOptions) {}

  has(serial: string): boolean {
    this.finishJobs();
    return this.bySerial.has(serial);
  }

  get(serial: string): InventoryToken | undefined {
    this.finishJobs();
    return this.bySerial.get(serial);
  }

  all(): InventoryToken[] {
    this.finishJobs();
    return [...this.bySerial.values()];
  }

  /** The HOTP counter as PingOne holds it, digit for digit (a JSON number past 2^53 would not be). */
  counterText(serial: string): string | undefined {
    return this.get(serial)?.counter?.toString();
  }

  /** Jobs whose time has come create their tokens now: what is present then is a duplicate. */
  private finishJobs(now = Date.now()): void {
    for (const job of this.jobs.values()) {
      if (job.status !== 'IN_PROGRESS' || now < job.doneAt) continue;
      if (job.type === 'REVOKE_OATH_TOKENS') {
        job.revoked = 0;
        for (const id of job.tokenIds ?? []) {
          const token = this.byId.get(id);
          if (!token) continue;
          // What PingOne does with a paired token and forceUnpair false is unconfirmed: here it stays.
          if (token.device && !job.forceUnpair) continue;
          if (token.device) this.onUnpair(token.device);
          this.byId.delete(id);
          this.bySerial.delete(token.serialNumber);
          this.removed.add(token.serialNumber);
          job.revoked++;
        }
        job.status = 'DONE';
        continue;
      }
      const failing = job.tokens.find((t) => this.options.failJobSerials.has(t.serialNumber));
      if (failing) {
        job.status = 'FAILED';
        job.reason = `Token ${failing.serialNumber} could not be created.`;
        continue;
      }
      for (const token of job.tokens) {
        if (this.bySerial.has(token.serialNumber)) job.duplicates.push(token.serialNumber);
        else {
          this.add(token);
          job.created++;
        }
      }
      job.status = 'DONE';
    }
  }

  pair(serial: string, device: { id: string; userId: string }): void {
    const token = this.bySerial.get(serial);
    if (token) token.device = device;
  }

  /** The device is gone: its token (by serial, the device's own) is free again. */
  unpair(deviceId: string, serial?: string): void {
    const token = serial === undefined ? undefined : this.bySerial.get(serial);
    if (token) {
      if (token.device?.id === deviceId) token.device = undefined;
      return;
    }
    for (const t of this.bySerial.values()) if (t.device?.id === deviceId) t.device = undefined;
  }

  /**
   * Whether `otp` is the token's code: HOTP at its counter or up to ACTIVATION_HOTP_WINDOW - 1
   * ahead (the counter then moves past the code used); TOTP at the current step ± 1. The
   * sandbox computes codes itself (RFC 4226 §5.3), independently of oath-bulk's own.
   */
  checkCode(token: InventoryToken, otp: string, now = Date.now()): boolean {
    if (token.type === 'HOTP') {
      const from = token.counter ?? 0n;
      for (let c = from; c < from + BigInt(ACTIVATION_HOTP_WINDOW); c++) {
        if (this.codeAt(token, c) === otp) {
          token.counter = c + 1n;
          return true;
        }
      }
      return false;
    }
    const step = Math.floor(now / 1000 / (token.timeStep ?? 30)) + (token.driftSteps ?? 0);
    return [step - 1, step, step + 1].some((s) => this.codeAt(token, BigInt(s)) === otp);
  }

  /** Checks one token body; returns the token or PingOne's 400. */
  private build(body: unknown): InventoryToken | Answer {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const serial = b['serialNumber'];
    if (typeof serial !== 'string' || !SERIAL_RE.test(serial)) return invalid('serialNumber must be 1-50 letters and digits');
    const secret = b['secret'];
    if (typeof secret !== 'string' || !/^(?:[0-9a-fA-F]{2}){1,100}$/.test(secret)) return invalid('secret must be hex of at most 200 characters', 'secret');
    const type = b['type'];
    if (type !== 'HOTP' && type !== 'TOTP') return invalid('type must be HOTP or TOTP', 'type');
    const otpLength = b['otpLength'] ?? 6;
    if (otpLength !== 6 && otpLength !== 8) return invalid('otpLength must be 6 or 8', 'otpLength');
    const hash = b['hashAlgorithm'] ?? 'HmacSHA1';
    if (hash !== 'HmacSHA1' && hash !== 'HmacSHA256' && hash !== 'HmacSHA512') return invalid('unsupported hashAlgorithm', 'hashAlgorithm');
    if (type === 'HOTP' && hash !== 'HmacSHA1') return invalid('HOTP tokens use HmacSHA1', 'hashAlgorithm');
    const totp = (b['totp'] ?? {}) as Record<string, unknown>;
    const hotp = (b['hotp'] ?? {}) as Record<string, unknown>;
    const timeStep = type === 'TOTP' ? (totp['timeStep'] ?? 30) : undefined;
    if (type === 'TOTP' && timeStep !== 30 && timeStep !== 60) return invalid('timeStep must be 30 or 60', 'totp.timeStep');
    // The sandbox's JSON reader keeps a long counter's digits as text (parseJsonExact).
    const counterText = String(hotp['counter'] ?? 0);
    if (type === 'HOTP' && (!/^\d{1,20}$/.test(counterText) || BigInt(counterText) >= 2n ** 64n)) return invalid('hotp.counter must be a whole number from 0 to 2^64 - 1', 'hotp.counter');
    const counter = type === 'HOTP' ? BigInt(counterText) : undefined;
    return {
      id: randomUUID(),
      serialNumber: serial,
      type,
      otpLength: otpLength as number,
      hashAlgorithm: hash as string,
      timeStep: timeStep as number | undefined,
      counter,
      secretHex: secret.toLowerCase(),
      createdAt: new Date().toISOString(),
    };
  }

  /** The serial was taken out of the inventory and not imported since. */
  wasRemoved(serial: string): boolean {
    return this.removed.has(serial);
  }

  private add(token: InventoryToken): void {
    this.removed.delete(token.serialNumber);
    token.device ??= this.deviceOf(token.serialNumber);
    this.bySerial.set(token.serialNumber, token);
    this.byId.set(token.id, token);
    this.created++;
  }

  /** POST /oathTokens */
  createOne(body: unknown): Answer {
    this.finishJobs();
    const token = this.build(body);
    if (Array.isArray(token)) return token;
    if (this.options.failJobSerials.has(token.serialNumber)) return invalid(`Token ${token.serialNumber} could not be created: its secret is rejected by the token vendor's profile.`, 'secret');
    if (this.bySerial.has(token.serialNumber)) return invalid(`An OATH token with serial number ${token.serialNumber} already exists.`, 'serialNumber', 'UNIQUENESS_VIOLATION');
    if (this.bySerial.size >= INVENTORY_CAP) return invalid(`The environment holds the most OATH tokens allowed (${INVENTORY_CAP}).`, 'tokens', 'LIMIT_EXCEEDED');
    this.add(token);
    return [201, this.body(token, 'ignored')];
  }

  /** POST /oathJobs: the tokens are created when the job finishes (or none, if it fails). */
  createJob(body: unknown, base: string): Answer {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    if (b['type'] !== 'CREATE_OATH_TOKENS' || !Array.isArray(b['tokens'])) return invalid('expected {"type":"CREATE_OATH_TOKENS","tokens":[…]}', 'type');
    const tokens = b['tokens'] as unknown[];
    if (tokens.length === 0 || tokens.length > this.options.jobSizeLimit) return invalid(`a job holds 1 to ${this.options.jobSizeLimit} tokens`, 'tokens', 'SIZE_LIMIT_EXCEEDED');
    const built: InventoryToken[] = [];
    for (const t of tokens) {
      const token = this.build(t);
      if (Array.isArray(token)) return token;
      built.push(token);
    }
    const id = randomUUID();
    this.jobs.set(id, { id, type: 'CREATE_OATH_TOKENS', doneAt: Date.now() + this.options.jobDelayMs, tokens: built, status: 'IN_PROGRESS', created: 0, duplicates: [] });
    return [202, this.jobBody(this.jobs.get(id)!, base)];
  }

  /**
   * POST /oathJobs (…oathtokens.revoke+json): `{"type":"REVOKE_OATH_TOKENS","async":true,
   * "forceUnpair":true,"tokenIds":[…]}`. When the job finishes its tokens leave the inventory
   * (PingOne keeps no revoked state: the serial can be imported again); a paired token is
   * unpaired first, its user's device gone, with forceUnpair.
   */
  revokeJob(body: unknown, base: string): Answer {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const ids = b['tokenIds'];
    if (b['type'] !== 'REVOKE_OATH_TOKENS' || !Array.isArray(ids) || !ids.every((i) => typeof i === 'string')) return invalid('expected {"type":"REVOKE_OATH_TOKENS","tokenIds":[…]}', 'type');
    if (ids.length === 0 || ids.length > this.options.jobSizeLimit) return invalid(`a job holds 1 to ${this.options.jobSizeLimit} tokens`, 'tokenIds', 'SIZE_LIMIT_EXCEEDED');
    for (const tokenId of ids as string[]) {
      const serial = this.byId.get(tokenId)?.serialNumber ?? `id:${tokenId}`;
      this.revokesSent.set(serial, (this.revokesSent.get(serial) ?? 0) + 1);
    }
    const id = randomUUID();
    this.jobs.set(id, { id, type: 'REVOKE_OATH_TOKENS', doneAt: Date.now() + this.options.jobDelayMs, tokens: [], tokenIds: ids as string[], forceUnpair: b['forceUnpair'] === true, status: 'IN_PROGRESS', created: 0, duplicates: [] });
    return [202, this.jobBody(this.jobs.get(id)!, base)];
  }

  /**
   * POST /oathTokens/{id} (…device.resync+json, `{"otps":[a,b]}`): two consecutive codes read
   * off a drifted token. HOTP: found within RESYNC_HOTP_WINDOW counters ahead, the counter
   * moves past them; TOTP: within RESYNC_TOTP_STEPS steps either way, the drift is learnt. A
   * wrong pair is a 400 INVALID_OTP.
   */
  resync(id: string, contentType: string, body: unknown, now = Date.now()): Answer {
    this.finishJobs();
    if (!/^application\/vnd\.pingidentity\.device\.resync\+json/i.test(contentType)) return wrongType('application/vnd.pingidentity.device.resync+json');
    const token = this.byId.get(id);
    if (!token) return [404, pingError('NOT_FOUND', 'Unable to find OATH token.')];
    const otps = (typeof body === 'object' && body !== null ? (body as { otps?: unknown }).otps : undefined) as unknown;
    const digits = new RegExp(`^\\d{${token.otpLength}}$`);
    if (!Array.isArray(otps) || otps.length !== 2 || !otps.every((o) => typeof o === 'string' && digits.test(o))) {
      return invalidData([{ code: 'INVALID_VALUE', target: 'otps', message: `otps must be two codes of ${token.otpLength} digits` }]);
    }
    const [a, b] = otps as [string, string];
    if (token.type === 'HOTP') {
      const from = token.counter ?? 0n;
      for (let c = from; c < from + BigInt(RESYNC_HOTP_WINDOW); c++) {
        if (this.codeAt(token, c) === a && this.codeAt(token, c + 1n) === b) {
          token.counter = c + 2n;
          return [200, this.body(token, 'ignored')];
        }
      }
    } else {
      const step = Math.floor(now / 1000 / (token.timeStep ?? 30));
      for (let d = -RESYNC_TOTP_STEPS; d <= RESYNC_TOTP_STEPS; d++) {
        if (this.codeAt(token, BigInt(step + d)) === a && this.codeAt(token, BigInt(step + d + 1)) === b) {
          token.driftSteps = d + 1;
          return [200, this.body(token, 'ignored')];
        }
      }
    }
    return invalidData([{ code: 'INVALID_OTP', target: 'otps', message: 'The one-time passcodes are not valid for this token.' }]);
  }

  /** The token's code at counter (HOTP) or time step (TOTP), computed here (RFC 4226 §5.3). */
  private codeAt(token: InventoryToken, counter: bigint): string {
    const hash = { HmacSHA1: 'sha1', HmacSHA256: 'sha256', HmacSHA512: 'sha512' }[token.hashAlgorithm] ?? 'sha1';
    const message = Buffer.alloc(8);
    message.writeBigUInt64BE(BigInt.asUintN(64, counter));
    const mac = createHmac(hash, Buffer.from(token.secretHex, 'hex')).update(message).digest();
    const o = mac[mac.length - 1]! & 0x0f;
    const n = ((mac[o]! & 0x7f) << 24) | (mac[o + 1]! << 16) | (mac[o + 2]! << 8) | mac[o + 3]!;
    return String(n % 10 ** token.otpLength).padStart(token.otpLength, '0');
  }

  /** GET /oathJobs/{id} */
  jobStatus(id: string, base: string): Answer {
    this.finishJobs();
    const job = this.jobs.get(id);
    if (!job) return [404, pingError('NOT_FOUND', 'Unable to find job.')];
    return [200, this.jobBody(job, base)];
  }

  private jobBody(job: Job, base: string): Record<string, unknown> {
    return {
      _links: { self: { href: `${base}/oathJobs/${job.id}` } },
      id: job.id,
      type: job.type,
      status: job.status,
      ...(job.status === 'FAILED' ? { reason: job.reason } : {}),
      ...(job.status === 'DONE' ? { result: job.type === 'REVOKE_OATH_TOKENS' ? { revoked: job.revoked ?? 0 } : { created: job.created, duplicates: job.duplicates } } : {}),
    };
  }

  /**
   * GET /oathTokens[?filter=serialNumber eq "…"][&expand=devices][&limit=n][&cursor=…].
   * `open`: the sandbox's open inventory (every serial known): a serial asked for by filter is
   * there; the full listing holds the imported tokens and those paired to a device.
   */
  list(url: URL, base: string, open?: { known: (serial: string) => boolean; paired: () => Iterable<{ serialNumber: string; id: string; userId: string }> }, expandShape: ExpandShape = 'embedded', pageCap = 1000): Answer {
    this.finishJobs();
    const filter = url.searchParams.get('filter');
    let tokens = [...this.bySerial.values()];
    const stand = (serialNumber: string, device?: { id: string; userId: string }): InventoryToken => ({
      id: `0a7h0000-0000-4000-8000-${createHmac('sha1', 'open').update(serialNumber).digest('hex').slice(0, 12)}`,
      serialNumber, type: 'TOTP', otpLength: 6, hashAlgorithm: 'HmacSHA1', timeStep: 30, secretHex: '', createdAt: new Date(0).toISOString(), device,
    });
    if (open && !filter) {
      for (const d of open.paired()) if (!this.bySerial.has(d.serialNumber)) tokens.push(stand(d.serialNumber, { id: d.id, userId: d.userId }));
    }
    if (filter) {
      const m = /^serialNumber eq "((?:[^"\\]|\\.)*)"$/.exec(filter);
      if (!m) return invalid(`unsupported filter ${filter}`, 'filter', 'INVALID_FILTER');
      const serial = m[1]!.replace(/\\(.)/g, '$1');
      tokens = tokens.filter((t) => t.serialNumber === serial);
      if (tokens.length === 0 && open?.known(serial) && !this.removed.has(serial)) {
        const d = [...open.paired()].find((p) => p.serialNumber === serial);
        tokens = [stand(serial, d ? { id: d.id, userId: d.userId } : undefined)];
      }
    }
    const limit = Math.min(pageCap, 1000, Math.max(1, Number(url.searchParams.get('limit') ?? 100) || 100));
    const start = Number(url.searchParams.get('cursor') ?? 0) || 0;
    const page = tokens.slice(start, start + limit);
    const expand = url.searchParams.get('expand') === 'devices' ? expandShape : 'ignored';
    const next = start + limit < tokens.length ? new URL(url.toString()) : undefined;
    next?.searchParams.set('cursor', String(start + limit));
    return [
      200,
      {
        _links: { self: { href: `${base}/oathTokens` }, ...(next ? { next: { href: `${base}/oathTokens${next.search}` } } : {}) },
        _embedded: { oathTokens: page.map((t) => this.body(t, expand)) },
        count: tokens.length,
        size: page.length,
      },
    ];
  }

  /** DELETE /oathTokens/{id} */
  remove(id: string): Answer {
    const token = this.byId.get(id);
    if (!token) return [404, pingError('NOT_FOUND', 'Unable to find OATH token.')];
    this.byId.delete(id);
    this.bySerial.delete(token.serialNumber);
    this.removed.add(token.serialNumber);
    return [204, undefined];
  }

  private body(t: InventoryToken, expand: ExpandShape): Record<string, unknown> {
    return {
      id: t.id,
      serialNumber: t.serialNumber,
      type: t.type,
      otpLength: t.otpLength,
      hashAlgorithm: t.hashAlgorithm,
      ...(t.type === 'TOTP' ? { totp: { timeStep: t.timeStep } } : { hotp: { counter: t.counter! <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(t.counter) : t.counter!.toString() } }),
      status: t.device ? 'PAIRED' : 'UNPAIRED',
      createdAt: t.createdAt,
      ...(t.device && expand === 'embedded' ? { _embedded: { devices: [{ id: t.device.id, user: { id: t.device.userId } }] } } : {}),
      ...(t.device && expand === 'plain' ? { devices: [{ id: t.device.id, user: { id: t.device.userId } }] } : {}),
    };
  }
}
