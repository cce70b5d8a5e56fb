/**
 * The package index's authenticated map: a Merkle prefix trie (a path-compressed binary trie, "Patricia") over
 * 256-bit keys with 32-byte values, as in FiloSottile/torchwood `mpt/` (docs/index-format.md, "The map"): its hashes,
 * and its proofs (verification and the binary encoding). Storage and updates: core/mpt-store.ts.
 *
 * - Key bit i is bit (7 − i mod 8) of byte ⌊i/8⌋ (most significant bit first); bit 0 is the first bit.
 * - The empty map's root is SHA-256 of zero bytes (EMPTY_MAP_ROOT).
 * - A leaf: SHA-256(0x00 ‖ key ‖ value). An inner node: SHA-256(0x01 ‖ bit ‖ left ‖ right), `bit` (one byte, 0–255)
 *   the first bit at which its two subtrees' keys differ; keys with a 0 there are on the left.
 * An inner node for prefix P exists iff the map holds keys starting P‖0 and P‖1, so the root depends only on the
 * map's contents, never on the order of updates. Keys are never removed (the index only grows).
 */
import { hash as oneShot } from 'node:crypto';
import type { Hash } from './types.ts';
import { fail } from './errors.ts';
import { EMPTY_ROOT, HASH_SIZE } from './hash.ts';

export const MAP_KEY_SIZE = 32;
export const MAP_VALUE_SIZE = 32;
export const MAP_KEY_BITS = 256;
/** The root of the empty map: SHA-256 of zero bytes. */
export const EMPTY_MAP_ROOT: Hash = EMPTY_ROOT;
export const MAP_LEAF_TAG = 0x00;
export const MAP_INNER_TAG = 0x01;
/** A leaf's hash input: 0x00 ‖ key ‖ value. */
export const MAP_LEAF_INPUT_SIZE = 1 + MAP_KEY_SIZE + MAP_VALUE_SIZE;
/** An inner node's hash input: 0x01 ‖ bit ‖ left ‖ right. */
export const MAP_INNER_INPUT_SIZE = 1 + 1 + HASH_SIZE + HASH_SIZE;

export interface MapProofStep {
  /** The inner node's bit. */
  bit: number;
  /** The other child's hash. */
  sibling: Hash;
}

/**
 * A map proof, steps listed from the leaf up to the root (bits strictly decreasing).
 * - present: the key's leaf is on the path; the value is not in the proof (the verifier supplies it).
 * - absent: a lookup of the key ends at another key's leaf (`leaf`), or the map is empty (no leaf, no steps).
 */
export type MapProof =
  | { kind: 'present'; steps: MapProofStep[] }
  | { kind: 'absent'; leaf?: { key: Hash; value: Hash }; steps: MapProofStep[] };

export function isBytes(b: unknown, n: number): b is Uint8Array {
  return b instanceof Uint8Array && b.length === n;
}

export function checkMapKey(key: unknown, what = 'map key'): asserts key is Uint8Array {
  if (!isBytes(key, MAP_KEY_SIZE)) fail('malformed', `${what} must be ${MAP_KEY_SIZE} bytes`);
}

/** Bit i of a 256-bit key, most significant bit of byte 0 first. */
export function keyBit(key: Uint8Array, i: number): number {
  return (key[i >> 3]! >> (7 - (i & 7))) & 1;
}

/** The index of the first bit at which a and b differ, MAP_KEY_BITS when equal. */
export function firstDifferingBit(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < MAP_KEY_SIZE; i++) {
    const x = a[i]! ^ b[i]!;
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return MAP_KEY_BITS;
}

/** SHA-256(0x00 ‖ key ‖ value). */
export function mapLeafHash(key: Uint8Array, value: Uint8Array): Hash {
  checkMapKey(key);
  if (!isBytes(value, MAP_VALUE_SIZE)) fail('malformed', `map value must be ${MAP_VALUE_SIZE} bytes`);
  const b = Buffer.allocUnsafe(MAP_LEAF_INPUT_SIZE);
  b[0] = MAP_LEAF_TAG;
  b.set(key, 1);
  b.set(value, 1 + MAP_KEY_SIZE);
  return oneShot('sha256', b, 'buffer') as Hash;
}

