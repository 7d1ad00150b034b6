/** The tool's version, from its package.json (read once, when first asked: --version and a usage error pay nothing for it). */
import { readFileSync } from 'node:fs';

let version: string | undefined;

export function toolVersion(): string {
  if (version === undefined) {
    try {
      version = String((JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }).version ?? 'unknown');
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
