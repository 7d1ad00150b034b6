import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { acquireLock } from '../../src/engine/lock.js';
import { tempDir } from '../support/cli.js';

describe('the journal lock', () => {
  test('a stale lock naming our own pid (a container restarted: the new run has the old pid) is taken over', async () => {
    const path = join(tempDir(), 'j.lock');
    writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
    const lock = await acquireLock(path);
    expect(lock.tookOver?.pid).toBe(process.pid);
    expect(JSON.parse(readFileSync(path, 'utf8')).startedAt).not.toBe('2026-01-01T00:00:00.000Z');
    await lock.release();
  });

  test('a lock file is never seen empty or half-written: it appears with its content whole', async () => {
    const path = join(tempDir(), 'k.lock');
    const lock = await acquireLock(path);
    const owner = JSON.parse(readFileSync(path, 'utf8')) as { pid: number };
    expect(owner.pid).toBe(process.pid);
    await expect(acquireLock(path)).rejects.toThrow(/another run holds the lock/);
    await lock.release();
  });
});
