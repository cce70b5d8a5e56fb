/**
 * Fork evidence (pkglog-fork-evidence/v1): two checkpoints signed by the same log key that cannot both be true.
 * Documented in docs/evidence-format.md. Pure: no I/O.
 *
 * - Same tree size, different root hashes: the two signed checkpoints are the whole proof.
 * - Different sizes m < n: an "evidence proof" — RFC 6962 SUBPROOF(m, D[0:n], false), i.e. the RFC 9162 consistency
 *   proof from m to n, with the hash of the first m leaves prepended when m is a power of two — that hashes to the
 *   larger checkpoint's root yet implies a root for size m different from the smaller checkpoint's root. Running
 *   RFC 9162 §2.1.4.2 on it recomputes both roots; by collision resistance the larger tree has exactly one prefix of
 *   size m, so the smaller checkpoint is not a prefix of the larger one.
 */
import type { Hash } from './types.ts';
import type { Verifier } from './note.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { ProofRange } from './merkle.ts';
import { fail, isPkglogError } from './errors.ts';
import { parseSignedNote, verifyNote, MAX_NOTE_SIZE } from './note.ts';
import { parseCheckpoint } from './checkpoint.ts';
import { planConsistencyProof, rootsFromConsistencyPath } from './merkle.ts';
import { decodeBase64, encodeBase64, decodeUtf8 } from './encoding.ts';

export const EVIDENCE_FORMAT = 'pkglog-fork-evidence/v1';
/** Longest evidence proof: a consistency proof (≤ 2·53 hashes for 2^53 leaves) plus the prepended subtree hash. */
export const MAX_EVIDENCE_PROOF = 128;
export const MAX_EVIDENCE_SIZE = 2 * MAX_NOTE_SIZE + 64 * 1024;

export interface Evidence {
  origin: string;
  /** Two signed checkpoint notes, verbatim; the smaller tree size first (for equal sizes, the smaller root first). */
  checkpoints: [string, string];
  /** The evidence proof from the first size to the second (empty when the sizes are equal). */
  proof: Hash[];
}

export interface EvidenceSummary {
  origin: string;
  kind: 'same-size' | 'inconsistent';
  sizes: [number, number];
  roots: [Hash, Hash];
  /** For 'inconsistent': the root of the first size implied by the larger tree. */
  impliedRoot?: Hash;
  description: string;
}

function isPowerOfTwo(n: number): boolean {
  while (n > 1 && n % 2 === 0) n /= 2;
  return n === 1;
}

/** The ranges (in the larger tree) whose hashes form the evidence proof from `smallerSize` to `largerSize` (0 < m < n). */
export function planEvidenceProof(smallerSize: number, largerSize: number): ProofRange[] {
  if (!(smallerSize > 0 && smallerSize < largerSize)) fail('out_of_range', `no evidence proof from ${smallerSize} to ${largerSize}`);
  const ranges = planConsistencyProof(smallerSize, largerSize);
  if (!isPowerOfTwo(smallerSize)) return ranges;
  return [{ start: 0, end: smallerSize, nodes: [{ level: Math.log2(smallerSize), index: 0 }] }, ...ranges];
}

/**
 * RFC 9162 §2.1.4.2 steps 3–7 on an evidence proof (which always carries the old subtree hash): the roots of
 * sizes m and n it implies. Throws 'invalid_proof' when the proof has the wrong shape.
 */
export function rootsFromEvidenceProof(m: number, n: number, proof: Hash[]): { oldRoot: Hash; newRoot: Hash } {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || !(m > 0 && m < n)) fail('out_of_range', `bad sizes ${m}, ${n}`);
  if (!Array.isArray(proof) || proof.length === 0 || proof.length > MAX_EVIDENCE_PROOF) fail('invalid_proof', 'bad evidence proof length');
  for (const h of proof) if (!(h instanceof Uint8Array) || h.length !== 32) fail('invalid_proof', 'proof value is not a 32-byte hash');
  return rootsFromConsistencyPath(m, n, proof);
}

