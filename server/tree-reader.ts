/**
 * Reads Merkle nodes of the stored tree for proofs: a node at a level that is a multiple of 8 is one hash in a stored
 * tile; any other complete node is rehashed from the run of hashes under it in one tile. Complete nodes never change,
 * so they are memoized in a bounded cache; a proof touches O(log n) nodes and at most a few tiles per tile level.
 * A full tile's inner levels are stored with it (log-store tile_inner), so its nodes are read, not rehashed; for a
 * partial tile (or one stored before that table), a cached tile that keeps being rehashed (more hashes spent on it than its whole inner tree costs, at most 255) gets
 * the complete nodes of its 7 inner levels hashed once: the proofs of a batch's entries, which share their tiles, then
 * only look up; a tile touched by one proof costs what it did (only the nodes it needs).
 */
import { fail } from '../core/errors.ts';
import { HASH_SIZE } from '../core/hash.ts';
import { hashRanges, planConsistencyProof, planInclusionProof, type NodeId } from '../core/merkle.ts';
import { hashPerfectSubtree, innerLevels, splitInnerLevels, TILE_HEIGHT } from '../core/tiles.ts';
import type { Hash } from '../core/types.ts';
import type { LogStore } from '../log-store/store.ts';

const TILE_CACHE_LIMIT = 512; // 4 MiB of tiles (and up to 4 MiB of their inner levels)

interface CachedTile {
  width: number;
  data: Buffer;
  /** inner[r] (1 ≤ r < TILE_HEIGHT): the complete nodes r levels above the tile's row, floor(width / 2^r) hashes. */
  inner?: Buffer[];
  /** Hashes spent rehashing nodes of this tile one by one (before `inner`). */
  spent?: number;
}

export class TreeReader {
  private readonly cache = new Map<string, Hash>();
  private readonly tiles = new Map<string, CachedTile>();
  private readonly store: LogStore;
  private readonly limit: number;

  constructor(store: LogStore, cacheLimit = 100_000) {
    this.store = store;
    this.limit = cacheLimit;
  }

  /** The hash of a complete node of the stored tree (which must contain it): one tile read, at most 255 hashes. */
  node(level: number, index: number): Hash {
    const key = `${level}/${index}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    // The node is the root of a perfect subtree whose leaves are 2^r consecutive hashes of one stored tile.
    const tileLevel = Math.floor(level / TILE_HEIGHT);
    const r = level % TILE_HEIGHT;
    const first = index * 2 ** r;
    const offset = first % 256;
    const t = this.tile(tileLevel, Math.floor(first / 256), offset + 2 ** r);
    let h: Hash;
    if (r === 0) {
      h = Buffer.from(t.data.subarray(offset * HASH_SIZE, (offset + 1) * HASH_SIZE));
    } else {
      if (t.inner === undefined) {
        // 2^r − 1 hashes for this node alone; past the cost of the whole inner tree (width − 1), hash that once.
        t.spent = (t.spent ?? 0) + 2 ** r - 1;
        if (t.spent > t.width - 1) t.inner = innerLevels(t.data, t.width);
      }
      if (t.inner === undefined) {
        h = hashPerfectSubtree(t.data, offset, 2 ** r);
      } else {
        const row = t.inner[r]!;
        const at = (offset / 2 ** r) * HASH_SIZE;
        if (at + HASH_SIZE > row.length) fail('internal', `tile ${tileLevel}/${Math.floor(first / 256)} has no complete node ${level}/${index}`);
        h = Buffer.from(row.subarray(at, at + HASH_SIZE));
      }
    }
    if (this.cache.size >= this.limit) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, h);
    return h;
  }

  /**
   * A stored tile at least `width` wide. Tiles only grow by extension (the store enforces it), so a cached copy stays
   * valid for every node it covers; a narrower cached copy is re-read.
   */
  private tile(level: number, index: number, width: number): CachedTile {
    const key = `${level}/${index}`;
    let t = this.tiles.get(key);
    if (t === undefined || t.width < width) {
      t = this.store.tile(level, index);
      if (t === undefined || t.width < width) return fail('internal', `missing stored tile ${key} of width ${width}`);
      if (t.width === 256) {
        // A full tile's inner levels are stored with it (by integration): no rehashing at all.
        const inner = this.store.tileInner(level, index);
        if (inner !== undefined) t.inner = splitInnerLevels(t.data, inner);
      }
      if (this.tiles.size >= TILE_CACHE_LIMIT) this.tiles.delete(this.tiles.keys().next().value!);
      this.tiles.set(key, t);
    }
    return t;
  }

  private getNode = (n: NodeId): Hash => this.node(n.level, n.index);

  inclusionProof(index: number, treeSize: number): Hash[] {
    const plan = planInclusionProof(index, treeSize);
    return hashRanges(plan, this.getNode);
  }

  consistencyProof(oldSize: number, newSize: number): Hash[] {
    const plan = planConsistencyProof(oldSize, newSize);
    return hashRanges(plan, this.getNode);
  }
}
