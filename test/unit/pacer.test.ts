import { Pacer } from '../../src/engine/pacer.js';
import { FakeClock, maxInWindow } from '../support/fake-clock.js';

async function drive(pacer: Pacer, clock: FakeClock, requests: number, workers: number, after?: (i: number, sentAt: number) => void): Promise<number[]> {
  const times: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < requests) {
      const i = next++;
      const sentAt = await pacer.acquire();
      times.push(clock.now());
      await clock.sleep(5); // the request itself
      after?.(i, sentAt);
    }
  };
  await clock.run(Promise.all(Array.from({ length: workers }, worker)));
  return times;
}

describe('the pacer', () => {
  test.each([20, 40, 100, 200])('never lets more than --rate %p requests into any one-second window', async (rate) => {
    const clock = new FakeClock();
    const pacer = new Pacer({ ceiling: rate, now: clock.now, sleep: clock.sleep });
    const times = await drive(pacer, clock, Math.ceil(rate * 10), 16);
    expect(maxInWindow(times)).toBeLessThanOrEqual(Math.floor(rate));
    // …and uses nearly all of it: 10 seconds' worth takes about 10 seconds.
    const span = (times[times.length - 1]! - times[0]!) / 1000;
    expect(span).toBeGreaterThan(9.5);
    expect(span).toBeLessThan(10.3);
  });

  test('a fractional rate rounds the per-second count down', async () => {
    const clock = new FakeClock();
    const pacer = new Pacer({ ceiling: 7.5, now: clock.now, sleep: clock.sleep });
    expect(maxInWindow(await drive(pacer, clock, 60, 8))).toBe(7);
  });

  test('a 429 cuts the pace to just under what the server accepted, once per burst', async () => {
    const clock = new FakeClock();
    const adjustments: Array<[number, number, string]> = [];
    const pacer = new Pacer({ ceiling: 100, now: clock.now, sleep: clock.sleep, onAdjust: (f, t, r) => adjustments.push([f, t, r]) });
    const sent = await drive(pacer, clock, 50, 4, () => pacer.answered());
    const inFlightSentAt = sent[sent.length - 1]!;
    pacer.rateLimited(1000);
    // 429s for requests sent before the cut say nothing new.
    pacer.rateLimited(1000, inFlightSentAt);
    pacer.rateLimited(1000, inFlightSentAt);
    expect(adjustments).toEqual([[100, 47.5, 'rate-limited']]);
    expect(pacer.currentRate).toBe(47.5);
  });

  test('a long Retry-After holds every request back', async () => {
    const clock = new FakeClock();
    const pacer = new Pacer({ ceiling: 100, now: clock.now, sleep: clock.sleep });
    await clock.run(pacer.acquire());
    pacer.rateLimited(5000);
    const before = clock.now();
    await clock.run(pacer.acquire());
    expect(clock.now() - before).toBeGreaterThanOrEqual(5000);
  });

  test('clean answers bring the pace back up to the ceiling, never above', async () => {
    const clock = new FakeClock();
    const pacer = new Pacer({ ceiling: 50, now: clock.now, sleep: clock.sleep });
    pacer.rateLimited(1000);
    pacer.rateLimited(undefined);
    expect(pacer.currentRate).toBeLessThan(50);
    const seen: number[] = [];
    await drive(pacer, clock, 1500, 8, () => {
      pacer.answered();
      seen.push(pacer.currentRate);
    });
    expect(Math.max(...seen)).toBeLessThanOrEqual(50);
    expect(pacer.currentRate).toBe(50);
  });

  test('against a server limit below the ceiling it settles near that limit', async () => {
    const clock = new FakeClock();
    const pacer = new Pacer({ ceiling: 120, now: clock.now, sleep: clock.sleep });
    const accepted: number[] = [];
    let limited = 0;
    await drive(pacer, clock, 900, 8, (_i, sentAt) => {
      const t = clock.now();
      const inWindow = accepted.filter((a) => a > t - 1000).length;
      if (inWindow >= 30) {
        limited++;
        pacer.rateLimited(1000, sentAt);
      } else {
        accepted.push(t);
        pacer.answered();
      }
    });
    const seconds = clock.now() / 1000;
    expect(accepted.length / seconds).toBeGreaterThan(30 * 0.85);
    expect(limited / 900).toBeLessThan(0.05);
  });

  test('waiters go first come, first served, behind one timer at a time', async () => {
    const clock = new FakeClock();
    let sleeps = 0;
    let pending = 0;
    let mostPending = 0;
    const sleep = (ms: number, signal?: AbortSignal): Promise<void> => {
      sleeps++;
      mostPending = Math.max(mostPending, ++pending);
      return clock.sleep(ms, signal).finally(() => pending--);
    };
    const pacer = new Pacer({ ceiling: 10, now: clock.now, sleep });
    const order: number[] = [];
    await clock.run(Promise.all(Array.from({ length: 40 }, (_, i) => pacer.acquire().then(() => order.push(i)))));
    expect(order).toEqual(Array.from({ length: 40 }, (_, i) => i));
    // One sleep per grant at most, never one per waiter per grant.
    expect(sleeps).toBeLessThanOrEqual(40);
    expect(mostPending).toBe(1);
    expect(clock.now()).toBeGreaterThanOrEqual(3000);
  });

  test('a waiter whose signal aborts leaves the line with the reason and takes no turn', async () => {
    const clock = new FakeClock();
    const pacer = new Pacer({ ceiling: 1, now: clock.now, sleep: clock.sleep });
    const first = await clock.run(pacer.acquire());
    const stop = new AbortController();
    const cut = pacer.acquire(stop.signal);
    const next = pacer.acquire();
    const reason = new Error('stopping');
    stop.abort(reason);
    await expect(cut).rejects.toBe(reason);
    const second = await clock.run(next);
    // The aborted waiter's turn was not spent: the next one goes a second after the first.
    expect(second - first).toBeGreaterThanOrEqual(1000);
    expect(second - first).toBeLessThan(1100);
  });

  test('when the last waiter leaves the line, the pacer holds no timer (a stopping run can exit)', async () => {
    const clock = new FakeClock();
    const pacer = new Pacer({ ceiling: 1, now: clock.now, sleep: clock.sleep });
    pacer.rateLimited(60_000, clock.now()); // a long Retry-After: everybody waits a minute
    const stop = new AbortController();
    const waiting = pacer.acquire(stop.signal);
    await new Promise((r) => setImmediate(r));
    expect(clock.pending).toBe(1);
    stop.abort(new Error('hard stop'));
    await expect(waiting).rejects.toThrow('hard stop');
    await new Promise((r) => setImmediate(r));
    expect(clock.pending).toBe(0);
  });
});

