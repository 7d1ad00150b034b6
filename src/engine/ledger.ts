/**
 * The ledger (SPEC "After the rollout: a token's whole life"): per environment, the facts of
 * a token's life that PingOne does not keep — revoking and revoked (reason, when, by which
 * command), reinstated, returned, handed out (which run, which user), the shipment a token came
 * in and its vendor validity dates. PingOne forgets a revoked token (its serial can be imported
 * again); the ledger does not, so that a revoked serial is never imported or assigned again.
 *
 * One file per environment in the state directory, `<state-dir>/<environmentId>.ledger.jsonl`:
 * JSON lines, the first a header naming the environment; append-only; every append synced and
 * made under the ledger's lock, so that a revoke typed by hand and a cron run see the same
 * facts; the directory 0700 and the file 0600; never a seed. A torn last line (a crash in the
 * middle of an append) is ignored; any other damage is refused, naming the line, and stops the
 * commands that import or assign (exit 2) until it is repaired.
 */
import { chmod, mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { acquireLockWithin } from './lock.js';

export const LEDGER_VERSION = 1;

export const LEDGER_EVENTS = ['revoking', 'revoked', 'reinstated', 'returned', 'handed-out', 'shipped', 'resyncing', 'resynced'] as const;
export type LedgerEvent = (typeof LEDGER_EVENTS)[number];

export const REVOKE_REASONS = ['lost', 'stolen', 'defective', 'retired'] as const;
export type RevokeReason = (typeof REVOKE_REASONS)[number];

/** One fact about one serial. */
export interface LedgerFact {
  readonly e: LedgerEvent;
  readonly sn: string;
  /** ISO time of the fact (set on append when missing). */
  readonly at?: string;
  /** revoking/revoked: why. */
  readonly reason?: RevokeReason;
  /** Which command and run wrote it: `revoke 20261202T150000Z`. */
  readonly by?: string;
  /** handed-out/returned: the user. */
  readonly user?: string;
  /** handed-out: the input file of the run; revoked: the device taken off its user. */
  readonly file?: string;
  readonly device?: string;
  /** revoking: the revoke job the token was sent in (a rerun follows it to its end first). */
  readonly job?: string;
  /** resyncing/resynced: a salted scrypt hash of the codes sent (never the codes), and what came of it. */
  readonly input?: string;
  readonly outcome?: string;
  /** shipped: the seed file (its name) the token came in; its vendor validity dates. */
  readonly shipment?: string;
  readonly validFrom?: string;
  readonly validUntil?: string;
  /** shipped: who made the token, as the seed file says (inventory's stock by manufacturer and model). */
  readonly manufacturer?: string;
  readonly model?: string;
}

/** What the ledger says of a serial now. */
export interface TokenLife {
  /** Set while the serial is out of service: `revoking` (written before the revoke was sent) or `revoked`. */
  revoked?: { readonly state: 'revoking' | 'revoked'; readonly reason?: RevokeReason; readonly at: string; readonly by?: string; readonly user?: string; readonly device?: string; readonly job?: string };
  /** The last hand-out not followed by a return or a revoke. */
  handedOut?: { readonly user?: string; readonly at: string; readonly by?: string };
  /** The last return (unassign, replace), while no hand-out came after it. */
  returned?: { readonly user?: string; readonly at: string; readonly by?: string };
  shipment?: { readonly name?: string; readonly at: string; readonly validFrom?: string; readonly validUntil?: string; readonly manufacturer?: string; readonly model?: string };
  /** The last resync: `resyncing` written before the codes were sent, `resynced` with PingOne's answer. */
  resync?: { readonly state: 'resyncing' | 'resynced'; readonly input?: string; readonly outcome?: string; readonly at: string; readonly by?: string };
}

export class LedgerDamagedError extends UsageError {
  constructor(path: string, line: number, what: string) {
    super(`${path}: line ${line}: ${what}: the ledger is damaged, so nothing that imports or assigns tokens runs until it is repaired (restore it from a backup, or remove that line if it is not a fact you need)`);
    this.name = 'LedgerDamagedError';
  }
}

/** The state directory: --state-dir, else OATH_BULK_STATE_DIR (environment or settings file), else $XDG_STATE_HOME/oath-bulk (~/.local/state/oath-bulk). */
export function stateDirectory(given: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  if (given && given.trim() !== '') return given;
  const fromEnv = env['OATH_BULK_STATE_DIR'];
  if (fromEnv && fromEnv.trim() !== '') return fromEnv;
  const xdg = env['XDG_STATE_HOME'];
  return join(xdg && xdg.startsWith('/') ? xdg : join(env['HOME'] ?? homedir(), '.local', 'state'), 'oath-bulk');
}

export function ledgerPath(stateDir: string, environmentId: string): string {
  return join(stateDir, `${environmentId}.ledger.jsonl`);
}

/** How much of the ledger is read at a time. */
const READ_CHUNK = 1 << 20;

/** How long an append waits for another process's append to finish. */
const LOCK_WAIT_MS = 10_000;

export class Ledger {
  private readonly lives = new Map<string, TokenLife>();
  /** Bytes read so far: a refresh reads only what was appended since. */
  private offset = 0;
  private line = 0;
  /** This process created the file (an empty ledger: nothing revoked is known here). */
  started = false;

  private constructor(
    readonly path: string,
    readonly environmentId: string,
    /**
     * `revocations`: only what keeps a token out (revoking, revoked, reinstated) is held in
     * memory — what `run` and `import` ask — so that a ledger of years of hand-outs costs them
     * a read, not memory. Every line is still read and checked.
     */
    private readonly keep: 'all' | 'revocations',
  ) {}

  /**
   * Opens the ledger of `environmentId` in `stateDir`, and reads it. Missing, it is created —
   * header written under the ledger's lock, so that two commands starting at once cannot both
   * write one — unless `create` is false (a dry run writes nothing): then it reads as empty.
   * Modes looser than 0700/0600 are tightened, with a notice. `started`: this call created it
   * (a command that imports or assigns says so loudly: revokes kept in another state directory
   * are not known here).
   */
  static async open(stateDir: string, environmentId: string, options: { readonly create?: boolean; readonly notice?: (message: string) => void; readonly keep?: 'all' | 'revocations' } = {}): Promise<Ledger> {
    const ledger = new Ledger(ledgerPath(stateDir, environmentId), environmentId, options.keep ?? 'all');
    const there = await exists(ledger.path);
    if (options.create === false && !there) return ledger;
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    if (!there) {
      const lock = await acquireLockWithin(`${ledger.path}.lock`, LOCK_WAIT_MS, 20);
      try {
        const handle = await open(ledger.path, 'a+', 0o600);
        try {
          if ((await handle.stat()).size === 0) {
            await writeSynced(handle, JSON.stringify({ ledger: 'oath-bulk', v: LEDGER_VERSION, environmentId, createdAt: new Date().toISOString() }) + '\n');
            ledger.started = true;
          }
        } finally {
          await handle.close();
        }
      } finally {
        await lock.release();
      }
    }
    await tighten(stateDir, 0o700, options.notice, 'the state directory');
    await tighten(ledger.path, 0o600, options.notice, 'the ledger');
    await ledger.refresh();
    return ledger;
  }

  /**
   * Reads what other processes appended since the last read (a revoke typed during a cron run).
   * One read at a time: two at once would both advance the offset past the same lines, and an
   * append would then write past the end of the file.
   */
  refresh(): Promise<void> {
    return this.exclusive(() => this.readNew());
  }

  /** Reads and appends of this process, one at a time: each moves the offset the other uses. */
  private io: Promise<unknown> = Promise.resolve();

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const turn = this.io.then(work, work);
    this.io = turn.catch(() => undefined);
    return turn;
  }

  private async readNew(): Promise<void> {
    const info = await stat(this.path).catch((error: NodeJS.ErrnoException) => {
      // A dry run's ledger that does not exist (yet): nothing is known.
      if (error.code === 'ENOENT' && this.offset === 0) return undefined;
      throw error;
    });
    if (!info) return;
    const size = info.size;
    if (size <= this.offset) return;
    // In chunks, whole lines only: a ledger of years of facts is read in bounded memory. A last
    // line without its newline is an append in progress, or torn: left for the next read.
    const handle = await open(this.path, 'r');
    try {
      const chunk = Buffer.alloc(Math.min(READ_CHUNK, size - this.offset));
      let carry = Buffer.alloc(0);
      let at = this.offset;
      while (at < size) {
        const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, size - at), at);
        if (bytesRead === 0) break;
        at += bytesRead;
        const bytes = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
        const end = bytes.lastIndexOf(0x0a);
        if (end < 0) {
          carry = Buffer.from(bytes);
          continue;
        }
        for (const raw of bytes.toString('utf8', 0, end).split('\n')) {
          this.line++;
          this.apply(raw, this.line);
        }
        this.offset += end + 1;
        carry = Buffer.from(bytes.subarray(end + 1));
      }
    } finally {
      await handle.close();
    }
  }

  private apply(raw: string, line: number): void {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      throw new LedgerDamagedError(this.path, line, 'not a ledger record');
    }
    if (typeof record !== 'object' || record === null) throw new LedgerDamagedError(this.path, line, 'not a ledger record');
    this.applyRecord(record, line);
  }

  private applyRecord(record: Record<string, unknown>, line: number): void {
    if (line === 1) {
      if (record['ledger'] !== 'oath-bulk') throw new LedgerDamagedError(this.path, line, 'not an oath-bulk ledger (no header)');
      if (record['environmentId'] !== this.environmentId) throw new LedgerDamagedError(this.path, line, `the ledger of environment ${String(record['environmentId'])}, not ${this.environmentId}`);
      if (record['v'] !== LEDGER_VERSION) throw new LedgerDamagedError(this.path, line, `written in ledger version ${String(record['v'])}, which this release does not read`);
      return;
    }
    const e = record['e'];
    const sn = record['sn'];
    const at = record['at'];
    if (record['v'] !== LEDGER_VERSION || typeof sn !== 'string' || typeof at !== 'string' || !(LEDGER_EVENTS as readonly unknown[]).includes(e)) {
      throw new LedgerDamagedError(this.path, line, 'not a ledger record of this release');
    }
    const fact = record as unknown as Required<Pick<LedgerFact, 'e' | 'sn' | 'at'>> & LedgerFact;
    if (this.keep === 'revocations' && e !== 'revoking' && e !== 'revoked' && e !== 'reinstated') return;
    const key = serialKey(sn);
    const life: TokenLife = this.lives.get(key) ?? {};
    // One string per command for `by` (a run's 100,000 hand-outs share it), and no property
    // written only to say "none": a large ledger is held in memory whole.
    const by = this.intern(fact.by);
    switch (fact.e) {
      case 'revoking':
      case 'revoked':
        life.revoked = { state: fact.e, reason: fact.reason, at: fact.at, by, user: fact.user ?? life.revoked?.user, device: fact.device ?? life.revoked?.device, job: fact.e === 'revoking' ? (fact.job ?? life.revoked?.job) : undefined };
        if (life.handedOut) life.handedOut = undefined;
        break;
      case 'reinstated':
        life.revoked = undefined;
        break;
      case 'handed-out':
        life.handedOut = { user: fact.user, at: fact.at, by };
        if (life.returned) life.returned = undefined;
        break;
      case 'returned':
        if (life.handedOut) life.handedOut = undefined;
        life.returned = { user: fact.user, at: fact.at, by };
        break;
      case 'resyncing':
      case 'resynced':
        life.resync = { state: fact.e, input: fact.input, outcome: fact.outcome, at: fact.at, by };
        break;
      case 'shipped':
        life.shipment = { name: this.intern(fact.shipment), at: fact.at, validFrom: fact.validFrom, validUntil: fact.validUntil, manufacturer: this.intern(fact.manufacturer), model: this.intern(fact.model) };
        break;
    }
    this.lives.set(key, life);
  }

  private readonly strings = new Map<string, string>();

  private intern(value: string | undefined): string | undefined {
    if (value === undefined) return undefined;
    const known = this.strings.get(value);
    if (known !== undefined) return known;
    if (this.strings.size < 10_000) this.strings.set(value, value);
    return value;
  }

  /** What the ledger says of `serial` (as last read). */
  life(serial: string): TokenLife | undefined {
    return this.lives.get(serialKey(serial));
  }

  /** The serial is out of service (revoking or revoked, not reinstated since). */
  revoked(serial: string): TokenLife['revoked'] {
    return this.lives.get(serialKey(serial))?.revoked;
  }

  /**
   * Appends facts, synced, under the ledger's lock (waiting for another process's append);
   * what others appended meanwhile is read first, and the new facts apply once written.
   */
  async append(facts: readonly LedgerFact[], options: { readonly remember?: boolean } = {}): Promise<void> {
    if (facts.length === 0) return;
    const lock = await acquireLockWithin(`${this.path}.lock`, LOCK_WAIT_MS, 20);
    try {
      await this.exclusive(() => this.write(facts, options));
    } finally {
      await lock.release();
    }
  }

  /** Under the ledger's lock: what others appended read first, then the facts written and synced where the file ends. */
  private async write(facts: readonly LedgerFact[], options: { readonly remember?: boolean }): Promise<void> {
    await this.readNew();
    const now = new Date().toISOString();
    const records = facts.map((f) => ({ v: LEDGER_VERSION, at: f.at ?? now, ...withoutUndefined(f) }));
    const lines = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    const handle = await open(this.path, 'r+', 0o600);
    try {
      // Bytes past the last whole line are an append a crash tore (appends hold this lock):
      // they are cut, so that the new facts start a line of their own.
      if ((await handle.stat()).size > this.offset) await handle.truncate(this.offset);
      await handle.write(lines, this.offset);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // The file ended where this process had read (under the lock): the new facts apply as
    // written, without reading them back. `remember: false` (a run's hand-outs, which nothing
    // in this process asks about again) skips even that: a 100,000-row run holds none of them.
    this.offset += Buffer.byteLength(lines, 'utf8');
    for (const record of records) {
      this.line++;
      if (options.remember !== false) this.applyRecord(record as Record<string, unknown>, this.line);
    }
  }
}

