/**
 * The HTML report beside the other reports (`<name>.<runId>.report.html`), for a change
 * ticket: one self-contained file — inline CSS and an inline SVG chart, no script, no font, no
 * image, nothing fetched (a Content-Security-Policy of `default-src 'none'` says so to the
 * browser too) — with the outcome counts, the problems and what to do about each, the run
 * over time (requests per second against the cap, 429s, retries) and the rows that need
 * attention with the input's extra columns. It prints on A4. Every cell is escaped.
 *
 * Memory stays flat however long the run: the timeline is folded into at most MAX_POINTS
 * buckets (their width doubles as the run goes on) and the table keeps MAX_ROWS rows, counting
 * the rest, which the results CSV holds.
 */
import { basename } from 'node:path';
import { writePrivateWhole } from './files.js';
import type { CommandSummary, ReportSet } from './summary.js';
import { ADVICE } from './tally.js';
import type { ChangeRecord, Plan } from './change-record.js';

export const MAX_ROWS = 500;
/** Characters of one cell shown in the table. */
const CELL_MAX = 300;
const MAX_POINTS = 240;

/** A row that needs attention, as the table shows it. */
export interface AttentionRow {
  readonly row: number | string;
  readonly userID?: string;
  readonly serialNumber: string;
  readonly outcome: string;
  readonly errorCode?: string;
  readonly message?: string;
  readonly extras?: readonly string[];
}

interface Point {
  /** Seconds since the start, the bucket's start. */
  readonly at: number;
  requests: number;
  rateLimited: number;
  retries: number;
}

export interface Counters {
  readonly total: number;
  readonly rateLimited: number;
  readonly retries: number;
}

/** What a command records for its HTML report while it runs. */
export class ReportRecorder {
  private readonly points: Point[] = [];
  /** Seconds a bucket spans. */
  private width = 1;
  private last: Counters = { total: 0, rateLimited: 0, retries: 0 };
  /** Seconds since the start at the last sample: a sample counts what happened since. */
  private lastAt = 0;
  private readonly started = Date.now();
  private timer?: NodeJS.Timeout;
  readonly rows: AttentionRow[] = [];
  /** Rows needing attention beyond those kept. */
  more = 0;
  extraNames: readonly string[] = [];

  constructor(private readonly counters: () => Counters) {}

  start(): void {
    this.timer = setInterval(() => this.sample(), 1000);
    this.timer.unref();
  }

  /** Takes the last sample and stops sampling. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  attention(row: AttentionRow): void {
    if (this.rows.length < MAX_ROWS) this.rows.push(row);
    else this.more++;
  }

  private sample(): void {
    const now = this.counters();
    const seconds = (Date.now() - this.started) / 1000;
    const delta = { requests: now.total - this.last.total, rateLimited: now.rateLimited - this.last.rateLimited, retries: now.retries - this.last.retries };
    this.last = { ...now };
    const at = Math.floor(this.lastAt / this.width) * this.width;
    this.lastAt = seconds;
    const tail = this.points[this.points.length - 1];
    if (tail && tail.at === at) {
      tail.requests += delta.requests;
      tail.rateLimited += delta.rateLimited;
      tail.retries += delta.retries;
    } else {
      this.points.push({ at, ...delta });
    }
    if (this.points.length > MAX_POINTS) this.fold();
  }

  /** Halves the resolution: neighbouring buckets merge. */
  private fold(): void {
    this.width *= 2;
    const merged: Point[] = [];
    for (const p of this.points) {
      const at = Math.floor(p.at / this.width) * this.width;
      const tail = merged[merged.length - 1];
      if (tail && tail.at === at) {
        tail.requests += p.requests;
        tail.rateLimited += p.rateLimited;
        tail.retries += p.retries;
      } else merged.push({ ...p, at });
    }
    this.points.splice(0, this.points.length, ...merged);
  }

  timeline(): { width: number; points: readonly Point[] } {
    return { width: this.width, points: this.points };
  }
}

