/**
 * The seeds of one `run`: the tokens of `--seeds` (or of an assignment file that carries its
 * own seeds, the Entra layout), looked up by serial: which the assignment file needs, whether
 * one is usable, whether the file gives a serial two tokens. What a row's fate is given what
 * the import came to is seed-gate.ts's; activation is activation.ts's.
 */
import type { RowResult } from '../report/outcome.js';
import type { SeedToken } from '../seeds/token.js';
import type { ResolvedRow } from './assign-row.js';

export class ShipmentSeeds {
  /** The seed file's tokens by serial (the first, when the file repeats a serial). */
  readonly bySerial = new Map<string, SeedToken>();

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

  /** Whether the seed file holds a usable seed for the serial. */
  usable(serial: string): boolean {
    const t = this.bySerial.get(serial);
    return t !== undefined && !t.problem && t.secret !== undefined;
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

  /** Wipes every seed still held. */
  wipe(): void {
    for (const t of this.tokens) t.secret?.wipe();
  }
}

