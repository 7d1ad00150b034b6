import { UsageError } from '../errors.js';
import type { CommandDeps } from './run.js';

export async function verifyCommand(_input: string, _raw: Record<string, unknown>, _deps: CommandDeps): Promise<number> {
  throw new UsageError('verify: not built yet');
}
