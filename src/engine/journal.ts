/**
 * The journal: an append-only JSON-lines file beside the reports that makes reruns resume.
 * Per (userID, serialNumber) pair it records that a create was started and how it ended.
 *
 * - A crash at any byte leaves it readable: every record is one line written whole; a torn
 *   record (the start of one, not JSON) is ignored when read back, and the next record
 *   starts on a line of its own.
 * - A "start" is written (handed to the operating system, so it survives the process being
 *   killed) before the create it announces is sent. Records that arrive while a write is
 *   under way share the next one (group commit). An fsync follows every 100 ms of writes,
 *   off the rows' path, so that a power cut loses at most that much and throughput holds.
 * - Finished records are flushed the same way but nobody waits for them: if one is lost, the
 *   pair is "started" on the next run, which reconciles it by reading the user's devices.
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { UsageError } from '../errors.js';
import { acquireLock, type LockOwner } from './lock.js';

export const JOURNAL_VERSION = 1;

export type FinalOutcome = 'CREATED' | 'EXISTING';

export interface PairState {
  /** Epoch ms of the first create sent for the pair, if one was. */
  readonly startedAt?: number;
  readonly outcome?: FinalOutcome;
  readonly deviceId?: string;
  readonly deviceStatus?: string;
}

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

export function pairKey(userId: string, serialNumber: string): string {
  return `${userId.toLowerCase()}|${serialNumber}`;
}

export interface PairJournal {
  /** What earlier runs recorded for the pair. */
  lookup(key: string): PairState | undefined;
  started(key: string, row: number, at: number): Promise<void>;
  finished(key: string, row: number, state: Required<Pick<PairState, 'outcome' | 'deviceId'>> & { deviceStatus?: string }): void;
  /** A device this job created was deleted again (rollback): the pair is open once more. */
  removed(key: string, row: number, deviceId: string): Promise<void>;
  close(): Promise<void>;
}

/** Journal for runs that keep none (--no-journal, --dry-run). */
export class NullJournal implements PairJournal {
  lookup(): undefined {
    return undefined;
  }
  async started(): Promise<void> {}
  finished(): void {}
  async removed(): Promise<void> {}
  async close(): Promise<void> {}
}

export class Journal implements PairJournal {
  private queue: string[] = [];
  private waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing?: Promise<void>;
  private failed?: unknown;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly pairs: Map<string, PairState>,
    readonly report: JournalReadReport,
  ) {}

  /** Reads what earlier runs recorded, then opens the file for appending (mode 0600). */
  static async open(path: string, environmentId: string): Promise<Journal> {
    const pairs = new Map<string, PairState>();
    const read = await readJournal(path, environmentId, pairs);
    const handle = await open(path, 'a', 0o600);
    await handle.chmod(0o600);
    const journal = new Journal(path, handle, pairs, read.report);
    if (!read.exists || read.empty) {
      const header: JournalHeader = { journal: 'oath-bulk', v: JOURNAL_VERSION, environmentId, createdAt: new Date().toISOString() };
      journal.queue.push(JSON.stringify(header));
    } else if (read.report.tornTail) {
      // Start the next record on a line of its own; the torn one stays ignored.
      journal.queue.push('');
    }
    return journal;
  }

  lookup(key: string): PairState | undefined {
    return this.pairs.get(key);
  }

  started(key: string, row: number, at: number): Promise<void> {
    return this.append({ v: JOURNAL_VERSION, e: 'start', k: key, row, at }, true);
  }

  /**
   * A pair appears once among a run's valid rows (duplicates and conflicts are INVALID), so
   * nothing this run records is looked up again by it: memory holds only what earlier runs
   * left, and less as this run finishes those pairs (SPEC "Memory stays flat").
   */
  finished(key: string, row: number, state: { outcome: FinalOutcome; deviceId: string; deviceStatus?: string }): void {
    this.pairs.delete(key);
    void this.append({ v: JOURNAL_VERSION, e: 'done', k: key, row, o: state.outcome, d: state.deviceId, s: state.deviceStatus, at: Date.now() }, false);
  }

  /** Pairs held in memory: what earlier runs recorded and this run has not finished. */
  get heldPairs(): number {
    return this.pairs.size;
  }

  removed(key: string, row: number, deviceId: string): Promise<void> {
    this.pairs.delete(key);
    return this.append({ v: JOURNAL_VERSION, e: 'removed', k: key, row, d: deviceId, at: Date.now() }, true);
  }

  async close(): Promise<void> {
    await this.drain();
    await this.syncNow();
    await this.handle.close();
    if (this.failed) throw this.failed;
  }

  private append(record: object, wait: boolean): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    this.queue.push(JSON.stringify(record));
    const done = wait ? new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject })) : Promise.resolve();
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

  /** Group commit: one write for everything queued since the last one; fsync on a timer. */
  private async flushLoop(): Promise<void> {
    // Let the records of the current tick join this batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) {
      const lines = this.queue;
      const waiters = this.waiters;
      this.queue = [];
      this.waiters = [];
      try {
        await this.handle.write(lines.join('\n') + '\n');
        for (const w of waiters) w.resolve();
        this.scheduleSync();
      } catch (error) {
        this.failed = error;
        for (const w of waiters) w.reject(error);
      }
    }
    this.flushing = undefined;
  }

  private syncTimer?: NodeJS.Timeout;
  private syncing?: Promise<void>;

  private scheduleSync(): void {
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      this.syncing = this.handle.datasync().catch((error: unknown) => {
        this.failed ??= error;
      });
    }, 100);
  }

  private async syncNow(): Promise<void> {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    await this.syncing;
    await this.handle.datasync();
  }
}

