// Section 10 of `npm run bench`, and on its own: `npm run build && node bench/inventory.mjs [tokens]`.
// An environment at PingOne's cap (100,000 tokens), lived in: 60% of the tokens on users of
// their own (some waiting for a first code, 2% of the users disabled, 2% deleted — their tokens
// orphaned), read by `inventory` at --rate 100 against a sandbox that answers 429 above 100
// requests/s and gives pages of 1,000. The same reading with --device-status (one device read
// per user holding a token) is rate-bound by design: measured at a tenth of the size. Wall time,
// requests by kind, the job's CPU and peak RSS.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchKit } from './kit.mjs';

export async function inventoryBench(work, tokens, log = () => undefined) {
  const { withSandbox, job } = benchKit(work);
  const runs = [];
  const rows = [];
  for (const [size, extra] of [[tokens, []], [Math.max(1, Math.round(tokens / 10)), ['--device-status']]]) {
    await withSandbox({ inventory: 'imported', rateLimit: 100, onUserDeleted: 'orphan' }, async (s) => {
      const made = s.populate({ tokens: size, prefix: 'BN' });
      // The ledger such an environment has: every token shipped, every assigned one handed out.
      const dir = join(work, 'state');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const at = new Date(Date.now() - 200 * 86_400_000).toISOString();
      const lines = [JSON.stringify({ ledger: 'oath-bulk', v: 1, environmentId: s.environmentId, createdAt: at })];
      for (let i = 1; i <= size; i++) lines.push(JSON.stringify({ v: 1, at, e: 'shipped', sn: `BN${String(i).padStart(6, '0')}`, shipment: `box-${Math.ceil(i / 1000)}.pskc.xml`, validUntil: new Date(Date.now() + ((i % 1500) - 30) * 86_400_000).toISOString(), manufacturer: 'Token Works', model: i % 3 ? 'OTP c200' : 'OTP c100', by: 'import 20260501T090000Z' }));
      for (const t of [...made.assigned, ...made.pending, ...made.disabled, ...made.deleted]) lines.push(JSON.stringify({ v: 1, at, e: 'handed-out', sn: t.serialNumber, user: t.userId, file: 'rollout.csv', by: 'run 20260502T090000Z' }));
      writeFileSync(join(dir, `${s.environmentId}.ledger.jsonl`), lines.join('\n') + '\n', { mode: 0o600 });
      log(`10. inventory of ${size.toLocaleString('en')} tokens at --rate 100${extra.length ? ' with --device-status' : ''}`);
      const before = { ...s.stats.byKind, requests: s.stats.requests };
      const r = await job(s, ['inventory', '--rate', '100', ...extra]);
      const kinds = Object.fromEntries(Object.entries(s.stats.byKind).map(([k, n]) => [k, n - (before[k] ?? 0)]).filter(([, n]) => n > 0));
      const out = { tokens: size, deviceStatus: extra.length > 0, code: r.code, ms: r.ms, cpuMs: r.cpuMs, maxRssMb: r.maxRssMb, requests: s.stats.requests - before.requests, kinds, users: made.assigned.length + made.pending.length + made.disabled.length + made.deleted.length, tokensByState: r.summary?.tokens, reading: r.summary?.reading };
      runs.push(out);
      rows.push([
        `inventory of ${size.toLocaleString('en')} tokens (${out.users.toLocaleString('en')} on users, ${made.deleted.length.toLocaleString('en')} of them deleted), --rate 100${extra.length ? ', --device-status' : ''}`,
        `${(r.ms / 1000).toFixed(1)} s, exit ${r.code}; ${out.requests.toLocaleString('en')} requests (${Object.entries(kinds).map(([k, n]) => `${k} ${n}`).join(', ')}); CPU ${(r.cpuMs / 1000).toFixed(1)} s; peak RSS ${r.maxRssMb.toFixed(0)} MB`,
        extra.length ? 'pages, directory, a read per user for device status' : 'pages of 1,000; the directory (cheaper than a read per user); a read to confirm each deleted user',
        extra.length ? 'rate-bound: one request per user' : 'about (pages + directory pages + deleted users) / 100 s',
      ]);
    });
  }
  return { runs, rows };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const work = mkdtempSync(join(tmpdir(), 'oath-bulk-inventory-bench-'));
  const { rows, runs } = await inventoryBench(work, Number(process.argv[2] ?? 100_000), (m) => process.stderr.write(m + '\n'));
  rmSync(work, { recursive: true, force: true });
  process.stderr.write(JSON.stringify(runs) + '\n');
  process.stdout.write(['| measure | result | how | expected |', '| --- | --- | --- | --- |', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n') + '\n');
}