/**
 * What an evidence proof from `smaller` to `larger` shows: 'consistent' (it implies smaller's root), 'fork' (it hashes
 * to larger's root but implies another root for smaller's size), or 'unproven' (it does not hash to larger's root,
 * e.g. tiles that do not match the larger checkpoint).
 */
export function classifyEvidenceProof(smaller: Checkpoint, larger: Checkpoint, proof: Hash[]): 'consistent' | 'fork' | 'unproven' {
  let roots: { oldRoot: Hash; newRoot: Hash };
  try {
    roots = rootsFromEvidenceProof(smaller.treeSize, larger.treeSize, proof);
  } catch (e) {
    if (isPkglogError(e, 'invalid_proof')) return 'unproven';
    throw e;
  }
  if (!roots.newRoot.equals(larger.rootHash)) return 'unproven';
  return roots.oldRoot.equals(smaller.rootHash) ? 'consistent' : 'fork';
}

function checkpointOf(note: string): Checkpoint {
  return parseCheckpoint(parseSignedNote(note).text);
}

/** Orders two signed checkpoints canonically (smaller size first; equal sizes: smaller root first). */
function ordered(a: string, b: string): [string, string] {
  const ca = checkpointOf(a);
  const cb = checkpointOf(b);
  if (ca.treeSize !== cb.treeSize) return ca.treeSize < cb.treeSize ? [a, b] : [b, a];
  return Buffer.compare(ca.rootHash, cb.rootHash) <= 0 ? [a, b] : [b, a];
}

/**
 * Builds evidence from two signed checkpoints of one origin (any order) and, for different sizes, the evidence
 * proof from the smaller to the larger size (hashes of planEvidenceProof's ranges in the larger tree).
 * Does not verify signatures; verifyEvidence does.
 */
export function buildEvidence(a: string, b: string, proof: Hash[] = []): Evidence {
  const [first, second] = ordered(a, b);
  const c1 = checkpointOf(first);
  const c2 = checkpointOf(second);
  if (c1.origin !== c2.origin) fail('malformed', 'evidence checkpoints have different origins');
  return { origin: c1.origin, checkpoints: [first, second], proof: proof.map((h) => Buffer.from(h)) };
}

/** Canonical JSON text (fixed key order, two-space indent, final newline). */
export function formatEvidence(e: Evidence): string {
  if (ordered(e.checkpoints[0], e.checkpoints[1])[0] !== e.checkpoints[0]) fail('malformed', 'evidence checkpoints are not in canonical order');
  const obj = {
    format: EVIDENCE_FORMAT,
    origin: e.origin,
    checkpoints: [e.checkpoints[0], e.checkpoints[1]],
    proof: e.proof.map((h) => encodeBase64(h)),
  };
  return JSON.stringify(obj, null, 2) + '\n';
}

