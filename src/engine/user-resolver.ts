/**
 * Rows may name their user by email or username instead of userID. Each distinct name is
 * looked up once per run through PingOne's users filter (paced and retried like any call)
 * and the answer, found or not, is cached.
 */
import type { UserRef } from '../input/validate.js';
import { withRetries, type AssignContext } from './assign-row.js';

export type Resolution = { readonly userId: string } | { readonly code: 'USER_NOT_FOUND' | 'USER_AMBIGUOUS'; readonly message: string };

export class UserResolver {
  private readonly cache = new Map<string, Promise<Resolution>>();

  resolve(user: UserRef, row: number, ctx: AssignContext): Promise<Resolution> {
    if (user.kind === 'id') return Promise.resolve({ userId: user.value });
    const key = `${user.kind}:${user.value.toLowerCase()}`;
    let pending = this.cache.get(key);
    if (!pending) {
      pending = this.lookup(user.kind, user.value, row, ctx);
      // A failed lookup (network, stop) is not an answer: let a later row try again.
      pending.catch(() => this.cache.delete(key));
      this.cache.set(key, pending);
    }
    return pending;
  }

  private async lookup(kind: 'email' | 'username' | 'upn', value: string, row: number, ctx: AssignContext): Promise<Resolution> {
    if (kind === 'upn') {
      // Entra's upn: PingOne's username first, then its email (README "Who a row names").
      const byName = await this.lookup('username', value, row, ctx);
      if ('userId' in byName || byName.code === 'USER_AMBIGUOUS') return byName;
      const byEmail = await this.lookup('email', value, row, ctx);
      return 'userId' in byEmail || byEmail.code === 'USER_AMBIGUOUS' ? byEmail : { code: 'USER_NOT_FOUND', message: `no user has username or email ${JSON.stringify(value)} (the upn) in this environment` };
    }
    const users = await withRetries(ctx, row, () => ctx.api.findUsers(kind, value, { signal: ctx.hard, notAfter: ctx.stopping }));
    if (users.length === 0) return { code: 'USER_NOT_FOUND', message: `no user has ${kind} ${JSON.stringify(value)} in this environment` };
    if (users.length > 1) return { code: 'USER_AMBIGUOUS', message: `more than one user has ${kind} ${JSON.stringify(value)}: use the userID column instead` };
    return { userId: users[0]!.id };
  }
}
