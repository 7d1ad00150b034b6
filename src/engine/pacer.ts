/**
 * Spaces requests out so that no one-second window ever holds more than the ceiling
 * (SPEC "--rate … all requests counted"), and adapts the pace to the server.
 *
 * On a 429 the pace is cut (multiplicative decrease) to just under what the server has
 * been accepting over the last second — the best estimate of its real limit — and then,
 * while answers are clean, raised every second (additive increase) back towards the
 * ceiling — in small steps near the pace that last drew a 429. Only a 429 for a request sent at the current pace cuts it again: the ones
 * already in flight were sent at the old pace and say nothing new (as TCP cuts once per
 * window). Concurrency is not a rate limit: this is the rate limit; p-limit only bounds
 * how many requests are in flight.
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

/** Node's timers fire no finer than a millisecond. */
const TIMER_TICK_MS = 1;

interface Waiter {
  readonly resolve: (at: number) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal?: AbortSignal;
  onAbort?: () => void;
  done?: boolean;
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
  /** The pace that last drew a 429: approached carefully. */
  private lastBad = Infinity;
  /** Times of the answers (other than 429) of the last second. */
  private answers: number[] = [];
  /** Requests waiting for their turn, oldest first from lineHead. */
  private line: Waiter[] = [];
  private lineHead = 0;
  /** Waiters in line that are still waiting. */
  private live = 0;
  private pumping = false;
  private pumpSleep?: AbortController;

  constructor(private readonly options: PacerOptions) {
    this.rate = options.ceiling;
    this.windowMs = options.windowMs ?? 1015;
    this.cap = Math.max(1, Math.floor(options.ceiling));
    this.starts = new Array<number>(this.cap).fill(-Infinity);
  }

  get currentRate(): number {
    return this.rate;
  }

  /**
   * Resolves with the time the request may go, which rateLimited() takes back. Requests wait
   * in line, first come first served, behind one timer: waking every waiter at each grant
   * would cost CPU per waiter per request.
   */
  acquire(signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    if (this.line.length === this.lineHead) {
      const now = this.options.now();
      if (this.earliest(now) <= now) {
        this.record(now);
        return Promise.resolve(now);
      }
    }
    return new Promise<number>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          waiter.done = true;
          // Nobody left in line: the pump's timer must not keep a stopping process alive.
          if (--this.live === 0) this.pumpSleep?.abort();
          reject(signal.reason);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.line.push(waiter);
      this.live++;
      if (!this.pumping) void this.pump();
    });
  }

  /** Lets waiters go in order as the pace allows; the only timer the pacer holds. */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.lineHead < this.line.length) {
        const waiter = this.line[this.lineHead]!;
        if (waiter.done) {
          this.shift();
          continue;
        }
        const now = this.options.now();
        const at = this.earliest(now);
        if (at > now) {
          this.pumpSleep = new AbortController();
          try {
            await this.options.sleep(at - now, this.pumpSleep.signal);
          } catch {
            // Cut short because the line emptied; the loop finds it so.
          }
          this.pumpSleep = undefined;
          continue;
        }
        this.record(now);
        this.shift();
        this.live--;
        waiter.done = true;
        if (waiter.onAbort) waiter.signal!.removeEventListener('abort', waiter.onAbort);
        waiter.resolve(now);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Drops the head of the line; the array is compacted once half of it is spent. */
  private shift(): void {
    this.line[this.lineHead++] = undefined as unknown as Waiter;
    if (this.lineHead === this.line.length) {
      this.line = [];
      this.lineHead = 0;
    } else if (this.lineHead > 1024 && this.lineHead * 2 > this.line.length) {
      this.line = this.line.slice(this.lineHead);
      this.lineHead = 0;
    }
  }

  rateLimited(retryAfterMs: number | undefined, sentAt = this.options.now()): void {
    const now = this.options.now();
    // A long Retry-After (a quota) holds everybody back. A short one ("1": somewhere within
    // the second) is honoured by the request that drew it; the others go on at the cut pace.
    if (retryAfterMs !== undefined && retryAfterMs >= 2000) this.pausedUntil = Math.max(this.pausedUntil, now + retryAfterMs);
    // The server counts over a second: for a second after a cut its window still holds
    // what was sent before, so only later 429s are news.
    if (sentAt < this.lastCut || now - this.lastCut < 1000) return;
    const from = this.rate;
    const accepted = this.acceptedLastSecond(now);
    // Without enough answers to go by (the very first requests), halve.
    const estimate = accepted >= 5 ? accepted * 0.95 : from * 0.5;
    this.rate = Math.max(this.options.floor ?? 0.5, Math.min(from * (this.options.decrease ?? 0.9), estimate));
    this.lastBad = from;
    this.lastCut = now;
    this.lastRaise = now;
    this.options.onAdjust?.(from, this.rate, 'rate-limited');
  }

  answered(): void {
    const now = this.options.now();
    this.answers.push(now);
    if (this.answers.length > 4 * this.cap + 16) this.acceptedLastSecond(now);
    if (this.rate >= this.options.ceiling) return;
    if (now - this.lastRaise < 1000 || now < this.pausedUntil) return;
    const from = this.rate;
    const step = from >= 0.9 * this.lastBad ? Math.max(0.25, from * 0.01) : Math.max(0.5, this.options.ceiling / 50, from * 0.03);
    this.rate = Math.min(this.options.ceiling, from + step);
    this.lastRaise = now;
    this.options.onAdjust?.(from, this.rate, 'recovering');
  }

  private acceptedLastSecond(now: number): number {
    let drop = 0;
    while (drop < this.answers.length && this.answers[drop]! <= now - 1000) drop++;
    if (drop > 0) this.answers = this.answers.slice(drop);
    return this.answers.length;
  }

  /**
   * The request granted at `grantedAt` is leaving now. Work between the grant and the send
   * (taking a token, building the request) delays some requests more than others; counting
   * the window from the real send keeps those delays from squeezing a window at the server.
   */
  sent(grantedAt: number): void {
    const now = this.options.now();
    for (let i = 1; i <= this.count; i++) {
      const index = (this.head - i + this.cap) % this.cap;
      if (this.starts[index] === grantedAt) {
        this.starts[index] = Math.max(grantedAt, now);
        return;
      }
    }
  }

  /**
   * When the next request may go. The spacing (nextAt) may be taken up to a timer tick early,
   * since no timer is finer; the hard cap on a window and a Retry-After pause may not.
   */
  private earliest(now: number): number {
    // The oldest of the last `cap` starts must be a full window ago.
    const oldest = this.count < this.cap ? -Infinity : this.starts[this.head]!;
    const hard = Math.max(this.pausedUntil, oldest + this.windowMs);
    return Math.max(hard, this.nextAt - TIMER_TICK_MS <= now ? now : this.nextAt);
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
