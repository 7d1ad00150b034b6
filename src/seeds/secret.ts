/**
 * A token seed, key or passphrase in memory (SEEDS.md "Handling seeds safely"): bytes in a
 * Buffer that print as [REDACTED] however they are printed, logged or serialised, and that
 * are zeroed once used. JavaScript strings cannot be wiped, so a secret is kept out of them
 * as far as the APIs allow; the README says so rather than promise more.
 */
import { inspect } from 'node:util';

const REDACTED = '[REDACTED]';

export class Secret {
  #bytes: Buffer;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /** Takes ownership of `bytes`: the caller must not keep them. */
  static own(bytes: Buffer): Secret {
    return new Secret(bytes);
  }

  get length(): number {
    return this.#bytes.length;
  }

  /** The bytes, for crypto and encoding. Do not keep them beyond the call. */
  use<T>(fn: (bytes: Buffer) => T): T {
    return fn(this.#bytes);
  }

  /** Lowercase hex, for the one place PingOne takes it (the oathTokens body). */
  hex(): string {
    return this.#bytes.toString('hex');
  }

  /** Overwrites the bytes with zeros; the secret is unusable afterwards. */
  wipe(): void {
    this.#bytes.fill(0);
    this.#bytes = Buffer.alloc(0);
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
