import assert from 'node:assert/strict';
import fc from 'fast-check';
import { planTileRead, readTileHashes, planRangesRead, hashRangesFromTiles } from '../../core/tile-hashes.ts';
import { formatTilePath, tileWidth, TILE_WIDTH, type Tile } from '../../core/tiles.ts';
import { integrate } from '../../core/integrate.ts';
import { planConsistencyProof, planInclusionProof, verifyConsistency, verifyInclusion, type NodeId } from '../../core/merkle.ts';
import { PkglogError } from '../../core/errors.ts';
import { ReferenceTree, pseudoRandomHashes } from '../support/reference-tree.ts';

/** The final tiles of the tree of `hashes.length` leaves, by path (built by core/integrate, checked by the reference). */
function tilesOf(hashes: Buffer[]): Map<string, Buffer> {
  const store = new Map<string, Buffer>();
  const res = integrate(0, () => assert.fail('no tile to read from an empty tree'), hashes);
  for (const { tile, data } of res.tiles) store.set(formatTilePath(tile), data);
  return store;
}

function fetchAll(store: Map<string, Buffer>, tiles: Tile[], treeSize: number): Buffer[] {
  return tiles.map((t) => {
    assert.equal(t.width, tileWidth(t.level, t.index, treeSize), `${formatTilePath(t)} is planned at the tree's width`);
    const d = store.get(formatTilePath(t));
    assert.ok(d, `missing ${formatTilePath(t)}`);
    return d;
  });
}

/** Every complete subtree of the tree of `n` leaves (every hash index the reader can be asked for). */
function everyNode(n: number): NodeId[] {
  const out: NodeId[] = [];
  for (let level = 0; 2 ** level <= n; level++) for (let index = 0; (index + 1) * 2 ** level <= n; index++) out.push({ level, index });
  return out;
}

const invalidTile = (path?: string) => (e: unknown) => {
  assert.ok(e instanceof PkglogError, String(e));
  assert.equal(e.code, 'invalid_proof', e.message);
  assert.match(e.message, /tampered or corrupt tile/);
  if (path !== undefined) assert.equal(e.details?.tile, path, e.message);
  return true;
};

