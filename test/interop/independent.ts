/**
 * An independent ("second") implementation of the C2SP wire formats pkglog speaks, written from the spec text
 * (C2SP signed-note, tlog-checkpoint, tlog-cosignature, tlog-tiles, tlog-witness, tlog-proof) and Go's
 * golang.org/x/mod sumdb/note and sumdb/tlog, and RFC 6962 §2.1 (Merkle trees and proofs from its recursive definitions).
 *
 * RULE: this file imports NOTHING from core/, server/, witness/, client/ or test/support/. Only node built-ins,
 * @noble/ed25519 and @noble/post-quantum (ML-DSA-44, FIPS 204, empty context). Every function throws an Error (message prefixed "independent:") on anything not exactly per spec.
 */
import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());

function bad(msg: string): never {
  throw new Error(`independent: ${msg}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Bytes, base64, SHA-256

export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** RFC 4648 §4 standard base64, padded, canonical (re-encodes to the same string). */
export function b64decode(s: string, what: string, len?: number): Buffer {
  if (!B64.test(s)) bad(`${what}: not standard padded base64: ${JSON.stringify(s)}`);
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) bad(`${what}: non-canonical base64`);
  if (len !== undefined && b.length !== len) bad(`${what}: ${b.length} bytes, want ${len}`);
  return b;
}

export const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** ASCII decimal, no leading zeroes ("0" allowed), no sign. */
export function parseDec(s: string, what: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(s)) bad(`${what}: not a canonical decimal: ${JSON.stringify(s)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) bad(`${what}: too large`);
  return n;
}

function u64be(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

// ---------------------------------------------------------------------------------------------------------------
// Signed notes (c2sp.org/signed-note, Go sumdb/note)

export const EM_DASH_PREFIX = Buffer.from([0xe2, 0x80, 0x94, 0x20]); // "— " = U+2014 U+0020
export const TYPE_ED25519 = 0x01;
export const TYPE_COSIGNATURE_V1 = 0x04;
/** "Timestamped ML-DSA-44 (sub)tree cosignatures, as specified by c2sp.org/tlog-cosignature." */
export const TYPE_MLDSA44 = 0x06;
const MLDSA44_PUBLIC_KEY = 1312;
const MLDSA44_SIGNATURE = 2420;

/** "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus (U+002B) characters." */
export function validKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u.test(name);
}

/** key ID = SHA-256(key name || 0x0A || signature type || public key)[:4] */
export function computeKeyId(name: string, type: number, publicKey: Uint8Array): Buffer {
  return sha256(Buffer.from(name, 'utf8'), Buffer.from([0x0a, type]), publicKey).subarray(0, 4);
}

export interface VKey {
  name: string;
  keyId: Buffer;
  type: number;
  publicKey: Buffer; // 32 bytes (0x01, 0x04) or 1,312 bytes (0x06)
}

/** `<name>+<8 hex key ID>+<base64(type || public key)>` (Go note.NewVerifier, plus canonical lowercase hex). */
export function parseVKey(s: string): VKey {
  const i = s.indexOf('+');
  const j = i < 0 ? -1 : s.indexOf('+', i + 1);
  if (i < 0 || j < 0) bad(`vkey ${JSON.stringify(s)}: want name+hex+base64`);
  const name = s.slice(0, i);
  const hex = s.slice(i + 1, j);
  if (!validKeyName(name)) bad(`vkey: bad key name ${JSON.stringify(name)}`);
  if (!/^[0-9a-f]{8}$/.test(hex)) bad(`vkey: key ID ${JSON.stringify(hex)} is not 8 lowercase hex digits`);
  const raw = b64decode(s.slice(j + 1), 'vkey key');
  const type = raw[0];
  if (type !== TYPE_ED25519 && type !== TYPE_COSIGNATURE_V1 && type !== TYPE_MLDSA44) bad(`vkey: unsupported type 0x${type?.toString(16)}`);
  const want = type === TYPE_MLDSA44 ? MLDSA44_PUBLIC_KEY : 32;
  if (raw.length !== 1 + want) bad(`vkey: key is ${raw.length} bytes, want 1 + ${want}`);
  const publicKey = raw.subarray(1);
  const keyId = Buffer.from(hex, 'hex');
  if (!computeKeyId(name, type, publicKey).equals(keyId)) bad('vkey: key ID does not match SHA-256(name\\n type key)[:4]');
  return { name, keyId, type, publicKey };
}

export function formatVKey(name: string, type: number, publicKey: Uint8Array): string {
  return `${name}+${computeKeyId(name, type, publicKey).toString('hex')}+${b64(Buffer.concat([Buffer.from([type]), publicKey]))}`;
}

export interface SigLine {
  /** The line as sent, without its newline. */
  line: string;
  name: string;
  keyId: Buffer;
  /** The bytes after the 4-byte key ID. */
  sig: Buffer;
}

export interface ParsedNote {
  /** Note text bytes, including the final newline, without the blank separator line. */
  text: Buffer;
  sigs: SigLine[];
}

/** Parses one signature line (without its trailing newline). */
export function parseSigLine(lineBytes: Buffer): SigLine {
  if (!lineBytes.subarray(0, 4).equals(EM_DASH_PREFIX)) bad(`signature line does not start with U+2014 U+0020: ${JSON.stringify(lineBytes.toString('utf8'))}`);
  const rest = lineBytes.subarray(4).toString('utf8');
  const sp = rest.indexOf(' ');
  if (sp < 0) bad('signature line has no space after the key name');
  const name = rest.slice(0, sp);
  const enc = rest.slice(sp + 1);
  if (!validKeyName(name)) bad(`signature line: bad key name ${JSON.stringify(name)}`);
  const raw = b64decode(enc, 'signature');
  if (raw.length < 5) bad('signature shorter than key ID + 1 byte');
  return { line: lineBytes.toString('utf8'), name, keyId: raw.subarray(0, 4), sig: raw.subarray(4) };
}

/** Splits at the LAST blank line; checks UTF-8 and control characters; every signature line parses. */
export function parseNote(msg: Uint8Array | string): ParsedNote {
  const buf = typeof msg === 'string' ? Buffer.from(msg, 'utf8') : Buffer.from(msg);
  let str: string;
  try {
    str = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    return bad('note is not valid UTF-8');
  }
  if (/[\u0000-\u0009\u000b-\u001f]/.test(str)) bad('note contains an ASCII control character other than newline');
  const split = buf.lastIndexOf(Buffer.from('\n\n'));
  if (split < 0) bad('note has no blank line before the signatures');
  const text = buf.subarray(0, split + 1);
  let sigs = buf.subarray(split + 2);
  if (sigs.length === 0 || sigs[sigs.length - 1] !== 0x0a) bad('signature block is empty or does not end in newline');
  const out: SigLine[] = [];
  while (sigs.length > 0) {
    const nl = sigs.indexOf(0x0a);
    out.push(parseSigLine(sigs.subarray(0, nl)));
    sigs = sigs.subarray(nl + 1);
  }
  return { text, sigs: out };
}

export function ed25519Verify(publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64 || publicKey.length !== 32) return false;
  try {
    return ed.verify(sig, msg, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** The cosignature/v1 signed message: "cosignature/v1\ntime <t>\n" + the checkpoint text. */
export function cosignatureV1Message(checkpointText: Uint8Array, timestamp: number): Buffer {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) bad('timestamp must be a non-negative integer');
  return Buffer.concat([Buffer.from(`cosignature/v1\ntime ${timestamp}\n`, 'utf8'), checkpointText]);
}

/** Splits cosignature/v1 signature bytes (after the key ID) into u64 BE timestamp ‖ 64-byte Ed25519 signature. */
export function splitCosignature(sig: Uint8Array): { timestamp: number; signature: Buffer } {
  if (sig.length !== 72) bad(`cosignature/v1 signature is ${sig.length} bytes after the key ID, want 8 + 64`);
  const b = Buffer.from(sig);
  const t = b.readBigUInt64BE(0);
  if (t > (1n << 63n) - 1n) bad('cosignature timestamp exceeds 2^63 - 1');
  if (t > BigInt(Number.MAX_SAFE_INTEGER)) bad('cosignature timestamp too large for this checker');
  return { timestamp: Number(t), signature: b.subarray(8) };
}

/**
 * tlog-cosignature's ML-DSA-44 signed message, written straight from the struct in the spec:
 *   uint8 label[12] = "subtree/v1\n\0"; opaque cosigner_name<1..2^8-1>; uint64 timestamp;
 *   opaque log_origin<1..2^8-1>; uint64 start; uint64 end; uint8 hash[32];
 * (RFC 8446 §3: a variable-length vector with a 2^8-1 ceiling has a one-byte length prefix; integers big-endian.)
 */
export function subtreeV1Message(m: { cosignerName: string; timestamp: number; origin: string; start: number; end: number; hash: Uint8Array }): Buffer {
  const name = Buffer.from(m.cosignerName, 'utf8');
  const origin = Buffer.from(m.origin, 'utf8');
  if (name.length < 1 || name.length > 255) bad('cosigner_name must be 1..255 bytes');
  if (origin.length < 1 || origin.length > 255) bad('log_origin must be 1..255 bytes');
  if (m.start !== 0 && m.timestamp !== 0) bad('"If start is not zero, timestamp MUST be zero"');
  if (m.hash.length !== 32) bad('hash must be 32 bytes');
  const label = Buffer.from([0x73, 0x75, 0x62, 0x74, 0x72, 0x65, 0x65, 0x2f, 0x76, 0x31, 0x0a, 0x00]); // "subtree/v1\n\0"
  return Buffer.concat([label, Buffer.from([name.length]), name, u64be(m.timestamp), Buffer.from([origin.length]), origin, u64be(m.start), u64be(m.end), m.hash]);
}

/** Splits an ML-DSA-44 timestamped_signature (after the key ID): u64 BE timestamp ‖ 2,420-byte signature. */
export function splitMlDsaCosignature(sig: Uint8Array): { timestamp: number; signature: Buffer } {
  if (sig.length !== 8 + MLDSA44_SIGNATURE) bad(`ML-DSA-44 cosignature is ${sig.length} bytes after the key ID, want 8 + 2420`);
  const b = Buffer.from(sig);
  const t = b.readBigUInt64BE(0);
  if (t > (1n << 63n) - 1n) bad('cosignature timestamp exceeds 2^63 - 1');
  if (t > BigInt(Number.MAX_SAFE_INTEGER)) bad('cosignature timestamp too large for this checker');
  return { timestamp: Number(t), signature: b.subarray(8) };
}

export function mldsa44Verify(publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (publicKey.length !== MLDSA44_PUBLIC_KEY || sig.length !== MLDSA44_SIGNATURE) return false;
  try {
    return ml_dsa44.verify(sig, msg, publicKey);
  } catch {
    return false;
  }
}

/**
 * Verifies one signature of `text` by `key` (type 0x01: Ed25519 over the text; 0x04: cosignature/v1; 0x06: ML-DSA-44
 * over subtree/v1 for [0, tree size) of the checkpoint in `text`, extension lines not signed).
 */
export function verifySig(key: VKey, text: Uint8Array, s: SigLine): { ok: boolean; timestamp?: number } {
  if (s.name !== key.name || !s.keyId.equals(key.keyId)) return { ok: false };
  if (key.type === TYPE_ED25519) return { ok: ed25519Verify(key.publicKey, text, s.sig) };
  if (key.type === TYPE_MLDSA44) {
    const { timestamp, signature } = splitMlDsaCosignature(s.sig);
    const cp = parseCheckpointText(text);
    const msg = subtreeV1Message({ cosignerName: key.name, timestamp, origin: cp.origin, start: 0, end: cp.size, hash: cp.root });
    return { ok: mldsa44Verify(key.publicKey, msg, signature), timestamp };
  }
  const { timestamp, signature } = splitCosignature(s.sig);
  return { ok: ed25519Verify(key.publicKey, cosignatureV1Message(text, timestamp), signature), timestamp };
}

export interface VerifiedNote extends ParsedNote {
  /** For each known key that signed: the key, its (first) signature line and, for cosignatures, the timestamp. */
  verified: Array<{ key: VKey; sig: SigLine; timestamp?: number }>;
}

/**
 * Opens a note per signed-note: signatures whose name AND key ID match a known key must verify (else throws);
 * unknown ones are ignored; at least one known key must have signed.
 */
export function openNote(msg: Uint8Array | string, keys: VKey[]): VerifiedNote {
  const n = parseNote(msg);
  const verified: VerifiedNote['verified'] = [];
  for (const s of n.sigs) {
    const key = keys.find((k) => k.name === s.name && k.keyId.equals(s.keyId));
    if (key === undefined) continue;
    const r = verifySig(key, n.text, s);
    if (!r.ok) bad(`invalid signature for key ${s.name}+${s.keyId.toString('hex')}`);
    if (!verified.some((v) => v.key === key)) verified.push({ key, sig: s, ...(r.timestamp !== undefined ? { timestamp: r.timestamp } : {}) });
  }
  if (verified.length === 0) bad('no signature from a known key');
  return { ...n, verified };
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints (c2sp.org/tlog-checkpoint)

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  extensions: string[];
}

export function parseCheckpointText(text: Uint8Array | string): Checkpoint {
  const s = typeof text === 'string' ? text : Buffer.from(text).toString('utf8');
  if (!s.endsWith('\n')) bad('checkpoint text does not end in newline');
  const lines = s.slice(0, -1).split('\n');
  if (lines.length < 3) bad('checkpoint has fewer than three lines');
  const [origin, size, root, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) bad('empty origin');
  for (const e of extensions) if (e.length === 0) bad('empty extension line');
  const cp = { origin, size: parseDec(size, 'tree size'), root: b64decode(root, 'root hash', 32), extensions };
  if (formatCheckpointText(cp) !== s) bad('checkpoint does not re-format to the same text');
  return cp;
}

export function formatCheckpointText(cp: Checkpoint): string {
  return [cp.origin, String(cp.size), b64(cp.root), ...cp.extensions].map((l) => l + '\n').join('');
}

// ---------------------------------------------------------------------------------------------------------------
// RFC 6962 §2.1, and nothing else: MTH, PATH and PROOF/SUBPROOF written as the RFC's recursive definitions, and
// each proof checked by recomputing the roots along the same recursion (not RFC 9162's iterative bit loop, which is
// what core/merkle.ts implements: the two must agree without sharing a method).

export const leafHash = (leaf: Uint8Array): Buffer => sha256(Buffer.from([0x00]), leaf);
export const nodeHash = (l: Uint8Array, r: Uint8Array): Buffer => sha256(Buffer.from([0x01]), l, r);
export const EMPTY_ROOT = sha256();

/** RFC 6962 §2.1: "k is the largest power of two smaller than n (i.e., k < n <= 2k)", for n > 1. */
export function splitPoint(n: number): number {
  if (!(n > 1)) bad(`no split point for ${n} leaves`);
  // n - 1 has L binary digits exactly when 2^(L-1) <= n - 1 < 2^L, i.e. 2^(L-1) < n <= 2^L: k = 2^(L-1).
  return 2 ** ((n - 1).toString(2).length - 1);
}

/**
 * MTH over already-hashed leaves (RFC 6962 §2.1): MTH({}) = SHA-256(), MTH({d0}) = the leaf hash,
 * MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])). Results for ranges of 4 leaves or more are memoized.
 */
export class HashTree {
  private memo = new Map<string, Buffer>();
  constructor(readonly leaves: Buffer[]) {}
  /** MTH(D[lo:hi]). */
  mth(lo: number, hi: number): Buffer {
    const n = hi - lo;
    if (n < 0 || hi > this.leaves.length) bad(`mth range [${lo},${hi}) out of bounds`);
    if (n === 0) return EMPTY_ROOT;
    if (n === 1) return this.leaves[lo]!;
    const key = `${lo}:${hi}`;
    const m = this.memo.get(key);
    if (m) return m;
    const k = splitPoint(n);
    const h = nodeHash(this.mth(lo, lo + k), this.mth(lo + k, hi));
    if (n >= 4) this.memo.set(key, h);
    return h;
  }
  root(size = this.leaves.length): Buffer {
    return this.mth(0, size);
  }
  /**
   * PATH(m, D[n]) of RFC 6962 §2.1.1 for the leaf m of the tree of the first `size` leaves:
   * PATH(0, {d0}) = {}; for m < k, PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]);
   * for m >= k, PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k]).
   */
  inclusionPath(m: number, size: number): Buffer[] {
    if (!(m >= 0 && m < size && size <= this.leaves.length)) bad(`no leaf ${m} in a tree of ${size}`);
    const path = (m: number, lo: number, hi: number): Buffer[] => {
      const n = hi - lo;
      if (n === 1) return [];
      const k = splitPoint(n);
      return m < k ? [...path(m, lo, lo + k), this.mth(lo + k, hi)] : [...path(m - k, lo + k, hi), this.mth(lo, lo + k)];
    };
    return path(m, 0, size);
  }
  /**
   * PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 6962 §2.1.2, for 0 < m <= n:
   * SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])};
   * for m <= k, SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n]);
   * for m > k, SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k]).
   */
  consistencyProof(m: number, n: number): Buffer[] {
    if (!(m > 0 && m <= n && n <= this.leaves.length)) bad('consistency proof needs 0 < m <= n <= leaves');
    const subproof = (m: number, lo: number, hi: number, b: boolean): Buffer[] => {
      if (m === hi - lo) return b ? [] : [this.mth(lo, hi)];
      const k = splitPoint(hi - lo);
      return m <= k ? [...subproof(m, lo, lo + k, b), this.mth(lo + k, hi)] : [...subproof(m - k, lo + k, hi, false), this.mth(lo, lo + k)];
    };
    return subproof(m, 0, n, true);
  }
}

/**
 * Inclusion, checked by running PATH's recursion backwards: the last element of PATH(m, D[n]) is the sibling at the
 * top split, so the root is SHA-256(0x01 || sub || last) for m < k and SHA-256(0x01 || last || sub) for m >= k, where
 * sub is the root recomputed from the rest of the path in the half that holds m. A one-leaf tree has an empty path.
 */
export function verifyInclusion(leaf: Buffer, index: number, size: number, path: Buffer[], root: Buffer): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (path.some((p) => p.length !== 32)) return false;
  // rootOf(m, n, upTo): MTH of an n-leaf subtree holding the leaf at position m, from path[0:upTo] (null: wrong length).
  const rootOf = (m: number, n: number, upTo: number): Buffer | null => {
    if (n === 1) return upTo === 0 ? leaf : null;
    if (upTo === 0) return null;
    const k = splitPoint(n);
    const sibling = path[upTo - 1]!;
    const sub = m < k ? rootOf(m, k, upTo - 1) : rootOf(m - k, n - k, upTo - 1);
    if (sub === null) return null;
    return m < k ? nodeHash(sub, sibling) : nodeHash(sibling, sub);
  };
  const computed = rootOf(index, size, path.length);
  return computed !== null && computed.equals(root);
}

/**
 * Consistency, checked by running SUBPROOF's recursion backwards. For the subtree D[n] holding the first m leaves of
 * the old tree, `roots(m, n, b, upTo)` recomputes from proof[0:upTo] both MTH(D[0:m]) (the old part) and MTH(D[n]):
 *  - m = n, b: nothing left in the proof; both are the old root itself (this subtree IS the old tree);
 *  - m = n, not b: exactly one element left, MTH(D[m]), which is both;
 *  - m <= k: the last element is MTH(D[k:n]); the old part lies in D[0:k]: old = old(D[0:k]), new = H(new(D[0:k]), last);
 *  - m > k: the last element is MTH(D[0:k]), which the old tree shares: old = H(last, old(D[k:n])), new = H(last, new(D[k:n])).
 * The proof verifies when the recomputed roots are the given old and new roots.
 */
export function verifyConsistency(first: number, second: number, firstHash: Buffer, secondHash: Buffer, proof: Buffer[]): boolean {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first <= 0 || first > second) return false;
  if (proof.some((p) => p.length !== 32)) return false;
  const roots = (m: number, n: number, b: boolean, upTo: number): [Buffer, Buffer] | null => {
    if (m === n) {
      if (b) return upTo === 0 ? [firstHash, firstHash] : null;
      return upTo === 1 ? [proof[0]!, proof[0]!] : null;
    }
    if (upTo === 0) return null;
    const k = splitPoint(n);
    const last = proof[upTo - 1]!;
    if (m <= k) {
      const left = roots(m, k, b, upTo - 1);
      return left === null ? null : [left[0], nodeHash(left[1], last)];
    }
    const right = roots(m - k, n - k, false, upTo - 1);
    return right === null ? null : [nodeHash(last, right[0]), nodeHash(last, right[1])];
  };
  const r = roots(first, second, true, proof.length);
  return r !== null && r[0].equals(firstHash) && r[1].equals(secondHash);
}

