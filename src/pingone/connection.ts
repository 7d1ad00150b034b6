/** What the PingOne client needs to reach an environment: resolved and checked by config.ts. */
import type { Region } from './regions.js';

export type TokenAuth = 'basic' | 'post';

export interface Connection {
  readonly environmentId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly region: Region;
  readonly apiUrl: string;
  readonly authUrl: string;
  readonly tokenAuth: TokenAuth;
}
