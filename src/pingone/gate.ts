/**
 * What the PingOne layer asks of the request scheduler: permission to send one request, and
 * news of how the last one went so that the pace can adapt. Every request goes through it,
 * token requests included (SPEC: "--rate … all requests counted").
 */
export interface RequestGate {
  /** Resolves with the time the request goes out (the gate's own clock). */
  acquire(signal?: AbortSignal): Promise<number>;
  /** A 429 for the request that acquire() let go at `sentAt`. */
  rateLimited(retryAfterMs: number | undefined, sentAt?: number): void;
  answered(): void;
  /** The request granted at `grantedAt` is being written now. */
  sent?(grantedAt: number): void;
}

/** Counts of what was sent, for the summary and the log. */
export interface RequestStats {
  total: number;
  token: number;
  create: number;
  list: number;
  delete: number;
  lookup: number;
  /** Device activations (with a code computed from the token's seed). */
  activate: number;
  /** OATH token inventory: creates and reads. */
  inventory: number;
  job: number;
  poll: number;
  rateLimited: number;
  retries: number;
  tokenRefreshes: number;
}

export function newRequestStats(): RequestStats {
  return { total: 0, token: 0, create: 0, list: 0, delete: 0, lookup: 0, activate: 0, inventory: 0, job: 0, poll: 0, rateLimited: 0, retries: 0, tokenRefreshes: 0 };
}

/** A gate that lets everything through: for commands and tests that need no pacing. */
export const OPEN_GATE: RequestGate = {
  acquire: async () => 0,
  rateLimited: () => undefined,
  answered: () => undefined,
};
