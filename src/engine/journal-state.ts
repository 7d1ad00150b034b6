/**
 * What the journal's records say: the pure part of the journal, shared by the file journal,
 * the read-only one of a dry run and the in-memory one of the tests. The journal speaks in
 * kinds: one record type per fact, each with its own outcomes.
 *
 * Records of journal version 2 (one JSON object a line; `v` the version, `t` the kind, `e` the
 * event):
 * - `{e:"open"}`                 a run opened the journal (`at`): every request an earlier run
 *                                left unanswered was sent before this moment;
 * - `t:"assign"` (a user's device for a serial; `k` = `<userId>|<serial>`):
 *   - `start`    a create is about to be written (`at`), durable before it leaves; `until` the
 *                latest moment PingOne can act on it (`at` + the request timeout);
 *   - `done`     final: `o` CREATED or EXISTING, `d` the device id, `s` its status then, `r` an
 *                alias key (the row's email or username and serial) when the row named its user so;
 *   - `clear`    the pair's earlier creates are settled and made nothing: no claim remains;
 *   - `removed`  rollback deleted the device this job created: the pair is open again;
 * - `t:"import"` (a token into the inventory; `sn` the serial):
 *   - `start`, `clear` as above; `done` with `o` IMPORTED or ALREADY_PRESENT and `id` the token
 *     id when known; `job` with `j` an oathJobs id accepted for the started serials `sns`;
 * - `t:"activation"` (`k` as for assign): `done` with `s` the device's status after this tool's
 *   codes (or a read), and `refused` when PingOne refused the codes computed from the seed.
 * Kinds to come (revocation, unassignment, replacement, resync) are records of their own kind;
 * a kind this release does not know is refused, never skipped.
 *
 * Version 1 (one record type, imports disguised as pairs of a user called `import`) is read
 * through `fromV1`, and rewritten as version 2 the first time a run opens it for writing.
 */

export const JOURNAL_VERSION = 2;

export type DeviceOutcome = 'CREATED' | 'EXISTING';
export type TokenImportOutcome = 'IMPORTED' | 'ALREADY_PRESENT';

const DEVICE_FINAL = new Set<string>(['CREATED', 'EXISTING']);
const IMPORT_FINAL = new Set<string>(['IMPORTED', 'ALREADY_PRESENT']);

/** The kinds of fact this release records and reads. */
export const KINDS = new Set(['assign', 'import', 'activation']);

/** A stretch of our clock in which a request of ours was out with its answer never heard. */
export interface Window {
  readonly from: number;
  readonly until: number;
}

/** A user's device for a serial, as far as the journal knows. */
export interface PairState {
  /** Creates sent for the pair whose effect was never learned (a crash, a lost answer). */
  readonly windows?: readonly Window[];
  readonly outcome?: DeviceOutcome;
  readonly deviceId?: string;
  readonly deviceStatus?: string;
  /** The PingOne user id of the pair (the key's first half). */
  readonly userId?: string;
  /** PingOne refused the activation codes computed from the seed. */
  readonly activationRefused?: boolean;
}

/** A token of the inventory this tool imported (or found present), as far as the journal knows. */
export interface ImportState {
  /** Imports sent whose effect was never learned. */
  readonly windows?: readonly Window[];
  readonly outcome?: TokenImportOutcome;
  readonly tokenId?: string;
  /** Import jobs (oathJobs ids) that carried the token and whose end this tool never learned. */
  readonly jobs?: readonly string[];
}

