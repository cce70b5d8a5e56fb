/**
 * Storage and updates of the index's map (core/mpt.ts has its hashes and proofs; docs/index-format.md, "Stored
 * nodes"). Not part of the map's hashes: every stored node has a NODE ID, a positive integer that the update assigns
 * in creation order (children before parents), and an inner node holds its children's ids next to their hashes, so
 * a store can append nodes in id order (writes follow insertion order, never the keys' random order) and read a path
 * by ids. A root is (hash, id); the empty map's id is 0. updateMap reads through a MapNodeReader and returns only the
 * nodes it created (O(k log n) for k changes to n keys) and the ids of the old nodes they replace; the caller stores
 * them (one transaction with the rest of its state). Stored nodes never change, so every earlier root can still be
 * proven until the caller deletes the nodes it replaced. A leaf may carry `extra` bytes after its hashed part (the
 * index keeps the key's list state there): stored, returned by lookups, never hashed.
 */
import { hash as oneShot } from 'node:crypto';
import type { Hash } from './types.ts';
import { fail } from './errors.ts';
import { HASH_SIZE } from './hash.ts';
import {
  EMPTY_MAP_ROOT, MAP_INNER_INPUT_SIZE, MAP_INNER_TAG, MAP_KEY_SIZE, MAP_LEAF_INPUT_SIZE, MAP_LEAF_TAG, MAP_VALUE_SIZE,
  MAP_KEY_BITS, checkMapKey, firstDifferingBit, isBytes, keyBit, type MapProof, type MapProofStep,
} from './mpt.ts';

/** Largest extra a leaf may carry. */
export const MAX_LEAF_EXTRA = 4096;
/**
 * Stored leaf: its hash input ‖ extra. Stored inner node: its hash input (66 bytes) ‖ the smallest key below it ‖
 * left id ‖ right id (6 bytes big-endian each).
 */
const ID_SIZE = 6;
const INNER_NODE_SIZE = MAP_INNER_INPUT_SIZE + MAP_KEY_SIZE + 2 * ID_SIZE;
/** Node ids are below 2^48. */
export const MAX_NODE_ID = 2 ** 48 - 1;

export type MapNode =
  | { kind: 'leaf'; key: Hash; value: Hash; extra: Buffer }
  | { kind: 'inner'; bit: number; left: Hash; right: Hash; minKey: Hash; leftId: number; rightId: number };

/** A map root: its hash and its node's id (0 for the empty map). */
export interface MapRoot {
  hash: Hash;
  id: number;
}

export const EMPTY_MAP: MapRoot = { hash: EMPTY_MAP_ROOT, id: 0 };

/** Reads stored nodes by id (the bytes putMapNode stored); undefined when absent. Synchronous. */
export interface MapNodeReader {
  getMapNode(id: number): Uint8Array | undefined;
}

export interface MapNodeStore extends MapNodeReader {
  putMapNode(id: number, node: Uint8Array): void;
  /** Drops a node that no kept root reaches any more (MapUpdate.replaced of an expired revision). */
  deleteMapNode(id: number): void;
}

/** A node a batch update created: store `node` under `id`. */
export interface NewMapNode {
  id: number;
  hash: Hash;
  node: Buffer;
}

export interface MapChange {
  key: Hash;
  value: Hash;
  /** Bytes stored after the leaf's hashed part (default none). */
  extra?: Uint8Array;
}

export interface MapUpdate {
  root: Hash;
  /** The new root's node id (0: empty). */
  rootId: number;
  /** Every node reachable from `root` that the update created, children before parents, ids increasing. */
  nodes: NewMapNode[];
  /**
   * The ids of the old root's nodes that the new tree no longer has (the old versions of the changed paths). Such a
   * node never comes back: once no kept revision is older than this update, the store may delete them.
   */
  replaced: number[];
}

/** The stored bytes of a node (its hash input, then the unhashed part: a leaf's extra; an inner node's minKey, ids). */
export function encodeMapNode(n: MapNode): Buffer {
  if (n.kind === 'leaf') return Buffer.concat([Buffer.from([MAP_LEAF_TAG]), n.key, n.value, n.extra]);
  const ids = Buffer.alloc(2 * ID_SIZE);
  ids.writeUIntBE(n.leftId, 0, ID_SIZE);
  ids.writeUIntBE(n.rightId, ID_SIZE, ID_SIZE);
  return Buffer.concat([Buffer.from([MAP_INNER_TAG, n.bit]), n.left, n.right, n.minKey, ids]);
}

