/**
 * Reads Merkle nodes of the stored tree for proofs: the server's synchronous path over its own (trusted) store. Where
 * a node sits is core/tiles.ts tileForNode (the same planning every party's tile reader uses, core/tile-hashes.ts):
 * the tile at tile level floor(h/8), and the run of bottom-row hashes whose fold is the node. When h is a multiple of
 * 8 the node is one hash of the tile's row; otherwise it is one of the tile's inner levels. A full tile's inner levels
 * are stored with it (log-store `tiles.inner`, computed by integration), so its nodes are read, not rehashed. For a
 * partial right-edge tile the node is rehashed from the row under it (core/tiles.ts hashPerfectSubtree), until the
 * hashes spent on that tile exceed what its whole inner tree costs (at most 255): then its inner levels are hashed
 * once. Tiles are cached (LRU, bounded: level 0 apart from the upper levels); a proof touches O(log n) nodes in a few
 * tiles per tile level. Returned
 * hashes are views of cached tile data, which is never modified.
 */
import { LRUCache } from 'lru-cache';
import { fail } from '../core/errors.ts';
import { HASH_SIZE } from '../core/hash.ts';
import { hashRanges, planConsistencyProof, planInclusionProof, type NodeId, type ProofRange } from '../core/merkle.ts';
import { hashPerfectSubtree, innerLevels, splitInnerLevels, tileForNode, TILE_HEIGHT } from '../core/tiles.ts';
import type { Hash } from '../core/types.ts';
import type { Store } from '../log-store/types.ts';

/**
 * Two bounded caches, so the random level-0 tiles of proofs never evict the few upper tiles every proof touches (at
 * 10,000,000 entries: 153 level-1 tiles and one level-2 tile, against 39,063 level-0 tiles).
 */
const BOTTOM_CACHE_LIMIT = 512; // level 0: at most 8 MiB (512 tiles and their inner levels)
const UPPER_CACHE_LIMIT = 1024; // levels ≥ 1: at most 16 MiB; holds every upper tile of a tree below 2^26 entries

interface CachedTile {
  width: number;
  data: Buffer;
  /** inner[r] (1 ≤ r < TILE_HEIGHT): the complete nodes r levels above the tile's row, floor(width / 2^r) hashes. */
  inner?: Buffer[];
  /** Hashes spent rehashing nodes of a partial tile one by one (before `inner`). */
  spent?: number;
}

export class TreeReader {
  private readonly bottom = new LRUCache<number, CachedTile>({ max: BOTTOM_CACHE_LIMIT });
  private readonly upper = new LRUCache<number, CachedTile>({ max: UPPER_CACHE_LIMIT });
  private readonly store: Store;

  constructor(store: Store) {
    this.store = store;
  }

  /**
   * The hash of a complete node of the stored tree of `treeSize` (which the store must hold), from tiles already
   * cached (load() them first).
   */
  private node(tiles: Map<number, CachedTile>, node: NodeId, treeSize: number): Hash {
    const { tile, offset, count } = tileForNode(node, treeSize);
    const r = node.level % TILE_HEIGHT;
    const t = tiles.get(tile.level * 2 ** 46 + tile.index);
    if (t === undefined || t.width < offset + count) return fail('internal', `missing stored tile ${tile.level}/${tile.index} of width ${offset + count}`);
    if (r === 0) return t.data.subarray(offset * HASH_SIZE, (offset + 1) * HASH_SIZE);
    if (t.inner === undefined) {
      // count − 1 hashes for this node alone; past the cost of the whole inner tree (width − 1), hash that once.
      t.spent = (t.spent ?? 0) + count - 1;
      if (t.spent <= t.width - 1) return hashPerfectSubtree(t.data, offset, count);
      t.inner = innerLevels(t.data, t.width);
    }
    const row = t.inner[r]!;
    const at = (offset / count) * HASH_SIZE;
    if (at + HASH_SIZE > row.length) fail('internal', `tile ${tile.level}/${tile.index} has no complete node ${node.level}/${node.index}`);
    return row.subarray(at, at + HASH_SIZE);
  }

  /**
   * Brings every tile the nodes need into the cache, at least as wide as they need. Tiles only grow by extension (the
   * store enforces it), so a cached copy stays valid for every node it covers; a narrower cached copy is re-read.
   * Nothing is read when every tile is cached (the common case: the right edge and the tiles above it). Returns the
   * tiles by key, so a proof never depends on what another request evicted meanwhile.
   */
  private async load(ranges: ProofRange[], treeSize: number): Promise<Map<number, CachedTile>> {
    const out = new Map<number, CachedTile>();
    for (const r of ranges) {
      for (const n of r.nodes) {
        const { tile, offset, count } = tileForNode(n, treeSize);
        const key = tile.level * 2 ** 46 + tile.index;
        const width = offset + count;
        const have = out.get(key);
        if (have !== undefined && have.width >= width) continue;
        const cache = tile.level === 0 ? this.bottom : this.upper;
        let t = cache.get(key);
        if (t === undefined || t.width < width) {
          const stored = await this.store.tileWithInner(tile.level, tile.index);
          if (stored === undefined || stored.width < width) return fail('internal', `missing stored tile ${tile.level}/${tile.index} of width ${width}`);
          t = stored.inner === undefined
            ? { width: stored.width, data: stored.data }
            : { width: stored.width, data: stored.data, inner: splitInnerLevels(stored.data, stored.inner) };
          cache.set(key, t);
        }
        out.set(key, t);
      }
    }
    return out;
  }

  /** The hash of one complete node of the stored tree of `treeSize`. */
  async nodeHash(node: NodeId, treeSize: number): Promise<Hash> {
    const tiles = await this.load([{ start: 0, end: 0, nodes: [node] } as ProofRange], treeSize);
    return this.node(tiles, node, treeSize);
  }

  async inclusionProof(index: number, treeSize: number): Promise<Hash[]> {
    const plan = planInclusionProof(index, treeSize);
    const tiles = await this.load(plan, treeSize);
    return hashRanges(plan, (n) => this.node(tiles, n, treeSize));
  }

  async consistencyProof(oldSize: number, newSize: number): Promise<Hash[]> {
    const plan = planConsistencyProof(oldSize, newSize);
    const tiles = await this.load(plan, newSize);
    return hashRanges(plan, (n) => this.node(tiles, n, newSize));
  }
}
