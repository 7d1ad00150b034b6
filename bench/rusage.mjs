// Preloaded into the job's process by the benchmark (node --import): on exit, writes the
// process's own CPU time and peak RSS to $OATH_BULK_RUSAGE_FILE. Not part of the product.
import { writeFileSync } from 'node:fs';

const file = process.env.OATH_BULK_RUSAGE_FILE;
if (file) {
  process.on('exit', () => {
    const u = process.resourceUsage();
    writeFileSync(file, JSON.stringify({ userMs: u.userCPUTime / 1000, systemMs: u.systemCPUTime / 1000, maxRssKb: u.maxRSS }));
  });
}
