/**
 * Rows finish out of order; the results go out in input order. Finished rows wait here until
 * every row before them is out. The batch stops taking rows while too many wait, which keeps
 * memory bounded even when one row is stuck in retries.
 */
export class InOrder<T extends { row: number }> {
  private next = 1;
  private readonly waiting = new Map<number, T>();
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly sink: (item: T) => Promise<void> | void) {}

  /** Released rows the sink has not taken yet. */
  private backlogCount = 0;

  get buffered(): number {
    return this.waiting.size;
  }

  get backlog(): number {
    return this.backlogCount;
  }

  put(item: T): void {
    this.waiting.set(item.row, item);
    while (this.waiting.has(this.next)) {
      const ready = this.waiting.get(this.next)!;
      this.waiting.delete(this.next);
      this.next++;
      this.backlogCount++;
      this.chain = this.chain.then(async () => {
        await this.sink(ready);
        this.backlogCount--;
      });
    }
  }

  /** Resolves when everything released so far has been through the sink. */
  settled(): Promise<void> {
    return this.chain;
  }
}
