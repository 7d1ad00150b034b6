/**
 * `oath-bulk reinstate <serials…> --yes`: a serial revoked by mistake may be imported and
 * assigned again. Only the ledger changes (PingOne forgot the token when it was revoked: its
 * seed is imported again before it is assigned); the reversal is recorded, never a deletion.
 */
import { environmentFrom, type RawOptions } from '../config.js';
import { UsageError } from '../errors.js';
import { UUID_RE } from '../ids.js';
import { Ledger } from '../engine/ledger.js';
import { runIdFor } from '../report/files.js';
import { checkSerial } from '../input/validate.js';
import { resolveStateDir } from './shared/command-config.js';
import type { CommandDeps } from './shared/deps.js';

export async function reinstateCommand(serials: readonly string[], raw: RawOptions, deps: CommandDeps): Promise<number> {
  if (serials.length === 0) throw new UsageError('reinstate: name the serials to reinstate (oath-bulk reinstate <serial> … --yes)');
  for (const s of serials) {
    const problem = checkSerial(s);
    if (problem) throw new UsageError(`reinstate: ${JSON.stringify(s.slice(0, 60))}: ${problem.message}`);
  }
  const env = environmentFrom(raw, deps);
  const environmentId = typeof raw['environment-id'] === 'string' && raw['environment-id'] !== '' ? raw['environment-id'] : env['PINGONE_ENVIRONMENT_ID'];
  if (!environmentId || !UUID_RE.test(environmentId)) throw new UsageError('reinstate: --environment-id (or PINGONE_ENVIRONMENT_ID, or --settings): the environment whose ledger to change, a UUID');
  if (raw['yes'] !== true) {
    throw new UsageError(`reinstate lets ${serials.length === 1 ? 'a revoked token' : `${serials.length} revoked tokens`} be imported and assigned again: if ${serials.length === 1 ? 'it was' : 'they were'} revoked by mistake, pass --yes to confirm`);
  }
  const ledger = await Ledger.open(resolveStateDir(raw, deps), environmentId, { create: false, notice: deps.warn });
  const by = `reinstate ${runIdFor(new Date())}`;
  const reinstated: string[] = [];
  for (const serial of [...new Set(serials)]) {
    const revoked = ledger.revoked(serial);
    if (!revoked) {
      deps.stdout.write(`  ${serial}: not revoked in the ledger: nothing to reinstate\n`);
      continue;
    }
    reinstated.push(serial);
    deps.stdout.write(`  ${serial}: reinstated (it was ${revoked.state} since ${revoked.at.slice(0, 10)}${revoked.reason ? `, ${revoked.reason}` : ''}${revoked.by ? `, by ${revoked.by}` : ''})\n`);
  }
  await ledger.append(reinstated.map((sn) => ({ e: 'reinstated', sn, by })));
  deps.stdout.write(`oath-bulk reinstate: ${reinstated.length} of ${serials.length} serial${serials.length === 1 ? '' : 's'} reinstated in ${ledger.path}\n`);
  if (reinstated.length > 0) {
    deps.stdout.write('  next: PingOne forgot these tokens when they were revoked: import their seeds again (oath-bulk import <seed file>, or run --seeds), then assign them\n');
  }
  return 0;
}
