// Section 7 of `npm run bench`, and on its own: `npm run build && node bench/import.mjs [tokens]`.
// One PSKC file of `tokens` TOTP tokens (100,000: PingOne's cap on an environment) imported
// into the sandbox (jobs finish after 200 ms, as a busy PingOne's might) at --rate 20 and 100:
// wall time, the job's CPU and peak RSS, and the requests it took (jobs and polls). The import
// is rate-bound when requests / wall time is near the cap.
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchKit } from './kit.mjs';
import { readerBench } from './reader.mjs';

/** A plaintext PSKC file of n TOTP tokens with made-up 20-byte seeds. */
export async function pskcFile(path, n) {
  const out = createWriteStream(path, { mode: 0o600 });
  out.write('<?xml version="1.0" encoding="UTF-8"?>\n<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">\n');
  for (let i = 0; i < n; i++) {
    const seed = Buffer.alloc(20);
    seed.writeUInt32BE(i, 0);
    seed.write('made-up seed', 4);
    const pkg = `<KeyPackage><DeviceInfo><Manufacturer>Acme</Manufacturer><SerialNo>B${String(i).padStart(9, '0')}</SerialNo></DeviceInfo><Key Id="${i}" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp"><AlgorithmParameters><ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters><Data><Secret><PlainValue>${seed.toString('base64')}</PlainValue></Secret><TimeInterval><PlainValue>30</PlainValue></TimeInterval></Data></Key></KeyPackage>\n`;
    if (!out.write(pkg)) await new Promise((r) => out.once('drain', r));
  }
  out.end('</KeyContainer>\n');
  await new Promise((r) => out.once('finish', r));
}

export async function importBench(work, tokens, log = () => undefined) {
  const { withSandbox, job } = benchKit(work);
  const path = join(work, `import-${tokens}.pskc.xml`);
  await pskcFile(path, tokens);
  const runs = [];
  const rows = [];
  for (const rate of [20, 100]) {
    log(`7. import ${tokens.toLocaleString('en')} tokens from one PSKC file at --rate ${rate}`);
    const r = await withSandbox({ inventory: 'imported', jobDelayMs: 200, jobSizeLimit: 1000 }, async (s) => {
      const run = await job(s, ['import', path, '--rate', String(rate)]);
      const t = [...s.arrivals].sort((a, b) => a - b);
      // Requests per second while sending (after the token request): reading the file comes first.
      const sendingS = (t[t.length - 1] - t[1]) / 1000;
      return { ...run, jobs: s.stats.byKind['oathJob'] ?? 0, polls: s.stats.byKind['oathJobStatus'] ?? 0, requests: s.stats.requests, sendingS, inventory: s.inventory.all().length };
    });
    const { summary, ...kept } = r;
    void summary;
    runs.push({ rate, tokens, ...kept });
    const perSecond = (r.requests - 1) / r.sendingS;
    rows.push([
      `import ${tokens.toLocaleString('en')} tokens, one PSKC file, --rate ${rate}`,
      `${(r.ms / 1000).toFixed(1)} s, exit ${r.code}, ${r.inventory.toLocaleString('en')} in the inventory; ${r.jobs} jobs + ${r.polls} polls in ${r.sendingS.toFixed(1)} s of sending (${perSecond.toFixed(1)} req/s); CPU ${(r.cpuMs / 1000).toFixed(1)} s; peak RSS ${r.maxRssMb.toFixed(0)} MB`,
      `${r.maxRssMb <= 300 ? 'RSS meets' : 'RSS above'}; ${perSecond >= rate * 0.9 ? 'rate-bound' : `${((perSecond / rate) * 100).toFixed(0)}% of the cap`}`,
      '≤ 300 MB; rate-bound',
    ]);
  }
  // The reader alone, in this process: what every import and run --seeds pays before it sends.
  const reader = await readerBench(tokens);
  runs.push({ reader });
  rows.push([
    `PSKC reader alone: read, decode and check ${tokens.toLocaleString('en')} tokens`,
    `${reader.msPer1000.toFixed(1)} ms per 1,000 tokens (${(reader.ms / 1000).toFixed(1)} s)`,
    'one streaming pass',
    'linear in the file',
  ]);
  return { runs, rows };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const work = mkdtempSync(join(tmpdir(), 'oath-bulk-import-bench-'));
  const { rows } = await importBench(work, Number(process.argv[2] ?? 100_000), (m) => process.stderr.write(m + '\n'));
  rmSync(work, { recursive: true, force: true });
  process.stdout.write(['| measure | result | verdict | target |', '| --- | --- | --- | --- |', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n') + '\n');
}
