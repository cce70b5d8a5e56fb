/** `pkglog history ECOSYSTEM/NAME`: the proven complete history of a package from the log's verifiable index. */
import { fail, isPkglogError } from '../core/errors.ts';
import { encodeBase64 } from '../core/encoding.ts';
import type { IndexQuery } from '../core/index-keys.ts';
import type { CommandSpec, Io, Parsed } from '../runtime/cli.ts';
import { TRUST_FLAGS, TRUST_HELP, loadTrust, stateFrom, logClient, printReport } from './cli-common.ts';
import { EXIT, Report } from './report.ts';
import { isoSeconds, type RegistryKeys } from './trust.ts';
import { checkPublisherSignature, checkRegistrySignature, entrySummary } from './artifact.ts';
import { fetchHistory, keyChanges, describeQuery, historyFailureCode, type IndexHistory, type HistoryOptions } from './index-history.ts';
import { LogClient } from './http.ts';

export const HISTORY_SPEC: CommandSpec = {
  args: ['ECOSYSTEM/NAME'],
  flags: { ...TRUST_FLAGS, version: 'string', 'index-log': 'string', 'strict-keys': 'boolean', 'no-state': 'boolean' },
  usage: `Usage: pkglog history ECOSYSTEM/NAME [--version V] --policy P [options]

Prints the complete, ordered list of the package's entries in the log (or of one version), proven against the
log's verifiable index (docs/index-format.md): every page of the proof bundle from GET /v1/index/..., the index's
output-log checkpoint meeting the policy (its own "log" line and the witness quorum), the revision's inclusion,
the map proof that the list is the whole list, and every entry's inclusion in the log. The output-log checkpoint
must be consistent with the one saved before (never an older one), and the revision's log tree head a prefix of
the log's own verified checkpoint. Publisher key changes along the history are highlighted.

  --version V            only this version's entries
  --index-log URL        the output log's tlog-tiles URL (default: the policy's URL for its origin, else
                         <log>/v1/index/log)
  --strict-keys          fail (exit 5) when the history has a publisher key change
  --no-state             do not read or update the saved checkpoints
${TRUST_HELP}
The policy needs a "log" line for the log and one for the index's output log (its origin, e.g. <origin>/index).

Exit codes: 0 proven, 1 a bundle or an entry does not verify, 2 usage, 3 a checkpoint fails the policy, 4 the index or
the log contradicts a saved checkpoint (rollback or fork), 5 key change (--strict-keys), 7 network, or the log has
no index. See docs/client.md.
`,
};

function parsePackage(s: string): { ecosystem: string; name: string } {
  const m = /^([a-z0-9-]{1,32})\/(\S+)$/.exec(s);
  if (m === null) fail('usage', `${s}: expected ECOSYSTEM/NAME, e.g. pypi/requests`);
  return { ecosystem: m[1]!, name: m[2]! };
}

/** Checks the signatures inside each entry (the index proves where entries are, not that they are well signed). */
function checkEntrySignatures(h: IndexHistory, registries: RegistryKeys, report: Report): void {
  let checked = 0;
  const unknown = new Set<string>();
  for (const e of h.entries) {
    try {
      checkPublisherSignature(e.entry);
      if (registries.has(e.entry.registryName)) checkRegistrySignature(e.entry, registries);
      else unknown.add(e.entry.registryName);
      checked++;
    } catch (err) {
      if (!isPkglogError(err)) throw err;
      report.fail('signatures', `entry ${e.index}: ${err.message}`, EXIT.VERIFY_FAILED);
      return;
    }
  }
  report.pass('signatures', `${checked} publisher signature(s) verify`);
  if (unknown.size) report.warn('registries', `countersignatures not checked for registries without a key: ${[...unknown].join(', ')} (add --registry-key)`);
}