/** SHA-256(0x01 ‖ bit ‖ left ‖ right). */
export function mapInnerHash(bit: number, left: Uint8Array, right: Uint8Array): Hash {
  const b = Buffer.allocUnsafe(MAP_INNER_INPUT_SIZE);
  b[0] = MAP_INNER_TAG;
  b[1] = bit;
  b.set(left, 2);
  b.set(right, 2 + HASH_SIZE);
  return oneShot('sha256', b, 'buffer') as Hash;
}

export function checkRootHash(root: unknown): asserts root is Hash {
  if (!isBytes(root, HASH_SIZE)) fail('malformed', 'map root must be 32 bytes');
}

function checkSteps(steps: unknown): asserts steps is MapProofStep[] {
  if (!Array.isArray(steps)) fail('invalid_proof', 'map proof steps must be a list');
  if (steps.length > MAP_KEY_BITS) fail('invalid_proof', `map proof has more than ${MAP_KEY_BITS} steps`);
  let prev = MAP_KEY_BITS;
  for (const s of steps as MapProofStep[]) {
    if (!Number.isInteger(s?.bit) || s.bit < 0 || s.bit >= prev) fail('invalid_proof', 'map proof bits must be strictly decreasing from the leaf up, within 0–255');
    if (!isBytes(s.sibling, HASH_SIZE)) fail('invalid_proof', 'map proof sibling is not a 32-byte hash');
    prev = s.bit;
  }
}

/** The root a path implies: the leaf (key, value), then each step's inner node, turning by `pathKey`'s bits. */
function rootFromPath(leafKey: Uint8Array, value: Uint8Array, steps: MapProofStep[], pathKey: Uint8Array): Hash {
  let h = mapLeafHash(leafKey, value);
  for (const s of steps) h = keyBit(pathKey, s.bit) === 1 ? mapInnerHash(s.bit, s.sibling, h) : mapInnerHash(s.bit, h, s.sibling);
  return h;
}

/** Throws 'invalid_proof' unless `proof` shows `key` → `value` in the map with root `root`. */
export function verifyMapInclusion(root: Hash, key: Uint8Array, value: Uint8Array, proof: MapProof): void {
  checkRootHash(root);
  checkMapKey(key);
  if (!isBytes(value, MAP_VALUE_SIZE)) fail('malformed', `map value must be ${MAP_VALUE_SIZE} bytes`);
  if (proof?.kind !== 'present') fail('invalid_proof', `expected a proof that the key is present, got ${String(proof?.kind)}`);
  checkSteps(proof.steps);
  if (!rootFromPath(key, value, proof.steps, key).equals(root)) {
    fail('invalid_proof', `map proof for key ${Buffer.from(key).toString('hex')} does not match the map root`);
  }
}

/** Throws 'invalid_proof' unless `proof` shows that `key` is not in the map with root `root`. */
export function verifyMapAbsence(root: Hash, key: Uint8Array, proof: MapProof): void {
  checkRootHash(root);
  checkMapKey(key);
  if (proof?.kind !== 'absent') fail('invalid_proof', `expected a proof that the key is absent, got ${String(proof?.kind)}`);
  checkSteps(proof.steps);
  if (proof.leaf === undefined) {
    if (proof.steps.length !== 0) fail('invalid_proof', 'an empty-map absence proof has no steps');
    if (!Buffer.from(root).equals(EMPTY_MAP_ROOT)) fail('invalid_proof', 'absence proof claims an empty map, but the map root is not the empty root');
    return;
  }
  const alt = proof.leaf;
  checkMapKey(alt.key, 'absence proof leaf key');
  if (Buffer.compare(alt.key, key) === 0) fail('invalid_proof', 'absence proof ends at the key itself');
  // The lookup of `key` follows the same turns as the other leaf at every inner node of the path, so ends there.
  for (const s of proof.steps) {
    if (keyBit(alt.key, s.bit) !== keyBit(key, s.bit)) fail('invalid_proof', 'absence proof path is not the lookup path of the key');
  }
  if (!rootFromPath(alt.key, alt.value, proof.steps, alt.key).equals(root)) {
    fail('invalid_proof', `absence proof for key ${Buffer.from(key).toString('hex')} does not match the map root`);
  }
}

