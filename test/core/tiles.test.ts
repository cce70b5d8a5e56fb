import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  type Tile,
  TILE_WIDTH,
  formatEntryBundle,
  formatTileIndex,
  formatTilePath,
  hashPerfectSubtree,
  nodeHashFromTiles,
  parseEntryBundle,
  parseTilePath,
  tileForNode,
  tileWidth,
  tilesForNodes,
} from '../../core/tiles.ts';
import { integrate } from '../../core/integrate.ts';
import { type NodeId, hashRanges, nodesOf, planConsistencyProof, planInclusionProof, planRoot, verifyConsistency, verifyInclusion } from '../../core/merkle.ts';
import { PkglogError, type ErrorCode } from '../../core/errors.ts';
import type { Hash } from '../../core/types.ts';
import { ReferenceTree, pseudoRandomHashes } from '../support/reference-tree.ts';

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PkglogError, `expected PkglogError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

const leafHashes = (n: number, seed: number): Buffer[] => pseudoRandomHashes(n, 1000 + seed);

/** Integrates `hashes` in batches ending at each of `checkpoints` (ascending); keeps every tile version by path. */
function buildTiles(hashes: Buffer[], checkpoints: number[]): Map<string, Buffer> {
  const store = new Map<string, Buffer>();
  let size = 0;
  for (const cp of checkpoints) {
    const res = integrate(size, (t) => store.get(formatTilePath(t))!, hashes.slice(size, cp));
    for (const { tile, data } of res.tiles) store.set(formatTilePath(tile), data);
    size = cp;
  }
  return store;
}

function readerFor(store: Map<string, Buffer>, treeSize: number, seen?: Set<string>) {
  return (tile: Tile): Buffer => {
    assert.equal(tile.width, tileWidth(tile.level, tile.index, treeSize), 'tiles are asked for at the width of the tree');
    const path = formatTilePath(tile);
    seen?.add(path);
    const data = store.get(path);
    assert.ok(data, `missing ${path}`);
    return data;
  };
}

const nodeRange = (n: NodeId): [number, number] => [n.index * 2 ** n.level, (n.index + 1) * 2 ** n.level];

describe('core/tiles', () => {
  describe('tile paths', () => {
    it('formats the spec vectors', () => {
      assert.equal(formatTilePath({ level: 0, index: 5, width: 256 }), 'tile/0/005');
      assert.equal(formatTilePath({ level: 0, index: 1000, width: 256 }), 'tile/0/x001/000');
      assert.equal(formatTilePath({ level: 0, index: 1234067, width: 256 }), 'tile/0/x001/x234/067');
      assert.equal(formatTilePath({ level: 1, index: 0, width: 1 }), 'tile/1/000.p/1');
      assert.equal(formatTilePath({ level: 2, index: 1234067, width: 255 }), 'tile/2/x001/x234/067.p/255');
      assert.equal(formatTilePath({ level: -1, index: 5, width: 17 }), 'tile/entries/005.p/17');
      assert.equal(formatTilePath({ level: -1, index: 1000, width: 256 }), 'tile/entries/x001/000');
      assert.equal(formatTilePath({ level: 63, index: 0, width: 256 }), 'tile/63/000');
      assert.equal(formatTileIndex(Number.MAX_SAFE_INTEGER), 'x009/x007/x199/x254/x740/991');
      assert.equal(formatTileIndex(0), '000');
      assert.equal(formatTileIndex(999), '999');
    });

    it('parses the spec vectors', () => {
      assert.deepEqual(parseTilePath('tile/0/005'), { level: 0, index: 5, width: 256 });
      assert.deepEqual(parseTilePath('tile/0/x001/000'), { level: 0, index: 1000, width: 256 });
      assert.deepEqual(parseTilePath('tile/0/x001/x234/067'), { level: 0, index: 1234067, width: 256 });
      assert.deepEqual(parseTilePath('tile/3/x001/x234/067.p/8'), { level: 3, index: 1234067, width: 8 });
      assert.deepEqual(parseTilePath('tile/entries/x001/000.p/255'), { level: -1, index: 1000, width: 255 });
      assert.deepEqual(parseTilePath('tile/63/000.p/1'), { level: 63, index: 0, width: 1 });
      assert.deepEqual(parseTilePath('tile/0/x009/x007/x199/x254/x740/991'), { level: 0, index: Number.MAX_SAFE_INTEGER, width: 256 });
    });

    it('rejects non-canonical and out-of-range paths with malformed', () => {
      const bad = [
        '', 'tile', 'tile/', 'tile/0', 'tile/0/', 'tile/0/5', 'tile/0/05', 'tile/0/0005', 'tile/0/x005', 'tile/0/x000/005',
        'tile/0/1/000', 'tile/0/001/000', 'tile/0/x001/x000', 'tile/0/x1/000', 'tile/00/005', 'tile/01/005', 'tile/64/000',
        'tile/99/000', 'tile/100/000', 'tile/-1/000', 'tile/+1/000', 'tile/entry/000', 'tile/Entries/000', 'tile/0/005.p/0',
        'tile/0/005.p/256', 'tile/0/005.p/01', 'tile/0/005.p/', 'tile/0/005.p', 'tile/0/005.P/5', 'tile/0/005.p/5/',
        'tile/0/005p/5', '/tile/0/005', 'tile/0/005/', ' tile/0/005', 'tile/0/005 ', 'tile/0/005\n', 'tile/0/005\0',
        'tile//0/005', 'tile/0//005', 'tile\\0\\005', 'TILE/0/005', 'tile/0/X001/000', 'tile/０/005', 'tile/0/00５',
        'tile/0/x009/x007/x199/x254/x740/992', // 2^53: not a safe index
        'tile/0/x999/x999/x999/x999/x999/999', 'tile/0/x001/x000/x000/x000/x000/x000/000', 'tile/0/005.p/5.p/5',
        'tile/0/005?x', 'tile/0/005#', 'tiles/0/005', 'https://example/tile/0/005', 'tile/0/' + 'x001/'.repeat(20) + '000',
      ];
      for (const p of bad) throwsCode(() => parseTilePath(p), 'malformed');
      for (const p of [undefined, null, 5, {}, ['tile/0/005']]) throwsCode(() => parseTilePath(p as unknown as string), 'malformed');
    });

    it('formatTilePath refuses impossible tiles', () => {
      for (const t of [
        { level: -2, index: 0, width: 1 }, { level: 64, index: 0, width: 1 }, { level: 0, index: -1, width: 1 },
        { level: 0, index: 0, width: 0 }, { level: 0, index: 0, width: 257 }, { level: 0, index: 2 ** 53, width: 1 },
        { level: 0.5, index: 0, width: 1 }, { level: 0, index: 0.5, width: 1 },
      ]) throwsCode(() => formatTilePath(t), 'out_of_range');
    });

    it('round-trips every valid tile', () => {
      const tile = fc.record({
        level: fc.integer({ min: -1, max: 63 }),
        index: fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.maxSafeNat()),
        width: fc.integer({ min: 1, max: 256 }),
      });
      fc.assert(fc.property(tile, (t) => assert.deepEqual(parseTilePath(formatTilePath(t)), { ...t })), { numRuns: 500 });
    });

    it('on arbitrary strings only ever throws PkglogError(malformed) and round-trips what it accepts', () => {
      const check = (s: string) => {
        let t: Tile;
        try {
          t = parseTilePath(s);
        } catch (e) {
          assert.ok(e instanceof PkglogError && e.code === 'malformed', `unexpected ${String(e)} for ${JSON.stringify(s)}`);
          return;
        }
        assert.equal(formatTilePath(t), s);
      };
      const token = fc.constantFrom('tile/', 'entries/', 'x', '0', '1', '5', '9', '00', '000', '001', '255', '256', '63', '64', '/', '.p/', '.p', ' ', '\n', '-', 'x001/', '999', 'é');
      const nearValid = fc.array(token, { maxLength: 14 }).map((a) => a.join(''));
      const prefixed = fc.array(token, { maxLength: 10 }).map((a) => 'tile/' + a.join(''));
      fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), nearValid, prefixed), check), { numRuns: 1500 });
    });
  });

  describe('tileWidth', () => {
    it('matches the spec example for a tree of 70,000 leaves', () => {
      for (let n = 0; n < 273; n++) assert.equal(tileWidth(0, n, 70000), 256);
      assert.equal(tileWidth(0, 273, 70000), 112);
      assert.equal(tileWidth(0, 274, 70000), 0);
      assert.equal(tileWidth(1, 0, 70000), 256);
      assert.equal(tileWidth(1, 1, 70000), 17);
      assert.equal(tileWidth(1, 2, 70000), 0);
      assert.equal(tileWidth(2, 0, 70000), 1);
      assert.equal(tileWidth(3, 0, 70000), 0);
      assert.equal(tileWidth(-1, 273, 70000), 112);
    });

    it('size 256 has tile/0/000 full and tile/1/000.p/1; size 0 has no tiles', () => {
      assert.equal(tileWidth(0, 0, 256), 256);
      assert.equal(tileWidth(0, 1, 256), 0);
      assert.equal(tileWidth(1, 0, 256), 1);
      assert.equal(tileWidth(0, 0, 0), 0);
      assert.equal(tileWidth(63, 0, Number.MAX_SAFE_INTEGER), 0);
    });

    it('the rightmost tile has width floor(s / 256^L) mod 256; all others are full or absent', () => {
      fc.assert(
        fc.property(fc.oneof(fc.nat(1_000_000), fc.maxSafeNat()), fc.integer({ min: 0, max: 7 }), (s, L) => {
          const count = Math.floor(s / 256 ** L);
          const last = Math.floor(count / 256);
          assert.equal(tileWidth(L, last, s), count % 256);
          if (last > 0) assert.equal(tileWidth(L, last - 1, s), 256);
          assert.equal(tileWidth(L, last + 1, s), 0);
        }),
      );
    });

    it('rejects bad coordinates', () => {
      throwsCode(() => tileWidth(64, 0, 1), 'out_of_range');
      throwsCode(() => tileWidth(-2, 0, 1), 'out_of_range');
      throwsCode(() => tileWidth(0, -1, 1), 'out_of_range');
      throwsCode(() => tileWidth(0, 0, 2 ** 53), 'out_of_range');
    });
  });

  describe('reading nodes from tiles', () => {
    it('locates nodes at every row of a tile', () => {
      assert.deepEqual(tileForNode({ level: 0, index: 5 }, 10), { tile: { level: 0, index: 0, width: 10 }, offset: 5, count: 1 });
      assert.deepEqual(tileForNode({ level: 3, index: 33 }, 300), { tile: { level: 0, index: 1, width: 44 }, offset: 8, count: 8 });
      assert.deepEqual(tileForNode({ level: 8, index: 0 }, 256), { tile: { level: 1, index: 0, width: 1 }, offset: 0, count: 1 });
      assert.deepEqual(tileForNode({ level: 9, index: 1 }, 1024), { tile: { level: 1, index: 0, width: 4 }, offset: 2, count: 2 });
      assert.deepEqual(tileForNode({ level: 16, index: 0 }, 70000), { tile: { level: 2, index: 0, width: 1 }, offset: 0, count: 1 });
      assert.deepEqual(tilesForNodes([{ level: 0, index: 0 }, { level: 7, index: 0 }, { level: 0, index: 256 }, { level: 8, index: 1 }], 600), [
        { level: 0, index: 0, width: 256 },
        { level: 0, index: 1, width: 256 },
        { level: 1, index: 0, width: 2 },
      ]);
      throwsCode(() => tileForNode({ level: 0, index: 10 }, 10), 'out_of_range');
      throwsCode(() => tileForNode({ level: 2, index: 2 }, 11), 'out_of_range');
      throwsCode(() => tileForNode({ level: 8, index: 0 }, 255), 'out_of_range');
      throwsCode(() => tileForNode({ level: -1, index: 0 }, 255), 'out_of_range');
      throwsCode(() => tilesForNodes([{ level: 0, index: 3 }], 0), 'out_of_range');
    });

    it('every complete node of every tree size up to 600 reads back as its reference hash', function () {
      this.timeout(20000);
      const hashes = leafHashes(600, 1);
      const ref = ReferenceTree.fromLeafHashes(hashes);
      const sizes = [1, 2, 3, 7, 8, 255, 256, 257, 300, 511, 512, 513, 600];
      const store = buildTiles(hashes, sizes);
      for (const s of sizes) {
        const read = readerFor(store, s);
        for (let level = 0; 2 ** level <= s; level++) {
          for (let index = 0; (index + 1) * 2 ** level <= s; index++) {
            const node = { level, index };
            assert.deepEqual(nodeHashFromTiles(node, s, read), ref.mth(...nodeRange(node)), `node ${level}/${index} @${s}`);
          }
        }
      }
    });

    it('proofs read from integrated tiles verify against the reference (random checkpoints, up to tile level 2)', function () {
      this.timeout(20000);
      const total = 70_000;
      const hashes = leafHashes(total, 2);
      const ref = ReferenceTree.fromLeafHashes(hashes);
      const checkpoints = [1, 255, 256, 257, 4096, 65535, 65536, 65537, 65536 + 256, 69999, 70000];
      const store = buildTiles(hashes, checkpoints);
      const pair = fc.tuple(fc.constantFrom(...checkpoints), fc.constantFrom(...checkpoints)).map(([a, b]): [number, number] => (a <= b ? [a, b] : [b, a]));
      fc.assert(
        fc.property(pair, fc.double({ min: 0, max: 1, noNaN: true }), ([m, n], f) => {
          const i = Math.min(n - 1, Math.floor(f * n));
          const ranges = [planRoot(n), ...planInclusionProof(i, n), ...planConsistencyProof(m, n)];
          const fetched = new Set<string>();
          const read = readerFor(store, n, fetched);
          const tiles = tilesForNodes(nodesOf(ranges), n);
          const cache = new Map<string, Hash>();
          const getNode = (node: NodeId) => {
            const key = `${node.level}/${node.index}`;
            if (!cache.has(key)) cache.set(key, nodeHashFromTiles(node, n, read));
            return cache.get(key)!;
          };
          const [root, ...rest] = hashRanges(ranges, getNode);
          const inclusion = rest.slice(0, planInclusionProof(i, n).length);
          const consistency = rest.slice(inclusion.length);
          assert.deepEqual(root, ref.root(n));
          verifyInclusion(i, n, hashes[i]!, inclusion, ref.root(n));
          verifyConsistency(m, n, ref.root(m), ref.root(n), consistency);
          assert.deepEqual(consistency, ref.consistencyProof(m, n));
          // Only the tiles announced by tilesForNodes were read.
          const announced = new Set(tiles.map(formatTilePath));
          for (const p of fetched) assert.ok(announced.has(p), `read unannounced ${p}`);
        }),
        { numRuns: 150 },
      );
    });

    it('rejects tile data of the wrong length', () => {
      const store = buildTiles(leafHashes(10, 3), [10]);
      const data = store.get('tile/0/000.p/10')!;
      throwsCode(() => nodeHashFromTiles({ level: 0, index: 1 }, 10, () => data.subarray(0, 32 * 9)), 'malformed');
      throwsCode(() => nodeHashFromTiles({ level: 0, index: 1 }, 10, () => Buffer.concat([data, Buffer.alloc(32)])), 'malformed');
    });

    it('hashPerfectSubtree is the RFC 6962 hash of a power-of-two run', () => {
      const hashes = leafHashes(256, 4);
      const ref = ReferenceTree.fromLeafHashes(hashes);
      const data = Buffer.concat(hashes);
      for (let size = 1; size <= 256; size *= 2) {
        for (let first = 0; first < 256; first += size) assert.deepEqual(hashPerfectSubtree(data, first, size), ref.mth(first, first + size));
      }
    });
  });

  describe('entry bundles', () => {
    it('encodes 2-byte big-endian lengths', () => {
      assert.equal(formatEntryBundle([Buffer.from('ab'), Buffer.alloc(0), Buffer.from([1])]).toString('hex'), '000261620000000101');
      assert.deepEqual(parseEntryBundle(Buffer.from('000261620000000101', 'hex')), [Buffer.from('ab'), Buffer.alloc(0), Buffer.from([1])]);
      const big = Buffer.alloc(0xffff, 7);
      assert.deepEqual(parseEntryBundle(formatEntryBundle([big])), [big]);
    });

    it('rejects truncation, trailing bytes, emptiness and oversize', () => {
      throwsCode(() => parseEntryBundle(Buffer.alloc(0)), 'malformed');
      throwsCode(() => parseEntryBundle(Buffer.from('00', 'hex')), 'malformed');
      throwsCode(() => parseEntryBundle(Buffer.from('000261', 'hex')), 'malformed');
      throwsCode(() => parseEntryBundle(Buffer.from('0002616200', 'hex')), 'malformed');
      throwsCode(() => parseEntryBundle(Buffer.alloc(2 * 257)), 'malformed'); // 257 empty entries
      assert.equal(parseEntryBundle(Buffer.alloc(2 * 256)).length, 256);
      throwsCode(() => formatEntryBundle([Buffer.alloc(0x10000)]), 'too_large');
      throwsCode(() => formatEntryBundle(Array.from({ length: 257 }, () => Buffer.alloc(1))), 'too_large');
      throwsCode(() => formatEntryBundle([]), 'malformed');
    });

    it('round-trips, and any cut inside an entry or any extra byte is rejected', () => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 40 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (entries, cutRaw, extra) => {
          const data = formatEntryBundle(entries);
          assert.deepEqual(parseEntryBundle(data).map((b) => Buffer.from(b)), entries.map((e) => Buffer.from(e)));
          const boundaries = new Set<number>();
          let pos = 0;
          for (const e of entries) boundaries.add((pos += 2 + e.length));
          const cut = cutRaw % data.length;
          if (!boundaries.has(cut)) throwsCode(() => parseEntryBundle(data.subarray(0, cut)), 'malformed');
          throwsCode(() => parseEntryBundle(Buffer.concat([data, Buffer.from([extra])])), 'malformed');
        }),
        { numRuns: 200 },
      );
    });
  });

  it('TILE_WIDTH is 256', () => assert.equal(TILE_WIDTH, 256));
});