/** What the page shows of a command's summary (summary.ts). */
export type ReportSummary = Pick<CommandSummary, 'command' | 'runId' | 'input' | 'dryRun' | 'startedAt' | 'finishedAt' | 'durationMs' | 'rows' | 'outcomes' | 'errorCodes' | 'finishedEarlier' | 'requests' | 'stopped' | 'exitCode'> & {
  readonly reports: Pick<ReportSet, 'results' | 'summary' | 'log'> & { readonly workbook?: string | null };
} & Partial<ChangeRecord>;

/** What each exit code means, in words. */
export const EXIT_MEANING: Record<number, string> = {
  0: 'done',
  1: 'done, but some rows need attention',
  2: 'nothing attempted',
  3: 'stopped before the end',
};

/** The page's head: one self-contained file, nothing fetched (the policy forbids it). */
export function pageHead(title: string, css = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${REPORT_CSS}${css}</style>
</head>`;
}

/** The change record at the top of a page: where, by whom, when, how it ended, the command. */
export function recordTable(summary: Pick<ReportSummary, 'runId' | 'startedAt' | 'finishedAt' | 'durationMs' | 'exitCode'> & Partial<ChangeRecord>, state: string, who: string, input?: string): string {
  const e = escapeHtml;
  return `<table class="record">
<tr><th>Environment</th><td data-field="environment">${summary.environment ? `${e(summary.environment.id)} · API host ${e(summary.environment.apiHost)}${summary.environment.region ? ` (region ${e(summary.environment.region)})` : ''}` : ''}</td></tr>
<tr><th>${e(who)}</th><td data-field="operator">${e(summary.operator ?? '')}</td></tr>
<tr><th>When</th><td data-field="when">${e(summary.startedLocal ?? summary.startedAt)} to ${e(summary.finishedLocal ?? summary.finishedAt)} (${duration(summary.durationMs)})</td></tr>
<tr><th>Status</th><td><span data-field="state">${e(state)}</span>: exit code <span data-field="exitCode">${summary.exitCode}</span>, ${e(EXIT_MEANING[summary.exitCode] ?? 'see the summary')}</td></tr>
<tr><th>Command</th><td><code class="command" data-field="commandLine">${copyable(summary.commandLine ?? '')}</code></td></tr>
<tr><th>Tool</th><td data-field="version">oath-bulk ${e(summary.version ?? '')}</td></tr>
${input === undefined ? '' : `<tr><th>Input</th><td class="path">${e(input)}</td></tr>\n`}<tr><th>Run id</th><td>${e(summary.runId)}</td></tr>
</table>`;
}

export function escapeHtml(text: unknown): string {
  return String(text ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const GOOD = new Set(['CREATED', 'EXISTING', 'PRESENT', 'DELETED', 'ALREADY_GONE', 'WOULD_DELETE', 'IMPORTED', 'ALREADY_PRESENT']);

/** The whole page. `rateCap`: --rate, drawn as the line requests stay under. */
export function renderReport(summary: ReportSummary, recorder: ReportRecorder, options: { rateCap?: number; next?: string; notes?: readonly string[]; journal?: string } = {}): string {
  const e = escapeHtml;
  // A cell is cut at CELL_MAX characters: one huge extra column must not make a row pages tall.
  const cell = (text: unknown): string => {
    const t = String(text ?? '');
    return e(t.length > CELL_MAX ? `${t.slice(0, CELL_MAX)}… (${t.length} characters: see the results CSV)` : t);
  };
  // What counts as done: in a dry run, a row it would send is fine.
  const good = (outcome: string): boolean => GOOD.has(outcome) || (summary.dryRun && outcome === 'NOT_ATTEMPTED');
  const state = summary.stopped ? `stopped (${summary.stopped.code})` : summary.dryRun ? 'dry run finished' : 'finished';
  const outcomeClass = summary.stopped ? 'bad' : summary.exitCode === 0 ? 'good' : 'bad';
  const requests = summary.requests as { total?: number; rateLimited?: number; retries?: number };
  const counts = Object.entries(summary.outcomes)
    // A dry run shows only what it predicts (no "0 CREATED"), its NOT_ATTEMPTED as what it is.
    .filter(([outcome, n]) => n > 0 || (!summary.dryRun && outcome === Object.keys(summary.outcomes)[0]))
    .map(([outcome, n]) => `<div class="count ${good(outcome) ? 'good' : 'bad'}" data-outcome="${e(outcome)}"><span class="n">${n}</span><span class="label">${e(outcome)}${summary.dryRun && outcome === 'NOT_ATTEMPTED' ? ' (to be done by the real run)' : ''}</span></div>`)
    .join('');
  const problems = Object.entries(summary.errorCodes).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const problemRows = problems.map(([code, n]) => `<tr data-code="${e(code)}"><td class="code">${e(code)}</td><td class="num">${n}</td><td>${e(ADVICE[code] ?? 'see the message column of the results')}</td></tr>`).join('');
  const extras = recorder.extraNames;
  const head = ['row', 'userID', 'serialNumber', 'outcome', 'errorCode', 'message', ...extras];
  const body = recorder.rows
    .map((r) => `<tr>${[r.row, r.userID ?? '', r.serialNumber, r.outcome, r.errorCode ?? '', r.message ?? '', ...(r.extras ?? [])].map((c) => `<td>${cell(c)}</td>`).join('')}</tr>`)
    .join('');
  const shown = recorder.rows.length;
  const attention = shown === 0
    ? '<p class="none">No row needs attention.</p>'
    : `<table class="rows"><thead><tr>${head.map((h) => `<th>${e(h)}</th>`).join('')}</tr></thead><tbody>${body}</tbody></table>${
      recorder.more > 0 ? `<p class="more" data-more="${recorder.more}">and ${recorder.more} more rows that need attention: see ${e(basename(summary.reports.results))}</p>` : ''
    }`;
  return `${pageHead(`oath-bulk ${summary.command} ${basename(summary.input)} ${summary.runId}`)}
<body>
<header>
<h1>oath-bulk ${e(summary.command)}${summary.dryRun ? ' (dry run: a plan, nothing changed)' : ''}: ${e(basename(summary.input))}</h1>
<p class="outcome ${outcomeClass}" data-field="outcome">${e(summary.outcomeSentence ?? state)}</p>
${recordTable(summary, state, 'Run by', summary.input)}
</header>
${options.next ? `<section class="next"><h2>Next</h2><pre data-field="next">${copyable(options.next)}</pre></section>` : ''}
${summary.dryRun && summary.plan ? planSection(summary.plan) : ''}
<section>
<h2>${summary.dryRun ? 'Predicted outcome per row' : 'Outcomes'} <span class="sub">(<span data-field="rows">${summary.rows}</span> rows${summary.finishedEarlier ? `, ${summary.finishedEarlier} finished by an earlier run` : ''})</span></h2>
<div class="counts">${counts}</div>
${summary.stopped ? `<p class="stopped">Why it stopped: ${e(summary.stopped.message)}</p>` : ''}
${(options.notes ?? []).map((n) => `<p class="note">${e(n)}</p>`).join('')}
</section>
<section>
<h2>Problems and what to do</h2>
${problems.length === 0 ? '<p class="none">None.</p>' : `<table class="problems"><thead><tr><th>code</th><th>rows</th><th>what to do</th></tr></thead><tbody>${problemRows}</tbody></table>`}
</section>
<section>
<h2>Rows that need attention <span class="sub">(<span data-field="attention">${shown + recorder.more}</span>)</span></h2>
${attention}
</section>
<section class="chart">
<h2>The run over time</h2>
<p class="meta">requests ${requests.total ?? 0} · rate-limited (429) ${requests.rateLimited ?? 0} · retries ${requests.retries ?? 0}${options.rateCap ? ` · cap ${options.rateCap} requests/s` : ''}</p>
${chart(recorder, options.rateCap)}
</section>
<footer><p>Results ${e(summary.reports.results)}${summary.reports.workbook ? ` · workbook ${e(summary.reports.workbook)}` : ''} · summary ${e(summary.reports.summary)} · log ${e(summary.reports.log)}${options.journal ? ` · journal ${e(options.journal)}` : ''}</p></footer>
</body>
</html>
`;
}

/**
 * A command to copy: each word in a span that does not wrap (browsers break after a hyphen,
 * which made "--out-" and "dir" two lines), the spaces between them where lines may break.
 * The text copied is the command as it is.
 */
export function copyable(command: string): string {
  return command.split(/( +)/).map((part) => (part.trim() === '' ? part : `<span class="w">${escapeHtml(part)}</span>`)).join('');
}

/** 75 s → "1 min 15 s". */
export function duration(ms: number): string {
  const s = Math.round(ms / 100) / 10;
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.round(s);
  return whole < 3600 ? `${Math.floor(whole / 60)} min ${whole % 60} s` : `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
}

