import { backoffDelay, retryDelay } from '../../src/engine/backoff.js';
import { parseRetryAfter } from '../../src/pingone/retry-after.js';

describe('Retry-After', () => {
  const now = Date.parse('2026-11-28T12:00:00Z');
  test('seconds', () => expect(parseRetryAfter('3', { now })).toBe(3000));
  test('fractional seconds', () => expect(parseRetryAfter('0.5', { now })).toBe(500));
  test('an HTTP date', () => expect(parseRetryAfter('Sat, 28 Nov 2026 12:00:07 GMT', { now })).toBe(7000));
  test('a date in the past means now', () => expect(parseRetryAfter('Sat, 28 Nov 2026 11:00:00 GMT', { now })).toBe(0));
  test('missing', () => expect(parseRetryAfter(undefined, { now })).toBeUndefined());
  test('garbage', () => expect(parseRetryAfter('soon', { now })).toBeUndefined());
  // Date.parse reads these as dates long past: the retry would go at once, with no backoff.
  test.each(['-5', '1 2', '5, 10', '+5', '1e3', '12:00'])('unparseable %j means "use backoff"', (value) => {
    expect(parseRetryAfter(value, { now })).toBeUndefined();
  });
  test('the two obsolete HTTP date forms still count', () => {
    expect(parseRetryAfter('Saturday, 28-Nov-26 12:00:07 GMT', { now })).toBe(7000);
    expect(parseRetryAfter('Sat Nov 28 12:00:07 2026', { now })).toBe(7000);
  });
  test('capped', () => expect(parseRetryAfter('86400', { now })).toBe(120_000));
  test('the time unit can be shortened for drills', () => expect(parseRetryAfter('2', { now, unitMs: 10 })).toBe(20));
});

describe('backoff', () => {
  const opts = { baseMs: 1000, capMs: 30_000 };
  test.each([1, 2, 3, 4, 5, 6, 8, 12])('attempt %i stays within [step/2, step] with step = min(cap, base·2^(n-1))', (n) => {
    const step = Math.min(30_000, 1000 * 2 ** (n - 1));
    expect(backoffDelay(n, opts, () => 0)).toBe(step / 2);
    expect(backoffDelay(n, opts, () => 0.999999)).toBeLessThanOrEqual(step);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(n, opts);
      expect(d).toBeGreaterThanOrEqual(step / 2);
      expect(d).toBeLessThanOrEqual(step);
    }
  });

  test('Retry-After wins over backoff', () => {
    expect(retryDelay(1, 5000, opts)).toBe(5000);
    expect(retryDelay(3, undefined, opts, () => 0)).toBe(2000);
  });
});
