/**
 * Client-credentials access tokens for a worker application (PINGONE.md "Access token").
 * One token is shared by all requests. It is refreshed shortly before it expires, and once
 * per 401 burst: every request that saw a 401 for the same token waits on one refresh.
 */
import type { Connection } from './connection.js';
import { StopError } from '../errors.js';
import { ApiError, failureFromBody, isTlsFailure } from './errors.js';
import type { RequestGate, RequestStats } from './gate.js';
import { RequestAborted, type Transport } from './http.js';

export interface TokenEvents {
  refreshed(reason: 'initial' | 'expiry' | 'unauthorized', expiresInS: number): void;
  retrying(attempt: number, reason: string, delayMs: number): void;
}

export interface TokenProviderOptions {
  readonly connection: Connection;
  readonly transport: Transport;
  readonly gate: RequestGate;
  readonly stats: RequestStats;
  readonly timeoutMs: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly events?: Partial<TokenEvents>;
  /**
   * The run's stop: ends the wait for a turn, the token request itself (a token is not worth
   * the drain period: nothing is created by it) and the sleep between attempts; the fetch then
   * rejects with the stop's reason.
   */
  readonly stopping?: AbortSignal;
  /** Refresh this long before expiry so that no request carries a token that dies in flight. */
  readonly marginMs?: number;
  readonly maxAttempts?: number;
}

interface Held {
  readonly token: string;
  readonly expiresAt: number;
  /** Refresh this long before expiry: 5 minutes, or a quarter of a short lifetime. */
  readonly marginMs: number;
}

export class TokenProvider {
  private held?: Held;
  private pending?: Promise<string>;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(private readonly options: TokenProviderOptions) {
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  private stopReason(): unknown {
    const reason: unknown = this.options.stopping?.reason;
    return reason ?? new RequestAborted(false);
  }

  /** A token valid for at least the margin. */
  async token(): Promise<string> {
    const held = this.held;
    if (held && held.expiresAt - held.marginMs > this.now()) return held.token;
    return this.refresh(held ? 'expiry' : 'initial');
  }

  /**
   * A request was answered 401 while carrying `rejected`. If a newer token is already held or
   * on its way, that one is used; otherwise one refresh is started for everybody. `fresh`:
   * the token was fetched for this 401 burst.
   */
  async replacement(rejected: string): Promise<{ token: string; fresh: boolean }> {
    if (this.pending) return { token: await this.pending, fresh: true };
    if (this.held && this.held.token !== rejected) return { token: this.held.token, fresh: false };
    return { token: await this.refresh('unauthorized'), fresh: true };
  }

  private refresh(reason: 'initial' | 'expiry' | 'unauthorized'): Promise<string> {
    if (!this.pending) {
      this.pending = this.fetch(reason).finally(() => {
        this.pending = undefined;
      });
    }
    return this.pending;
  }

  private async fetch(reason: 'initial' | 'expiry' | 'unauthorized'): Promise<string> {
    const { connection: c, transport, gate, stats, timeoutMs } = this.options;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (c.tokenAuth === 'basic') {
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
      const pair = `${encodeForm(c.clientId)}:${encodeForm(c.clientSecret)}`;
      headers['authorization'] = `Basic ${Buffer.from(pair).toString('base64')}`;
    } else {
      form.set('client_id', c.clientId);
      form.set('client_secret', c.clientSecret);
    }
    const url = `${c.authUrl}/${encodeURIComponent(c.environmentId)}/as/token`;
    const maxAttempts = this.options.maxAttempts ?? 5;

    const stopping = this.options.stopping;
    for (let attempt = 1; ; attempt++) {
      if (stopping?.aborted) throw this.stopReason();
      let sentAt: number;
      try {
        sentAt = await gate.acquire(stopping);
      } catch (error) {
        if (stopping?.aborted) throw this.stopReason();
        throw error;
      }
      stats.total++;
      stats.token++;
      let failure: ApiError;
      try {
        const answer = await transport({ method: 'POST', url, headers, body: form.toString(), timeoutMs, signal: stopping, startSignal: stopping, onWritten: () => gate.sent?.(sentAt) });
        const body = answer.body as Record<string, unknown> | undefined;
        if (answer.status === 200 && body && typeof body['access_token'] === 'string') {
          gate.answered();
          const expiresIn = typeof body['expires_in'] === 'number' ? body['expires_in'] : 3600;
          this.held = { token: body['access_token'], expiresAt: this.now() + expiresIn * 1000, marginMs: Math.min(this.options.marginMs ?? 300_000, (expiresIn * 1000) / 4) };
          if (reason !== 'initial') stats.tokenRefreshes++;
          this.options.events?.refreshed?.(reason, expiresIn);
          return this.held.token;
        }
        failure = new ApiError(failureFromBody(answer.status, answer.body, answer.retryAfterMs));
        if (answer.status === 429) {
          stats.rateLimited++;
          gate.rateLimited(answer.retryAfterMs, sentAt);
        } else gate.answered();
      } catch (error) {
        if (error instanceof RequestAborted) throw stopping?.aborted ? this.stopReason() : error;
        failure = error as ApiError;
      }
      const stop = tokenStop(failure, c);
      if (stop) throw stop;
      if (attempt >= maxAttempts) {
        throw new StopError('TOKEN_UNAVAILABLE', `could not get an access token from ${c.authUrl} after ${attempt} attempts (${failure.message}); check PingOne's status and rerun`);
      }
      const delayMs = failure.retryAfterMs ?? Math.min(30_000, 1000 * 2 ** (attempt - 1));
      this.options.events?.retrying?.(attempt, failure.message, delayMs);
      try {
        await this.sleep(delayMs, stopping);
      } catch (error) {
        if (stopping?.aborted) throw this.stopReason();
        throw error;
      }
    }
  }
}

function encodeForm(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

/** Token-endpoint answers that no retry will change. */
function tokenStop(f: ApiError, c: Connection): StopError | undefined {
  if (isTlsFailure(f.network)) {
    return new StopError('TLS_ERROR', `${f.message} (${c.authUrl})`);
  }
  if (f.status === 401 || f.status === 400 || f.pingCode === 'invalid_client' || f.pingCode === 'unauthorized_client') {
    return new StopError(
      'CREDENTIALS_REFUSED',
      `PingOne refused the worker app credentials (${f.pingCode ?? `HTTP ${f.status}`}): check the client id, the client secret and --token-auth (${c.tokenAuth}) for environment ${c.environmentId}`,
    );
  }
  if (f.status === 404) {
    return new StopError('ENVIRONMENT_NOT_FOUND', `environment ${c.environmentId} was not found at ${c.authUrl}: check --environment-id and --region/--auth-url`);
  }
  if (f.status === 403) {
    return new StopError('INSUFFICIENT_PERMISSIONS', `PingOne refused the token request (HTTP 403 ${f.pingCode ?? ''}): check the worker application is enabled`);
  }
  return undefined;
}
