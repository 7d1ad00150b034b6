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
  private readonly started = Date.now();

  constructor(
    private readonly out: NodeJS.WritableStream & { columns?: number },
    private readonly source: ProgressSource,
  ) {}

  start(intervalMs = 250): void {
    this.timer = setInterval(() => this.draw(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.draw();
    this.out.write('\n');
  }

  render(): string {
    const { tally, total } = this.source;
    const done = tally.done;
    const elapsed = (Date.now() - this.started) / 1000;
    const perSec = elapsed > 0 ? done / elapsed : 0;
    const eta = perSec > 0 && done < total ? `${Math.ceil((total - done) / perSec)}s` : '-';
    const width = 20;
    const filled = total > 0 ? Math.round((done / total) * width) : 0;
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const o = tally.outcomes;
    return `${bar} ${done}/${total} · created ${o.CREATED} existing ${o.EXISTING} failed ${o.FAILED} invalid ${o.INVALID} · ${this.source.rate().toFixed(1)} req/s · retries ${this.source.retries()} · ETA ${eta}`;
  }

  private draw(): void {
    const line = this.render();
    const max = (this.out.columns ?? 120) - 1;
    this.out.write(`\r\x1b[2K${line.length > max ? line.slice(0, max) : line}`);
  }
}
