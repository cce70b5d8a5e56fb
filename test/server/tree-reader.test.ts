/** Proofs read from the stored tree (stored inner levels, partial right-edge tiles, caches) equal the RFC 6962 reference. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { EMPTY_ROOT } from '../../core/hash.ts';
import { integrate } from '../../core/integrate.ts';
import { LogStore, SqliteStore } from '../../log-store/store.ts';
import { TreeReader } from '../../server/tree-reader.ts';
import { ReferenceTree, pseudoRandomHashes } from '../support/reference-tree.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';

describe('server: TreeReader', () => {
  it('serves reference inclusion and consistency proofs while the tree grows in random batches', async function () {
    this.timeout(60_000);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 3, maxLength: 12 }), fc.nat(), async (batches, seed) => {
        const dir = tempDir();
        const store = LogStore.open(join(dir, 'log.sqlite'));
        try {
          store.initialize({ treeSize: 0, rootHash: EMPTY_ROOT, checkpoint: 'cp 0' }, 0);
          const all = pseudoRandomHashes(batches.reduce((a, b) => a + b, 0), seed);
          const ref = ReferenceTree.fromLeafHashes(all);
          const reader = new TreeReader(new SqliteStore(store));
          let size = 0;
          const sizes: number[] = [];
          for (const n of batches) {
            const r = integrate(size, (t) => store.readTile(t)!, all.slice(size, size + n));
            store.append({ oldSize: size, entries: [], tiles: r.tiles, newState: { treeSize: r.treeSize, rootHash: r.rootHash, checkpoint: `cp ${r.treeSize}` }, createdAt: 0 });
            size = r.treeSize;
            sizes.push(size);
            for (const i of [0, size - 1, Math.floor(size / 2), (seed + size) % size]) {
              assert.deepEqual((await reader.inclusionProof(i, size)).map((h) => h.toString('hex')), ref.inclusionProof(i, size).map((h) => h.toString('hex')), `inclusion ${i} in ${size}`);
            }
            for (const m of sizes) {
              assert.deepEqual((await reader.consistencyProof(m, size)).map((h) => h.toString('hex')), ref.consistencyProof(m, size).map((h) => h.toString('hex')), `consistency ${m} → ${size}`);
            }
          }
          // proofs for older tree sizes still come out right after the tree grew
          for (const s of sizes) assert.deepEqual((await reader.inclusionProof(s - 1, s)).map((h) => h.toString('hex')), ref.inclusionProof(s - 1, s).map((h) => h.toString('hex')));
        } finally {
          store.close();
          removeDir(dir);
        }
      }),
      { numRuns: 15 },
    );
  });

  it('keeps the upper tiles every proof touches cached while random proofs cycle through more level-0 tiles than its cache holds', async function () {
    this.timeout(60_000);
    const dir = tempDir();
    const store = LogStore.open(join(dir, 'log.sqlite'));
    try {
      store.initialize({ treeSize: 0, rootHash: EMPTY_ROOT, checkpoint: 'cp 0' }, 0);
      const n = 2 * 65536 + 1000; // 516 level-0 tiles (the level-0 cache holds 512), 3 level-1 tiles, 1 level-2 tile
      const all = pseudoRandomHashes(n, 7);
      const r = integrate(0, (t) => store.readTile(t)!, all);
      store.append({ oldSize: 0, entries: [], tiles: r.tiles, newState: { treeSize: r.treeSize, rootHash: r.rootHash, checkpoint: `cp ${n}` }, createdAt: 0 });
      const ref = ReferenceTree.fromLeafHashes(all);
      const sqlite = new SqliteStore(store);
      const reads = new Map<number, number>();
      const counting = Object.create(sqlite) as SqliteStore;
      counting.tileWithInner = async (level: number, index: number) => {
        reads.set(level, (reads.get(level) ?? 0) + 1);
        return sqlite.tileWithInner(level, index);
      };
      const reader = new TreeReader(counting);
      // every level-0 tile once (in order, so each is the least recently used when its turn comes again), then again
      const proofs = Array.from({ length: 2 * 516 }, (_, k) => ((k % 516) * 256 + 17) % n);
      for (const i of proofs.slice(0, 516)) await reader.inclusionProof(i, n);
      reads.clear();
      for (const i of proofs.slice(516)) {
        const got = await reader.inclusionProof(i, n);
        if (i % 97 === 0) assert.deepEqual(got.map((h) => h.toString('hex')), ref.inclusionProof(i, n).map((h) => h.toString('hex')));
      }
      // every full level-0 tile read again (more of them than the cache holds); the partial right-edge one, which every
      // proof touches, stays cached
      assert.equal(reads.get(0), 515);
      assert.equal((reads.get(1) ?? 0) + (reads.get(2) ?? 0), 0, 'no upper tile read again');
    } finally {
      store.close();
      removeDir(dir);
    }
  });
});
