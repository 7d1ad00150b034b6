/**
 * The HTML report at scale and with hostile text (report/html-report.ts): 100,000 rows that
 * need attention keep the table at MAX_ROWS and say how many more; a long run folds its
 * timeline; every interpolated value is escaped; nothing in the page can fetch anything.
 */
import { escapeHtml, MAX_ROWS, renderReport, ReportRecorder, type ReportSummary } from '../../src/report/html-report.js';

function summary(rows: number): ReportSummary {
  return {
    command: 'run',
    runId: '20261129T000000Z',
    input: '/srv/in/<evil>.csv',
    dryRun: false,
    startedAt: '2026-11-29T00:00:00.000Z',
    finishedAt: '2026-11-29T01:00:00.000Z',
    durationMs: 3_600_000,
    rows,
    outcomes: { CREATED: 0, EXISTING: 0, FAILED: rows, INVALID: 0, UNCONFIRMED: 0, NOT_ATTEMPTED: 0 },
    errorCodes: { SERIAL_NOT_FOUND: rows },
    finishedEarlier: 0,
    requests: { total: rows, rateLimited: 3, retries: 5 },
    stopped: null,
    exitCode: 1,
    reports: { results: '/srv/out/x.results.csv', summary: '/srv/out/x.summary.json', log: '/srv/out/x.log.jsonl' },
  };
}

test('100,000 rows needing attention: the table holds MAX_ROWS, says how many more are in the CSV, and the page stays small', () => {
  let total = 0;
  const recorder = new ReportRecorder(() => ({ total, rateLimited: 0, retries: 0 }));
  recorder.extraNames = ['department'];
  for (let i = 1; i <= 100_000; i++) recorder.attention({ row: i, userID: 'u', serialNumber: `S${i}`, outcome: 'FAILED', errorCode: 'SERIAL_NOT_FOUND', message: 'm', extras: ['d'] });
  total = 100_000;
  recorder.stop();
  const html = renderReport(summary(100_000), recorder, { rateCap: 20 });
  expect((html.match(/<tr><td>/g) ?? []).length).toBe(MAX_ROWS);
  expect(html).toContain(`data-more="${100_000 - MAX_ROWS}"`);
  expect(html).toMatch(/and 99500 more rows that need attention: see x\.results\.csv/);
  expect(html.length).toBeLessThan(200_000);
});

test('a long run folds its timeline: at most 240 buckets, the request count kept', () => {
  let total = 0;
  const recorder = new ReportRecorder(() => ({ total, rateLimited: 0, retries: 0 }));
  // Drive the private sampler as the 1-second timer would, over 2 hours of a run.
  const sampler = recorder as unknown as { sample(): void; lastAt: number };
  const realNow = Date.now;
  const start = realNow();
  try {
    for (let s = 1; s <= 7200; s++) {
      total += 20;
      Date.now = () => start + s * 1000;
      sampler.sample();
    }
  } finally {
    Date.now = realNow;
  }
  const { width, points } = recorder.timeline();
  expect(points.length).toBeLessThanOrEqual(240);
  expect(width).toBeGreaterThanOrEqual(32);
  expect(points.reduce((n, p) => n + p.requests, 0)).toBe(7200 * 20);
});

test('every value that reaches the page is escaped, and the page declares that it fetches nothing', () => {
  const recorder = new ReportRecorder(() => ({ total: 0, rateLimited: 0, retries: 0 }));
  recorder.extraNames = ['<th onclick=x>'];
  recorder.attention({ row: 1, userID: '"><script>1</script>', serialNumber: "<img src='x'>", outcome: 'FAILED', errorCode: '<b>', message: 'a & b', extras: ['</td><script>2</script>'] });
  recorder.stop();
  const html = renderReport({ ...summary(1), stopped: { code: 'X', message: '<script>3</script>' } }, recorder, { next: '<script>4</script>', notes: ['<i>note</i>'] });
  expect(html).not.toMatch(/<script|<img|<b>|<i>|<th onclick/);
  expect(html).toContain('&lt;script&gt;1&lt;/script&gt;');
  expect(html).toContain('&lt;img src=&#39;x&#39;&gt;');
  expect(html).toContain("content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"");
  expect(html).not.toMatch(/\b(?:src|href)=["']?(?:https?:)?\/\//);
  expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
});
