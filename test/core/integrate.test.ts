import assert from 'node:assert/strict';
import fc from 'fast-check';
import { integrate, rightEdgeTiles, type IntegrateResult } from '../../core/integrate.ts';
import { type Tile, formatTilePath, splitInnerLevels, tileWidth } from '../../core/tiles.ts';
import { completeSubtrees } from '../../core/merkle.ts';
import { EMPTY_ROOT, leafHash, nodeHash } from '../../core/hash.ts';
import { PkglogError, type ErrorCode } from '../../core/errors.ts';
import { ReferenceTree, perfectHashes, pseudoRandomHashes, refLeafHash } from '../support/reference-tree.ts';
import { countSha256 } from '../support/count-hashes.ts';

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PkglogError, `expected PkglogError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const leafHashes = (n: number, seed: number): Buffer[] => pseudoRandomHashes(n, 2000 + seed);
const noRead = (t: Tile): Buffer => assert.fail(`unexpected read of ${formatTilePath(t)}`);
const key = (t: Tile) => `${t.level}/${t.index}`;

/** Most SHA-256 calls an append of `batch` leaves to a tree of `oldSize` may make: one per new interior node, the old
 *  right edge re-hashed (< 256 per tile level) and the root's spine (≤ 64). Independent of oldSize beyond its log. */
function hashBound(oldSize: number, batch: number): number {
  let levels = 0;
  for (let n = oldSize + batch; n >= 1; n = Math.floor(n / 256)) levels++;
  return batch + 256 * levels + 64;
}

/** The tiles whose contents differ between the trees of oldSize and newSize (at their new widths). */
function changedTiles(oldSize: number, newSize: number): Tile[] {
  const out: Tile[] = [];
  for (let level = 0; Math.floor(newSize / 256 ** level) > 0; level++) {
    const last = Math.ceil(Math.floor(newSize / 256 ** level) / 256) - 1;
    for (let index = Math.floor(Math.floor(oldSize / 256 ** level) / 256); index <= last; index++) {
      const w = tileWidth(level, index, newSize);
      if (w > 0 && w !== tileWidth(level, index, oldSize)) out.push({ level, index, width: w });
    }
  }
  return out;
}

/** An in-memory tile store that checks every integrate() call against the reference and the tlog-tiles invariants. */
class CheckedLog {
  size = 0;
  readonly latest = new Map<string, { tile: Tile; data: Buffer }>(); // newest version of each (level, index)
  readonly byPath = new Map<string, Buffer>();
  reads = 0;
  constructor(readonly ref: ReferenceTree) {}

  append(count: number): IntegrateResult {
    const oldSize = this.size;
    const allowed = new Set(rightEdgeTiles(oldSize).map(formatTilePath));
    const res = integrate(
      oldSize,
      (tile) => {
        const path = formatTilePath(tile);
        assert.ok(allowed.has(path), `read ${path}, not a partial right-edge tile of size ${oldSize}`);
        this.reads++;
        return this.byPath.get(path)!;
      },
      this.ref.leafHashes.slice(oldSize, oldSize + count),
    );
    const newSize = oldSize + count;
    assert.equal(res.treeSize, newSize);
    assert.deepEqual(res.rootHash, this.ref.root(newSize), `root of ${newSize}`);
    // Exactly the changed tiles, each once, at its new width.
    const sortKey = (t: Tile) => t.level * 1e12 + t.index;
    assert.deepEqual(
      res.tiles.map((x) => x.tile).sort((a, b) => sortKey(a) - sortKey(b)),
      changedTiles(oldSize, newSize).sort((a, b) => sortKey(a) - sortKey(b)),
    );
    for (const { tile, data } of res.tiles) {
      assert.equal(data.length, tile.width * 32);
      // Contents: hash j of tile (L, N) is MTH of leaves [(N·256 + j)·256^L, (N·256 + j + 1)·256^L).
      const span = 256 ** tile.level;
      for (let j = 0; j < tile.width; j++) {
        const first = (tile.index * 256 + j) * span;
        assert.ok(data.subarray(j * 32, j * 32 + 32).equals(this.ref.mth(first, first + span)), `${formatTilePath(tile)}[${j}]`);
      }
      // Monotonicity: a full tile is written once; a partial tile is a prefix of every later version.
      const prev = this.latest.get(key(tile));
      if (prev) {
        assert.ok(prev.tile.width < 256, `full ${formatTilePath(prev.tile)} rewritten`);
        assert.ok(prev.tile.width < tile.width);
        assert.ok(data.subarray(0, prev.data.length).equals(prev.data), `${formatTilePath(prev.tile)} is not a prefix of ${formatTilePath(tile)}`);
      }
      this.latest.set(key(tile), { tile, data });
      this.byPath.set(formatTilePath(tile), data);
    }
    this.size = newSize;
    return res;
  }
}

describe('core/integrate', () => {
  const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));

  it('reproduces the RFC 6962 known answers (sizes 3 and 8), one leaf at a time and at once', () => {
    const hashes = CT_LEAVES.map(leafHash);
    assert.equal(hex(integrate(0, noRead, hashes.slice(0, 3)).rootHash), 'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77');
    assert.equal(hex(integrate(0, noRead, hashes).rootHash), '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
    const log = new CheckedLog(ReferenceTree.fromEntries(CT_LEAVES));
    for (let i = 0; i < 8; i++) log.append(1);
    assert.equal(hex(log.latest.get('0/0')!.data.subarray(0, 32)), hex(hashes[0]!));
  });

  it('the empty batch on the empty tree: size 0, empty root, no tiles, no reads', () => {
    const res = integrate(0, noRead, []);
    assert.deepEqual(res, { treeSize: 0, rootHash: EMPTY_ROOT, tiles: [] });
  });

  it('an empty batch on a non-empty tree changes nothing and returns the same root', () => {
    const log = new CheckedLog(ReferenceTree.fromLeafHashes(leafHashes(600, 1)));
    log.append(600);
    const res = log.append(0);
    assert.equal(res.tiles.length, 0);
  });

  it('size 256 gives tile/0/000 full and tile/1/000.p/1 holding its hash', () => {
    const ref = ReferenceTree.fromLeafHashes(leafHashes(256, 2));
    const res = integrate(0, noRead, ref.leafHashes);
    assert.deepEqual(res.tiles.map((t) => formatTilePath(t.tile)), ['tile/0/000', 'tile/1/000.p/1']);
    assert.deepEqual(res.tiles[1]!.data, ref.root());
    assert.deepEqual(res.rootHash, ref.root());
  });

  it('a tile that becomes full carries its inner levels 1…7, equal to the RFC 6962 nodes; partial tiles carry none', () => {
    const hashes = pseudoRandomHashes(70_000, 7);
    const ref = ReferenceTree.fromLeafHashes(hashes);
    const r = integrate(0, () => assert.fail('no reads from the empty tree'), hashes);
    for (const { tile, inner } of r.tiles) {
      if (tile.width < 256) {
        assert.equal(inner, undefined);
        continue;
      }
      assert.equal(inner!.length, 254 * 32);
      const levels = splitInnerLevels(Buffer.alloc(256 * 32), inner!);
      const base = 8 * tile.level; // Merkle level of the tile's row
      for (const [r0, j] of [[1, 0], [1, 127], [3, 5], [7, 0], [7, 1]] as const) {
        const level = base + r0;
        const index = tile.index * (256 >> r0) + j;
        const span = 2 ** level;
        assert.ok(levels[r0]!.subarray(j * 32, j * 32 + 32).equals(ref.mth(index * span, (index + 1) * span)), `${formatTilePath(tile)} level ${r0} node ${j}`);
      }
    }
  });

  it('random batch sequences: exact changed tiles, correct contents, monotone tiles, reads only of the old right edge', function () {
    this.timeout(20000);
    const batch = fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 0, max: 20 }) },
      { weight: 2, arbitrary: fc.integer({ min: 200, max: 300 }) },
      { weight: 1, arbitrary: fc.integer({ min: 500, max: 1500 }) },
    );
    fc.assert(
      fc.property(fc.array(batch, { minLength: 1, maxLength: 12 }), fc.nat(), (batches, seed) => {
        const total = batches.reduce((a, b) => a + b, 0);
        const ref = ReferenceTree.fromLeafHashes(leafHashes(total, seed));
        const log = new CheckedLog(ref);
        for (const b of batches) log.append(b);
        // Any split gives the same tiles and root as one call.
        const once = integrate(0, noRead, ref.leafHashes);
        assert.deepEqual(once.rootHash, ref.root());
        assert.equal(once.tiles.length, log.latest.size);
        for (const { tile, data } of once.tiles) {
          const got = log.latest.get(key(tile));
          assert.ok(got && got.tile.width === tile.width && got.data.equals(data), `tile ${formatTilePath(tile)} differs`);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('crosses a tile level 2 boundary in one batch and in many small ones', function () {
    this.timeout(20000);
    const ref = ReferenceTree.fromLeafHashes(leafHashes(66_000, 3));
    const a = new CheckedLog(ref);
    a.append(65_535);
    a.append(1); // 65536: tile/0/255, tile/1/000 full; tile/2/000.p/1
    assert.deepEqual(a.latest.get('2/0')!.tile, { level: 2, index: 0, width: 1 });
    assert.deepEqual(a.latest.get('2/0')!.data, ref.root(65536));
    a.append(464);
    const b = new CheckedLog(ref);
    b.append(65_000);
    for (let i = 0; i < 10; i++) b.append(100);
    assert.deepEqual(a.append(0).rootHash, b.append(0).rootHash);
  });

  // Speed is measured by the bench (bench/build-log.ts); here the work is counted: SHA-256 calls, not milliseconds.
  // A tree of n leaves has n − 1 interior nodes; appending a batch may re-hash at most the old right edge (< 256 hashes
  // per tile level) and the root's spine. Recomputing from scratch would cost 199,999 for the second call.
  it('100,000 leaves in one call, then 100,000 more: O(batch) hashes, reads only the right edge, equal to the RFC 6962 root', function () {
    this.timeout(20000);
    const ref = ReferenceTree.fromLeafHashes(leafHashes(200_000, 4));
    const store = new Map<string, Buffer>();
    const c1 = countSha256(() => integrate(0, noRead, ref.leafHashes.slice(0, 100_000)));
    const r1 = c1.result;
    for (const { tile, data } of r1.tiles) store.set(formatTilePath(tile), data);
    const reads: string[] = [];
    const c2 = countSha256(() =>
      integrate(
        100_000,
        (tile) => {
          reads.push(formatTilePath(tile));
          return store.get(formatTilePath(tile))!;
        },
        ref.leafHashes.slice(100_000),
      ),
    );
    const r2 = c2.result;
    assert.ok(c1.calls >= 99_999 && c1.calls <= hashBound(0, 100_000), `first call: ${c1.calls} SHA-256 calls`);
    assert.ok(c2.calls >= 99_999 && c2.calls <= hashBound(100_000, 100_000), `second call: ${c2.calls} SHA-256 calls`);
    assert.deepEqual(reads.sort(), rightEdgeTiles(100_000).map(formatTilePath).sort());
    assert.deepEqual(r1.rootHash, ref.root(100_000));
    assert.deepEqual(r2.rootHash, ref.root(200_000));
    assert.equal(r2.treeSize, 200_000);
  });

  describe('huge trees (O(batch + log n), exact arithmetic near 2^53)', () => {
    // All leaves equal: every hash at Merkle level 8·L is perfect[8·L], so any old tile can be synthesised.
    const perfect = perfectHashes(refLeafHash(Buffer.from('same')), 60);
    const synthTile = (tile: Tile) => Buffer.concat(Array.from({ length: tile.width }, () => perfect[8 * tile.level]!));
    const rootOf = (n: number) => {
      const nodes = completeSubtrees(0, n).map((x) => perfect[x.level]!);
      return nodes.reduceRight((acc, h) => nodeHash(h, acc));
    };

    for (const oldSize of [2 ** 40 + 12_345, 2 ** 53 - 3000, 2 ** 48 - 1, 256 ** 5]) {
      it(`appends to a tree of ${oldSize} leaves reading only its right edge`, () => {
        const batch = 2000;
        const reads: string[] = [];
        const { result: res, calls } = countSha256(() =>
          integrate(
            oldSize,
            (tile) => {
              reads.push(formatTilePath(tile));
              return synthTile(tile);
            },
            Array.from({ length: batch }, () => perfect[0]!),
          ),
        );
        assert.ok(calls <= hashBound(oldSize, batch), `${calls} SHA-256 calls for a batch of ${batch}`);
        assert.deepEqual(reads.sort(), rightEdgeTiles(oldSize).map(formatTilePath).sort());
        assert.equal(res.treeSize, oldSize + batch);
        assert.deepEqual(res.rootHash, rootOf(oldSize + batch));
        const sk = (x: Tile) => `${x.level}/${x.index}`;
        assert.deepEqual(res.tiles.map((x) => sk(x.tile)).sort(), changedTiles(oldSize, oldSize + batch).map(sk).sort());
        for (const { tile, data } of res.tiles) assert.ok(data.equals(synthTile(tile)), formatTilePath(tile));
      });
    }
  });

  describe('rightEdgeTiles', () => {
    it('lists the partial tiles of a tree', () => {
      assert.deepEqual(rightEdgeTiles(0), []);
      assert.deepEqual(rightEdgeTiles(256), [{ level: 1, index: 0, width: 1 }]);
      assert.deepEqual(rightEdgeTiles(70_000).map(formatTilePath), ['tile/0/273.p/112', 'tile/1/001.p/17', 'tile/2/000.p/1']);
    });
  });

  describe('input validation', () => {
    const h = leafHashes(3, 5);
    it('rejects bad sizes, bad hashes and bad stored tiles', () => {
      throwsCode(() => integrate(-1, noRead, h), 'out_of_range');
      throwsCode(() => integrate(1.5, noRead, h), 'out_of_range');
      throwsCode(() => integrate(Number.MAX_SAFE_INTEGER, noRead, h), 'out_of_range');
      throwsCode(() => integrate(0, noRead, [Buffer.alloc(31)]), 'malformed');
      throwsCode(() => integrate(0, noRead, [h[0]!, 'x' as unknown as Buffer]), 'malformed');
      throwsCode(() => integrate(3, () => Buffer.alloc(64), h), 'internal');
    });
  });
});