// ---------------------------------------------------------------------------------------------------------------
// Tiles (c2sp.org/tlog-tiles)

export const TILE = 256;

/** Zero-padded 3-digit groups, "x" before every group but the last: 1234067 → "x001/x234/067". */
export function formatIndex(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) bad('tile index must be a non-negative integer');
  const groups: string[] = [];
  do {
    groups.unshift(String(n % 1000).padStart(3, '0'));
    n = Math.floor(n / 1000);
  } while (n > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? 'x' + g : g)).join('/');
}

/** `tile/<L>/<N>[.p/<W>]`, or `tile/entries/<N>[.p/<W>]` for level "entries". W = 256 means a full tile. */
export function tilePath(level: number | 'entries', index: number, width = TILE): string {
  if (!(width >= 1 && width <= TILE)) bad('tile width must be 1..256');
  if (level !== 'entries' && !(Number.isInteger(level) && level >= 0 && level <= 63)) bad('tile level must be 0..63');
  return `tile/${level}/${formatIndex(index)}${width < TILE ? `.p/${width}` : ''}`;
}

/** Width of the partial tile at level L for tree size s: floor(s / 256^L) mod 256 (0: none). */
export function partialWidth(level: number, size: number): number {
  return Math.floor(size / TILE ** level) % TILE;
}

