/** The engine's context for unit tests: no real waits; sleeps recorded in `sleeps`. */
import type { AssignContext } from '../../src/engine/assign-row.js';
import { NullJournal, type PairJournal } from '../../src/engine/journal.js';
import type { DeviceApi } from '../../src/pingone/client.js';

export function assignContext(api: DeviceApi, journal: PairJournal = new NullJournal(), sleeps: number[] = []): AssignContext {
  return {
    api,
    journal,
    maxAttempts: 8,
    timeoutMs: 30_000,
    backoff: { baseMs: 1000, capMs: 30_000 },
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    stopping: new AbortController().signal,
    hard: new AbortController().signal,
    onSystemic: () => undefined,
  };
}
