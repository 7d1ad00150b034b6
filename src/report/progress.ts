/**
 * Progress for people: one line on stderr, redrawn in place, when stderr is a TTY.
 * Off a TTY (cron) nothing is drawn; the run logs a progress event every so often instead.
 */
import type { Tally } from './tally.js';

export interface ProgressSource {
  readonly tally: Tally;
  readonly total: number;
  rate(): number;
  retries(): number;
}

export class ProgressLine {
  private timer?: NodeJS.Timeout;
  private started = Date.now();

  constructor(
    private readonly out: NodeJS.WritableStream & { columns?: number },
    private readonly source: ProgressSource,
  ) {}

  start(intervalMs = 250): void {
    this.timer = setInterval(() => this.draw(), intervalMs);
    this.timer.unref();
  }

  /** The clock of the ETA starts again (after a phase that is not rows, such as an import). */
  restart(): void {
    this.started = Date.now();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.draw();
    this.out.write('\n');
  }

  /**
   * The line, fitted to `columns`: the least useful parts go first (the bar, then retries
   * and the rate, then the outcome words), so that the count and the ETA always show.
   */
  render(columns = this.out.columns || 120): string {
    const { tally, total } = this.source;
    const done = tally.done;
    const elapsed = (Date.now() - this.started) / 1000;
    // The pace of this run's own work: rows an earlier run finished cost nothing and say nothing of it.
    const worked = done - tally.finishedEarlier;
    const perSec = elapsed > 0 ? worked / elapsed : 0;
    const eta = perSec > 0 && done < total ? duration(Math.ceil((total - done) / perSec)) : '-';
    const width = 20;
    const filled = total > 0 ? Math.round((done / total) * width) : 0;
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const o = tally.outcomes;
    const count = `${done}/${total}`;
    const rate = `${this.source.rate().toFixed(1)} req/s`;
    const retries = `retries ${this.source.retries()}`;
    const long = `created ${o.CREATED} existing ${o.EXISTING} failed ${o.FAILED} invalid ${o.INVALID}`;
    const short = `✓${o.CREATED + o.EXISTING} ✗${o.FAILED + o.INVALID}`;
    const max = Math.max(10, columns - 1);
    const candidates = [
      [bar, count, long, rate, retries, `ETA ${eta}`],
      [count, long, rate, retries, `ETA ${eta}`],
      [count, long, rate, `ETA ${eta}`],
      [count, short, rate, `ETA ${eta}`],
      [count, short, `ETA ${eta}`],
      [count, `ETA ${eta}`],
    ].map((parts) => parts.join(' · ').replace(/^(█|░)+ · /, (m) => m.replace(' · ', ' ')));
    return candidates.find((line) => [...line].length <= max) ?? candidates[candidates.length - 1]!.slice(0, max);
  }

  private draw(): void {
    this.out.write(`\r\x1b[2K${this.render()}`);
  }
}

/** 75 -> "1m15s", 3700 -> "1h01m". */
function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
