// Section 9 of `npm run bench`, and on its own: `npm run build && node bench/revoke.mjs [tokens]`.
// A box of `tokens` tokens (10,000), every one in the inventory and handed out to its own user,
// revoked from a serials CSV at --rate 100 against a sandbox that answers 429 above 100
// requests/s and whose jobs take 200 ms: the dry run (it reads every user's devices, to name
// those left with none) and the real revoke (write-ahead ledger facts, jobs of 500 with
// forceUnpair, polls, the inventory read before and after). Wall time, requests by kind, the
// job's CPU and peak RSS.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchKit } from './kit.mjs';

export async function revokeBench(work, tokens, log = () => undefined) {
  const { withSandbox, job, userId } = benchKit(work);
  const serial = (i) => `RV${String(i).padStart(9, '0')}`;
  const file = join(work, `revoke-${tokens}.csv`);
  writeFileSync(file, 'serialNumber\n' + Array.from({ length: tokens }, (_, i) => serial(i)).join('\n') + '\n');
  const runs = [];
  const rows = [];
  await withSandbox({ inventory: 'imported', jobDelayMs: 200, jobSizeLimit: 1000, rateLimit: 100 }, async (s) => {
    for (let i = 0; i < tokens; i++) {
      s.inventory.createOne({ serialNumber: serial(i), secret: Buffer.alloc(20, i % 251).toString('hex'), type: 'TOTP', otpLength: 6, totp: { timeStep: 30 } });
      s.seedDevice(userId(i + 1), serial(i));
    }
    for (const dry of [true, false]) {
      log(`9. revoke ${tokens.toLocaleString('en')} tokens (each on a user) at --rate 100${dry ? ', dry run' : ''}`);
      const before = { ...s.stats.byKind, requests: s.stats.requests };
      const r = await job(s, ['revoke', file, '--reason', 'stolen', '--rate', '100', ...(dry ? ['--dry-run'] : ['--yes'])]);
      const kinds = Object.fromEntries(Object.entries(s.stats.byKind).map(([k, n]) => [k, n - (before[k] ?? 0)]).filter(([, n]) => n > 0));
      const left = s.inventory.all().length;
      const out = { dry, tokens, code: r.code, ms: r.ms, cpuMs: r.cpuMs, maxRssMb: r.maxRssMb, requests: s.stats.requests - before.requests, kinds, outcomes: r.summary?.outcomes, inventoryLeft: left, devicesLeft: s.allDevices().length };
      runs.push(out);
      rows.push([
        `revoke ${tokens.toLocaleString('en')} tokens on ${tokens.toLocaleString('en')} users, --rate 100${dry ? ', --dry-run' : ''}`,
        `${(r.ms / 1000).toFixed(1)} s, exit ${r.code}; ${out.requests.toLocaleString('en')} requests (${Object.entries(kinds).map(([k, n]) => `${k} ${n}`).join(', ')}); CPU ${(r.cpuMs / 1000).toFixed(1)} s; peak RSS ${r.maxRssMb.toFixed(0)} MB; ${dry ? 'nothing changed' : `${left} tokens and ${out.devicesLeft} devices left`}`,
        dry ? 'one device read per user (to name those left with no device)' : 'jobs of 500, polled; the inventory read before and after',
        dry ? 'rate-bound' : 'few requests; seconds',
      ]);
    }
  });
  return { runs, rows };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const work = mkdtempSync(join(tmpdir(), 'oath-bulk-revoke-bench-'));
  const { rows, runs } = await revokeBench(work, Number(process.argv[2] ?? 10_000), (m) => process.stderr.write(m + '\n'));
  rmSync(work, { recursive: true, force: true });
  process.stderr.write(JSON.stringify(runs) + '\n');
  process.stdout.write(['| measure | result | how | expected |', '| --- | --- | --- | --- |', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n') + '\n');
}
