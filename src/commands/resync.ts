/**
 * `oath-bulk resync <serialNumber,otp1,otp2 csv>`: drifted HOTP tokens (a drawer of tokens whose
 * buttons were pressed) brought back in step, each with two consecutive codes read off it.
 * `oath-bulk resync --totp <serial…>`: TOTP codes go stale in a file, so TOTP tokens are
 * resynced at a terminal, one at a time, each pair sent as soon as it is typed. The codes go to
 * PingOne and nowhere else: not the log, the results, the summary or the ledger.
 */
import { createInterface } from 'node:readline/promises';
import type { RawOptions } from '../config.js';
import { UsageError } from '../errors.js';
import { orderedPool } from '../engine/ordered-pool.js';
import { checkCodes, RESYNC_OUTCOMES, resyncToken, type ResyncContext, type ResyncOutcome, type ResyncResult } from '../engine/resync.js';
import { InputError } from '../input/input-error.js';
import { normaliseHeader, openCsv, readCsvRecords } from '../input/reader.js';
import { checkSerial } from '../input/validate.js';
import { commandLine } from '../report/command-line.js';
import { buildSummary, humanSummary, stopAdvice } from '../report/summary.js';
import { Tally } from '../report/tally.js';
import { openLifecycle } from './shared/lifecycle.js';
import type { CommandDeps } from './shared/deps.js';
import { exitCode as decideExit } from './shared/exit-code.js';
import { rowBreaker } from './shared/breaker.js';

export { RESYNC_OUTCOMES, type ResyncOutcome };

interface Row {
  readonly row: number;
  readonly serialNumber: string;
  readonly otps?: readonly [string, string];
  readonly extras: readonly string[];
  readonly problem?: { readonly code: string; readonly message: string };
}

async function readCodes(path: string): Promise<{ rows: Row[]; extraNames: string[]; file: Awaited<ReturnType<typeof openCsv>> }> {
  const file = await openCsv(path, 'a header row "serialNumber,otp1,otp2" and one row per token', { workbook: true });
  const names = file.header.map(normaliseHeader);
  const at = (...n: string[]): number => names.findIndex((h) => n.includes(h));
  const serialAt = at('serialnumber', 'serial', 'serialno');
  const otp1At = at('otp1', 'code1');
  const otp2At = at('otp2', 'code2');
  if (serialAt < 0 || otp1At < 0 || otp2At < 0) {
    throw new InputError(path, `line ${file.headerLine}`, 'expected the columns serialNumber, otp1 and otp2 (two consecutive codes read off each token); TOTP tokens are resynced at a terminal instead: oath-bulk resync --totp <serial>');
  }
  const own = new Set([serialAt, otp1At, otp2At]);
  // Other columns are carried through; none that could hold a code.
  const extras = file.header.map((name, index) => ({ name, index })).filter((e) => !own.has(e.index) && e.name !== '' && !/otp|code|passcode/i.test(e.name));
  const rows: Row[] = [];
  const seen = new Map<string, number>();
  for await (const raw of readCsvRecords(file)) {
    const cell = (i: number): string => (raw.fields[i] ?? '').trim();
    const serialNumber = cell(serialAt);
    const where = `row ${raw.row} (line ${raw.line})`;
    const base = { row: raw.row, serialNumber, extras: extras.map((e) => raw.fields[e.index] ?? '') };
    const serialProblem = checkSerial(serialNumber);
    const codeProblem = checkCodes(cell(otp1At), cell(otp2At));
    let problem: Row['problem'];
    if (serialProblem) problem = { code: serialProblem.code, message: `${where}: ${serialProblem.message}` };
    else if (codeProblem) problem = { code: 'OTP_INVALID', message: `${where}: ${codeProblem}` };
    else if (seen.has(serialNumber)) problem = { code: 'DUPLICATE_ROW', message: `${where}: ${serialNumber} is named again (first in row ${seen.get(serialNumber)}): one pair of codes per token` };
    if (!problem) seen.set(serialNumber, raw.row);
    rows.push(problem ? { ...base, problem } : { ...base, otps: [cell(otp1At), cell(otp2At)] });
  }
  if (rows.length === 0) throw new InputError(path, undefined, 'has a header but no rows');
  return { rows, extraNames: extras.map((e) => e.name), file };
}

