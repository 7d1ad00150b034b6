/**
 * The PingOne connection a command works through: one transport, one pacer (all requests
 * counted against --rate), one token provider, one client, and the counters they share.
 */
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import type { Connection, EngineOptions } from '../../config.js';
import { abortableSleep, Pacer } from '../../engine/pacer.js';
import { TokenProvider } from '../../pingone/auth.js';
import { PingOneClient } from '../../pingone/client.js';
import { newRequestStats, type RequestStats } from '../../pingone/gate.js';
import { createTransport, type Transport } from '../../pingone/http.js';
import { watchReachability } from '../../pingone/reachability.js';
import { StopError } from '../../errors.js';

export interface Session {
  readonly client: PingOneClient;
  readonly tokens: TokenProvider;
  readonly pacer: Pacer;
  readonly stats: RequestStats;
}

/** Where a session reports that PingOne cannot be reached: the operator's stderr, and the run's stop. */
export interface ReachabilityHooks {
  warn(message: string): void;
  stop(error: StopError): void;
}

export function openSession(connection: Connection, engine: EngineOptions, logger: Logger, transport?: Transport, stopping?: AbortSignal, reach?: ReachabilityHooks): Session {
  const stats = newRequestStats();
  const direct = transport ?? createTransport({ maxSockets: engine.concurrency + 2, baseUrls: [connection.apiUrl, connection.authUrl] });
  const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;
  const http: Transport = !reach ? direct : watchReachability(direct, {
    limitMs: engine.maxUnreachableMs,
    onDown: (host, error) => {
      logger.warn({ event: 'unreachable', host, error });
      reach.warn(`${host} cannot be reached (${error}); retrying — the run stops if it stays so for ${seconds(engine.maxUnreachableMs)} (--max-unreachable)`);
    },
    onUp: (host, downMs) => {
      logger.info({ event: 'reachable', host, downMs });
      reach.warn(`${host} answers again after ${seconds(downMs)}; the run goes on`);
    },
    onLost: (host, error, downMs) => {
      logger.error({ event: 'connection.lost', host, error, downMs });
      reach.stop(new StopError('CONNECTION_LOST', `${host} could not be reached for ${seconds(downMs)} (${error}): the network, a proxy or PingOne itself is down; rows not sent are NOT_ATTEMPTED, and a create whose answer was lost is UNCONFIRMED`));
    },
  });
  // --concurrency bounds API requests in flight (the client takes a slot before the pacer's
  // turn). A row waiting out a backoff holds no slot, so a few failing rows do not starve the
  // others. A token request (one an hour, or after a 401) takes none: requests holding slots
  // may be waiting for it.
  const limit = pLimit(engine.concurrency);
  const slots = <T>(work: () => Promise<T>): Promise<T> => limit(work);
  const base: Transport = http;
  const logged: Transport = !logger.isLevelEnabled('debug') ? base : async (request) => {
    const t0 = performance.now();
    const path = new URL(request.url).pathname;
    try {
      const answer = await base(request);
      logger.debug({ event: 'http', method: request.method, path, httpStatus: answer.status, ms: Math.round(performance.now() - t0) });
      return answer;
    } catch (error) {
      logger.debug({ event: 'http', method: request.method, path, error: (error as Error).message, ms: Math.round(performance.now() - t0) });
      throw error;
    }
  };
  const pacer = new Pacer({
    ceiling: engine.rate,
    now: () => performance.now(),
    sleep: abortableSleep,
    onAdjust: (from, to, reason) => logger.info({ event: 'rate', from: round(from), to: round(to), reason }),
  });
  const tokens = new TokenProvider({
    connection,
    transport: logged,
    gate: pacer,
    stats,
    timeoutMs: engine.timeoutMs,
    sleep: abortableSleep,
    stopping,
    events: {
      refreshed: (reason, expiresInS) => logger.info({ event: 'token', reason, expiresInS }),
      retrying: (attempt, reason, delayMs) => logger.warn({ event: 'token.retry', attempt, reason, delayMs }),
    },
  });
  const client = new PingOneClient({ connection, transport: logged, tokens, gate: pacer, stats, timeoutMs: engine.timeoutMs, slots });
  return { client, tokens, pacer, stats };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
