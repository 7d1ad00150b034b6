/**
 * Runs `work` over a stream of items with at most `concurrency` in flight, pulling items only
 * as fast as they finish, and hands the results to `emit` in input order. The shape shared by
 * run (batch.ts), verify and rollback.
 *
 * One counter and one waiter rather than Promise.race over the items in flight: a race
 * subscribes to every item again for each item taken, which costs CPU and memory per row.
 */
import { InOrder } from './in-order.js';

export async function orderedPool<T, R extends { row: number }>(
  /** A stream (rows read from a file), or a list already in memory. */
  items: AsyncIterable<T> | Iterable<T>,
  concurrency: number,
  work: (item: T) => Promise<R>,
  emit: (result: R) => Promise<void> | void,
  /** Each result the moment its item is finished, before it waits for the items before it. */
  onFinished?: (result: R) => void,
): Promise<void> {
  const order = new InOrder<R>(emit);
  const maxWaiting = Math.max(1000, concurrency * 100);
  let active = 0;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const finished = (): void => {
    active--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  const slotFree = (): Promise<void> => new Promise((resolve) => (wake = resolve));

  for await (const item of items) {
    while (!failure && active > 0 && (active >= concurrency || order.buffered >= maxWaiting)) await slotFree();
    if (failure) break;
    if (order.backlog >= maxWaiting) await order.settled();
    active++;
    work(item).then(
      (result) => {
        onFinished?.(result);
        order.put(result);
        finished();
      },
      (error: unknown) => {
        failure ??= { error };
        finished();
      },
    );
  }
  while (active > 0) await slotFree();
  if (failure) throw failure.error;
  await order.settled();
}
