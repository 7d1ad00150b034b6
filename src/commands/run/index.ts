/**
 * `oath-bulk run <input>`: a shipment file, or a folder of them (each taken as if run alone,
 * by the folder scheduler over the same shipment function).
 */
import type { RawOptions } from '../../config.js';
import { isFolder } from '../../report/files.js';
import type { CommandDeps } from '../shared/deps.js';
import { runFolder } from './folder.js';
import { runShipment } from './shipment.js';

export async function runCommand(input: string, raw: RawOptions, deps: CommandDeps): Promise<number> {
  return isFolder(input) ? runFolder(input, raw, deps) : runShipment(input, raw, deps);
}
