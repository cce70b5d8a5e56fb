/**
 * The package index's authenticated map: a Merkle prefix trie (a path-compressed binary trie, "Patricia") over
 * 256-bit keys with 32-byte values, as in FiloSottile/torchwood `mpt/` (docs/index-format.md, "The map").
 *
 * - Key bit i is bit (7 − i mod 8) of byte ⌊i/8⌋ (most significant bit first); bit 0 is the first bit.
 * - The empty map's root is SHA-256 of zero bytes (EMPTY_MAP_ROOT).
 * - A leaf: SHA-256(0x00 ‖ key ‖ value). An inner node: SHA-256(0x01 ‖ bit ‖ left ‖ right), `bit` (one byte, 0–255)
 *   the first bit at which its two subtrees' keys differ; keys with a 0 there are on the left.
 * An inner node for prefix P exists iff the map holds keys starting P‖0 and P‖1, so the root depends only on the
 * map's contents, never on the order of updates. Keys are never removed (the index only grows).
 *
 * Nodes are content-addressed: a MapNodeStore holds every node under its hash. updateMap reads through a
 * MapNodeReader and returns only the nodes it created (O(k log n) for k changes to n keys); the caller stores them
 * (one transaction with the rest of its state). Old nodes stay valid, so every earlier root can still be proven.
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

const LEAF_TAG = 0x00;
const INNER_TAG = 0x01;
/** Stored leaf: 0x00 ‖ key ‖ value — exactly its hash input. */
const LEAF_NODE_SIZE = 1 + MAP_KEY_SIZE + MAP_VALUE_SIZE;
/** Stored inner node: 0x01 ‖ bit ‖ left ‖ right (its hash input, 66 bytes) ‖ the smallest key below it (not hashed). */
const INNER_HASHED_SIZE = 1 + 1 + HASH_SIZE + HASH_SIZE;
const INNER_NODE_SIZE = INNER_HASHED_SIZE + MAP_KEY_SIZE;

export type MapNode =
  | { kind: 'leaf'; key: Hash; value: Hash }
  | { kind: 'inner'; bit: number; left: Hash; right: Hash; minKey: Hash };

/** Reads stored nodes by hash (the bytes putMapNode stored); undefined when absent. Synchronous. */
export interface MapNodeReader {
  getMapNode(hash: Hash): Uint8Array | undefined;
}

export interface MapNodeStore extends MapNodeReader {
  putMapNode(hash: Hash, node: Uint8Array): void;
  /** Drops a node that no kept root reaches any more (MapUpdate.replaced of an expired revision). */
  deleteMapNode(hash: Hash): void;
}

/** A node a batch update created: store `node` under `hash`. */
export interface NewMapNode {
  hash: Hash;
  node: Buffer;
}

export interface MapChange {
  key: Hash;
  value: Hash;
}

export interface MapUpdate {
  root: Hash;
  /** Every node reachable from `root` that the update created, children before parents. */
  nodes: NewMapNode[];
  /**
   * The old root's nodes that the new tree no longer has (the old versions of the changed paths). Values only grow,
   * so such a node never comes back: once no kept revision is older than this update, the store may delete them.
   */
  replaced: Hash[];
}

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

function isBytes(b: unknown, n: number): b is Uint8Array {
  return b instanceof Uint8Array && b.length === n;
}

function checkKey(key: unknown, what = 'map key'): asserts key is Uint8Array {
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
  checkKey(key);
  if (!isBytes(value, MAP_VALUE_SIZE)) fail('malformed', `map value must be ${MAP_VALUE_SIZE} bytes`);
  const b = Buffer.allocUnsafe(LEAF_NODE_SIZE);
  b[0] = LEAF_TAG;
  b.set(key, 1);
  b.set(value, 1 + MAP_KEY_SIZE);
  return oneShot('sha256', b, 'buffer') as Hash;
}

