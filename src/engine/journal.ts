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
import { createReadStream, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { UsageError } from '../errors.js';
import { describeWriteError, writeFault, writeFully } from '../report/files.js';
import { acquireLock, type LockOwner } from './lock.js';
import { JOURNAL_VERSION, JournalState, type FinalOutcome, type PairState } from './journal-state.js';

export { JOURNAL_VERSION, pairKey, type FinalOutcome, type PairState, type Window } from './journal-state.js';

export interface JournalHeader {
  readonly journal: 'oath-bulk';
  readonly v: number;
  readonly environmentId: string;
  readonly createdAt: string;
}

export interface JournalReadReport {
  readonly pairs: number;
  readonly tornTail: boolean;
  readonly skippedLines: number;
}

export interface Finish {
  readonly outcome: FinalOutcome;
  readonly deviceId: string;
  readonly deviceStatus?: string;
  /** The row's email/username key, when it named its user that way. */
  readonly alias?: string;
  /** PingOne refused both codes computed from the seed: a scheduled run does not send more. */
  readonly activationRefused?: boolean;
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
  /** Serials earlier runs left assigned to a user (CREATED or EXISTING). */
  pairedSerials(): ReadonlySet<string>;
  /** PingOne accepted an import job for these (started) keys: a rerun follows the job to its end. */
  jobSent(jobId: string, keys: readonly string[]): void;
  /** A device this job created was deleted again (rollback): the pair is open once more. */
  removed(key: string, row: number, deviceId: string): Promise<void>;
  close(): Promise<void>;
}

/** Journal for runs that keep none (--no-journal). */
export class NullJournal implements PairJournal {
  lookup(): undefined {
    return undefined;
  }
  lookupAlias(): undefined {
    return undefined;
  }
  async started(): Promise<void> {}
  finished(): void {}
  cleared(): void {}
  jobSent(): void {}
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
    return this.append({ v: JOURNAL_VERSION, e: 'start', k: key, row, at, until }, true);
  }

  /**
   * A pair appears once among a run's valid rows (duplicates and conflicts are INVALID), so
   * nothing this run records is looked up again by it: memory holds only what earlier runs
   * left, and less as this run finishes those pairs (SPEC "Memory stays flat").
   */
  finished(key: string, row: number, f: Finish): void {
    this.state.forget(key, f.alias);
    void this.append({ v: JOURNAL_VERSION, e: 'done', k: key, row, o: f.outcome, d: f.deviceId, s: f.deviceStatus, r: f.alias, ...(f.activationRefused ? { a: 'refused' } : {}), at: Date.now() }, false).catch(() => undefined);
  }

  cleared(key: string, row: number): void {
    this.state.forget(key);
    void this.append({ v: JOURNAL_VERSION, e: 'clear', k: key, row, at: Date.now() }, false).catch(() => undefined);
  }

  pairedSerials(): ReadonlySet<string> {
    return this.state.pairedSerials();
  }

  jobSent(jobId: string, keys: readonly string[]): void {
    void this.append({ v: JOURNAL_VERSION, e: 'job', j: jobId, ks: keys, at: Date.now() }, false).catch(() => undefined);
  }

  /** Pairs held in memory: what earlier runs recorded and this run has not finished. */
  get heldPairs(): number {
    return this.state.size;
  }

  removed(key: string, row: number, deviceId: string): Promise<void> {
    this.state.forget(key);
    return this.append({ v: JOURNAL_VERSION, e: 'removed', k: key, row, d: deviceId, at: Date.now() }, true);
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

  private append(record: object, durable: boolean): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
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
}

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
      if (record['v'] !== JOURNAL_VERSION) {
        throw new UsageError(`journal ${path}: written in journal version ${JSON.stringify(record['v'])}, this oath-bulk reads version ${JOURNAL_VERSION}; use the oath-bulk release that wrote it, or start a fresh journal`);
      }
      if (record['environmentId'] !== environmentId) {
        throw new UsageError(`journal ${path}: belongs to environment ${String(record['environmentId'])}, not ${environmentId}; use another --out-dir or --journal for this environment`);
      }
      continue;
    }
    if (record['v'] !== JOURNAL_VERSION) {
      bad.push(lineNo);
      continue;
    }
    state.apply(record);
  }
  state.closeWindows(Date.now());
  if (bad.length > 0) {
    throw new UsageError(`journal ${path}: line ${bad[0]} is not a journal record (${bad.length} such line${bad.length > 1 ? 's' : ''}); the journal was edited or damaged: restore it or move it away to start afresh`);
  }
  return { exists: true, empty: bytesSeen === 0, report: { pairs: state.size, tornTail: !lastLineComplete && bytesSeen > 0, skippedLines: torn } };
}

/** What earlier runs recorded, for a dry run: looked up, never written. */
export async function readOnlyJournal(path: string, environmentId: string): Promise<PairJournal> {
  const state = new JournalState();
  await readJournal(path, environmentId, state);
  const none = new NullJournal();
  return {
    lookup: (key) => state.lookup(key),
    lookupAlias: (alias) => state.lookupAlias(alias),
    started: none.started.bind(none),
    finished: none.finished.bind(none),
    cleared: none.cleared.bind(none),
    jobSent: none.jobSent.bind(none),
    pairedSerials: () => state.pairedSerials(),
    removed: none.removed.bind(none),
    close: none.close.bind(none),
  };
}

/** The journal at `path`, under its lock (one run per journal): released by close(). */
export async function openLockedJournal(path: string, environmentId: string): Promise<{ journal: Journal; tookOver?: LockOwner; close(): Promise<void> }> {
  checkJournalPath(path);
  const lock = await acquireLock(`${path}.lock`);
  let journal: Journal;
  try {
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
  return {
    journal,
    tookOver: lock.tookOver,
    close: async () => {
      try {
        await journal.close();
      } finally {
        await lock.release();
      }
    },
  };
}
