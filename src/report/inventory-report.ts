/**
 * The inventory's HTML report: one self-contained page (inline CSS, no script) for the people
 * who decide what to reclaim and what to order — problems first, then stock by state, by
 * manufacturer and model, by shipment, and the tokens whose vendor validity ends soon. Each
 * count carries a data attribute, so that a test reads the page as a browser shows it.
 */
import { basename } from 'node:path';
import { copyable, escapeHtml as e, pageHead, recordTable } from './html-report.js';
import type { ChangeRecord } from './change-record.js';

/** Rows of one list shown in the page at most; the CSV has them all. */
export const LIST_MAX = 500;

/**
 * The tokens a report lists, most urgent state first however they arrive (free tokens come page
 * by page before the paired ones): at most `max` per state are kept, then the first `max` of
 * them in `order`; `more` counts the rest.
 */
export class UrgentList {
  private readonly buckets = new Map<string, ListedToken[]>();
  private total = 0;

  constructor(
    private readonly order: readonly string[],
    private readonly max = LIST_MAX,
  ) {}

  add(token: ListedToken): void {
    this.total++;
    const bucket = this.buckets.get(token.state) ?? [];
    if (bucket.length < this.max) bucket.push(token);
    this.buckets.set(token.state, bucket);
  }

  get shown(): ListedToken[] {
    const known = this.order.flatMap((state) => this.buckets.get(state) ?? []);
    const others = [...this.buckets].filter(([state]) => !this.order.includes(state)).flatMap(([, b]) => b);
    return [...known, ...others].slice(0, this.max);
  }

  get more(): number {
    return this.total - this.shown.length;
  }
}

export interface StockGroup {
  readonly total: number;
  readonly states: Readonly<Record<string, number>>;
}

export interface ListedToken {
  readonly serialNumber: string;
  readonly state: string;
  readonly problem?: string;
  readonly userID?: string;
  readonly username?: string;
  readonly validUntil?: string;
  readonly message?: string;
}

export interface InventoryPage {
  readonly states: readonly string[];
  /** States that ask for someone to act, and states to keep an eye on, in that order, first. */
  readonly act: readonly string[];
  readonly watch: readonly string[];
  readonly counts: Readonly<Record<string, number>>;
  readonly byModel: ReadonlyMap<string, StockGroup>;
  readonly byShipment: ReadonlyMap<string, StockGroup>;
  /** Tokens in a problem state, problems first (capped at LIST_MAX; `more` the rest). */
  readonly problems: readonly ListedToken[];
  readonly moreProblems: number;
  readonly expiring: readonly ListedToken[];
  readonly moreExpiring: number;
  readonly expiringWithinDays: number;
  /** What to run for each problem state, in words and as commands. */
  readonly advice: Readonly<Record<string, string>>;
  readonly notes: readonly string[];
  readonly next?: string;
}

export interface InventorySummaryView extends Partial<ChangeRecord> {
  readonly runId: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly exitCode: number;
  readonly stopped: { readonly code: string; readonly message: string } | null;
  readonly rows: number;
  readonly reports: { readonly results: string; readonly workbook?: string | null };
}


function group(title: string, field: string, groups: ReadonlyMap<string, StockGroup>, states: readonly string[]): string {
  if (groups.size === 0) return `<h3>${e(title)}</h3><p class="none">Nothing known (no shipment facts in the ledger).</p>`;
  const used = states.filter((s) => [...groups.values()].some((g) => (g.states[s] ?? 0) > 0));
  const rows = [...groups.entries()]
    .sort((a, b) => b[1].total - a[1].total || a[0].localeCompare(b[0]))
    .map(([name, g]) => `<tr data-${field}="${e(name)}"><td>${e(name)}</td><td class="num" data-total>${g.total}</td>${used.map((s) => `<td class="num" data-state="${s}">${g.states[s] ?? 0}</td>`).join('')}</tr>`)
    .join('');
  return `<h3>${e(title)}</h3><table class="stock"><thead><tr><th>${e(title.replace(/^By /, ''))}</th><th>tokens</th>${used.map((s) => `<th>${s}</th>`).join('')}</tr></thead><tbody>${rows}</tbody></table>`;
}

