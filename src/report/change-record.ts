/**
 * What a change board reads first: which environment was changed, by whom and from where, with
 * which version and command line, when (local time, with the zone), and the outcome in one
 * plain sentence; a dry run as a plan. The same fields go into the summary JSON and the HTML
 * report, so that the ticket's attachment and a script agree.
 */
import { hostname, userInfo } from 'node:os';

export interface ChangeRecord {
  /** The one sentence at the top: what happened (or, for a dry run, what will happen). */
  readonly outcomeSentence: string;
  readonly environment: { readonly id: string; readonly apiHost: string; readonly region: string | null };
  /** `user@host` of who ran it. */
  readonly operator: string;
  readonly version: string;
  /** As typed, without secrets and without the monitoring flags' values. */
  readonly commandLine: string;
  /** Local times with their zone: `2026-12-02 15:04:05 CET (UTC+01:00)`. */
  readonly startedLocal: string;
  readonly finishedLocal: string;
  readonly timeZone: string;
  /** A dry run: what the real run will do. */
  readonly plan: Plan | null;
  /** What to do next (every summary has one). */
  readonly next: string;
}

export interface Plan {
  readonly willImport: number;
  readonly willCreate: number;
  readonly willActivate: number;
  readonly alreadyInPlace: number;
  readonly wouldFail: number;
  readonly failures: Record<string, number>;
}

/** Who runs this: `user@host` (a name the machine gives; never a secret). */
export function operatorName(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = process.env['USER'] ?? process.env['LOGNAME'] ?? 'unknown';
  }
  return `${user}@${hostname()}`;
}

/** `2026-12-02 15:04:05 CET (UTC+01:00)`, in the machine's zone. */
export function localTime(iso: string, zone = Intl.DateTimeFormat().resolvedOptions().timeZone): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'short' })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>;
  const offsetMin = zoneOffsetMinutes(date, zone);
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  const offset = `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  const name = parts['timeZoneName'] && !/^(GMT|UTC)[+-]/.test(parts['timeZoneName']) ? `${parts['timeZoneName']} (${offset})` : offset;
  return `${parts['year']}-${parts['month']}-${parts['day']} ${parts['hour']}:${parts['minute']}:${parts['second']} ${name}`;
}

function zoneOffsetMinutes(date: Date, zone: string): number {
  const p = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' })
      .formatToParts(date)
      .map((x) => [x.type, Number(x.value)]),
  ) as Record<string, number>;
  const asUtc = Date.UTC(p['year']!, p['month']! - 1, p['day']!, p['hour']!, p['minute']!, p['second']!);
  return Math.round((asUtc - Math.floor(date.getTime() / 1000) * 1000) / 60_000);
}

interface SummaryFacts {
  readonly command: string;
  readonly dryRun: boolean;
  readonly rows: number;
  readonly outcomes: Record<string, number>;
  readonly errorCodes: Record<string, number>;
  readonly stopped: { readonly code: string; readonly message: string } | null;
  readonly exitCode: number;
  readonly activated?: number;
  readonly deviceStatus?: Record<string, number>;
  readonly seeds?: { readonly outcomes: Record<string, number>; readonly tokens: number } | null;
  readonly thisRun?: { readonly created: number; readonly imported: number; readonly activated: number };
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n.toLocaleString('en')} ${n === 1 ? one : many}`;

/** The codes of the rows that failed, most frequent first: `SERIAL_NOT_FOUND 3, USER_NOT_FOUND 1`. */
function codes(errorCodes: Record<string, number>, limit = 4): string {
  const list = Object.entries(errorCodes).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const shown = list.slice(0, limit).map(([c, n]) => `${c} ${n}`).join(', ');
  return list.length > limit ? `${shown} and ${list.length - limit} more` : shown;
}

