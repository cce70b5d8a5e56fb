/** Shared pieces of the client commands: I/O, trust roots from flags, state, and error → exit code mapping. */
import { PkglogError, exitCode, fail, isPkglogError } from '../core/errors.ts';
import type { Policy } from '../core/policy.ts';
import { LogClient } from './http.ts';
import { StateStore } from './state.ts';
import { EXIT, formatHuman, type Report } from './report.ts';
import { loadPolicyFile, policyForLogKey, logURLFromPolicy, loadRegistryKeys, type RegistryKeys } from './trust.ts';
import type { Parsed, CommandSpec } from './cli-args.ts';

export interface IO {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  now: () => number;
}

export const defaultIO: IO = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
  now: () => Date.now(),
};

export const TRUST_FLAGS: CommandSpec['flags'] = {
  policy: 'string',
  'log-key': 'string',
  log: 'string',
  'registry-key': 'list',
  'state-dir': 'string',
  json: 'boolean',
};

export const TRUST_HELP = `Trust:
  --policy FILE          C2SP tlog-policy: log key (and URL), witnesses, quorum
  --log-key VKEY         trust this log key with no witnesses (instead of --policy)
  --log URL              the log's base URL (default: the policy's log URL)
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
  const logURL = p.str.log ?? logURLFromPolicy(policy);
  return { policy, registries, ...(logURL !== undefined ? { logURL } : {}) };
}

export function stateFrom(p: Parsed, io: IO): StateStore {
  return new StateStore(p.str['state-dir'] ?? (io.env.PKGLOG_STATE_DIR || undefined));
}

export function logClient(url: string): LogClient {
  return new LogClient(url);
}

/** Prints a report (human or JSON) and returns its exit code. */
export function printReport(io: IO, p: Parsed, title: string, report: Report): number {
  if (p.bool.json) io.out(JSON.stringify(report.toJSON(), null, 2) + '\n');
  else io.out(formatHuman(title, report));
  return report.exitCode;
}

/** Maps an exception escaping a command to a message and exit code. */
export function handleError(io: IO, command: string, e: unknown, json: boolean): number {
  const code: number = exitCode(e);
  let message = e instanceof Error ? e.message : String(e);
  if (isPkglogError(e, 'usage')) message = `${message} (see pkglog ${command} --help)`;
  else if (!(e instanceof PkglogError)) message = `internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
  if (json) io.out(JSON.stringify({ ok: false, exitCode: code, error: message }) + '\n');
  else io.err(`pkglog ${command}: ${message}\n`);
  return code;
}