export function pairKey(userId: string, serialNumber: string): string {
  return `${userId.toLowerCase()}|${serialNumber}`;
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

/** A version 1 record as the version 2 records that say the same. */
export function fromV1(record: Record<string, unknown>): Array<Record<string, unknown>> {
  const { v: _v, e, k, ks, a, d, s, o, r, ...rest } = record;
  if (e === 'open') return [{ v: JOURNAL_VERSION, e, ...rest }];
  if (e === 'job') {
    const serials = Array.isArray(ks) ? ks.filter((x): x is string => typeof x === 'string' && x.startsWith('import|')).map((x) => x.slice(7)) : [];
    return [{ v: JOURNAL_VERSION, t: 'import', e, sns: serials, ...rest }];
  }
  if (typeof k !== 'string') return [];
  if (k.startsWith('import|')) {
    return [{ v: JOURNAL_VERSION, t: 'import', e, sn: k.slice(7), ...rest, ...(o !== undefined ? { o } : {}), ...(typeof d === 'string' && d !== '' ? { id: d } : {}) }];
  }
  const assign = { v: JOURNAL_VERSION, t: 'assign', e, k, ...rest, ...(o !== undefined ? { o, d, s, r } : {}), ...(e === 'removed' ? { d } : {}) };
  // Version 1 kept an activation's outcome in the pair's `done` record.
  return a === 'refused' ? [assign, { v: JOURNAL_VERSION, t: 'activation', e: 'done', k, d, s, refused: true, ...rest }] : [assign];
}

export class JournalState {
  private readonly pairs = new Map<string, PairState>();
  private readonly imports = new Map<string, ImportState>();
  /** email/username keys of rows that named their user that way -> the pair key. */
  private readonly aliases = new Map<string, string>();
  /** Pairs and serials with windows recorded since the last `open`: one without `until` ends there. */
  private readonly openPairs = new Set<string>();
  private readonly openImports = new Set<string>();

  /** Facts held: what earlier runs recorded and this run has not finished. */
  get size(): number {
    return this.pairs.size + this.imports.size;
  }

  lookup(key: string): PairState | undefined {
    return this.pairs.get(key);
  }

  /** The pair an email/username row was finished under, if any. */
  lookupAlias(alias: string): PairState | undefined {
    const key = this.aliases.get(alias);
    return key === undefined ? undefined : this.pairs.get(key);
  }

  lookupImport(serial: string): ImportState | undefined {
    return this.imports.get(serial);
  }

  /** Serials an earlier run left assigned (CREATED or EXISTING) and this run has not finished. */
  pairedSerials(): Set<string> {
    const serials = new Set<string>();
    for (const [key, state] of this.pairs) if (state.outcome !== undefined) serials.add(key.slice(key.indexOf('|') + 1));
    return serials;
  }

  /** Every device the journal says is in place (CREATED or EXISTING), with its last known status. */
  *devices(): Iterable<{ readonly deviceId: string; readonly deviceStatus?: string; readonly userId?: string }> {
    for (const state of this.pairs.values()) if (state.outcome !== undefined && state.deviceId) yield { deviceId: state.deviceId, deviceStatus: state.deviceStatus, userId: state.userId };
  }

  /** Forgets a pair this run has finished: nothing of this run is looked up again. */
  forget(key: string, alias?: string): void {
    this.pairs.delete(key);
    this.openPairs.delete(key);
    if (alias !== undefined) this.aliases.delete(alias);
  }

  /** Forgets a token this run has settled. */
  forgetImport(serial: string): void {
    this.imports.delete(serial);
    this.openImports.delete(serial);
  }

  /** Applies a version 2 record; throws for a kind this release does not know. */
  apply(record: Record<string, unknown>): void {
    const at = Number(record['at']);
    if (record['e'] === 'open') {
      this.closeWindows(Number.isFinite(at) ? at : Date.now());
      return;
    }
    switch (record['t']) {
      case 'assign':
        return this.applyAssign(record, at);
      case 'import':
        return this.applyImport(record, at);
      case 'activation':
        return this.applyActivation(record);
      default:
        throw new UnknownKind(String(record['t']));
    }
  }

  private applyAssign(record: Record<string, unknown>, at: number): void {
    const key = record['k'];
    if (typeof key !== 'string') return;
    const prior = this.pairs.get(key);
    switch (record['e']) {
      case 'start':
        if (prior?.outcome !== undefined) return;
        this.pairs.set(key, { windows: [...(prior?.windows ?? []), windowOf(at, record['until'])] });
        this.openPairs.add(key);
        return;
      case 'done':
        if (typeof record['o'] !== 'string' || !DEVICE_FINAL.has(record['o'])) return;
        this.pairs.set(key, {
          outcome: record['o'] as DeviceOutcome,
          deviceId: String(record['d']),
          deviceStatus: typeof record['s'] === 'string' ? record['s'] : undefined,
          userId: key.slice(0, key.indexOf('|')),
        });
        this.openPairs.delete(key);
        if (typeof record['r'] === 'string') this.aliases.set(record['r'], key);
        return;
      case 'clear':
      case 'removed':
        // An alias of the pair now leads nowhere (lookupAlias finds no pair); it is dropped when
        // the pair is finished again under it.
        this.pairs.delete(key);
        this.openPairs.delete(key);
        return;
      default:
        throw new UnknownKind('assign', String(record['e']));
    }
  }

  private applyImport(record: Record<string, unknown>, at: number): void {
    if (record['e'] === 'job') {
      const job = record['j'];
      const serials = record['sns'];
      if (typeof job !== 'string' || !Array.isArray(serials)) return;
      for (const serial of serials) {
        const state = typeof serial === 'string' ? this.imports.get(serial) : undefined;
        if (state?.windows) this.imports.set(serial as string, { ...state, jobs: [...(state.jobs ?? []), job] });
      }
      return;
    }
    const serial = record['sn'];
    if (typeof serial !== 'string') return;
    const prior = this.imports.get(serial);
    switch (record['e']) {
      case 'start':
        if (prior?.outcome !== undefined) return;
        this.imports.set(serial, { ...(prior?.jobs ? { jobs: prior.jobs } : {}), windows: [...(prior?.windows ?? []), windowOf(at, record['until'])] });
        this.openImports.add(serial);
        return;
      case 'done':
        if (typeof record['o'] !== 'string' || !IMPORT_FINAL.has(record['o'])) return;
        this.imports.set(serial, { outcome: record['o'] as TokenImportOutcome, tokenId: typeof record['id'] === 'string' ? record['id'] : undefined });
        this.openImports.delete(serial);
        return;
      case 'clear':
        this.imports.delete(serial);
        this.openImports.delete(serial);
        return;
      default:
        throw new UnknownKind('import', String(record['e']));
    }
  }

  private applyActivation(record: Record<string, unknown>): void {
    if (record['e'] !== 'done') throw new UnknownKind('activation', String(record['e']));
    const key = record['k'];
    const prior = typeof key === 'string' ? this.pairs.get(key) : undefined;
    if (!prior?.outcome) return;
    this.pairs.set(key as string, { ...prior, deviceStatus: typeof record['s'] === 'string' ? record['s'] : prior.deviceStatus, ...(record['refused'] === true ? { activationRefused: true } : { activationRefused: undefined }) });
  }

  /** Windows left open by a run are closed by the next run's opening (or now). */
  closeWindows(at: number): void {
    const close = <S extends { readonly windows?: readonly Window[] }>(map: Map<string, S>, open: Set<string>): void => {
      for (const key of open) {
        const state = map.get(key);
        if (state?.windows) map.set(key, { ...state, windows: state.windows.map((w) => (w.until === Infinity ? { from: w.from, until: Math.max(w.from, at) } : w)) });
      }
      open.clear();
    };
    close(this.pairs, this.openPairs);
    close(this.imports, this.openImports);
  }
}

function windowOf(at: number, untilValue: unknown): Window {
  const until = Number(untilValue);
  return { from: Number.isFinite(at) ? at : 0, until: Number.isFinite(until) ? until : Infinity };
}

/** A record of a kind (or an event of a kind) this release does not know: written by a newer release. */
export class UnknownKind extends Error {
  constructor(
    readonly kind: string,
    readonly event?: string,
  ) {
    super(`a record of kind ${JSON.stringify(kind.slice(0, 40))}${event === undefined ? '' : `, event ${JSON.stringify(event.slice(0, 40))}`}`);
  }
}
