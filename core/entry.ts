/**
 * pkglog entries: the artifact fields, the signed messages of publisher and registry, the submission JSON,
 * and the canonical binary leaf (docs/leaf-format.md documents it byte by byte).
 */
import { decodeBase64, decodeHex, encodeBase64 } from './encoding.ts';
import { fail } from './errors.ts';
import { ed25519Verify } from './ed25519.ts';

/** Version 1: sha256 only. Version 2: also the ecosystem's native digest (npm lockfiles pin sha512). */
export const LEAF_VERSION = 1;
export const LEAF_VERSION_2 = 2;

/**
 * Native digests a version-2 leaf can carry, by their one-byte id in the leaf. The name is the one npm's
 * `integrity` (W3C Subresource Integrity) uses.
 */
export const NATIVE_DIGESTS = { sha512: { id: 0x01, size: 64 } } as const;
export type NativeDigestAlgorithm = keyof typeof NATIVE_DIGESTS;

export interface NativeDigest {
  algorithm: NativeDigestAlgorithm;
  digest: Buffer;
}

/** Upper bound on an encoded leaf (fits an entry bundle's 2-byte length). */
// version, time, ecosystem (≤ 32), name, version, filename (≤ 255 each), sha256, [v2: algorithm, sha512], key,
// signature, registry (≤ 64), signature
export const MAX_LEAF_SIZE = 1 + 8 + (1 + 32) + 3 * (1 + 255) + 32 + (1 + 64) + 32 + 64 + (1 + 64) + 64;

/** The identity and content of one uploaded file. */
export interface Artifact {
  ecosystem: string;
  name: string;
  version: string;
  filename: string;
  /** SHA-256 of the file, 64 lowercase hex digits. */
  sha256: string;
  /** The ecosystem's own digest of the same file (leaf version 2), e.g. npm's sha512. Signed like sha256. */
  nativeDigest?: NativeDigest;
}

export interface Submission extends Artifact {
  publisherKey: Buffer; // 32-byte Ed25519 public key
  publisherSignature: Buffer; // 64 bytes over publisherMessage
  registryName: string;
  registrySignature: Buffer; // 64 bytes over registryMessage
}

export interface Entry extends Submission {
  /** When the log integrated the entry, milliseconds since the Unix epoch. */
  integratedTime: number;
}

const ECOSYSTEM = /^[a-z0-9-]{1,32}$/;
const REGISTRY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
// Whitespace, separators, controls, format characters, surrogates and private use are not "printable".
const NOT_PRINTABLE = /[\s\p{Z}\p{Cc}\p{Cf}\p{Cs}\p{Co}]/u;
const PYPI_NORMALIZED = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$/;

/** Printable ASCII (no space): the common case, for which NOT_PRINTABLE's Unicode classes need not be consulted. */
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

function checkText(value: unknown, field: string, maxBytes = 255): string {
  if (typeof value !== 'string') return fail('malformed', `${field} must be a string`);
  if (value.length <= maxBytes && PRINTABLE_ASCII.test(value)) return value;
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes < 1 || bytes > maxBytes) fail('malformed', `${field} must be 1–${maxBytes} bytes of UTF-8`);
  if (!value.isWellFormed() || NOT_PRINTABLE.test(value)) {
    fail('malformed', `${field} must be printable UTF-8 without whitespace or control characters`);
  }
  return value;
}

/** Throws 'malformed' unless the name is in its ecosystem's canonical form (refuse, never rewrite). */
export function checkCanonicalName(ecosystem: string, name: string): void {
  if (ecosystem === 'pypi' && !PYPI_NORMALIZED.test(name)) {
    fail('malformed', `pypi name must be PEP 503 normalized (lowercase, runs of "-", "_", "." as one "-"): got ${JSON.stringify(name)}`);
  }
  if (ecosystem === 'npm' && name !== name.toLowerCase()) {
    fail('malformed', `npm name must be lowercase: got ${JSON.stringify(name)}`);
  }
}

