/**
 * Index mismatch evidence (pkglog-index-evidence/v1, docs/evidence-format.md): proof that an index's output log
 * signed a revision whose map root is not the map of the input-log entries it names. Self-contained: the output
 * log's signed checkpoint, the revision leaf with its inclusion proof, and every input-log leaf [0, inputTreeSize)
 * of that revision. Anyone with the output log's key checks it: the leaves hash to the revision's input root (so
 * they are exactly the entries the revision is about), and the map rebuilt from them with the map function
 * (docs/index-format.md) has another root than the signed revision's. Pure: no I/O.
 */
import type { Hash } from './types.ts';
import type { Verifier } from './note.ts';
import { fail } from './errors.ts';
import { decodeBase64, decodeUtf8, encodeBase64 } from './encoding.ts';
import { leafHash, nodeHash, EMPTY_ROOT, HASH_SIZE } from './hash.ts';
import { verifyInclusion, MAX_PROOF_LENGTH } from './merkle.ts';
import { parseSignedNote, verifyNote, MAX_NOTE_SIZE } from './note.ts';
import { parseCheckpoint, type Checkpoint } from './checkpoint.ts';
import { decodeLeaf, MAX_LEAF_SIZE, type Entry } from './entry.ts';
import { parseIndexRevision, MAX_INDEX_REVISION_SIZE, type IndexRevision } from './index-revision.ts';
import { MemoryIndex } from './index-memory.ts';

export const INDEX_EVIDENCE_FORMAT = 'pkglog-index-evidence/v1';
/** Largest evidence file accepted (bytes): about 140,000 entries of largest size, far more of ordinary ones. */
export const MAX_INDEX_EVIDENCE_SIZE = 128 * 1024 * 1024;

export interface IndexEvidence {
  /** The output log's origin. */
  origin: string;
  /** The output log's signed checkpoint, verbatim. */
  checkpoint: string;
  revisionLeaf: Buffer;
  /** Inclusion of the revision leaf (at the index it names) in the checkpoint's tree. */
  revisionProof: Hash[];
  /** The input-log leaves [0, revision.inputTreeSize), in order. */
  leaves: Buffer[];
}

export interface IndexEvidenceSummary {
  origin: string;
  revision: IndexRevision;
  /** The map root of the leaves (what the revision should have said). */
  rebuiltMapRoot: Hash;
  description: string;
}

/** An RFC 6962 root computed leaf by leaf (a compact range from 0): O(log n) memory. */
export class CompactRange {
  private readonly sizes: number[] = [];
  private readonly hashes: Hash[] = [];
  private n = 0;

  get size(): number {
    return this.n;
  }

  /** Appends a leaf by its leaf hash. */
  push(hash: Hash): void {
    let h = hash;
    let s = 1;
    while (this.sizes.length > 0 && this.sizes[this.sizes.length - 1] === s) {
      this.sizes.pop();
      h = nodeHash(this.hashes.pop()!, h);
      s *= 2;
    }
    this.sizes.push(s);
    this.hashes.push(h);
    this.n++;
  }

  /** The root of the leaves so far. */
  root(): Hash {
    if (this.hashes.length === 0) return EMPTY_ROOT;
    let h = this.hashes[this.hashes.length - 1]!;
    for (let i = this.hashes.length - 2; i >= 0; i--) h = nodeHash(this.hashes[i]!, h);
    return h;
  }
}

