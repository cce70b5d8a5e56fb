/**
 * Reads Merkle nodes of the stored tree for proofs: a node at a level that is a multiple of 8 is one hash in a stored
 * tile; any other complete node is rehashed from its children. Complete nodes never change, so they are memoized in a
 * bounded LRU; a proof touches O(log n) nodes and at most a few tiles.
 */
import { fail } from '../core/errors.ts';
import { nodeHash } from '../core/hash.ts';
import { hashRanges, planConsistencyProof, planInclusionProof, type NodeId } from '../core/merkle.ts';
import { TILE_HEIGHT } from '../core/tiles.ts';
import type { Hash } from '../core/types.ts';
import type { LogStore } from '../log-store/store.ts';

export class TreeReader {
  private readonly cache = new Map<string, Hash>();
  private readonly store: LogStore;
  private readonly limit: number;

  constructor(store: LogStore, cacheLimit = 100_000) {
    this.store = store;
    this.limit = cacheLimit;
  }

  /** The hash of a complete node of the stored tree (which must contain it). */
  node(level: number, index: number): Hash {
    const key = `${level}/${index}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    let h: Hash;
    if (level % TILE_HEIGHT === 0) {
      const t = this.store.tile(level / TILE_HEIGHT, Math.floor(index / 256));
      const off = (index % 256) * 32;
      if (t === undefined || t.data.length < off + 32) fail('internal', `missing stored node ${key}`);
      h = Buffer.from(t.data.subarray(off, off + 32));
    } else {
      h = nodeHash(this.node(level - 1, 2 * index), this.node(level - 1, 2 * index + 1));
    }
    if (this.cache.size >= this.limit) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, h);
    return h;
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
