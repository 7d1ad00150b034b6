/**
 * The command line: yargs declarations only (commands, flags, help text). Each handler
 * passes the parsed flags to its command; main.ts turns the outcome into an exit code.
 */
import yargs, { type Argv } from 'yargs';
import { UsageError } from './errors.js';
import { FAULT_HELP } from './sandbox/faults.js';
import type { CommandDeps } from './commands/shared/deps.js';
import { SWITCHES } from './commands/shared/flags.js';
import { REVOKE_REASONS } from './engine/ledger.js';

/** inventory's states, as --state takes them (engine/inventory.ts TOKEN_STATES; not imported: --help loads no engine). */
const TOKEN_STATE_NAMES = 'free|assigned|activation_pending|holder_disabled|orphaned|unaccounted|revoked_present|expired|expiring|unknown';

export interface Commands {
  run(input: string, raw: Record<string, unknown>, deps: CommandDeps): Promise<number>;
  verify(input: string, raw: Record<string, unknown>, deps: CommandDeps): Promise<number>;
  rollback(input: string, raw: Record<string, unknown>, deps: CommandDeps): Promise<number>;
  sandbox(raw: Record<string, unknown>, deps: CommandDeps): Promise<number>;
  import(seeds: string, raw: Record<string, unknown>, deps: CommandDeps): Promise<number>;
  revoke(input: string, raw: Record<string, unknown>, deps: CommandDeps): Promise<number>;
  reinstate(serials: string[], raw: Record<string, unknown>, deps: CommandDeps): Promise<number>;
  unassign(input: string, raw: Record<string, unknown>, deps: CommandDeps): Promise<number>;
  replace(input: string, raw: Record<string, unknown>, deps: CommandDeps): Promise<number>;
  resync(input: string | undefined, raw: Record<string, unknown>, deps: CommandDeps): Promise<number>;
  inventory(raw: Record<string, unknown>, deps: CommandDeps): Promise<number>;
}

const CONNECTION = 'PingOne connection (flags win over the environment; --settings is read first):';
const RUN = 'Run options:';
const REPORTS = 'Reports:';
const SEEDS = 'Seed file:';

function connectionOptions(y: Argv): Argv {
  return y
    // --settings, not --env-file: Node 20 takes --env-file for itself on any `node script …`
    // command line, npx's own included, and exits with "node: <file>: not found" before
    // oath-bulk runs. --env-file stays accepted where Node lets it through.
    .option('settings', { type: 'string', alias: 'env-file', group: CONNECTION, describe: 'read KEY=value lines (PINGONE_…) from this file (also --env-file)' })
    .option('environment-id', { type: 'string', group: CONNECTION, describe: 'PingOne environment id [PINGONE_ENVIRONMENT_ID]' })
    .option('client-id', { type: 'string', group: CONNECTION, describe: 'worker app client id [PINGONE_CLIENT_ID]' })
    .option('client-secret-file', { type: 'string', group: CONNECTION, describe: 'file holding the worker app client secret [PINGONE_CLIENT_SECRET]' })
    .option('client-secret', { type: 'string', hidden: true })
    .option('region', { type: 'string', group: CONNECTION, describe: 'NA|CA|EU|AU|SG|AP [PINGONE_REGION] (default NA)' })
    .option('api-url', { type: 'string', group: CONNECTION, describe: 'API base, overrides --region [PINGONE_API_URL]' })
    .option('auth-url', { type: 'string', group: CONNECTION, describe: 'auth host, overrides --region [PINGONE_AUTH_URL]' })
    .option('token-auth', { type: 'string', group: CONNECTION, describe: 'basic|post: how the worker app authenticates [PINGONE_TOKEN_AUTH] (default basic)' });
}

const LEDGER = 'The ledger (what PingOne does not keep: revoked tokens, hand-outs, shipments):';

/** Where the environment's ledger lives: every command that imports, assigns or revokes reads it. */
function ledgerOptions(y: Argv): Argv {
  return y.option('state-dir', { type: 'string', group: LEDGER, describe: "the ledger's folder: one file per environment; shared by hand-typed commands and cron [OATH_BULK_STATE_DIR]", defaultDescription: '$XDG_STATE_HOME/oath-bulk (~/.local/state/oath-bulk)' });
}

