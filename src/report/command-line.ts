/**
 * The command an operator runs next, exactly as they gave it (every flag kept: --env-file,
 * --out-dir, --journal …), quoted for a POSIX shell. Secrets are never flag values (the
 * secret comes from a file or the environment), so the line is safe to print and log.
 */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(arg: string): string {
  return arg !== '' && SAFE.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** `oath-bulk <args…>` without the flags in `drop` (boolean flags, also as --flag=value). */
export function commandLine(args: readonly string[], drop: readonly string[] = [], add: readonly string[] = []): string {
  const kept = args.filter((a) => !drop.some((flag) => a === flag || a.startsWith(`${flag}=`)));
  return ['oath-bulk', ...kept, ...add.filter((a) => !kept.includes(a))].map(shellQuote).join(' ').replace(/^'oath-bulk'/, 'oath-bulk');
}
