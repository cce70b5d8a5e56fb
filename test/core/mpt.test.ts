/**
 * core/mpt.ts, the index's Merkle prefix trie, against a naive from-scratch recursive trie (test/support/naive-index.ts,
 * written from docs/index-format.md, not from core's code): roots, batch updates vs. rebuilds, proofs for present and absent keys,
 * the nodes an update creates, and mutated proofs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { PkglogError } from '../../core/errors.ts';
import { EMPTY_MAP_ROOT, decodeMapProof, encodeMapProof, verifyMapAbsence, verifyMapInclusion, type MapProof } from '../../core/mpt.ts';
import {
  EMPTY_MAP,
  MemoryMapStore,
  lookupMapLeaf,
  mapRootOf,
  decodeMapNode,
  lookupMap,
  mapNodeHash,
  proveMap,
  putMapNodes,
  updateMap,
  type MapChange,
  type MapRoot,
} from '../../core/mpt-store.ts';
import { bitOf, naiveTrie, sha } from '../support/naive-index.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Reads a binary map proof as docs/index-format.md lays it out and folds it to a root (no checks: for the vector). */
function naiveRootFromProof(key: Buffer, value: string | null, b: Buffer): Buffer {
  let off = 1;
  let leafKey: Buffer = key;
  let leafValue: Buffer = value === null ? Buffer.alloc(0) : Buffer.from(value, 'hex');
  if (b[0] === 1) {
    leafKey = b.subarray(1, 33);
    leafValue = b.subarray(33, 65);
    off = 65;
  }
  const n = b.readUInt16BE(off);
  off += 2;
  let h = sha(Buffer.from([0]), leafKey, leafValue);
  for (let i = 0; i < n; i++, off += 33) {
    const bit = b[off]!;
    const sib = b.subarray(off + 1, off + 33);
    h = bitOf(leafKey, bit) === 0 ? sha(Buffer.from([1, bit]), h, sib) : sha(Buffer.from([1, bit]), sib, h);
  }
  return h;
}

function throwsCode(fn: () => unknown, codes: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PkglogError, `expected PkglogError, got ${String(e)}`);
    assert.ok(codes.includes(e.code), `expected ${codes.join('|')}, got ${e.code}: ${e.message}`);
    return true;
  });
}

/** Keys with long shared prefixes too (so deep inner nodes and high bit numbers occur). */
const keyArb = fc.oneof(
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => Buffer.from(a)),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 7 })).map(([b, n]) => {
    const k = Buffer.alloc(32, 0xaa);
    k[31 - n] = b;
    return k;
  }),
);
const valueArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => Buffer.from(a));
const batchesArb = fc.array(fc.array(fc.tuple(keyArb, valueArb), { maxLength: 12 }), { minLength: 1, maxLength: 6 });

/** Dedupes a batch (last write wins) into changes. */
function toChanges(batch: Array<[Buffer, Buffer]>): MapChange[] {
  const m = new Map<string, Buffer>();
  for (const [k, v] of batch) m.set(hex(k), v);
  return [...m].map(([k, v]) => ({ key: Buffer.from(k, 'hex'), value: v }));
}

/** Every node id reachable from node `id` (0: the empty map), each checked against the hash its parent holds. */
function reachable(store: MemoryMapStore, id: number, out = new Set<number>(), hash?: Uint8Array): Set<number> {
  if (id === 0) return out;
  out.add(id);
  const b = store.getMapNode(id)!;
  if (hash !== undefined) assert.equal(hex(mapNodeHash(b)), hex(hash), `node ${id} has the hash its parent holds`);
  const n = decodeMapNode(b);
  if (n.kind === 'inner') {
    reachable(store, n.leftId, out, n.left);
    reachable(store, n.rightId, out, n.right);
  }
  return out;
}

/** updateMap with the store's next ids. */
const update = (store: MemoryMapStore, root: MapRoot, changes: MapChange[]) => updateMap(store, root, changes, store.nextId);

const V = JSON.parse(readFileSync(new URL('../vectors/index-mpt.json', import.meta.url), 'utf8'));

