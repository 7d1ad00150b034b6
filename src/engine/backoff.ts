/**
 * Delay before the next attempt: Retry-After when PingOne sent one, else exponential
 * backoff with jitter, capped (PINGONE.md: "1 s × 2^n, 30 s cap", with jitter).
 * "Equal jitter": half the exponential step is kept, half is random, so retries never
 * bunch up at zero yet still spread out.
 */
export interface BackoffOptions {
  readonly baseMs: number;
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, capMs: 30_000 };

/** `attempt` is the 1-based number of the attempt that just failed. */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const step = Math.min(options.capMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

export function retryDelay(attempt: number, retryAfterMs: number | undefined, options: BackoffOptions = DEFAULT_BACKOFF, random?: () => number): number {
  if (retryAfterMs !== undefined) return Math.min(Math.max(retryAfterMs, 0), Math.max(options.capMs, 120_000));
  return backoffDelay(attempt, options, random);
}