/** Validates the artifact fields (grammar and canonical names). Throws 'malformed'. */
export function validateArtifact(a: Artifact): void {
  if (typeof a.ecosystem !== 'string' || !ECOSYSTEM.test(a.ecosystem)) fail('malformed', 'ecosystem must match [a-z0-9-]{1,32}');
  checkText(a.name, 'name');
  checkText(a.version, 'version');
  checkText(a.filename, 'filename');
  if (/[/\\]/.test(a.filename)) fail('malformed', 'filename must not contain "/" or "\\"');
  if (typeof a.sha256 !== 'string' || !SHA256_HEX.test(a.sha256)) fail('malformed', 'sha256 must be 64 lowercase hex digits');
  if (a.nativeDigest !== undefined) checkNativeDigest(a.nativeDigest);
  checkCanonicalName(a.ecosystem, a.name);
}

function checkNativeDigest(d: NativeDigest): void {
  const info = Object.hasOwn(NATIVE_DIGESTS, d.algorithm) ? NATIVE_DIGESTS[d.algorithm] : undefined;
  if (info === undefined) fail('malformed', `nativeDigest.algorithm must be one of ${Object.keys(NATIVE_DIGESTS).join(', ')}`);
  if (!Buffer.isBuffer(d.digest) || d.digest.length !== info.size) fail('malformed', `a ${d.algorithm} digest is ${info.size} bytes`);
}

/** The native digest as a signed-message line: `<algorithm>:<lowercase hex>`. */
function nativeLine(a: Artifact): string {
  return a.nativeDigest === undefined ? '' : `${a.nativeDigest.algorithm}:${a.nativeDigest.digest.toString('hex')}\n`;
}

/** The W3C SRI form of a native digest (npm's `integrity`): `sha512-<base64>`. */
export function formatIntegrity(d: NativeDigest): string {
  return `${d.algorithm}-${d.digest.toString('base64')}`;
}

export function validateRegistryName(name: unknown): string {
  if (typeof name !== 'string' || !REGISTRY_NAME.test(name)) fail('malformed', 'registry name must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}');
  return name;
}

/** The identity of a logged file: one artifact per ecosystem/name/version/filename. */
export function fileKey(a: Pick<Artifact, 'ecosystem' | 'name' | 'version' | 'filename'>): string {
  return `${a.ecosystem}\n${a.name}\n${a.version}\n${a.filename}`;
}

/** The bytes the publisher signs. */
export function publisherMessage(a: Artifact): Buffer {
  const v = a.nativeDigest === undefined ? 'v1' : 'v2';
  return Buffer.from(`pkglog/${v}/artifact\n${a.ecosystem}\n${a.name}\n${a.version}\n${a.filename}\n${a.sha256}\n${nativeLine(a)}`, 'utf8');
}

/** The bytes the registry countersigns, as a notary that this publisher may upload this file. */
export function registryMessage(a: Artifact, publisherKey: Uint8Array, publisherSignature: Uint8Array): Buffer {
  const v = a.nativeDigest === undefined ? 'v1' : 'v2';
  return Buffer.from(
    `pkglog/${v}/registry\n${a.ecosystem}\n${a.name}\n${a.version}\n${a.filename}\n${a.sha256}\n${nativeLine(a)}` +
      `${encodeBase64(publisherKey)}\n${encodeBase64(publisherSignature)}\n`,
    'utf8',
  );
}