/** A dry run of `run`: what the real run will do, from the preflight's predictions. */
export function planOf(s: SummaryFacts, activate: boolean): Plan {
  const o = s.outcomes;
  const failures: Record<string, number> = {};
  for (const [code, n] of Object.entries(s.errorCodes)) if (code !== 'PAIRING_UNKNOWN') failures[code] = n;
  const willCreate = o['NOT_ATTEMPTED'] ?? 0;
  const alreadyInPlace = (o['EXISTING'] ?? 0) + (o['CREATED'] ?? 0);
  return {
    // A dry run's import outcomes: NOT_ATTEMPTED is what it would import; IMPORTED is what an earlier run did.
    willImport: s.seeds ? (s.seeds.outcomes['NOT_ATTEMPTED'] ?? 0) : 0,
    willCreate,
    willActivate: activate ? willCreate + (s.deviceStatus?.['ACTIVATION_REQUIRED'] ?? 0) : 0,
    alreadyInPlace,
    wouldFail: (o['FAILED'] ?? 0) + (o['INVALID'] ?? 0) + (o['UNCONFIRMED'] ?? 0),
    failures,
  };
}

/** The outcome in one sentence, in plain words: what a change board reads first. */
export function outcomeSentence(s: SummaryFacts, plan: Plan | null): string {
  const o = s.outcomes;
  const n = (k: string): number => o[k] ?? 0;
  const stoppedLead = s.stopped ? `Stopped before the end (${s.stopped.code}): ` : '';
  switch (s.command) {
    case 'run': {
      if (s.dryRun && plan) {
        const will = [plan.willImport > 0 ? `will import ${plural(plan.willImport, 'token')}` : '', `will create ${plural(plan.willCreate, 'device')}`, plan.willActivate > 0 ? `will activate ${plural(plan.willActivate, 'device')}` : ''].filter(Boolean).join(', ');
        const fine = plan.alreadyInPlace > 0 ? `; ${plural(plan.alreadyInPlace, 'row')} already in place` : '';
        const fail = plan.wouldFail > 0 ? `; ${plural(plan.wouldFail, 'row')} would fail (${codes(s.errorCodes)})` : '; no row would fail';
        return `${stoppedLead}Plan, nothing changed yet: ${will}${fine}${fail}.`;
      }
      const inPlace = n('CREATED') + n('EXISTING');
      const created = s.thisRun?.created ?? n('CREATED');
      const parts = [`${plural(created, 'device')} created by this run`];
      const earlier = inPlace - created - n('EXISTING');
      if (earlier > 0) parts.push(`${earlier.toLocaleString('en')} by earlier runs`);
      if (n('EXISTING') > 0) parts.push(`${n('EXISTING').toLocaleString('en')} already held by their users`);
      if ((s.thisRun?.imported ?? 0) > 0) parts.push(`${plural(s.thisRun!.imported, 'token')} imported`);
      if ((s.activated ?? 0) > 0) parts.push(`${plural(s.activated!, 'device')} activated`);
      const bad = n('FAILED') + n('INVALID') + n('UNCONFIRMED') + n('NOT_ATTEMPTED');
      if (s.stopped) return `${stoppedLead}${inPlace.toLocaleString('en')} of ${plural(s.rows, 'row')} in place (${parts.join(', ')}); the rest waits for the same command again.`;
      if (bad === 0 && s.exitCode === 0) return `Done: all ${plural(s.rows, 'row')} in place (${parts.join(', ')}).`;
      const pending = (s.errorCodes['ACTIVATION_FAILED'] ?? 0) + (s.errorCodes['ACTIVATION_NOT_ATTEMPTED'] ?? 0);
      const not = bad > 0 ? `${plural(bad, 'row')} not done (${codes(s.errorCodes)})` : `${plural(pending, 'device')} not activated (${codes(s.errorCodes)})`;
      return `Done with problems: ${inPlace.toLocaleString('en')} of ${plural(s.rows, 'row')} in place (${parts.join(', ')}); ${not}.`;
    }
    case 'verify': {
      const present = n('PRESENT');
      if (s.stopped) return `${stoppedLead}${present.toLocaleString('en')} of ${plural(s.rows, 'assignment')} checked and in place.`;
      if (present === s.rows) return `Checked: all ${plural(s.rows, 'assignment')} are in place in PingOne.`;
      const others = Object.entries(o).filter(([k, v]) => k !== 'PRESENT' && v > 0).map(([k, v]) => `${k} ${v}`).join(', ');
      return `Checked: ${present.toLocaleString('en')} of ${plural(s.rows, 'assignment')} are in place; ${(s.rows - present).toLocaleString('en')} are not (${others}).`;
    }
    case 'rollback': {
      if (s.dryRun) return `${stoppedLead}Plan, nothing changed yet: would delete ${plural(n('WOULD_DELETE'), 'device')} the run created${n('ALREADY_GONE') ? `; ${n('ALREADY_GONE')} are gone already` : ''}${n('CHANGED') ? `; ${n('CHANGED')} changed since and would be left alone` : ''}.`;
      const deleted = n('DELETED');
      const problems = n('FAILED') + n('CHANGED') + n('NOT_ATTEMPTED');
      const lead = s.stopped ? stoppedLead : problems > 0 ? 'Rolled back with problems: ' : 'Rolled back: ';
      return `${lead}${plural(deleted, 'device')} the run created deleted${n('ALREADY_GONE') ? `, ${n('ALREADY_GONE')} gone already` : ''}${problems > 0 ? `; ${plural(problems, 'row')} not deleted (${codes(Object.fromEntries(['FAILED', 'CHANGED', 'NOT_ATTEMPTED'].filter((k) => n(k) > 0).map((k) => [k, n(k)])))})` : ''}.`;
    }
    case 'import': {
      if (s.dryRun) return `${stoppedLead}Plan, nothing changed yet: will import ${plural(n('NOT_ATTEMPTED'), 'token')}${n('ALREADY_PRESENT') ? `; ${n('ALREADY_PRESENT')} are in the inventory already` : ''}${n('INVALID') + n('FAILED') ? `; ${plural(n('INVALID') + n('FAILED'), 'token')} would fail (${codes(s.errorCodes)})` : ''}.`;
      const bad = n('FAILED') + n('INVALID') + n('UNCONFIRMED') + n('NOT_ATTEMPTED');
      const lead = s.stopped ? stoppedLead : bad > 0 ? 'Imported with problems: ' : 'Imported: ';
      return `${lead}${plural(n('IMPORTED'), 'token')} in the OATH token inventory${n('ALREADY_PRESENT') ? `, ${n('ALREADY_PRESENT')} there already` : ''}${bad > 0 ? `; ${plural(bad, 'token')} not imported (${codes(s.errorCodes)})` : ''}.`;
    }
    case 'revoke': {
      const marked = n('NOT_IN_INVENTORY') ? `; ${plural(n('NOT_IN_INVENTORY'), 'serial')} not in the inventory marked revoked` : '';
      if (s.dryRun) return `${stoppedLead}Plan, nothing changed yet: would revoke ${plural(n('WOULD_REVOKE'), 'token')}${marked.replace('marked', 'would be marked')}${n('REVOKED') ? `; ${n('REVOKED')} revoked already` : ''}${n('INVALID') ? `; ${plural(n('INVALID'), 'row')} invalid` : ''}.`;
      const bad = n('FAILED') + n('INVALID') + n('UNCONFIRMED') + n('NOT_ATTEMPTED');
      const lead = s.stopped ? stoppedLead : bad > 0 ? 'Revoked with problems: ' : 'Revoked: ';
      return `${lead}${plural(n('REVOKED'), 'token')} out of service for good${marked}${bad > 0 ? `; ${plural(bad, 'row')} not done (${codes(s.errorCodes)})` : ''}.`;
    }
    case 'unassign': {
      if (s.dryRun) return `${stoppedLead}Plan, nothing changed yet: would unassign ${plural(n('WOULD_UNASSIGN'), 'token')} (their devices deleted, the tokens back in the pool)${n('FAILED') ? `; ${plural(n('FAILED'), 'row')} would be refused (${codes(s.errorCodes)})` : ''}.`;
      const bad = n('FAILED') + n('INVALID') + n('UNCONFIRMED') + n('NOT_ATTEMPTED');
      const lead = s.stopped ? stoppedLead : bad > 0 ? 'Unassigned with problems: ' : 'Unassigned: ';
      return `${lead}${plural(n('UNASSIGNED'), 'token')} back in the pool${n('NOT_ASSIGNED') ? `, ${n('NOT_ASSIGNED')} were not assigned` : ''}${bad > 0 ? `; ${plural(bad, 'row')} not done (${codes(s.errorCodes)})` : ''}.`;
    }
    case 'replace': {
      if (s.dryRun) return `${stoppedLead}Plan, nothing changed yet: would replace ${plural(n('WOULD_REPLACE'), 'token')}${n('FAILED') + n('INVALID') ? `; ${plural(n('FAILED') + n('INVALID'), 'row')} would fail (${codes(s.errorCodes)})` : ''}.`;
      const bad = n('FAILED') + n('INVALID') + n('UNCONFIRMED') + n('NOT_ATTEMPTED');
      const lead = s.stopped ? stoppedLead : bad > 0 ? 'Replaced with problems: ' : 'Replaced: ';
      return `${lead}${plural(n('REPLACED'), 'user')} hold${n('REPLACED') === 1 ? 's' : ''} the new token and no longer the old one${bad > 0 ? `; ${plural(bad, 'row')} not done, their old devices in place (${codes(s.errorCodes)})` : ''}.`;
    }
    case 'resync': {
      if (s.dryRun) return `${stoppedLead}Plan, nothing sent: would resync ${plural(n('WOULD_RESYNC'), 'token')}.`;
      const bad = n('FAILED') + n('INVALID') + n('UNCONFIRMED') + n('NOT_ATTEMPTED');
      const lead = s.stopped ? stoppedLead : bad > 0 ? 'Resynced with problems: ' : 'Resynced: ';
      return `${lead}${plural(n('RESYNCED'), 'token')} back in step${bad > 0 ? `; ${plural(bad, 'token')} not (${codes(s.errorCodes)})` : ''}.`;
    }
    case 'inventory': {
      const reclaim = ['ORPHANED', 'UNACCOUNTED', 'REVOKED_PRESENT'].filter((k) => n(k) > 0);
      const lead = s.stopped ? `${stoppedLead}${plural(s.rows, 'token')} read, the counts incomplete` : `Read: ${plural(s.rows, 'token')} in the environment`;
      const stock = `${n('FREE').toLocaleString('en')} free, ${(n('ASSIGNED') + n('ACTIVATION_PENDING') + n('HOLDER_DISABLED')).toLocaleString('en')} with their users`;
      return `${lead} (${stock})${reclaim.length ? `; to reclaim: ${reclaim.map((k) => `${k} ${n(k)}`).join(', ')}` : '; nothing to reclaim'}${n('UNKNOWN') ? `; ${plural(n('UNKNOWN'), 'token')} UNKNOWN (not read: a read failed, or the reading stopped first)` : ''}.`;
    }
    default:
      return `${stoppedLead}exit ${s.exitCode}.`;
  }
}

/** The change record of one command, from its summary and what the command knows of itself. */
export function changeRecord(
  s: SummaryFacts & { readonly startedAt: string; readonly finishedAt: string },
  facts: { environmentId: string; apiUrl: string; region?: string | null; version: string; commandLine: string; next: string; activate: boolean },
): ChangeRecord {
  const plan = s.command === 'run' && s.dryRun ? planOf(s, facts.activate) : null;
  let apiHost = facts.apiUrl;
  try {
    apiHost = new URL(facts.apiUrl).host;
  } catch {
    // shown as given
  }
  return {
    outcomeSentence: outcomeSentence(s, plan),
    environment: { id: facts.environmentId, apiHost, region: facts.region ?? null },
    operator: operatorName(),
    version: facts.version,
    commandLine: facts.commandLine,
    startedLocal: localTime(s.startedAt),
    finishedLocal: localTime(s.finishedAt),
    timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    plan,
    next: facts.next,
  };
}
