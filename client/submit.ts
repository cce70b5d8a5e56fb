/**
 * Publishing: signer key files (keygen) and signed submissions to the log (submit), checking what the log answers.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fail, PkglogError } from '../core/errors.ts';
import { encodeBase64, decodeBase64 } from '../core/encoding.ts';
import { formatSignerKey, formatVerifierKey, parseSignerKeyFields, SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44, type SignerKeyFields } from '../core/note.ts';
import { mldsa44KeyPairFromSeed } from '../core/mldsa.ts';
import { keyPairFromSeed, ed25519Sign } from '../core/ed25519.ts';
import { publisherMessage, registryMessage, validateArtifact, formatSubmission, decodeLeaf, sameSubmission, type Artifact, type Submission } from '../core/entry.ts';
import { leafHash } from '../core/hash.ts';
import { rootFromInclusionProof } from '../core/merkle.ts';
import { parseSignedNote } from '../core/note.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import { parseTlogProof } from '../core/tlog-proof.ts';
import { readKeyFile, createKeyFile } from '../runtime/key-file.ts';
import type { LogClient } from './http.ts';

/** Key algorithms `pkglog keygen --alg` makes. */
export type KeyAlgorithm = 'ed25519' | 'ml-dsa-44';
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['ed25519', 'ml-dsa-44'];

/**
 * Creates a signer key file (mode 0600, never overwriting) and returns the verifier key. Ed25519: type 0x01, or
 * 0x04 (cosignature/v1) with `cosigner`; ML-DSA-44: type 0x06 (subtree/v1 cosignatures, for logs and witnesses).
 * File formats: docs/keys.md.
 */
export function keygen(name: string, out: string, cosigner = false, alg: KeyAlgorithm = 'ed25519'): { vkey: string; path: string } {
  if (!KEY_ALGORITHMS.includes(alg)) fail('usage', `unknown key algorithm ${JSON.stringify(alg)} (use ${KEY_ALGORITHMS.join(' or ')})`);
  const type = alg === 'ml-dsa-44' ? SIG_TYPE_MLDSA44 : cosigner ? SIG_TYPE_COSIGNATURE_V1 : SIG_TYPE_ED25519;
  const seed = randomBytes(32);
  const publicKey = type === SIG_TYPE_MLDSA44 ? mldsa44KeyPairFromSeed(seed).publicKey : keyPairFromSeed(seed).publicKey;
  const skey = formatSignerKey(name, type, seed, publicKey);
  const vkey = formatVerifierKey(name, type, publicKey);
  if (!createKeyFile(out, skey + '\n')) fail('conflict', `${out} already exists; refusing to overwrite a key file`);
  return { vkey, path: out };
}

/** Reads an Ed25519 (type 0x01) signer key file. */
export function loadSignerKey(path: string, what: string): SignerKeyFields {
  const text = readKeyFile(path, `${what} key file`);
  let f: SignerKeyFields;
  try {
    f = parseSignerKeyFields(text.trim());
  } catch (e) {
    return fail('malformed', `${what} key file ${path} is not a signer key (PRIVATE+KEY+…): ${(e as Error).message}`);
  }
  if (f.type !== SIG_TYPE_ED25519) fail('malformed', `${what} key file ${path} is a cosigner key; an Ed25519 (type 0x01) key is needed`);
  return f;
}

/** Signs an artifact as publisher and registry. */
export function signSubmission(artifact: Artifact, publisher: SignerKeyFields, registry: SignerKeyFields): Submission {
  validateArtifact(artifact);
  const pub = keyPairFromSeed(publisher.seed);
  const publisherSignature = ed25519Sign(pub, publisherMessage(artifact));
  const registrySignature = ed25519Sign(keyPairFromSeed(registry.seed), registryMessage(artifact, pub.publicKey, publisherSignature));
  return { ...artifact, publisherKey: pub.publicKey, publisherSignature, registryName: registry.name, registrySignature };
}

export interface SubmitResult {
  index: number;
  /** The log already had this very submission (an idempotent resubmission): index is the original entry. */
  existing: boolean;
  integratedTime: number;
  leafHash: string;
  proof: string;
  treeSize: number;
}

/** Rejections by the log, with the HTTP status. */
export class SubmitRejected extends PkglogError {
  constructor(readonly status: number, message: string, details?: Record<string, unknown>) {
    super(status === 409 ? 'conflict' : status === 403 ? 'bad_signature' : 'malformed', message, details);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Submits and checks the answer: the returned leaf is our submission, the tlog-proof carries it and its inclusion
 * proof leads to the proof's checkpoint root (the checkpoint's signatures are for `pkglog verify` to judge).
 * Retries 503 answers (Retry-After) up to `retries` times.
 */
export async function submit(log: LogClient, s: Submission, retries = 3): Promise<SubmitResult> {
  for (let attempt = 0; ; attempt++) {
    const r = await log.submit(formatSubmission(s));
    const message = typeof r.json.message === 'string' ? r.json.message : typeof r.json.error === 'string' ? r.json.error : '';
    if (r.status === 503 && attempt < retries) {
      const wait = Math.min(30, Math.max(1, Number(r.retryAfter ?? '1') || 1));
      await sleep(wait * 1000);
      continue;
    }
    if (r.status === 409) {
      throw new SubmitRejected(409, `the log already has a different artifact for ${s.ecosystem}/${s.name} ${s.version} ${s.filename}${typeof r.json.index === 'number' ? ` (entry ${r.json.index})` : ''}${message ? `: ${message}` : ''}`, { index: r.json.index });
    }
    if (r.status === 403) throw new SubmitRejected(403, `the log refused the signatures: ${message || 'bad signature or unknown registry'} (is registry ${s.registryName} added to the log?)`);
    if (r.status === 400 || r.status === 413) throw new SubmitRejected(r.status, `the log rejected the submission as malformed: ${message}`);
    if (r.status !== 200) fail('network', `${log.base}/v1/entries: HTTP ${r.status}${message ? `: ${message}` : ''}`, { status: r.status });
    return checkAnswer(r.json, s, log.base);
  }
}

function checkAnswer(j: Record<string, unknown>, s: Submission, base: string): SubmitResult {
  const where = `${base}/v1/entries`;
  if (typeof j.index !== 'number' || typeof j.proof !== 'string' || typeof j.entry !== 'string') fail('malformed', `${where}: answer lacks index, entry or proof`);
  const leaf = decodeBase64(j.entry, 'entry');
  const entry = decodeLeaf(leaf);
  if (!sameSubmission(entry, s)) fail('malformed', `${where}: the logged entry is not our submission`);
  const lh = leafHash(leaf);
  if (typeof j.leafHash === 'string' && j.leafHash !== encodeBase64(lh)) fail('malformed', `${where}: leafHash does not match the entry`);
  const proof = parseTlogProof(j.proof);
  if (proof.index !== j.index || proof.extra === undefined || !proof.extra.equals(leaf)) fail('malformed', `${where}: the tlog-proof is not for our entry`);
  const cp = parseCheckpoint(parseSignedNote(proof.checkpoint).text);
  const root = rootFromInclusionProof(proof.index, cp.treeSize, lh, proof.inclusionProof);
  if (!root.equals(cp.rootHash)) fail('invalid_proof', `${where}: the inclusion proof does not lead to the checkpoint root`);
  return { index: j.index, existing: j.existing === true, integratedTime: entry.integratedTime, leafHash: encodeBase64(lh), proof: j.proof, treeSize: cp.treeSize };
}