/** Throws 'bad_signature' unless both the publisher signature and the registry countersignature verify. */
export function verifySubmissionSignatures(s: Submission, registryPublicKey: Uint8Array): void {
  if (!ed25519Verify(s.publisherKey, publisherMessage(s), s.publisherSignature)) {
    fail('bad_signature', 'publisher signature does not verify');
  }
  if (!ed25519Verify(registryPublicKey, registryMessage(s, s.publisherKey, s.publisherSignature), s.registrySignature)) {
    fail('bad_signature', `registry signature by ${s.registryName} does not verify`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(o: Record<string, unknown>, allowed: string[], where: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) fail('malformed', `unknown field ${where}${k}`);
}

/** Parses the submission JSON of POST /v1/entries (already JSON-decoded). Throws 'malformed'. */
export function parseSubmission(json: unknown): Submission {
  if (!isObject(json)) return fail('malformed', 'submission must be a JSON object');
  checkKeys(json, ['ecosystem', 'name', 'version', 'filename', 'sha256', 'nativeDigest', 'publisher', 'registry'], '');
  const { publisher, registry } = json;
  if (!isObject(publisher)) return fail('malformed', 'publisher must be an object {key, signature}');
  if (!isObject(registry)) return fail('malformed', 'registry must be an object {name, signature}');
  checkKeys(publisher, ['key', 'signature'], 'publisher.');
  checkKeys(registry, ['name', 'signature'], 'registry.');
  const a = { ecosystem: json.ecosystem, name: json.name, version: json.version, filename: json.filename, sha256: json.sha256 } as Artifact;
  if (json.nativeDigest !== undefined) a.nativeDigest = parseNativeDigest(json.nativeDigest);
  validateArtifact(a);
  return {
    ...a,
    publisherKey: decodeBase64(publisher.key as string, 'publisher.key', 32),
    publisherSignature: decodeBase64(publisher.signature as string, 'publisher.signature', 64),
    registryName: validateRegistryName(registry.name),
    registrySignature: decodeBase64(registry.signature as string, 'registry.signature', 64),
  };
}

/** `{"algorithm": "sha512", "digest": "<standard padded base64>"}` (strict). */
function parseNativeDigest(v: unknown): NativeDigest {
  if (!isObject(v)) return fail('malformed', 'nativeDigest must be an object {algorithm, digest}');
  checkKeys(v, ['algorithm', 'digest'], 'nativeDigest.');
  if (typeof v.algorithm !== 'string' || !Object.hasOwn(NATIVE_DIGESTS, v.algorithm)) fail('malformed', `nativeDigest.algorithm must be one of ${Object.keys(NATIVE_DIGESTS).join(', ')}`);
  const algorithm = v.algorithm as NativeDigestAlgorithm;
  return { algorithm, digest: decodeBase64(v.digest as string, 'nativeDigest.digest', NATIVE_DIGESTS[algorithm].size) };
}

/** The submission JSON for a Submission (inverse of parseSubmission). */
export function formatSubmission(s: Submission): Record<string, unknown> {
  return {
    ecosystem: s.ecosystem,
    name: s.name,
    version: s.version,
    filename: s.filename,
    sha256: s.sha256,
    ...(s.nativeDigest !== undefined ? { nativeDigest: { algorithm: s.nativeDigest.algorithm, digest: encodeBase64(s.nativeDigest.digest) } } : {}),
    publisher: { key: encodeBase64(s.publisherKey), signature: encodeBase64(s.publisherSignature) },
    registry: { name: s.registryName, signature: encodeBase64(s.registrySignature) },
  };
}

/** True when two submissions log the same artifact with the same signatures (an idempotent resubmission). */
export function sameSubmission(a: Submission, b: Submission): boolean {
  return (
    fileKey(a) === fileKey(b) &&
    a.sha256 === b.sha256 &&
    a.nativeDigest?.algorithm === b.nativeDigest?.algorithm &&
    (a.nativeDigest === undefined || a.nativeDigest.digest.equals(b.nativeDigest!.digest)) &&
    a.publisherKey.equals(b.publisherKey) &&
    a.publisherSignature.equals(b.publisherSignature) &&
    a.registryName === b.registryName &&
    a.registrySignature.equals(b.registrySignature)
  );
}

/** Canonical leaf encoding: version 1, or version 2 when the entry has a native digest (see docs/leaf-format.md). */
export function encodeLeaf(e: Entry): Buffer {
  if (!Number.isSafeInteger(e.integratedTime) || e.integratedTime < 0) fail('malformed', 'integratedTime must be a non-negative integer');
  const parts: Buffer[] = [];
  const head = Buffer.alloc(9);
  head[0] = e.nativeDigest === undefined ? LEAF_VERSION : LEAF_VERSION_2;
  head.writeBigUInt64BE(BigInt(e.integratedTime), 1);
  parts.push(head);
  const str = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    if (b.length < 1 || b.length > 255) fail('malformed', 'leaf string field must be 1–255 bytes');
    parts.push(Buffer.from([b.length]), b);
  };
  str(e.ecosystem);
  str(e.name);
  str(e.version);
  str(e.filename);
  parts.push(decodeHex(e.sha256, 'sha256', 32));
  if (e.nativeDigest !== undefined) {
    checkNativeDigest(e.nativeDigest);
    parts.push(Buffer.from([NATIVE_DIGESTS[e.nativeDigest.algorithm].id]), e.nativeDigest.digest);
  }
  if (e.publisherKey.length !== 32 || e.publisherSignature.length !== 64 || e.registrySignature.length !== 64) {
    fail('malformed', 'key or signature has the wrong length');
  }
  parts.push(e.publisherKey, e.publisherSignature);
  str(e.registryName);
  parts.push(e.registrySignature);
  return Buffer.concat(parts);
}

/** Reads a leaf's fields in order (one object per leaf, its methods defined once). */
class LeafReader {
  off = 0;
  constructor(readonly b: Buffer) {}

  need(n: number): void {
    if (this.off + n > this.b.length) fail('malformed', 'leaf is truncated');
  }

  bytes(n: number): Buffer {
    this.need(n);
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return Buffer.from(v);
  }

  str(what: string): string {
    this.need(1);
    const n = this.b[this.off++]!;
    if (n === 0) fail('malformed', `leaf ${what} is empty`);
    this.need(n);
    const start = this.off;
    this.off += n;
    let ascii = true;
    for (let i = start; i < this.off; i++) if (this.b[i]! >= 0x80) ascii = false;
    if (ascii) return this.b.toString('latin1', start, this.off); // ASCII is valid UTF-8 as it is
    const raw = this.b.subarray(start, this.off);
    const s = raw.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(raw)) fail('malformed', `leaf ${what} is not valid UTF-8`);
    return s;
  }
}

