/** Report retention (--keep-reports): what a command removes of its own earlier report sets. */
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { stem } from '../../report/files.js';

const RUN_ID = String.raw`\d{8}T\d{6}Z(?:_\d{2})?`;

/**
 * Keeps the newest `keep` report sets of `input` for `command` in `outDir` (results, log,
 * summary, HTML report, seeds results); never a journal or a lock. Returns the files removed.
 */
export async function pruneReports(outDir: string, input: string, command: string, keep: number, current?: string): Promise<string[]> {
  const name = stem(input).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^${name}${command === 'run' ? '' : `\\.${command}`}\\.(${RUN_ID})\\.(?:results\\.csv|results\\.xlsx|results\\.xlsx\\.partial|log\\.jsonl|summary\\.json|report\\.html|seeds\\.csv${command === 'inventory' ? String.raw`|csv|xlsx|xlsx\.partial|[a-z_]+\.csv` : ''})$`);
  const sets = new Map<string, string[]>();
  for (const file of await readdir(outDir)) {
    const m = pattern.exec(file);
    if (!m) continue;
    const list = sets.get(m[1]!) ?? [];
    list.push(file);
    sets.set(m[1]!, list);
  }
  // Dry runs and real runs are kept n each: a preflight never pushes out the reports of the
  // run that made the devices. A set without a readable summary counts as a real run.
  const kinds = new Map<string, 'dry' | 'real'>();
  for (const [runId, files] of sets) {
    const summary = files.find((f) => f.endsWith('.summary.json'));
    let dry = false;
    if (summary) {
      try {
        dry = (JSON.parse(await readFile(join(outDir, summary), 'utf8')) as { dryRun?: unknown }).dryRun === true;
      } catch {
        dry = false;
      }
    }
    kinds.set(runId, dry ? 'dry' : 'real');
  }
  const removed: string[] = [];
  for (const kind of ['dry', 'real'] as const) {
    // The set just written is never removed (a clock that ran ahead left newer-looking sets).
    const ids = [...sets.keys()].filter((id) => kinds.get(id) === kind);
    const mine = current !== undefined && ids.includes(current);
    const old = ids.filter((id) => id !== current).sort().reverse().slice(Math.max(0, keep - (mine ? 1 : 0)));
    for (const runId of old) {
      for (const file of sets.get(runId)!) {
        await unlink(join(outDir, file)).then(() => removed.push(file), () => undefined);
      }
    }
  }
  return removed;
}
