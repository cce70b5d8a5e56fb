/**
 * The artifact side of verification: hashing the file (streamed), opening a tlog-proof (the leaf rides in its
 * `extra` line), and checking the logged entry against the file, the requested package and the signatures.
 */
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { fail, PkglogError } from '../core/errors.ts';
import { encodeBase64 } from '../core/encoding.ts';
import { leafHash as computeLeafHash } from '../core/hash.ts';
import { decodeLeaf, formatIntegrity, publisherMessage, registryMessage, type Entry, type NativeDigestAlgorithm } from '../core/entry.ts';
import { ed25519Verify } from '../core/ed25519.ts';
import { parseTlogProof, type TlogProof } from '../core/tlog-proof.ts';
import type { Hash } from '../core/types.ts';
import type { RegistryKeys } from './trust.ts';
import { reason } from '../runtime/cli.ts';

/** The native digest each ecosystem's installers pin (leaf version 2), where it is not SHA-256. */
export const NATIVE_DIGEST_OF: Record<string, NativeDigestAlgorithm> = { npm: 'sha512' };

/** SHA-256 of a file, lowercase hex, read as a stream (bounded memory); another algorithm gives the raw digest. */
export async function hashFile(path: string): Promise<string>;
export async function hashFile(path: string, algorithm: NativeDigestAlgorithm): Promise<Buffer>;
export async function hashFile(path: string, algorithm: 'sha256' | NativeDigestAlgorithm = 'sha256'): Promise<string | Buffer> {
  const h = createHash(algorithm);
  await new Promise<void>((resolve, reject) => {
    const s = createReadStream(path);
    s.on('data', (c) => h.update(c));
    s.on('error', (e) => reject(new PkglogError('not_found', `cannot read ${path}: ${reason(e)}`)));
    s.on('end', () => resolve());
  });
  return algorithm === 'sha256' ? h.digest('hex') : h.digest();
}

export interface OpenedProof {
  proof: TlogProof;
  leaf: Buffer;
  leafHash: Hash;
  entry: Entry;
}

/** Parses a tlog-proof and decodes the pkglog leaf from its extra line. Throws 'malformed' with a clear message. */
export function openProof(text: string | Uint8Array): OpenedProof {
  let proof: TlogProof;
  try {
    proof = parseTlogProof(text);
  } catch (e) {
    if (e instanceof PkglogError) fail(e.code, `the proof is not a valid C2SP tlog-proof: ${e.message}`);
    throw e;
  }
  if (proof.extra === undefined) fail('malformed', 'the proof has no "extra" line: a pkglog proof carries the logged entry there');
  let entry: Entry;
  try {
    entry = decodeLeaf(proof.extra);
  } catch (e) {
    if (e instanceof PkglogError) fail('malformed', `the proof's extra data is not a pkglog entry: ${e.message}`);
    throw e;
  }
  return { proof, leaf: proof.extra, leafHash: computeLeafHash(proof.extra), entry };
}

export interface Wanted {
  ecosystem: string;
  name: string;
  version: string;
  /** When given, the logged filename must match too. */
  filename?: string;
}

/** Which requested fields differ from the entry (empty when all match). */
export function packageMismatches(entry: Entry, want: Wanted): string[] {
  const out: string[] = [];
  const cmp = (field: keyof Wanted, have: string) => {
    const w = want[field];
    if (w !== undefined && w !== have) out.push(`${field} is ${JSON.stringify(have)}, expected ${JSON.stringify(w)}`);
  };
  cmp('ecosystem', entry.ecosystem);
  cmp('name', entry.name);
  cmp('version', entry.version);
  cmp('filename', entry.filename);
  return out;
}

/** Throws 'bad_signature' unless the publisher signature verifies with the key in the entry. */
export function checkPublisherSignature(entry: Entry): void {
  if (!ed25519Verify(entry.publisherKey, publisherMessage(entry), entry.publisherSignature)) {
    fail('bad_signature', `the publisher signature (key ${encodeBase64(entry.publisherKey)}) does not verify over the logged artifact`);
  }
}

/** Throws 'unknown_key' for an untrusted registry, 'bad_signature' when the countersignature does not verify. */
export function checkRegistrySignature(entry: Entry, registries: RegistryKeys): void {
  const key = registries.get(entry.registryName);
  if (key === undefined) {
    const known = [...registries.keys()].join(', ') || 'none';
    fail('unknown_key', `the entry is countersigned by registry ${JSON.stringify(entry.registryName)}, which is not trusted (trusted: ${known}; add --registry-key)`);
  }
  if (!ed25519Verify(key, registryMessage(entry, entry.publisherKey, entry.publisherSignature), entry.registrySignature)) {
    fail('bad_signature', `the countersignature of registry ${entry.registryName} does not verify`);
  }
}

/** A short description of an entry for messages. */
export function describeEntry(e: Entry): string {
  return `${e.ecosystem}/${e.name} ${e.version} ${e.filename}`;
}

/** The JSON summary of an entry in reports. */
export function entrySummary(e: Entry, index: number): Record<string, unknown> {
  return {
    index,
    ecosystem: e.ecosystem,
    name: e.name,
    version: e.version,
    filename: e.filename,
    sha256: e.sha256,
    ...(e.nativeDigest !== undefined ? { integrity: formatIntegrity(e.nativeDigest) } : {}),
    publisherKey: encodeBase64(e.publisherKey),
    registry: e.registryName,
    integratedTime: new Date(e.integratedTime).toISOString(),
  };
}
