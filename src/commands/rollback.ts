import { UsageError } from '../errors.js';
import type { CommandDeps } from './run.js';

export async function rollbackCommand(_input: string, _raw: Record<string, unknown>, _deps: CommandDeps): Promise<number> {
  throw new UsageError('rollback: not built yet');
}