/**
 * Serials are matched without regard to case: whether PingOne tells `tk0002` from `TK0002` is
 * not confirmed, and a revoked token must not come back under another spelling.
 */
function serialKey(serial: string): string {
  return serial.toUpperCase();
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** Mode `mode` at most: looser modes are tightened, with a notice. */
async function tighten(path: string, mode: number, notice: ((message: string) => void) | undefined, what: string): Promise<void> {
  const now = (await stat(path)).mode & 0o777;
  if ((now & ~mode) === 0) return;
  try {
    await chmod(path, now & mode);
  } catch (error) {
    // Another account's folder (a shared state directory): said, not fatal; its owner can fix it.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    notice?.(`${what} ${path} is readable by others (mode ${now.toString(8)}) and belongs to another account: ask its owner to run chmod ${mode.toString(8)} ${path}`);
    return;
  }
  notice?.(`${what} ${path} was readable by others (mode ${now.toString(8)}): set to ${(now & mode).toString(8)}`);
}

function withoutUndefined(fact: LedgerFact): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fact).filter(([, v]) => v !== undefined));
}

async function writeSynced(handle: FileHandle, text: string): Promise<void> {
  await handle.write(text);
  await handle.sync();
}

/** Why and by what a token was revoked: `lost, revoke 20261202T150000Z`. */
export function revokedWhy(revoked: NonNullable<TokenLife['revoked']>): string {
  return `${revoked.reason ? `${revoked.reason}, ` : ''}${revoked.by ?? 'oath-bulk revoke'}`;
}

