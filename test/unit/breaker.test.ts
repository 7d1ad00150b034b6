/** The breaker of revoke's siblings (unassign, replace, resync): failures of PingOne or the network in a row stop the command; a row's own failure does not. */
import { rowBreaker } from '../../src/commands/shared/breaker.js';
import { RunControl } from '../../src/engine/control.js';

test('--max-consecutive-failures rows in a row with retries exhausted or answers lost stop the command; anything else resets the count', () => {
  const control = new RunControl();
  const judge = rowBreaker(3, control, 'unassign');
  for (const code of ['RETRIES_EXHAUSTED', 'UNCONFIRMED', 'LAST_DEVICE', 'RETRIES_EXHAUSTED', undefined, 'SERIAL_ASSIGNED_ELSEWHERE', 'RETRIES_EXHAUSTED', 'UNCONFIRMED']) judge(code);
  expect(control.stopped).toBe(false);
  judge('RETRIES_EXHAUSTED');
  expect(control.reason).toMatchObject({ code: 'BREAKER_TRIPPED', message: expect.stringMatching(/^3 rows in a row failed with RETRIES_EXHAUSTED: .*so unassign stopped \(--max-consecutive-failures 3\)/) });
  control.dispose();
});
