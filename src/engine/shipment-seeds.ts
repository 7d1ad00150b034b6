/**
 * The seeds of one `run`: the tokens of `--seeds` (or of an assignment file that carries its
 * own seeds, the Entra layout) that the assignment file names, what importing them came to,
 * and what that means for each row: a row whose token could not be imported is not sent; a
 * row PingOne answers SERIAL_NOT_FOUND says whether the seed file had its token; a device
 * created ACTIVATION_REQUIRED is activated from its seed when asked (--activate).
 */
import pLimit from 'p-limit';
import type { CheckedRow } from '../input/validate.js';
import type { RowResult } from '../report/outcome.js';
import type { SeedToken } from '../seeds/token.js';
import { activateDevice, NOT_ATTEMPTED_MESSAGE, readActivation, type ActivateContext, type Activation } from './activate.js';
import { aliasKey, type ResolvedRow } from './assign-row.js';
import type { ImportResult } from './import-batch.js';
import { pairKey, type PairJournal } from './journal.js';

export class ShipmentSeeds {
  /** The seed file's tokens by serial (the first, when the file repeats a serial). */
  readonly bySerial = new Map<string, SeedToken>();
  /** What the import made of each token the run needs, by serial. */
  private readonly imported = new Map<string, ImportResult>();

  constructor(
    readonly path: string,
    readonly tokens: readonly SeedToken[],
  ) {
    // A serial twice in the file is one token (equal copies: the first) or a conflict (every
    // copy SEED_CONFLICT: seeds/copies.ts); a valid copy is preferred to a refused one.
    for (const t of tokens) {
      const held = this.bySerial.get(t.serialNumber);
      if (!held || (held.problem && !t.problem)) this.bySerial.set(t.serialNumber, t);
    }
  }

  /** The tokens the assignment file names: the only ones imported (a serial once). */
  needed(serials: ReadonlySet<string>): SeedToken[] {
    return [...this.bySerial.values()].filter((t) => serials.has(t.serialNumber)).sort((a, b) => a.index - b.index);
  }

  /** Wipes the seeds no row needs, at once (SEEDS.md: zeroed after use). */
  wipeExcept(keep: readonly SeedToken[]): void {
    const kept = new Set(keep);
    for (const t of this.tokens) if (!kept.has(t)) t.secret?.wipe();
  }

  /** `journal`: where the imports are recorded (the run's), so that a stale one can be undone. */
  record(results: readonly ImportResult[], journal?: PairJournal): void {
    this.journal = journal;
    for (const r of results) if (this.bySerial.get(r.token.serialNumber) === r.token) this.imported.set(r.token.serialNumber, r);
  }

  private journal?: PairJournal;

  /** Whether the seed file holds a usable seed for the serial. */
  usable(serial: string): boolean {
    const t = this.bySerial.get(serial);
    return t !== undefined && !t.problem && t.secret !== undefined;
  }

  /** A row whose token the import could not put in the inventory is not sent. */
  gate(row: ResolvedRow): RowResult | undefined {
    const conflict = this.conflict(row);
    if (conflict) return conflict;
    const r = this.imported.get(row.serialNumber);
    if (!r || r.outcome === 'IMPORTED' || r.outcome === 'ALREADY_PRESENT' || r.outcome === 'INVALID') return undefined;
    const base = { row: row.row, userID: row.userId, serialNumber: row.serialNumber, extras: row.extras, attempts: 0, durationMs: 0 };
    if (r.outcome === 'FAILED') {
      return { ...base, outcome: 'FAILED', errorCode: 'SERIAL_NOT_FOUND', message: `${row.serialNumber} is not in the inventory and importing its seed from ${this.path} failed (${r.errorCode ?? 'FAILED'}: ${r.message ?? ''}): nothing was sent for this row; see the seeds results` };
    }
    return { ...base, outcome: 'NOT_ATTEMPTED', message: `its seed was not imported yet (${r.outcome}): run again to finish` };
  }

