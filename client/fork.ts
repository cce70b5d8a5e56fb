/**
 * Turning "these two signed checkpoints do not agree" into fork evidence in the witnesses' format
 * (core/evidence.ts, pkglog-fork-evidence/v1), fetching the hashes the evidence proof needs.
 */
import type { Hash } from '../core/types.ts';
import type { Checkpoint } from '../core/checkpoint.ts';
import { buildEvidence, formatEvidence, planEvidenceProof, classifyEvidenceProof } from '../core/evidence.ts';
import { proofFromTiles, readHashes } from '../runtime/tiles.ts';
import type { LogClient } from './http.ts';

export interface ForkFinding {
  origin: string;
  /** What contradicts what, in words. */
  message: string;
  /** pkglog-fork-evidence/v1 JSON text, or undefined when the log would not give hashes that prove the fork. */
  evidence?: string;
}

interface Signed {
  signed: string;
  checkpoint: Checkpoint;
}

/** Evidence for two checkpoints of the same size with different roots: the two notes suffice. */
export function sameSizeFork(a: Signed, b: Signed): ForkFinding {
  return {
    origin: a.checkpoint.origin,
    message: `the log signed two different roots for tree size ${a.checkpoint.treeSize}`,
    evidence: formatEvidence(buildEvidence(a.signed, b.signed)),
  };
}

/**
 * Two checkpoints of different sizes whose consistency could not be proven (`consistencyProof` is what the log
 * answered, possibly nothing). Builds an evidence proof from the log's consistency proof or, failing that, from
 * its tiles; the evidence is kept only if it really proves the fork.
 */
export async function differentSizeFork(a: Signed, b: Signed, consistencyProof: Hash[] | undefined, log: LogClient | undefined): Promise<ForkFinding> {
  const [small, large] = a.checkpoint.treeSize < b.checkpoint.treeSize ? [a, b] : [b, a];
  const m = small.checkpoint.treeSize;
  const n = large.checkpoint.treeSize;
  const base = {
    origin: small.checkpoint.origin,
    message: `the log's checkpoint of size ${m} is not a prefix of its checkpoint of size ${n} (no valid consistency proof)`,
  };
  const candidates: Array<() => Promise<Hash[]>> = [];
  if (consistencyProof !== undefined && consistencyProof.length > 0) {
    candidates.push(async () => consistencyProof);
    // For a power-of-two m the evidence proof starts with the hash of the first m leaves, which a consistency proof omits.
    if (log !== undefined) candidates.push(async () => [await subtreeHash(log, m, large.checkpoint), ...consistencyProof]);
  }
  if (log !== undefined) candidates.push(() => proofFromTiles(log, planEvidenceProof(m, n), n, large.checkpoint.rootHash));
  for (const c of candidates) {
    let proof: Hash[];
    try {
      proof = await c();
    } catch {
      continue;
    }
    try {
      if (classifyEvidenceProof(small.checkpoint, large.checkpoint, proof) === 'fork') {
        return { ...base, evidence: formatEvidence(buildEvidence(small.signed, large.signed, proof)) };
      }
    } catch {
      // shape mismatch: try the next source
    }
  }
  return base;
}

/** The hash of the first m leaves (a power of two), from tiles authenticated against the root of the larger tree. */
async function subtreeHash(log: LogClient, m: number, large: Checkpoint): Promise<Hash> {
  const first = planEvidenceProof(m, large.treeSize)[0]!;
  if (first.start !== 0 || first.end !== m || first.nodes.length !== 1) throw new Error('not a power of two');
  return (await readHashes(log, first.nodes, large.treeSize, large.rootHash))[0]!;
}
