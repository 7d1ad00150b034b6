/**
 * Seeded fault injection for the sandbox, so that a drill or a test can be replayed.
 * Each API request draws at most one fault; the shares add up to the fault mix.
 */
export const FAULT_KINDS = ['5xx', 'html502', 'reset', 'lost', 'slow', 'expire'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type FaultMix = Partial<Record<FaultKind, number>>;

export const FAULT_HELP: Record<FaultKind, string> = {
  '5xx': '503 with a PingOne UNEXPECTED_ERROR body, nothing done',
  html502: '502 with an HTML page (a proxy in the way), nothing done',
  reset: 'connection reset before the request is handled, nothing done',
  lost: 'the request is carried out, then the connection is reset: the answer is lost',
  slow: 'the request is carried out, the answer comes after --slow-ms (past a short --timeout)',
  expire: 'the access token (if over 5 s old) expires just before this request: 401',
};

/** Parses "5xx=0.03,lost=0.02" (shares of requests, 0–1). Throws with a message on error. */
export function parseFaultMix(text: string): FaultMix {
  const mix: FaultMix = {};
  if (text.trim() === '' || text.trim() === 'none') return mix;
  for (const part of text.split(',')) {
    const [name, value] = part.split('=').map((s) => s.trim());
    if (!(FAULT_KINDS as readonly string[]).includes(name ?? '')) {
      throw new Error(`--faults: expected kinds ${FAULT_KINDS.join(', ')}, got ${JSON.stringify(name)}`);
    }
    const share = Number(value);
    if (!Number.isFinite(share) || share < 0 || share > 1) throw new Error(`--faults: expected ${name}=<share from 0 to 1>, got ${JSON.stringify(value)}`);
    mix[name as FaultKind] = share;
  }
  const total = Object.values(mix).reduce((a, b) => a + (b ?? 0), 0);
  if (total > 1) throw new Error(`--faults: the shares add up to ${total}, more than 1`);
  return mix;
}

/** mulberry32: small, fast, good enough to make fault draws repeatable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function drawFault(mix: FaultMix, random: () => number): FaultKind | undefined {
  let x = random();
  for (const kind of FAULT_KINDS) {
    const share = mix[kind] ?? 0;
    if (x < share) return kind;
    x -= share;
  }
  return undefined;
}
