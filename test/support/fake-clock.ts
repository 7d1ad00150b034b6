/** Virtual time for unit tests: sleeps resolve when the test advances the clock, not the wall. */
export class FakeClock {
  t = 0;
  private timers: Array<{ at: number; resolve: () => void; seq: number }> = [];
  private seq = 0;

  now = (): number => this.t;

  /** Sleeps not yet resolved or cut short. */
  get pending(): number {
    return this.timers.length;
  }

  sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise((resolve, reject) => {
      signal?.throwIfAborted();
      const timer = { at: this.t + Math.max(0, ms), resolve, seq: this.seq++ };
      this.timers.push(timer);
      signal?.addEventListener('abort', () => {
        this.timers = this.timers.filter((x) => x !== timer);
        reject(signal.reason);
      });
    });

  /** Runs until `work` settles, jumping the clock from timer to timer. */
  async run<T>(work: Promise<T>): Promise<T> {
    let done = false;
    const settled = work.finally(() => {
      done = true;
    });
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (done) return settled;
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers.shift();
      if (!next) throw new Error('deadlock: nothing scheduled and the work is not done');
      this.t = Math.max(this.t, next.at);
      next.resolve();
    }
  }
}

export { maxInWindow } from '../../src/sandbox/server.js';
