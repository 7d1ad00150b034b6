/**
 * One run per journal at a time (SPEC). The lock file holds its owner's pid, host, start time,
 * the process's start tick (to tell a live owner from a new process that was given a dead
 * owner's pid) and a nonce of the owning process.
 *
 * - It appears whole: written to a temporary file first, then hard-linked into place, which
 *   fails if a lock exists (atomic, like O_EXCL, but never empty or half-written).
 * - It is stale when its process is gone: its pid is not running, or is this very process
 *   under another nonce (a container restarted: the new run has the old pid), or runs with
 *   another start tick (the pid was reused). Only then is it removed, by one process at a
 *   time (withTakeover), so that two runs that both judged it stale cannot both take it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { UsageError } from '../errors.js';

export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
  /** The process's start time in clock ticks since boot (Linux), when known. */
  readonly tick?: number;
  readonly nonce?: string;
}

/** Another live run holds the lock: nothing was attempted (exit 2). */
export class LockHeldError extends UsageError {
  constructor(
    message: string,
    readonly owner: Partial<LockOwner>,
  ) {
    super(message);
    this.name = 'LockHeldError';
  }
}

export interface HeldLock {
  readonly path: string;
  readonly tookOver?: LockOwner;
  release(): Promise<void>;
}

const NONCE = randomBytes(8).toString('hex');

/** Field 22 of /proc/<pid>/stat: when the process started, in ticks since boot. */
function startTick(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const tick = Number(fields[19]);
    return Number.isFinite(tick) ? tick : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the owner named in a lock on this host is a live process other than a dead one's namesake. */
function ownerAlive(owner: Partial<LockOwner>): boolean {
  if (typeof owner.pid !== 'number') return false;
  if (owner.pid === process.pid) return owner.nonce === NONCE;
  if (!alive(owner.pid)) return false;
  if (owner.tick === undefined) return true;
  const tick = startTick(owner.pid);
  return tick === undefined || tick === owner.tick;
}

/** Locks held by this process, for a release on the way out (a second signal exits at once). */
const HELD = new Map<string, string>();

/** Removes this process's locks synchronously: for an exit that cannot wait. */
export function releaseHeldLocksSync(): void {
  for (const [path, content] of HELD) {
    try {
      if (readFileSync(path, 'utf8') === content) unlinkSync(path);
    } catch {
      // Gone already.
    }
  }
  HELD.clear();
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Only one process at a time may replace a stale lock: the one that holds `<lock>.takeover`
 * (created whole by a hard link, like the lock). Without it, two runs that both judged a lock
 * stale could each remove what the other had just put in its place. A takeover left by a
 * process that died in those few milliseconds is itself stale after 30 s (its file dates from the start of that acquire, which takes at most ~5 s).
 */
async function withTakeover<T>(path: string, temp: string, work: () => Promise<T>): Promise<T | 'busy'> {
  const takeover = `${path}.takeover`;
  try {
    await link(temp, takeover);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    try {
      const info = await stat(takeover);
      if (Date.now() - info.mtimeMs > 30_000) await unlink(takeover).catch(() => undefined);
    } catch {
      // Released in between.
    }
    return 'busy';
  }
  try {
    return await work();
  } finally {
    await unlink(takeover).catch(() => undefined);
  }
}

export async function acquireLock(path: string): Promise<HeldLock> {
  const me: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), tick: startTick(process.pid), nonce: NONCE };
  const content = JSON.stringify(me) + '\n';
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  let tookOver: LockOwner | undefined;
  try {
    try {
      await writeFile(temp, content, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new UsageError(`cannot create the lock file ${path} (${code}): ${code === 'ENOSPC' ? 'the disk is full' : 'is --out-dir writable?'}`);
    }
    for (let tries = 0; tries < 200; tries++) {
      try {
        await link(temp, path);
        HELD.set(path, content);
        return {
          path,
          tookOver,
          release: async () => {
            HELD.delete(path);
            // Only our own lock: never one that replaced it.
            const now = await readFile(path, 'utf8').catch(() => '');
            if (now === content) await unlink(path).catch(() => undefined);
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new UsageError(`cannot create the lock file ${path} (${(error as NodeJS.ErrnoException).code}): is --out-dir writable?`);
        }
      }
      const seen = await readFile(path, 'utf8').catch(() => undefined);
      if (seen === undefined) continue; // released in between: try again
      let owner: Partial<LockOwner> = {};
      try {
        owner = JSON.parse(seen) as Partial<LockOwner>;
      } catch {
        // A lock is written whole, so an unreadable one was left by a crash of an older release.
      }
      const sameHost = owner.host === undefined || owner.host === me.host;
      if (typeof owner.pid === 'number' && (!sameHost || ownerAlive(owner))) {
        throw new LockHeldError(
          `another run holds the lock ${path} (pid ${owner.pid ?? 'unknown'}${sameHost ? '' : ` on ${owner.host}`}, started ${owner.startedAt ?? 'at an unknown time'}); wait for it to finish${sameHost ? '' : ', or delete the lock if that run is gone'}`,
          owner,
        );
      }
      // Stale. Under the takeover lock, remove it if it is still the one judged; then race for
      // the path like everyone else (link is atomic: one wins, the others see a live lock).
      const removed = await withTakeover(path, temp, async () => {
        const still = await readFile(path, 'utf8').catch(() => undefined);
        if (still !== seen) return false;
        await unlink(path).catch(() => undefined);
        return true;
      });
      if (removed === true) tookOver = { pid: owner.pid ?? 0, host: owner.host ?? me.host, startedAt: owner.startedAt ?? '' };
      else if (removed === 'busy') await sleep(5 + Math.floor(Math.random() * 20));
    }
    throw new UsageError(`could not take the lock ${path}: another run keeps taking it`);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** acquireLock, waiting up to `waitMs` for a live holder to let go; then its LockHeldError. */
export async function acquireLockWithin(path: string, waitMs: number, pollMs = 250): Promise<HeldLock> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await acquireLock(path);
    } catch (error) {
      if (!(error instanceof LockHeldError) || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
    }
  }
}
