/**
 * One HTTP transport for every PingOne call. Axios errors are reduced here to FailureInfo:
 * a raw axios error carries the request config and with it the Authorization header, so it
 * must never travel further (STYLE.md "Never log a raw axios error").
 */
import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance, type Method } from 'axios';
import { ApiError } from './errors.js';
import { isLoopbackHost } from './regions.js';
import { parseRetryAfter } from './retry-after.js';

export interface HttpRequest {
  readonly method: Method;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly signal?: AbortSignal;
  /** If aborted by the time the request would be sent, it is not sent (RequestAborted). */
  readonly startSignal?: AbortSignal;
  readonly timeoutMs: number;
  /** Called once the request has been handed to the operating system (written). */
  readonly onWritten?: () => void;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly retryAfterMs?: number;
}

/** Sends a request; resolves with any HTTP answer, rejects with ApiError when there is none. */
export type Transport = (request: HttpRequest) => Promise<HttpAnswer>;

/** Thrown when the caller's signal stopped the request. */
export class RequestAborted extends Error {
  /** `sent`: the request had been written whole, so PingOne may have carried it out. */
  constructor(readonly sent = false) {
    super(sent ? 'request aborted after it was sent' : 'request aborted before it was sent');
    this.name = 'RequestAborted';
  }
}

/** Errors that prove nothing reached the server: the request can be sent again safely. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_INVALID_URL']);

export function createTransport(options: { maxSockets: number; retryAfterUnitMs?: number; baseUrls: string[] }): Transport {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: options.maxSockets };
  const loopbackOnly = options.baseUrls.every((u) => isLoopbackHost(new URL(u).hostname));
  const instance: AxiosInstance = axios.create({
    httpAgent: new http.Agent(agentOptions),
    httpsAgent: new https.Agent(agentOptions),
    validateStatus: () => true,
    responseType: 'text',
    transformResponse: [(data: unknown) => data],
    maxRedirects: 0,
    // Corporate proxies come from HTTPS_PROXY/NO_PROXY; loopback (the sandbox) never goes through one.
    proxy: loopbackOnly ? false : undefined,
    transitional: { clarifyTimeoutError: true, silentJSONParsing: true, forcedJSONParsing: false },
  });

  return async (request) => {
    if (request.startSignal?.aborted) throw new RequestAborted();
    // A wall-clock limit of our own: the socket's idle timeout alone may not fire while a
    // connection is still being set up.
    const limit = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      limit.abort();
    }, request.timeoutMs);
    const onAbort = (): void => limit.abort();
    request.signal?.addEventListener('abort', onAbort, { once: true });
    let response;
    let written = false;
    try {
      response = await instance.request<string>({
        method: request.method,
        url: request.url,
        headers: request.headers,
        data: request.body,
        signal: limit.signal,
        timeout: request.timeoutMs,
        // Our own transport, to learn when the request is really written (see Pacer.sent).
        transport: {
          request: (options: http.RequestOptions, callback: (res: http.IncomingMessage) => void) => {
            const req = (options.protocol === 'https:' ? https : http).request(options, callback);
            req.once('finish', () => {
              written = true;
              request.onWritten?.();
            });
            return req;
          },
        },
      } as Parameters<AxiosInstance['request']>[0]);
    } catch (error) {
      if (timedOut) throw new ApiError({ network: 'ETIMEDOUT', message: networkMessage('ETIMEDOUT'), maybeSent: true });
      if (request.signal?.aborted || axios.isCancel(error)) throw new RequestAborted(written);
      const code = networkCode(error);
      throw new ApiError({
        network: code,
        message: networkMessage(code),
        maybeSent: !NOT_SENT.has(code),
      });
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
    }
    const body = parseBody(response.data);
    return {
      status: response.status,
      body,
      retryAfterMs: parseRetryAfter(response.headers['retry-after'], { now: Date.now(), unitMs: options.retryAfterUnitMs }),
    };
  };
}

function networkCode(error: unknown): string {
  const e = error as { code?: unknown; cause?: { code?: unknown } };
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : 'NETWORK_ERROR';
  return code === 'ERR_BAD_RESPONSE' || code === 'ERR_NETWORK' ? (typeof e?.cause?.code === 'string' ? e.cause.code : code) : code;
}

function networkMessage(code: string): string {
  switch (code) {
    case 'ETIMEDOUT':
    case 'ECONNABORTED':
      return 'no answer within --timeout';
    case 'ECONNRESET':
    case 'ERR_SOCKET_CONNECTION_TIMEOUT':
      return 'connection reset before the answer arrived';
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found (DNS)';
    default:
      return code.includes('CERT') || code === 'EPROTO'
        ? `TLS certificate not trusted (${code}); for a corporate proxy CA set NODE_EXTRA_CA_CERTS`
        : `network error (${code})`;
  }
}

function parseBody(text: unknown): unknown {
  if (typeof text !== 'string' || text === '') return text;
  try {
    return JSON.parse(text);
  } catch {
    return text.slice(0, 2000);
  }
}

