// npm run bench: oath-bulk measured against the sandbox over loopback. Writes
// bench/results/<date>.json, <date>.md and <date>-rates.svg, and prints the table.
// Sections: 1 vs one-at-a-time · 2 rate fidelity · 3 overhead (+ journal on/off) ·
// 4 memory · 5 chart · 6 under faults · 7 import of a 100,000-token PSKC file · 8 startup ·
// 9 revoking a box of 10,000 tokens.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sequentialRun } from './sequential-client.mjs';
import { newmanRun, newmanVersion } from './newman.mjs';
import { benchKit } from './kit.mjs';
import { importBench } from './import.mjs';
import { startupBench } from './startup.mjs';
import { revokeBench } from './revoke.mjs';
import { inventoryBench } from './inventory.mjs';

const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const QUICK = process.env.BENCH_QUICK === '1';
const work = mkdtempSync(join(tmpdir(), 'oath-bulk-bench-'));
const { shipment, withSandbox, job } = benchKit(work);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const log = (...a) => process.stderr.write(a.join(' ') + '\n');

/** Arrivals after `from`, as achieved rate and the highest one-second count. */
function arrivalStats(sandbox, from = 0) {
  const t = sandbox.arrivals.slice(from).sort((a, b) => a - b);
  const span = (t[t.length - 1] - t[0]) / 1000;
  return { requests: t.length, achieved: (t.length - 1) / span, peak: sandbox.maxInWindow(1000, from) };
}

const results = { date: new Date().toISOString(), machine: { cpus: (await import('node:os')).cpus().length, node: process.version }, repeat: REPEAT };
const table = [];

/** CPU time the host took from this VM (steal), in ms; undefined off Linux. */
function stealMs() {
  try {
    return Number(readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/)[8]) * 10;
  } catch {
    return undefined;
  }
}
const marks = [];
function mark(section) {
  marks.push({ section, steal: stealMs(), at: performance.now() });
}

// 1. Against one-at-a-time ------------------------------------------------------------
{
  mark('1. vs one-at-a-time');
  log('1. one-at-a-time vs oath-bulk, 500 rows at 25 ms latency');
  const rows = QUICK ? 100 : 500;
  const seq = [];
  const bulk = [];
  const viaNewman = [];
  const newman = newmanVersion();
  for (let i = 0; i < REPEAT; i++) {
    const csv = await shipment(`seq-${i}`, rows, `SQ${i}`);
    seq.push(await withSandbox({ latencyMs: 25 }, async (s) => (await sequentialRun({ csvPath: csv, apiUrl: `${s.url}/v1`, authUrl: s.url, environmentId: s.environmentId, clientId: s.clientId, clientSecret: s.clientSecret })).ms));
    bulk.push(await withSandbox({ latencyMs: 25 }, async (s) => (await job(s, ['run', csv, '--concurrency', '16', '--rate', '1000'])).ms));
    if (newman) {
      viaNewman.push(await withSandbox({ latencyMs: 25 }, async (s) => {
        const r = await newmanRun({ workDir: work, csvPath: csv, apiUrl: `${s.url}/v1`, authUrl: s.url, environmentId: s.environmentId, clientId: s.clientId, clientSecret: s.clientSecret });
        return { ...r, created: s.stats.devicesCreated };
      }));
    }
  }
  const newmanMs = viaNewman.length > 0 ? median(viaNewman.map((r) => r.ms)) : undefined;
  results.sequential = {
    rows, latencyMs: 25, sequentialMs: median(seq), oathBulkMs: median(bulk), ratio: median(seq) / median(bulk), runs: { seq, bulk },
    newman: newman ? { version: newman, ms: newmanMs, ratio: newmanMs / median(bulk), runs: viaNewman } : 'skipped: newman is not installed',
  };
  table.push(['vs one-at-a-time (500 rows, 25 ms latency)', `sequential ${(median(seq) / 1000).toFixed(2)} s · oath-bulk --concurrency 16 ${(median(bulk) / 1000).toFixed(2)} s`, `${results.sequential.ratio.toFixed(1)}x faster`, '≥ 12x']);
  table.push(newman
    ? [`newman ${newman} data-file run (same rows, same sandbox)`, `${(newmanMs / 1000).toFixed(2)} s, devices created ${viaNewman.map((r) => r.created).join('/')}`, `oath-bulk ${(newmanMs / median(bulk)).toFixed(1)}x faster`, '']
    : ['newman', 'skipped: newman is not installed', '', '']);
}