/** SHA-256(0x01 ‖ bit ‖ left ‖ right). */
export function mapInnerHash(bit: number, left: Uint8Array, right: Uint8Array): Hash {
  const b = Buffer.allocUnsafe(INNER_HASHED_SIZE);
  b[0] = INNER_TAG;
  b[1] = bit;
  b.set(left, 2);
  b.set(right, 2 + HASH_SIZE);
  return oneShot('sha256', b, 'buffer') as Hash;
}

/** The stored bytes of a node (a leaf: its hash input; an inner node: its hash input ‖ minKey). */
export function encodeMapNode(n: MapNode): Buffer {
  if (n.kind === 'leaf') return Buffer.concat([Buffer.from([LEAF_TAG]), n.key, n.value]);
  return Buffer.concat([Buffer.from([INNER_TAG, n.bit]), n.left, n.right, n.minKey]);
}

/** Strict decoding of stored node bytes. Throws 'malformed'. */
export function decodeMapNode(b: Uint8Array): MapNode {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length === LEAF_NODE_SIZE && buf[0] === LEAF_TAG) {
    return { kind: 'leaf', key: buf.subarray(1, 33), value: buf.subarray(33, 65) };
  }
  if (buf.length === INNER_NODE_SIZE && buf[0] === INNER_TAG) {
    return { kind: 'inner', bit: buf[1]!, left: buf.subarray(2, 34), right: buf.subarray(34, 66), minKey: buf.subarray(66, 98) };
  }
  return fail('malformed', `not a stored map node (${buf.length} bytes)`);
}

/** The hash of stored node bytes (SHA-256 of the hashed part). */
export function mapNodeHash(b: Uint8Array): Hash {
  const hashed = b.length === INNER_NODE_SIZE ? b.subarray(0, INNER_HASHED_SIZE) : b;
  return oneShot('sha256', hashed, 'buffer') as Hash;
}

/** Map nodes in memory (tests, `audit --index` rebuilds, benchmarks). */
export class MemoryMapStore implements MapNodeStore {
  private readonly nodes = new Map<string, Uint8Array>();
  getMapNode(hash: Hash): Uint8Array | undefined {
    return this.nodes.get(hash.toString('latin1'));
  }
  putMapNode(hash: Hash, node: Uint8Array): void {
    this.nodes.set(hash.toString('latin1'), node);
  }
  deleteMapNode(hash: Hash): void {
    this.nodes.delete(hash.toString('latin1'));
  }
  get size(): number {
    return this.nodes.size;
  }
}

function readNode(store: MapNodeReader, hash: Hash): MapNode {
  const b = store.getMapNode(hash);
  if (b === undefined) fail('internal', `map node ${hash.toString('hex')} is missing from the store`);
  return decodeMapNode(b);
}

function checkRoot(root: unknown): asserts root is Hash {
  if (!isBytes(root, HASH_SIZE)) fail('malformed', 'map root must be 32 bytes');
}

/** A subtree during an update: its hash and its smallest key. */
interface Ref {
  hash: Hash;
  minKey: Hash;
}

class Updater {
  readonly nodes: NewMapNode[] = [];
  readonly replaced: Hash[] = [];
  constructor(private readonly store: MapNodeReader) {}

  leaf(key: Hash, value: Hash): Ref {
    const node = Buffer.allocUnsafe(LEAF_NODE_SIZE);
    node[0] = LEAF_TAG;
    node.set(key, 1);
    node.set(value, 1 + MAP_KEY_SIZE);
    const hash = oneShot('sha256', node, 'buffer') as Hash;
    this.nodes.push({ hash, node });
    return { hash, minKey: key };
  }

  inner(bit: number, left: Ref, right: Ref): Ref {
    const node = Buffer.allocUnsafe(INNER_NODE_SIZE);
    node[0] = INNER_TAG;
    node[1] = bit;
    node.set(left.hash, 2);
    node.set(right.hash, 2 + HASH_SIZE);
    node.set(left.minKey, INNER_HASHED_SIZE);
    const hash = oneShot('sha256', node.subarray(0, INNER_HASHED_SIZE), 'buffer') as Hash;
    this.nodes.push({ hash, node });
    return { hash, minKey: left.minKey };
  }