export async function resyncCommand(input: string | undefined, raw: RawOptions, deps: CommandDeps): Promise<number> {
  const dryRun = raw['dry-run'] === true;
  const totp = Array.isArray(raw['totp']) ? (raw['totp'] as unknown[]).map(String) : typeof raw['totp'] === 'string' ? [raw['totp']] : [];
  if (input !== undefined && totp.length > 0) throw new UsageError('resync: give a file of HOTP codes, or --totp <serial…> at a terminal, not both');
  if (input === undefined && totp.length === 0) throw new UsageError('resync: give a file of HOTP codes (serialNumber,otp1,otp2), or --totp <serial…> to type TOTP codes at a terminal');
  for (const s of totp) {
    const p = checkSerial(s);
    if (p) throw new UsageError(`--totp ${JSON.stringify(s.slice(0, 60))}: ${p.message}`);
  }
  const interactive = totp.length > 0;
  if (interactive && !(process.stdin.isTTY && deps.isTTY)) throw new UsageError('resync --totp: TOTP codes go stale in a file, so they are typed at a terminal as they are read off the token; run it at a terminal');
  const list = input !== undefined ? await readCodes(input) : undefined;
  const name = input ?? 'totp';
  const life = await openLifecycle('resync', name, raw, deps, { extraNames: list?.extraNames ?? [], file: list?.file }, null);
  const { ctx, ledger, results } = life;
  const { paths, logger, session, startedAt } = ctx;
  const control = deps.control;
  const t0 = performance.now();
  const tally = new Tally<ResyncOutcome>(RESYNC_OUTCOMES, ['NOT_ATTEMPTED']);
  const rctx: ResyncContext = { ...ctx.retryContext(), api: session.client, ledger, by: `resync ${paths.runId}`, dryRun };
  logger.info({ event: 'resync.start', input: name, dryRun, rows: list?.rows.length ?? totp.length, terminal: interactive });
  const judge = rowBreaker(ctx.engine.maxConsecutiveFailures, control, 'resync');
  const write = async (row: number, serialNumber: string, r: ResyncResult, extras: readonly string[]): Promise<void> => {
    judge(r.errorCode);
    tally.add({ outcome: r.outcome, errorCode: r.errorCode, finishedEarlier: r.finishedEarlier });
    if (r.outcome !== 'RESYNCED' && r.outcome !== 'WOULD_RESYNC') ctx.recorder.attention({ row, userID: '', serialNumber, outcome: r.outcome, errorCode: r.errorCode, message: r.message, extras });
    // The codes are not in the event: the row's serial, outcome and why only.
    logger[r.outcome === 'RESYNCED' || r.outcome === 'WOULD_RESYNC' ? 'info' : 'warn']({ event: 'row', row, serialNumber, outcome: r.outcome, httpStatus: r.httpStatus, errorCode: r.errorCode, attempts: r.attempts });
    await results.writeCells([row, '', serialNumber, r.outcome, undefined, undefined, r.httpStatus, r.errorCode, undefined, r.message, r.attempts, undefined, ...extras]);
  };
  let failure: unknown;
  try {
    await life.prove();
    if (list) {
      await orderedPool((list.rows), ctx.engine.concurrency, async (row) => ({
        row: row.row,
        item: row,
        r: row.problem
          ? ({ outcome: 'INVALID', errorCode: row.problem.code, message: row.problem.message, attempts: 0 } as ResyncResult)
          : control.stopped
            ? ({ outcome: 'NOT_ATTEMPTED', message: 'the command stopped before this row; run it again to finish', attempts: 0 } as ResyncResult)
            : await resyncToken(row.row, row.serialNumber, row.otps!, rctx, 'HOTP'),
      }), ({ item, r }) => write(item.row, item.serialNumber, r, item.extras));
    } else {
      let n = 0;
      for (const serial of totp) {
        n++;
        if (control.stopped) {
          await write(n, serial, { outcome: 'NOT_ATTEMPTED', message: 'the command stopped before this token', attempts: 0 }, []);
          continue;
        }
        const codes = await askCodes(serial, deps);
        const r = codes ? await resyncToken(n, serial, codes, rctx, 'TOTP') : { outcome: 'NOT_ATTEMPTED' as const, message: 'no codes typed', attempts: 0 };
        deps.stderr.write(`  ${serial}: ${r.outcome}${r.errorCode ? ` ${r.errorCode}` : ''}: ${r.message}\n`);
        await write(n, serial, r, []);
      }
    }
  } catch (error) {
    failure = error;
  } finally {
    failure = await life.close(failure);
  }
  if (failure) throw failure;
  const stopped = control.reason;
  const good: ResyncOutcome[] = dryRun ? ['RESYNCED', 'WOULD_RESYNC'] : ['RESYNCED'];
  const exitCode = decideExit(tally, { stopped: stopped !== undefined, good });
  const durationMs = Math.round(performance.now() - t0);
  const summary = buildSummary({ command: 'resync', runId: paths.runId, input: name, dryRun, startedAt, durationMs, tally, requests: session.stats, ledger: { path: ledger.path }, stopped, exitCode, reports: { ...paths, journal: null } });
  const args = deps.argv ?? ['resync', name];
  let next: string | undefined;
  if (stopped) next = `${stopAdvice(stopped)}: ${commandLine(args)}`;
  else if (dryRun) next = `to resync them: ${commandLine(args, ['--dry-run'])}`;
  else if (exitCode !== 0) next = 'for the rows that are not RESYNCED, read two new codes off each token (one right after the other) into a new file, and run resync with it; codes once sent are spent';
  else next = 'the tokens are in step: their users can sign in with them again';
  await ctx.finish(summary, humanSummary({ title: `oath-bulk resync ${name}`, dryRun, durationMs, tally, requests: session.stats, stopped, reports: paths, next }));
  return exitCode;
}

/** Two consecutive codes of a TOTP token, typed as they are read (nothing echoed back into any file). */
async function askCodes(serial: string, deps: CommandDeps): Promise<readonly [string, string] | undefined> {
  const rl = createInterface({ input: process.stdin, output: deps.stderr });
  try {
    const first = (await rl.question(`${serial}: the code it shows now: `)).trim();
    const second = (await rl.question(`${serial}: the next code, once it changes: `)).trim();
    return first && second ? [first, second] : undefined;
  } catch {
    return undefined;
  } finally {
    rl.close();
  }
}