// 2. Rate fidelity --------------------------------------------------------------------
mark('2. rate fidelity');
results.rates = [];
for (const rate of [20, 50, 100, 200]) {
  log(`2. rate fidelity at --rate ${rate}`);
  const runs = [];
  for (let i = 0; i < (QUICK ? 1 : REPEAT); i++) {
    const csv = await shipment(`rate-${rate}-${i}`, rate * (QUICK ? 3 : 10), `R${rate}x${i}`);
    runs.push(await withSandbox({}, async (s) => {
      const r = await job(s, ['run', csv, '--rate', String(rate), '--concurrency', '32']);
      return { ...arrivalStats(s), ms: r.ms, code: r.code };
    }));
  }
  const share = median(runs.map((r) => r.achieved / rate));
  const peak = Math.max(...runs.map((r) => r.peak));
  results.rates.push({ rate, share, peak, runs });
  table.push([`rate fidelity --rate ${rate} (${rate * 10} rows)`, `achieved ${(share * rate).toFixed(1)}/s, highest 1-s window ${peak}`, `${(share * 100).toFixed(1)}% of cap`, '≥ 97%, window ≤ cap']);
}

// 3. Overhead (journal on) and journal on vs off --------------------------------------
mark('3. overhead');
results.overhead = [];
for (const rows of QUICK ? [1000, 10000] : [1000, 10000, 100000]) {
  log(`3. overhead, ${rows} rows, zero latency, no cap`);
  const runs = [];
  for (let i = 0; i < (rows >= 100000 ? 1 : REPEAT); i++) {
    const csv = await shipment(`over-${rows}-${i}`, rows, `O${i}x`);
    runs.push(await withSandbox({ recordArrivals: false }, (s) => job(s, ['run', csv, '--rate', '10000', '--concurrency', '16'])));
  }
  const rowsPerSec = median(runs.map((r) => rows / (r.ms / 1000)));
  const cpuPerRowMs = median(runs.map((r) => r.cpuMs / rows));
  const rss = median(runs.map((r) => r.maxRssMb));
  results.overhead.push({ rows, rowsPerSec, cpuPerRowMs, maxRssMb: rss, runs: runs.map(({ summary, ...r }) => r) });
  table.push([`overhead ${rows.toLocaleString('en')} rows (zero latency, journal on)`, `${Math.round(rowsPerSec)} rows/s, ${(cpuPerRowMs * 1000).toFixed(0)} µs CPU/row in the job, peak RSS ${rss.toFixed(0)} MB`, rowsPerSec >= 3000 ? 'meets' : 'below', '≥ 3,000 rows/s']);
}
{
  mark('3b. journal on vs off');
  log('3b. journal on vs off, 10,000 rows');
  const on = [];
  const off = [];
  for (let i = 0; i < REPEAT; i++) {
    const csv = await shipment(`jr-${i}`, 10000, `J${i}x`);
    on.push(await withSandbox({ recordArrivals: false }, (s) => job(s, ['run', csv, '--rate', '10000', '--concurrency', '16'])));
    off.push(await withSandbox({ recordArrivals: false }, (s) => job(s, ['run', csv, '--rate', '10000', '--concurrency', '16', '--no-journal'])));
  }
  const onRate = median(on.map((r) => 10000 / (r.ms / 1000)));
  const offRate = median(off.map((r) => 10000 / (r.ms / 1000)));
  results.journal = { rows: 10000, onRowsPerSec: onRate, offRowsPerSec: offRate };
  table.push(['journal on vs off (10,000 rows, zero latency)', `on ${Math.round(onRate)} rows/s · off ${Math.round(offRate)} rows/s`, `${((onRate / offRate) * 100).toFixed(0)}% of off`, '']);
}

// 4. Memory ---------------------------------------------------------------------------
{
  mark('4. memory');
  log('4. memory, 1M-row dry run');
  const rows = QUICK ? 100000 : 1000000;
  const csv = await shipment('mem-1m', rows, 'M');
  const dry = await withSandbox({ recordArrivals: false }, (s) => job(s, ['run', csv, '--dry-run', '--no-preflight', '--concurrency', '16']));
  const small = results.overhead.find((o) => o.rows === 1000);
  const mid = results.overhead.find((o) => o.rows === 100000) ?? results.overhead[results.overhead.length - 1];
  results.memory = { '1k': small.maxRssMb, [mid.rows]: mid.maxRssMb, dryRun: { rows, maxRssMb: dry.maxRssMb, ms: dry.ms, code: dry.code } };
  table.push(['peak RSS, real runs', `1k rows ${small.maxRssMb.toFixed(0)} MB · ${mid.rows.toLocaleString('en')} rows ${mid.maxRssMb.toFixed(0)} MB`, mid.maxRssMb <= 150 ? 'meets' : 'above', '≤ 150 MB at 100k']);
  table.push([`peak RSS, ${rows.toLocaleString('en')}-row dry run`, `${dry.maxRssMb.toFixed(0)} MB in ${(dry.ms / 1000).toFixed(1)} s`, dry.maxRssMb <= 250 ? 'meets' : 'above', '≤ 250 MB']);
}