export async function historyCommand(p: Parsed, io: Io): Promise<number> {
  const pkg = parsePackage(p.positionals[0]!);
  const query: IndexQuery = p.str.version === undefined ? { kind: 'package', ...pkg } : { kind: 'version', ...pkg, version: p.str.version };
  const trust = loadTrust(p)!;
  if (trust.logURL === undefined) fail('usage', '--log URL is required (or a policy with a log URL)');
  const log = logClient(trust.logURL);
  const opts: HistoryOptions = {
    log,
    policy: trust.policy,
    nowMs: io.now(),
    ...(p.bool['no-state'] ? {} : { state: stateFrom(p, io) }),
    ...(p.str['index-log'] !== undefined ? { outputLog: new LogClient(p.str['index-log']) } : {}),
  };
  const report = new Report();
  const what = describeQuery(query);
  let h: IndexHistory;
  try {
    h = await fetchHistory(opts, query);
  } catch (e) {
    if (!isPkglogError(e)) throw e;
    if (typeof e.details?.evidence === 'string' && opts.state !== undefined) {
      const path = opts.state.saveEvidence(String(e.details.origin), e.details.evidence, io.now());
      report.data.evidence = path;
      report.fail('index', `${e.message}; evidence written to ${path}`, historyFailureCode(e));
    } else {
      report.fail('index', `the history of ${what} is not proven: ${e.message}`, historyFailureCode(e));
    }
    return printReport(io, p, `pkglog history ${what}`, report);
  }
  const changes = keyChanges(h.entries);
  report.data.query = what;
  report.data.index = {
    origin: h.outputCheckpoint.origin,
    treeSize: h.outputCheckpoint.treeSize,
    rootHash: encodeBase64(h.outputCheckpoint.rootHash),
    cosigners: h.cosigners.map((c) => ({ witness: c.witness, time: isoSeconds(c.timestamp) })),
    revision: h.revision.revision,
    logSize: h.revision.inputTreeSize,
  };
  report.data.count = h.count;
  report.data.entries = h.entries.map((e) => entrySummary(e.entry, e.index));
  report.data.keyChanges = changes;
  const cosigned = h.cosigners.map((c) => c.witness).join(', ') || 'no witness (policy quorum: none)';
  report.pass('index', `index ${h.outputCheckpoint.origin} size ${h.outputCheckpoint.treeSize} meets the policy (cosigned by ${cosigned}); revision ${h.revision.revision} covers log entries [0, ${h.revision.inputTreeSize})`);
  for (const n of h.notes) report.pass('consistency', n);
  report.pass('complete', h.present ? `the ${h.count} entr${h.count === 1 ? 'y' : 'ies'} below are proven to be all of ${what} among the first ${h.revision.inputTreeSize} log entries` : `proven: no entry of ${what} among the first ${h.revision.inputTreeSize} log entries`);
  checkEntrySignatures(h, trust.registries, report);
  if (changes.length > 0) {
    const text = changes.map((c) => `entry ${c.index} (version ${c.version}) is signed by ${c.key}, the entry before by ${c.previous}`).join('\n');
    if (p.bool['strict-keys']) report.fail('key-continuity', `PUBLISHER KEY CHANGE:\n${text}`, EXIT.KEY_CHANGE);
    else report.warn('key-continuity', `PUBLISHER KEY CHANGE:\n${text}\n(use --strict-keys to fail)`);
  } else if (h.count > 0) {
    report.pass('key-continuity', `every entry is signed by the same publisher key ${encodeBase64(h.entries[0]!.entry.publisherKey)}`);
  }
  if (!p.bool.json) io.stdout(formatHistory(h));
  return printReport(io, p, `pkglog history ${what}`, report);
}

/** The history as a table; a line where the publisher key changes is marked. */
export function formatHistory(h: IndexHistory): string {
  const lines = [`${describeQuery(h.query)}: ${h.count} entr${h.count === 1 ? 'y' : 'ies'} (index revision ${h.revision.revision}, log size ${h.revision.inputTreeSize})`];
  let prev: Buffer | undefined;
  for (const e of h.entries) {
    const k = e.entry.publisherKey;
    const changed = prev !== undefined && !prev.equals(k);
    lines.push(
      `${changed ? '>> KEY CHANGE ' : '   '}entry ${e.index}  ${e.entry.version}  ${e.entry.filename}  sha256 ${e.entry.sha256.slice(0, 16)}…  key ${encodeBase64(k)}  ${new Date(e.entry.integratedTime).toISOString()}`,
    );
    prev = k;
  }
  return lines.join('\n') + '\n';
}
