/**
 * A digest of every 16 KB a first pass read, so that the second pass notices any byte that
 * changed in between (an edit in place keeps the size; a digest does not lie). Shared by the
 * CSV reader and the workbook reader.
 */
import { createHash } from 'node:crypto';

export interface ChunkDigests {
  readonly list: string[];
  readonly mode: 'record' | 'verify';
  /** Verify mode: a chunk differs from what the first pass read (called once). */
  readonly onMismatch?: () => void;
}

/** The bytes a pass reads, in 16 KB chunks: `record` keeps each chunk's digest, `verify` compares. */
export const DIGEST_CHUNK = 16 * 1024;

/** A function to hand each chunk to, in order. */
export function chunkDigester(digests: ChunkDigests | undefined): (chunk: Buffer) => void {
  if (!digests) return () => undefined;
  let n = 0;
  let mismatch = false;
  return (chunk) => {
    const digest = createHash('sha1').update(chunk).digest('base64');
    if (digests.mode === 'record') digests.list.push(digest);
    else if (!mismatch && digests.list[n] !== digest) {
      mismatch = true;
      digests.onMismatch?.();
    }
    n++;
  };
}
