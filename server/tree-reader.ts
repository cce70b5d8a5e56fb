/**
 * Reads Merkle nodes of the stored tree for proofs. A complete node at Merkle level h sits in the tile at tile level
 * floor(h/8): when h is a multiple of 8 it is one hash of the tile's row; otherwise it is one of the tile's inner levels.
 * A full tile's inner levels are stored with it (log-store `tiles.inner`, computed by integration), so its nodes are
 * read, not rehashed. For a partial right-edge tile the node is rehashed from the row under it, until the hashes spent
 * on that tile exceed what its whole inner tree costs (at most 255): then its inner levels are hashed once.
 * Tiles are cached (bounded); a proof touches O(log n) nodes in a few tiles per tile level. Returned hashes are views
 * of cached tile data, which is never modified.
 */
import { fail } from '../core/errors.ts';
import { HASH_SIZE } from '../core/hash.ts';
import { hashRanges, planConsistencyProof, planInclusionProof, type NodeId } from '../core/merkle.ts';
import { hashPerfectSubtree, innerLevels, splitInnerLevels, TILE_HEIGHT } from '../core/tiles.ts';
import type { Hash } from '../core/types.ts';
import type { LogStore } from '../log-store/store.ts';

const TILE_CACHE_LIMIT = 512; // at most 8 MiB: 512 tiles and their inner levels

interface CachedTile {
  width: number;
  data: Buffer;
  /** inner[r] (1 ≤ r < TILE_HEIGHT): the complete nodes r levels above the tile's row, floor(width / 2^r) hashes. */
  inner?: Buffer[];
  /** Hashes spent rehashing nodes of a partial tile one by one (before `inner`). */
  spent?: number;
}

export class TreeReader {
  private readonly tiles = new Map<number, CachedTile>();
  private readonly store: LogStore;

  constructor(store: LogStore) {
    this.store = store;
  }

  /** The hash of a complete node of the stored tree (which must contain it). */
  node(level: number, index: number): Hash {
    const tileLevel = Math.floor(level / TILE_HEIGHT);
    const r = level % TILE_HEIGHT;
    const first = index * 2 ** r;
    const offset = first % 256;
    const tileIndex = Math.floor(first / 256);
    const t = this.tile(tileLevel, tileIndex, offset + 2 ** r);
    if (r === 0) return t.data.subarray(offset * HASH_SIZE, (offset + 1) * HASH_SIZE);
    if (t.inner === undefined) {
      // 2^r − 1 hashes for this node alone; past the cost of the whole inner tree (width − 1), hash that once.
      t.spent = (t.spent ?? 0) + 2 ** r - 1;
      if (t.spent <= t.width - 1) return hashPerfectSubtree(t.data, offset, 2 ** r);
      t.inner = innerLevels(t.data, t.width);
    }
    const row = t.inner[r]!;
    const at = (offset / 2 ** r) * HASH_SIZE;
    if (at + HASH_SIZE > row.length) fail('internal', `tile ${tileLevel}/${tileIndex} has no complete node ${level}/${index}`);
    return row.subarray(at, at + HASH_SIZE);
  }

  /**
   * A stored tile at least `width` wide. Tiles only grow by extension (the store enforces it), so a cached copy stays
   * valid for every node it covers; a narrower cached copy is re-read.
   */
  private tile(level: number, index: number, width: number): CachedTile {
    const key = level * 2 ** 46 + index;
    let t = this.tiles.get(key);
    if (t === undefined || t.width < width) {
      const stored = this.store.tileWithInner(level, index);
      if (stored === undefined || stored.width < width) return fail('internal', `missing stored tile ${level}/${index} of width ${width}`);
      t = stored.inner === undefined
        ? { width: stored.width, data: stored.data }
        : { width: stored.width, data: stored.data, inner: splitInnerLevels(stored.data, stored.inner) };
      if (this.tiles.size >= TILE_CACHE_LIMIT) this.tiles.delete(this.tiles.keys().next().value!);
      this.tiles.set(key, t);
    }
    return t;
  }

  private getNode = (n: NodeId): Hash => this.node(n.level, n.index);

  inclusionProof(index: number, treeSize: number): Hash[] {
    return hashRanges(planInclusionProof(index, treeSize), this.getNode);
  }

  consistencyProof(oldSize: number, newSize: number): Hash[] {
    return hashRanges(planConsistencyProof(oldSize, newSize), this.getNode);
  }
}