// 5. Chart: requests per second over time ----------------------------------------------
function perSecond(sandbox, statuses) {
  const t0 = Math.min(...sandbox.arrivals);
  const bins = [];
  sandbox.arrivals.forEach((t, i) => {
    const b = Math.floor((t - t0) / 1000);
    bins[b] ??= { all: 0, limited: 0 };
    bins[b].all++;
    if (statuses[i] === 429) bins[b].limited++;
  });
  return Array.from(bins, (b) => b ?? { all: 0, limited: 0 });
}
async function traced(options, args, rows) {
  return withSandbox(options, async (s) => {
    // Record each answer's status beside its arrival, in order.
    const statuses = [];
    const json = s.json.bind(s);
    s.json = (res, status, body) => {
      statuses.push(status);
      return json(res, status, body);
    };
    const csv = await shipment(`trace-${args.join('')}`.replace(/[^a-z0-9-]/gi, ''), rows, `T${Math.round(Math.random() * 1e6)}x`);
    const r = await job(s, ['run', csv, ...args]);
    return { bins: perSecond(s, statuses), ms: r.ms, limited: statuses.filter((x) => x === 429).length, requests: statuses.length };
  });
}
mark('5. chart runs');
log('5. chart runs');
const fidelity = await traced({}, ['--rate', '100', '--concurrency', '32'], QUICK ? 300 : 1500);
const adaptive = await traced({ rateLimit: 30 }, ['--rate', '120', '--concurrency', '16'], QUICK ? 150 : 450);
results.chart = { fidelity, adaptive };
table.push(['adaptive (sandbox limit 30/s, --rate 120)', `${adaptive.requests} requests in ${(adaptive.ms / 1000).toFixed(1)} s (ideal ${((QUICK ? 150 : 450) / 30).toFixed(1)} s), 429s ${adaptive.limited}`, `${((adaptive.limited / adaptive.requests) * 100).toFixed(1)}% 429s`, '']);

function svg() {
  const W = 900;
  const H = 260;
  const pad = 40;
  const panel = (series, cap, x0, title) => {
    const w = (W - 3 * pad) / 2;
    const maxY = Math.max(cap * 1.3, ...series.map((b) => b.all)) || 1;
    const sx = (i) => x0 + (i / Math.max(1, series.length - 1)) * w;
    const sy = (v) => H - pad - (v / maxY) * (H - 2 * pad);
    const line = (f) => series.map((b, i) => `${i ? 'L' : 'M'}${sx(i).toFixed(1)},${sy(f(b)).toFixed(1)}`).join(' ');
    return `
  <text x="${x0}" y="20" font-size="13" font-weight="bold">${title}</text>
  <line x1="${x0}" y1="${H - pad}" x2="${x0 + w}" y2="${H - pad}" stroke="#333"/>
  <line x1="${x0}" y1="${pad}" x2="${x0}" y2="${H - pad}" stroke="#333"/>
  <text x="${x0 - 4}" y="${sy(cap) + 4}" font-size="10" text-anchor="end">${cap}</text>
  <text x="${x0 - 4}" y="${H - pad + 4}" font-size="10" text-anchor="end">0</text>
  <text x="${x0 + w}" y="${H - pad + 16}" font-size="10" text-anchor="end">${series.length} s</text>
  <line x1="${x0}" y1="${sy(cap)}" x2="${x0 + w}" y2="${sy(cap)}" stroke="#c00" stroke-dasharray="5,4"/>
  <path d="${line((b) => b.all)}" fill="none" stroke="#1f5fbf" stroke-width="2"/>
  <path d="${line((b) => b.limited)}" fill="none" stroke="#e08a00" stroke-width="2"/>`;
  };
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + 20}" font-family="sans-serif">
  <rect width="100%" height="100%" fill="#fff"/>
  ${panel(fidelity.bins, 100, pad, 'requests/s at --rate 100 (cap dashed)')}
  ${panel(adaptive.bins, 30, 2 * pad + (W - 3 * pad) / 2, 'adaptive: --rate 120 against a 30/s limit')}
  <text x="${pad}" y="${H + 12}" font-size="11"><tspan fill="#1f5fbf">■ requests per second (all, as the sandbox saw them)</tspan>  <tspan fill="#e08a00">■ 429s per second</tspan>  <tspan fill="#c00">– – cap / server limit</tspan></text>
