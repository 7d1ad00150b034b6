/** The summary JSON beside the results, and the short human summary on stdout. */
import { openPrivate } from './files.js';
import { ADVICE, type Tally } from './tally.js';

export async function writeSummary(path: string, summary: object): Promise<void> {
  const handle = await openPrivate(path);
  try {
    await handle.writeFile(JSON.stringify(summary, null, 2) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface HumanSummaryInput {
  readonly command: string;
  readonly dryRun?: boolean;
  readonly durationMs: number;
  readonly tally: Tally;
  readonly requests: { total: number; retries: number; rateLimited: number };
  readonly finishedEarlier?: number;
  readonly stopped: { code: string; message: string } | null;
  readonly reports: { results: string; log: string; summary: string; journal?: string | null };
}

export function humanSummary(s: HumanSummaryInput): string {
  const lines: string[] = [];
  const seconds = (s.durationMs / 1000).toFixed(1);
  const state = s.stopped ? `STOPPED (${s.stopped.code})` : s.dryRun ? 'dry run finished' : 'finished';
  lines.push(`${s.command}: ${state} in ${seconds}s`);
  lines.push(`  rows ${s.tally.rows}: ${s.tally.line()}${s.finishedEarlier ? ` (${s.finishedEarlier} finished by an earlier run)` : ''}`);
  lines.push(`  requests ${s.requests.total} · retries ${s.requests.retries} · rate-limited ${s.requests.rateLimited}`);
  const top = s.tally.topErrors(5);
  if (top.length > 0) {
    lines.push('  problems:');
    for (const [code, count] of top) lines.push(`    ${code} ×${count}${ADVICE[code] ? ` — ${ADVICE[code]}` : ''}`);
  }
  if (s.stopped) lines.push(`  why it stopped: ${s.stopped.message}`);
  lines.push(reportLines(s.reports));
  const o = s.tally.outcomes;
  if (s.dryRun) {
    if (o.INVALID === 0) lines.push(`  next: run it for real: ${s.command}`);
    else lines.push(`  next: correct the INVALID rows (see the results), then run it for real`);
  } else if (o.FAILED + o.INVALID > 0) {
    lines.push(`  next: fix what the problems above say (in the input or in PingOne), then run the same command again: ${s.command} (finished rows are not sent again)`);
  } else if (o.NOT_ATTEMPTED > 0) {
    lines.push(`  next: run the same command again to finish the ${o.NOT_ATTEMPTED} rows not attempted: ${s.command} (finished rows are not sent again)`);
  }
  return lines.join('\n') + '\n';
}

/** Where a command's reports are, as the last lines of its human summary. */
export function reportLines(reports: { results: string; log: string; summary: string }): string {
  return `  results  ${reports.results}\n  log      ${reports.log}\n  summary  ${reports.summary}`;
}
