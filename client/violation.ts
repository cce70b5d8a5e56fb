/**
 * Evidence that the log broke a promise about its entries (pkglog-violation-evidence/v1, documented in docs/client.md):
 * a log-signed checkpoint plus the offending entries with inclusion proofs in it, so anyone holding the log's key
 * can check the claim offline:
 *   - "conflict": two entries for the same file (ecosystem, name, version, filename) with different artifacts;
 *   - "bad-signature": an entry whose publisher signature (or a given registry's countersignature) does not verify;
 *   - "malformed-entry": an entry that is not a valid pkglog leaf.
 * Inclusion proofs are computed from the (already verified) hash tiles, so this works against a tile mirror too.
 */
import { verifyInclusion } from '../core/merkle.ts';
import { inclusionProofFromTiles, leafFromTiles, type TileSource } from '../runtime/tiles.ts';
import { leafHash } from '../core/hash.ts';
import { encodeBase64, decodeBase64 } from '../core/encoding.ts';
import { decodeLeaf, fileKey, publisherMessage, registryMessage } from '../core/entry.ts';
import { ed25519Verify } from '../core/ed25519.ts';
import { verifyNote, type Verifier } from '../core/note.ts';
import { parseCheckpoint, type Checkpoint } from '../core/checkpoint.ts';
import { fail } from '../core/errors.ts';
import type { Hash } from '../core/types.ts';

export const VIOLATION_FORMAT = 'pkglog-violation-evidence/v1';

export type ViolationKind = 'conflict' | 'bad-signature' | 'malformed-entry';

export interface ViolationEvidence {
  format: typeof VIOLATION_FORMAT;
  kind: ViolationKind;
  origin: string;
  message: string;
  checkpoint: string;
  entries: Array<{ index: number; leaf: string; proof: string[] }>;
}

export async function buildViolation(
  source: TileSource,
  signedCheckpoint: string,
  checkpoint: Checkpoint,
  kind: ViolationKind,
  indices: number[],
  message: string,
): Promise<ViolationEvidence> {
  const entries = [];
  for (const index of indices) {
    const leaf = await leafFromTiles(source, index, checkpoint.treeSize);
    const proof = await inclusionProofFromTiles(source, index, checkpoint.treeSize, checkpoint.rootHash);
    verifyInclusion(index, checkpoint.treeSize, leafHash(leaf), proof, checkpoint.rootHash);
    entries.push({ index, leaf: encodeBase64(leaf), proof: proof.map(encodeBase64) });
  }
  return { format: VIOLATION_FORMAT, kind, origin: checkpoint.origin, message, checkpoint: signedCheckpoint, entries };
}

export function formatViolation(v: ViolationEvidence): string {
  return JSON.stringify(v, null, 2) + '\n';
}

/**
 * Checks violation evidence offline: the checkpoint is signed by `logKey`, every entry is included in it, and the
 * claim holds. Returns a description; throws PkglogError when the evidence does not prove anything.
 */
export function verifyViolation(text: string, logKey: Verifier, registries: Map<string, Buffer> = new Map()): string {
  let v: ViolationEvidence;
  try {
    v = JSON.parse(text) as ViolationEvidence;
  } catch {
    return fail('malformed', 'violation evidence is not JSON');
  }
  if (v.format !== VIOLATION_FORMAT || !Array.isArray(v.entries)) fail('malformed', `not ${VIOLATION_FORMAT}`);
  const cp = parseCheckpoint(verifyNote(v.checkpoint, [logKey]).note.text);
  const leaves = v.entries.map((e) => {
    const leaf = decodeBase64(e.leaf, 'leaf');
    verifyInclusion(e.index, cp.treeSize, leafHash(leaf), e.proof.map((p) => decodeBase64(p, 'proof hash', 32)), cp.rootHash);
    return leaf;
  });
  switch (v.kind) {
    case 'conflict': {
      if (leaves.length !== 2 || v.entries[0]!.index === v.entries[1]!.index) fail('malformed', 'a conflict needs two different entries');
      const [a, b] = leaves.map((l) => decodeLeaf(l));
      if (fileKey(a!) !== fileKey(b!)) fail('invalid_proof', 'the two entries are for different files');
      if (a!.sha256 === b!.sha256) fail('invalid_proof', 'the two entries log the same artifact');
      return `log ${cp.origin} (size ${cp.treeSize}) holds two artifacts for ${a!.ecosystem}/${a!.name} ${a!.version} ${a!.filename}: entries ${v.entries[0]!.index} (${a!.sha256}) and ${v.entries[1]!.index} (${b!.sha256})`;
    }
    case 'bad-signature': {
      const e = decodeLeaf(leaves[0]!);
      if (!ed25519Verify(e.publisherKey, publisherMessage(e), e.publisherSignature)) return `entry ${v.entries[0]!.index} has a publisher signature that does not verify`;
      const rk = registries.get(e.registryName);
      if (rk !== undefined && !ed25519Verify(rk, registryMessage(e, e.publisherKey, e.publisherSignature), e.registrySignature)) {
        return `entry ${v.entries[0]!.index} has a registry countersignature by ${e.registryName} that does not verify`;
      }
      return fail('invalid_proof', 'the entry\'s signatures verify (with the registry keys given)');
    }
    case 'malformed-entry': {
      try {
        decodeLeaf(leaves[0]!);
      } catch (e) {
        return `entry ${v.entries[0]!.index} is not a valid pkglog leaf: ${(e as Error).message}`;
      }
      return fail('invalid_proof', 'the entry decodes fine');
    }
    default:
      return fail('malformed', `unknown violation kind ${JSON.stringify(v.kind)}`);
  }
}