/** How a revoked serial is named in a row: when, why, by what, and how to undo a mistake. */
export function revokedMessage(serial: string, revoked: NonNullable<TokenLife['revoked']>): string {
  const day = revoked.at.slice(0, 10);
  const why = revokedWhy(revoked);
  const state = revoked.state === 'revoking' ? `is being revoked since ${day} (${why})` : `was revoked on ${day} (${why})`;
  return `token ${JSON.stringify(serial)} ${state}: a revoked token is never imported or assigned again; take it out of the file (if it was revoked by mistake: oath-bulk reinstate ${serial} --yes)`;
}

/**
 * The ledger as a command that imports or assigns reads it: what it says of a serial, read
 * again at most once a second (a revoke typed during a long cron run is seen within a second).
 */
export class LedgerCheck {
  private readAt = Date.now();
  private reading: Promise<void> | undefined;

  constructor(
    readonly ledger: Ledger,
    private readonly everyMs = 1000,
  ) {}

  async revoked(serial: string): Promise<TokenLife['revoked']> {
    if (Date.now() - this.readAt >= this.everyMs) {
      this.reading ??= this.ledger.refresh().finally(() => {
        this.readAt = Date.now();
        this.reading = undefined;
      });
      await this.reading;
    }
    return this.ledger.revoked(serial);
  }
}

