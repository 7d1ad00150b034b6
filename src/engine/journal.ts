/**
 * The journal: an append-only JSON-lines file beside the reports that makes reruns resume and
 * that proves which devices this job created (records: journal-state.ts).
 *
 * - A crash at any byte leaves it readable: every record is one line written whole (a short
 *   write is continued, never glued to the next record); a torn record (the start of one,
 *   not JSON) is ignored when read back, and the next record starts on a line of its own.
 * - A "start" is durable (written and fdatasync'ed) before the create it announces is sent,
 *   so that even a power cut cannot leave a device of ours that the journal does not know
 *   of. Records that arrive while a write and its sync are under way share the next ones
 *   (group commit): a row waits a few milliseconds, not one sync of its own.
 * - Other records are written the same way and synced on a timer; nobody waits for them: if
 *   one is lost, its pair is "started" on the next run, which reconciles it by reading the
 *   user's devices.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { open, readdir, realpath, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { UsageError } from '../errors.js';
import { describeWriteError, writeFault, writeFully } from '../report/files.js';
import { acquireLock, type LockOwner } from './lock.js';
import { fromV1, JOURNAL_VERSION, JournalState, UnknownKind, type DeviceOutcome, type ImportState, type PairState, type TokenImportOutcome } from './journal-state.js';

export { JOURNAL_VERSION, pairKey, type DeviceOutcome, type ImportState, type PairState, type TokenImportOutcome, type Window } from './journal-state.js';

export interface JournalHeader {
  readonly journal: 'oath-bulk';
  readonly v: number;
  readonly environmentId: string;
  readonly createdAt: string;
  /** Set when an earlier version's journal was rewritten in this one. */
  readonly upgradedFrom?: number;
  readonly upgradedAt?: string;
  /** Set when a journal that had recorded nothing was taken over for another environment. */
  readonly reboundFrom?: string;
}

export interface JournalReadReport {
  readonly pairs: number;
  readonly tornTail: boolean;
  readonly skippedLines: number;
  /** The journal recorded nothing in this environment and now belongs to the one given. */
  readonly reboundFrom?: string;
}

/** A device assignment made final. */
export interface Finish {
  readonly outcome: DeviceOutcome;
  readonly deviceId: string;
  readonly deviceStatus?: string;
  /** The row's email/username key, when it named its user that way. */
  readonly alias?: string;
}

/** What this tool's codes (or a read) made of a device's activation. */
export interface ActivationFact {
  readonly deviceId: string;
  readonly deviceStatus: string;
  /** PingOne refused both codes computed from the seed: a scheduled run does not send more. */
  readonly refused?: boolean;
}

/** A token import made final. */
export interface ImportFact {
  readonly outcome: TokenImportOutcome;
  readonly tokenId?: string;
}

export interface PairJournal {
  /** What earlier runs recorded for the pair. */
  lookup(key: string): PairState | undefined;
  /** What earlier runs recorded for a row that names its user by email or username. */
  lookupAlias(alias: string): PairState | undefined;
  /** Resolves once the start is on disk: only then may the create be sent. `until`: the latest moment PingOne can act on it. */
  started(key: string, row: number, at: number, until?: number): Promise<void>;
  finished(key: string, row: number, state: Finish): void;
  /** Earlier creates for the pair made nothing (or nothing is left of them): no claim remains. */
  cleared(key: string, row: number): void;
  /** The device of the pair was activated by this tool's code, found active, or refused its codes. */
  activated(key: string, row: number, fact: ActivationFact): void;
  /** What earlier runs recorded of importing the serial's token. */
  lookupImport(serial: string): ImportState | undefined;
  /** Resolves once the import's start is on disk: only then may it be sent. */
  importStarted(serial: string, row: number, at: number, until?: number): Promise<void>;
  imported(serial: string, row: number, fact: ImportFact): void;
  /** Earlier imports of the serial made nothing: no claim remains. */
  importCleared(serial: string, row: number): void;
  /** Serials earlier runs left assigned to a user (CREATED or EXISTING). */
  pairedSerials(): ReadonlySet<string>;
  /** PingOne accepted an import job for these (started) serials: a rerun follows the job to its end. */
  importJobSent(jobId: string, serials: readonly string[]): void;
  /** A device this job created was deleted again (rollback): the pair is open once more. */
  removed(key: string, row: number, deviceId: string): Promise<void>;
  close(): Promise<void>;
}

