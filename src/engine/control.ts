/**
 * How a run is stopped. `stopping` ends the taking of rows and of further attempts; `hard`
 * cuts requests still in flight once the drain period is over. The first reason given wins.
 */
import { setMaxListeners } from 'node:events';
import { StopError } from '../errors.js';

export class RunControl {
  private readonly soft = new AbortController();
  private readonly hardController = new AbortController();
  private timer?: NodeJS.Timeout;
  reason?: StopError;

  constructor(private readonly drainMs = 5000) {
    // Every request in flight listens for the stop: as many listeners as rows in flight.
    setMaxListeners(0, this.soft.signal, this.hardController.signal);
  }

  get stopping(): AbortSignal {
    return this.soft.signal;
  }

  get hard(): AbortSignal {
    return this.hardController.signal;
  }

  get stopped(): boolean {
    return this.soft.signal.aborted;
  }

  stop(reason: StopError): void {
    if (this.stopped) return;
    this.reason = reason;
    this.soft.abort(reason);
    this.timer = setTimeout(() => this.hardController.abort(reason), this.drainMs);
    this.timer.unref();
  }

  /**
   * A control for one part of the work (one file of a folder run): stopped when this one is
   * (a signal), and stoppable alone (a file's own breaker) without stopping the rest.
   */
  child(): RunControl {
    const child = new RunControl(this.drainMs);
    const follow = (): void => child.stop(this.reason!);
    if (this.stopped) follow();
    else this.soft.signal.addEventListener('abort', follow, { once: true });
    const dispose = child.dispose.bind(child);
    child.dispose = () => {
      this.soft.signal.removeEventListener('abort', follow);
      dispose();
    };
    return child;
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