</svg>
`;
}

// 6. Under faults ---------------------------------------------------------------------
{
  mark('6. under faults');
  log('6. 10% fault mix at --rate 100');
  const rows = QUICK ? 300 : 1000;
  const mix = { '5xx': 0.03, html502: 0.01, reset: 0.02, lost: 0.03, expire: 0.01 };
  const clean = [];
  const faulty = [];
  for (let i = 0; i < REPEAT; i++) {
    const a = await shipment(`clean-${i}`, rows, `C${i}x`);
    const b = await shipment(`faulty-${i}`, rows, `F${i}x`);
    clean.push(await withSandbox({}, (s) => job(s, ['run', a, '--rate', '100', '--concurrency', '16'])));
    faulty.push(await withSandbox({ faults: mix, seed: 1000 + i }, (s) => job(s, ['run', b, '--rate', '100', '--concurrency', '16'])));
  }
  const useful = (r) => (r.summary.outcomes.CREATED + r.summary.outcomes.EXISTING) / (r.ms / 1000);
  results.faults = { rows, mix, cleanRowsPerSec: median(clean.map(useful)), faultyRowsPerSec: median(faulty.map(useful)), faultyExitCodes: faulty.map((r) => r.code) };
  table.push(['10% fault mix at --rate 100', `useful ${results.faults.faultyRowsPerSec.toFixed(1)} rows/s vs clean ${results.faults.cleanRowsPerSec.toFixed(1)} rows/s, exit codes ${faulty.map((r) => r.code).join(',')}`, `${((results.faults.faultyRowsPerSec / results.faults.cleanRowsPerSec) * 100).toFixed(0)}% of clean`, '']);
}

// 7. Import -------------------------------------------------------------------------------
{
  mark('7. import');
  const imported = await importBench(work, QUICK ? 10_000 : 100_000, log);
  results.import = imported.runs;
  table.push(...imported.rows);
}

// 8. Startup ------------------------------------------------------------------------------
{
  mark('8. startup');
  const startup = await startupBench('dist/bin.js', log);
  results.startup = startup.results;
  table.push(...startup.rows.map(([name, result]) => [name, result, '', 'commands load what they use']));
}

// 9. Revoke -------------------------------------------------------------------------------
{
  mark('9. revoke');
  const revoked = await revokeBench(work, QUICK ? 2_000 : 10_000, log);
  results.revoke = revoked.runs;
  table.push(...revoked.rows);
}

// 10. Inventory ---------------------------------------------------------------------------
{
  mark('10. inventory');
  const inventory = await inventoryBench(work, QUICK ? 10_000 : 100_000, log);
  results.inventory = inventory.runs;
  table.push(...inventory.rows);
}

// Write ---------------------------------------------------------------------------------
mark('end');
results.steal = marks.slice(0, -1).map((m, i) => ({ section: m.section, seconds: (marks[i + 1].at - m.at) / 1000, stolenSeconds: m.steal === undefined ? null : (marks[i + 1].steal - m.steal) / 1000 }));
const stealNote = results.steal.every((s) => s.stolenSeconds !== null)
  ? `\nCPU time stolen by the host (VM steal) during each section: ${results.steal.map((s) => `${s.section} ${s.stolenSeconds.toFixed(1)} s of ${s.seconds.toFixed(0)} s`).join(' · ')}\n`
  : '';
const day = results.date.slice(0, 10);
mkdirSync('bench/results', { recursive: true });
const md = ['| measure | result | verdict | target |', '| --- | --- | --- | --- |', ...table.map((r) => `| ${r.join(' | ')} |`)].join('\n') + '\n' + stealNote;
writeFileSync(`bench/results/${day}.json`, JSON.stringify(results, null, 2) + '\n');
writeFileSync(`bench/results/${day}.md`, `# oath-bulk benchmark, ${results.date} (${results.machine.cpus} cores, Node ${results.machine.node}, medians of ${REPEAT})\n\n${md}`);
writeFileSync(`bench/results/${day}-rates.svg`, svg());
rmSync(work, { recursive: true, force: true });
process.stdout.write(md);
process.stdout.write(`\nwritten: bench/results/${day}.json, bench/results/${day}.md, bench/results/${day}-rates.svg\n`);