function engineOptions(y: Argv): Argv {
  return y
    .option('concurrency', { type: 'number', group: RUN, describe: 'requests in flight at most', default: undefined, defaultDescription: '8' })
    .option('rate', { type: 'number', group: RUN, describe: 'requests per second at most, all requests counted', defaultDescription: '20' })
    .option('max-attempts', { type: 'number', group: RUN, describe: 'attempts per request', defaultDescription: '8' })
    .option('timeout', { type: 'number', group: RUN, describe: 'per request, in ms', defaultDescription: '30000' })
    .option('max-consecutive-failures', { type: 'number', group: RUN, describe: 'stop when this many rows in a row fail for the same non-row reason', defaultDescription: '25' })
    .option('max-unreachable', { type: 'number', group: RUN, describe: 'stop (exit 3, CONNECTION_LOST) when PingOne cannot be reached at all for this many seconds', defaultDescription: '60' })
    .option('backoff-base', { type: 'number', group: RUN, describe: 'first retry delay in ms (doubles each attempt, with jitter)', defaultDescription: '1000' })
    .option('backoff-max', { type: 'number', group: RUN, describe: 'longest retry delay in ms', defaultDescription: '30000' });
}

const MONITOR = 'Cron and monitoring (flags win over the settings file):';

function reportOptions(y: Argv): Argv {
  return y
    .option('healthcheck-url', { type: 'string', group: MONITOR, describe: 'ping <url>/start when it starts and <url>/<exit code> when it ends (healthchecks.io, Cronitor, Uptime Kuma push) [OATH_BULK_HEALTHCHECK_URL]' })
    .option('metrics-file', { type: 'string', group: MONITOR, describe: 'write Prometheus metrics here at the end (node_exporter textfile collector; *.prom) [OATH_BULK_METRICS_FILE]' })
    .option('keep-reports', { type: 'number', group: MONITOR, describe: 'keep the newest n report sets per input name (never the journal) [OATH_BULK_KEEP_REPORTS]' })
    .option('lock-wait', { type: 'string', group: MONITOR, describe: 'a folder run: seconds to wait for another run of the same folder to finish before giving up (exit 2, nothing attempted) [OATH_BULK_LOCK_WAIT]', defaultDescription: '0' })
    .option('out-dir', { type: 'string', group: REPORTS, describe: 'where reports and the journal go', defaultDescription: 'reports' })
    .option('csv-dialect', { type: 'string', group: REPORTS, describe: "contract|input: the results CSV as SPEC has it (comma, no BOM: for scripts), or in the input file's separator and BOM (Excel in a ';' locale); the .xlsx beside it is always written", defaultDescription: 'contract' })
    .option('progress', { type: 'boolean', group: REPORTS, describe: 'live progress on stderr (--no-progress to hide)', defaultDescription: 'on for a TTY' })
    .option('quiet', { type: 'boolean', group: REPORTS, describe: 'print only errors' })
    .option('log-level', { type: 'string', group: REPORTS, describe: 'fatal|error|warn|info|debug|trace|silent', defaultDescription: 'info' })
    .option('debug', { type: 'boolean', group: REPORTS, describe: 'show stack traces of internal errors' });
}

/** How a seed file is read (import, and run --seeds). */
function seedFileOptions(y: Argv): Argv {
  return y
    .option('psk-file', { type: 'string', group: SEEDS, describe: 'the pre-shared key of an encrypted PSKC file: 16, 24 or 32 bytes, raw or as hex' })
    .option('passphrase-file', { type: 'string', group: SEEDS, describe: 'the passphrase of a PBKDF2-protected PSKC file (on a terminal, asked for when needed)' })
    .option('allow-unencrypted', { type: 'boolean', group: SEEDS, describe: 'import a PSKC file without encryption although a key was given (only when the vendor confirms it was sent so)' })
    .option('psk', { type: 'string', hidden: true })
    .option('passphrase', { type: 'string', hidden: true })
    .option('secret-encoding', { type: 'string', group: SEEDS, describe: 'hex|base32|base64: how a seed CSV writes secrets (Entra layout: base32)', defaultDescription: 'hex' })
    .option('type', { type: 'string', group: SEEDS, describe: 'HOTP|TOTP, for tokens the file does not say' })
    .option('otp-length', { type: 'number', group: SEEDS, describe: '6|8, for tokens the file does not say', defaultDescription: '6' })
    .option('time-step', { type: 'number', group: SEEDS, describe: '30|60 (TOTP), for tokens the file does not say', defaultDescription: '30' })
    .option('job-size', { type: 'number', group: SEEDS, describe: 'tokens per oathJobs batch (1-1000)', defaultDescription: '500' });
}