/** Strict parse: exactly the keys format, origin, checkpoints (two signed notes), proof (base64 hashes). Throws 'malformed'. */
export function parseEvidence(input: string | Uint8Array): Evidence {
  const text = typeof input === 'string' ? input : decodeUtf8(input, 'evidence');
  if (text.length > MAX_EVIDENCE_SIZE) fail('too_large', 'evidence is too large');
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return fail('malformed', 'evidence is not JSON');
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail('malformed', 'evidence must be a JSON object');
  const o = obj as Record<string, unknown>;
  const keys = Object.keys(o).sort().join(',');
  if (keys !== 'checkpoints,format,origin,proof') fail('malformed', 'evidence must have exactly the keys format, origin, checkpoints, proof');
  if (o.format !== EVIDENCE_FORMAT) fail('malformed', `evidence format must be ${JSON.stringify(EVIDENCE_FORMAT)}`);
  if (typeof o.origin !== 'string' || o.origin === '') fail('malformed', 'evidence origin must be a non-empty string');
  const cps = o.checkpoints;
  if (!Array.isArray(cps) || cps.length !== 2 || !cps.every((c) => typeof c === 'string')) {
    fail('malformed', 'evidence checkpoints must be two signed notes');
  }
  const proof = o.proof;
  if (!Array.isArray(proof) || proof.length > MAX_EVIDENCE_PROOF) fail('malformed', 'evidence proof must be a list of at most 128 hashes');
  const checkpoints = cps as [string, string];
  const c1 = checkpointOf(checkpoints[0]);
  const c2 = checkpointOf(checkpoints[1]);
  if (c1.origin !== o.origin || c2.origin !== o.origin) fail('malformed', 'evidence checkpoints must both have the evidence origin');
  if (ordered(checkpoints[0], checkpoints[1])[0] !== checkpoints[0]) fail('malformed', 'evidence checkpoints are not in canonical order');
  return {
    origin: o.origin,
    checkpoints,
    proof: proof.map((h, i) => decodeBase64(h as string, `evidence proof hash ${i}`, 32)),
  };
}

function hex(h: Hash): string {
  return h.toString('hex');
}

/**
 * Verifies that both checkpoints are validly signed by `logVerifier` (the log's note key) and provably contradict
 * each other. Returns a summary; throws PkglogError ('malformed', 'bad_signature', 'unknown_key', 'invalid_proof').
 */
export function verifyEvidence(evidence: Evidence, logVerifier: Verifier): EvidenceSummary {
  const cps = evidence.checkpoints.map((note, i) => {
    let text: string;
    try {
      text = verifyNote(note, [logVerifier]).note.text;
    } catch (e) {
      if (isPkglogError(e)) fail(e.code, `checkpoint ${i + 1}: ${e.message}`);
      throw e;
    }
    const c = parseCheckpoint(text);
    if (c.origin !== evidence.origin) fail('malformed', `checkpoint ${i + 1} has origin ${JSON.stringify(c.origin)}, not the evidence origin`);
    return c;
  }) as [Checkpoint, Checkpoint];
  const [a, b] = cps;
  if (a.treeSize > b.treeSize) fail('malformed', 'evidence checkpoints are not in order of tree size');
  const base = { origin: evidence.origin, sizes: [a.treeSize, b.treeSize] as [number, number], roots: [a.rootHash, b.rootHash] as [Hash, Hash] };
  if (a.treeSize === b.treeSize) {
    if (evidence.proof.length !== 0) fail('malformed', 'evidence for equal tree sizes must have an empty proof');
    if (a.rootHash.equals(b.rootHash)) fail('invalid_proof', `not a fork: both checkpoints have size ${a.treeSize} and the same root`);
    return {
      ...base,
      kind: 'same-size',
      description: `log ${evidence.origin} signed two different roots for tree size ${a.treeSize}: ${hex(a.rootHash)} and ${hex(b.rootHash)}`,
    };
  }
  if (a.treeSize === 0) fail('invalid_proof', 'a checkpoint of size 0 is a prefix of every tree');
  const { oldRoot, newRoot } = rootsFromEvidenceProof(a.treeSize, b.treeSize, evidence.proof);
  if (!newRoot.equals(b.rootHash)) fail('invalid_proof', `evidence proof does not hash to the root of tree size ${b.treeSize}`);
  if (oldRoot.equals(a.rootHash)) fail('invalid_proof', `not a fork: tree size ${a.treeSize} is a prefix of tree size ${b.treeSize}`);
  return {
    ...base,
    kind: 'inconsistent',
    impliedRoot: oldRoot,
    description:
      `log ${evidence.origin} signed tree size ${a.treeSize} with root ${hex(a.rootHash)}, but its signed tree size ` +
      `${b.treeSize} contains a size-${a.treeSize} prefix with root ${hex(oldRoot)}`,
  };
}
