/** The command lines oath-bulk prints and records: every spelling yargs accepts is seen (#20 review). */
import { commandLine, followUp, recordedCommandLine } from '../../src/report/command-line.js';

test('camelCase and --flag=value spellings of the monitoring flags are left out of next: and the change record, as the kebab-case ones are', () => {
  const args = ['run', 's.csv', '--settings', 'p.env', '--healthcheckUrl=https://hc.example/SECRET-1', '--metricsFile', 'm.prom', '--healthcheck-url', 'https://hc.example/SECRET-2', '--metrics-file=n.prom'];
  for (const line of [commandLine(args), recordedCommandLine(args)]) {
    expect(line).toBe('oath-bulk run s.csv --settings p.env');
  }
});

test('dropping a flag drops every spelling of it: next: of a dry run runs for real', () => {
  expect(commandLine(['run', 's.csv', '--dryRun'], ['--dry-run'])).toBe('oath-bulk run s.csv');
  expect(commandLine(['run', 's.csv', '--dry-run', 'true', '--rate', '5'], ['--dry-run'])).toBe('oath-bulk run s.csv --rate 5');
  expect(commandLine(['rollback', 'r.csv', '--dryRun=true'], ['--dry-run'], ['--yes'])).toBe('oath-bulk rollback r.csv --yes');
  // After `--` everything is a file name, kept as it is.
  expect(commandLine(['run', '--', '--dry-run'], ['--dry-run'])).toBe('oath-bulk run -- --dry-run');
});

test('a secret flag is never recorded with its value, however spelled; a follow-up keeps the connection flags in any spelling', () => {
  expect(recordedCommandLine(['run', 's.csv', '--clientSecret', 'hunter2', '--psk=00ff'])).toBe("oath-bulk run s.csv '--client-secret=(not recorded)' '--psk=(not recorded)'");
  expect(followUp(['run', 's.csv', '--envFile', 'p.env', '--outDir=out', '--activate'], 'verify', 'out/s.results.csv')).toBe('oath-bulk verify out/s.results.csv --envFile p.env --outDir=out');
});
