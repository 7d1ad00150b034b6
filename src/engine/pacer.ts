/**
 * Spaces requests out so that no one-second window ever holds more than the ceiling
 * (SPEC "--rate … all requests counted"), and adapts the pace to the server:
 * on a 429 it waits Retry-After and cuts the pace (multiplicative decrease), then, while
 * answers are clean, raises it again (additive increase) — quickly back to just under the
 * pace that last drew a 429, slowly beyond it. Concurrency is not a rate limit: this is the
 * rate limit; p-limit only bounds how many requests are in flight.
 */
import type { RequestGate } from '../pingone/gate.js';

export interface PacerOptions {
  /** --rate: requests per second, never exceeded. */
  readonly ceiling: number;
  readonly now: () => number;
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly onAdjust?: (from: number, to: number, reason: 'rate-limited' | 'recovering') => void;
  /**
   * Window length used for the hard cap. A little over a second, so that a request delayed
   * on its way still lands outside the previous second as the server counts it.
   */
  readonly windowMs?: number;
  readonly decrease?: number;
  readonly floor?: number;
}

export class Pacer implements RequestGate {
  private rate: number;
  private readonly windowMs: number;
  private readonly cap: number;
  /** Start times of the last `cap` requests, oldest first (a ring). */
  private readonly starts: number[];
  private head = 0;
  private count = 0;
  private nextAt = 0;
  private pausedUntil = 0;
  private lastCut = -Infinity;
  private lastRaise = -Infinity;
  private lastBadRate = Infinity;

  constructor(private readonly options: PacerOptions) {
    this.rate = options.ceiling;
    this.windowMs = options.windowMs ?? 1015;
    this.cap = Math.max(1, Math.floor(options.ceiling));
    this.starts = new Array<number>(this.cap).fill(-Infinity);
  }

  get currentRate(): number {
    return this.rate;
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const now = this.options.now();
      const at = this.earliest();
      if (at <= now) {
        this.record(now);
        return;
      }
      await this.options.sleep(at - now, signal);
    }
  }

  rateLimited(retryAfterMs: number | undefined): void {
    const now = this.options.now();
    this.pausedUntil = Math.max(this.pausedUntil, now + (retryAfterMs ?? 1000));
    // One cut per burst: the requests already in flight will all come back 429 too.
    if (now - this.lastCut < 1000) return;
    const from = this.rate;
    this.lastBadRate = from;
    this.rate = Math.max(this.options.floor ?? 0.5, from * (this.options.decrease ?? 0.7));
    this.lastCut = now;
    this.lastRaise = now;
    this.options.onAdjust?.(from, this.rate, 'rate-limited');
  }

  answered(): void {
    if (this.rate >= this.options.ceiling) return;
    const now = this.options.now();
    if (now - this.lastRaise < 1000 || now < this.pausedUntil) return;
    const from = this.rate;
    const fast = from < 0.9 * this.lastBadRate;
    const step = fast ? Math.max(1, this.options.ceiling / 20) : Math.max(0.2, from * 0.02);
    this.rate = Math.min(this.options.ceiling, fast ? Math.min(from + step, Math.max(from, 0.9 * this.lastBadRate)) : from + step);
    this.lastRaise = now;
    this.options.onAdjust?.(from, this.rate, 'recovering');
  }

  private earliest(): number {
    // The oldest of the last `cap` starts must be a full window ago.
    const oldest = this.count < this.cap ? -Infinity : this.starts[this.head]!;
    return Math.max(this.nextAt, this.pausedUntil, oldest + this.windowMs);
  }

  private record(now: number): void {
    this.starts[this.head] = now;
    this.head = (this.head + 1) % this.cap;
    if (this.count < this.cap) this.count++;
    this.nextAt = Math.max(this.nextAt, now - 1000 / this.rate) + 1000 / this.rate;
  }
}

/** A sleep that an AbortSignal cuts short (rejecting with the signal's reason). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
