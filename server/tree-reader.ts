/**
 * Reads Merkle nodes of the stored tree for proofs: a node at a level that is a multiple of 8 is one hash in a stored
 * tile; any other complete node is rehashed from the run of hashes under it in one tile. Complete nodes never change,
 * so they are memoized in a bounded cache; a proof touches O(log n) nodes and at most a few tiles per tile level.
 */
import { fail } from '../core/errors.ts';
import { hashRanges, planConsistencyProof, planInclusionProof, type NodeId } from '../core/merkle.ts';
import { hashPerfectSubtree, TILE_HEIGHT } from '../core/tiles.ts';
import type { Hash } from '../core/types.ts';
import type { LogStore } from '../log-store/store.ts';

const TILE_CACHE_LIMIT = 512; // 4 MiB of tiles

export class TreeReader {
  private readonly cache = new Map<string, Hash>();
  private readonly tiles = new Map<string, { width: number; data: Buffer }>();
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
    const h = hashPerfectSubtree(t.data, offset, 2 ** r);
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
  private tile(level: number, index: number, width: number): { width: number; data: Buffer } {
    const key = `${level}/${index}`;
    let t = this.tiles.get(key);
    if (t === undefined || t.width < width) {
      t = this.store.tile(level, index);
      if (t === undefined || t.width < width) return fail('internal', `missing stored tile ${key} of width ${width}`);
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
