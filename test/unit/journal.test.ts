import { appendFileSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, pairKey } from '../../src/engine/journal.js';
import { acquireLock } from '../../src/engine/lock.js';
import { UsageError } from '../../src/errors.js';

const ENV = '5d1e0000-0b1c-4b1a-9a11-5a0d5a0d5a0d';
const U = '5f8c2a4e-1b7d-4c3e-9a2f-0d6e8b1c7a93';
const dir = () => mkdtempSync(join(tmpdir(), 'journal-'));

async function written(path: string): Promise<void> {
  const j = await Journal.open(path, ENV);
  await j.started(pairKey(U, 'A1'), 1, 1000);
  j.finished(pairKey(U, 'A1'), 1, { outcome: 'CREATED', deviceId: 'dev-a1', deviceStatus: 'ACTIVE' });
  await j.started(pairKey(U, 'B2'), 2, 2000);
  await j.close();
}

describe('the journal', () => {
  test('what one run records, the next reads back', async () => {
    const path = join(dir(), 'j.jsonl');
    await written(path);
    const j = await Journal.open(path, ENV);
    expect(j.lookup(pairKey(U, 'A1'))).toEqual({ outcome: 'CREATED', deviceId: 'dev-a1', deviceStatus: 'ACTIVE', userId: U.toLowerCase() });
    expect(j.lookup(pairKey(U, 'B2'))?.windows?.[0]?.from).toBe(2000);
    expect(j.lookup(pairKey(U, 'C3'))).toBeUndefined();
    await j.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  test('a torn last line is ignored and the next record starts on a line of its own', async () => {
    const path = join(dir(), 'j.jsonl');
    await written(path);
    appendFileSync(path, '{"v":2,"t":"assign","e":"done","k":"' + pairKey(U, 'B2') + '","o":"CREA');
    const j = await Journal.open(path, ENV);
    expect(j.lookup(pairKey(U, 'B2'))?.windows?.[0]?.from).toBe(2000);
    expect(j.report.tornTail).toBe(true);
    j.finished(pairKey(U, 'B2'), 2, { outcome: 'CREATED', deviceId: 'dev-b2' });
    await j.close();
    const again = await Journal.open(path, ENV);
    expect(again.lookup(pairKey(U, 'B2'))?.deviceId).toBe('dev-b2');
    await again.close();
    expect(readFileSync(path, 'utf8').split('\n').filter((l) => l.startsWith('{"v":2,"t":"assign","e":"done"') && l.endsWith('}')).length).toBe(2);
  });

  test('a journal of an unknown version is refused with what to do', async () => {
    const path = join(dir(), 'j.jsonl');
    writeFileSync(path, JSON.stringify({ journal: 'oath-bulk', v: 3, environmentId: ENV }) + '\n');
    const error = await Journal.open(path, ENV).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(/journal version 3, this oath-bulk reads versions 1 and 2; use the oath-bulk release that wrote it, or start a fresh journal/);
  });

  test('a record of a kind this release does not know (a newer one wrote it) is refused, naming the line', async () => {
    const path = join(dir(), 'j.jsonl');
    await written(path);
    appendFileSync(path, JSON.stringify({ v: 2, t: 'revoke', e: 'start', sn: 'X1', at: 1 }) + '\n');
    expect(((await Journal.open(path, ENV).catch((e: unknown) => e)) as Error).message).toMatch(/line \d+ is a record of kind "revoke", which this oath-bulk does not know/);
  });

  test('a version 1 journal is read, then rewritten whole as version 2 on first use: devices, imports (once a user called "import"), jobs and refused activations keep their meaning', async () => {
    const path = join(dir(), 'j.jsonl');
    const v1 = [
      { journal: 'oath-bulk', v: 1, environmentId: ENV, createdAt: '2026-11-30T00:00:00.000Z' },
      { v: 1, e: 'open', at: 100 },
      { v: 1, e: 'start', k: pairKey(U, 'A1'), row: 1, at: 1000, until: 31000 },
      { v: 1, e: 'done', k: pairKey(U, 'A1'), row: 1, o: 'CREATED', d: 'dev-a1', s: 'ACTIVATION_REQUIRED', at: 1100 },
      { v: 1, e: 'done', k: pairKey(U, 'A1'), row: 1, o: 'CREATED', d: 'dev-a1', s: 'ACTIVATION_REQUIRED', a: 'refused', at: 1200 },
      { v: 1, e: 'start', k: 'import|T1', row: 1, at: 900, until: 30900 },
      { v: 1, e: 'done', k: 'import|T1', row: 1, o: 'IMPORTED', d: '', at: 950 },
      { v: 1, e: 'start', k: 'import|T2', row: 2, at: 900, until: 30900 },
      { v: 1, e: 'job', j: 'job-1', ks: ['import|T2'], at: 910 },
      { v: 1, e: 'start', k: pairKey(U, 'B2'), row: 2, at: 2000, until: 32000 },
    ];
    writeFileSync(path, v1.map((r) => JSON.stringify(r)).join('\n') + '\n' + '{"v":1,"e":"done","k":"torn');
    const j = await Journal.open(path, ENV);
    const check = (journal: Pick<Journal, 'lookup' | 'lookupImport'>): void => {
      expect(journal.lookup(pairKey(U, 'A1'))).toMatchObject({ outcome: 'CREATED', deviceId: 'dev-a1', deviceStatus: 'ACTIVATION_REQUIRED', activationRefused: true });
      expect(journal.lookupImport('T1')).toEqual({ outcome: 'IMPORTED', tokenId: undefined });
      expect(journal.lookupImport('T2')?.jobs).toEqual(['job-1']);
      expect(journal.lookup(pairKey(U, 'B2'))?.windows?.[0]).toEqual({ from: 2000, until: 32000 });
      // No device pair for a user called "import" any more.
      expect(journal.lookup('import|T1')).toBeUndefined();
    };
    check(j);
    await j.close();
    const text = readFileSync(path, 'utf8');
    const header = JSON.parse(text.split('\n')[0]!) as Record<string, unknown>;
    expect(header).toMatchObject({ journal: 'oath-bulk', v: 2, environmentId: ENV, createdAt: '2026-11-30T00:00:00.000Z', upgradedFrom: 1 });
    expect(text).not.toMatch(/"v":1/);
    expect(text).not.toMatch(/torn/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = await Journal.open(path, ENV);
    check(again);
    await again.close();
  });

  test('a journal of another environment is refused', async () => {
    const path = join(dir(), 'j.jsonl');
    await written(path);
    const error = await Journal.open(path, '11111111-2222-4333-8444-555555555555').catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/records 2 rows in environment 5d1e0000-.*this run names environment 11111111-.*give it a journal of its own \(--journal <path>, or another --out-dir\)/);
  });

  test('a damaged line in the middle is refused, not skipped silently', async () => {
    const path = join(dir(), 'j.jsonl');
    await written(path);
    const lines = readFileSync(path, 'utf8').split('\n');
    lines.splice(2, 0, 'garbage');
    writeFileSync(path, lines.join('\n'));
    expect(((await Journal.open(path, ENV).catch((e: unknown) => e)) as Error).message).toMatch(/line 3 is not a journal record/);
  });

  test('pairs are keyed by user and serial, not row: an edited file resumes by pair', async () => {
    const path = join(dir(), 'j.jsonl');
    await written(path);
    const j = await Journal.open(path, ENV);
    // Row numbers moved, the user id changed case, and a serial was corrected.
    expect(j.lookup(pairKey(U.toUpperCase(), 'A1'))?.outcome).toBe('CREATED');
    expect(j.lookup(pairKey(U, 'A1X'))).toBeUndefined();
    await j.close();
  });

  test('memory holds what earlier runs left, not what this run finishes', async () => {
    const path = join(dir(), 'j.jsonl');
    await written(path);
    const j = await Journal.open(path, ENV);
    expect(j.heldPairs).toBe(2);
    for (let i = 0; i < 1000; i++) {
      await j.started(pairKey(U, `N${i}`), i + 3, i);
      j.finished(pairKey(U, `N${i}`), i + 3, { outcome: 'CREATED', deviceId: `dev-n${i}` });
    }
    j.finished(pairKey(U, 'B2'), 2, { outcome: 'CREATED', deviceId: 'dev-b2' });
    // A1 (finished by the earlier run) is still there to be skipped; nothing of this run is held.
    expect(j.heldPairs).toBe(1);
    expect(j.lookup(pairKey(U, 'A1'))?.outcome).toBe('CREATED');
    await j.close();
    // …and all of it is on disk for the next run.
    const again = await Journal.open(path, ENV);
    expect(again.heldPairs).toBe(1002);
    expect(again.lookup(pairKey(U, 'N999'))).toEqual({ outcome: 'CREATED', deviceId: 'dev-n999', deviceStatus: undefined, userId: U.toLowerCase() });
    expect(again.lookup(pairKey(U, 'B2'))).toMatchObject({ outcome: 'CREATED', deviceId: 'dev-b2' });
    await again.close();
  });

  test('a rolled-back pair is open again', async () => {
    const path = join(dir(), 'j.jsonl');
    await written(path);
    const j = await Journal.open(path, ENV);
    await j.removed(pairKey(U, 'A1'), 1, 'dev-a1');
    await j.close();
    const again = await Journal.open(path, ENV);
    expect(again.lookup(pairKey(U, 'A1'))).toBeUndefined();
    await again.close();
  });

  test('starts are grouped: many rows share one write', async () => {
    const path = join(dir(), 'j.jsonl');
    const j = await Journal.open(path, ENV);
    await Promise.all(Array.from({ length: 500 }, (_, i) => j.started(pairKey(U, `S${i}`), i + 1, i)));
    await j.close();
    // The header, the run's `open` record, and the 500 starts.
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(502);
  });
});

describe('the run lock', () => {
  test('a second holder is refused with the owner named', async () => {
    const path = join(dir(), 'j.lock');
    const lock = await acquireLock(path);
    const error = await acquireLock(path).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(new RegExp(`another run holds the lock .* \\(pid ${process.pid}, started 20`));
    await lock.release();
    const again = await acquireLock(path);
    await again.release();
  });

  test('a lock left by a dead process is taken over', async () => {
    const path = join(dir(), 'j.lock');
    writeFileSync(path, JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), startedAt: '2026-01-01T00:00:00Z' }));
    const lock = await acquireLock(path);
    expect(lock.tookOver?.pid).toBe(2 ** 22 + 12345);
    await lock.release();
  });
});

