/**
 * What the import of a run's seeds means for each row (`run --seeds`): a row whose token could
 * not be imported is not sent; a row the seed file gives two tokens is not sent; a row PingOne
 * answers SERIAL_NOT_FOUND says whether the seed file had its token. Pure: it decides and
 * words; what to record in the journal is the caller's (a stale import is reported, not cleared
 * here).
 */
import type { RowResult } from '../report/outcome.js';
import type { ResolvedRow } from './assign-row.js';
import type { ImportResult } from './import-batch.js';
import type { ShipmentSeeds } from './shipment-seeds.js';

export interface Explained {
  readonly result: RowResult;
  /**
   * The journal says an earlier run imported the serial's token and PingOne no longer has it
   * (revoked since): the caller clears that import record, so the next run imports it again.
   */
  readonly staleImport?: string;
}

export class SeedGate {
  /** What the import made of each token the run needs, by serial. */
  private readonly imported = new Map<string, ImportResult>();

  constructor(
    private readonly seeds: ShipmentSeeds,
    results: readonly ImportResult[],
  ) {
    for (const r of results) if (seeds.bySerial.get(r.token.serialNumber) === r.token) this.imported.set(r.token.serialNumber, r);
  }

  /** A row whose token the import could not put in the inventory, or that the seed file gives two tokens, is not sent. */
  gate(row: ResolvedRow): RowResult | undefined {
    const conflict = this.seeds.conflict(row);
    if (conflict) return conflict;
    const r = this.imported.get(row.serialNumber);
    if (!r || r.outcome === 'IMPORTED' || r.outcome === 'ALREADY_PRESENT' || r.outcome === 'INVALID') return undefined;
    const base = { row: row.row, userID: row.userId, serialNumber: row.serialNumber, extras: row.extras, attempts: 0, durationMs: 0 };
    if (r.outcome === 'FAILED') {
      return { ...base, outcome: 'FAILED', errorCode: 'SERIAL_NOT_FOUND', message: `${row.serialNumber} is not in the inventory and importing its seed from ${this.seeds.path} failed (${r.errorCode ?? 'FAILED'}: ${r.message ?? ''}): nothing was sent for this row; see the seeds results` };
    }
    return { ...base, outcome: 'NOT_ATTEMPTED', message: `its seed was not imported yet (${r.outcome}): run again to finish` };
  }

  /** SERIAL_NOT_FOUND from PingOne, with what the seed file says about the serial. */
  explain(result: RowResult): Explained {
    if (result.errorCode !== 'SERIAL_NOT_FOUND' || result.attempts === 0) return { result };
    const seed = this.seeds.bySerial.get(result.serialNumber);
    const imported = this.imported.get(result.serialNumber);
    const said = (why: string): RowResult => ({ ...result, message: `${result.message}; ${why}` });
    if (!seed) return { result: said(`it is not in the seed file ${this.seeds.path} either: add the token's seed there (or import it), then run again`) };
    if (seed.problem) return { result: said(`its token in the seed file is invalid (${seed.problem.code}: ${seed.problem.message}): correct the seed file, then run again`) };
    if (imported?.finishedEarlier) {
      return { result: said('an earlier run imported its seed, but PingOne no longer finds it (revoked since?): the next run imports it again, then assigns it'), staleImport: result.serialNumber };
    }
    if (imported) return { result: said('its seed was imported, yet PingOne does not find it: check that --environment-id names the environment the seeds went into') };
    return { result: said('its seed was not imported by this run: run again') };
  }
}