/** Journal for runs that keep none (--no-journal). */
export class NullJournal implements PairJournal {
  lookup(_key: string): PairState | undefined {
    return undefined;
  }
  lookupAlias(_alias: string): PairState | undefined {
    return undefined;
  }
  async started(): Promise<void> {}
  finished(): void {}
  cleared(): void {}
  activated(): void {}
  lookupImport(_serial: string): ImportState | undefined {
    return undefined;
  }
  async importStarted(): Promise<void> {}
  imported(): void {}
  importCleared(): void {}
  importJobSent(): void {}
  pairedSerials(): ReadonlySet<string> {
    return new Set();
  }
  async removed(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Where journal records go: a file, or memory in the tests. */
export interface RecordSink {
  /** Appends the lines; resolves once written (and, with `durable`, on disk). */
  write(text: string, durable: boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * The journal's behaviour over any sink: group commit, durable starts, memory that holds
 * only what earlier runs left.
 */
export class RecordingJournal implements PairJournal {
  private queue: string[] = [];
  private durableWaiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing?: Promise<void>;
  private failed?: unknown;

  constructor(
    protected readonly state: JournalState,
    private readonly sink: RecordSink,
    firstLines: readonly string[] = [],
  ) {
    this.queue.push(...firstLines, JSON.stringify({ v: JOURNAL_VERSION, e: 'open', at: Date.now() }));
  }

  lookup(key: string): PairState | undefined {
    return this.state.lookup(key);
  }

  /** Writes what is queued (the header, the run's `open`) durably now: a disk that cannot take it fails here, before any request. */
  async flushNow(): Promise<void> {
    if (this.queue.length === 0) return;
    const done = new Promise<void>((resolve, reject) => this.durableWaiters.push({ resolve, reject }));
    if (!this.flushing) this.flushing = this.flushLoop();
    await done;
  }

  lookupAlias(alias: string): PairState | undefined {
    return this.state.lookupAlias(alias);
  }

  started(key: string, row: number, at: number, until?: number): Promise<void> {
    return this.append({ v: JOURNAL_VERSION, t: 'assign', e: 'start', k: key, row, at, until }, true);
  }

  /**
   * A pair appears once among a run's valid rows (duplicates and conflicts are INVALID), so
   * nothing this run records is looked up again by it: memory holds only what earlier runs
   * left, and less as this run finishes those pairs (SPEC "Memory stays flat").
   */
  finished(key: string, row: number, f: Finish): void {
    this.state.forget(key, f.alias);
    this.record({ t: 'assign', e: 'done', k: key, row, o: f.outcome, d: f.deviceId, s: f.deviceStatus, r: f.alias });
  }

  cleared(key: string, row: number): void {
    this.state.forget(key);
    this.record({ t: 'assign', e: 'clear', k: key, row });
  }

  activated(key: string, row: number, f: ActivationFact): void {
    this.state.forget(key);
    this.record({ t: 'activation', e: 'done', k: key, row, d: f.deviceId, s: f.deviceStatus, ...(f.refused ? { refused: true } : {}) });
  }

  lookupImport(serial: string): ImportState | undefined {
    return this.state.lookupImport(serial);
  }

  importStarted(serial: string, row: number, at: number, until?: number): Promise<void> {
    return this.append({ v: JOURNAL_VERSION, t: 'import', e: 'start', sn: serial, row, at, until }, true);
  }

  imported(serial: string, row: number, f: ImportFact): void {
    this.state.forgetImport(serial);
    this.record({ t: 'import', e: 'done', sn: serial, row, o: f.outcome, ...(f.tokenId ? { id: f.tokenId } : {}) });
  }

  importCleared(serial: string, row: number): void {
    this.state.forgetImport(serial);
    this.record({ t: 'import', e: 'clear', sn: serial, row });
  }

  /** A record nobody waits for (synced on the timer): losing it costs a check on the next run. */
  private record(fields: Record<string, unknown>): void {
    void this.append({ v: JOURNAL_VERSION, ...fields, at: Date.now() }, false).catch(() => undefined);
  }

  pairedSerials(): ReadonlySet<string> {
    return this.state.pairedSerials();
  }

  importJobSent(jobId: string, serials: readonly string[]): void {
    this.record({ t: 'import', e: 'job', j: jobId, sns: serials });
  }

  /** Pairs held in memory: what earlier runs recorded and this run has not finished. */
  get heldPairs(): number {
    return this.state.size;
  }

  removed(key: string, row: number, deviceId: string): Promise<void> {
    this.state.forget(key);
    return this.append({ v: JOURNAL_VERSION, t: 'assign', e: 'removed', k: key, row, d: deviceId, at: Date.now() }, true);
  }

  async close(): Promise<void> {
    await this.drain();
    try {
      await this.sink.close();
    } catch (error) {
      this.failed ??= error;
    }
    if (this.failed) throw this.failed;
  }

  /** Whether this run recorded any fact (beyond the header and its `open`). */
  get recordedAny(): boolean {
    return this.appended > 0;
  }

  private appended = 0;

  private append(record: object, durable: boolean): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    this.appended++;
    this.queue.push(JSON.stringify(record));
    const done = durable ? new Promise<void>((resolve, reject) => this.durableWaiters.push({ resolve, reject })) : Promise.resolve();
    if (!this.flushing) this.flushing = this.flushLoop();
    return done;
  }

  private async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.queue.length > 0) {
      this.flushing = this.flushLoop();
      await this.flushing;
    }
  }

  /** Group commit: one write (and one sync, if anyone waits for it) for everything queued. */
  private async flushLoop(): Promise<void> {
    // Let the records of the current tick join this batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.queue.length > 0 && !this.failed) {
      const lines = this.queue;
      const waiters = this.durableWaiters;
      this.queue = [];
      this.durableWaiters = [];
      try {
        await this.sink.write(lines.join('\n') + '\n', waiters.length > 0);
        for (const w of waiters) w.resolve();
      } catch (error) {
        this.failed = error;
        for (const w of waiters) w.reject(error);
      }
    }
    if (this.failed) for (const w of this.durableWaiters.splice(0)) w.reject(this.failed);
    this.flushing = undefined;
  }
}