describe('review of #19', () => {
  test('an event this release does not know, of a kind it knows, is refused too (never skipped)', async () => {
    const path = join(dir(), 'j.jsonl');
    await written(path);
    appendFileSync(path, JSON.stringify({ v: 2, t: 'assign', e: 'revoked', k: pairKey(U, 'A1'), at: 1 }) + '\n');
    expect(((await Journal.open(path, ENV).catch((e: unknown) => e)) as Error).message).toMatch(/line \d+ is a record of kind "assign", event "revoked", which this oath-bulk does not know/);
  });

  test('a version 1 journal reached through a link is rewritten where it lives: the link stays a link, the target becomes version 2', async () => {
    const base = dir();
    mkdirSync(join(base, 'store'));
    const target = join(base, 'store', 'real.jsonl');
    writeFileSync(target, [JSON.stringify({ journal: 'oath-bulk', v: 1, environmentId: ENV, createdAt: '2026-11-30T00:00:00.000Z' }), JSON.stringify({ v: 1, e: 'done', k: pairKey(U, 'A1'), row: 1, o: 'CREATED', d: 'dev-a1', s: 'ACTIVE', at: 5 })].join('\n') + '\n');
    const link = join(base, 'j.jsonl');
    symlinkSync(target, link);
    const j = await Journal.open(link, ENV);
    expect(j.lookup(pairKey(U, 'A1'))?.deviceId).toBe('dev-a1');
    await j.close();
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(JSON.parse(readFileSync(target, 'utf8').split('\n')[0]!)).toMatchObject({ v: 2, upgradedFrom: 1 });
    expect(readdirSync(join(base, 'store'))).toEqual(['real.jsonl']);
  });
});