/** Strict decoding of a version-1 or version-2 leaf; re-validates every field. Throws 'malformed'. */
export function decodeLeaf(leaf: Uint8Array): Entry {
  const b = Buffer.from(leaf.buffer, leaf.byteOffset, leaf.byteLength);
  const r = new LeafReader(b);
  r.need(9);
  const leafVersion = b[0];
  if (leafVersion !== LEAF_VERSION && leafVersion !== LEAF_VERSION_2) fail('malformed', `unsupported leaf version ${b[0]}`);
  const t = b.readBigUInt64BE(1);
  if (t > BigInt(Number.MAX_SAFE_INTEGER)) fail('malformed', 'leaf integratedTime out of range');
  r.off = 9;
  const ecosystem = r.str('ecosystem');
  const name = r.str('name');
  const version = r.str('version');
  const filename = r.str('filename');
  r.need(32);
  const sha256 = b.toString('hex', r.off, r.off + 32);
  r.off += 32;
  let nativeDigest: NativeDigest | undefined;
  if (leafVersion === LEAF_VERSION_2) {
    r.need(1);
    const id = b[r.off++];
    const found = Object.entries(NATIVE_DIGESTS).find(([, v]) => v.id === id);
    if (found === undefined) fail('malformed', `leaf native digest algorithm ${id} is unknown`);
    nativeDigest = { algorithm: found[0] as NativeDigestAlgorithm, digest: r.bytes(found[1].size) };
  }
  const publisherKey = r.bytes(32);
  const publisherSignature = r.bytes(64);
  const registryName = r.str('registry name');
  const registrySignature = r.bytes(64);
  if (r.off !== b.length) fail('malformed', 'leaf has trailing bytes');
  const e: Entry = { ecosystem, name, version, filename, sha256, ...(nativeDigest !== undefined ? { nativeDigest } : {}), publisherKey, publisherSignature, registryName, registrySignature, integratedTime: Number(t) };
  validateArtifact(e);
  validateRegistryName(registryName);
  return e;
}

/** The JSON view of an entry (GET /v1/entries/<i>, lookups). */
export function formatEntryJSON(e: Entry): Record<string, unknown> {
  return { ...formatSubmission(e), integratedTime: e.integratedTime };
}
