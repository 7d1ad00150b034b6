/**
 * The sandbox's MFA devices (PINGONE.md "Create an OATH token device", "Device activation"):
 * each user's OATH_TOKEN devices, created only for a serial the inventory holds and no one
 * else holds, up to the per-user limit; activated with a code its seed computes; listed, read
 * and deleted as PingOne's answers show them.
 */
import { randomUUID } from 'node:crypto';
import { invalidData, parseJson, pingError, wrongType, type Answer } from './answers.js';
import type { OathInventory } from './inventory.js';

export interface SandboxDevice {
  readonly id: string;
  readonly userId: string;
  readonly serialNumber: string;
  status: string;
  readonly createdAt: string;
}

/** What creating and activating a device needs to know of the rest of the sandbox. */
export interface DeviceRules {
  /** Whether PingOne knows the serial (its inventory holds it). */
  known(serial: string): boolean;
  readonly maxDevicesPerUser: number;
  readonly activationRequired: boolean;
  /** How far this PingOne's clock is off ours, in ms: shows in createdAt. */
  readonly clockSkewMs: number;
  readonly inventory: OathInventory;
  /** Counts what arrives and what is made (the sandbox's stats). */
  count(event: 'createsReceived' | 'devicesCreated' | 'activationsReceived' | 'activations'): void;
}

const SERIAL_RE = /^[A-Za-z0-9]{1,50}$/;

export class DeviceStore {
  private readonly byUser = new Map<string, SandboxDevice[]>();
  private readonly bySerial = new Map<string, SandboxDevice>();

  all(): SandboxDevice[] {
    return [...this.byUser.values()].flat();
  }

  of(userId: string): SandboxDevice[] {
    return this.byUser.get(userId.toLowerCase()) ?? [];
  }

  /** The device holding a serial, if any. */
  holding(serial: string): SandboxDevice | undefined {
    return this.bySerial.get(serial);
  }

  /** Paired serials, for an open inventory's listing. */
  paired(): Iterable<SandboxDevice> {
    return this.bySerial.values();
  }

  add(userId: string, serialNumber: string, createdAt: string, status: string): SandboxDevice {
    const device: SandboxDevice = { id: randomUUID(), userId: userId.toLowerCase(), serialNumber, status, createdAt };
    const list = this.byUser.get(device.userId) ?? [];
    list.push(device);
    this.byUser.set(device.userId, list);
    this.bySerial.set(serialNumber, device);
    return device;
  }

  /** The device removed, or undefined when the user has none with that id. */
  remove(userId: string, deviceId: string): SandboxDevice | undefined {
    const list = this.byUser.get(userId.toLowerCase()) ?? [];
    const index = list.findIndex((d) => d.id === deviceId);
    if (index < 0) return undefined;
    const [device] = list.splice(index, 1);
    this.bySerial.delete(device!.serialNumber);
    return device;
  }

  /** POST …/users/{id}/devices {"type":"OATH_TOKEN","serialNumber"} */
  create(userId: string, contentType: string, body: string, rules: DeviceRules, show: (d: SandboxDevice) => Record<string, unknown>): Answer {
    rules.count('createsReceived');
    if (!/^application\/json/i.test(contentType)) return wrongType('application/json');
    const input = parseJson(body) as { type?: unknown; serialNumber?: unknown } | undefined;
    if (!input || typeof input !== 'object') return [400, pingError('INVALID_REQUEST', 'The request body is not valid JSON.')];
    if (input.type !== 'OATH_TOKEN') return invalidData([{ code: 'INVALID_VALUE', target: 'type', message: 'type must be OATH_TOKEN here' }]);
    if (typeof input.serialNumber !== 'string' || input.serialNumber === '') {
      return invalidData([{ code: 'REQUIRED_VALUE', target: 'serialNumber', message: 'serialNumber is required and must be a string' }]);
    }
    const serial = input.serialNumber;
    if (!SERIAL_RE.test(serial) || !rules.known(serial)) {
      return invalidData([{ code: 'INVALID_VALUE', target: 'serialNumber', message: `No OATH token with serial number ${serial} exists in this environment.` }]);
    }
    if (this.bySerial.has(serial)) return invalidData([{ code: 'UNIQUENESS_VIOLATION', target: 'serialNumber', message: 'The OATH token is already paired with a user.' }]);
    const max = rules.maxDevicesPerUser;
    if (this.of(userId).length >= max) {
      return [400, pingError('REQUEST_FAILED', 'The request could not be completed.', [{ code: 'LIMIT_EXCEEDED', message: `The user has reached the maximum number of devices (${max}).`, innerError: { maximumAllowed: max } }])];
    }
    const device = this.add(userId, serial, new Date(Date.now() + rules.clockSkewMs).toISOString(), rules.activationRequired ? 'ACTIVATION_REQUIRED' : 'ACTIVE');
    rules.inventory.pair(serial, { id: device.id, userId: device.userId });
    rules.count('devicesCreated');
    return [201, show(device)];
  }

  /**
   * POST …/devices/{id} with device.block+json (empty body): the device is BLOCKED, it cannot
   * be used to sign in; device.unblock+json (PINGONE.md: the name by analogy) gives it back
   * the status it had.
   */
  block(device: SandboxDevice, unblock: boolean, show: (d: SandboxDevice) => Record<string, unknown>): Answer {
    const d = device as SandboxDevice & { statusBeforeBlock?: string };
    if (unblock) {
      if (d.status === 'BLOCKED') d.status = d.statusBeforeBlock ?? 'ACTIVE';
    } else if (d.status !== 'BLOCKED') {
      d.statusBeforeBlock = d.status;
      d.status = 'BLOCKED';
    }
    return [200, show(device)];
  }

  /**
   * POST …/devices/{id} (device.activate+json, {"otp"}): the code is checked against the
   * token's seed as imported (HOTP: the counter and the next ACTIVATION_HOTP_WINDOW - 1; TOTP:
   * the current step ± 1). A wrong code is a 400; an HOTP code used moves the counter past it.
   */
  activate(device: SandboxDevice, contentType: string, body: string, rules: DeviceRules, show: (d: SandboxDevice) => Record<string, unknown>): Answer {
    rules.count('activationsReceived');
    if (!/^application\/vnd\.pingidentity\.device\.activate\+json/i.test(contentType)) return wrongType('application/vnd.pingidentity.device.activate+json');
    const otp = (parseJson(body) as { otp?: unknown } | undefined)?.otp;
    if (typeof otp !== 'string' || !/^\d{6,8}$/.test(otp)) return invalidData([{ code: 'REQUIRED_VALUE', target: 'otp', message: 'otp is required: 6 or 8 digits' }]);
    if (device.status !== 'ACTIVATION_REQUIRED') {
      return invalidData([{ code: 'INVALID_VALUE', target: 'status', message: `The device is ${device.status}; only an ACTIVATION_REQUIRED device can be activated.` }]);
    }
    const token = rules.inventory.get(device.serialNumber);
    if (!token || !rules.inventory.checkCode(token, otp)) return invalidData([{ code: 'INVALID_OTP', target: 'otp', message: 'The one-time passcode is not valid.' }]);
    device.status = 'ACTIVE';
    rules.count('activations');
    return [200, show(device)];
  }
}
