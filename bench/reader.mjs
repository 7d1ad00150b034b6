// The seed-file reader alone (part of section 7 of `npm run bench`, and on its own:
// `npm run build && node bench/reader.mjs [tokens] [dist dir]`): a plaintext PSKC file of
// `tokens` TOTP tokens (bench/import.mjs's) read, decoded and checked in this process, as
// `import` does before it sends anything: milliseconds per 1,000 tokens and the peak RSS.
// `dist dir` lets the same file be read by another build (a before/after comparison; `text`
// as a third argument for builds whose reader took the decoded text).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pskcFile } from './import.mjs';

export async function readerBench(tokens, dist = 'dist', asText = false) {
  const work = mkdtempSync(join(tmpdir(), 'oath-bulk-reader-bench-'));
  try {
    const path = join(work, 'reader.pskc.xml');
    await pskcFile(path, tokens);
    const { readPskc } = await import(pathToFileURL(resolve(dist, 'seeds/pskc.js')).href);
    const bytes = readFileSync(path);
    const started = performance.now();
    // Builds before the streaming reader took the text, decoded: `text` measures those.
    const read = readPskc(path, asText ? bytes.toString('utf8') : bytes);
    const ms = performance.now() - started;
    const list = Array.isArray(read) ? read : read.tokens;
    return { tokens: list.length, ms, msPer1000: (ms / list.length) * 1000, maxRssMb: process.resourceUsage().maxRSS / 1024 };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await readerBench(Number(process.argv[2] ?? 100_000), process.argv[3] ?? 'dist', process.argv[4] === 'text');
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
