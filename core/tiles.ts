/**
 * C2SP tlog-tiles: tile coordinates, paths, widths, and reading Merkle nodes out of hash tiles.
 * Tile height is 8 (256 hashes per full tile). A hash tile at tile level L, index N holds the hashes of the
 * Merkle nodes at Merkle level 8·L with indices N·256 … N·256+width-1.
 */
import type { Hash } from './types.ts';
import type { NodeId } from './merkle.ts';
import { fail } from './errors.ts';

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;

/** A hash tile (level ≥ 0) or, with level = -1, an entry bundle. width is 1…256 (256 = full). */
export interface Tile {
  level: number;
  index: number;
  width: number;
}

/** `tile/<L>/<N>[.p/<W>]` (or `tile/entries/<N>[.p/<W>]` when level = -1); N in x-prefixed 3-digit groups. */
export function formatTilePath(tile: Tile): string {
  void tile;
  return fail('internal', 'not implemented');
}

/** Strict inverse of formatTilePath (path without a leading slash). Throws 'malformed'. */
export function parseTilePath(path: string): Tile {
  void path;
  return fail('internal', 'not implemented');
}

/** Width of tile (level, index) in a tree of `treeSize` leaves: 256 if full, 1…255 if partial, 0 if it does not exist yet. */
export function tileWidth(level: number, index: number, treeSize: number): number {
  void level; void index; void treeSize;
  return fail('internal', 'not implemented');
}

/** The tiles (at the widths of `treeSize`) that hold the given nodes, deduplicated. Level -1 is never returned. */
export function tilesForNodes(nodes: NodeId[], treeSize: number): Tile[] {
  void nodes; void treeSize;
  return fail('internal', 'not implemented');
}

/**
 * The hash of `node` computed from tile data (`readTile` returns the bytes of a tile returned by tilesForNodes,
 * width·32 bytes). Nodes above the tile's bottom row are rehashed from it.
 */
export function nodeHashFromTiles(node: NodeId, treeSize: number, readTile: (tile: Tile) => Buffer): Hash {
  void node; void treeSize; void readTile;
  return fail('internal', 'not implemented');
}

/** Entry bundle: each entry as a 2-byte big-endian length then its bytes. */
export function formatEntryBundle(entries: Uint8Array[]): Buffer {
  void entries;
  return fail('internal', 'not implemented');
}

/** Strict inverse of formatEntryBundle. Throws 'malformed'. */
export function parseEntryBundle(data: Uint8Array): Buffer[] {
  void data;
  return fail('internal', 'not implemented');
}
