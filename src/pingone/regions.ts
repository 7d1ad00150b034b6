/** PingOne hosts per region (PINGONE.md "Hosts per region"). */
export const REGIONS = {
  NA: { authUrl: 'https://auth.pingone.com', apiUrl: 'https://api.pingone.com/v1' },
  CA: { authUrl: 'https://auth.pingone.ca', apiUrl: 'https://api.pingone.ca/v1' },
  EU: { authUrl: 'https://auth.pingone.eu', apiUrl: 'https://api.pingone.eu/v1' },
  AU: { authUrl: 'https://auth.pingone.com.au', apiUrl: 'https://api.pingone.com.au/v1' },
  SG: { authUrl: 'https://auth.pingone.sg', apiUrl: 'https://api.pingone.sg/v1' },
  AP: { authUrl: 'https://auth.pingone.asia', apiUrl: 'https://api.pingone.asia/v1' },
} as const;

export type Region = keyof typeof REGIONS;

export function isRegion(value: string): value is Region {
  return Object.prototype.hasOwnProperty.call(REGIONS, value);
}

/** Hosts on which plain http is tolerated: the loopback range only (SPEC "Configuration"). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host === '::1') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
