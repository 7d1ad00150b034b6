import { orderedPool } from '../../src/engine/ordered-pool.js';

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function* numbers(n: number, pulled: number[]): AsyncGenerator<number> {
  for (let i = 1; i <= n; i++) {
    pulled.push(i);
    yield i;
  }
}

describe('the ordered pool', () => {
  test('results come out in input order, with at most `concurrency` items in flight, pulled as they finish', async () => {
    const pulled: number[] = [];
    const emitted: number[] = [];
    let active = 0;
    let most = 0;
    let pulledAheadMost = 0;
    await orderedPool(
      numbers(60, pulled),
      4,
      async (i) => {
        active++;
        most = Math.max(most, active);
        pulledAheadMost = Math.max(pulledAheadMost, pulled.length - emitted.length);
        // Later items finish first within each group of four.
        await tick(((60 - i) % 4) * 3);
        active--;
        return { row: i };
      },
      (r) => {
        emitted.push(r.row);
      },
    );
    expect(emitted).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(most).toBe(4);
    // The source is read only as far as the pool can take, not to the end up front.
    expect(pulledAheadMost).toBeLessThan(60);
  });

  test('a failing item stops the intake; the items in flight finish before the failure is reported', async () => {
    const pulled: number[] = [];
    const started: number[] = [];
    const finished: number[] = [];
    const boom = new Error('boom');
    const failure = orderedPool(
      numbers(100, pulled),
      3,
      async (i) => {
        started.push(i);
        if (i === 5) {
          await tick(1);
          throw boom;
        }
        await tick(20);
        finished.push(i);
        return { row: i };
      },
      () => undefined,
    );
    await expect(failure).rejects.toBe(boom);
    // Items started alongside the failing one were allowed to end (nothing left running)…
    expect(finished.sort((a, b) => a - b)).toEqual(started.filter((i) => i !== 5));
    // …and no new item was started once the failure was known (at most one more was read).
    expect(started.length).toBeLessThanOrEqual(6);
    expect(pulled.length).toBeLessThanOrEqual(7);
  });
});