  /**
   * The seed file gives the row's serial two different tokens: the row is not sent, whatever
   * the inventory holds (the one there may be either; SEEDS.md "Integrity").
   */
  conflict(row: ResolvedRow): RowResult | undefined {
    const seed = this.bySerial.get(row.serialNumber);
    if (seed?.problem?.code !== 'SEED_CONFLICT') return undefined;
    return { row: row.row, userID: row.userId, serialNumber: row.serialNumber, extras: row.extras, attempts: 0, durationMs: 0, outcome: 'FAILED', errorCode: 'SEED_CONFLICT', message: `${seed.problem.message}; nothing was sent for this row` };
  }

  /** SERIAL_NOT_FOUND from PingOne, with what the seed file says about the serial. */
  explain(result: RowResult): RowResult {
    if (result.errorCode !== 'SERIAL_NOT_FOUND' || result.attempts === 0) return result;
    const seed = this.bySerial.get(result.serialNumber);
    const why = !seed
      ? `it is not in the seed file ${this.path} either: add the token's seed there (or import it), then run again`
      : seed.problem
        ? `its token in the seed file is invalid (${seed.problem.code}: ${seed.problem.message}): correct the seed file, then run again`
        : this.imported.get(result.serialNumber)?.finishedEarlier
          ? this.forgetImport(result)
          : this.imported.has(result.serialNumber)
            ? 'its seed was imported, yet PingOne does not find it: check that --environment-id names the environment the seeds went into'
            : 'its seed was not imported by this run: run again';
    return { ...result, message: `${result.message}; ${why}` };
  }

  /**
   * The journal says an earlier run imported the token, and PingOne no longer has it (revoked
   * since): that record is cleared, so the next run reads the inventory and imports it again.
   */
  private forgetImport(result: RowResult): string {
    this.journal?.importCleared(result.serialNumber, result.row);
    return 'an earlier run imported its seed, but PingOne no longer finds it (revoked since?): the next run imports it again, then assigns it';
  }

  /** Wipes every seed still held. */
  wipe(): void {
    for (const t of this.tokens) t.secret?.wipe();
  }
}

/**
 * --activate: a device the row holds (created by the job, or one the user already held) that
 * PingOne left ACTIVATION_REQUIRED is activated with its token's current code. A device this
 * run did not just create is read first, and gets no code if it is active already.
 */
export interface ActivationOptions {
  readonly dryRun: boolean;
  /** Devices in a row whose codes PingOne refuses before the run stops activating (--max-consecutive-failures). */
  readonly maxRefusedInARow: number;
  /** Send codes again where an earlier run's were refused (a run by hand: yes; a folder run: no). */
  readonly retryRefused: boolean;
  readonly onActivated?: () => void;
  /** The run stopped activating: why, for the summary. */
  readonly onHalted?: (message: string) => void;
}