/** Canonical JSON text (fixed key order, one leaf per line, final newline). */
export function formatIndexEvidence(e: IndexEvidence): string {
  const obj = {
    format: INDEX_EVIDENCE_FORMAT,
    origin: e.origin,
    checkpoint: e.checkpoint,
    revision: { leaf: encodeBase64(e.revisionLeaf), proof: e.revisionProof.map((h) => encodeBase64(h)) },
    leaves: e.leaves.map((l) => encodeBase64(l)),
  };
  return JSON.stringify(obj, null, 2) + '\n';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function exactly(o: unknown, keys: string[], what: string): Record<string, unknown> {
  if (!isObject(o)) return fail('malformed', `${what} must be a JSON object`);
  if (Object.keys(o).sort().join(',') !== [...keys].sort().join(',')) fail('malformed', `${what} must have exactly the keys ${keys.join(', ')}`);
  return o;
}

/** Strict parse. Throws 'malformed' / 'too_large'. */
export function parseIndexEvidence(input: string | Uint8Array): IndexEvidence {
  if (input.length > MAX_INDEX_EVIDENCE_SIZE) fail('too_large', 'index evidence is too large');
  const text = typeof input === 'string' ? input : decodeUtf8(input, 'index evidence');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return fail('malformed', 'index evidence is not JSON');
  }
  const o = exactly(json, ['format', 'origin', 'checkpoint', 'revision', 'leaves'], 'index evidence');
  if (o.format !== INDEX_EVIDENCE_FORMAT) fail('malformed', `index evidence format must be ${JSON.stringify(INDEX_EVIDENCE_FORMAT)}`);
  if (typeof o.origin !== 'string' || o.origin === '') fail('malformed', 'index evidence origin must be a non-empty string');
  if (typeof o.checkpoint !== 'string' || o.checkpoint.length > MAX_NOTE_SIZE) fail('malformed', 'index evidence checkpoint must be a signed note');
  const rev = exactly(o.revision, ['leaf', 'proof'], 'index evidence revision');
  if (typeof rev.leaf !== 'string' || rev.leaf.length > Math.ceil(MAX_INDEX_REVISION_SIZE / 3) * 4) fail('malformed', 'revision leaf must be base64');
  if (!Array.isArray(rev.proof) || rev.proof.length > MAX_PROOF_LENGTH) fail('malformed', `revision proof must be at most ${MAX_PROOF_LENGTH} hashes`);
  if (!Array.isArray(o.leaves)) fail('malformed', 'index evidence leaves must be a list');
  const maxLeaf = Math.ceil(MAX_LEAF_SIZE / 3) * 4;
  const e: IndexEvidence = {
    origin: o.origin,
    checkpoint: o.checkpoint,
    revisionLeaf: decodeBase64(rev.leaf, 'revision leaf'),
    revisionProof: rev.proof.map((h, i) => decodeBase64(String(h), `revision proof[${i}]`, HASH_SIZE)),
    leaves: o.leaves.map((l, i) => {
      if (typeof l !== 'string' || l.length > maxLeaf) fail('malformed', `leaf ${i} must be base64 of at most ${MAX_LEAF_SIZE} bytes`);
      return decodeBase64(l, `leaf ${i}`);
    }),
  };
  const cp = parseCheckpoint(parseSignedNote(e.checkpoint).text);
  if (cp.origin !== e.origin) fail('malformed', 'the index evidence checkpoint is not of its origin');
  return e;
}

/** The map root of entries [0, n) (one batch: the map root does not depend on how entries were batched). */
export function rebuildMapRoot(entries: Entry[]): Hash {
  const index = new MemoryIndex({ keepRevisions: 1 });
  return index.appendBatch(entries).mapRoot;
}

/**
 * Verifies index evidence against the output log's key: the checkpoint is signed by it, the revision leaf is
 * included at its own index, the leaves are exactly the revision's input entries (their root is the revision's input
 * root, their count its input size), and their map root differs from the revision's. Throws 'bad_signature' /
 * 'unknown_key' (checkpoint), 'invalid_proof' (inclusion, leaves, or "not a mismatch"), 'malformed'.
 */
export function verifyIndexEvidence(e: IndexEvidence, outputLog: Verifier): IndexEvidenceSummary {
  if (outputLog.name !== e.origin) fail('unknown_key', `the key is for "${outputLog.name}", the evidence is about the index log "${e.origin}"`);
  const verified = verifyNote(e.checkpoint, [outputLog]);
  const cp: Checkpoint = parseCheckpoint(verified.note.text);
  const revision = parseIndexRevision(e.revisionLeaf);
  verifyInclusion(revision.revision, cp.treeSize, leafHash(e.revisionLeaf), e.revisionProof, cp.rootHash);
  if (e.leaves.length !== revision.inputTreeSize) fail('invalid_proof', `the evidence has ${e.leaves.length} leaves, the revision covers ${revision.inputTreeSize}`);
  const range = new CompactRange();
  const entries: Entry[] = [];
  for (const [i, leaf] of e.leaves.entries()) {
    range.push(leafHash(leaf));
    try {
      entries.push(decodeLeaf(leaf));
    } catch {
      // A leaf the log accepted but that is not an entry yields no keys; the map function skips nothing, so the
      // evidence cannot decide what the map should hold.
      fail('invalid_proof', `leaf ${i} is not a pkglog entry`);
    }
  }
  if (!range.root().equals(revision.inputRootHash)) fail('invalid_proof', `the leaves do not hash to the revision's input root (size ${revision.inputTreeSize})`);
  const rebuilt = rebuildMapRoot(entries);
  if (rebuilt.equals(revision.mapRoot)) fail('invalid_proof', `not a mismatch: the map of the ${entries.length} entries has the revision's root`);
  return {
    origin: e.origin,
    revision,
    rebuiltMapRoot: rebuilt,
    description: `index log ${e.origin} signed revision ${revision.revision} (checkpoint size ${cp.treeSize}) with map root ${revision.mapRoot.toString('hex')} for the first ${revision.inputTreeSize} entries of ${revision.inputOrigin}; the map of those entries has root ${rebuilt.toString('hex')}`,
  };
}
