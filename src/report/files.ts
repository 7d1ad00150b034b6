/**
 * Where a run's reports go: `<out-dir>/<name>.<runId>.<kind>`, files 0600 because they name
 * users. The out-dir is created if missing and checked writable before any request.
 */
import { constants, statSync } from 'node:fs';
import { access, mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, dirname, extname, join } from 'node:path';
import { StopError, UsageError } from '../errors.js';

export interface ReportPaths {
  readonly runId: string;
  readonly results: string;
  readonly log: string;
  readonly summary: string;
  /** The HTML report, for a change ticket. */
  readonly report: string;
  /** The results as an .xlsx workbook, for people. */
  readonly workbook: string;
}

/** 20261128T170802Z: sorts by time, safe in a file name. */
export function runIdFor(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The shipment's name: the input file's name without extension, or, for a results file
 * (`<name>.<runId>.results.csv`, or a verify/rollback one), the name of its input.
 */
export function stem(inputPath: string): string {
  const bare = bareName(inputPath);
  // Letters and digits of any script stay (東京, Zürich); anything else becomes "_", and then
  // a short digest of the real name keeps "shipment (1)" apart from "shipment__1_".
  // Long names are cut (file systems take 255 bytes, and a CJK character is 3). "~" is kept,
  // so that a report's own name (…~digest.<runId>.results.csv) maps back to the same name.
  const safe = bare.replace(/[^\p{L}\p{N}._~-]/gu, '_');
  // Already a name of ours (a report's): keep it.
  if (safe === bare && /^[^~]+~[0-9a-f]{8}$/u.test(bare) && [...bare].length <= 69) return bare;
  const short = [...safe].slice(0, 60).join('');
  return safe === bare && short === safe ? safe : `${short}~${createHash('sha256').update(bare).digest('hex').slice(0, 8)}`;
}

function bareName(inputPath: string): string {
  const base = basename(inputPath);
  const bare = base.slice(0, base.length - extname(base).length) || base;
  return bare.replace(/(\.(verify|rollback|import))?\.\d{8}T\d{6}Z(_\d+)?\.results$/, '');
}

export async function prepareOutDir(outDir: string): Promise<void> {
  try {
    await mkdir(outDir, { recursive: true, mode: 0o700 });
    await access(outDir, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new UsageError(`--out-dir: cannot write reports to ${JSON.stringify(outDir)} (${(error as NodeJS.ErrnoException).code ?? 'error'}): choose a writable directory`);
  }
}

/**
 * Picks a run id whose files do not exist yet. Two runs in one second get _02, _03 …, which
 * sort after the first ("Z." < "Z_"), so the newest reports are always last by name.
 */
export async function reportPaths(outDir: string, inputPath: string, command: string, started: Date): Promise<ReportPaths> {
  const name = stem(inputPath);
  const base = runIdFor(started);
  for (let n = 0; n < 100; n++) {
    const runId = n === 0 ? base : `${base}_${String(n + 1).padStart(2, '0')}`;
    const prefix = join(outDir, `${name}${command === 'run' ? '' : `.${command}`}.${runId}`);
    // An inventory is not the results of an input: its rows are the environment's tokens (SPEC: <env>.inventory.<runId>.csv).
    const rows = command === 'inventory' ? prefix : `${prefix}.results`;
    const paths = { runId, results: `${rows}.csv`, log: `${prefix}.log.jsonl`, summary: `${prefix}.summary.json`, report: `${prefix}.report.html`, workbook: `${rows}.xlsx` };
    try {
      await access(paths.results);
    } catch {
      return paths;
    }
  }
  throw new UsageError(`--out-dir: too many runs of ${name} at ${base}`);
}

/** Creates (or truncates) a report file that only its owner can read. */
export async function openPrivate(path: string, flags = 'w'): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, flags, 0o600);
  } catch (error) {
    throw new UsageError(`cannot create ${path}: ${describeWriteError(error)}: ${WRITE_FIX}`);
  }
  await handle.chmod(0o600);
  return handle;
}

const WRITE_FIX = 'free space there (or fix the disk), or choose another --out-dir, then run again';

/** Writes all of `bytes`, continuing after short writes. */
export async function writeFully(handle: FileHandle, bytes: Buffer): Promise<void> {
  for (let offset = 0; offset < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    if (bytesWritten <= 0) throw Object.assign(new Error('the write wrote nothing'), { code: 'EIO' });
    offset += bytesWritten;
  }
}

const WRITE_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'the file system is read-only',
  EIO: 'an I/O error',
  EFBIG: 'the file is too large for the file system',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
};

export function describeWriteError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code ? `${WRITE_ERRORS[code] ?? 'write failed'} (${code})` : 'write failed';
}

/** A report, log or journal that cannot be written: the run stops (exit 3), saying which and why. */
export function writeFault(path: string, error: unknown): StopError {
  return new StopError('WRITE_FAILED', `cannot write ${path}: ${describeWriteError(error)} under ${dirname(path)}; ${WRITE_FIX} (the journal stays readable: the rerun resumes)`);
}

/** Whether the path is a folder (a folder run); false when it is anything else or nothing. */
export function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Written whole or not at all: a temporary file (0600), synced when asked, then renamed into place. */
export async function writePrivateWhole(path: string, text: string, sync = false): Promise<void> {
  const temp = `${path}.tmp`;
  const handle = await openPrivate(temp);
  try {
    try {
      await handle.writeFile(text);
      if (sync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}
