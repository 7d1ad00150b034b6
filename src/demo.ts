/**
 * `npm run demo`: the whole shipment against the built-in sandbox, on the samples in input/:
 * `import` puts the seeds (input/seeds-sample.csv, made-up secrets) into the sandbox's token
 * inventory, then `run` assigns the tokens (input/shipment-sample.csv). The sandbox only
 * knows imported serials, drops or fails a few requests and already holds one of the
 * tokens, so the demo shows retries, reconciliation and EXISTING rows; it still ends with
 * every row in place.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { importCommand } from './commands/import.js';
import { runCommand } from './commands/run.js';
import { RunControl } from './engine/control.js';
import { PingOneSandbox } from './sandbox/server.js';

const INPUT = 'input/shipment-sample.csv';
const SEEDS = 'input/seeds-sample.csv';
const OUT_DIR = join('reports', 'demo');

async function demo(): Promise<number> {
  const sandbox = new PingOneSandbox({ faults: { '5xx': 0.04, lost: 0.04, reset: 0.02 }, seed: 7, latencyMs: 20, inventory: 'imported', jobDelayMs: 300 });
  await sandbox.start();
  // One token is already on its user, as after an earlier hand-made assignment.
  sandbox.seedDevice('3f2b8c1e-6a4d-4e8b-9c2a-1d5e7f9a0b3c', '00412345678901');
  // The sandbox starts empty each time: a journal from an earlier demo would not match it.
  await rm(join(OUT_DIR, 'shipment-sample.journal.jsonl'), { force: true });
  await rm(join(OUT_DIR, 'seeds-sample.import.journal.jsonl'), { force: true });
  process.stdout.write(`demo: PingOne sandbox listening on ${sandbox.url}\n`);
  const settings = {
    'environment-id': sandbox.environmentId,
    'client-id': sandbox.clientId,
    'api-url': `${sandbox.url}/v1`,
    'auth-url': sandbox.url,
    'out-dir': OUT_DIR,
    rate: 20,
    concurrency: 8,
    'backoff-base': 200,
    progress: false,
  };
  const deps = (control: RunControl) => ({ env: { PINGONE_CLIENT_SECRET: sandbox.clientSecret }, isTTY: false, stdout: process.stdout, stderr: process.stderr, control });
  try {
    process.stdout.write(`demo: oath-bulk import ${SEEDS} --out-dir ${OUT_DIR}\n\n`);
    const imported = await importCommand(SEEDS, settings, deps(new RunControl()));
    if (imported !== 0) return imported;
    process.stdout.write(`\ndemo: oath-bulk run ${INPUT} --out-dir ${OUT_DIR} --rate 20 --concurrency 8\n\n`);
    const code = await runCommand(INPUT, settings, deps(new RunControl()));
    process.stdout.write(
      `\ndemo: the sandbox saw ${sandbox.stats.requests} requests; its inventory holds ${sandbox.inventory.all().length} tokens and its users ${sandbox.allDevices().length} devices; exit code ${code}\n`,
    );
    return code;
  } finally {
    await sandbox.stop();
  }
}

demo().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`demo: ${error.message}\n`);
    process.exit(3);
  },
);
