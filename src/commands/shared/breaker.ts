/**
 * The systemic-failure breaker of the commands after the rollout (as `run`'s): rows that fail
 * one after another because PingOne or the network is failing (retries exhausted, answers
 * lost) stop the command once --max-consecutive-failures of them come in a row; a row done, or
 * refused for a reason of its own, resets the count.
 */
import { StopError } from '../../errors.js';
import type { RunControl } from '../../engine/control.js';

const SYSTEMIC = new Set(['RETRIES_EXHAUSTED', 'UNCONFIRMED']);

export function rowBreaker(limit: number, control: RunControl, command: string): (errorCode: string | undefined) => void {
  let inARow = 0;
  return (errorCode) => {
    if (!errorCode || !SYSTEMIC.has(errorCode)) {
      inARow = 0;
      return;
    }
    if (++inARow === limit) {
      control.stop(new StopError('BREAKER_TRIPPED', `${inARow} rows in a row failed with ${errorCode}: PingOne or the network is failing for every row, so ${command} stopped (--max-consecutive-failures ${limit}); check PingOne's status and the network, then run the same command again to finish`));
    }
  };
}
