/**
 * The client side of the verifiable package index (docs/index-format.md): fetch every page of a key's proof
 * bundle from `GET /v1/index/...`, verify each against the policy (core/index-bundle.ts verifyIndexBundle), and
 * tie what was proven to what the client already holds:
 *
 * - the output log's checkpoint must be consistent with the one saved before (client/state.ts, by CAS; a smaller
 *   one is a rollback and refused: the client never accepts an older revision than one it already holds);
 * - the revision's input-log tree head (size, root) must be consistent with the input log's own checkpoint
 *   (verified against the policy and saved like `pkglog verify` does), so the proven history is of the log the
 *   client knows, not of a tree only the index signed.
 *
 * The result is the complete, ordered list of entries with that key among the first `inputTreeSize` entries.
 */
import { fail, isPkglogError, PkglogError, ERROR_CODES, EXIT, type ExitCode } from '../core/errors.ts';
import { encodeBase64 } from '../core/encoding.ts';
import { verifyConsistency } from '../core/merkle.ts';
import { parseCheckpoint, type Checkpoint } from '../core/checkpoint.ts';
import { parseSignedNote } from '../core/note.ts';
import type { Policy, PolicyLog } from '../core/policy.ts';
import { formatVerifierKey, parseVerifierKey } from '../core/note.ts';
import type { Verifier } from '../core/note-key.ts';
import { entryHasIndexKey, indexKey, type IndexQuery } from '../core/index-keys.ts';
import {
  formatIndexCursor,
  parseIndexBundle,
  verifyIndexBundle,
  MAX_INDEX_BUNDLE_SIZE,
  type IndexCursor,
  type IndexTrust,
  type VerifiedIndexEntry,
} from '../core/index-bundle.ts';
import type { IndexRevision } from '../core/index-revision.ts';
import { LogClient } from './http.ts';
import type { StateStore } from './state.ts';
import { writeFileAtomic } from './state.ts';
import { checkAgainstSaved, type ConsistencyResult } from './consistency.ts';
import { verifyCheckpoint, CheckpointError } from './trust.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where a pkglog log serves its index's output log (tlog-tiles: checkpoint, tile/…), below the log's base URL. */
export const INDEX_LOG_PATH = 'v1/index/log';
/** The most pages one history may have (64 entries each): 1,048,576 entries. */
export const MAX_HISTORY_PAGES = 16384;

/** The URL path (below the log's base URL) of a query's bundle. */
export function indexPath(q: IndexQuery): string {
  const e = encodeURIComponent;
  switch (q.kind) {
    case 'package':
      return `v1/index/${e(q.ecosystem)}/${e(q.name)}`;
    case 'version':
      return `v1/index/${e(q.ecosystem)}/${e(q.name)}/${e(q.version)}`;
    case 'file':
      return `v1/index/${e(q.ecosystem)}/${e(q.name)}/${e(q.version)}/${e(q.filename)}`;
    case 'sha256':
      return `v1/index/sha256/${q.sha256}`;
    case 'publisher':
      // base64url without padding (43 characters), as the route takes it.
      return `v1/index/publisher/${Buffer.from(q.publisherKey).toString('base64url')}`;
  }
}

export function describeQuery(q: IndexQuery): string {
  switch (q.kind) {
    case 'package':
      return `${q.ecosystem}/${q.name}`;
    case 'version':
      return `${q.ecosystem}/${q.name} ${q.version}`;
    case 'file':
      return `${q.ecosystem}/${q.name} ${q.version} ${q.filename}`;
    case 'sha256':
      return `sha256 ${q.sha256}`;
    case 'publisher':
      return `publisher key ${encodeBase64(q.publisherKey)}`;
  }
}

export interface IndexSource {
  /** The bundle text for a query's page (`cursor` undefined: the first page of the latest revision). */
  bundle(query: IndexQuery, cursor?: IndexCursor): Promise<string>;
}

