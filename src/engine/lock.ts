/**
 * One run per journal at a time (SPEC). The lock is a file created with O_EXCL holding the
 * owner's pid, host and start time. A lock whose process is gone (same host) is taken over.
 */
import { hostname } from 'node:os';
import { open, readFile, unlink } from 'node:fs/promises';
import { UsageError } from '../errors.js';

export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
}

export interface HeldLock {
  readonly path: string;
  readonly tookOver?: LockOwner;
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireLock(path: string): Promise<HeldLock> {
  const me: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  let tookOver: LockOwner | undefined;
  for (let tries = 0; tries < 3; tries++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(JSON.stringify(me) + '\n');
      await handle.close();
      return {
        path,
        tookOver,
        release: async () => {
          await unlink(path).catch(() => undefined);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new UsageError(`cannot create the lock file ${path} (${(error as NodeJS.ErrnoException).code}): is --out-dir writable?`);
      }
    }
    let owner: Partial<LockOwner> = {};
    try {
      owner = JSON.parse(await readFile(path, 'utf8')) as Partial<LockOwner>;
    } catch {
      // Unreadable or half-written lock: the writer died between create and write.
    }
    const sameHost = owner.host === undefined || owner.host === me.host;
    if (typeof owner.pid === 'number' && (!sameHost || alive(owner.pid))) {
      throw new UsageError(
        `another run holds the lock ${path} (pid ${owner.pid}${sameHost ? '' : ` on ${owner.host}`}, started ${owner.startedAt ?? 'at an unknown time'}); wait for it to finish${sameHost ? '' : ', or delete the lock if that run is gone'}`,
      );
    }
    tookOver = { pid: owner.pid ?? 0, host: owner.host ?? me.host, startedAt: owner.startedAt ?? '' };
    await unlink(path).catch(() => undefined);
  }
  throw new UsageError(`could not take the lock ${path}: another run keeps taking it`);
}
