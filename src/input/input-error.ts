import { UsageError } from '../errors.js';

/** A file-level input problem: the run stops before any request (exit 2). */
export class InputError extends UsageError {
  constructor(file: string, where: string | undefined, problem: string) {
    super(`${file}: ${where ? `${where}: ` : ''}${problem}`);
    this.name = 'InputError';
  }
}

/** A value quoted for a message: control characters escaped, long values cut. */
export function show(value: string, max = 40): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}
