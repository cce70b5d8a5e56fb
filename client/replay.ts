/**
 * Replaying a log from its C2SP tiles with bounded memory: fetch entry bundles chunk by chunk, hash every leaf,
 * recompute the tree with core/integrate.ts from the saved right edge, compare every recomputed tile that is final
 * for the target size with the log's hash tile, and finally the recomputed root with the checkpoint's root.
 * Shared by monitor (from its saved position) and audit (from 0). Entry-level checks are the caller's hooks.
 */
import { integrate, rightEdgeTiles } from '../core/integrate.ts';
import { parseEntryBundle, tileWidth, formatTilePath, TILE_WIDTH, type Tile } from '../core/tiles.ts';
import { leafHash } from '../core/hash.ts';
import { EMPTY_ROOT } from '../core/hash.ts';
import { encodeBase64, decodeBase64 } from '../core/encoding.ts';
import { PkglogError } from '../core/errors.ts';
import type { Checkpoint } from '../core/checkpoint.ts';
import type { Hash } from '../core/types.ts';
import type { TileSource } from '../runtime/tiles.ts';

export type { TileSource };

/** Where a replay stands: the size verified so far, its recomputed root, and the right-edge partial hash tiles. */
export interface TreePosition {
  size: number;
  root: Hash;
  edge: Map<number, { tile: Tile; data: Buffer }>; // by level
}

export function emptyPosition(): TreePosition {
  return { size: 0, root: EMPTY_ROOT, edge: new Map() };
}

export function positionToJSON(p: TreePosition): Record<string, unknown> {
  return {
    size: p.size,
    root: encodeBase64(p.root),
    edge: [...p.edge.values()].map((e) => ({ level: e.tile.level, index: e.tile.index, width: e.tile.width, data: encodeBase64(e.data) })),
  };
}

export function positionFromJSON(j: unknown): TreePosition {
  const o = j as { size: number; root: string; edge: Array<{ level: number; index: number; width: number; data: string }> };
  const edge = new Map<number, { tile: Tile; data: Buffer }>();
  for (const e of o.edge) edge.set(e.level, { tile: { level: e.level, index: e.index, width: e.width }, data: decodeBase64(e.data, 'edge tile') });
  const p = { size: o.size, root: decodeBase64(o.root, 'root', 32), edge };
  const want = rightEdgeTiles(p.size).map((t) => formatTilePath(t)).join(',');
  const have = [...edge.values()].map((e) => formatTilePath(e.tile)).sort().join(',');
  if (want.split(',').sort().join(',') !== have) throw new Error('saved tree position is inconsistent with its size');
  return p;
}

/** A way the log's tiles contradict each other or its checkpoint. */
export interface TileViolation {
  kind: 'tile-mismatch' | 'root-mismatch' | 'bundle-malformed' | 'bundle-changed';
  message: string;
  tile?: string;
}

export interface ReplayHooks {
  /** Each new entry in log order (leaf bytes and hash). Throw to abort. */
  entry(index: number, leaf: Buffer, hash: Hash): void;
  /** After each chunk is verified against the hash tiles (position is the new verified size). */
  chunk?(pos: TreePosition): Promise<void> | void;
}

export interface ReplayOptions {
  /** Entry bundles per chunk (memory: ≈ chunkBundles·256 leaves). */
  chunkBundles?: number;
  /** Parallel tile fetches. */
  concurrency?: number;
  /** Skip fetching hash tiles to compare (the root comparison still covers everything). */
  skipHashTiles?: boolean;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}

/**
 * Replays from `from` to `target` (target.treeSize ≥ from.size). Returns the new position, or the first violation.
 * Network errors propagate.
 */