/** Appends to a file: short writes continued; fdatasync for durable batches, else on a timer. */
class FileSink implements RecordSink {
  private syncTimer?: NodeJS.Timeout;
  private syncing?: Promise<void>;
  private failed?: unknown;

  constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
  ) {}

  /** A write or sync that fails (a full disk …) stops the run: a StopError naming the file. */
  async write(text: string, durable: boolean): Promise<void> {
    try {
      await writeFully(this.handle, Buffer.from(text, 'utf8'));
      if (durable) {
        if (this.syncTimer) clearTimeout(this.syncTimer);
        this.syncTimer = undefined;
        await this.handle.datasync();
      } else this.scheduleSync();
    } catch (error) {
      throw writeFault(this.path, error);
    }
  }

  private scheduleSync(): void {
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      this.syncing = this.handle.datasync().catch((error: unknown) => {
        this.failed ??= writeFault(this.path, error);
      });
    }, 100);
  }

  async close(): Promise<void> {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    try {
      await this.syncing;
      if (!this.failed) await this.handle.datasync();
    } catch (error) {
      this.failed ??= writeFault(this.path, error);
    } finally {
      await this.handle.close().catch(() => undefined);
    }
    if (this.failed) throw this.failed;
  }
}

export class Journal extends RecordingJournal {
  private constructor(
    readonly path: string,
    state: JournalState,
    sink: FileSink,
    firstLines: string[],
    readonly report: JournalReadReport,
  ) {
    super(state, sink, firstLines);
  }

  /** Reads what earlier runs recorded, then opens the file for appending (mode 0600). */
  static async open(path: string, environmentId: string): Promise<Journal> {
    const state = new JournalState();
    const read = await readJournal(path, environmentId, state);
    let handle: FileHandle;
    try {
      handle = await open(path, 'a', 0o600);
    } catch (error) {
      throw new UsageError(`journal ${path}: cannot open it for writing: ${describeWriteError(error)}; free space there or choose another --out-dir (or --journal)`);
    }
    await handle.chmod(0o600);
    const firstLines: string[] = [];
    if (!read.exists || read.empty) {
      const header: JournalHeader = { journal: 'oath-bulk', v: JOURNAL_VERSION, environmentId, createdAt: new Date().toISOString() };
      firstLines.push(JSON.stringify(header));
    } else if (read.version !== JOURNAL_VERSION || read.report.reboundFrom !== undefined) {
      // Rewritten whole in this version before anything is appended: an older release then
      // refuses the journal (its version check) rather than misreads what this one writes. A
      // journal that recorded nothing in another environment is rewritten for this one.
      await handle.close();
      await rewriteJournal(path, read.header!, read.version ?? JOURNAL_VERSION, environmentId);
      try {
        handle = await open(path, 'a', 0o600);
      } catch (error) {
        throw new UsageError(`journal ${path}: cannot open it for writing: ${describeWriteError(error)}; free space there or choose another --out-dir (or --journal)`);
      }
    } else if (read.report.tornTail) {
      // Start the next record on a line of its own; the torn one stays ignored.
      firstLines.push('');
    }
    return new Journal(path, state, new FileSink(handle, path), firstLines, read.report);
  }
}

