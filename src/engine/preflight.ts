/**
 * The dry run as a real preflight (SPEC "`run` with seeds, activation, and a preflight"): it
 * reads, never writes, whether each serial is in the environment's OATH token inventory and
 * to whom it is paired, and whether each user exists, and says per row what the real run
 * would do: would create, EXISTING, or the code it would fail with. Every read is paced and
 * retried like any request.
 */
import { StopError } from '../errors.js';
import type { InventoryEntry, UserDeviceApi } from '../pingone/client.js';
import { ApiError } from '../pingone/errors.js';
import type { RowResult } from '../report/outcome.js';
import type { ShipmentSeeds } from './shipment-seeds.js';
import { isAbortOf, notAttempted, withRetries, type AssignContext, type ResolvedRow } from './assign-row.js';

export interface PreflightOptions {
  /** serial -> the inventory's token (with the device it is paired to), for every serial of the file. */
  readonly inventory: ReadonlyMap<string, InventoryEntry>;
  /** The run's seed file (`--seeds`, or a file that carries its seeds). */
  readonly seeds?: ShipmentSeeds;
  readonly activate: boolean;
  readonly users: Pick<UserDeviceApi, 'getUser'>;
  /**
   * PingOne answered the inventory without the devices its tokens are paired to (it ignored
   * expand=devices): a token without a device may be held by anyone, so no create is predicted.
   */
  readonly pairingUnknown?: boolean;
}

/**
 * Whether the inventory's answer left out the devices: serials this tool's journal knows to be
 * assigned came back, and not one token of the answer is paired. (A device deleted since frees
 * one token; it does not strip every token of its device.)
 */
export function pairingUnknown(inventory: ReadonlyMap<string, InventoryEntry>, assigned: ReadonlySet<string>): boolean {
  let known = 0;
  for (const entry of inventory.values()) {
    if (entry.device) return false;
    if (assigned.has(entry.serialNumber)) known++;
  }
  return known > 0;
}

export class Preflight {
  /** user id -> whether PingOne has that user; each asked once. */
  private readonly users = new Map<string, Promise<boolean>>();

  constructor(
    private readonly options: PreflightOptions,
    private readonly ctx: AssignContext,
  ) {}

  /** What the real run would do with the row; `plain`: the message when it would simply create. */
  async predict(row: ResolvedRow, plain: string): Promise<RowResult> {
    const { inventory, seeds, activate } = this.options;
    const seedsPath = seeds?.path;
    const would = (fields: Partial<RowResult> & Pick<RowResult, 'outcome' | 'message'>): RowResult => ({ ...notAttempted(row), userID: row.userId, ...fields });
    const fail = (errorCode: string, message: string): RowResult => would({ outcome: 'FAILED', errorCode, message: `dry run: the real run would fail: ${message}` });

    // A row named by email or username was found by its lookup already.
    if (row.user?.kind === 'id') {
      let exists: boolean;
      try {
        exists = await this.userExists(row.userId, row.row);
      } catch (error) {
        if (isAbortOf(error, this.ctx.stopping)) return notAttempted(row);
        if (error instanceof StopError) {
          this.ctx.onSystemic(error);
          return would({ outcome: 'FAILED', errorCode: error.code, message: error.message });
        }
        if (!(error instanceof ApiError)) throw error;
        return would({ outcome: 'FAILED', errorCode: 'RETRIES_EXHAUSTED', httpStatus: error.status, message: `dry run: could not check the user: ${error.message}` });
      }
      if (!exists) return fail('USER_NOT_FOUND', `no user ${row.userId} in this environment`);
    }
    const then = activate ? ', then activated with a code computed from its seed if PingOne asks for one' : '';
    // --activate with no usable seed for the serial: a device PingOne leaves waiting for a code
    // would stay so (the real run says ACTIVATION_FAILED).
    const unseeded = activate && !(seeds?.usable(row.serialNumber) ?? false);
    const noActivation = (fields: Partial<RowResult> & Pick<RowResult, 'outcome' | 'message'>): RowResult =>
      would({ ...fields, errorCode: 'ACTIVATION_FAILED', message: `${fields.message}; if PingOne asks for activation it would fail: no usable seed for ${row.serialNumber} in ${seedsPath ?? 'the seed file'}` });
    // The seed file gives the serial two tokens: the real run sends nothing for the row.
    const conflict = seeds?.conflict(row);
    if (conflict) return fail('SEED_CONFLICT', conflict.message ?? 'the seed file gives the serial two different tokens');
    const token = inventory.get(row.serialNumber);
    if (!token) {
      const seed = seeds?.bySerial.get(row.serialNumber);
      if (seed && !seed.problem) return would({ outcome: 'NOT_ATTEMPTED', message: `dry run: ${row.serialNumber} is not in the inventory; in the seed file: will be imported, then the device created${then}` });
      if (seed?.problem) return fail('SERIAL_NOT_FOUND', `${row.serialNumber} is not in the inventory, and its token in the seed file is invalid (${seed.problem.code}: ${seed.problem.message})`);
      return fail('SERIAL_NOT_FOUND', `${row.serialNumber} is not in the environment's OATH token inventory${seedsPath ? ` nor in the seed file ${seedsPath}` : ''}: import its seed first (oath-bulk import, or run --seeds <seed file>)`);
    }
    const holder = token.device?.userId?.toLowerCase();
    if (token.device && holder === row.userId.toLowerCase()) {
      return would({ outcome: 'EXISTING', deviceId: token.device.id, message: `dry run: the user already holds this token; nothing would be created${activate ? '; activated if it waits for a code' : ''}` });
    }
    if (token.device) return fail('SERIAL_ALREADY_ASSIGNED', `${row.serialNumber} is paired to another user (${holder ?? 'a user the inventory does not name'}, device ${token.device.id}): unassign it there, or give this user another token`);
    if (this.options.pairingUnknown) {
      return would({ outcome: 'NOT_ATTEMPTED', errorCode: 'PAIRING_UNKNOWN', message: `dry run: cannot tell whether ${row.serialNumber} is free or held by another user: PingOne answered the inventory without the devices its tokens are paired to (expand=devices ignored), though this tool assigned some of these serials; the real run reads each user's devices and will find out` });
    }
    if (unseeded) return noActivation({ outcome: 'NOT_ATTEMPTED', message: plain });
    return would({ outcome: 'NOT_ATTEMPTED', message: `${plain}${then}` });
  }

  private userExists(userId: string, row: number): Promise<boolean> {
    const key = userId.toLowerCase();
    let pending = this.users.get(key);
    if (!pending) {
      pending = withRetries(this.ctx, row, () => this.options.users.getUser(userId, { signal: this.ctx.hard, notAfter: this.ctx.stopping })).then((u) => u !== undefined);
      // A failed read is not an answer: a later row asks again.
      pending.catch(() => this.users.delete(key));
      this.users.set(key, pending);
    }
    return pending;
  }
}
