/**
 * PingOne failures, reduced to what is safe to log, and the one classifier that decides what
 * to do about them (PINGONE.md "Errors"). Decisions key on PingOne's `code` and
 * `details[].code` first, then the HTTP status, because PingOne warns that statuses within a
 * class may change.
 */

/** What the engine does with a failure. */
export type Verdict =
  | { readonly kind: 'retry'; readonly code: string; readonly rateLimited: boolean }
  | { readonly kind: 'refresh' }
  | { readonly kind: 'refused'; readonly code: RowErrorCode }
  | { readonly kind: 'systemic'; readonly code: SystemicCode };

/** Row-level refusals: the row is FAILED, the run goes on. */
export type RowErrorCode =
  | 'SERIAL_NOT_FOUND'
  | 'SERIAL_ALREADY_ASSIGNED'
  | 'MAX_DEVICES_REACHED'
  | 'USER_NOT_FOUND'
  | 'CONFLICT'
  | 'REQUEST_REFUSED';

/** Failures that no row can get past: the run stops (exit 3). */
export type SystemicCode =
  | 'CREDENTIALS_REFUSED'
  | 'ACCESS_TOKEN_REJECTED'
  | 'INSUFFICIENT_PERMISSIONS'
  | 'LICENSE_EXCEEDED'
  | 'ENVIRONMENT_NOT_FOUND'
  | 'TLS_ERROR';

/** Row codes that say something about the row itself, not about PingOne or the network. */
export const ROW_SPECIFIC_CODES: ReadonlySet<string> = new Set<RowErrorCode>([
  'SERIAL_NOT_FOUND',
  'SERIAL_ALREADY_ASSIGNED',
  'MAX_DEVICES_REACHED',
  'USER_NOT_FOUND',
]);

/** Everything we keep of a failed request. No headers, no request config, no token. */
export interface FailureInfo {
  readonly status?: number;
  /** PingOne `code`, or the OAuth `error` of the token endpoint. */
  readonly pingCode?: string;
  readonly detailCode?: string;
  readonly detailTarget?: string;
  readonly message: string;
  readonly retryAfterMs?: number;
  /** Node/axios error code for failures without an answer (ECONNRESET, ETIMEDOUT, …). */
  readonly network?: string;
  /** The request may have reached PingOne: its effect is unknown until reconciled. */
  readonly maybeSent: boolean;
}

const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'EPROTO',
]);

export function isTlsFailure(network: string | undefined): boolean {
  return network !== undefined && TLS_CODES.has(network);
}

export function classify(f: FailureInfo): Verdict {
  if (f.status === undefined) {
    if (isTlsFailure(f.network)) return { kind: 'systemic', code: 'TLS_ERROR' };
    return { kind: 'retry', code: f.network === 'ETIMEDOUT' || f.network === 'ECONNABORTED' ? 'TIMEOUT' : 'NETWORK_ERROR', rateLimited: false };
  }
  const s = f.status;
  if (s === 429 || f.pingCode === 'REQUEST_LIMITED') return { kind: 'retry', code: 'RATE_LIMITED', rateLimited: true };
  if (s === 401) return { kind: 'refresh' };
  if (s === 403) {
    return { kind: 'systemic', code: f.detailCode === 'LICENSE_EXCEEDED' ? 'LICENSE_EXCEEDED' : 'INSUFFICIENT_PERMISSIONS' };
  }
  if (s === 408) return { kind: 'retry', code: 'TIMEOUT', rateLimited: false };
  if (s >= 500 || f.pingCode === 'UNEXPECTED_ERROR') return { kind: 'retry', code: 'SERVER_ERROR', rateLimited: false };
  if (s === 404 || f.pingCode === 'NOT_FOUND') return { kind: 'refused', code: 'USER_NOT_FOUND' };
  if (s === 409) return { kind: 'refused', code: 'CONFLICT' };
  if (s >= 400) {
    if (f.detailCode === 'UNIQUENESS_VIOLATION') return { kind: 'refused', code: 'SERIAL_ALREADY_ASSIGNED' };
    if (f.detailCode === 'LIMIT_EXCEEDED') return { kind: 'refused', code: 'MAX_DEVICES_REACHED' };
    if (f.detailTarget === 'serialNumber') return { kind: 'refused', code: 'SERIAL_NOT_FOUND' };
    return { kind: 'refused', code: 'REQUEST_REFUSED' };
  }
  // A 1xx/2xx/3xx that is not what the call expects (an HTML page from a proxy, say).
  return { kind: 'retry', code: 'UNEXPECTED_RESPONSE', rateLimited: false };
}

/** A failed PingOne call. Carries only FailureInfo: safe to log whole. */
export class ApiError extends Error implements FailureInfo {
  readonly status?: number;
  readonly pingCode?: string;
  readonly detailCode?: string;
  readonly detailTarget?: string;
  readonly retryAfterMs?: number;
  readonly network?: string;
  readonly maybeSent: boolean;
  readonly verdict: Verdict;

  constructor(info: FailureInfo) {
    super(info.message);
    this.name = 'ApiError';
    this.status = info.status;
    this.pingCode = info.pingCode;
    this.detailCode = info.detailCode;
    this.detailTarget = info.detailTarget;
    this.retryAfterMs = info.retryAfterMs;
    this.network = info.network;
    this.maybeSent = info.maybeSent;
    this.verdict = classify(info);
  }

  /** The code a row that failed on this is reported with: PingOne's refusal, or the retries run out. */
  get rowCode(): string {
    return this.verdict.kind === 'refused' ? this.verdict.code : 'RETRIES_EXHAUSTED';
  }

  /** `code/detailCode` as it goes into the results' errorDetail column. */
  get detail(): string {
    return [this.pingCode ?? this.network, this.detailCode].filter(Boolean).join('/');
  }

  toJSON(): Record<string, unknown> {
    return { status: this.status, code: this.pingCode, detail: this.detailCode, target: this.detailTarget, network: this.network, message: this.message };
  }
}

/** Reads PingOne's error body (or the OAuth form) without trusting its shape. */
export function failureFromBody(status: number, body: unknown, retryAfterMs: number | undefined): FailureInfo {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const details = Array.isArray(b['details']) ? (b['details'] as Array<Record<string, unknown>>) : [];
  const first = details.find((d) => typeof d === 'object' && d !== null) ?? {};
  const inner = (typeof first['innerError'] === 'object' && first['innerError'] !== null ? first['innerError'] : {}) as Record<string, unknown>;
  let retry = retryAfterMs;
  if (retry === undefined && typeof inner['retryAfter'] === 'number') retry = Math.min(120_000, inner['retryAfter'] * 1000);
  const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v.slice(0, 500) : undefined);
  const message =
    text(first['message']) ??
    text(b['message']) ??
    text(b['error_description']) ??
    (typeof body === 'string' && body.trim().startsWith('<') ? `HTTP ${status} with an HTML page` : `HTTP ${status}`);
  return {
    status,
    pingCode: text(b['code']) ?? text(b['error']),
    detailCode: text(first['code']),
    detailTarget: text(first['target']),
    message: message.replace(/[\r\n\t]+/g, ' '),
    retryAfterMs: retry,
    maybeSent: true,
  };
}