describe('core/mpt (the index map)', () => {
  it('matches the vector: root, proofs for present and absent keys, byte for byte', () => {
    const store = new MemoryMapStore();
    const changes = V.pairs.map((p: { key: string; value: string }) => ({ key: Buffer.from(p.key, 'hex'), value: Buffer.from(p.value, 'hex') }));
    const u = update(store, EMPTY_MAP, changes);
    putMapNodes(store, u);
    const pairs = new Map<string, Buffer>(V.pairs.map((p: { key: string; value: string }) => [p.key, Buffer.from(p.value, 'hex')]));
    assert.equal(hex(naiveTrie(pairs)), V.root, 'the naive trie gives the vector root');
    assert.equal(hex(u.root), V.root);
    for (const p of V.proofs) {
      const { value, proof } = proveMap(store, mapRootOf(u), Buffer.from(p.key, 'hex'));
      assert.equal(hex(encodeMapProof(proof)), p.proof, `proof for ${p.key}`);
      assert.equal(value === undefined ? null : hex(value), p.value);
      assert.equal(hex(naiveRootFromProof(Buffer.from(p.key, 'hex'), p.value, Buffer.from(p.proof, 'hex'))), V.root, 'the naive reading of the proof bytes gives the root');
    }
    assert.equal(hex(EMPTY_MAP_ROOT), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(hex(encodeMapProof(proveMap(store, EMPTY_MAP, Buffer.alloc(32)).proof)), '02');
  });

  it('property: batch updates give the naive root; every key is proven with its value, absent keys are proven absent', () => {
    fc.assert(
      fc.property(batchesArb, fc.array(keyArb, { maxLength: 5 }), (batches, probes) => {
        const store = new MemoryMapStore();
        let at: MapRoot = EMPTY_MAP;
        let root = EMPTY_MAP_ROOT;
        const model = new Map<string, Buffer>();
        for (const batch of batches) {
          const changes = toChanges(batch);
          const u = update(store, at, changes);
          putMapNodes(store, u);
          at = mapRootOf(u);
          root = u.root;
          for (const c of changes) model.set(hex(c.key), c.value);
          assert.equal(hex(root), hex(naiveTrie(model)), 'incremental root = naive root');
        }
        // A rebuild from scratch in one batch gives the same root.
        const fresh = new MemoryMapStore();
        const all = [...model].map(([k, v]) => ({ key: Buffer.from(k, 'hex'), value: v }));
        assert.equal(hex(update(fresh, EMPTY_MAP, all).root), hex(root), 'rebuild root = incremental root');
        for (const [k, v] of model) {
          const key = Buffer.from(k, 'hex');
          const { value, proof } = proveMap(store, at, key);
          assert.equal(hex(value!), hex(v));
          verifyMapInclusion(root, key, v, proof);
          throwsCode(() => verifyMapInclusion(root, key, sha(v), proof), ['invalid_proof']);
          throwsCode(() => verifyMapAbsence(root, key, proof), ['invalid_proof']);
          const decoded = decodeMapProof(encodeMapProof(proof));
          verifyMapInclusion(root, key, v, decoded);
        }
        for (const key of probes) {
          const { value, proof } = proveMap(store, at, key);
          if (model.has(hex(key))) {
            assert.ok(value !== undefined);
            continue;
          }
          assert.equal(value, undefined);
          assert.equal(lookupMap(store, at, key), undefined);
          verifyMapAbsence(root, key, proof);
          verifyMapAbsence(root, key, decodeMapProof(encodeMapProof(proof)));
          // An absence proof never proves another key absent when that key is present.
          for (const [k] of model) {
            const present = Buffer.from(k, 'hex');
            if (proof.kind === 'absent' && proof.leaf !== undefined && proof.leaf.key.equals(present)) {
              throwsCode(() => verifyMapAbsence(root, present, proof), ['invalid_proof']);
            }
          }
        }
      }),
    );
  });

  it('property: an update creates only nodes of the new tree, O(k log n) of them, and old roots stay provable', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 20 }), fc.integer(), (n, k, seed) => {
        const store = new MemoryMapStore();
        const key = (i: number) => sha(Buffer.from(`k ${seed} ${i}`));
        const first = update(store, EMPTY_MAP, Array.from({ length: n }, (_, i) => ({ key: key(i), value: sha(key(i)) })));
        putMapNodes(store, first);
        assert.equal(first.nodes.length, 2 * n - 1, 'a fresh trie of n keys has n leaves and n − 1 inner nodes');
        const before = new Set(reachable(store, first.rootId));
        // k changes: half new keys, half new values for old keys.
        const changes = Array.from({ length: k }, (_, j) => (j % 2 === 0 ? { key: key(n + j), value: sha(Buffer.from([j])) } : { key: key(j % n), value: sha(Buffer.from([j, 1])) }));
        const dedup = toChanges(changes.map((c) => [c.key, c.value]));
        const u = update(store, mapRootOf(first), dedup);
        putMapNodes(store, u);
        const after = reachable(store, u.rootId);
        const created = new Set(u.nodes.map((x) => x.id));
        assert.deepEqual(u.nodes.map((x) => x.id), u.nodes.map((_, i) => first.nodes.length + 1 + i), 'ids in creation order after the first update');
        for (const h of created) assert.ok(after.has(h), 'every created node is in the new tree');
        for (const h of after) assert.ok(before.has(h) || created.has(h), 'every new-tree node is old or created');
        // `replaced` is exactly the old tree's nodes that the new tree lost.
        assert.deepEqual(new Set(u.replaced), new Set([...before].filter((h) => !after.has(h))));
        // Random keys: depth ≈ log2 n; each change creates its leaf and the inner nodes of its path.
        const bound = dedup.length * (2 * Math.ceil(Math.log2(n + k)) + 8);
        assert.ok(u.nodes.length <= bound, `${u.nodes.length} nodes for ${dedup.length} changes to ${n} keys (bound ${bound})`);
        for (const x of u.nodes) assert.equal(hex(mapNodeHash(x.node)), hex(x.hash));
        // The old root still answers (stored nodes are never overwritten).
        const { value } = proveMap(store, mapRootOf(first), key(0));
        assert.equal(hex(value!), hex(sha(key(0))));
      }),
    );
  });

  it('a change to the value a key already has keeps the root and recreates only its path; extras are stored, not hashed', () => {
    const store = new MemoryMapStore();
    const changes = [1, 2, 3, 4].map((i) => ({ key: sha(Buffer.from([i])), value: sha(Buffer.from([i, i])) }));
    const u = update(store, EMPTY_MAP, changes);
    putMapNodes(store, u);
    const again = update(store, mapRootOf(u), [{ ...changes[2]!, extra: Buffer.from('list state') }]);
    putMapNodes(store, again);
    assert.equal(hex(again.root), hex(u.root));
    assert.ok(again.nodes.length >= 2 && again.nodes.length <= 4, `${again.nodes.length} nodes: the leaf and its path`);
    assert.equal(again.replaced.length, again.nodes.length, 'each recreated node replaces its old copy');
    assert.equal(lookupMapLeaf(store, mapRootOf(again), changes[2]!.key)!.extra.toString(), 'list state');
    assert.equal(lookupMapLeaf(store, mapRootOf(u), changes[2]!.key)!.extra.length, 0, 'the old revision keeps its leaf');
    assert.deepEqual(update(store, mapRootOf(u), []), { root: u.root, rootId: u.rootId, nodes: [], replaced: [] });
    throwsCode(() => update(store, { hash: u.root, id: 0 }, []), ['malformed']);
    throwsCode(() => update(store, { hash: EMPTY_MAP_ROOT, id: 5 }, []), ['malformed']);
    throwsCode(() => updateMap(store, mapRootOf(u), [], 0), ['malformed']);
    throwsCode(() => update(store, mapRootOf(u), [{ key: changes[0]!.key, value: changes[0]!.value, extra: Buffer.alloc(5000) }]), ['malformed']);
  });

  it('property: any mutated byte of an encoded proof is rejected', () => {
    fc.assert(
      fc.property(fc.array(keyArb, { minLength: 1, maxLength: 30 }), keyArb, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (keys, probe, pos, x, usePresent) => {
        const store = new MemoryMapStore();
        const changes = toChanges(keys.map((k) => [k, sha(k)]));
        const u = update(store, EMPTY_MAP, changes);
        putMapNodes(store, u);
        const key = usePresent ? changes[0]!.key : probe;
        const { value, proof } = proveMap(store, mapRootOf(u), key);
        const bytes = encodeMapProof(proof);
        const i = pos % bytes.length;
        const bad = Buffer.from(bytes);
        bad[i]! ^= x;
        const verify = (p: MapProof) => (value !== undefined ? verifyMapInclusion(u.root, key, value, p) : verifyMapAbsence(u.root, key, p));
        verify(decodeMapProof(bytes));
        throwsCode(() => verify(decodeMapProof(bad)), ['malformed', 'invalid_proof', 'too_large']);
      }),
    );
  });

  it('rejects malformed proofs, bad arguments and duplicate changes with clear errors', () => {
    const store = new MemoryMapStore();
    const k = (b: number) => Buffer.alloc(32, b);
    const u = update(store, EMPTY_MAP, [{ key: k(1), value: k(9) }, { key: k(2), value: k(9) }]);
    putMapNodes(store, u);
    throwsCode(() => update(store, mapRootOf(u), [{ key: k(3), value: k(1) }, { key: k(3), value: k(2) }]), ['malformed']);
    throwsCode(() => update(store, mapRootOf(u), [{ key: Buffer.alloc(31), value: k(1) }]), ['malformed']);
    throwsCode(() => decodeMapProof(Buffer.alloc(0)), ['malformed']);
    throwsCode(() => decodeMapProof(Buffer.from([0x03])), ['malformed']);
    throwsCode(() => decodeMapProof(Buffer.from([0x02, 0])), ['malformed']);
    throwsCode(() => decodeMapProof(Buffer.concat([Buffer.from([0, 0, 2]), Buffer.from([5]), k(0), Buffer.from([7]), k(0)])), ['malformed']); // increasing bits
    throwsCode(() => proveMap(new MemoryMapStore(), mapRootOf(u), k(1)), ['internal']); // a store without the nodes
    const { proof } = proveMap(store, mapRootOf(u), k(1));
    throwsCode(() => verifyMapAbsence(u.root, k(1), proof), ['invalid_proof']);
    throwsCode(() => verifyMapInclusion(u.root, k(2), k(9), proof), ['invalid_proof']);
    throwsCode(() => verifyMapAbsence(u.root, k(5), { kind: 'absent', steps: [] }), ['invalid_proof']);
    assert.throws(() => verifyMapInclusion(u.root, k(1), k(8), proof), /does not match the map root/);
  });
});
