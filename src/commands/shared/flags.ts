/** Flags that more than one command (or the folder scheduler) needs to know by name. */

/**
 * Switches: flags that take no value. yargs reads `--dry-run=1` as false (a real run where a
 * dry run was meant), so a value given to one is refused; a folder run passes them on as they are.
 */
export const SWITCHES = ['dry-run', 'yes', 'strict', 'quiet', 'debug', 'progress', 'forbidden', 'activation-required', 'activate', 'preflight', 'allow-unencrypted', 'allow-last-device'];

/** Flags that only mean something when seeds are read. */
export const SEED_FLAGS = ['psk-file', 'passphrase-file', 'allow-unencrypted', 'secret-encoding', 'type', 'otp-length', 'time-step', 'job-size'];

