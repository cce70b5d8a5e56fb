/** `pkglog verify-lock FILE`: check every artifact a lockfile pins against the log (client/verify-lock.ts). */
import { readFileSync } from 'node:fs';
import { fail, PkglogError } from '../core/errors.ts';
import { reason, type CommandSpec, type Io, type Parsed } from '../runtime/cli.ts';
import { TRUST_FLAGS, TRUST_HELP, loadTrust, stateFrom, logClient, printReport, parseTime } from './cli-common.ts';
import { parseDuration } from './trust.ts';
import { parseLockfile } from './lockfile.ts';
import { verifyLock } from './verify-lock.ts';

export const VERIFY_LOCK_SPEC: CommandSpec = {
  args: ['FILE'],
  flags: { ...TRUST_FLAGS, 'min-age': 'string', 'allow-key-change': 'boolean', 'no-state': 'boolean', at: 'string' },
  usage: `Usage: pkglog verify-lock FILE --policy P --registry-key KEY [--min-age 90d] [--json]

Checks every artifact a lockfile pins against the log, without downloading anything: FILE is a requirements.txt in
pip's hash-checking mode (name==version --hash=sha256:…) or an npm package-lock.json (lockfileVersion 2 or 3;
integrity sha512, checked against the entry's native digest, or sha256). Each pinned digest must be logged under
that package and version; its entry's signatures, inclusion in a checkpoint that satisfies the policy and is
consistent with the saved state, key continuity and (--min-age) age are checked as by pkglog verify. One report
for the whole file. Verified artifacts are remembered in the state directory, so a second run checks only the
new checkpoint.

${TRUST_HELP}
Checks:
  --min-age DURATION     every artifact must provably be in the log for at least this long (e.g. 90d)
  --allow-key-change     a package whose earlier entries are signed by other publisher keys is a warning, not a failure
  --no-state             do not read or update the saved checkpoints and remembered artifacts
  --at TIME              evaluate ages as of TIME (unix seconds or ISO 8601) instead of now

Exit codes: 0 every artifact verified, 1 an artifact is not in the log under that package and version (or its
digest cannot be checked, or a signature or proof fails), 2 usage or a malformed lockfile, 3 the checkpoint fails
the policy, 4 fork (evidence written), 5 publisher key change, 6 too young (--min-age), 7 network. The first
failure decides; a fork always wins. See docs/proxy.md.
`,
};

export async function verifyLockCommand(p: Parsed, io: Io): Promise<number> {
  const file = p.positionals[0]!;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return fail('not_found', `cannot read ${file}: ${reason(e)}`);
  }
  let lock;
  try {
    lock = parseLockfile(text);
  } catch (e) {
    if (e instanceof PkglogError) fail(e.code, `${file}: ${e.message}`);
    throw e;
  }
  const trust = loadTrust(p)!;
  if (trust.logURL === undefined) fail('usage', '--log URL is required (or a policy with a log URL)');
  const report = await verifyLock(lock, {
    policy: trust.policy,
    registries: trust.registries,
    log: logClient(trust.logURL),
    ...(p.bool['no-state'] ? {} : { state: stateFrom(p, io) }),
    ...(p.str['min-age'] !== undefined ? { minAgeSeconds: parseDuration(p.str['min-age']) } : {}),
    strictKeys: !p.bool['allow-key-change'],
    nowMs: p.str.at !== undefined ? parseTime(p.str.at) : io.now(),
  });
  report.data.file = file;
  const s = report.data.summary as { artifacts: number; verified: number } | undefined;
  return printReport(io, p, `pkglog verify-lock ${file} (${lock.kind}${s ? `: ${s.verified} of ${s.artifacts} artifacts verified` : ''})`, report);
}
