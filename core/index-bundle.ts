/**
 * The index proof bundle (what `GET /v1/index/...` serves; docs/index-format.md, "Proof bundle"): canonical JSON,
 * at most MAX_INDEX_BUNDLE_SIZE bytes, keys in this order and no whitespace:
 *
 *   {"format":"pkglog/index-bundle/v1","key":<hex map key>,"checkpoint":<signed output-log checkpoint>,
 *    "revision":{"leaf":<base64 revision leaf>,"proof":[<base64 hash>…]},"map":<base64 map proof>,
 *    "list":{"count":N,"page":P,"proof":[<base64 hash>…]},
 *    "entries":[{"index":I,"leaf":<base64 input-log leaf>,"proof":[<base64 hash>…]}…],"next":<cursor>|null}
 *
 * verifyIndexBundle checks it all against the caller's trust (policy for the output log, the input log's origin,
 * what the caller already holds) and its own query, and returns the proven page of the key's history, or its
 * proven absence.
 */
import type { Hash } from './types.ts';
import { fail, isPkglogError } from './errors.ts';
import { decodeBase64, decodeHex, decodeUtf8, encodeBase64 } from './encoding.ts';
import { leafHash, HASH_SIZE } from './hash.ts';
import { verifyInclusion, MAX_PROOF_LENGTH } from './merkle.ts';
import { parseCheckpoint, type Checkpoint } from './checkpoint.ts';
import { parseSignedNote } from './note.ts';
import { verifyCheckpointWithPolicy, type Policy, type PolicyVerifiedCheckpoint } from './policy.ts';
import { decodeLeaf, MAX_LEAF_SIZE, type Entry } from './entry.ts';
import { entryHasIndexKey, indexKey, type IndexQuery } from './index-keys.ts';
import { INDEX_PAGE_SIZE, indexPageCount, verifyIndexPage } from './index-list.ts';
import { decodeMapProof, encodeMapProof, verifyMapAbsence, verifyMapInclusion, MAX_MAP_PROOF_SIZE, type MapProof } from './mpt.ts';
import { MAX_INDEX_REVISION_SIZE, parseIndexRevision, type IndexRevision } from './index-revision.ts';

export const INDEX_BUNDLE_FORMAT = 'pkglog/index-bundle/v1';
/** Largest bundle accepted (bytes): a full page of 64 largest leaves with 63-hash proofs fits with room to spare. */
export const MAX_INDEX_BUNDLE_SIZE = 512 * 1024;
/** Largest signed checkpoint inside a bundle (bytes). */
export const MAX_BUNDLE_CHECKPOINT_SIZE = 64 * 1024;

/** A page of one key's history at one revision: "R.P" in a URL (?cursor=R.P). */
export interface IndexCursor {
  revision: number;
  page: number;
}

export interface IndexBundleEntry {
  index: number;
  leaf: Buffer;
  proof: Hash[];
}

export interface IndexBundle {
  key: Hash;
  /** The output log's signed checkpoint, verbatim (with cosignatures). */
  checkpoint: string;
  revisionLeaf: Buffer;
  /** Inclusion of the revision leaf (index = its revision) in the output checkpoint's tree. */
  revisionProof: Hash[];
  mapProof: MapProof;
  /** The key's list: its length, the page served, the page's inclusion proof in the list tree (count 0: absent). */
  count: number;
  page: number;
  listProof: Hash[];
  entries: IndexBundleEntry[];
  next: IndexCursor | null;
}

const DECIMAL = /^(?:0|[1-9][0-9]{0,15})$/;

export function formatIndexCursor(c: IndexCursor): string {
  for (const v of [c.revision, c.page]) if (!Number.isSafeInteger(v) || v < 0) fail('malformed', 'cursor fields must be non-negative integers');
  return `${c.revision}.${c.page}`;
}

/** Strict parse of "R.P" (canonical decimals). Throws 'malformed'. */
export function parseIndexCursor(s: string): IndexCursor {
  if (typeof s !== 'string' || s.length > 33) fail('malformed', 'cursor must be "<revision>.<page>"');
  const parts = s.split('.');
  if (parts.length !== 2 || !parts.every((p) => DECIMAL.test(p))) fail('malformed', 'cursor must be "<revision>.<page>"');
  const [revision, page] = parts.map(Number) as [number, number];
  if (!Number.isSafeInteger(revision) || !Number.isSafeInteger(page)) fail('malformed', 'cursor is out of range');
  return { revision, page };
}

const hashes = (hs: Hash[]): string[] => hs.map((h) => encodeBase64(h));

