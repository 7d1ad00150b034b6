/**
 * A seed file read for its serials only (`revoke` of a whole box): no key is needed, no value
 * is opened, and the integrity rules for importing do not stop it — a box that went missing is
 * revoked whatever its file looks like. The seeds themselves are never decoded nor kept.
 */
import { readFileSync, statSync } from 'node:fs';
import { readHead } from './read-seeds.js';
import { InputError } from '../input/input-error.js';
import { openSeedCsv } from './seed-csv.js';
import { readCsvRecords } from '../input/reader.js';
import { keysOf, MAX_PSKC_BYTES, serialOf } from './pskc.js';
import { SeedFileError } from './seed-file-error.js';
import { looksLikeXml, readXml } from './xml.js';

export interface SerialOfSeedFile {
  /** 1-based: the token's place in the file. */
  readonly row: number;
  readonly line: number;
  readonly serialNumber: string;
}

/** The serials of a seed file, in its order. */
export async function readSeedSerials(path: string): Promise<SerialOfSeedFile[]> {
  if (!looksLikeXml(readHead(path, 64 * 1024))) {
    const layout = await openSeedCsv(path);
    const at = layout.columns.serial!;
    const serials: SerialOfSeedFile[] = [];
    for await (const raw of readCsvRecords(layout.file)) serials.push({ row: raw.row, line: raw.line, serialNumber: (raw.fields[at] ?? '').trim() });
    if (serials.length === 0) throw new InputError(path, undefined, 'has a header but no tokens');
    return serials;
  }
  if (statSync(path).size > MAX_PSKC_BYTES) throw new SeedFileError(path, `is larger than ${MAX_PSKC_BYTES / 1024 / 1024} MB: not a token shipment`);
  const bytes = readFileSync(path);
  const serials: SerialOfSeedFile[] = [];
  try {
    readXml(path, bytes, {
      root(element) {
        if (element.name !== 'KeyContainer') throw new SeedFileError(path, `has no KeyContainer (its root is <${element.name}>): not a PSKC (RFC 6030) seed file`);
      },
      child(element) {
        if (element.name !== 'KeyPackage' && element.name !== 'Device') return;
        for (const key of keysOf(element)) serials.push({ row: serials.length + 1, line: key.line, serialNumber: serialOf(element, key).trim() });
      },
    });
  } finally {
    bytes.fill(0);
  }
  if (serials.length === 0) throw new SeedFileError(path, 'holds no KeyPackage: no tokens in it');
  return serials;
}
