/**
 * What the explorer checks in the browser, with pkglog's own core code (bundled): a tlog-proof (the entry, its
 * inclusion proof, the signed checkpoint) against a tlog-policy (log key, witnesses, quorum). Pure and synchronous, so
 * the same function is tested in Node and runs in the page.
 */
import { decodeLeaf, type Entry } from '../core/entry.ts';
import { encodeBase64 } from '../core/encoding.ts';
import { fail } from '../core/errors.ts';
import { leafHash } from '../core/hash.ts';
import { verifyInclusion } from '../core/merkle.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import { parseTlogProof } from '../core/tlog-proof.ts';
import { verifyCheckpointWithPolicy, type Policy } from '../core/policy.ts';

export interface VerifiedCheckpointView {
  origin: string;
  treeSize: number;
  rootHash: string;
  /** The key name of the log key that signed it. */
  logKey: string;
  /** Witnesses whose cosignature verified: policy name and cosignature time (seconds since the epoch). */
  cosigners: Array<{ name: string; timestamp: number }>;
}

export interface VerifiedEntryView {
  index: number;
  entry: Entry;
  leafHash: string;
  inclusionProof: string[];
  checkpoint: VerifiedCheckpointView;
}

/** Verifies a signed checkpoint against the policy (log signature and witness quorum); throws a PkglogError. */
export function verifyCheckpointView(signedCheckpoint: string, policy: Policy): VerifiedCheckpointView {
  const v = verifyCheckpointWithPolicy(policy, signedCheckpoint);
  const c = parseCheckpoint(v.text);
  return {
    origin: c.origin,
    treeSize: c.treeSize,
    rootHash: encodeBase64(c.rootHash),
    logKey: v.log.verifier.name,
    cosigners: v.cosigners.map((x) => ({ name: x.witness.name, timestamp: x.timestamp })),
  };
}

/**
 * Verifies a tlog-proof whose extra data is the entry's leaf: the checkpoint per the policy, then the inclusion of
 * the leaf at its index. `expect` pins what the caller looked for (the index and/or the file's SHA-256): a proof for
 * another entry fails.
 */
export function verifyEntryProof(proofText: string, policy: Policy, expect: { index?: number; sha256?: string } = {}): VerifiedEntryView {
  const proof = parseTlogProof(proofText);
  if (proof.extra === undefined) fail('malformed', 'the proof carries no entry');
  if (expect.index !== undefined && proof.index !== expect.index) {
    fail('invalid_proof', `the proof is for entry ${proof.index}, not entry ${expect.index}`);
  }
  const entry = decodeLeaf(proof.extra);
  if (expect.sha256 !== undefined && entry.sha256 !== expect.sha256.toLowerCase()) {
    fail('invalid_proof', `the proof's entry has SHA-256 ${entry.sha256}, not ${expect.sha256}`);
  }
  const checkpoint = verifyCheckpointView(proof.checkpoint, policy);
  const hash = leafHash(proof.extra);
  verifyInclusion(proof.index, checkpoint.treeSize, hash, proof.inclusionProof, Buffer.from(checkpoint.rootHash, 'base64'));
  return { index: proof.index, entry, leafHash: encodeBase64(hash), inclusionProof: proof.inclusionProof.map(encodeBase64), checkpoint };
}

/** For each entry of a package's history (in log order), whether its publisher key differs from the entry before it. */
export function publisherKeyChanges(history: ReadonlyArray<{ publisherKey: string }>): boolean[] {
  return history.map((e, i) => i > 0 && e.publisherKey !== history[i - 1]!.publisherKey);
}