/** Number of full tiles at level L for tree size s. */
export function fullTiles(level: number, size: number): number {
  return Math.floor(size / TILE ** (level + 1));
}

/** Every tile a log must serve for tree size s (hash tiles at all levels, full then partial). */
export function tilesForSize(size: number): Array<{ level: number; index: number; width: number }> {
  const out: Array<{ level: number; index: number; width: number }> = [];
  for (let level = 0; TILE ** level <= size; level++) {
    const full = fullTiles(level, size);
    for (let i = 0; i < full; i++) out.push({ level, index: i, width: TILE });
    const w = partialWidth(level, size);
    if (w > 0) out.push({ level, index: full, width: w });
  }
  return out;
}

/** Splits a tile's bytes into 32-byte hashes; checks the width. */
export function tileHashes(data: Uint8Array, width: number): Buffer[] {
  if (data.length !== width * 32) bad(`tile is ${data.length} bytes, want ${width} × 32`);
  const b = Buffer.from(data);
  return Array.from({ length: width }, (_, i) => b.subarray(i * 32, i * 32 + 32));
}

/**
 * The root of a tree of size s from its tiles the way a client computes it: only the rightmost (partial) tile at each
 * level is needed. Left to right, level by level from the top, each hash of the partial tile at level L is a perfect
 * subtree of 256^L leaves; those aligned perfect subtrees are combined per RFC 6962 (split at the largest power of two).
 */
