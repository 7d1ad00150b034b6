/**
 * Errors that end a command. Each carries the exit code the SPEC assigns to it; only
 * main.ts turns them into an exit. Messages are single lines meant for an operator.
 */

/** Nothing was attempted: usage, configuration, unreadable input, --strict, lock held. Exit 2. */
export class UsageError extends Error {
  readonly exitCode = 2 as const;
  constructor(message: string, readonly problems: string[] = [message]) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The run was stopped: systemic failure or a signal. Reports are written. Exit 3. */
export class StopError extends Error {
  readonly exitCode = 3 as const;
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'StopError';
  }
}

/** The exit code a command's error ends it with (main.ts prints it). */
export function exitCodeFor(error: unknown): 2 | 3 {
  return error instanceof UsageError ? 2 : 3;
}