/** Strict decoding of stored node bytes (subarrays of `b`, not copies). Throws 'malformed'. */
export function decodeMapNode(b: Uint8Array): MapNode {
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf[0] === MAP_LEAF_TAG && buf.length >= MAP_LEAF_INPUT_SIZE && buf.length <= MAP_LEAF_INPUT_SIZE + MAX_LEAF_EXTRA) {
    return { kind: 'leaf', key: buf.subarray(1, 33), value: buf.subarray(33, 65), extra: buf.subarray(65) };
  }
  if (buf.length === INNER_NODE_SIZE && buf[0] === MAP_INNER_TAG) {
    const leftId = buf.readUIntBE(98, ID_SIZE);
    const rightId = buf.readUIntBE(98 + ID_SIZE, ID_SIZE);
    if (leftId === 0 || rightId === 0) fail('malformed', 'a stored inner node has a zero child id');
    return { kind: 'inner', bit: buf[1]!, left: buf.subarray(2, 34), right: buf.subarray(34, 66), minKey: buf.subarray(66, 98), leftId, rightId };
  }
  return fail('malformed', `not a stored map node (${buf.length} bytes)`);
}

/** The hash of stored node bytes (SHA-256 of the hashed part). */
export function mapNodeHash(b: Uint8Array): Hash {
  const hashed = b[0] === MAP_INNER_TAG ? b.subarray(0, MAP_INNER_INPUT_SIZE) : b.subarray(0, MAP_LEAF_INPUT_SIZE);
  return oneShot('sha256', hashed, 'buffer') as Hash;
}

/** Map nodes in memory (tests, `audit --index` rebuilds, benchmarks). */
export class MemoryMapStore implements MapNodeStore {
  private readonly nodes = new Map<number, Uint8Array>();
  private next = 1;
  getMapNode(id: number): Uint8Array | undefined {
    return this.nodes.get(id);
  }
  putMapNode(id: number, node: Uint8Array): void {
    this.nodes.set(id, node);
    if (id >= this.next) this.next = id + 1;
  }
  deleteMapNode(id: number): void {
    this.nodes.delete(id);
  }
  /** The id the next update's first node gets. */
  get nextId(): number {
    return this.next;
  }
  get size(): number {
    return this.nodes.size;
  }
  ids(): IterableIterator<number> {
    return this.nodes.keys();
  }
}

function readNode(store: MapNodeReader, id: number): MapNode {
  return decodeMapNode(readRaw(store, id));
}

