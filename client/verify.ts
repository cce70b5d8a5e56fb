/**
 * `pkglog verify`: is this exactly the artifact everyone else got, and has it been public long enough?
 * Runs every check in order and records each in a Report; the first failure decides the exit code (a fork always wins).
 */
import { isPkglogError, PkglogError } from '../core/errors.ts';
import { rootFromInclusionProof } from '../core/merkle.ts';
import { encodeBase64 } from '../core/encoding.ts';
import type { Policy } from '../core/policy.ts';
import type { LogClient } from './http.ts';
import type { StateStore } from './state.ts';
import { EXIT, Report } from './report.ts';
import { verifyCheckpoint, CheckpointError, type RegistryKeys, type CheckpointVerdict, isoSeconds, formatDuration } from './trust.ts';
import { openProof, packageMismatches, checkPublisherSignature, checkRegistrySignature, describeEntry, entrySummary, type OpenedProof, type Wanted } from './artifact.ts';
import { checkAgainstSaved } from './consistency.ts';
import { publisherKeyHistory, describeKey, type KeyHistory } from './key-continuity.ts';
import { checkMinAge } from './min-age.ts';
import { gossipCheckpoint } from './gossip.ts';
import { entryFromJSON, keyHistoryFromEntries } from './key-continuity.ts';
import { fetchHistory, historyFailureCode, type IndexHistory } from './index-history.ts';
import type { Entry } from '../core/entry.ts';
import type { ForkFinding } from './fork.ts';

/** What checking artifacts against a log online needs (the proxy's gate, verify-lock). */
export interface LogCheckOptions {
  policy: Policy;
  registries: RegistryKeys;
  log: LogClient;
  /** Saved per-log state; undefined disables the consistency check. */
  state?: StateStore;
  minAgeSeconds?: number;
  /** Fail on a publisher key change; false only warns. */
  strictKeys: boolean;
}

