/**
 * Runs `work` over a stream of items with at most `concurrency` in flight, pulling items only
 * as fast as they finish, and hands the results to `emit` in input order. The shape shared by
 * run (batch.ts), verify and rollback.
 */
import pLimit from 'p-limit';
import { InOrder } from './in-order.js';

export async function orderedPool<T, R extends { row: number }>(
  items: AsyncIterable<T>,
  concurrency: number,
  work: (item: T) => Promise<R>,
  emit: (result: R) => Promise<void> | void,
): Promise<void> {
  const order = new InOrder<R>(emit);
  const limit = pLimit(concurrency);
  const inflight = new Set<Promise<void>>();
  const maxWaiting = Math.max(1000, concurrency * 100);
  for await (const item of items) {
    while (inflight.size > 0 && (limit.activeCount + limit.pendingCount >= concurrency || order.buffered >= maxWaiting)) {
      await Promise.race(inflight);
    }
    if (order.backlog >= maxWaiting) await order.settled();
    const task: Promise<void> = limit(() => work(item)).then((result) => {
      inflight.delete(task);
      order.put(result);
    });
    inflight.add(task);
  }
  await Promise.all(inflight);
  await order.settled();
}