  /** The trie over disjoint items (leaves and whole subtrees) sorted by key. */
  build(items: Ref[], lo: number, hi: number): Ref {
    if (hi - lo === 1) return items[lo]!;
    // Sorted items share the prefix of the first and the last; every subtree item's own prefix is longer.
    const d = firstDifferingBit(items[lo]!.minKey, items[hi - 1]!.minKey);
    let s = lo + 1;
    while (keyBit(items[s]!.minKey, d) === 0) s++;
    return this.inner(d, this.build(items, lo, s), this.build(items, s, hi));
  }

  /** The subtree at `hash` (non-empty) with changes[lo, hi) applied; they all fall inside its parent's region. */
  update(hash: Hash, changes: MapChange[], lo: number, hi: number): Ref {
    const node = readNode(this.store, hash);
    if (node.kind === 'leaf') {
      const items: Ref[] = [];
      let placed = false;
      for (let i = lo; i < hi; i++) {
        const c = changes[i]!;
        const cmp = Buffer.compare(c.key, node.key);
        if (!placed && cmp >= 0) {
          placed = true;
          if (cmp > 0) items.push({ hash, minKey: node.key });
          else this.replaced.push(hash); // the key's new value replaces this leaf
        }
        items.push(this.leaf(c.key, c.value));
      }
      if (!placed) items.push({ hash, minKey: node.key });
      return this.build(items, 0, items.length);
    }
    // Changes outside this subtree's prefix (its first `bit` bits) sort before or after it.
    const B = node.bit;
    // A change outside first differs from the subtree's keys at a bit d < B: a 0 there sorts it before them all.
    const before = (k: Hash): boolean => {
      const d = firstDifferingBit(k, node.minKey);
      return d < B && keyBit(k, d) === 0;
    };
    let a = lo;
    while (a < hi && before(changes[a]!.key)) a++;
    let b = a;
    while (b < hi && firstDifferingBit(changes[b]!.key, node.minKey) >= B) b++;
    const items: Ref[] = [];
    for (let i = lo; i < a; i++) items.push(this.leaf(changes[i]!.key, changes[i]!.value));
    let sub: Ref = { hash, minKey: node.minKey };
    if (b > a) {
      this.replaced.push(hash); // changes inside: this node's subtree changes
      let m = a;
      while (m < b && keyBit(changes[m]!.key, B) === 0) m++;
      // Stored node bytes are never modified: their subarrays serve as hashes and keys.
      const left: Ref = m > a ? this.update(node.left, changes, a, m) : { hash: node.left, minKey: node.minKey };
      const right: Ref = b > m ? this.update(node.right, changes, m, b) : { hash: node.right, minKey: node.minKey };
      sub = this.inner(B, left, right);
    }
    items.push(sub);
    for (let i = b; i < hi; i++) items.push(this.leaf(changes[i]!.key, changes[i]!.value));
    return this.build(items, 0, items.length);
  }
}

/** The changes sorted by key; throws 'malformed' on a bad length or a key listed twice. */
function sortedChanges(changes: MapChange[]): MapChange[] {
  if (!Array.isArray(changes)) fail('malformed', 'map changes must be a list');
  for (const c of changes) {
    checkKey(c?.key);
    if (!isBytes(c.value, MAP_VALUE_SIZE)) fail('malformed', `map value must be ${MAP_VALUE_SIZE} bytes`);
  }
  // Not copied: the update only reads them (new nodes copy the bytes they hold).
  const sorted = changes.map((c) => ({ key: Buffer.from(c.key.buffer, c.key.byteOffset, c.key.byteLength), value: c.value })).sort((x, y) => Buffer.compare(x.key, y.key));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1]!.key.equals(sorted[i]!.key)) fail('malformed', `map key ${sorted[i]!.key.toString('hex')} is changed twice in one batch`);
  }
  return sorted;
}

