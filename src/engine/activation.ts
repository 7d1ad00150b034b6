/**
 * --activate for `run`: a device the row holds (created by the job, or one the user already
 * held) that PingOne left ACTIVATION_REQUIRED is activated with its token's current code,
 * computed from the run's seeds; one at a time until a code is taken; stopped after too many
 * refusals in a row; a device whose codes PingOne refused before is only read by a scheduled run.
 */
import pLimit from 'p-limit';
import type { CheckedRow } from '../input/validate.js';
import type { RowResult } from '../report/outcome.js';
import { activateDevice, NOT_ATTEMPTED_MESSAGE, readActivation, type ActivateContext, type Activation } from './activate.js';
import { pairKey, type PairJournal } from './journal.js';
import type { ShipmentSeeds } from './shipment-seeds.js';

/**
 * --activate: a device the row holds (created by the job, or one the user already held) that
 * PingOne left ACTIVATION_REQUIRED is activated with its token's current code. A device this
 * run did not just create is read first, and gets no code if it is active already.
 */
export interface ActivationOptions {
  readonly dryRun: boolean;
  /** Devices in a row whose codes PingOne refuses before the run stops activating (--max-consecutive-failures). */
  readonly maxRefusedInARow: number;
  /** Send codes again where an earlier run's were refused (a run by hand: yes; a folder run: no). */
  readonly retryRefused: boolean;
  /** The run stopped activating: why, for the summary. */
  readonly onHalted?: (message: string) => void;
}

export function activation(seeds: ShipmentSeeds, ctx: ActivateContext, journal: PairJournal, options: ActivationOptions): (row: CheckedRow, result: RowResult) => Promise<RowResult> {
  const { dryRun } = options;
  let refusedInARow = 0;
  let halted: string | undefined;
  /** A device has taken a code computed from its seed in this run: the seeds and clock are right. */
  let proven = false;
  const oneAtATime = pLimit(1);
  return async (row, result) => {
    if ((result.outcome !== 'CREATED' && result.outcome !== 'EXISTING') || result.revokedSince || result.deviceStatus !== 'ACTIVATION_REQUIRED' || !result.deviceId) return result;
    const note = (text: string): string => (result.message ? `${result.message}; ${text}` : text);
    if (dryRun) return { ...result, message: note('would be activated with a code computed from its seed') };
    if (ctx.stopping.aborted) return { ...result, errorCode: 'ACTIVATION_NOT_ATTEMPTED', message: note(NOT_ATTEMPTED_MESSAGE) };
    // Codes PingOne refused before are not sent again by a scheduled run; the device is read
    // (no code), so that one the user activated at first sign-in since becomes final.
    if (result.activationRefused && !options.retryRefused) {
      const started = Date.now();
      const found = await readActivation(row.row, result.userID, result.deviceId, ctx);
      if (found?.deviceStatus === 'ACTIVE') {
        journal.activated(pairKey(result.userID, result.serialNumber), row.row, { deviceId: result.deviceId, deviceStatus: 'ACTIVE' });
        return { ...result, deviceStatus: 'ACTIVE', errorCode: undefined, message: note('active now: the user activated it (PingOne had refused the codes computed from its seed)'), durationMs: result.durationMs + (Date.now() - started) };
      }
      return { ...result, errorCode: 'ACTIVATION_FAILED', message: note(`${found?.message ?? 'still waiting for a code'}: PingOne refused the codes an earlier run computed from its seed, and a scheduled run sends no more. Until the user activates it at first sign-in, this row keeps the run at exit 1; to close it otherwise, put the seed file right and run this file by hand with --activate, or roll the row back`) };
    }
    const token = seeds.bySerial.get(result.serialNumber);
    if (!token || !seeds.usable(result.serialNumber)) {
      return { ...result, errorCode: 'ACTIVATION_FAILED', message: note(`not activated: ${token ? 'its token in the seed file is invalid' : `no seed for ${result.serialNumber} in ${seeds.path}`}; the user is asked for a code at first sign-in`) };
    }
    // Codes PingOne keeps refusing are a wrong seed file or a wrong clock, not the tokens:
    // no more codes are sent (each one wasted is a step towards an OTP lockout).
    if (halted) return { ...result, errorCode: 'ACTIVATION_FAILED', message: note(`not activated: ${halted}`) };
    const started = Date.now();
    const readFirst = result.finishedEarlier === true || result.outcome === 'EXISTING';
    // Until one device has taken its code, activations go one at a time: a wrong seed file
    // or clock then costs --max-consecutive-failures devices' codes, not a pool's worth.
    const deviceId = result.deviceId;
    // The count is kept inside the turn, so that the next device's turn already sees it.
    const activateAndCount = async (): Promise<Activation | undefined> => {
      if (halted) return undefined;
      const a = await activateDevice(row.row, result.userID, deviceId, token, ctx, readFirst);
      // Only a code taken proves the seeds and the clock: a device found active proves nothing.
      if (a.activatedHere) {
        proven = true;
        refusedInARow = 0;
      }
      if (a.refused && ++refusedInARow >= options.maxRefusedInARow && !halted) {
        halted = `activation stopped after ${refusedInARow} devices in a row refused the codes computed from their seeds (--max-consecutive-failures ${options.maxRefusedInARow}): the seed file may not belong to these tokens, or this machine's clock is off (TOTP); check both, then run again with --activate. Devices stay ACTIVATION_REQUIRED: users are asked for a code at first sign-in`;
        options.onHalted?.(halted);
      }
      return a;
    };
    const a = proven ? await activateAndCount() : await oneAtATime(activateAndCount);
    if (!a) return { ...result, errorCode: 'ACTIVATION_FAILED', message: note(`not activated: ${halted}`) };
    if (a.deviceStatus === 'ACTIVE' || a.refused) {
      journal.activated(pairKey(result.userID, result.serialNumber), row.row, { deviceId, deviceStatus: a.deviceStatus, ...(a.refused ? { refused: true } : {}) });
    }
    const before = result.finishedEarlier ? 'created by an earlier run' : result.outcome === 'EXISTING' ? 'the user already held this token' : 'created';
    return {
      ...result,
      deviceStatus: a.deviceStatus,
      errorCode: a.errorCode,
      ...(a.activatedHere ? { activation: 'code' as const } : a.confirmedByRead ? { activation: 'read' as const } : {}),
      message: `${before}; ${a.message}`,
      durationMs: result.durationMs + (Date.now() - started),
    };
  };
}