function readRaw(store: MapNodeReader, id: number): Buffer {
  const b = store.getMapNode(id);
  if (b === undefined) fail('internal', `map node ${id} is missing from the store`);
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** The stored leaf that a lookup of `key` ends at (walking stored bytes without decoding each inner node). */
function walkToLeaf(store: MapNodeReader, rootId: number, key: Uint8Array, steps?: MapProofStep[]): MapNode & { kind: 'leaf' } {
  let b = readRaw(store, rootId);
  for (let depth = 0; b[0] === MAP_INNER_TAG; depth++) {
    if (b.length !== INNER_NODE_SIZE || depth > MAP_KEY_BITS) fail('malformed', `not a stored map node (${b.length} bytes)`);
    const bit = b[1]!;
    const right = keyBit(key, bit) === 1;
    if (steps !== undefined) steps.push({ bit, sibling: Buffer.from(right ? b.subarray(2, 34) : b.subarray(34, 66)) });
    b = readRaw(store, b.readUIntBE(right ? 98 + ID_SIZE : 98, ID_SIZE));
  }
  const n = decodeMapNode(b);
  if (n.kind !== 'leaf') fail('malformed', 'a map path does not end at a leaf');
  return n;
}

function checkRoot(root: unknown): asserts root is MapRoot {
  const r = root as MapRoot;
  if (!isBytes(r?.hash, HASH_SIZE)) fail('malformed', 'map root must be 32 bytes');
  if (!Number.isSafeInteger(r.id) || r.id < 0 || r.id > MAX_NODE_ID) fail('malformed', 'map root id must be an integer in [0, 2^48)');
  if ((r.id === 0) !== Buffer.from(r.hash).equals(EMPTY_MAP_ROOT)) fail('malformed', 'map root id 0 is the empty map, and only it');
}


/** A subtree during an update: its hash, its smallest key and its node id. */
interface Ref {
  hash: Hash;
  minKey: Hash;
  id: number;
}

class Updater {
  readonly nodes: NewMapNode[] = [];
  readonly replaced: number[] = [];
  constructor(private readonly store: MapNodeReader, private next: number, private readonly resolve?: MapResolver) {}

  /** The leaf a change creates; `old` is the key's current leaf, if any. */
  changed(c: MapChange, old?: MapNode & { kind: 'leaf' }): Ref {
    if (this.resolve === undefined) return this.leaf(c.key, c.value, c.extra);
    const r = this.resolve(c.key, old === undefined ? undefined : { value: old.value, extra: old.extra });
    checkLeafData(r?.value, r?.extra);
    return this.leaf(c.key, r.value, r.extra);
  }

  private id(): number {
    if (this.next > MAX_NODE_ID) fail('internal', 'map node ids are exhausted');
    return this.next++;
  }

  leaf(key: Hash, value: Hash, extra: Uint8Array | undefined): Ref {
    const n = extra?.length ?? 0;
    const node = Buffer.allocUnsafe(MAP_LEAF_INPUT_SIZE + n);
    node[0] = MAP_LEAF_TAG;
    node.set(key, 1);
    node.set(value, 1 + MAP_KEY_SIZE);
    if (n > 0) node.set(extra!, MAP_LEAF_INPUT_SIZE);
    const hash = oneShot('sha256', n > 0 ? node.subarray(0, MAP_LEAF_INPUT_SIZE) : node, 'buffer') as Hash;
    const id = this.id();
    this.nodes.push({ id, hash, node });
    return { hash, minKey: node.subarray(1, 1 + MAP_KEY_SIZE), id };
  }

  inner(bit: number, left: Ref, right: Ref): Ref {
    const node = Buffer.allocUnsafe(INNER_NODE_SIZE);
    node[0] = MAP_INNER_TAG;
    node[1] = bit;
    node.set(left.hash, 2);
    node.set(right.hash, 2 + HASH_SIZE);
    node.set(left.minKey, MAP_INNER_INPUT_SIZE);
    node.writeUIntBE(left.id, 98, ID_SIZE);
    node.writeUIntBE(right.id, 98 + ID_SIZE, ID_SIZE);
    const hash = oneShot('sha256', node.subarray(0, MAP_INNER_INPUT_SIZE), 'buffer') as Hash;
    const id = this.id();
    this.nodes.push({ id, hash, node });
    return { hash, minKey: node.subarray(MAP_INNER_INPUT_SIZE, MAP_INNER_INPUT_SIZE + MAP_KEY_SIZE), id };
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

  /** The subtree at node `id` (hash `hash`) with changes[lo, hi) applied; they all fall inside its parent's region. */
  update(id: number, hash: Hash, changes: MapChange[], lo: number, hi: number): Ref {
    const node = readNode(this.store, id);
    if (node.kind === 'leaf') {
      const items: Ref[] = [];
      let placed = false;
      for (let i = lo; i < hi; i++) {
        const c = changes[i]!;
        const cmp = Buffer.compare(c.key, node.key);
        if (!placed && cmp >= 0) {
          placed = true;
          if (cmp > 0) items.push({ hash, minKey: node.key, id });
          else {
            this.replaced.push(id); // the key's new value replaces this leaf
            items.push(this.changed(c, node));
            continue;
          }
        }
        items.push(this.changed(c));
      }
      if (!placed) items.push({ hash, minKey: node.key, id });
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
    for (let i = lo; i < a; i++) items.push(this.changed(changes[i]!));
    let sub: Ref = { hash, minKey: node.minKey, id };
    if (b > a) {
      this.replaced.push(id); // changes inside: this node's subtree changes
      let m = a;
      while (m < b && keyBit(changes[m]!.key, B) === 0) m++;
      // Stored node bytes are never modified: their subarrays serve as hashes and keys. The right subtree's minKey is
      // not stored; update() reads it from the child itself (a leaf's key or an inner node's minKey).
      const left: Ref = m > a ? this.update(node.leftId, node.left, changes, a, m) : { hash: node.left, minKey: node.minKey, id: node.leftId };
      const right: Ref = b > m ? this.update(node.rightId, node.right, changes, m, b) : { hash: node.right, minKey: node.minKey, id: node.rightId };
      sub = this.inner(B, left, right);
    }
    items.push(sub);
    for (let i = b; i < hi; i++) items.push(this.changed(changes[i]!));
    return this.build(items, 0, items.length);
  }
}

function checkLeafData(value: unknown, extra: unknown): void {
  if (!isBytes(value, MAP_VALUE_SIZE)) fail('malformed', `map value must be ${MAP_VALUE_SIZE} bytes`);
  if (extra !== undefined && (!(extra instanceof Uint8Array) || extra.length > MAX_LEAF_EXTRA)) fail('malformed', `a leaf's extra must be at most ${MAX_LEAF_EXTRA} bytes`);
}

/** The changes sorted by key; throws 'malformed' on a bad length or a key listed twice. */
function sortedChanges(changes: MapChange[], resolved = false): MapChange[] {
  if (!Array.isArray(changes)) fail('malformed', 'map changes must be a list');
  for (const c of changes) {
    checkMapKey(c?.key);
    if (!resolved) checkLeafData(c.value, c.extra);
  }
  // Not copied: the update only reads them (new nodes copy the bytes they hold).
  const sorted = changes.map((c) => ({ key: Buffer.from(c.key.buffer, c.key.byteOffset, c.key.byteLength), value: c.value, extra: c.extra })).sort((x, y) => Buffer.compare(x.key, y.key));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1]!.key.equals(sorted[i]!.key)) fail('malformed', `map key ${sorted[i]!.key.toString('hex')} is changed twice in one batch`);
  }
  return sorted;
}

