/**
 * What the journal's records say, pair by pair: the pure part of the journal, shared by the
 * file journal, the read-only one of a dry run and the in-memory one of the tests.
 *
 * Records (one JSON object a line, `v` the journal version):
 * - `open`    a run opened the journal (`at`): every create an earlier run left unanswered was
 *             sent before this moment;
 * - `start`   a create for the pair is about to be written (`at`), durable before it leaves;
 *             `until`: the latest moment PingOne can act on it (`at` + the request timeout);
 * - `done`    the pair is final: `o` CREATED or EXISTING (`d` the device id), or for an imported
 *             token (key `import|<serial>`) IMPORTED or ALREADY_PRESENT (`d` the token id); `r` an alias key
 *             (the row's email or username and serial) when the row named its user that way;
 *             `s` the device's status; `a` "refused" when PingOne refused the codes computed
 *             from the seed (a folder run leaves such a device to the user's first sign-in);
 * - `clear`   the pair's earlier creates are settled and made nothing: no claim remains;
 * - `job`     PingOne accepted import job `j` for the started keys `ks`: a rerun polls it to its end;
 * - `removed` rollback deleted the device this job created: the pair is open again.
 */

export const JOURNAL_VERSION = 1;

export type FinalOutcome = 'CREATED' | 'EXISTING' | 'IMPORTED' | 'ALREADY_PRESENT';

const FINAL = new Set<string>(['CREATED', 'EXISTING', 'IMPORTED', 'ALREADY_PRESENT']);

/** A stretch of our clock in which a create of ours was out with its answer never heard. */
export interface Window {
  readonly from: number;
  readonly until: number;
}

export interface PairState {
  /** Creates sent for the pair whose effect was never learned (a crash, a lost answer). */
  readonly windows?: readonly Window[];
  readonly outcome?: FinalOutcome;
  readonly deviceId?: string;
  readonly deviceStatus?: string;
  /** The PingOne user id of the pair (the key's first half). */
  readonly userId?: string;
  /** PingOne refused the activation codes computed from the seed. */
  readonly activationRefused?: boolean;
  /** Import jobs (oathJobs ids) that carried the pair's token and whose end this tool never learned. */
  readonly jobs?: readonly string[];
}

/**
 * Whether a pair's recorded state is final: nothing left for any run to do. The one place that
 * decides it (a run reports such a row from the journal; a folder run calls a file whose rows
 * are all final "nothing to do"). With --activate, a device still waiting for its code is not
 * final, whether or not PingOne refused the codes sent for it (a run reads it, sends no code
 * where codes were refused, and keeps the exit code at 1 until the user has activated it).
 */
export function isFinal(state: PairState | undefined, activate: boolean): boolean {
  if (state?.outcome === undefined) return false;
  return !(activate && state.deviceStatus === 'ACTIVATION_REQUIRED');
}

export function pairKey(userId: string, serialNumber: string): string {
  return `${userId.toLowerCase()}|${serialNumber}`;
}

export class JournalState {
  private readonly pairs = new Map<string, PairState>();
  /** email/username keys of rows that named their user that way -> the pair key. */
  private readonly aliases = new Map<string, string>();
  /** Pairs with windows recorded since the last `open`: one without `until` (older journals) ends there. */
  private readonly open = new Set<string>();

  get size(): number {
    return this.pairs.size;
  }

  lookup(key: string): PairState | undefined {
    return this.pairs.get(key);
  }

  /** The pair an email/username row was finished under, if any. */
  lookupAlias(alias: string): PairState | undefined {
    const key = this.aliases.get(alias);
    return key === undefined ? undefined : this.pairs.get(key);
  }

  /** Serials an earlier run left assigned (CREATED or EXISTING) and this run has not finished. */
  pairedSerials(): Set<string> {
    const serials = new Set<string>();
    for (const [key, state] of this.pairs) if (state.outcome === 'CREATED' || state.outcome === 'EXISTING') serials.add(key.slice(key.indexOf('|') + 1));
    return serials;
  }

  /** Forgets a pair this run has finished: nothing of this run is looked up again. */
  forget(key: string, alias?: string): void {
    this.pairs.delete(key);
    this.open.delete(key);
    if (alias !== undefined) this.aliases.delete(alias);
  }

  apply(record: Record<string, unknown>): void {
    const at = Number(record['at']);
    if (record['e'] === 'open') {
      this.closeWindows(Number.isFinite(at) ? at : Date.now());
      return;
    }
    if (record['e'] === 'job') {
      const job = record['j'];
      const keys = record['ks'];
      if (typeof job !== 'string' || !Array.isArray(keys)) return;
      for (const k of keys) {
        const state = typeof k === 'string' ? this.pairs.get(k) : undefined;
        if (state?.windows) this.pairs.set(k as string, { ...state, jobs: [...(state.jobs ?? []), job] });
      }
      return;
    }
    const key = record['k'];
    if (typeof key !== 'string') return;
    const prior = this.pairs.get(key);
    switch (record['e']) {
      case 'start':
        if (prior?.outcome !== undefined) break;
        {
          const until = Number(record['until']);
          this.pairs.set(key, { ...(prior?.jobs ? { jobs: prior.jobs } : {}), windows: [...(prior?.windows ?? []), { from: Number.isFinite(at) ? at : 0, until: Number.isFinite(until) ? until : Infinity }] });
          this.open.add(key);
        }
        break;
      case 'done':
        if (typeof record['o'] === 'string' && FINAL.has(record['o'])) {
          this.pairs.set(key, {
            outcome: record['o'] as FinalOutcome,
            deviceId: String(record['d']),
            deviceStatus: typeof record['s'] === 'string' ? record['s'] : undefined,
            userId: key.slice(0, key.indexOf('|')),
            ...(record['a'] === 'refused' ? { activationRefused: true } : {}),
          });
          this.open.delete(key);
          if (typeof record['r'] === 'string') this.aliases.set(record['r'], key);
        }
        break;
      case 'clear':
      case 'removed':
        this.pairs.delete(key);
        this.open.delete(key);
        // An alias of the pair now leads nowhere (lookupAlias finds no pair); it is dropped when
        // the pair is finished again under it.
        break;
      default:
        break;
    }
  }

  /** Windows left open by a run are closed by the next run's opening (or now). */
  closeWindows(at: number): void {
    for (const key of this.open) {
      const state = this.pairs.get(key);
      if (state?.windows) this.pairs.set(key, { ...state, windows: state.windows.map((w) => (w.until === Infinity ? { from: w.from, until: Math.max(w.from, at) } : w)) });
    }
    this.open.clear();
  }
}