export async function replay(
  source: TileSource,
  from: TreePosition,
  target: Checkpoint,
  hooks: ReplayHooks,
  opts: ReplayOptions = {},
): Promise<{ pos: TreePosition } | { violation: TileViolation; pos: TreePosition }> {
  const chunkBundles = opts.chunkBundles ?? 64;
  const concurrency = opts.concurrency ?? 8;
  const end = target.treeSize;
  let pos: TreePosition = { size: from.size, root: from.root, edge: new Map(from.edge) };
  if (end < pos.size) return { pos, violation: { kind: 'root-mismatch', message: `checkpoint size ${end} is smaller than the verified size ${pos.size}` } };
  while (pos.size < end) {
    const firstBundle = Math.floor(pos.size / TILE_WIDTH);
    const lastBundle = Math.min(Math.ceil(end / TILE_WIDTH), firstBundle + chunkBundles) - 1;
    const tiles: Tile[] = [];
    for (let b = firstBundle; b <= lastBundle; b++) tiles.push({ level: -1, index: b, width: tileWidth(0, b, end) });
    const bundles = await mapLimit(tiles, concurrency, (t) => source.tile(t));
    const hashes: Hash[] = [];
    for (let k = 0; k < tiles.length; k++) {
      const t = tiles[k]!;
      let leaves: Buffer[];
      try {
        leaves = parseEntryBundle(bundles[k]!);
      } catch (e) {
        return { pos, violation: { kind: 'bundle-malformed', tile: formatTilePath(t), message: `${formatTilePath(t)} is not a valid entry bundle: ${(e as Error).message}` } };
      }
      if (leaves.length !== t.width) {
        return { pos, violation: { kind: 'bundle-malformed', tile: formatTilePath(t), message: `${formatTilePath(t)} has ${leaves.length} entries, expected ${t.width}` } };
      }
      const base = t.index * TILE_WIDTH;
      for (let i = 0; i < leaves.length; i++) {
        const index = base + i;
        const h = leafHash(leaves[i]!);
        if (index < pos.size) {
          // Already verified: the log must serve the same entries again (entry bundles are immutable).
          const edge0 = pos.edge.get(0);
          if (edge0 !== undefined && edge0.tile.index === t.index && !edge0.data.subarray(i * 32, i * 32 + 32).equals(h)) {
            return { pos, violation: { kind: 'bundle-changed', tile: formatTilePath(t), message: `entry ${index} in ${formatTilePath(t)} differs from the one verified earlier` } };
          }
          continue;
        }
        hooks.entry(index, leaves[i]!, h);
        hashes.push(h);
      }
    }
    const edge = pos.edge;
    let result;
    try {
      result = integrate(pos.size, (t) => {
        const e = edge.get(t.level);
        if (e === undefined || e.tile.index !== t.index || e.tile.width !== t.width) throw new PkglogError('internal', `missing edge tile ${formatTilePath(t)}`);
        return e.data;
      }, hashes);
    } catch (e) {
      throw e instanceof PkglogError ? e : new PkglogError('internal', String(e));
    }
    const newEdge = new Map<number, { tile: Tile; data: Buffer }>();
    const changed = new Map<number, { tile: Tile; data: Buffer }>();
    for (const t of result.tiles) changed.set(t.tile.level, t);
    for (const t of rightEdgeTiles(result.treeSize)) {
      const c = changed.get(t.level);
      const e = c !== undefined && c.tile.index === t.index ? c : edge.get(t.level);
      if (e === undefined || e.tile.index !== t.index || e.tile.width !== t.width) throw new PkglogError('internal', `edge tile ${formatTilePath(t)} not produced`);
      newEdge.set(t.level, { tile: t, data: Buffer.from(e.data) });
    }
    // Compare every recomputed tile that is final for the target size with the log's hash tile.
    if (!opts.skipHashTiles) {
      const finals = result.tiles.filter((t) => t.tile.width === tileWidth(t.tile.level, t.tile.index, end));
      const served = await mapLimit(finals, concurrency, (t) => source.tile(t.tile));
      for (let k = 0; k < finals.length; k++) {
        if (!served[k]!.equals(finals[k]!.data)) {
          const p = formatTilePath(finals[k]!.tile);
          return { pos, violation: { kind: 'tile-mismatch', tile: p, message: `hash tile ${p} served by the log differs from the tile recomputed from its entry bundles` } };
        }
      }
    }
    pos = { size: result.treeSize, root: result.rootHash, edge: newEdge };
    await hooks.chunk?.(pos);
  }
  if (!pos.root.equals(target.rootHash)) {
    return {
      pos,
      violation: {
        kind: 'root-mismatch',
        message: `the tree recomputed from the log's entry bundles has root ${pos.root.toString('base64')} at size ${end}, but the checkpoint says ${target.rootHash.toString('base64')}`,
      },
    };
  }
  return { pos };
}
