// The job's own cost, two builds side by side: `node bench/overhead-ab.mjs <before/dist/bin.js>
// [rows] [runs]` runs the same shipment (zero latency, no cap, journal on) through the build
// given and this checkout's, alternated, and prints rows/s, CPU per row and peak RSS of each.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { benchKit } from './kit.mjs';

const [before, rowsArg = '100000', runsArg = '3'] = process.argv.slice(2);
if (!before) {
  console.error('usage: node bench/overhead-ab.mjs <other build\'s dist/bin.js> [rows] [runs]');
  process.exit(2);
}
const rows = Number(rowsArg);
const work = mkdtempSync(join(tmpdir(), 'oath-bulk-ab-'));
const builds = { before: benchKit(work, { bin: resolve(before) }), after: benchKit(work) };
const seen = { before: [], after: [] };
try {
  for (let i = 0; i < Number(runsArg); i++) {
    for (const name of i % 2 === 0 ? ['before', 'after'] : ['after', 'before']) {
      const kit = builds[name];
      const csv = await kit.shipment(`ab-${name}-${i}`, rows, `AB${name[0]}${i}x`);
      const r = await kit.withSandbox({ recordArrivals: false }, (s) => kit.job(s, ['run', csv, '--rate', '10000', '--concurrency', '16']));
      if (r.code !== 0) throw new Error(`${name}: exit ${r.code}`);
      seen[name].push({ rowsPerSec: Math.round(rows / (r.ms / 1000)), cpuUsPerRow: Math.round((r.cpuMs / rows) * 1000), maxRssMb: Math.round(r.maxRssMb) });
      console.log(name, JSON.stringify(seen[name].at(-1)));
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const name of ['before', 'after']) {
    const s = seen[name];
    console.log(`${name}: median ${median(s.map((x) => x.rowsPerSec))} rows/s, ${median(s.map((x) => x.cpuUsPerRow))} µs CPU/row, peak RSS ${median(s.map((x) => x.maxRssMb))} MB (${s.length} runs)`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
