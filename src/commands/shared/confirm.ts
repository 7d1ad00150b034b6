/**
 * Confirmation for the commands that take devices or tokens away (`revoke`, and those after
 * it): on a terminal the operator types "yes" to a question naming the environment, the count,
 * and every user who would be left with no MFA device; off a terminal `--yes` is required;
 * `--max-users` refuses a run that would touch more users than that.
 */
import { createInterface } from 'node:readline/promises';
import { UsageError } from '../../errors.js';
import type { CommandDeps } from './deps.js';

export interface Consequences {
  readonly command: string;
  readonly environmentId: string;
  /** "revoke 12 OATH tokens (reason: lost)" */
  readonly action: string;
  /** Users who lose a device. */
  readonly users: number;
  /** Users left with no MFA device at all (undefined: not read). */
  readonly leftWithNone?: readonly string[];
}

/** `--max-users <n>`: a whole number of users, 1 or more. */
export function maxUsers(raw: Record<string, unknown>): number | undefined {
  const given = raw['max-users'];
  if (given === undefined) return undefined;
  const n = Number(given);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--max-users: expected a whole number of users, 1 or more; got ${JSON.stringify(String(given))}`);
  return n;
}

/** Why the command may not go on (`--max-users`), or undefined. */
export function overMaxUsers(c: Consequences, limit: number | undefined): string | undefined {
  if (limit === undefined || c.users <= limit) return undefined;
  return `${c.command} would take devices from ${c.users} users, more than --max-users ${limit}: nothing was sent. Check the file (a dry run lists every user); raise --max-users if this is meant`;
}

function question(c: Consequences): string {
  const none = c.leftWithNone ?? [];
  const shown = none.slice(0, 50).join(', ');
  const left = none.length > 0 ? `\n${none.length} of them would be left with NO MFA device at all: ${shown}${none.length > 50 ? ` … and ${none.length - 50} more (the dry run lists all)` : ''}` : '';
  return `In environment ${c.environmentId}: ${c.action}; ${c.users} user${c.users === 1 ? '' : 's'} would lose a device.${left}\nType "yes" to go on: `;
}

/**
 * On a terminal, asks; anything but "yes" (Ctrl-C, Ctrl-D included) is a no. Off a terminal,
 * without --yes, refuses. Returns whether to go on.
 */
export async function confirmed(c: Consequences, raw: Record<string, unknown>, deps: CommandDeps): Promise<boolean> {
  if (raw['yes'] === true) return true;
  if (!(process.stdin.isTTY && deps.isTTY)) {
    throw new UsageError(`${c.command} takes devices and tokens away: pass --yes to confirm when not at a terminal (or --dry-run to see what it would do)`);
  }
  return askYes(question(c), deps);
}

/** Asks on the terminal; true only for "yes". Ctrl-C, Ctrl-D and a stop are a no, not an error. */
export async function askYes(text: string, deps: Pick<CommandDeps, 'stderr' | 'control'>): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: deps.stderr });
  const stop = new AbortController();
  const onStop = (): void => stop.abort();
  deps.control.stopping.addEventListener('abort', onStop, { once: true });
  rl.once('SIGINT', onStop);
  rl.once('close', onStop);
  try {
    return (await rl.question(text, { signal: stop.signal })).trim().toLowerCase() === 'yes';
  } catch {
    return false;
  } finally {
    deps.control.stopping.removeEventListener('abort', onStop);
    rl.close();
    deps.stderr.write('\n');
  }
}