/** A dry run's plan, in words: what the real run will do, and what would fail. */
function planSection(plan: Plan): string {
  const n = (v: number, one: string, many = `${one}s`): string => `${v.toLocaleString('en')} ${v === 1 ? one : many}`;
  const items = [
    plan.willImport > 0 ? `<li data-plan="import">will import <b>${n(plan.willImport, 'token')}</b> into the OATH token inventory</li>` : '',
    `<li data-plan="create">will create <b>${n(plan.willCreate, 'device')}</b></li>`,
    plan.willActivate > 0 ? `<li data-plan="activate">will activate <b>${n(plan.willActivate, 'device')}</b> with codes computed from their seeds</li>` : '',
    plan.alreadyInPlace > 0 ? `<li data-plan="in-place">${n(plan.alreadyInPlace, 'row')} already in place: nothing to do</li>` : '',
    plan.wouldFail > 0
      ? `<li data-plan="fail" class="bad">${n(plan.wouldFail, 'row')} would fail: ${Object.entries(plan.failures).sort((a, b) => b[1] - a[1]).map(([c, k]) => `${escapeHtml(c)} ${k}`).join(', ')} (see below)</li>`
      : '<li data-plan="fail">no row would fail</li>',
  ].filter(Boolean).join('');
  return `<section class="plan"><h2>Plan</h2><ul>${items}</ul></section>`;
}

