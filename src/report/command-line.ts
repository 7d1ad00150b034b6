/**
 * The command an operator runs next, exactly as they gave it (every flag kept: --env-file,
 * --out-dir, --journal …), quoted for a POSIX shell. Secrets are never flag values (the
 * secret comes from a file or the environment), so the line is safe to print and log.
 */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(arg: string): string {
  return arg !== '' && SAFE.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Flags a command typed by hand must not carry: the monitoring ones. The healthcheck URL is a
 * capability (whoever has it can ping), and a rerun by hand must not ping cron's monitor nor
 * replace its metrics.
 */
const CRON_ONLY = ['--healthcheck-url', '--metrics-file'];

/**
 * A flag as yargs reads it, whatever its spelling: `--dryRun`, `--dry-run` and
 * `--dry-run=true` are one flag, `--dry-run` (yargs takes camelCase too).
 */
function flagName(arg: string): string | undefined {
  const m = /^--([^=]+)/.exec(arg);
  return m ? `--${m[1]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}` : undefined;
}

/** `arg` is `flag`, in any spelling, with or without `=value`. */
const isFlag = (arg: string, flag: string): boolean => flagName(arg) === flag;
/** `arg` carries its value itself (`--flag=value`). */
const inline = (arg: string): boolean => arg.includes('=');

/** `oath-bulk <args…>` without the boolean flags in `drop` (as `--flag`, `--flag=value` or `--flag true`). */
export function commandLine(args: readonly string[], drop: readonly string[] = [], add: readonly string[] = []): string {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      kept.push(...args.slice(i));
      break;
    }
    if (CRON_ONLY.some((flag) => isFlag(a, flag))) {
      if (!inline(a)) i++;
      continue;
    }
    if (drop.some((flag) => isFlag(a, flag))) {
      if (!inline(a) && (args[i + 1] === 'true' || args[i + 1] === 'false')) i++;
      continue;
    }
    kept.push(a);
  }
  return ['oath-bulk', ...kept, ...add.filter((a) => !kept.includes(a))].map(shellQuote).join(' ').replace(/^'oath-bulk'/, 'oath-bulk');
}

/** The flags that say where and how to connect and where reports go: a follow-up command keeps them. */
const CARRIED = ['--env-file', '--settings', '--environment-id', '--region', '--api-url', '--auth-url', '--client-id', '--token-auth', '--out-dir', '--rate', '--state-dir'];

/**
 * Another command on another file, with the connection and report flags of `args` (the ones
 * the operator typed), nothing else: `oath-bulk verify <results.csv> --env-file prod.env`.
 */
export function followUp(args: readonly string[], command: string, file: string, add: readonly string[] = []): string {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const flag = CARRIED.find((f) => isFlag(a, f));
    if (!flag) continue;
    kept.push(a);
    if (!inline(a) && i + 1 < args.length) kept.push(args[++i]!);
  }
  return ['oath-bulk', command, file, ...kept, ...add].map(shellQuote).join(' ');
}

/** Flags whose value is a secret: refused by the CLI, and never recorded should one get through. */
const SECRET_FLAGS = ['--client-secret', '--psk', '--passphrase'];

/**
 * The command line as a change record keeps it: as typed, without the monitoring flags (their
 * values are capabilities) and without any secret flag's value.
 */
export function recordedCommandLine(args: readonly string[]): string {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const secret = SECRET_FLAGS.find((f) => isFlag(a, f));
    if (secret) {
      kept.push(`${secret}=(not recorded)`);
      if (!inline(a)) i++;
      continue;
    }
    kept.push(a);
  }
  return commandLine(kept);
}
