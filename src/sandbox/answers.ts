/** What the sandbox's handlers share: PingOne's error body, JSON bodies, request bodies. */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** An HTTP status and the JSON body to answer with. */
export type Answer = [number, unknown];

/** Largest number of events within any half-open window [t, t + windowMs). */
export function maxInWindow(times: readonly number[], windowMs = 1000): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

export function pingError(code: string, message: string, details?: unknown[]): Record<string, unknown> {
  return { id: randomUUID(), code, message, ...(details ? { details } : {}) };
}

export function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** JSON whose long whole numbers (a 64-bit HOTP counter) keep their digits, as text. */
export function parseJsonExact(text: string): any {
  return parseJson(text.replace(/("counter"\s*:\s*)(\d{16,})(?=\s*[,}])/g, '$1"$2"'));
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 8 * 1024 * 1024) {
        req.destroy();
        reject(new Error('body too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}


/** PingOne's 400 for a request whose data it refuses, with the details that say why. */
export function invalidData(details: unknown[]): Answer {
  return [400, pingError('INVALID_DATA', 'The request could not be completed. One or more validation errors were in the request.', details)];
}

/** PingOne's 415 for a body of the wrong content type. */
export function wrongType(expected: string): Answer {
  return [415, pingError('INVALID_REQUEST', `Content-Type must be ${expected}.`)];
}