interface ReadResult {
  readonly exists: boolean;
  readonly empty: boolean;
  readonly report: JournalReadReport;
  /** The journal's version as written (1: to be rewritten as this version on first use). */
  readonly version?: number;
  readonly header?: JournalHeader;
}

/** Journal versions this release reads: its own, and version 1 through fromV1. */
const READABLE = new Set([1, JOURNAL_VERSION]);

/** A journal path must name a file (or nothing yet): a directory is a usage error, not a crash. */
function checkJournalPath(path: string): void {
  let info;
  try {
    info = statSync(path);
  } catch {
    return;
  }
  if (!info.isFile()) throw new UsageError(`--journal: ${path} is ${info.isDirectory() ? 'a directory' : 'not a regular file'}: give the path of a journal file, such as <out-dir>/<name>.journal.jsonl`);
}

async function readJournal(path: string, environmentId: string, state: JournalState): Promise<ReadResult> {
  checkJournalPath(path);
  let stream;
  try {
    stream = createReadStream(path, { encoding: 'utf8' });
    await new Promise<void>((resolve, reject) => {
      stream!.once('open', () => resolve());
      stream!.once('error', reject);
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { exists: false, empty: true, report: { pairs: 0, tornTail: false, skippedLines: 0 } };
    throw new UsageError(`journal ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }

  let lineNo = 0;
  const bad: number[] = [];
  let torn = 0;
  let sawHeader = false;
  let version: number | undefined;
  let header: JournalHeader | undefined;
  /** The environment the journal's header names, when it is not the one given. */
  let otherEnvironment: string | undefined;
  let lastLineComplete = true;
  let bytesSeen = 0;
  stream.on('data', (chunk) => {
    bytesSeen += chunk.length;
    lastLineComplete = String(chunk).endsWith('\n');
  });
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    lineNo++;
    if (line.trim() === '') continue;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
      if (typeof record !== 'object' || record === null) throw new Error('not an object');
    } catch {
      // A record cut short by a crash (kill -9, power loss): the start of one of ours.
      if (line.startsWith('{"v":')) torn++;
      else bad.push(lineNo);
      continue;
    }
    if (!sawHeader) {
      sawHeader = true;
      if (record['journal'] !== 'oath-bulk') {
        throw new UsageError(`journal ${path}: line 1 is not an oath-bulk journal header; point --journal at another file or move this one away`);
      }
      if (typeof record['v'] !== 'number' || !READABLE.has(record['v'])) {
        throw new UsageError(`journal ${path}: written in journal version ${JSON.stringify(record['v'])}, this oath-bulk reads versions ${[...READABLE].join(' and ')}; use the oath-bulk release that wrote it, or start a fresh journal`);
      }
      if (record['environmentId'] !== environmentId) otherEnvironment = String(record['environmentId']);
      version = record['v'];
      header = record as unknown as JournalHeader;
      continue;
    }
    if (record['v'] !== version) {
      bad.push(lineNo);
      continue;
    }
    try {
      for (const r of version === JOURNAL_VERSION ? [record] : fromV1(record)) state.apply(r);
    } catch (error) {
      if (!(error instanceof UnknownKind)) throw error;
      throw new UsageError(`journal ${path}: line ${lineNo} is ${error.message}, which this oath-bulk does not know: a newer release wrote it; use that release`);
    }
  }
  state.closeWindows(Date.now());
  if (bad.length > 0) {
    throw new UsageError(`journal ${path}: line ${bad[0]} is not a journal record (${bad.length} such line${bad.length > 1 ? 's' : ''}); the journal was edited or damaged: restore it or move it away to start afresh`);
  }
  if (otherEnvironment !== undefined && state.size > 0) throw environmentMismatch(path, otherEnvironment, environmentId, state.size);
  return { exists: true, empty: bytesSeen === 0, report: { pairs: state.size, tornTail: !lastLineComplete && bytesSeen > 0, skippedLines: torn, ...(otherEnvironment !== undefined ? { reboundFrom: otherEnvironment } : {}) }, version, header };
}

/**
 * A journal that holds rows of another environment: both named, with what it holds, and a typo
 * in the id suspected when the two are close. It is this shipment's record there: kept, never
 * to be deleted to make the run go.
 */
function environmentMismatch(path: string, journalEnvironment: string, given: string, rows: number): EnvironmentMismatchError {
  const close = editDistance(journalEnvironment.toLowerCase(), given.toLowerCase()) <= 4;
  return new EnvironmentMismatchError(
    `journal ${path} records ${rows} row${rows === 1 ? '' : 's'} in environment ${journalEnvironment}; this run names environment ${given} and has 0 there.${close ? ` ${TYPO}; correct it and run again.` : ''} The journal is this shipment's record in ${journalEnvironment} and is kept as it is; to run this shipment against ${given} on purpose, give it a journal of its own (--journal <path>, or another --out-dir)`,
    { journalEnvironment, given, rows, close },
  );
}

const TYPO = 'The two ids differ in a few characters only: a typo in --environment-id (or PINGONE_ENVIRONMENT_ID, or the settings file) is the likely cause';

/** A journal of another environment: what the message says, as facts a command can say otherwise. */
export class EnvironmentMismatchError extends UsageError {
  constructor(
    message: string,
    readonly facts: { readonly journalEnvironment: string; readonly given: string; readonly rows: number; readonly close: boolean },
  ) {
    super(message);
    this.name = 'EnvironmentMismatchError';
  }

  /** For rollback: the devices to delete are in the run's environment; its journal is never to be replaced. */
  forRollback(results: string): UsageError {
    const { journalEnvironment, given, close } = this.facts;
    return new UsageError(`the run that wrote ${results} worked in environment ${journalEnvironment} (its journal says so); this rollback names environment ${given}.${close ? ` ${TYPO}.` : ''} The devices to delete are in ${journalEnvironment}: roll back with that environment's settings (--environment-id ${journalEnvironment}, with its region and worker app)`);
  }
}

/** Levenshtein distance (ids are short). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * Rewrites a journal whole under a header of this version: a version 1 journal's records as the
 * records of their kinds (fromV1, `upgradedFrom`), and a journal that recorded nothing in its
 * environment for the one given (`reboundFrom`); torn lines are dropped. Written to a temporary
 * file, synced, then renamed over the journal: a crash leaves the old journal or the new one,
 * never half of either. Runs under the lock.
 */
async function rewriteJournal(link: string, header: JournalHeader, version: number, environmentId: string): Promise<void> {
  // A journal reached through a link is rewritten where it lives: the link stays.
  const path = await realpath(link);
  const temp = `${path}.upgrade.tmp`;
  let out: FileHandle | undefined;
  try {
    out = await open(temp, 'w', 0o600);
    const upgraded: JournalHeader = {
      journal: 'oath-bulk',
      v: JOURNAL_VERSION,
      environmentId,
      createdAt: header.createdAt,
      ...(version !== JOURNAL_VERSION ? { upgradedFrom: version, upgradedAt: new Date().toISOString() } : { ...(header.upgradedFrom !== undefined ? { upgradedFrom: header.upgradedFrom, upgradedAt: header.upgradedAt } : {}) }),
      ...(environmentId !== header.environmentId ? { reboundFrom: header.environmentId } : {}),
    };
    let batch = [JSON.stringify(upgraded)];
    let first = true;
    for await (const line of createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity })) {
      if (first) {
        first = false;
        continue;
      }
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (typeof record !== 'object' || record === null) continue;
      for (const r of version === JOURNAL_VERSION ? [record] : fromV1(record)) batch.push(JSON.stringify(r));
      if (batch.length >= 1000) {
        await writeFully(out, Buffer.from(batch.join('\n') + '\n', 'utf8'));
        batch = [];
      }
    }
    if (batch.length > 0) await writeFully(out, Buffer.from(batch.join('\n') + '\n', 'utf8'));
    await out.datasync();
    await out.close();
    out = undefined;
    await rename(temp, path);
    const dir = await open(dirname(path), 'r');
    await dir.sync().finally(() => dir.close());
  } catch (error) {
    await out?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw new UsageError(`journal ${path}: cannot rewrite it in journal version ${JOURNAL_VERSION}: ${describeWriteError(error)}; free space there, then run again (nothing was sent)`);
  }
}

/** What earlier runs recorded, for a dry run: looked up, never written. */
export async function readOnlyJournal(path: string, environmentId: string): Promise<PairJournal> {
  const state = new JournalState();
  await readJournal(path, environmentId, state);
  return new ReadOnlyJournal(state);
}

/**
 * The devices a journal of this environment says are in place, by device id, with the status
 * the job last saw (ACTIVATION_REQUIRED, ACTIVE): what `inventory` knows of devices without
 * reading them. A journal of another environment holds none of this one's: undefined.
 */
async function journalDevices(path: string, environmentId: string): Promise<Map<string, string | undefined> | undefined> {
  const state = new JournalState();
  try {
    await readJournal(path, environmentId, state);
  } catch (error) {
    if (error instanceof EnvironmentMismatchError) return undefined;
    throw error;
  }
  const devices = new Map<string, string | undefined>();
  for (const d of state.devices()) devices.set(d.deviceId, d.deviceStatus);
  return devices;
}

/**
 * What every journal of `environmentId` in `dir` says of its devices: the journals read, and
 * each device's status. Journals go by name, not time: ACTIVE, once seen, stands (a device never
 * goes back to waiting for its code). One that cannot be read is said (`warn`) and left out.
 */
export async function devicesInJournals(dir: string, environmentId: string, warn: (message: string) => void): Promise<{ journals: string[]; devices: Map<string, string | undefined> }> {
  const journals: string[] = [];
  const devices = new Map<string, string | undefined>();
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.journal.jsonl')).sort()) {
    const path = join(dir, name);
    try {
      const found = await journalDevices(path, environmentId);
      if (!found) continue;
      journals.push(path);
      for (const [id, status] of found) if (devices.get(id) !== 'ACTIVE') devices.set(id, status);
    } catch (error) {
      warn(`journal ${path} not read (${(error as Error).message.slice(0, 200)}): the device statuses it holds are not known here`);
    }
  }
  return { journals, devices };
}