/** Reads bundles from a pkglog log's `/v1/index/...` routes (capped at the bundle size limit). */
export class HttpIndexSource implements IndexSource {
  constructor(readonly log: LogClient) {}
  async bundle(query: IndexQuery, cursor?: IndexCursor): Promise<string> {
    const q = cursor === undefined ? '' : `?cursor=${formatIndexCursor(cursor)}`;
    try {
      return (await this.log.get(`${indexPath(query)}${q}`, MAX_INDEX_BUNDLE_SIZE)).toString('utf8');
    } catch (e) {
      if (isPkglogError(e, 'not_found')) {
        if (cursor === undefined) fail('not_found', `${this.log.base} serves no package index (${indexPath(query)} answers 404)`, { noIndex: true });
        fail('not_found', `${this.log.base} no longer keeps index revision ${cursor.revision} (page ${cursor.page} answers 404)`, { revisionGone: true });
      }
      if (isPkglogError(e, 'too_large')) fail('invalid_proof', `the index answered more than ${MAX_INDEX_BUNDLE_SIZE} bytes for ${describeQuery(query)}`);
      throw e;
    }
  }
}

export interface HistoryOptions {
  /** The input log (its checkpoint, tiles for consistency proofs). */
  log: LogClient;
  /** Where the bundles come from (default: the log's /v1/index routes). */
  source?: IndexSource;
  /** The output log's tiles (default: the policy's URL for the output origin, else <log>/v1/index/log). */
  outputLog?: LogClient;
  /** The policy: a `log` line for the input log and one for the index's output log, the witnesses and quorum. */
  policy: Policy;
  state?: StateStore;
  nowMs: number;
}

export interface IndexHistory {
  query: IndexQuery;
  /** The verified output-log checkpoint of the first page (later pages may carry newer, consistent ones). */
  outputCheckpoint: Checkpoint;
  outputSigned: string;
  cosigners: Array<{ witness: string; timestamp: number }>;
  revision: IndexRevision;
  /** The input log's verified checkpoint the revision was checked against. */
  inputCheckpoint: Checkpoint;
  present: boolean;
  count: number;
  /** Every entry with the key among the first revision.inputTreeSize entries, in log order. */
  entries: VerifiedIndexEntry[];
  /** What the consistency checks found (one line each). */
  notes: string[];
}

const INDEX_INPUT_SIZE_FILE = 'index-input-size';

/** The input-log size of the newest index revision verified for this output log (0 if none). */
function savedInputSize(state: StateStore | undefined, outputOrigin: string): number {
  if (state === undefined) return 0;
  try {
    const t = readFileSync(join(state.logDir(outputOrigin, false), INDEX_INPUT_SIZE_FILE), 'utf8').trim();
    return /^(0|[1-9][0-9]{0,15})$/.test(t) ? Number(t) : 0;
  } catch {
    return 0;
  }
}

function saveInputSize(state: StateStore, outputOrigin: string, size: number): void {
  if (size <= savedInputSize(state, outputOrigin)) return;
  writeFileAtomic(join(state.logDir(outputOrigin), INDEX_INPUT_SIZE_FILE), `${size}\n`);
}

function outputOriginOf(signed: string): string {
  return parseCheckpoint(parseSignedNote(signed).text).origin;
}

function consistencyOrThrow(r: ConsistencyResult, what: string): string {
  if (r.status === 'fork') fail('inconsistent', `${what}: ${r.message}`, r.fork.evidence ? { evidence: r.fork.evidence, origin: r.fork.origin } : undefined);
  return r.message;
}

/**
 * The policy to verify an index's output log with: as given when it has a `log` line for the output origin; else,
 * when the output origin is `<input origin>/index` and its checkpoint carries a signature by the input log's own
 * key under that name (how `pkglog serve --index` signs it), the policy with that key added as the output log's
 * (same holder, same witnesses and quorum). Otherwise unchanged (the caller reports the missing key).
 */
export function indexPolicy(policy: Policy, inputOrigin: string, outputSigned: string): Policy {
  const note = parseSignedNote(outputSigned);
  const outputOrigin = parseCheckpoint(note.text).origin;
  if (policy.logs.some((l) => l.verifier.name === outputOrigin) || outputOrigin !== `${inputOrigin}/index`) return policy;
  const derived: PolicyLog[] = [];
  for (const l of policy.logs) {
    if (l.verifier.name !== inputOrigin) continue;
    let verifier: Verifier;
    try {
      verifier = parseVerifierKey(formatVerifierKey(outputOrigin, l.verifier.type, l.verifier.publicKey));
    } catch {
      continue; // a key type whose naming rules the output origin does not meet
    }
    if (note.signatures.some((sig) => sig.name === outputOrigin && sig.keyId.equals(verifier.keyId))) derived.push({ verifier });
  }
  return derived.length === 0 ? policy : { ...policy, logs: [...policy.logs, ...derived] };
}