/** Requests per second (bars) against the cap (dashed), with 429s and retries marked. */
function chart(recorder: ReportRecorder, cap?: number): string {
  const { width, points } = recorder.timeline();
  if (points.length === 0 || points.every((p) => p.requests === 0)) return '<p class="none">No requests were sent.</p>';
  const sent = points.reduce((n, p) => n + p.requests, 0);
  if (points.length < 2) return `<p class="none">${sent} requests within a second: too short a run for a chart.</p>`;
  const W = 720;
  const H = 220;
  const left = 44;
  const bottom = 28;
  const plotW = W - left - 10;
  const plotH = H - bottom - 10;
  const perSecond = points.map((p) => p.requests / width);
  const top = Math.max(1, cap ?? 0, ...perSecond) * 1.1;
  const end = points[points.length - 1]!.at + width;
  const x = (at: number): number => left + (at / end) * plotW;
  const y = (v: number): number => 10 + plotH - (v / top) * plotH;
  const barW = Math.max(1, (width / end) * plotW - 1);
  const bars = points.map((p, i) => `<rect class="req" x="${x(p.at).toFixed(1)}" y="${y(perSecond[i]!).toFixed(1)}" width="${barW.toFixed(1)}" height="${(10 + plotH - y(perSecond[i]!)).toFixed(1)}"><title>${p.at}s: ${perSecond[i]!.toFixed(1)} requests/s</title></rect>`).join('');
  const marks = points
    .filter((p) => p.rateLimited > 0 || p.retries > 0)
    .map((p) => `${p.rateLimited > 0 ? `<circle class="r429" cx="${(x(p.at) + barW / 2).toFixed(1)}" cy="${(10 + plotH - 6).toFixed(1)}" r="4"><title>${p.at}s: ${p.rateLimited} answered 429</title></circle>` : ''}${p.retries > 0 ? `<rect class="retry" x="${(x(p.at) + barW / 2 - 3).toFixed(1)}" y="${(10 + plotH - 18).toFixed(1)}" width="6" height="6"><title>${p.at}s: ${p.retries} retries</title></rect>` : ''}`)
    .join('');
  const capLine = cap ? `<line class="cap" x1="${left}" x2="${W - 10}" y1="${y(cap).toFixed(1)}" y2="${y(cap).toFixed(1)}"/><text class="cap" x="${W - 12}" y="${(y(cap) - 4).toFixed(1)}" text-anchor="end">cap ${cap}/s</text>` : '';
  const ticks = [0, top / 2, top].map((v) => `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(v < 10 ? 1 : 0)}</text>`).join('');
  const xTicks = [0, end / 2, end].map((s, i) => `<text x="${x(s).toFixed(1)}" y="${H - 8}" text-anchor="${['start', 'middle', 'end'][i]}">${end < 10 ? s.toFixed(1) : Math.round(s)} s</text>`).join('');
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="requests per second over the run">
<line class="axis" x1="${left}" x2="${left}" y1="10" y2="${10 + plotH}"/><line class="axis" x1="${left}" x2="${W - 10}" y1="${10 + plotH}" y2="${10 + plotH}"/>
${ticks}${xTicks}${bars}${capLine}${marks}
</svg>
<p class="legend"><span class="key req"></span> requests/s${width > 1 ? ` (${width} s buckets)` : ''} <span class="key cap"></span> --rate cap <span class="key r429"></span> 429 answers <span class="key retry"></span> retries</p>`;
}

export const REPORT_CSS = `
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;margin:24px auto;max-width:1100px;padding:0 16px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.sub{font-weight:normal;color:#57606a}.meta{color:#57606a;margin:2px 0;word-break:break-all}
.counts{display:flex;flex-wrap:wrap;gap:8px}.count{border:1px solid #d0d7de;border-radius:6px;padding:6px 12px;min-width:110px}
.count .n{display:block;font-size:22px;font-weight:600}.count .label{font-size:12px;color:#57606a}
.count.good{border-left:4px solid #1a7f37}.count.bad{border-left:4px solid #cf222e}
.stopped{color:#cf222e;font-weight:600}
.outcome{font-size:16px;font-weight:600;margin:8px 0 12px;padding:8px 12px;border-radius:6px}.outcome.good{background:#dafbe1;border-left:6px solid #1a7f37}.outcome.bad{background:#ffebe9;border-left:6px solid #cf222e}
table.record{width:auto;max-width:100%;font-size:13px}table.record th{text-align:left;background:none;border:none;padding:1px 12px 1px 0;color:#57606a;font-weight:normal}table.record td{border:none;padding:1px 0}
td.path{word-break:normal;overflow-wrap:anywhere}code.command .w{white-space:nowrap}
/* A command to copy: wrapped only where it has spaces, never inside a word. */
.next pre{white-space:pre-wrap;word-break:normal;overflow-wrap:normal;overflow-x:auto;background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace}.next pre .w{white-space:nowrap}
.plan ul{margin:4px 0;padding-left:20px}.plan li{margin:2px 0}.plan li.bad{color:#cf222e}
table{border-collapse:collapse;width:100%;font-size:12px}th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f6f8fa;white-space:nowrap}table.rows td:nth-child(1),table.rows td:nth-child(4),table.rows td:nth-child(5){overflow-wrap:normal;white-space:nowrap}td.num{text-align:right}td.code{font-family:ui-monospace,monospace;white-space:nowrap}
svg.chart{width:100%;max-width:720px;height:auto;font-size:10px}svg text{fill:#57606a}
.axis{stroke:#8c959f}rect.req{fill:#54aeff}line.cap{stroke:#cf222e;stroke-dasharray:6 4}text.cap{fill:#cf222e}
circle.r429{fill:#cf222e}rect.retry{fill:#bf8700}
.legend .key{display:inline-block;width:12px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
.legend .key.req{background:#54aeff}.legend .key.cap{border-top:2px dashed #cf222e;height:0}.legend .key.r429{background:#cf222e;border-radius:50%}.legend .key.retry{background:#bf8700}
footer{margin-top:24px;color:#57606a;font-size:12px;word-break:break-all}
@page{size:A4;margin:14mm}
@media print{body{margin:0;max-width:none;font-size:11px}.next pre{overflow:visible}.next pre .w,code.command .w{white-space:normal;overflow-wrap:anywhere}h2{break-after:avoid}tr,.count,svg{break-inside:avoid}thead{display:table-header-group}table{font-size:9px}}
`;

/** Written whole or not at all (temp file, then rename), mode 0600 like every report. */
export async function writeReport(path: string, html: string): Promise<void> {
  await writePrivateWhole(path, html);
}
