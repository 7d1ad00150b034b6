/**
 * `oath-bulk run <input>`: a shipment file, or a folder of them (each taken as if run alone,
 * by the folder scheduler over the same shipment function).
 */
import type { RawOptions } from '../../config.js';
import { isFolder } from '../../report/files.js';
import type { CommandDeps } from '../shared/deps.js';

export async function runCommand(input: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  return isFolder(input) ? (await import('./folder.js')).runFolder(input, raw, deps) : (await import('./shipment.js')).runShipment(input, raw, deps);
}
