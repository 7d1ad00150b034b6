/** What earlier runs recorded for a row of the input: read by a run, and by a folder's finished check without a request. */
import type { CheckedRow } from '../input/validate.js';
import { pairKey, type PairState } from './journal-state.js';
import type { PairJournal } from './journal.js';

/** The key under which an email/username row is also recorded, so a stop needs no lookup. */
export function aliasKey(row: CheckedRow): string | undefined {
  return row.user && row.user.kind !== 'id' ? pairKey(`${row.user.kind}:${row.user.value}`, row.serialNumber) : undefined;
}

/**
 * What earlier runs recorded for a row, before its user is resolved: under its pair when it
 * names its user by id (`key`), else under its email/username alias (the pair is known only
 * once the user is looked up).
 */
export function earlierEntry(row: CheckedRow, journal: Pick<PairJournal, 'lookup' | 'lookupAlias'>): { readonly key?: string; readonly prior?: PairState } {
  const alias = aliasKey(row);
  if (alias !== undefined) return { prior: journal.lookupAlias(alias) };
  const key = pairKey(row.user!.value, row.serialNumber);
  return { key, prior: journal.lookup(key) };
}