export function rootFromTiles(size: number, getTile: (level: number, index: number, width: number) => Buffer): Buffer {
  if (size === 0) return EMPTY_ROOT;
  const pieces: Array<{ n: number; h: Buffer }> = [];
  let top = 0;
  while (TILE ** (top + 1) <= size) top++;
  for (let level = top; level >= 0; level--) {
    const w = partialWidth(level, size);
    if (w === 0) continue;
    const hashes = tileHashes(getTile(level, fullTiles(level, size), w), w);
    for (const h of hashes) pieces.push({ n: TILE ** level, h });
  }
  const combine = (ps: Array<{ n: number; h: Buffer }>): Buffer => {
    const total = ps.reduce((a, p) => a + p.n, 0);
    if (ps.length === 1) return ps[0]!.h;
    const k = splitPoint(total);
    let acc = 0;
    let i = 0;
    while (acc < k) acc += ps[i++]!.n;
    if (acc !== k) bad('tile pieces do not align with the RFC 6962 split');
    return nodeHash(combine(ps.slice(0, i)), combine(ps.slice(i)));
  };
  return combine(pieces);
}

// ---------------------------------------------------------------------------------------------------------------
// Entry bundles

/** A sequence of big-endian uint16 length-prefixed entries. */
export function parseBundle(data: Uint8Array): Buffer[] {
  const b = Buffer.from(data);
  const out: Buffer[] = [];
  let off = 0;
  while (off < b.length) {
    if (off + 2 > b.length) bad('entry bundle: truncated length');
    const n = b.readUInt16BE(off);
    off += 2;
    if (off + n > b.length) bad('entry bundle: truncated entry');
    out.push(b.subarray(off, off + n));
    off += n;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// tlog-proof (c2sp.org/tlog-proof@v1)

export interface TlogProofFile {
  extra?: Buffer;
  index: number;
  proof: Buffer[];
  /** The checkpoint, verbatim (signed note). */
  checkpoint: Buffer;
}

export function parseTlogProofFile(data: Uint8Array | string): TlogProofFile {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  let off = 0;
  const line = (): string => {
    const nl = buf.indexOf(0x0a, off);
    if (nl < 0) bad('tlog-proof: missing newline');
    const l = buf.subarray(off, nl).toString('utf8');
    off = nl + 1;
    return l;
  };
  if (line() !== 'c2sp.org/tlog-proof@v1') bad('tlog-proof: bad header line');
  let l = line();
  let extra: Buffer | undefined;
  if (l.startsWith('extra ')) {
    extra = b64decode(l.slice('extra '.length), 'tlog-proof extra');
    l = line();
  }
  if (!l.startsWith('index ')) bad(`tlog-proof: want "index N", got ${JSON.stringify(l)}`);
  const index = parseDec(l.slice('index '.length), 'tlog-proof index');
  const proof: Buffer[] = [];
  for (;;) {
    l = line();
    if (l === '') break;
    proof.push(b64decode(l, 'tlog-proof hash', 32));
  }
  return { ...(extra !== undefined ? { extra } : {}), index, proof, checkpoint: buf.subarray(off) };
}

// ---------------------------------------------------------------------------------------------------------------
// tlog-witness add-checkpoint

/** "old <size>\n" + one base64 hash per line + "\n" + the signed checkpoint. */
export function addCheckpointBody(oldSize: number, proof: Buffer[], signedCheckpoint: Uint8Array | string): Buffer {
  if (proof.length > 63) bad('a client MUST NOT send more than 63 consistency proof lines');
  const head = `old ${oldSize}\n` + proof.map((p) => b64(p) + '\n').join('') + '\n';
  return Buffer.concat([Buffer.from(head, 'utf8'), typeof signedCheckpoint === 'string' ? Buffer.from(signedCheckpoint, 'utf8') : signedCheckpoint]);
}

/** Parses a 200 add-checkpoint response: one or more signature lines, each ending in "\n". */
export function parseSignatureLines(body: Uint8Array): SigLine[] {
  const b = Buffer.from(body);
  if (b.length === 0 || b[b.length - 1] !== 0x0a) bad('response does not end in newline');
  const out: SigLine[] = [];
  let off = 0;
  while (off < b.length) {
    const nl = b.indexOf(0x0a, off);
    out.push(parseSigLine(b.subarray(off, nl)));
    off = nl + 1;
  }
  return out;
}