/** Answers lookups from what earlier runs recorded; records nothing (a NullJournal's writes). */
class ReadOnlyJournal extends NullJournal {
  constructor(private readonly state: JournalState) {
    super();
  }
  override lookup(key: string): PairState | undefined {
    return this.state.lookup(key);
  }
  override lookupAlias(alias: string): PairState | undefined {
    return this.state.lookupAlias(alias);
  }
  override lookupImport(serial: string): ImportState | undefined {
    return this.state.lookupImport(serial);
  }
  override pairedSerials(): ReadonlySet<string> {
    return this.state.pairedSerials();
  }
}

/** The journal at `path`, under its lock (one run per journal): released by close(). */
/**
 * The journal at `path`, under its lock (one run per journal): released by close(). A journal
 * this run created and recorded nothing in before it was stopped (credentials refused,
 * environment not found: no request made anything) is removed again on close, so that it cannot
 * mislead a later run. (A run that finished keeps its journal even when it recorded nothing: a
 * folder run reads it to call a file of invalid rows "nothing to do".)
 * `warn`: where the note goes when a journal that had recorded nothing in another environment
 * is taken over for this one.
 */
export async function openLockedJournal(path: string, environmentId: string, warn?: (message: string) => void): Promise<{ journal: Journal; tookOver?: LockOwner; close(options?: { stopped?: boolean }): Promise<void> }> {
  checkJournalPath(path);
  const lock = await acquireLock(`${path}.lock`);
  let journal: Journal;
  let existed: boolean;
  try {
    existed = existsSync(path);
    journal = await Journal.open(path, environmentId);
    try {
      await journal.flushNow();
    } catch (error) {
      await journal.close().catch(() => undefined);
      // Nothing was sent yet: a usage-level failure (exit 2), naming the file and why.
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
  } catch (error) {
    await lock.release();
    throw error;
  }
  if (journal.report.reboundFrom !== undefined) {
    warn?.(`journal ${path} recorded nothing in environment ${journal.report.reboundFrom} (a run there sent no request that made anything): it now belongs to environment ${environmentId}`);
  }
  return {
    journal,
    tookOver: lock.tookOver,
    close: async (options) => {
      try {
        await journal.close();
        if (options?.stopped && !existed && !journal.recordedAny) await unlink(path).catch(() => undefined);
      } finally {
        await lock.release();
      }
    },
  };
}
