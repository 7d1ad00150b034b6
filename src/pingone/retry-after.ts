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

const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? +(\d{1,2}[ -][A-Za-z]{3}[ -]\d{2,4} +\d{2}:\d{2}:\d{2} +GMT|[A-Za-z]{3} +\d{1,2} +\d{2}:\d{2}:\d{2} +\d{4})$/;

export function parseRetryAfter(value: unknown, { now, unitMs = 1000, capMs = 120_000 }: RetryAfterOptions): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = String(Array.isArray(value) ? value[0] : value).trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.min(capMs, Math.round(Number(text) * unitMs));
  // An HTTP date starts with the day's name (IMF-fixdate, RFC 850, asctime). Anything else
  // ("-5", "1 2", "5, 10") is unparseable and means "use backoff": Date.parse would read
  // some of it as a date long past, and the retry would go at once.
  if (!HTTP_DATE.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.min(capMs, Math.max(0, date - now));
}