/**
 * Facts a long command adds as it goes (handed out, shipped): appended in batches — when a
 * thousand wait, a second after the first, and at close — so that a 100,000-row run appends a
 * few hundred times, not a hundred thousand. A fact that cannot be written is a warning (the
 * ledger then lacks it; PingOne state is untouched).
 */
export class LedgerNotes {
  private pending: LedgerFact[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private failed = false;

  constructor(
    private readonly ledger: Ledger,
    private readonly warn: (message: string) => void,
    private readonly batch = 1000,
    private readonly everyMs = 1000,
  ) {}

  note(fact: LedgerFact): void {
    this.pending.push({ at: new Date().toISOString(), ...fact });
    if (this.pending.length >= this.batch) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.everyMs);
  }

  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const facts = this.pending;
    this.pending = [];
    if (facts.length === 0) return this.writing;
    this.writing = this.writing.then(() => this.ledger.append(facts, { remember: false })).catch((error: unknown) => {
      if (this.failed) return;
      this.failed = true;
      this.warn(`the ledger ${this.ledger.path} could not record what this command did (${error instanceof Error ? error.message : String(error)}): PingOne holds it; the ledger lacks it`);
    });
    return this.writing;
  }
}

/** What a command that imports or assigns says when it had to start a ledger. */
export function newLedgerNotice(ledger: Ledger): string {
  return `a new, empty ledger was started at ${ledger.path}: tokens revoked with another state directory are not known to this one. If cron and the commands typed by hand use different accounts, give them one state directory (OATH_BULK_STATE_DIR in the settings file: README "The ledger is shared by cron and by hand")`;
}
