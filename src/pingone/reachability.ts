/**
 * Whether PingOne can be reached at all (issue #20): connection-level failures — refused,
 * DNS, TLS, a timeout, a reset before any answer — are counted across every request, and any
 * HTTP answer (a 5xx and a 429 included) clears them. When nothing but such failures has come
 * back for `limitMs`, the host is lost: the run stops (CONNECTION_LOST) instead of letting each
 * row retry for minutes. The operator is told once when the host has not answered for a few
 * seconds (a lone reset is not an outage), and once when it answers again.
 */
import { ApiError } from './errors.js';
import type { Transport } from './http.js';

export interface ReachabilityEvents {
  /** How long nothing but connection failures may last before the run stops. */
  readonly limitMs: number;
  onDown(host: string, error: string): void;
  onUp(host: string, downMs: number): void;
  onLost(host: string, error: string, downMs: number): void;
}

/** How long nothing but connection failures must last before the operator is told. */
const ANNOUNCE_AFTER_MS = 5000;

export function watchReachability(transport: Transport, events: ReachabilityEvents): Transport {
  let downSince: number | undefined;
  let announced = false;
  let lost = false;
  const timers: NodeJS.Timeout[] = [];
  const after = (ms: number, fn: () => void): void => {
    const t = setTimeout(fn, ms);
    t.unref();
    timers.push(t);
  };
  return async (request) => {
    const host = new URL(request.url).host;
    try {
      const answer = await transport(request);
      if (downSince !== undefined) {
        const downMs = Date.now() - downSince;
        downSince = undefined;
        for (const t of timers.splice(0)) clearTimeout(t);
        if (announced && !lost) events.onUp(host, downMs);
        announced = false;
      }
      return answer;
    } catch (error) {
      if (error instanceof ApiError && error.network !== undefined && downSince === undefined && !lost) {
        const since = Date.now();
        downSince = since;
        // Bounded in time, whether or not another request fails meanwhile (rows may all be
        // waiting out a backoff).
        after(Math.min(ANNOUNCE_AFTER_MS, events.limitMs / 2), () => {
          if (downSince !== since || lost) return;
          announced = true;
          events.onDown(host, error.message);
        });
        after(events.limitMs, () => {
          if (downSince !== since || lost) return;
          lost = true;
          events.onLost(host, error.message, Date.now() - since);
        });
      }
      throw error;
    }
  };
}
