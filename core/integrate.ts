/**
 * Integration (transparency-dev/tessera storage/internal/integrate.go style): a pure function from
 * (tile reader, old tree size, new leaf hashes) to (new tiles, new root). The store persists exactly what it returns.
 */
import type { Hash } from './types.ts';
import type { Tile } from './tiles.ts';
import { fail } from './errors.ts';

export interface IntegrateResult {
  treeSize: number;
  rootHash: Hash;
  /** Every hash tile that changed, with its full new contents (width·32 bytes); tile.width is the new width. */
  tiles: Array<{ tile: Tile; data: Buffer }>;
}

/**
 * `readTile(tile)` returns the stored contents of a right-edge hash tile of the tree of `oldSize`
 * (tile.width = tileWidth(level, index, oldSize)); it is only called for partial tiles of the old tree.
 */
export function integrate(oldSize: number, readTile: (tile: Tile) => Buffer, newLeafHashes: Hash[]): IntegrateResult {
  void oldSize; void readTile; void newLeafHashes;
  return fail('internal', 'not implemented');
}
