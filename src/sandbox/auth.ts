/**
 * The sandbox's token endpoint (PINGONE.md "Access token"): client credentials by
 * client_secret_basic or client_secret_post; OAuth's error bodies for a wrong grant or client.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Answer } from './answers.js';

export interface Client {
  readonly clientId: string;
  readonly clientSecret: string;
  /** Seconds a token lives. */
  readonly ttlS: number;
}

/** The answer to POST /{env}/as/token, and the token issued (if any). */
export function tokenAnswer(req: IncomingMessage, body: string, client: Client): { answer: Answer; token?: string } {
  const form = new URLSearchParams(body);
  let id: string | undefined;
  let secret: string | undefined;
  const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (basic) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const unform = (s: string): string => decodeURIComponent(s.replace(/\+/g, ' '));
    id = unform(decoded.slice(0, colon));
    secret = unform(decoded.slice(colon + 1));
  } else {
    id = form.get('client_id') ?? undefined;
    secret = form.get('client_secret') ?? undefined;
  }
  if (form.get('grant_type') !== 'client_credentials') {
    return { answer: [400, { error: 'unsupported_grant_type', error_description: 'The grant type is not supported.' }] };
  }
  if (id !== client.clientId || secret !== client.clientSecret) {
    return { answer: [401, { error: 'invalid_client', error_description: 'Request denied: Unsupported authentication method or invalid client credentials.' }] };
  }
  const token = `sbx.${randomBytes(24).toString('base64url')}`;
  return { answer: [200, { access_token: token, token_type: 'Bearer', expires_in: client.ttlS, scope: '' }], token };
}