function list(tokens: readonly ListedToken[], more: number, what: string, results: string, withDate: boolean): string {
  if (tokens.length === 0) return `<p class="none">None.</p>`;
  const head = ['serialNumber', 'state', 'problem', 'userID', 'username', ...(withDate ? ['validUntil'] : []), 'why'];
  const body = tokens.map((t) => `<tr data-serial="${e(t.serialNumber)}"><td>${e(t.serialNumber)}</td><td>${e(t.state)}</td><td class="code">${e(t.problem ?? '')}</td><td>${e(t.userID ?? '')}</td><td>${e(t.username ?? '')}</td>${withDate ? `<td>${e((t.validUntil ?? '').slice(0, 10))}</td>` : ''}<td>${e(t.message ?? '')}</td></tr>`).join('');
  return `<table class="rows"><thead><tr>${head.map((h) => `<th>${e(h)}</th>`).join('')}</tr></thead><tbody>${body}</tbody></table>${more > 0 ? `<p class="more" data-more="${more}">and ${more} more ${what}: see ${e(basename(results))}</p>` : ''}`;
}

export function renderInventoryReport(summary: InventorySummaryView, page: InventoryPage): string {
  const state = summary.stopped ? `stopped (${summary.stopped.code})` : 'finished';
  const cls = (s: string): string => (page.act.includes(s) ? 'bad' : page.watch.includes(s) ? 'watch' : 'good');
  const ordered = [...page.act, ...page.watch, ...page.states.filter((s) => !page.act.includes(s) && !page.watch.includes(s))];
  const counts = ordered.map((s) => `<div class="count ${cls(s)}" data-state="${s}"><span class="n">${page.counts[s] ?? 0}</span><span class="label">${s}</span></div>`).join('');
  const advice = ordered
    .filter((s) => (page.counts[s] ?? 0) > 0 && page.advice[s])
    .map((s) => `<tr data-advice="${s}"><td class="code">${s}</td><td class="num">${page.counts[s]}</td><td><pre class="advice">${copyable(page.advice[s]!).replace(/\n/g, '<br>')}</pre></td></tr>`)
    .join('');
  return `${pageHead(`oath-bulk inventory ${summary.environment?.id ?? ''} ${summary.runId}`, '\n.count.watch{border-left:4px solid #bf8700}h3{font-size:14px;margin:16px 0 6px}pre.advice{white-space:pre-wrap;margin:0;font:12px/1.5 ui-monospace,monospace}\n')}
<body>
<header>
<h1>oath-bulk inventory: every OATH token of the environment</h1>
<p class="outcome ${summary.stopped || summary.exitCode !== 0 ? 'bad' : 'good'}" data-field="outcome">${e(summary.outcomeSentence ?? state)}</p>
${recordTable(summary, state, 'Read by')}
</header>
${page.next ? `<section class="next"><h2>Next</h2><pre data-field="next">${copyable(page.next)}</pre></section>` : ''}
<section>
<h2>Tokens by state <span class="sub">(<span data-field="tokens">${summary.rows}</span> tokens)</span></h2>
<div class="counts">${counts}</div>
${summary.stopped ? `<p class="stopped">Why it stopped: ${e(summary.stopped.message)}</p>` : ''}
${page.notes.map((n) => `<p class="note">${e(n)}</p>`).join('')}
</section>
<section>
<h2>What to do</h2>
${advice === '' ? '<p class="none">Nothing: no token needs attention.</p>' : `<table class="problems"><thead><tr><th>state</th><th>tokens</th><th>what to do</th></tr></thead><tbody>${advice}</tbody></table>`}
</section>
<section>
<h2>Tokens that need attention <span class="sub">(<span data-field="problems">${page.problems.length + page.moreProblems}</span>)</span></h2>
${list(page.problems, page.moreProblems, 'tokens that need attention', summary.reports.results, false)}
</section>
<section>
<h2>Expiring within ${page.expiringWithinDays} days, or expired <span class="sub">(<span data-field="expiring">${page.expiring.length + page.moreExpiring}</span>)</span></h2>
${list(page.expiring, page.moreExpiring, 'tokens', summary.reports.results, true)}
</section>
<section>
<h2>Stock</h2>
${group('By manufacturer and model', 'model', page.byModel, page.states)}
${group('By shipment', 'shipment', page.byShipment, page.states)}
</section>
<footer>Every token: ${e(summary.reports.results)}${summary.reports.workbook ? ` · ${e(summary.reports.workbook)}` : ''}</footer>
</body>
</html>
`;
}