/** The canonical JSON text of a bundle. */
export function formatIndexBundle(b: IndexBundle): string {
  const checkHashes = (hs: Hash[], what: string) => {
    if (!Array.isArray(hs) || hs.length > MAX_PROOF_LENGTH || hs.some((h) => !(h instanceof Uint8Array) || h.length !== HASH_SIZE)) {
      fail('malformed', `${what} must be at most ${MAX_PROOF_LENGTH} 32-byte hashes`);
    }
  };
  checkHashes(b.revisionProof, 'revision proof');
  checkHashes(b.listProof, 'list proof');
  for (const e of b.entries) checkHashes(e.proof, 'entry proof');
  if (!(b.key instanceof Uint8Array) || b.key.length !== 32) fail('malformed', 'bundle key must be 32 bytes');
  if (typeof b.checkpoint !== 'string') fail('malformed', 'bundle checkpoint must be a string');
  if (b.entries.length > INDEX_PAGE_SIZE) fail('malformed', `a bundle holds at most ${INDEX_PAGE_SIZE} entries`);
  for (const v of [b.count, b.page, ...b.entries.map((e) => e.index)]) {
    if (!Number.isSafeInteger(v) || v < 0) fail('malformed', 'bundle counts and indices must be non-negative integers');
  }
  return JSON.stringify({
    format: INDEX_BUNDLE_FORMAT,
    key: Buffer.from(b.key).toString('hex'),
    checkpoint: b.checkpoint,
    revision: { leaf: encodeBase64(b.revisionLeaf), proof: hashes(b.revisionProof) },
    map: encodeBase64(encodeMapProof(b.mapProof)),
    list: { count: b.count, page: b.page, proof: hashes(b.listProof) },
    entries: b.entries.map((e) => ({ index: e.index, leaf: encodeBase64(e.leaf), proof: hashes(e.proof) })),
    next: b.next === null ? null : formatIndexCursor(b.next),
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fields(o: unknown, names: string[], what: string): Record<string, unknown> {
  if (!isObject(o)) return fail('malformed', `${what} must be a JSON object`);
  const keys = Object.keys(o);
  if (keys.length !== names.length || !names.every((n) => keys.includes(n))) fail('malformed', `${what} must have exactly the fields ${names.join(', ')}`);
  return o;
}

function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail('malformed', `${what} must be a non-negative integer`);
  return v;
}

function str(v: unknown, what: string, max: number): string {
  if (typeof v !== 'string') fail('malformed', `${what} must be a string`);
  if (v.length > max) fail('too_large', `${what} is too large`);
  return v;
}

function hashList(v: unknown, what: string): Hash[] {
  if (!Array.isArray(v)) fail('malformed', `${what} must be a list of base64 hashes`);
  if (v.length > MAX_PROOF_LENGTH) fail('malformed', `${what} has more than ${MAX_PROOF_LENGTH} hashes`);
  return v.map((h) => decodeBase64(str(h, what, 44), `${what} hash`, HASH_SIZE));
}

/** Strict parse: within the size cap, exactly the fields above, canonical (formatIndexBundle gives back the same bytes). */
export function parseIndexBundle(input: Uint8Array | string): IndexBundle {
  let text: string;
  if (typeof input === 'string') {
    if (input.length > MAX_INDEX_BUNDLE_SIZE || Buffer.byteLength(input, 'utf8') > MAX_INDEX_BUNDLE_SIZE) fail('too_large', 'index bundle is too large');
    text = input;
  } else if (input instanceof Uint8Array) {
    if (input.length > MAX_INDEX_BUNDLE_SIZE) fail('too_large', 'index bundle is too large');
    text = decodeUtf8(input, 'index bundle');
  } else {
    return fail('malformed', 'index bundle must be bytes or a string');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return fail('malformed', 'index bundle is not JSON');
  }
  const o = fields(json, ['format', 'key', 'checkpoint', 'revision', 'map', 'list', 'entries', 'next'], 'index bundle');
  if (o.format !== INDEX_BUNDLE_FORMAT) fail('malformed', `index bundle format must be "${INDEX_BUNDLE_FORMAT}"`);
  const rev = fields(o.revision, ['leaf', 'proof'], 'bundle revision');
  const list = fields(o.list, ['count', 'page', 'proof'], 'bundle list');
  if (!Array.isArray(o.entries)) fail('malformed', 'bundle entries must be a list');
  if (o.entries.length > INDEX_PAGE_SIZE) fail('malformed', `a bundle holds at most ${INDEX_PAGE_SIZE} entries`);
  const leafB64 = Math.ceil(MAX_LEAF_SIZE / 3) * 4;
  const bundle: IndexBundle = {
    key: decodeHex(str(o.key, 'bundle key', 64), 'bundle key', 32),
    checkpoint: str(o.checkpoint, 'bundle checkpoint', MAX_BUNDLE_CHECKPOINT_SIZE),
    revisionLeaf: decodeBase64(str(rev.leaf, 'revision leaf', Math.ceil(MAX_INDEX_REVISION_SIZE / 3) * 4), 'revision leaf'),
    revisionProof: hashList(rev.proof, 'revision proof'),
    mapProof: decodeMapProof(decodeBase64(str(o.map, 'map proof', Math.ceil(MAX_MAP_PROOF_SIZE / 3) * 4), 'map proof')),
    count: int(list.count, 'list count'),
    page: int(list.page, 'list page'),
    listProof: hashList(list.proof, 'list proof'),
    entries: o.entries.map((e, i) => {
      const f = fields(e, ['index', 'leaf', 'proof'], `bundle entry ${i}`);
      return { index: int(f.index, `entry ${i} index`), leaf: decodeBase64(str(f.leaf, `entry ${i} leaf`, leafB64), `entry ${i} leaf`), proof: hashList(f.proof, `entry ${i} proof`) };
    }),
    next: o.next === null ? null : parseIndexCursor(str(o.next, 'next cursor', 33)),
  };
  if (formatIndexBundle(bundle) !== text) fail('malformed', 'index bundle is not canonical JSON');
  return bundle;
}

/** What the caller trusts and already holds. */
export interface IndexTrust {
  /** The output log (a `log` line for its origin) and the witnesses and quorum its checkpoint must meet. */
  policy: Policy;
  /** The input log's origin: the index must be of this log. */
  inputOrigin: string;
  /** The output-log size the caller already verified: a smaller checkpoint is a rollback ('inconsistent'). */
  knownOutputSize?: number;
  /** The input-log size the caller already verified: a revision of a smaller input log is a rollback ('inconsistent'). */
  knownInputSize?: number;
  /** Cosignatures older than this (seconds since the epoch) do not count towards the quorum. */
  notBefore?: number;
  /**
   * A bundle is self-contained, so by default every signature line of its checkpoint must be by the output log or a
   * policy witness (a flipped byte anywhere is caught). Set to ignore other lines, as signed-note verifiers do.
   */
  allowUnknownSignatures?: boolean;
}

/** The caller's question: the query, and the page (from a `next` cursor; default the first page of the latest revision). */
export interface IndexBundleRequest {
  query: IndexQuery;
  cursor?: IndexCursor;
}

export interface VerifiedIndexEntry {
  index: number;
  leaf: Buffer;
  entry: Entry;
}

export interface VerifiedIndexBundle {
  key: Hash;
  /** The verified output-log checkpoint. */
  checkpoint: Checkpoint;
  cosigners: PolicyVerifiedCheckpoint['cosigners'];
  revision: IndexRevision;
  /** False: proven that no entry of input-log size revision.inputTreeSize maps to the key. */
  present: boolean;
  /** The length of the key's list (0 when absent). */
  count: number;
  page: number;
  /** List positions [page·64, page·64 + entries.length) of the key's history, each proven in the input log. */
  entries: VerifiedIndexEntry[];
  next: IndexCursor | null;
}

function describe(q: IndexQuery): string {
  switch (q.kind) {
    case 'package':
      return `package ${q.ecosystem}/${q.name}`;
    case 'version':
      return `version ${q.ecosystem}/${q.name}/${q.version}`;
    case 'file':
      return `file ${q.ecosystem}/${q.name}/${q.version}/${q.filename}`;
    case 'sha256':
      return `sha256 ${q.sha256}`;
    case 'publisher':
      return `publisher key ${encodeBase64(q.publisherKey)}`;
  }
}

/** Every signature line must be by the output log or a policy witness (IndexTrust.allowUnknownSignatures). */
function checkAllSignaturesKnown(policy: Policy, checkpoint: string, origin: string): void {
  const known = new Set([
    ...policy.logs.filter((l) => l.verifier.name === origin).map((l) => `${l.verifier.name}\n${l.verifier.keyId.toString('hex')}`),
    ...policy.witnesses.map((w) => `${w.verifier.name}\n${w.verifier.keyId.toString('hex')}`),
  ]);
  for (const sig of parseSignedNote(checkpoint).signatures) {
    if (!known.has(`${sig.name}\n${sig.keyId.toString('hex')}`)) {
      fail('unknown_key', `index checkpoint carries a signature by "${sig.name}", which the policy does not know`);
    }
  }
}

/** An inclusion proof failure (also an index outside the tree) as 'invalid_proof' with `what` in the message. */
function inclusion(what: string, index: number, size: number, leaf: Hash, proof: Hash[], root: Hash): void {
  try {
    verifyInclusion(index, size, leaf, proof, root);
  } catch (e) {
    if (isPkglogError(e)) fail('invalid_proof', `${what}: ${e.message}`);
    throw e;
  }
}

/**
 * Verifies a bundle for `request` against `trust`: the output checkpoint (policy and quorum, not older than known),
 * the revision leaf's inclusion in it (the latest revision unless the cursor names one), the revision being of the
 * trusted input log and not older than known, the map proof for the query's own key (presence with the list value,
 * or absence), the page of the list, and each entry's inclusion in the input log at the revision's checkpoint and
 * its mapping to the key. Throws PkglogError ('malformed', 'too_large', 'bad_signature', 'unknown_key',
 * 'quorum_not_met', 'invalid_proof', 'inconsistent') with a message saying what is wrong.
 */
export function verifyIndexBundle(input: Uint8Array | string | IndexBundle, trust: IndexTrust, request: IndexBundleRequest): VerifiedIndexBundle {
  const b = typeof input === 'string' || input instanceof Uint8Array ? parseIndexBundle(input) : input;
  const key = indexKey(request.query);
  const what = describe(request.query);
  if (!b.key.equals(key)) fail('invalid_proof', `the bundle is for another key (${b.key.toString('hex')}), not the ${what} (${key.toString('hex')})`);

  // The output log's checkpoint.
  const verified = verifyCheckpointWithPolicy(trust.policy, b.checkpoint, trust.notBefore);
  const checkpoint = parseCheckpoint(verified.text);
  if (trust.allowUnknownSignatures !== true) checkAllSignaturesKnown(trust.policy, b.checkpoint, checkpoint.origin);
  if (trust.knownOutputSize !== undefined && checkpoint.treeSize < trust.knownOutputSize) {
    fail('inconsistent', `the index checkpoint (size ${checkpoint.treeSize}) is older than the one already verified (size ${trust.knownOutputSize})`);
  }

  // The revision: in the output log, at the requested position (default: the latest).
  const revision = parseIndexRevision(b.revisionLeaf);
  const wanted = request.cursor?.revision ?? checkpoint.treeSize - 1;
  if (revision.revision !== wanted) {
    fail('invalid_proof', request.cursor === undefined
      ? `the bundle's revision ${revision.revision} is not the latest revision ${wanted} of the index checkpoint`
      : `the bundle's revision ${revision.revision} is not the requested revision ${wanted}`);
  }
  inclusion('revision leaf', revision.revision, checkpoint.treeSize, leafHash(b.revisionLeaf), b.revisionProof, checkpoint.rootHash);
  if (revision.inputOrigin !== trust.inputOrigin) fail('invalid_proof', `the index revision is of log "${revision.inputOrigin}", not "${trust.inputOrigin}"`);
  if (trust.knownInputSize !== undefined && revision.inputTreeSize < trust.knownInputSize) {
    fail('inconsistent', `the index revision covers input-log size ${revision.inputTreeSize}, older than the size ${trust.knownInputSize} already verified`);
  }

  // The map proof and the page of the list.
  const page = request.cursor?.page ?? 0;
  if (b.page !== page) fail('invalid_proof', `the bundle serves page ${b.page}, not the requested page ${page}`);
  let present: boolean;
  if (b.mapProof.kind === 'absent') {
    if (b.count !== 0 || b.page !== 0 || b.listProof.length !== 0 || b.entries.length !== 0 || b.next !== null) {
      fail('invalid_proof', 'an absence bundle must have count 0, page 0 and no entries');
    }
    verifyMapAbsence(revision.mapRoot, key, b.mapProof);
    present = false;
  } else {
    if (b.count === 0) fail('invalid_proof', 'a presence proof with an empty list');
    const value = verifyIndexPage(b.count, b.page, b.entries.map((e) => e.index), b.listProof);
    verifyMapInclusion(revision.mapRoot, key, value, b.mapProof);
    present = true;
  }
  const pages = indexPageCount(b.count);
  const next = b.page + 1 < pages ? { revision: revision.revision, page: b.page + 1 } : null;
  if ((next === null) !== (b.next === null) || (next !== null && (b.next!.revision !== next.revision || b.next!.page !== next.page))) {
    fail('invalid_proof', `the bundle's next cursor does not follow page ${b.page} of ${pages}`);
  }

  // The entries: in the input log at the revision's checkpoint, and mapping to the key.
  const entries = b.entries.map((e): VerifiedIndexEntry => {
    inclusion(`entry ${e.index}`, e.index, revision.inputTreeSize, leafHash(e.leaf), e.proof, revision.inputRootHash);
    const entry = decodeLeaf(e.leaf);
    if (!entryHasIndexKey(entry, key)) fail('invalid_proof', `entry ${e.index} (${entry.ecosystem}/${entry.name}/${entry.version}/${entry.filename}) is not of the ${what}`);
    return { index: e.index, leaf: e.leaf, entry };
  });
  return { key, checkpoint, cosigners: verified.cosigners, revision, present, count: b.count, page: b.page, entries, next };
}
