/**
 * Integration (transparency-dev/tessera storage/internal/integrate.go style): a pure function from
 * (tile reader, old tree size, new leaf hashes) to (new tiles, new root). The store persists exactly what it returns.
 *
 * Work is O(batch + log n): level 0 receives the new leaf hashes; every level-L tile that becomes full in this batch
 * contributes its subtree hash to level L+1 (partial tiles never feed the level above). The root is the fold of the
 * complete subtrees of each level's right-edge partial tile, highest level first; levels the batch does not reach
 * are read (their old partial tile) only for that.
 */
import type { Hash } from './types.ts';
import { type Tile, TILE_WIDTH, hashPerfectSubtree, formatTilePath, innerLevels } from './tiles.ts';
import { fail } from './errors.ts';
import { EMPTY_ROOT, HASH_SIZE, nodeHash } from './hash.ts';

export interface IntegrateResult {
  treeSize: number;
  rootHash: Hash;
  /**
   * Every hash tile that changed, with its full new contents (width·32 bytes); tile.width is the new width. A tile that
   * became full also carries `inner`: its complete inner levels 1…7 concatenated (254 hashes), so a store can serve any
   * node of it without rehashing.
   */
  tiles: IntegratedTile[];
}

export interface IntegratedTile {
  tile: Tile;
  data: Buffer;
  inner?: Buffer;
}

/** The most leaf hashes one integrate() call accepts (a guard against accidental unbounded batches). */
export const MAX_INTEGRATE_BATCH = 1 << 24;

/**
 * The partial right-edge hash tiles of a tree of `treeSize`, lowest level first (each with width 1…255).
 * These are the tiles integrate() may read for a tree of that size; a tree needs them to compute its root.
 */
export function rightEdgeTiles(treeSize: number): Tile[] {
  if (!Number.isSafeInteger(treeSize) || treeSize < 0) fail('out_of_range', `bad tree size ${treeSize}`);
  const out: Tile[] = [];
  for (let level = 0, count = treeSize; count > 0; level++, count = Math.floor(count / TILE_WIDTH)) {
    const width = count % TILE_WIDTH;
    if (width > 0) out.push({ level, index: Math.floor(count / TILE_WIDTH), width });
  }
  return out;
}

/**
 * `readTile(tile)` returns the stored contents of a right-edge hash tile of the tree of `oldSize`
 * (tile.width = tileWidth(level, index, oldSize)); it is only called for partial tiles of the old tree.
 * Throws 'out_of_range' for a bad oldSize or an oversized batch, 'malformed' for a leaf hash that is not 32 bytes,
 * 'internal' when readTile returns data of the wrong length.
 */
export function integrate(oldSize: number, readTile: (tile: Tile) => Buffer, newLeafHashes: Hash[]): IntegrateResult {
  if (!Number.isSafeInteger(oldSize) || oldSize < 0) fail('out_of_range', `bad tree size ${oldSize}`);
  if (!Array.isArray(newLeafHashes)) fail('malformed', 'new leaf hashes must be an array');
  if (newLeafHashes.length > MAX_INTEGRATE_BATCH) fail('out_of_range', `batch of ${newLeafHashes.length} leaves is too large`);
  const newSize = oldSize + newLeafHashes.length;
  if (!Number.isSafeInteger(newSize)) fail('out_of_range', 'tree size would exceed 2^53-1');
  for (const h of newLeafHashes) {
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) fail('malformed', 'leaf hash is not 32 bytes');
  }

  const tiles: IntegratedTile[] = [];
  const edgeNodes: Hash[][] = []; // per level, the complete subtrees of its right-edge partial tile, left to right
  let incoming: Uint8Array[] = newLeafHashes;
  let oldCount = oldSize; // hashes at this level in the old tree (Merkle level 8·level)
  let newCount = newSize;

  const readOld = (tile: Tile): Buffer => {
    const data = readTile(tile);
    if (!(data instanceof Uint8Array) || data.length !== tile.width * HASH_SIZE) {
      fail('internal', `stored ${formatTilePath(tile)} is not ${tile.width * HASH_SIZE} bytes`);
    }
    return data;
  };

  for (let level = 0; newCount > 0; level++) {
    const oldWidth = oldCount % TILE_WIDTH;
    let tileIndex = Math.floor(oldCount / TILE_WIDTH);
    let edge: Buffer | undefined; // contents of this level's new right-edge partial tile
    const next: Hash[] = [];

    if (incoming.length > 0) {
      if (incoming.length !== newCount - oldCount) fail('internal', 'integrate: level counts disagree');
      let carry: Buffer | undefined = oldWidth > 0 ? readOld({ level, index: tileIndex, width: oldWidth }) : undefined;
      let used = 0; // incoming hashes placed so far
      while (used < incoming.length) {
        const have = carry === undefined ? 0 : carry.length / HASH_SIZE;
        const take = Math.min(TILE_WIDTH - have, incoming.length - used);
        const width = have + take;
        const data = Buffer.allocUnsafe(width * HASH_SIZE);
        if (carry !== undefined) carry.copy(data, 0);
        for (let i = 0; i < take; i++) data.set(incoming[used + i]!, (have + i) * HASH_SIZE);
        used += take;
        carry = undefined;
        if (width === TILE_WIDTH) {
          const levels = innerLevels(data, TILE_WIDTH);
          const top = levels[levels.length - 1]!;
          next.push(nodeHash(top.subarray(0, HASH_SIZE), top.subarray(HASH_SIZE)));
          tiles.push({ tile: { level, index: tileIndex, width }, data, inner: Buffer.concat(levels.slice(1)) });
        } else {
          tiles.push({ tile: { level, index: tileIndex, width }, data });
          edge = data;
        }
        tileIndex++;
      }
    } else if (oldWidth > 0) {
      edge = readOld({ level, index: tileIndex, width: oldWidth });
    }

    const nodes: Hash[] = [];
    if (edge !== undefined) {
      const width = edge.length / HASH_SIZE;
      let pos = 0;
      for (let size = TILE_WIDTH / 2; size >= 1; size /= 2) {
        if (width & size) {
          nodes.push(hashPerfectSubtree(edge, pos, size));
          pos += size;
        }
      }
    }
    edgeNodes.push(nodes);

    incoming = next;
    oldCount = Math.floor(oldCount / TILE_WIDTH);
    newCount = Math.floor(newCount / TILE_WIDTH);
  }

  let rootHash: Hash | undefined;
  for (let level = 0; level < edgeNodes.length; level++) {
    const nodes = edgeNodes[level]!;
    for (let i = nodes.length - 1; i >= 0; i--) rootHash = rootHash === undefined ? nodes[i]! : nodeHash(nodes[i]!, rootHash);
  }
  return { treeSize: newSize, rootHash: rootHash ?? Buffer.from(EMPTY_ROOT), tiles };
}