export function activation(seeds: ShipmentSeeds, ctx: ActivateContext, journal: PairJournal, options: ActivationOptions): (row: CheckedRow, result: RowResult) => Promise<RowResult> {
  const { dryRun } = options;
  let refusedInARow = 0;
  let halted: string | undefined;
  /** A device has taken a code computed from its seed in this run: the seeds and clock are right. */
  let proven = false;
  const oneAtATime = pLimit(1);
  return async (row, result) => {
    if ((result.outcome !== 'CREATED' && result.outcome !== 'EXISTING') || result.deviceStatus !== 'ACTIVATION_REQUIRED' || !result.deviceId) return result;
    const note = (text: string): string => (result.message ? `${result.message}; ${text}` : text);
    if (dryRun) return { ...result, message: note('would be activated with a code computed from its seed') };
    if (ctx.stopping.aborted) return { ...result, errorCode: 'ACTIVATION_NOT_ATTEMPTED', message: note(NOT_ATTEMPTED_MESSAGE) };
    // Codes PingOne refused before are not sent again by a scheduled run; the device is read
    // (no code), so that one the user activated at first sign-in since becomes final.
    if (result.activationRefused && !options.retryRefused) {
      const started = Date.now();
      const found = await readActivation(row.row, result.userID, result.deviceId, ctx);
      if (found?.deviceStatus === 'ACTIVE') {
        journal.activated(pairKey(result.userID, result.serialNumber), row.row, { deviceId: result.deviceId, deviceStatus: 'ACTIVE' });
        return { ...result, deviceStatus: 'ACTIVE', errorCode: undefined, message: note('active now: the user activated it (PingOne had refused the codes computed from its seed)'), durationMs: result.durationMs + (Date.now() - started) };
      }
      return { ...result, errorCode: 'ACTIVATION_FAILED', message: note(`${found?.message ?? 'still waiting for a code'}: PingOne refused the codes an earlier run computed from its seed, and a scheduled run sends no more. Until the user activates it at first sign-in, this row keeps the run at exit 1; to close it otherwise, put the seed file right and run this file by hand with --activate, or roll the row back`) };
    }
    const token = seeds.bySerial.get(result.serialNumber);
    if (!token || !seeds.usable(result.serialNumber)) {
      return { ...result, errorCode: 'ACTIVATION_FAILED', message: note(`not activated: ${token ? 'its token in the seed file is invalid' : `no seed for ${result.serialNumber} in ${seeds.path}`}; the user is asked for a code at first sign-in`) };
    }
    // Codes PingOne keeps refusing are a wrong seed file or a wrong clock, not the tokens:
    // no more codes are sent (each one wasted is a step towards an OTP lockout).
    if (halted) return { ...result, errorCode: 'ACTIVATION_FAILED', message: note(`not activated: ${halted}`) };
    const started = Date.now();
    const readFirst = result.finishedEarlier === true || result.outcome === 'EXISTING';
    // Until one device has taken its code, activations go one at a time: a wrong seed file
    // or clock then costs --max-consecutive-failures devices' codes, not a pool's worth.
    const deviceId = result.deviceId;
    // The count is kept inside the turn, so that the next device's turn already sees it.
    const activateAndCount = async (): Promise<Activation | undefined> => {
      if (halted) return undefined;
      const a = await activateDevice(row.row, result.userID, deviceId, token, ctx, readFirst);
      // Only a code taken proves the seeds and the clock: a device found active proves nothing.
      if (a.activatedHere) {
        proven = true;
        refusedInARow = 0;
        options.onActivated?.();
      }
      if (a.refused && ++refusedInARow >= options.maxRefusedInARow && !halted) {
        halted = `activation stopped after ${refusedInARow} devices in a row refused the codes computed from their seeds (--max-consecutive-failures ${options.maxRefusedInARow}): the seed file may not belong to these tokens, or this machine's clock is off (TOTP); check both, then run again with --activate. Devices stay ACTIVATION_REQUIRED: users are asked for a code at first sign-in`;
        options.onHalted?.(halted);
      }
      return a;
    };
    const a = proven ? await activateAndCount() : await oneAtATime(activateAndCount);
    if (!a) return { ...result, errorCode: 'ACTIVATION_FAILED', message: note(`not activated: ${halted}`) };
    if (a.deviceStatus === 'ACTIVE' || a.refused) {
      journal.activated(pairKey(result.userID, result.serialNumber), row.row, { deviceId, deviceStatus: a.deviceStatus, ...(a.refused ? { refused: true } : {}) });
    }
    const before = result.finishedEarlier ? 'created by an earlier run' : result.outcome === 'EXISTING' ? 'the user already held this token' : 'created';
    return {
      ...result,
      deviceStatus: a.deviceStatus,
      errorCode: a.errorCode,
      message: `${before}; ${a.message}`,
      durationMs: result.durationMs + (Date.now() - started),
    };
  };
}