export interface VerifyOptions {
  /** SHA-256 of the file, lowercase hex. */
  fileSha256: string;
  want: Wanted;
  policy: Policy;
  registries: RegistryKeys;
  /** A tlog-proof (text) for offline verification; otherwise the proof is fetched from `log`. */
  proofText?: string | Uint8Array;
  /** The entry's index in the log: its tlog-proof is built from the log's tiles (no lookup service needed). */
  index?: number;
  /** The log, for online verification, consistency proofs, key history and min-age (undefined = offline). */
  log?: LogClient;
  /** Saved per-log state; undefined disables the consistency check. */
  state?: StateStore;
  nowMs: number;
  maxAgeSeconds?: number;
  minAgeSeconds?: number;
  /** Publisher keys of other earlier entries: warn (default) or fail. */
  strictKeys?: boolean;
  /** Hand the checkpoint to the policy's witnesses and fail on a reported fork. */
  gossip?: boolean;
  /** Called with fork findings (e.g. to save the evidence); returns where it was saved. */
  onFork?: (f: ForkFinding) => string | undefined;
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Finds the proof online: the entry with this file hash for the requested package, then its tlog-proof. */
async function fetchProof(log: LogClient, sha256: string, want: Wanted, report: Report): Promise<string | undefined> {
  let found: Array<Record<string, unknown>>;
  try {
    found = await log.lookup(`sha256/${sha256}`);
  } catch (e) {
    if (!isPkglogError(e, 'not_found') || e.details?.noLookup !== true) throw e;
    report.fail('lookup', `${msg(e)}: give the entry's --index N, or --proof FILE (a tlog-proof)`, EXIT.USAGE);
    return undefined;
  }
  const entries = found.flatMap((o) => {
    try {
      return [entryFromJSON(o)];
    } catch {
      return [];
    }
  });
  const match = entries.find((e) => e.entry.sha256 === sha256 && packageMismatches(e.entry, want).length === 0);
  if (match === undefined) {
    const others = entries.filter((e) => e.entry.sha256 === sha256).map((e) => `${describeEntry(e.entry)} (entry ${e.index})`);
    const what = `${want.ecosystem}/${want.name} ${want.version}${want.filename ? ` ${want.filename}` : ''}`;
    report.fail(
      'lookup',
      others.length
        ? `the log has this file (sha256 ${sha256}) only as: ${others.join('; ')} — not as ${what}`
        : `the log has no entry with this file's sha256 ${sha256}: the file is not the one published as ${what}, or was never logged`,
      EXIT.VERIFY_FAILED,
    );
    return undefined;
  }
  report.pass('lookup', `found entry ${match.index} for the file's sha256 in ${log.base}`);
  return log.entryProof(match.index);
}

/** The package's publisher key history, or why it cannot be had (the log has no lookup service). */
async function keyHistory(log: LogClient, ecosystem: string, name: string): Promise<KeyHistory | string> {
  try {
    return await publisherKeyHistory(log, ecosystem, name);
  } catch (e) {
    if (isPkglogError(e, 'not_found') && e.details?.noLookup === true) return msg(e);
    throw e;
  }
}

/**
 * The package's proven complete history from the log's verifiable index (client/index-history.ts): records the
 * index checks and the proven absence of any other artifact for this file, and returns the key history. Undefined
 * when the log has no index, or the policy has no key for its output log (then the lookup service is used);
 * 'failed' when the index answered something that does not verify (recorded: never silently ignored).
 */
async function indexHistory(opts: VerifyOptions, log: LogClient, entry: Entry, index: number, report: Report): Promise<KeyHistory | 'failed' | undefined> {
  let h: IndexHistory;
  try {
    h = await fetchHistory({ log, policy: opts.policy, nowMs: opts.nowMs, ...(opts.state !== undefined ? { state: opts.state } : {}) }, { kind: 'package', ecosystem: entry.ecosystem, name: entry.name });
  } catch (e) {
    if (isPkglogError(e, 'not_found') && e.details?.noIndex === true) return undefined;
    if (isPkglogError(e, 'unknown_key') && e.details?.noIndexKey === true) {
      report.warn('index', `${msg(e)}; the package's history is taken from the log's lookup service instead (not proven complete)`);
      return undefined;
    }
    if (!isPkglogError(e) || e.code === 'network') throw e;
    if (typeof e.details?.evidence === 'string') {
      const path = opts.onFork?.({ origin: String(e.details.origin), message: msg(e), evidence: e.details.evidence });
      if (path) report.data.evidence = path;
    }
    report.fail('index', `the log's index does not prove the history of ${entry.ecosystem}/${entry.name}: ${msg(e)}`, historyFailureCode(e));
    return 'failed';
  }
  const n = h.revision.inputTreeSize;
  report.pass('index', `index ${h.outputCheckpoint.origin} revision ${h.revision.revision} proves the complete history of ${entry.ecosystem}/${entry.name} among the first ${n} entries: ${h.count} entr${h.count === 1 ? 'y' : 'ies'}`);
  const sameFile = h.entries.filter((e) => e.entry.version === entry.version && e.entry.filename === entry.filename);
  const others = sameFile.filter((e) => e.index !== index);
  if (others.length > 0) {
    const list = others.map((e) => `entry ${e.index} (sha256 ${e.entry.sha256})`).join('; ');
    report.fail('one-artifact', `the log has another artifact for ${describeEntry(entry)}: ${list} — the log broke the one-artifact-per-file rule`, EXIT.VERIFY_FAILED);
    return 'failed';
  }
  if (index < n && sameFile.length !== 1) {
    report.fail('one-artifact', `entry ${index} is below the index's log size ${n} but missing from the proven history of ${entry.ecosystem}/${entry.name}`, EXIT.VERIFY_FAILED);
    return 'failed';
  }
  report.pass('one-artifact', index < n
    ? `proven: no other artifact for ${describeEntry(entry)} among the first ${n} entries`
    : `proven: no artifact for ${describeEntry(entry)} among the first ${n} entries (entry ${index} is newer than the index revision)`);
  return keyHistoryFromEntries(h.entries);
}

export async function verifyArtifact(opts: VerifyOptions): Promise<Report> {
  const report = new Report();
  report.data.sha256 = opts.fileSha256;
  try {
    await run(opts, report);
  } catch (e) {
    if (isPkglogError(e, 'network')) report.fail('network', msg(e), EXIT.NETWORK);
    else if (isPkglogError(e, 'not_found')) report.fail('network', msg(e), EXIT.NETWORK);
    else if (e instanceof PkglogError) report.fail('error', msg(e), EXIT.VERIFY_FAILED);
    else throw e;
  }
  return report;
}

async function run(opts: VerifyOptions, report: Report): Promise<void> {
  const { want, log } = opts;
  // 1. The proof: given (offline) or fetched.
  let proofText = opts.proofText;
  if (proofText === undefined) {
    if (log === undefined) {
      report.fail('proof', 'no proof file and no log URL: give --proof FILE or --log URL (or a log URL in the policy)', EXIT.USAGE);
      return;
    }
    if (opts.index !== undefined) {
      proofText = await log.entryProof(opts.index);
      report.pass('lookup', `entry ${opts.index} and its inclusion proof read from the tiles of ${log.base}`);
    } else {
      proofText = await fetchProof(log, opts.fileSha256, want, report);
    }
    if (proofText === undefined) return;
  }
  let opened: OpenedProof;
  try {
    opened = openProof(proofText);
  } catch (e) {
    report.fail('proof', msg(e), EXIT.VERIFY_FAILED);
    return;
  }
  const { entry, proof, leafHash } = opened;
  report.data.entry = entrySummary(entry, proof.index);
  report.pass('proof', `tlog-proof for entry ${proof.index} parsed; logged entry: ${describeEntry(entry)}`);

  // 2. The file and the package.
  if (entry.sha256 !== opts.fileSha256) {
    report.fail('file-hash', `the file's SHA-256 is ${opts.fileSha256} but the logged artifact's is ${entry.sha256}: the file is not the logged artifact (modified, or a different file)`, EXIT.VERIFY_FAILED);
    return;
  }
  report.pass('file-hash', `file SHA-256 ${opts.fileSha256} matches the logged artifact`);
  const mismatches = packageMismatches(entry, want);
  if (mismatches.length) {
    report.fail('package', `the logged entry is for a different package: ${mismatches.join('; ')}`, EXIT.VERIFY_FAILED);
    return;
  }
  report.pass('package', `logged as ${describeEntry(entry)}`);

  // 3. Signatures inside the entry.
  try {
    checkPublisherSignature(entry);
    report.pass('publisher-signature', `publisher signature verifies (key ${encodeBase64(entry.publisherKey)})`);
    checkRegistrySignature(entry, opts.registries);
    report.pass('registry-signature', `countersigned by trusted registry ${entry.registryName}`);
  } catch (e) {
    report.fail(report.checks.some((c) => c.id === 'publisher-signature') ? 'registry-signature' : 'publisher-signature', msg(e), EXIT.VERIFY_FAILED);
    return;
  }

  // 4. The checkpoint: log signature, quorum, freshness.
  let verdict: CheckpointVerdict;
  try {
    verdict = verifyCheckpoint(opts.policy, proof.checkpoint, opts.nowMs, opts.maxAgeSeconds);
  } catch (e) {
    if (e instanceof CheckpointError) {
      report.fail(e.stage === 'log-signature' ? 'checkpoint-signature' : e.stage, e.message, EXIT.POLICY);
      return;
    }
    throw e;
  }
  const cp = verdict.checkpoint;
  report.data.checkpoint = {
    origin: cp.origin,
    treeSize: cp.treeSize,
    rootHash: encodeBase64(cp.rootHash),
    cosigners: verdict.cosigners.map((c) => ({ witness: c.witness.name, time: isoSeconds(c.timestamp) })),
  };
  const cosigned = verdict.cosigners.map((c) => `${c.witness.name} at ${isoSeconds(c.timestamp)}`).join(', ');
  report.pass('checkpoint', `checkpoint ${cp.origin} size ${cp.treeSize} is signed by the log and meets the quorum${cosigned ? ` (cosigned by ${cosigned})` : ' (policy quorum: none)'}`);
  if (opts.maxAgeSeconds !== undefined) report.pass('freshness', `a quorum of cosignatures is newer than ${formatDuration(opts.maxAgeSeconds)}`);

  // 5. Inclusion.
  try {
    const root = rootFromInclusionProof(proof.index, cp.treeSize, leafHash, proof.inclusionProof);
    if (!root.equals(cp.rootHash)) throw new PkglogError('invalid_proof', 'computed root differs');
  } catch (e) {
    report.fail('inclusion', `the inclusion proof for entry ${proof.index} does not lead to the checkpoint's root (size ${cp.treeSize}): ${msg(e)}`, EXIT.VERIFY_FAILED);
    return;
  }
  report.pass('inclusion', `entry ${proof.index} is included in the checkpoint of size ${cp.treeSize}`);
  const current = { signed: proof.checkpoint, checkpoint: cp };

  // 6. Consistency with the saved state.
  const onFork = (f: ForkFinding, id: string) => {
    const path = opts.onFork?.(f);
    if (path) report.data.evidence = path;
    report.fail(id, `FORK: ${f.message}${f.evidence ? `; evidence ${path ? `written to ${path}` : 'attached'}` : ' (the log gave no hashes proving it)'}`, EXIT.FORK, f.evidence ? { evidence: JSON.parse(f.evidence) } : undefined);
  };
  if (opts.state !== undefined) {
    const r = await checkAgainstSaved(opts.state, current, log);
    if (r.status === 'fork') return onFork(r.fork, 'consistency');
    if (r.status === 'unchecked') report.skip('consistency', r.message);
    else report.pass('consistency', r.message);
  } else {
    report.skip('consistency', 'no state directory: consistency with earlier checkpoints not checked');
  }

  // 7. Gossip.
  if (opts.gossip) {
    const g = await gossipCheckpoint(opts.policy, current, log);
    for (const w of g.results) {
      if (w.status === 'fork') return onFork(w.fork!, 'gossip');
    }
    const failed = g.results.filter((w) => w.status === 'error');
    const okNames = g.results.filter((w) => w.status === 'ok').map((w) => w.witness);
    if (g.results.length === 0) report.warn('gossip', 'no witness in the policy has a URL to gossip with');
    else if (failed.length) report.warn('gossip', `consistent per ${okNames.join(', ') || 'no witness'}; unreachable: ${failed.map((f) => `${f.witness} (${f.detail})`).join('; ')}`);
    else report.pass('gossip', `witnesses ${okNames.join(', ')} report the checkpoint consistent with what they cosigned`);
  }

  // 8. Key continuity: from the index's proven complete history when the log has an index, else from the log's
  // lookup service (a static tlog-tiles URL has neither).
  let history: KeyHistory | string | undefined;
  if (log !== undefined) {
    const proven = await indexHistory(opts, log, entry, proof.index, report);
    if (proven === 'failed') return;
    history = proven ?? (await keyHistory(log, entry.ecosystem, entry.name));
  }
  if (log === undefined) {
    report.skip('key-continuity', 'offline: earlier publisher keys of the package not checked (give --log)');
  } else if (typeof history === 'string') {
    report.skip('key-continuity', `earlier publisher keys of ${entry.ecosystem}/${entry.name} not checked: ${history} (pkglog monitor --watch follows them from the tiles)`);
  } else if (history !== undefined) {
    const mine = encodeBase64(entry.publisherKey);
    const earlier = history.keys.filter((k) => k.key !== mine && k.firstIndex < proof.index);
    report.data.publisherKeys = history.keys;
    if (earlier.length === 0) {
      report.pass('key-continuity', `no earlier entry of ${entry.ecosystem}/${entry.name} is signed by another publisher key`);
    } else {
      const list = history.keys.map((k) => `${k.key === mine ? '* ' : '  '}${describeKey(k)}`).join('\n');
      const text = `publisher key changed: earlier entries of ${entry.ecosystem}/${entry.name} are signed by ${earlier.length} other key(s); this artifact is signed by ${mine}\n${list}`;
      if (opts.strictKeys) report.fail('key-continuity', text, EXIT.KEY_CHANGE);
      else report.warn('key-continuity', `${text}\n(use --strict-keys to fail)`);
      if (opts.strictKeys) return;
    }
  }

  // 9. Minimum age.
  if (opts.minAgeSeconds !== undefined) {
    const r = await checkMinAge({ policy: opts.policy, index: proof.index, leafHash, current, log, nowMs: opts.nowMs, minAgeSeconds: opts.minAgeSeconds });
    report.data.minAge = r.witnesses;
    if (r.fork) return onFork(r.fork, 'min-age');
    if (r.ok) report.pass('min-age', r.message);
    else report.fail('min-age', r.message, EXIT.TOO_YOUNG);
  }
}
