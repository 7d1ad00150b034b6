/** RFC 4226 §5.3 (RFC 6238 with the time step as the counter), computed here, apart from the sandbox's and oath-bulk's own: the codes a test reads off a token. */
import { createHmac } from 'node:crypto';

export function hotp(secretHex: string, counter: number, digits = 6): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', Buffer.from(secretHex, 'hex')).update(message).digest();
  const o = mac[mac.length - 1]! & 0x0f;
  return String((((mac[o]! & 0x7f) << 24) | (mac[o + 1]! << 16) | (mac[o + 2]! << 8) | mac[o + 3]!) % 10 ** digits).padStart(digits, '0');
}
