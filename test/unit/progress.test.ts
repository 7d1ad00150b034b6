/** The progress line fits the terminal: whatever the width, the count and the ETA show. */
import { Writable } from 'node:stream';
import { ProgressLine } from '../../src/report/progress.js';
import { Tally } from '../../src/report/tally.js';

function line(columns: number): string {
  const tally = new Tally();
  for (let i = 0; i < 1234; i++) tally.add({ outcome: i % 50 === 0 ? 'FAILED' : 'CREATED' });
  const out = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { columns });
  const progress = new ProgressLine(out, { tally, total: 100_000, rate: () => 19.8, retries: () => 12 });
  // As if the run had gone on for a minute.
  (progress as unknown as { started: number }).started = Date.now() - 60_000;
  return progress.render();
}

test.each([200, 120, 100, 80, 60, 40, 24])('at %i columns the line fits and keeps the count and the ETA', (columns) => {
  const text = line(columns);
  expect([...text].length).toBeLessThanOrEqual(columns - 1);
  expect(text).toContain('1234/100000');
  expect(text).toMatch(/ETA 1h\d\dm$/);
});

test('a wide terminal gets everything: the bar, the outcomes, the rate and the retries', () => {
  const text = line(200);
  expect(text).toMatch(/^[█░]{20} 1234\/100000 · created 1209 existing 0 failed 25 invalid 0 · 19\.8 req\/s · retries 12 · ETA/);
});

test('the ETA counts only this run\'s own pace: rows an earlier run finished do not make it optimistic', () => {
  const tally = new Tally();
  for (let i = 0; i < 90_000; i++) tally.add({ outcome: 'CREATED', finishedEarlier: true });
  for (let i = 0; i < 600; i++) tally.add({ outcome: 'CREATED' });
  const out = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { columns: 200 });
  const progress = new ProgressLine(out, { tally, total: 100_000, rate: () => 10, retries: () => 0 });
  (progress as unknown as { started: number }).started = Date.now() - 60_000;
  // 600 rows a minute: the 9,400 left take about 15 minutes, not seconds.
  expect(progress.render()).toMatch(/ETA 15m\d\ds$/);
});