/**
 * Applies k changes (set key → value; new keys are inserted) to the map with root `root`, reading existing nodes
 * from `store`. Returns the new root and the created nodes; the store is not written (putMapNodes does that).
 */
export function updateMap(store: MapNodeReader, root: Hash, changes: MapChange[]): MapUpdate {
  checkRoot(root);
  const sorted = sortedChanges(changes);
  if (sorted.length === 0) return { root: Buffer.from(root), nodes: [], replaced: [] };
  const u = new Updater(store);
  let ref: Ref;
  if (root.equals(EMPTY_MAP_ROOT)) {
    const items = sorted.map((c) => u.leaf(c.key, c.value));
    ref = u.build(items, 0, items.length);
  } else {
    ref = u.update(Buffer.from(root), sorted, 0, sorted.length);
  }
  // A change to the value a key already has recreates the same nodes: those are not replaced.
  const created = new Set(u.nodes.map((n) => n.hash.toString('latin1')));
  return { root: ref.hash, nodes: u.nodes, replaced: u.replaced.filter((h) => !created.has(h.toString('latin1'))) };
}

/** Stores the nodes of an update. */
export function putMapNodes(store: MapNodeStore, update: MapUpdate): void {
  for (const n of update.nodes) store.putMapNode(n.hash, n.node);
}

/** The value of `key` in the map with root `root`, undefined when absent. */
export function lookupMap(store: MapNodeReader, root: Hash, key: Uint8Array): Hash | undefined {
  const r = proveMap(store, root, key);
  return r.value;
}

/** The proof for `key` (present with its value, or absent) in the map with root `root`. */
export function proveMap(store: MapNodeReader, root: Hash, key: Uint8Array): { value?: Hash; proof: MapProof } {
  checkRoot(root);
  checkKey(key);
  if (Buffer.from(root).equals(EMPTY_MAP_ROOT)) return { proof: { kind: 'absent', steps: [] } };
  const steps: MapProofStep[] = [];
  let node = readNode(store, Buffer.from(root));
  while (node.kind === 'inner') {
    const right = keyBit(key, node.bit) === 1;
    steps.push({ bit: node.bit, sibling: Buffer.from(right ? node.left : node.right) });
    node = readNode(store, Buffer.from(right ? node.right : node.left));
  }
  steps.reverse();
  if (Buffer.compare(node.key, key) === 0) return { value: Buffer.from(node.value), proof: { kind: 'present', steps } };
  return { proof: { kind: 'absent', leaf: { key: Buffer.from(node.key), value: Buffer.from(node.value) }, steps } };
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
  checkRoot(root);
  checkKey(key);
  if (!isBytes(value, MAP_VALUE_SIZE)) fail('malformed', `map value must be ${MAP_VALUE_SIZE} bytes`);
  if (proof?.kind !== 'present') fail('invalid_proof', `expected a proof that the key is present, got ${String(proof?.kind)}`);
  checkSteps(proof.steps);
  if (!rootFromPath(key, value, proof.steps, key).equals(root)) {
    fail('invalid_proof', `map proof for key ${Buffer.from(key).toString('hex')} does not match the map root`);
  }
}

/** Throws 'invalid_proof' unless `proof` shows that `key` is not in the map with root `root`. */
export function verifyMapAbsence(root: Hash, key: Uint8Array, proof: MapProof): void {
  checkRoot(root);
  checkKey(key);
  if (proof?.kind !== 'absent') fail('invalid_proof', `expected a proof that the key is absent, got ${String(proof?.kind)}`);
  checkSteps(proof.steps);
  if (proof.leaf === undefined) {
    if (proof.steps.length !== 0) fail('invalid_proof', 'an empty-map absence proof has no steps');
    if (!Buffer.from(root).equals(EMPTY_MAP_ROOT)) fail('invalid_proof', 'absence proof claims an empty map, but the map root is not the empty root');
    return;
  }
  const alt = proof.leaf;
  checkKey(alt.key, 'absence proof leaf key');
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
    checkKey(proof.leaf!.key);
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