function refuseSecretFlag(argv: Record<string, unknown>): void {
  if (argv['client-secret'] !== undefined) {
    throw new UsageError('--client-secret: not accepted, because a secret on the command line shows in `ps` and shell history; use --client-secret-file <path> or PINGONE_CLIENT_SECRET');
  }
}

/** Flags that take no value (`--flag`, `--no-flag`, or `=true|false`). */

/**
 * yargs reads `--dry-run=1` as false: a real run where a dry run was meant. A switch takes no
 * value, or exactly true/false.
 */
function refuseSwitchValues(argv: readonly string[]): void {
  for (const arg of argv) {
    if (arg === '--') break;
    const m = /^--(no-)?([a-z-]+)=(.*)$/.exec(arg);
    if (m && SWITCHES.includes(m[2]!) && m[3] !== 'true' && m[3] !== 'false') {
      throw new UsageError(`--${m[1] ?? ''}${m[2]}: takes no value, got ${JSON.stringify(m[3])}; write --${m[2]} alone (or --no-${m[2]})`);
    }
  }
}

/** Parses argv and runs the command. Resolves with the exit code. */
export async function dispatch(argv: string[], commands: Commands, deps: CommandDeps): Promise<number> {
  refuseSwitchValues(argv);
  let exitCode = 0;
  let helpShown = true;
  /** A PingOne command's handler: its positional and the parsed flags to the command. */
  const handle = (command: 'run' | 'verify' | 'rollback' | 'import' | 'revoke' | 'unassign' | 'replace', positional: string) => async (a: Record<string, unknown>): Promise<void> => {
    helpShown = false;
    refuseSecretFlag(a);
    exitCode = await commands[command](String(a[positional]), a, deps);
  };
  const parser = yargs(argv)
    .scriptName('oath-bulk')
    .usage('$0 <command> [options]\n\nAssigns shipments of hardware OATH tokens to PingOne users.')
    .command(
      'run <input>',
      'assign the tokens in the CSV file (with --seeds: import the missing seeds first)',
      (y) =>
        ledgerOptions(seedFileOptions(reportOptions(engineOptions(connectionOptions(y)))))
          .positional('input', { type: 'string', describe: 'CSV with userID (or email/username) and serialNumber columns; or a folder: every *.csv in it, each as if run alone' })
          .option('dry-run', { type: 'boolean', group: RUN, describe: 'a preflight: the file, the credentials, each serial in the inventory and each user, read only; writes nothing to PingOne' })
          .option('preflight', { type: 'boolean', group: RUN, describe: 'with --dry-run: read the inventory and the users (--no-preflight: only the file and the credentials)', defaultDescription: 'on' })
          .option('strict', { type: 'boolean', group: RUN, describe: 'refuse to send anything if any row is invalid' })
          .option('seeds', { type: 'string', group: SEEDS, describe: "the vendor's seed file (PSKC or seed CSV): the serials the input names that the inventory lacks are imported first" })
          .option('activate', { type: 'boolean', group: SEEDS, describe: 'activate devices PingOne creates ACTIVATION_REQUIRED with a code computed from the seed (needs --seeds, or an input that carries its seeds)' })
          .option('journal', { type: 'string', group: REPORTS, describe: 'journal file (--no-journal: keep none; reruns then cannot resume)', defaultDescription: '<out-dir>/<name>.journal.jsonl' })
          // --dry-run first: however the help wraps, the line's start is a dry run.
          .example('$0 run --dry-run shipment.csv --settings pingone.env', 'check the file and credentials first')
          .example('$0 run shipment.csv --settings pingone.env', 'assign a shipment')
          .example('$0 run /srv/shipments --settings pingone.env --keep-reports 10', 'every shipment in a folder (cron)')
          .example('$0 run shipment.csv --seeds vendor.pskc.xml --psk-file vendor.key --activate --settings pingone.env', 'a whole shipment: import, assign, activate'),
      handle('run', 'input'),
    )
    .command(
      'verify <input>',
      "read back each user's devices and report which assignments are in place",
      (y) =>
        reportOptions(engineOptions(connectionOptions(y)))
          .positional('input', { type: 'string', describe: 'a results CSV of a run, or the input CSV' })
          .example('$0 verify reports/shipment.20261128T170802Z.results.csv --settings pingone.env', 'prove a run'),
      handle('verify', 'input'),
    )
    .command(
      'rollback <results>',
      'delete the devices that a run created (outcome CREATED)',
      (y) =>
        ledgerOptions(reportOptions(engineOptions(connectionOptions(y))))
          .positional('results', { type: 'string', describe: 'the results CSV of the run to undo' })
          .option('dry-run', { type: 'boolean', group: RUN, describe: 'list what would be deleted; delete nothing' })
          .option('yes', { type: 'boolean', group: RUN, describe: 'do not ask for confirmation' })
          .option('journal', { type: 'string', group: REPORTS, describe: "the journal of the run that created the devices, where the deletions are recorded", defaultDescription: "the one the run's summary names" })
          .example('$0 rollback reports/shipment.20261128T170802Z.results.csv --settings pingone.env --dry-run', 'see what would be undone')
          .epilog('rollback undoes a run: the next run of the same input assigns its tokens again. For a token that is lost or stolen, use `oath-bulk revoke` (it stays out of service, even for cron).'),
      handle('rollback', 'results'),
    )
    .command(
      'revoke <input>',
      'take tokens out of service for good: their devices off their users, the tokens out of the inventory, and the ledger keeping them out of every later import and run',
      (y) =>
        ledgerOptions(reportOptions(engineOptions(connectionOptions(y))))
          .positional('input', { type: 'string', describe: 'a CSV with a serialNumber column; a results file of oath-bulk run (only its CREATED and EXISTING rows); or the seed file of a box (read for its serials only: no key needed)' })
          .option('reason', { type: 'string', group: RUN, describe: `why, kept in the ledger: ${REVOKE_REASONS.join('|')} (required)` })
          .option('dry-run', { type: 'boolean', group: RUN, describe: 'read the inventory and the users: list every user who would lose a device, and those left with no MFA device; change nothing' })
          .option('yes', { type: 'boolean', group: RUN, describe: 'do not ask for confirmation (required off a terminal)' })
          .option('max-users', { type: 'number', group: RUN, describe: 'refuse (exit 2, nothing sent) if more users than this would lose a device' })
          .option('job-size', { type: 'number', group: RUN, describe: 'tokens per revoke job (1-1000)', defaultDescription: '500' })
          .example('$0 revoke --dry-run lost.csv --reason lost --settings pingone.env', 'see who would lose a device')
          .example('$0 revoke lost.csv --reason lost --settings pingone.env --yes', 'a user lost a token')
          .example('$0 revoke box-7.pskc.xml --reason stolen --settings pingone.env --yes --max-users 50', 'a box went missing'),
      handle('revoke', 'input'),
    )
    .command(
      'inventory',
      'every token of the environment: free, assigned, waiting for a code, on a disabled or vanished user, unaccounted for, revoked yet present, expiring (reads only)',
      (y) =>
        ledgerOptions(reportOptions(engineOptions(connectionOptions(y))))
          .option('state', { type: 'string', group: RUN, describe: `also write just the tokens in these states (comma-separated: ${TOKEN_STATE_NAMES}) as <env>.inventory.<runId>.<state>.csv, a file revoke and unassign take` })
          .option('expiring-within', { type: 'string', group: RUN, describe: "EXPIRING: the vendor's validity ends within this many days", defaultDescription: '90' })
          .option('device-status', { type: 'boolean', group: RUN, describe: "read the status of devices the journals do not know: one request per user holding one (100,000 users: 100,000 requests, about 17 min at --rate 100); off: ACTIVATION_PENDING only as the journals saw it" })
          .example('$0 inventory --settings pingone.env', 'every token, where it is, what is wrong with it')
          .example('$0 inventory --state orphaned --settings pingone.env', 'the tokens of people who left, as a file revoke takes')
          .example('$0 inventory --settings pingone.env --metrics-file /var/lib/node_exporter/oath-bulk-inventory.prom', 'daily, from cron: stock and orphans for alerts'),
      async (a) => {
        helpShown = false;
        refuseSecretFlag(a);
        exitCode = await commands.inventory(a, deps);
      },
    )
    .command(
      'unassign <input>',
      "the hardware came back: delete each user's device for that serial; the token stays in the inventory, free for the next user",
      (y) =>
        ledgerOptions(reportOptions(engineOptions(connectionOptions(y))))
          .positional('input', { type: 'string', describe: 'a CSV with userID and serialNumber columns, or a results file of oath-bulk run (only its CREATED and EXISTING rows)' })
          .option('dry-run', { type: 'boolean', group: RUN, describe: "read each user's devices: list what would be deleted, and who would be left with no MFA device; change nothing" })
          .option('yes', { type: 'boolean', group: RUN, describe: 'do not ask for confirmation (required off a terminal)' })
          .option('max-users', { type: 'number', group: RUN, describe: 'refuse (exit 2, nothing deleted) if more users than this would lose a device' })
          .option('allow-last-device', { type: 'boolean', group: RUN, describe: "delete a user's device even when it is their only MFA device (they can then no longer sign in with MFA)" })
          .example('$0 unassign --dry-run returned.csv --settings pingone.env', 'see what would be deleted')
          .example('$0 unassign returned.csv --settings pingone.env --yes', 'a user left and returned the token'),
      handle('unassign', 'input'),
    )
    .command(
      'replace <input>',
      'each user gets the new token before losing the old one: (block the old device,) create and activate the new device, then delete the old one; the old token back in the pool, or revoked with a reason',
      (y) =>
        ledgerOptions(seedFileOptions(reportOptions(engineOptions(connectionOptions(y)))))
          .positional('input', { type: 'string', describe: 'a CSV with userID, oldSerial and newSerial columns (and reason: lost|stolen|defective|retired, which wins over --reason)' })
          .option('reason', { type: 'string', group: RUN, describe: `${REVOKE_REASONS.join('|')}: the old tokens are revoked and marked (lost|stolen: their devices are blocked first); without one they return to the pool` })
          .option('seeds', { type: 'string', group: SEEDS, describe: 'the seed file of the new tokens: those the inventory lacks are imported first' })
          .option('activate', { type: 'boolean', group: SEEDS, describe: 'activate the new devices with codes computed from --seeds before the old ones go' })
          .option('dry-run', { type: 'boolean', group: RUN, describe: "read each user's devices and say what would be done; change nothing" })
          .option('yes', { type: 'boolean', group: RUN, describe: 'do not ask for confirmation (required off a terminal)' })
          .option('max-users', { type: 'number', group: RUN, describe: 'refuse (exit 2, nothing changed) if more users than this would be touched' })
          .example('$0 replace swap.csv --reason lost --seeds new-box.pskc.xml --psk-file vendor.key --activate --settings pingone.env --yes', 'a user lost a token: the new one replaces it'),
      handle('replace', 'input'),
    )
    .command(
      'resync [input]',
      'bring drifted tokens back in step with two consecutive codes read off each: HOTP from a file, TOTP typed at a terminal',
      (y) =>
        ledgerOptions(reportOptions(engineOptions(connectionOptions(y))))
          .positional('input', { type: 'string', describe: 'a CSV: serialNumber,otp1,otp2 (HOTP; keep the code columns as Text: leading zeros count)' })
          .option('totp', { type: 'string', array: true, group: RUN, describe: 'TOTP serials: at a terminal, type each token\'s two codes as you read them (codes in a file go stale)' })
          .option('dry-run', { type: 'boolean', group: RUN, describe: 'check the file and find each token; send no code (the codes stay unspent)' })
          .example('$0 resync drawer.csv --settings pingone.env', 'tokens drifted in storage (HOTP)')
          .example('$0 resync --totp 00412345678901 --settings pingone.env', 'a TOTP token whose clock drifted'),
      async (a) => {
        helpShown = false;
        refuseSecretFlag(a);
        exitCode = await commands.resync(typeof a['input'] === 'string' ? a['input'] : undefined, a, deps);
      },
    )
    .command(
      'reinstate <serials..>',
      'undo a revoke made by mistake in the ledger (the tokens may then be imported and assigned again)',
      (y) =>
        ledgerOptions(y)
          .positional('serials', { type: 'string', array: true, describe: 'the serials to reinstate' })
          .option('settings', { type: 'string', alias: 'env-file', group: CONNECTION, describe: 'read KEY=value lines (PINGONE_…) from this file' })
          .option('environment-id', { type: 'string', group: CONNECTION, describe: 'PingOne environment id [PINGONE_ENVIRONMENT_ID]' })
          .option('yes', { type: 'boolean', describe: 'confirm the reversal (required)' })
          .example('$0 reinstate 00412345678901 --settings pingone.env --yes', 'a token revoked by mistake'),
      async (a) => {
        helpShown = false;
        exitCode = await commands.reinstate((a['serials'] as unknown[]).map(String), a, deps);
      },
    )
    .command(
      'import <seeds>',
      "put a vendor's token seeds into the environment's OATH token inventory",
      (y) =>
        ledgerOptions(seedFileOptions(reportOptions(engineOptions(connectionOptions(y)))))
          .positional('seeds', { type: 'string', describe: 'the seed file: PSKC (RFC 6030) XML, or a seed CSV (serial and secret columns; the Entra layout too)' })
          .option('dry-run', { type: 'boolean', group: RUN, describe: 'read, decrypt and check the file, read which serials the inventory holds; import nothing' })
          .option('journal', { type: 'string', group: REPORTS, describe: 'journal file (--no-journal: keep none)', defaultDescription: '<out-dir>/<name>.import.journal.jsonl' })
          .example('$0 import --dry-run shipment.pskc.xml --settings pingone.env --psk-file vendor.key', 'check a seed file first')
          .example('$0 import shipment.pskc.xml --settings pingone.env --psk-file vendor.key', 'import it'),
      handle('import', 'seeds'),
    )
    .command(
      'sandbox',
      'start the built-in PingOne simulator on loopback (demos, tests, drills)',
      (y) =>
        y
          .option('port', { type: 'number', describe: 'port to listen on (0 = any free port)', default: 0 })
          .option('rate-limit', { type: 'number', describe: 'requests per second it accepts before answering 429 (0 = no limit)', default: 0 })
          .option('latency', { type: 'number', describe: 'ms added to every answer', default: 0 })
          .option('faults', {
            type: 'string',
            describe: `fault mix as shares of API requests, e.g. 5xx=0.03,lost=0.02. Kinds: ${Object.entries(FAULT_HELP).map(([kind, what]) => `${kind} (${what})`).join('; ')}`,
            default: '',
          })
          .option('seed', { type: 'number', describe: 'seed for the fault draws', default: 1 })
          .option('slow-ms', { type: 'number', describe: 'how late a "slow" answer comes, in ms', default: 2000 })
          .option('token-ttl', { type: 'number', describe: 'access token lifetime in seconds', default: 3600 })
          .option('max-devices', { type: 'number', describe: 'MFA devices a user may hold', default: 5 })
          .option('forbidden', { type: 'boolean', describe: 'answer every API call 403 (a worker app without its role)', default: false })
          .option('users', { type: 'string', describe: 'CSV of id,username,email for email/username lookups' })
          .option('inventory', { type: 'string', describe: 'open: every serial but UNKNOWN… is in the token inventory; imported: only serials imported through oathTokens/oathJobs', default: 'open' })
          .option('job-size-limit', { type: 'number', describe: 'tokens one oathJob may hold', default: 1000 })
          .option('job-delay', { type: 'number', describe: 'ms an oathJob stays IN_PROGRESS', default: 200 })
          .option('fail-job-serials', { type: 'string', describe: 'comma-separated serials: an oathJob holding one of them FAILS whole (drills)' })
          .option('activation-required', { type: 'boolean', describe: 'create devices ACTIVATION_REQUIRED, as PingOne may', default: false })
          .option('inventory-page-size', { type: 'number', describe: 'tokens one inventory page holds at most, whatever the client asks (drills of paging)', default: 1000 })
          .option('on-user-deleted', { type: 'string', describe: "orphan|free: what deleting a user does to their tokens (unconfirmed for PingOne): orphan keeps them paired to the vanished user, free drops the devices and frees the tokens", default: 'orphan' })
          .option('populate', { type: 'number', describe: 'start with this many tokens in the inventory (POP000001…): 60% on users of their own, some waiting for a first code, some users disabled or deleted (an environment to take an inventory of)', default: undefined })
          .option('env-out', { type: 'string', describe: 'also write the KEY=value settings to this file (mode 0600)' })
          .example('$0 sandbox --port 8443 --faults lost=0.05 --env-out sandbox.env', 'rehearse a rollout'),
      async (a) => {
        helpShown = false;
        exitCode = await commands.sandbox(a, deps);
      },
    )
    .demandCommand(1, 'name a command: run, verify, rollback, import, revoke, unassign, replace, resync, reinstate, inventory or sandbox')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns ?? (Number(process.env['COLUMNS']) || 100)))
    .exitProcess(false)
    .fail((message, error) => {
      if (error) throw error;
      throw new UsageError(`${message} (see oath-bulk --help)`);
    });
  await parser.parseAsync();
  return helpShown ? 0 : exitCode;
}
