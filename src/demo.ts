/**
 * `npm run demo`: the whole shipment in one command against the built-in sandbox, on the
 * samples in input/ (the README's "new shipment" runbook): `run --seeds --activate` imports
 * the seeds (input/seeds-sample.csv, made-up secrets) the assignment file
 * (input/shipment-sample.csv) needs into the sandbox's token inventory, assigns the tokens,
 * and activates the devices the sandbox creates ACTIVATION_REQUIRED; then `verify` reads
 * every user's devices back. The sandbox only knows imported serials, drops or fails a few
 * requests and already holds one of the tokens, so the demo shows retries, reconciliation and
 * an EXISTING row; it still ends with every row in place and every device ACTIVE. Last, a
 * month on: one of the users has left (deleted, their token still paired to them), and
 * `inventory` shows every token of the environment — the 2,000 of earlier boxes the sandbox
 * starts with too — that one ORPHANED, with what to do about it.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { inventoryCommand } from './commands/inventory.js';
import { verifyCommand } from './commands/verify.js';
import { runCommand } from './commands/run/index.js';
import { RunControl } from './engine/control.js';
import { Ledger } from './engine/ledger.js';
import { PingOneSandbox } from './sandbox/server.js';

const INPUT = 'input/shipment-sample.csv';
const SEEDS = 'input/seeds-sample.csv';
const OUT_DIR = join('reports', 'demo');

async function demo(): Promise<number> {
  const sandbox = new PingOneSandbox({ faults: { '5xx': 0.04, lost: 0.04, reset: 0.02 }, seed: 7, latencyMs: 20, inventory: 'imported', jobDelayMs: 300, activationRequired: true });
  await sandbox.start();
  // One token is already on its user (and active), as after an earlier hand-made assignment.
  sandbox.seedDevice('3f2b8c1e-6a4d-4e8b-9c2a-1d5e7f9a0b3c', '00412345678901').status = 'ACTIVE';
  // An environment lived in before this shipment: 2,000 tokens of earlier boxes, most on users,
  // some of those users disabled or gone since (what the closing inventory shows besides the demo's own).
  const earlier = sandbox.populate({ tokens: 2000, prefix: 'OLD' });
  // The sandbox starts empty each time: a journal from an earlier demo would not match it.
  await rm(join(OUT_DIR, 'shipment-sample.journal.jsonl'), { force: true });
  // Nor would its ledger: the demo's is its own, under its reports, never the operator's.
  await rm(join(OUT_DIR, 'state'), { recursive: true, force: true });
  await Ledger.open(join(OUT_DIR, 'state'), sandbox.environmentId);
  process.stdout.write(`demo: PingOne sandbox listening on ${sandbox.url}; it already holds ${earlier.free.length + earlier.assigned.length + earlier.pending.length + earlier.disabled.length + earlier.deleted.length} tokens of earlier boxes (OLD000001…)\n`);
  const settings = {
    'environment-id': sandbox.environmentId,
    'client-id': sandbox.clientId,
    'api-url': `${sandbox.url}/v1`,
    'auth-url': sandbox.url,
    'out-dir': OUT_DIR,
    'state-dir': join(OUT_DIR, 'state'),
    rate: 20,
    concurrency: 8,
    'backoff-base': 200,
    progress: false,
  };
  const deps = (control: RunControl) => ({ env: { PINGONE_CLIENT_SECRET: sandbox.clientSecret }, isTTY: false, stdout: process.stdout, stderr: process.stderr, control });
  try {
    process.stdout.write(`demo: oath-bulk run ${INPUT} --seeds ${SEEDS} --activate --out-dir ${OUT_DIR} --rate 20 --concurrency 8\n\n`);
    const code = await runCommand(INPUT, { ...settings, seeds: SEEDS, activate: true }, deps(new RunControl()));
    if (code !== 0) return code;
    const results = await newestResults();
    process.stdout.write(`\ndemo: oath-bulk verify ${results} --out-dir ${OUT_DIR}\n\n`);
    const verified = await verifyCommand(results, settings, deps(new RunControl()));
    // The shipment's own devices (not those of the earlier boxes).
    const devices = sandbox.allDevices().filter((d) => !d.serialNumber.startsWith('OLD'));
    process.stdout.write(
      `\ndemo: the sandbox saw ${sandbox.stats.requests} requests; the shipment's ${devices.length} devices are on their users, ${devices.filter((d) => d.status === 'ACTIVE').length} of them ACTIVE; exit code ${verified}\n`,
    );
    if (verified !== 0) return verified;
    // A month on, one of the users has left: PingOne keeps their token paired to a user who is gone.
    const leaver = devices.find((d) => d.serialNumber !== '00412345678901')!;
    sandbox.deleteUser(leaver.userId);
    process.stdout.write(`\ndemo: a month on, user ${leaver.userId} has left the company (deleted in PingOne)\ndemo: oath-bulk inventory --out-dir ${OUT_DIR}\n\n`);
    return await inventoryCommand(settings, deps(new RunControl()));
  } finally {
    await sandbox.stop();
  }
}

/** The results file the run just wrote. */
async function newestResults(): Promise<string> {
  const files = (await readdir(OUT_DIR)).filter((f) => f.startsWith('shipment-sample.2') && f.endsWith('.results.csv')).sort();
  return join(OUT_DIR, files[files.length - 1]!);
}

demo().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`demo: ${error.message}\n`);
    process.exit(3);
  },
);
