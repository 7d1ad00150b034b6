/** The results of importing seeds (`import`, and the seeds report of `run --seeds`): one row per token, never a seed. */
import { basename } from 'node:path';
import type { Logger } from 'pino';
import type { LedgerFact } from '../../engine/ledger.js';
import type { ImportOutcome, ImportResult } from '../../engine/import-batch.js';
import type { ReportRecorder } from '../../report/html-report.js';
import type { ResultsWriter } from '../../report/results-writer.js';
import type { Tally } from '../../report/tally.js';

export const IMPORT_COLUMNS = ['row', 'serialNumber', 'type', 'otpLength', 'outcome', 'tokenId', 'errorCode', 'message', 'manufacturer', 'model', 'validFrom', 'validUntil'];


/** Each token's outcome: counted, logged (never its seed) and written to the results. */
export async function writeImportResults(outcomes: readonly ImportResult[], results: ResultsWriter, logger: Logger, tally: Tally<ImportOutcome>, recorder?: ReportRecorder, dryRun = false): Promise<void> {
  for (const r of outcomes) {
    const t = r.token;
    tally.add({ outcome: r.outcome, errorCode: r.errorCode, finishedEarlier: r.finishedEarlier });
    if (r.outcome !== 'IMPORTED' && r.outcome !== 'ALREADY_PRESENT' && !(dryRun && r.outcome === 'NOT_ATTEMPTED')) {
      recorder?.attention({ row: t.index, serialNumber: t.serialNumber, outcome: r.outcome, errorCode: r.errorCode, message: r.message, extras: [t.manufacturer ?? '', t.model ?? ''] });
    }
    logger[r.outcome === 'FAILED' || r.outcome === 'INVALID' || r.outcome === 'UNCONFIRMED' ? 'warn' : 'info']({ event: 'row', row: t.index, serialNumber: t.serialNumber, outcome: r.outcome, tokenId: r.tokenId, errorCode: r.errorCode });
    await results.writeCells([t.index, t.serialNumber, t.type, t.otpLength, r.outcome, r.tokenId, r.errorCode, r.message, t.manufacturer, t.model, t.validFrom, t.validUntil]);
  }
}

/** The ledger's "shipped" facts: each token this import put in the inventory, the file it came in, its vendor validity. */
export function shippedFacts(outcomes: readonly ImportResult[], file: string, by: string): LedgerFact[] {
  return outcomes
    .filter((r) => r.outcome === 'IMPORTED' && !r.finishedEarlier && r.token.copyOf === undefined)
    .map((r) => ({ e: 'shipped' as const, sn: r.token.serialNumber, shipment: basename(file), validFrom: r.token.validFrom, validUntil: r.token.validUntil, manufacturer: r.token.manufacturer, model: r.token.model, by }));
}