/** The output log client for `origin`: the policy's URL for it, else the default path below the input log. */
export function outputLogFor(policy: Policy, origin: string, log: LogClient): LogClient {
  const url = policy.logs.find((l) => l.verifier.name === origin && l.url !== undefined)?.url;
  return new LogClient(url ?? `${log.base}/${INDEX_LOG_PATH}`, log.opts);
}

/**
 * Fetches and verifies the complete history of `query`: every page (all at the first page's revision), against
 * the policy, the saved output-log and input-log checkpoints. Throws PkglogError: 'not_found' (details.noIndex: the
 * log has no index), 'invalid_proof' / 'malformed' (a bundle does not verify), 'unknown_key' / 'bad_signature' /
 * 'quorum_not_met' (a checkpoint fails the policy), 'inconsistent' (a rollback or fork; details.evidence when proven),
 * 'network'.
 */
export async function fetchHistory(opts: HistoryOptions, query: IndexQuery): Promise<IndexHistory> {
  // A long history may outlive the revision its first page pinned (the log keeps the last K): start again, newer.
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetchHistoryOnce(opts, query);
    } catch (e) {
      if (!(isPkglogError(e, 'not_found') && e.details?.revisionGone === true) || attempt >= 3) throw e;
    }
  }
}

async function fetchHistoryOnce(opts: HistoryOptions, query: IndexQuery): Promise<IndexHistory> {
  const source = opts.source ?? new HttpIndexSource(opts.log);
  const notes: string[] = [];
  const key = indexKey(query);

  // 1. The first page. What the client already holds of this output log bounds what it accepts.
  const firstBundle = parseIndexBundle(await source.bundle(query));
  const firstSigned = firstBundle.checkpoint;
  const outputOrigin = outputOriginOf(firstSigned);
  const inputSigned = await opts.log.checkpoint();
  const input = verifyCheckpoint(opts.policy, inputSigned, opts.nowMs);
  if (outputOrigin === input.checkpoint.origin) fail('invalid_proof', `the index's output log has the input log's own origin "${outputOrigin}"`);
  const policy = indexPolicy(opts.policy, input.checkpoint.origin, firstSigned);
  if (!policy.logs.some((l) => l.verifier.name === outputOrigin)) {
    fail('unknown_key', `the policy has no key for the index's output log "${outputOrigin}": add a "log" line for it`, { noIndexKey: true, origin: outputOrigin });
  }
  const savedOutput = opts.state?.latest(outputOrigin);
  const trust: IndexTrust = {
    policy,
    inputOrigin: input.checkpoint.origin,
    ...(savedOutput !== undefined ? { knownOutputSize: savedOutput.checkpoint.treeSize } : {}),
    knownInputSize: savedInputSize(opts.state, outputOrigin),
  };
  const first = verifyIndexBundle(firstBundle, trust, { query });
  const outputLog = opts.outputLog ?? outputLogFor(opts.policy, outputOrigin, opts.log);

  // 2. The output checkpoint against the saved one (consistency proof from the output log's tiles; saved by CAS).
  const checkOutput = async (signed: string, checkpoint: Checkpoint) => {
    if (opts.state === undefined) return 'no state directory: the index checkpoint is not compared with earlier ones';
    return consistencyOrThrow(await checkAgainstSaved(opts.state, { signed, checkpoint }, outputLog), `the index's output log ${checkpoint.origin}`);
  };
  notes.push(`index checkpoint: ${await checkOutput(firstSigned, first.checkpoint)}`);

  // 3. The input log: its checkpoint against the saved one, and the revision's tree head against its checkpoint.
  if (opts.state !== undefined) {
    notes.push(`log checkpoint: ${consistencyOrThrow(await checkAgainstSaved(opts.state, { signed: inputSigned, checkpoint: input.checkpoint }, opts.log), `the log ${input.checkpoint.origin}`)}`);
  }
  notes.push(await checkRevisionInInput(first.revision, input.checkpoint, opts.log));

  // 4. The other pages, at the same revision.
  const entries = [...first.entries];
  let next = first.next;
  let lastSize = first.checkpoint.treeSize;
  for (let pages = 1; next !== null; pages++) {
    if (pages >= MAX_HISTORY_PAGES) fail('too_large', `the history of ${describeQuery(query)} has more than ${MAX_HISTORY_PAGES} pages`);
    const bundle = parseIndexBundle(await source.bundle(query, next));
    const page = verifyIndexBundle(bundle, { ...trust, knownOutputSize: lastSize }, { query, cursor: next });
    if (page.count !== first.count) fail('invalid_proof', `page ${page.page} says the list has ${page.count} entries, page 0 said ${first.count}`);
    if (page.checkpoint.treeSize !== lastSize || !page.checkpoint.rootHash.equals(first.checkpoint.rootHash)) {
      notes.push(`index checkpoint of page ${page.page}: ${await checkOutput(bundle.checkpoint, page.checkpoint)}`);
      lastSize = page.checkpoint.treeSize;
    }
    entries.push(...page.entries);
    next = page.next;
  }
  if (entries.length !== first.count) fail('invalid_proof', `the pages hold ${entries.length} entries, the list has ${first.count}`);
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.index <= entries[i - 1]!.index) fail('invalid_proof', `the history is not in log order at entry ${entries[i]!.index}`);
  }
  for (const e of entries) if (!entryHasIndexKey(e.entry, key)) fail('invalid_proof', `entry ${e.index} is not of ${describeQuery(query)}`);
  if (opts.state !== undefined) saveInputSize(opts.state, outputOrigin, first.revision.inputTreeSize);

  return {
    query,
    outputCheckpoint: first.checkpoint,
    outputSigned: firstSigned,
    cosigners: first.cosigners.map((c) => ({ witness: c.witness.name, timestamp: c.timestamp })),
    revision: first.revision,
    inputCheckpoint: input.checkpoint,
    present: first.present,
    count: first.count,
    entries,
    notes,
  };
}