/**
 * Applies k changes (set key → value; new keys are inserted) to the map with root `root`, reading existing nodes
 * from `store`; the created nodes get ids firstId, firstId + 1, … Returns the new root and the created nodes; the
 * store is not written (putMapNodes does that). Every change recreates its key's path, even to the value it has.
 */
export function updateMap(store: MapNodeReader, root: MapRoot, changes: MapChange[], firstId: number): MapUpdate {
  return update(store, root, changes, firstId, undefined);
}

/** Computes a key's new leaf from its current one (undefined: the key is new). */
export type MapResolver = (key: Hash, old: { value: Hash; extra: Buffer } | undefined) => { value: Hash; extra?: Uint8Array };

/**
 * updateMap where each key's new value and extra are computed from its current leaf, found on the way (one walk per
 * batch: no separate lookup). `resolve` is called once per key, in key order.
 */
export function updateMapWith(store: MapNodeReader, root: MapRoot, keys: Uint8Array[], resolve: MapResolver, firstId: number): MapUpdate {
  return update(store, root, keys.map((key) => ({ key: key as Hash, value: EMPTY_MAP_ROOT })), firstId, resolve);
}

function update(store: MapNodeReader, root: MapRoot, changes: MapChange[], firstId: number, resolve: MapResolver | undefined): MapUpdate {
  checkRoot(root);
  if (!Number.isSafeInteger(firstId) || firstId < 1 || firstId > MAX_NODE_ID) fail('malformed', 'the first node id must be a positive integer below 2^48');
  const sorted = sortedChanges(changes, resolve !== undefined);
  if (sorted.length === 0) return { root: Buffer.from(root.hash), rootId: root.id, nodes: [], replaced: [] };
  const u = new Updater(store, firstId, resolve);
  let ref: Ref;
  if (root.id === 0) {
    const items = sorted.map((c) => u.changed(c));
    ref = u.build(items, 0, items.length);
  } else {
    ref = u.update(root.id, Buffer.from(root.hash), sorted, 0, sorted.length);
  }
  return { root: ref.hash, rootId: ref.id, nodes: u.nodes, replaced: u.replaced };
}

/** The new root of an update. */
export function mapRootOf(u: MapUpdate): MapRoot {
  return { hash: u.root, id: u.rootId };
}

/** Stores the nodes of an update. */
export function putMapNodes(store: MapNodeStore, update: MapUpdate): void {
  for (const n of update.nodes) store.putMapNode(n.id, n.node);
}

/** The value of `key` in the map with root `root`, undefined when absent. */
export function lookupMap(store: MapNodeReader, root: MapRoot, key: Uint8Array): Hash | undefined {
  return lookupMapLeaf(store, root, key)?.value;
}

/** The leaf of `key` (its value and extra bytes, subarrays of the stored node) in the map, undefined when absent. */
export function lookupMapLeaf(store: MapNodeReader, root: MapRoot, key: Uint8Array): { value: Hash; extra: Buffer } | undefined {
  checkRoot(root);
  checkMapKey(key);
  if (root.id === 0) return undefined;
  const node = walkToLeaf(store, root.id, key);
  return Buffer.compare(node.key, key) === 0 ? { value: node.value, extra: node.extra } : undefined;
}

/** The proof for `key` (present with its value and the leaf's extra bytes, or absent) in the map with root `root`. */
export function proveMap(store: MapNodeReader, root: MapRoot, key: Uint8Array): { value?: Hash; extra?: Buffer; proof: MapProof } {
  checkRoot(root);
  checkMapKey(key);
  if (root.id === 0) return { proof: { kind: 'absent', steps: [] } };
  const steps: MapProofStep[] = [];
  const node = walkToLeaf(store, root.id, key, steps);
  steps.reverse();
  if (Buffer.compare(node.key, key) === 0) return { value: Buffer.from(node.value), extra: Buffer.from(node.extra), proof: { kind: 'present', steps } };
  return { proof: { kind: 'absent', leaf: { key: Buffer.from(node.key), value: Buffer.from(node.value) }, steps } };
}
