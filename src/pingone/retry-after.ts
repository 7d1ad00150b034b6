/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP date. PingOne sends seconds on a
 * 429 and may send a date (PINGONE.md "Rate limits"). The result is capped so that a hostile
 * or broken header cannot park the run; `unitMs` is 1000 in production and lowered in tests.
 */
export interface RetryAfterOptions {
  readonly now: number;
  readonly unitMs?: number;
  readonly capMs?: number;
}

export function parseRetryAfter(value: unknown, { now, unitMs = 1000, capMs = 120_000 }: RetryAfterOptions): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = String(Array.isArray(value) ? value[0] : value).trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.min(capMs, Math.round(Number(text) * unitMs));
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.min(capMs, Math.max(0, date - now));
}
