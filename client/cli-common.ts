/** Shared pieces of the client commands: trust roots from flags, state, reports, times. */
import { fail } from '../core/errors.ts';
import type { Policy } from '../core/policy.ts';
import { required, type Io, type Parsed, type CommandSpec } from '../runtime/cli.ts';
import { basename } from 'node:path';
import { LogClient } from './http.ts';
import { normalizeBaseURL } from '../runtime/http.ts';
import { originHash } from '../core/hash.ts';
import { StateStore } from './state.ts';
import { formatHuman, type Report } from './report.ts';
import { loadPolicyFile, policyForLogKey, logURLFromPolicy, loadRegistryKeys, type RegistryKeys } from './trust.ts';

export const TRUST_FLAGS: CommandSpec['flags'] = {
  policy: 'string',
  'log-key': 'string',
  log: 'string',
  mirror: 'string',
  'registry-key': 'list',
  'state-dir': 'string',
  json: 'boolean',
};

export const TRUST_HELP = `Trust:
  --policy FILE          C2SP tlog-policy: log key (and URL), witnesses, quorum
  --log-key VKEY         trust this log key with no witnesses (instead of --policy)
  --log URL              the log's base URL (default: the policy's log URL)
  --mirror URL           read the log from this C2SP tlog-mirror instead (its copy at URL/<hex SHA-256 of the
                         origin>/: checkpoint with the mirror's cosignature, tiles); no lookup service there, so
                         verify needs --index N or --proof FILE
  --registry-key KEY     a trusted registry: its vkey (name = registry name), NAME=<base64 key>,
                         or a file of such lines; repeatable
  --state-dir DIR        client state (default $PKGLOG_STATE_DIR, $XDG_STATE_HOME/pkglog, ~/.local/state/pkglog)
  --json                 machine-readable output`;

export interface Trust {
  policy: Policy;
  logURL?: string;
  registries: RegistryKeys;
}

export function loadTrust(p: Parsed, needPolicy = true): Trust | undefined {
  const registries = loadRegistryKeys(p.list['registry-key'] ?? []);
  let policy: Policy | undefined;
  if (p.str.policy !== undefined) policy = loadPolicyFile(p.str.policy);
  else if (p.str['log-key'] !== undefined) policy = policyForLogKey(p.str['log-key'], p.str.log);
  if (policy === undefined) {
    if (needPolicy) fail('usage', 'a trust root is needed: --policy FILE or --log-key VKEY');
    return undefined;
  }
  const logURL = p.str.mirror !== undefined ? mirrorLogURL(p.str.mirror, policy) : p.str.log ?? logURLFromPolicy(policy);
  return { policy, registries, ...(logURL !== undefined ? { logURL } : {}) };
}

/**
 * The monitoring URL of the policy's log on a C2SP tlog-mirror: `<mirror>/<hex SHA-256 of the origin>` (the origin is
 * the log key's name). The policy must name exactly one log.
 */
export function mirrorLogURL(mirror: string, policy: Policy): string {
  if (logNames(policy) !== 1) fail('usage', '--mirror needs a policy (or --log-key) naming exactly one log: its origin names the copy on the mirror');
  return `${normalizeBaseURL(mirror)}/${originHash(policy.logs[0]!.verifier.name)}`;
}

const logNames = (policy: Policy): number => new Set(policy.logs.map((l) => l.verifier.name)).size;

export function stateFrom(p: Parsed, io: Io): StateStore {
  return new StateStore(p.str['state-dir'] ?? (io.env.PKGLOG_STATE_DIR || undefined));
}

export function logClient(url: string): LogClient {
  return new LogClient(url);
}

/** Prints a report (human or JSON) and returns its exit code. */
export function printReport(io: Io, p: Parsed, title: string, report: Report): number {
  if (p.bool.json) io.stdout(JSON.stringify(report.toJSON(), null, 2) + '\n');
  else io.stdout(formatHuman(title, report));
  return report.exitCode;
}

/** Parses a time given as unix seconds or an ISO 8601 date into milliseconds. */
export function parseTime(s: string): number {
  if (/^\d{1,12}$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t)) fail('usage', `bad time ${JSON.stringify(s)} (use unix seconds or ISO 8601)`);
  return t;
}

/** The artifact that `file` is, from --ecosystem, --name, --version and --filename (default: the file's own name). */
export function artifactFromFlags(p: Parsed, file: string): { ecosystem: string; name: string; version: string; filename: string } {
  return { ecosystem: required(p, 'ecosystem'), name: required(p, 'name'), version: required(p, 'version'), filename: p.str.filename ?? basename(file) };
}
