/**
 * Reading Merkle node hashes out of C2SP tlog-tiles hash tiles that an untrusted party served, authenticated against a
 * trusted tree root (golang.org/x/mod/sumdb/tlog TileHashReader, over NodeIds and tile levels of height 8):
 *
 *  1. planTileRead(nodes, treeSize) lists the tiles to fetch: first the tiles holding the complete subtrees whose fold
 *     is the root of the tree of treeSize (the right edge: every partial tile, and the tiles above them), then, for
 *     every requested node, its tile and every full tile between it and a tile already listed, parents before
 *     children.
 *  2. The caller fetches those tiles (HTTP, a directory, a store) — width·32 bytes each, at the widths the plan gives.
 *  3. readTileHashes(plan, data, rootHash) checks the right-edge tiles hash to rootHash, every other (full) tile
 *     against the hash its parent tile holds for it, and only then returns the requested nodes' hashes.
 *
 * A tile that does not authenticate fails with 'invalid_proof' (details.tile = its path): the server lied or the tile
 * is corrupt, whichever it is, nothing read from it is returned. Pure and synchronous.
 */
import type { Hash } from './types.ts';
import type { NodeId } from './merkle.ts';
import { completeSubtrees, hashRanges, nodesOf, type ProofRange } from './merkle.ts';
import { fail } from './errors.ts';
import { HASH_SIZE, nodeHash } from './hash.ts';
import { formatTilePath, hashPerfectSubtree, tileForNode, tileWidth, TILE_WIDTH, type Tile } from './tiles.ts';

export interface TileReadPlan {
  treeSize: number;
  /** The nodes asked for, in order. */
  nodes: NodeId[];
  /** The tiles to fetch, parents before children; readTileHashes wants their data in this order. */
  tiles: Tile[];
  /** The complete subtrees whose right-to-left fold is the root of the tree of treeSize, and the tile of each. */
  rootNodes: NodeId[];
  rootTiles: number[];
  /** For each requested node, the position of its tile in `tiles`. */
  nodeTiles: number[];
}

const key = (level: number, index: number): string => `${level}/${index}`;

/** The tile `k` tile levels above `tile` that holds (a hash of) it, at its width in a tree of `treeSize`. */
function tileParent(tile: Tile, k: number, treeSize: number): Tile {
  const level = tile.level + k;
  const index = Math.floor(tile.index / TILE_WIDTH ** k);
  return { level, index, width: tileWidth(level, index, treeSize) };
}

/**
 * The tiles to fetch to read `nodes` (complete subtrees of the tree of `treeSize`, > 0) authenticated against that
 * tree's root. Throws 'out_of_range' for a node outside the tree or a tree size of 0.
 */
export function planTileRead(nodes: NodeId[], treeSize: number): TileReadPlan {
  if (!Number.isSafeInteger(treeSize) || treeSize <= 0) fail('out_of_range', `no tiles to read in a tree of size ${treeSize}`);
  const tiles: Tile[] = [];
  const order = new Map<string, number>();
  const add = (t: Tile): number => {
    const k = key(t.level, t.index);
    let i = order.get(k);
    if (i === undefined) {
      i = tiles.length;
      order.set(k, i);
      tiles.push(t);
    }
    return i;
  };
  const rootNodes = completeSubtrees(0, treeSize);
  const rootTiles = rootNodes.map((n) => add(tileForNode(n, treeSize).tile));
  const nodeTiles = nodes.map((n) => {
    const tile = tileForNode(n, treeSize).tile;
    // Walk up until a tile already planned (every chain ends at the right edge, which is planned), then back down.
    let k = 0;
    while (!order.has(key(tile.level + k, Math.floor(tile.index / TILE_WIDTH ** k)))) {
      if (++k > 64) fail('internal', `planTileRead: no planned tile above ${formatTilePath(tile)}`);
    }
    for (k--; k >= 0; k--) {
      const p = tileParent(tile, k, treeSize);
      if (p.width !== TILE_WIDTH) fail('internal', `planTileRead: tile ${formatTilePath(p)} has a parent but is not full`);
      add(p);
    }
    return order.get(key(tile.level, tile.index))!;
  });
  return { treeSize, nodes, tiles, rootNodes, rootTiles, nodeTiles };
}