/**
 * The revision's input tree head (size N, root R) must be a prefix of the input log's verified checkpoint (size S):
 * equal roots for N = S, a consistency proof from the log's tiles for N < S. N > S (the index is ahead of the
 * checkpoint the client has) is refused: the log publishes its checkpoint before the index covers it.
 */
async function checkRevisionInInput(rev: IndexRevision, cp: Checkpoint, log: LogClient): Promise<string> {
  const n = rev.inputTreeSize;
  const s = cp.treeSize;
  if (n > s) fail('inconsistent', `the index revision ${rev.revision} covers ${n} entries, more than the log's checkpoint (size ${s})`);
  if (n === s) {
    if (!rev.inputRootHash.equals(cp.rootHash)) fail('inconsistent', `the index revision ${rev.revision} has another root for log size ${n} than the log's checkpoint`);
    return `index revision ${rev.revision} is of the log's current checkpoint (size ${s})`;
  }
  if (n > 0) {
    const proof = await log.consistencyProof(n, s, cp.rootHash);
    try {
      verifyConsistency(n, s, rev.inputRootHash, cp.rootHash, proof);
    } catch (e) {
      if (e instanceof PkglogError && (e.code === 'invalid_proof' || e.code === 'out_of_range')) {
        fail('inconsistent', `the index revision ${rev.revision} (log size ${n}) is not a prefix of the log's checkpoint (size ${s}): ${e.message}`);
      }
      throw e;
    }
  }
  return `index revision ${rev.revision} covers log size ${n}, a proven prefix of the log's checkpoint (size ${s})`;
}

export interface KeyChange {
  /** The first entry signed by `key` after entries signed by `previous`. */
  index: number;
  version: string;
  key: string;
  previous: string;
}

/** The publisher key changes along a history: every entry whose key differs from the entry before it. */
export function keyChanges(entries: VerifiedIndexEntry[]): KeyChange[] {
  const out: KeyChange[] = [];
  for (let i = 1; i < entries.length; i++) {
    const a = entries[i - 1]!.entry.publisherKey;
    const b = entries[i]!.entry.publisherKey;
    if (!a.equals(b)) out.push({ index: entries[i]!.index, version: entries[i]!.entry.version, key: encodeBase64(b), previous: encodeBase64(a) });
  }
  return out;
}

/** The exit code for a failure while fetching and verifying an index history (bad data from a log is never "usage"). */
export function historyFailureCode(e: PkglogError): ExitCode {
  if (e instanceof CheckpointError) return EXIT.POLICY;
  if (e.code === 'not_found') return EXIT.NETWORK;
  if (e.code === 'malformed' || e.code === 'too_large' || e.code === 'out_of_range') return EXIT.VERIFY_FAILED;
  if (e.code === 'unknown_key' || e.code === 'bad_signature') return EXIT.POLICY;
  return ERROR_CODES[e.code].exit;
}