interface ReadResult {
  readonly exists: boolean;
  readonly empty: boolean;
  readonly report: JournalReadReport;
}

async function readJournal(path: string, environmentId: string, pairs: Map<string, PairState>): Promise<ReadResult> {
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
    apply(record, pairs);
  }
  if (bad.length > 0) {
    throw new UsageError(`journal ${path}: line ${bad[0]} is not a journal record (${bad.length} such line${bad.length > 1 ? 's' : ''}); the journal was edited or damaged: restore it or move it away to start afresh`);
  }
  return { exists: true, empty: bytesSeen === 0, report: { pairs: pairs.size, tornTail: !lastLineComplete && bytesSeen > 0, skippedLines: torn } };
}

function apply(record: Record<string, unknown>, pairs: Map<string, PairState>): void {
  const key = record['k'];
  if (typeof key !== 'string') return;
  const prior = pairs.get(key);
  switch (record['e']) {
    case 'start':
      if (prior?.outcome === undefined && prior?.startedAt === undefined) pairs.set(key, { startedAt: Number(record['at']) });
      break;
    case 'done':
      if (record['o'] === 'CREATED' || record['o'] === 'EXISTING') {
        pairs.set(key, {
          startedAt: prior?.startedAt,
          outcome: record['o'],
          deviceId: String(record['d']),
          deviceStatus: typeof record['s'] === 'string' ? record['s'] : undefined,
        });
      }
      break;
    case 'removed':
      pairs.delete(key);
      break;
    default:
      break;
  }
}

/** What earlier runs recorded, for a dry run: looked up, never written. */
export async function readOnlyJournal(path: string, environmentId: string): Promise<PairJournal> {
  const pairs = new Map<string, PairState>();
  await readJournal(path, environmentId, pairs);
  const none = new NullJournal();
  return {
    lookup: (key) => pairs.get(key),
    started: none.started.bind(none),
    finished: none.finished.bind(none),
    removed: none.removed.bind(none),
    close: none.close.bind(none),
  };
}

/** The journal at `path`, under its lock (one run per journal): released by close(). */
export async function openLockedJournal(path: string, environmentId: string): Promise<{ journal: Journal; tookOver?: LockOwner; close(): Promise<void> }> {
  const lock = await acquireLock(`${path}.lock`);
  let journal: Journal;
  try {
    journal = await Journal.open(path, environmentId);
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
