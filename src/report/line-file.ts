/**
 * A file written in order from many small pieces (log lines, CSV records) without making the
 * writer wait: pieces queue and go out in one write at a time. A write error (a full disk, a
 * quota, a read-only remount) is reported once, through `onFault`, and everything after it is
 * dropped: nothing retries forever, nothing waits for a drain that never comes, close() always
 * ends. (pino's own destination retries a full disk in its exit flush and never exits.)
 */
import type { FileHandle } from 'node:fs/promises';
import { writeFully } from './files.js';

const WRITE_BYTES = 1 << 20;

export class LineFile {
  private pending: string[] = [];
  private pendingBytes = 0;
  private writing?: Promise<void>;
  private failed = false;

  constructor(
    private readonly handle: FileHandle,
    private readonly onFault: (error: unknown) => void,
  ) {}

  /** Queues a piece; true (pino and streams ask). */
  write(piece: string): boolean {
    if (this.failed) return true;
    this.pending.push(piece);
    this.pendingBytes += piece.length;
    if (!this.writing) this.writing = this.pump();
    return true;
  }

  /** Bytes queued and not yet written: writers that can wait do so above a bound. */
  get backlog(): number {
    return this.pendingBytes;
  }

  /** Resolves once everything queued so far is written (or dropped after a fault). */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  async close(): Promise<void> {
    await this.flush();
    if (!this.failed) await this.handle.sync().catch(() => undefined);
    await this.handle.close().catch(() => undefined);
  }

  private async pump(): Promise<void> {
    while (this.pending.length > 0 && !this.failed) {
      // At most about a megabyte a write: one huge string would cost as much memory again.
      let take = 0;
      let bytes = 0;
      while (take < this.pending.length && (take === 0 || bytes < WRITE_BYTES)) bytes += this.pending[take++]!.length;
      const text = this.pending.slice(0, take).join('');
      this.pending = this.pending.slice(take);
      this.pendingBytes -= bytes;
      try {
        await writeFully(this.handle, Buffer.from(text, 'utf8'));
      } catch (error) {
        this.failed = true;
        this.pending = [];
        this.pendingBytes = 0;
        this.onFault(error);
      }
    }
    this.writing = undefined;
  }
}
