/**
 * The structured log: pino JSON lines in a file of its own (0600). Errors are reduced before
 * they reach it (pingone/errors.ts); the redact paths are the second line of defence should
 * anything carrying headers or secrets ever be passed in (pino docs/redaction.md).
 */
import pino, { type Logger } from 'pino';
import { openPrivate } from './files.js';
import { LineFile } from './line-file.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Fields that would carry a secret if anything ever logged them. Only exact paths: wildcard
 * paths make pino rewrite every line, and every logged object is ours and flat.
 */
export const REDACT_PATHS = [
  'authorization',
  'headers',
  'config',
  'request',
  'response',
  'err.config',
  'err.request',
  'err.response',
  'error.config',
  'error.request',
  'error.response',
  'clientSecret',
  'client_secret',
  'access_token',
  'accessToken',
  'token',
  'settings.clientSecret',
];

export interface RunLog {
  readonly logger: Logger;
  /** Bytes logged and not yet written: a fast producer waits (flush) above a bound. */
  readonly backlog: number;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** `onFault`: the log cannot be written (a full disk …); lines after it are dropped. */
export async function openRunLog(path: string, level: LogLevel, base: Record<string, unknown>, onFault: (error: unknown) => void = () => undefined): Promise<RunLog> {
  const handle = await openPrivate(path);
  const destination = new LineFile(handle, onFault);
  const logger = pino(
    {
      level,
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: (e: unknown) => reduceError(e) },
    },
    destination,
  );
  return {
    logger,
    get backlog() {
      return destination.backlog;
    },
    flush: () => destination.flush(),
    close: () => destination.close(),
  };
}

/** The only shape in which an error is ever logged: name, code, message. */
export function reduceError(error: unknown): Record<string, unknown> {
  if (error && typeof error === 'object') {
    const e = error as { name?: unknown; code?: unknown; message?: unknown; status?: unknown };
    return {
      name: typeof e.name === 'string' ? e.name : 'Error',
      code: typeof e.code === 'string' ? e.code : undefined,
      status: typeof e.status === 'number' ? e.status : undefined,
      message: typeof e.message === 'string' ? e.message.slice(0, 500) : undefined,
    };
  }
  return { message: String(error).slice(0, 500) };
}
