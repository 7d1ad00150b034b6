/** The sandbox's directory (PINGONE.md "Users"): every UUID is a user but those beginning "00000000-"; users named by email or username come from --users. */
import { pingError, type Answer } from './answers.js';

export const MISSING_USER_PREFIX = '00000000-';

export interface DirectoryUser {
  readonly id: string;
  readonly username?: string;
  readonly email?: string;
}

export function userExists(userId: string): boolean {
  return !userId.startsWith(MISSING_USER_PREFIX);
}

/** GET …/users/{id} */
export function userAnswer(userId: string, users: readonly DirectoryUser[], base: string, environmentId: string): Answer {
  const known = users.find((u) => u.id.toLowerCase() === userId);
  return [200, { _links: { self: { href: `${base}/users/${userId}` } }, id: userId, environment: { id: environmentId }, username: known?.username ?? `user-${userId.slice(0, 8)}`, ...(known?.email ? { email: known.email } : {}), enabled: true }];
}

/** GET …/users?filter=email eq "…" | username eq "…" */
export function lookupAnswer(url: URL, users: readonly DirectoryUser[], environmentId: string): Answer {
  const filter = url.searchParams.get('filter') ?? '';
  const m = /^(email|username) eq "((?:[^"\\]|\\.)*)"$/.exec(filter);
  if (!m) return [400, pingError('INVALID_REQUEST', 'The filter is not supported.', [{ code: 'INVALID_FILTER', target: 'filter', message: `unsupported filter ${filter}` }])];
  const attribute = m[1] as 'email' | 'username';
  const value = m[2]!.replace(/\\(.)/g, '$1').toLowerCase();
  const found = users.filter((u) => (u[attribute] ?? '').toLowerCase() === value);
  return [200, { _embedded: { users: found.map((u) => ({ id: u.id, username: u.username, email: u.email, environment: { id: environmentId } })) }, count: found.length, size: found.length }];
}