describe('core/tile-hashes (TileHashReader)', () => {
  it('reads every node of trees of many sizes, equal to the naive RFC 6962 reference', () => {
    for (const n of [1, 2, 3, 7, 8, 255, 256, 257, 511, 512, 513, 1000, 256 * 3 + 17]) {
      const hashes = pseudoRandomHashes(n, n);
      const ref = ReferenceTree.fromLeafHashes(hashes);
      const store = tilesOf(hashes);
      const nodes = everyNode(n);
      const plan = planTileRead(nodes, n);
      const got = readTileHashes(plan, fetchAll(store, plan.tiles, n), ref.root());
      nodes.forEach((node, i) => {
        const lo = node.index * 2 ** node.level;
        assert.ok(got[i]!.equals(ref.mth(lo, lo + 2 ** node.level)), `size ${n}: node ${node.level}/${node.index}`);
      });
    }
  });

  it('authenticates full tiles through their parents across tile levels (a tree of 2·65536 + 300 leaves)', function () {
    this.timeout(120_000);
    const n = 2 * 65536 + 300;
    const hashes = pseudoRandomHashes(n, 7);
    const ref = ReferenceTree.fromLeafHashes(hashes);
    const store = tilesOf(hashes);
    const root = ref.root();
    // A leaf deep inside the first full level-1 tile: its tile, that tile's parent (full, level 1), then level 2.
    const nodes: NodeId[] = [{ level: 0, index: 12345 }, { level: 3, index: 9000 }, { level: 8, index: 100 }, { level: 12, index: 5 }, { level: 16, index: 1 }];
    const plan = planTileRead(nodes, n);
    const paths = plan.tiles.map(formatTilePath);
    assert.ok(paths.includes('tile/0/048') && paths.includes('tile/1/000') && paths.includes('tile/2/000.p/2'), paths.join(' '));
    const data = fetchAll(store, plan.tiles, n);
    const got = readTileHashes(plan, data, root);
    nodes.forEach((node, i) => {
      const lo = node.index * 2 ** node.level;
      assert.ok(got[i]!.equals(ref.mth(lo, lo + 2 ** node.level)), `node ${node.level}/${node.index}`);
    });
    // Tampering with the full level-1 tile (not on the right edge) is caught by its parent.
    const i = paths.indexOf('tile/1/000');
    const bad = data.slice();
    bad[i] = Buffer.from(data[i]!);
    bad[i]![100] ^= 1;
    assert.throws(() => readTileHashes(plan, bad, root), invalidTile('tile/1/000'));
    // Proofs from the tiles verify.
    const index = 70_000;
    const ranges = planInclusionProof(index, n);
    const proof = hashRangesFromTiles(ranges, planRangesRead(ranges, n), fetchAll(store, planRangesRead(ranges, n).tiles, n), root);
    verifyInclusion(index, n, hashes[index]!, proof, root);
  });

  it('property: inclusion and consistency proofs from tiles verify; any one flipped byte in any planned tile is rejected', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 1300 }), fc.nat(), fc.nat(), fc.nat(), (n, a, b, flip) => {
        const hashes = pseudoRandomHashes(n, n + 1);
        const ref = ReferenceTree.fromLeafHashes(hashes);
        const store = tilesOf(hashes);
        const root = ref.root();
        const index = a % n;
        const inc = planInclusionProof(index, n);
        const incPlan = planRangesRead(inc, n);
        const incData = fetchAll(store, incPlan.tiles, n);
        const proof = hashRangesFromTiles(inc, incPlan, incData, root);
        assert.deepEqual(proof, ref.inclusionProof(index, n));
        verifyInclusion(index, n, hashes[index]!, proof, root);
        const m = 1 + (b % n);
        const cons = planConsistencyProof(m, n);
        if (cons.length > 0) {
          const consPlan = planRangesRead(cons, n);
          const cp = hashRangesFromTiles(cons, consPlan, fetchAll(store, consPlan.tiles, n), root);
          assert.deepEqual(cp, ref.consistencyProof(m, n));
          verifyConsistency(m, n, ref.root(m), root, cp);
        }
        // Tamper: one bit of one byte of one planned tile.
        const t = flip % incPlan.tiles.length;
        const bad = incData.slice();
        bad[t] = Buffer.from(incData[t]!);
        bad[t]![Math.floor(flip / incPlan.tiles.length) % bad[t]!.length] ^= 0x80;
        assert.throws(() => readTileHashes(incPlan, bad, root), invalidTile());
      }),
      { numRuns: 60 },
    );
  });

  it('rejects a tile of the wrong length, a wrong root, and plans outside the tree', () => {
    const n = 600;
    const hashes = pseudoRandomHashes(n, 3);
    const ref = ReferenceTree.fromLeafHashes(hashes);
    const store = tilesOf(hashes);
    const plan = planTileRead([{ level: 0, index: 10 }], n);
    const data = fetchAll(store, plan.tiles, n);
    const i = plan.tiles.findIndex((t) => t.level === 0 && t.index === 0);
    assert.equal(plan.tiles[i]!.width, TILE_WIDTH);
    const short = data.slice();
    short[i] = data[i]!.subarray(0, 32 * 255);
    assert.throws(() => readTileHashes(plan, short, ref.root()), invalidTile('tile/0/000'));
    assert.throws(() => readTileHashes(plan, data, ref.root(599)), invalidTile());
    assert.throws(() => planTileRead([{ level: 0, index: 600 }], n), (e: unknown) => e instanceof PkglogError && e.code === 'out_of_range');
    assert.throws(() => planTileRead([], 0), (e: unknown) => e instanceof PkglogError && e.code === 'out_of_range');
  });
});
