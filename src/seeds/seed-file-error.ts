/** A seed file that cannot be used at all: exit 2 before anything is sent, one line naming the file and the fix. */
import { UsageError } from '../errors.js';

export class SeedFileError extends UsageError {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'SeedFileError';
  }
}