function hashInTile(tile: Tile, data: Uint8Array, node: NodeId, treeSize: number): Hash {
  const loc = tileForNode(node, treeSize);
  if (loc.tile.level !== tile.level || loc.tile.index !== tile.index) fail('internal', `node ${node.level}/${node.index} is not in ${formatTilePath(tile)}`);
  return hashPerfectSubtree(data, loc.offset, loc.count);
}

function notAuthentic(tile: Tile, treeSize: number, why: string): never {
  const path = formatTilePath(tile);
  return fail('invalid_proof', `hash tile ${path} does not match the signed tree of size ${treeSize} (${why}): the log served a tampered or corrupt tile`, { tile: path });
}

/**
 * The hashes of plan.nodes, read from `data` (data[i] the bytes of plan.tiles[i]) after authenticating every tile
 * against `rootHash`, the trusted root of the tree of plan.treeSize. Throws 'invalid_proof' (details.tile) for a tile
 * of the wrong length or one that does not authenticate.
 */
export function readTileHashes(plan: TileReadPlan, data: Uint8Array[], rootHash: Hash): Hash[] {
  const { tiles, treeSize } = plan;
  if (!Array.isArray(data) || data.length !== tiles.length) fail('internal', `readTileHashes: ${data?.length} tiles given for a plan of ${tiles.length}`);
  tiles.forEach((t, i) => {
    const d = data[i];
    if (!(d instanceof Uint8Array) || d.length !== t.width * HASH_SIZE) notAuthentic(t, treeSize, `${d?.length ?? 0} bytes, not ${t.width * HASH_SIZE}`);
  });
  // The right edge against the root.
  const n = plan.rootNodes.length;
  let root = hashInTile(tiles[plan.rootTiles[n - 1]!]!, data[plan.rootTiles[n - 1]!]!, plan.rootNodes[n - 1]!, treeSize);
  for (let i = n - 2; i >= 0; i--) root = nodeHash(hashInTile(tiles[plan.rootTiles[i]!]!, data[plan.rootTiles[i]!]!, plan.rootNodes[i]!, treeSize), root);
  if (!(rootHash instanceof Uint8Array) || Buffer.compare(root, rootHash) !== 0) {
    // Name the first right-edge tile: which of them is wrong cannot be told from the root alone.
    notAuthentic(tiles[plan.rootTiles[0]!]!, treeSize, 'the right-edge tiles do not hash to the checkpoint root');
  }
  const authentic = new Set(plan.rootTiles);
  const order = new Map(tiles.map((t, i) => [key(t.level, t.index), i]));
  // Every other tile is full and listed after its parent: check it against the hash its parent holds for it.
  for (let i = 0; i < tiles.length; i++) {
    if (authentic.has(i)) continue;
    const t = tiles[i]!;
    const p = tileParent(t, 1, treeSize);
    const j = order.get(key(p.level, p.index));
    if (j === undefined || !authentic.has(j) || t.width !== TILE_WIDTH) fail('internal', `readTileHashes: ${formatTilePath(t)} has no authenticated parent in the plan`);
    const at = (t.index % TILE_WIDTH) * HASH_SIZE;
    const want = data[j]!.subarray(at, at + HASH_SIZE);
    if (Buffer.compare(hashPerfectSubtree(data[i]!, 0, TILE_WIDTH), want) !== 0) notAuthentic(t, treeSize, `it does not hash to the entry for it in ${formatTilePath(p)}`);
    authentic.add(i);
  }
  return plan.nodes.map((node, i) => hashInTile(tiles[plan.nodeTiles[i]!]!, data[plan.nodeTiles[i]!]!, node, treeSize));
}

/** planTileRead for the nodes of proof ranges (core/merkle.ts planInclusionProof, planConsistencyProof, …). */
export function planRangesRead(ranges: ProofRange[], treeSize: number): TileReadPlan {
  return planTileRead(nodesOf(ranges), treeSize);
}

/** The hashes of proof ranges from authenticated tiles: readTileHashes, then each range folded (core/merkle.ts hashRanges). */
export function hashRangesFromTiles(ranges: ProofRange[], plan: TileReadPlan, data: Uint8Array[], rootHash: Hash): Hash[] {
  const hashes = readTileHashes(plan, data, rootHash);
  const byNode = new Map(plan.nodes.map((n, i) => [key(n.level, n.index), hashes[i]!]));
  return hashRanges(ranges, (n) => byNode.get(key(n.level, n.index)) ?? fail('internal', `node ${n.level}/${n.index} was not planned`));
}