// Binary map proof: kind (0x00 present, 0x01 absent at another leaf: key ‖ value follow, 0x02 absent, empty map),
// then (kinds 0x00, 0x01) a 2-byte step count and count × (bit ‖ sibling). Strictly decreasing bits.
const PROOF_PRESENT = 0x00;
const PROOF_ABSENT_LEAF = 0x01;
const PROOF_ABSENT_EMPTY = 0x02;
/** Largest encoded map proof: kind, leaf, count, 256 steps. */
export const MAX_MAP_PROOF_SIZE = 1 + 64 + 2 + MAP_KEY_BITS * (1 + HASH_SIZE);

export function encodeMapProof(proof: MapProof): Buffer {
  checkSteps(proof.steps);
  if (proof.kind === 'absent' && proof.leaf === undefined) {
    if (proof.steps.length !== 0) fail('malformed', 'an empty-map absence proof has no steps');
    return Buffer.from([PROOF_ABSENT_EMPTY]);
  }
  const parts: Buffer[] = [];
  if (proof.kind === 'present') parts.push(Buffer.from([PROOF_PRESENT]));
  else {
    checkMapKey(proof.leaf!.key);
    if (!isBytes(proof.leaf!.value, MAP_VALUE_SIZE)) fail('malformed', 'map value must be 32 bytes');
    parts.push(Buffer.from([PROOF_ABSENT_LEAF]), Buffer.from(proof.leaf!.key), Buffer.from(proof.leaf!.value));
  }
  const n = Buffer.alloc(2);
  n.writeUInt16BE(proof.steps.length);
  parts.push(n);
  for (const s of proof.steps) parts.push(Buffer.from([s.bit]), Buffer.from(s.sibling));
  return Buffer.concat(parts);
}

/** Strict decoding (bounded; canonical: one encoding per proof). Throws 'malformed'. */
export function decodeMapProof(bytes: Uint8Array): MapProof {
  if (!(bytes instanceof Uint8Array)) fail('malformed', 'map proof must be bytes');
  if (bytes.length > MAX_MAP_PROOF_SIZE) fail('too_large', 'map proof is too large');
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length === 0) fail('malformed', 'map proof is empty');
  const kind = b[0]!;
  if (kind === PROOF_ABSENT_EMPTY) {
    if (b.length !== 1) fail('malformed', 'empty-map absence proof has trailing bytes');
    return { kind: 'absent', steps: [] };
  }
  if (kind !== PROOF_PRESENT && kind !== PROOF_ABSENT_LEAF) fail('malformed', `unknown map proof kind ${kind}`);
  let off = 1;
  let leaf: { key: Hash; value: Hash } | undefined;
  if (kind === PROOF_ABSENT_LEAF) {
    if (b.length < off + 64) fail('malformed', 'map proof is truncated');
    leaf = { key: Buffer.from(b.subarray(1, 33)), value: Buffer.from(b.subarray(33, 65)) };
    off = 65;
  }
  if (b.length < off + 2) fail('malformed', 'map proof is truncated');
  const n = b.readUInt16BE(off);
  off += 2;
  if (n > MAP_KEY_BITS) fail('malformed', `map proof has more than ${MAP_KEY_BITS} steps`);
  if (b.length !== off + n * (1 + HASH_SIZE)) fail('malformed', 'map proof length does not match its step count');
  const steps: MapProofStep[] = [];
  let prev = MAP_KEY_BITS;
  for (let i = 0; i < n; i++) {
    const bit = b[off]!;
    if (bit >= prev) fail('malformed', 'map proof bits must be strictly decreasing from the leaf up');
    prev = bit;
    steps.push({ bit, sibling: Buffer.from(b.subarray(off + 1, off + 1 + HASH_SIZE)) });
    off += 1 + HASH_SIZE;
  }
  return kind === PROOF_PRESENT ? { kind: 'present', steps } : { kind: 'absent', leaf: leaf!, steps };
}
