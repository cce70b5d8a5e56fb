/**
 * C2SP tlog-witness `sign-subtree` (OPTIONAL in the spec; also offered by mirrors, tlog-mirror "sign-subtree"): the
 * request (a subtree range line `subtree <start> <end>`, the subtree hash in base64, up to 63 subtree consistency proof
 * lines, an empty line, then a reference checkpoint signed by the cosigner itself) and the answer: subtree/v1
 * cosignature lines, timestamp 0, by the cosigner's ML-DSA-44 key(s), once the checkpoint carries a valid cosignature
 * of one of its own keys and the proof shows the subtree is in that checkpoint's tree
 * (draft-ietf-plants-merkle-tree-certs-03 §4.1 subtrees, §4.4 subtree consistency proofs: core/tlog-mirror.ts).
 *
 * Statuses (via the error codes): 400 malformed or an invalid subtree / end past the checkpoint ('malformed',
 * 'out_of_range'), 404 unknown origin ('not_found'), 403 no valid cosignature of the cosigner's own keys
 * ('bad_signature'), 422 the proof does not verify ('invalid_proof').
 */
import type { Hash } from './types.ts';
import { fail, isPkglogError } from './errors.ts';
import { decodeBase64, encodeBase64, parseDecimal } from './encoding.ts';
import { parseCheckpoint, type Checkpoint } from './checkpoint.ts';
import { formatSignatureLine, parseSignedNote, verifyNote, SIG_TYPE_MLDSA44, type Signer, type Verifier } from './note.ts';
import { MAX_ADD_CHECKPOINT_BODY, MAX_PROOF_LINES } from './witness-protocol.ts';
import { isValidSubtree, verifySubtreeConsistency } from './tlog-mirror.ts';
import { cosignatureVerifier, mldsaCosignatureVerifier, type MlDsaCosigner } from './cosignature.ts';

/** Largest sign-subtree body: like add-checkpoint's (a maximal note plus a few lines of hashes). */
export const MAX_SIGN_SUBTREE_BODY = MAX_ADD_CHECKPOINT_BODY;

export interface SignSubtreeRequest {
  start: number;
  end: number;
  /** MTH(D[start:end]). */
  hash: Hash;
  /** The subtree consistency proof from [start, end) to the checkpoint. */
  proof: Hash[];
  /** The signed reference checkpoint (note bytes). */
  checkpoint: Buffer;
}

/** Parses a sign-subtree body. Throws 'malformed' (400) or 'too_large'. */
export function parseSignSubtreeRequest(body: Uint8Array): SignSubtreeRequest {
  if (!(body instanceof Uint8Array)) fail('malformed', 'request body must be bytes');
  if (body.length > MAX_SIGN_SUBTREE_BODY) fail('too_large', 'request body is too large');
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const line = (start: number): [string, number] => {
    const end = b.indexOf(0x0a, start);
    if (end < 0) fail('malformed', 'request body line is not terminated by a newline');
    return [b.toString('latin1', start, end), end + 1];
  };
  const [first, afterFirst] = line(0);
  const m = /^subtree ([^ ]+) ([^ ]+)$/.exec(first);
  if (m === null) fail('malformed', 'request body must start with "subtree <start> <end>"');
  const start = parseDecimal(m[1]!, 'subtree start');
  const end = parseDecimal(m[2]!, 'subtree end');
  const [hashLine, afterHash] = line(afterFirst);
  const hash = decodeBase64(hashLine, 'subtree hash', 32);
  const proof: Hash[] = [];
  let pos = afterHash;
  for (;;) {
    const [l, next] = line(pos);
    pos = next;
    if (l === '') break;
    if (proof.length >= MAX_PROOF_LINES) fail('malformed', `more than ${MAX_PROOF_LINES} consistency proof lines`);
    proof.push(decodeBase64(l, 'consistency proof hash', 32));
  }
  if (pos >= b.length) fail('malformed', 'request body has no checkpoint');
  return { start, end, hash, proof, checkpoint: Buffer.from(b.subarray(pos)) };
}

export function formatSignSubtreeRequest(req: SignSubtreeRequest): Buffer {
  const head = `subtree ${req.start} ${req.end}\n${encodeBase64(req.hash)}\n${req.proof.map((h) => encodeBase64(h) + '\n').join('')}\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), req.checkpoint]);
}

export interface SignSubtreeCosigner {
  /** Is the checkpoint's origin one this cosigner serves (else 404)? */
  knownOrigin(origin: string): boolean;
  /** Verifiers of the cosigner's own keys: the checkpoint must carry a valid cosignature by one of them (else 403). */
  own: Verifier[];
  /** What signs the subtree: the cosigner's ML-DSA-44 key(s) (subtree/v1 is the cosignature format with subtrees). */
  subtreeSigners: MlDsaCosigner[];
}

/** The sign-subtree view of a cosigner's signers (Ed25519 cosignature/v1 and ML-DSA-44): its own verifiers and its subtree signers. */
export function subtreeCosigner(signers: Signer[], knownOrigin: (origin: string) => boolean): SignSubtreeCosigner {
  return {
    knownOrigin,
    own: signers.map((s) => (s.type === SIG_TYPE_MLDSA44 ? mldsaCosignatureVerifier(s.name, s.publicKey) : cosignatureVerifier(s.name, s.publicKey))),
    subtreeSigners: signers.filter((s): s is MlDsaCosigner => s.type === SIG_TYPE_MLDSA44 && typeof (s as MlDsaCosigner).signSubtree === 'function'),
  };
}

/**
 * Answers a sign-subtree request: the subtree/v1 cosignature lines (timestamp 0) by every subtree signer, in order.
 * 'not_found' also when the cosigner has no subtree signer (it cannot cosign subtrees).
 */
export function answerSignSubtree(body: Uint8Array, cosigner: SignSubtreeCosigner): { checkpoint: Checkpoint; lines: string } {
  if (cosigner.subtreeSigners.length === 0) fail('not_found', 'sign-subtree needs an ML-DSA-44 (subtree/v1) key, and this cosigner has none');
  const req = parseSignSubtreeRequest(body);
  const note = parseSignedNote(req.checkpoint);
  const cp = parseCheckpoint(note.text);
  if (!isValidSubtree(req.start, req.end)) fail('out_of_range', `[${req.start}, ${req.end}) is not a valid subtree`);
  if (req.end > cp.treeSize) fail('out_of_range', `subtree end ${req.end} is past the checkpoint size ${cp.treeSize}`);
  if (!cosigner.knownOrigin(cp.origin)) fail('not_found', `unknown log origin ${JSON.stringify(cp.origin)}`);
  try {
    verifyNote(req.checkpoint, cosigner.own);
  } catch (e) {
    if (isPkglogError(e, 'bad_signature') || isPkglogError(e, 'unknown_key')) fail('bad_signature', `the checkpoint carries no valid cosignature of this cosigner: ${e.message}`);
    throw e;
  }
  verifySubtreeConsistency(req.start, req.end, cp.treeSize, req.proof, req.hash, cp.rootHash);
  const subtree = { origin: cp.origin, start: req.start, end: req.end, hash: req.hash, timestamp: 0 };
  const lines = cosigner.subtreeSigners.map((s) => formatSignatureLine({ name: s.name, keyId: s.keyId, signature: s.signSubtree(subtree) })).join('');
  return { checkpoint: cp, lines };
}
