/**
 * One set of counts (#20): the summary JSON, the human summary, the metrics and the progress
 * line say what the results CSV says. The built CLI against the sandbox over loopback.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { useSandbox } from '../support/sandbox.js';
import { BIN, latest, readResults, runCli, sandboxEnv, tempDir, userId } from '../support/cli.js';
import { seededShipment, type SeededShipment } from '../support/pskc-writer.js';

const box = useSandbox();

function shipment(n: number): SeededShipment {
  return seededShipment(tempDir('oath-bulk-counts-'), n, { prefix: 'CNT', userId });
}

test('activated counts every row this run brought to ACTIVE, with those confirmed by reading back, under 25% lost answers: summary, stdout and metrics agree with the results', async () => {
  box.sandbox.configure({ inventory: 'imported', activationRequired: true, jobDelayMs: 20, faults: { lost: 0.25 }, seed: 7 });
  const s = shipment(60);
  const metrics = join(s.dir, 'metrics.prom');
  const result = await runCli(['run', s.assignments, '--seeds', s.pskc, '--psk-file', s.keyFile, '--activate', '--out-dir', s.dir, '--metrics-file', metrics, '--max-consecutive-failures', '50', '--backoff-base', '50', '--backoff-max', '200'], sandboxEnv(box.sandbox));
  expect(result.code).toBe(0);
  const rows = readResults(s.dir);
  const active = rows.filter((r) => r['deviceStatus'] === 'ACTIVE').length;
  expect(active).toBe(60);
  const summary = JSON.parse(readFileSync(latest(s.dir, '.summary.json'), 'utf8'));
  // Some answers to activations were lost: those devices were read back and found ACTIVE.
  expect(box.sandbox.stats.faults['lost']).toBeGreaterThan(0);
  expect(summary.activated).toBe(active);
  expect(summary.activation.confirmedByRead).toBeGreaterThan(0);
  expect(summary.thisRun.activated).toBe(active);
  expect(summary.deviceStatus).toEqual({ ACTIVE: 60 });
  expect(result.stdout).toContain(`${active} devices activated with codes computed from their seeds (${summary.activation.confirmedByRead} confirmed by reading the device back after an unclear answer)`);
  expect(readFileSync(metrics, 'utf8')).toMatch(new RegExp(`oath_bulk_run_actions\\{[^}]*action="activated"[^}]*\\} ${active}\\n`));
});

test('the progress line counts rows finished: a row held up does not hide the rows finished after it', async () => {
  const held = userId(1).toLowerCase();
  box.sandbox.configure({ slowUsers: [held], slowMs: 3000 });
  const dir = tempDir('oath-bulk-counts-');
  const input = join(dir, 'in.csv');
  writeFileSync(input, 'userID,serialNumber\n' + Array.from({ length: 40 }, (_, i) => `${userId(i + 1)},PRG${String(i + 1).padStart(4, '0')}`).join('\n') + '\n');
  const command = [process.execPath, '--', BIN, 'run', input, '--out-dir', dir, '--rate', '100'].map((a) => `'${a}'`).join(' ');
  // `script` gives the CLI a real pseudo-terminal: the progress line is drawn.
  const child = spawn('script', ['-qec', command, '/dev/null'], { env: sandboxEnv(box.sandbox), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  expect(await new Promise<number | null>((r) => child.once('exit', (code) => r(code)))).toBe(0);
  const redraws = stdout.split('\r\x1b[2K').slice(1).map((l) => l.split(/\r?\n/)[0]!);
  // While row 1 waits for its answer, the 39 rows after it are finished, and the line says so.
  expect(redraws.some((l) => /\b39\/40 · created 39 /.test(l))).toBe(true);
  expect(readResults(dir).every((r) => r['outcome'] === 'CREATED')).toBe(true);
});
