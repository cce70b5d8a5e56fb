/**
 * Reading a log's C2SP tlog-tiles over HTTP (or any tile source) and the async glue around core/tile-hashes.ts:
 * fetch the tiles a set of nodes needs, then read the hashes authenticated against a trusted checkpoint root.
 * Used by the client (inclusion and consistency proofs, fork and violation evidence), the witness's pull mode
 * (consistency proofs from the log's tiles) and, later, a mirror.
 */
import { LRUCache } from 'lru-cache';
import { fail, isPkglogError } from '../core/errors.ts';
import { HASH_SIZE } from '../core/hash.ts';
import type { Hash } from '../core/types.ts';
import { planConsistencyProof, planInclusionProof, type NodeId, type ProofRange } from '../core/merkle.ts';
import { planRangesRead, planTileRead, readTileHashes, hashRangesFromTiles } from '../core/tile-hashes.ts';
import { formatTilePath, parseEntryBundle, tileWidth, MAX_ENTRY_SIZE, TILE_WIDTH, type Tile } from '../core/tiles.ts';
import { getOk, normalizeBaseURL, type HttpOptions } from './http.ts';

/** Anything that serves tiles: the bytes of a hash tile, or (level -1) an entry bundle, at exactly the width asked. */
export interface TileSource {
  tile(tile: Tile): Promise<Buffer>;
}

/** Fetches tiles `limit` at a time, in order. */
export async function fetchTiles(source: TileSource, tiles: Tile[], limit = 8): Promise<Buffer[]> {
  const out = new Array<Buffer>(tiles.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, tiles.length) }, async () => {
      while (next < tiles.length) {
        const i = next++;
        out[i] = await source.tile(tiles[i]!);
      }
    }),
  );
  return out;
}

/** The hashes of `nodes` in the tree of `treeSize` whose trusted root is `rootHash`, from authenticated tiles. */
export async function readHashes(source: TileSource, nodes: NodeId[], treeSize: number, rootHash: Hash): Promise<Hash[]> {
  const plan = planTileRead(nodes, treeSize);
  return readTileHashes(plan, await fetchTiles(source, plan.tiles), rootHash);
}

/** The hashes of proof ranges (core/merkle.ts plans) in the tree of `treeSize` with trusted root `rootHash`. */
export async function proofFromTiles(source: TileSource, ranges: ProofRange[], treeSize: number, rootHash: Hash): Promise<Hash[]> {
  if (ranges.length === 0) return [];
  const plan = planRangesRead(ranges, treeSize);
  return hashRangesFromTiles(ranges, plan, await fetchTiles(source, plan.tiles), rootHash);
}

/** The RFC 6962 inclusion proof of leaf `index` in the tree of `treeSize` (trusted root `rootHash`), from tiles. */
export function inclusionProofFromTiles(source: TileSource, index: number, treeSize: number, rootHash: Hash): Promise<Hash[]> {
  return proofFromTiles(source, planInclusionProof(index, treeSize), treeSize, rootHash);
}

/**
 * The RFC 6962 consistency proof from `oldSize` to `newSize`, read from tiles of the tree of `newSize`
 * authenticated against its trusted root `newRoot` (empty when oldSize is 0 or equal to newSize). Whether the old
 * tree is a prefix is then the verifier's question (core/merkle.ts verifyConsistency).
 */
export async function consistencyProofFromTiles(source: TileSource, oldSize: number, newSize: number, newRoot: Hash): Promise<Hash[]> {
  if (oldSize === 0 || oldSize === newSize) return [];
  return proofFromTiles(source, planConsistencyProof(oldSize, newSize), newSize, newRoot);
}

/** The leaf bytes of entry `index` in the tree of `treeSize`, from its entry bundle (prove its inclusion before use). */
export async function leafFromTiles(source: TileSource, index: number, treeSize: number): Promise<Buffer> {
  if (!Number.isSafeInteger(index) || index < 0 || index >= treeSize) fail('out_of_range', `entry ${index} is outside a tree of size ${treeSize}`);
  const b = Math.floor(index / TILE_WIDTH);
  const bundle = { level: -1, index: b, width: tileWidth(0, b, treeSize) };
  let leaves: Buffer[];
  try {
    leaves = parseEntryBundle(await source.tile(bundle));
  } catch (e) {
    if (isPkglogError(e, 'malformed')) fail('malformed', `${formatTilePath(bundle)} is not a valid entry bundle: ${e.message}`);
    throw e;
  }
  const leaf = leaves[index - b * TILE_WIDTH];
  if (leaf === undefined || leaves.length !== bundle.width) fail('malformed', `${formatTilePath(bundle)} has ${leaves.length} entries, not ${bundle.width}`);
  return leaf;
}

/** The most bytes a tlog-tiles tile can have: 32 per hash, or per entry its 2-byte length and up to 65535 bytes. */
export function maxTileSize(tile: Tile): number {
  return tile.level < 0 ? tile.width * (2 + MAX_ENTRY_SIZE) : tile.width * HASH_SIZE;
}

/** The first `width` entries of an entry bundle, as bytes (a wider bundle's prefix). 'malformed' if it has fewer. */
function bundlePrefix(data: Buffer, width: number, what: string): Buffer {
  let pos = 0;
  for (let i = 0; i < width; i++) {
    if (pos + 2 > data.length) fail('malformed', `${what} has fewer than ${width} entries`);
    pos += 2 + data.readUInt16BE(pos);
  }
  if (pos > data.length) fail('malformed', `${what} is truncated`);
  return data.subarray(0, pos);
}

export interface HttpTilesOptions extends HttpOptions {
  /** Cap per tile (default maxTileSize). */
  maxTileBytes?: (tile: Tile) => number;
  /** The log's current tree size, to look for a wider partial tile when neither the exact nor the full one exists. */
  latestSize?: () => Promise<number>;
  /** Keep this many hash tiles (by exact path, only well-sized ones) in an LRU cache (default 0: none). */
  cacheSize?: number;
}

/**
 * The tiles of a C2SP tlog-tiles log at `baseURL` (any static file server or CDN will do). A partial tile that the
 * log has since replaced (C2SP lets it delete partial tiles once the full one exists) is read as the prefix of the
 * full tile, or of a wider partial one: the prefix is what the older tree had, if the log is honest, and the reader
 * authenticates it against that tree's root anyway.
 */
export class HttpTiles implements TileSource {
  readonly base: string;
  private readonly opts: HttpTilesOptions;
  private readonly cache: LRUCache<string, Buffer> | undefined;
  /** Requests in flight by path: concurrent callers share one request. */
  private readonly inflight = new Map<string, Promise<Buffer | undefined>>();
  /** Requests sent (for tests and metrics). */
  requests = 0;

  constructor(baseURL: string, opts: HttpTilesOptions = {}) {
    this.base = normalizeBaseURL(baseURL);
    this.opts = opts;
    this.cache = opts.cacheSize ? new LRUCache({ max: opts.cacheSize }) : undefined;
  }

  /** Forgets every cached tile (after a proof built from them failed: decide again on fresh bytes). */
  clearCache(): void {
    this.cache?.clear();
  }

  /** Exactly this tile (cached, or one request shared by concurrent callers), or undefined on 404. */
  private exact(t: Tile): Promise<Buffer | undefined> {
    const path = formatTilePath(t);
    const hit = this.cache?.get(path);
    if (hit !== undefined) return Promise.resolve(hit);
    let p = this.inflight.get(path);
    if (p === undefined) {
      p = this.fetchExact(t)
        .then((b) => {
          if (b !== undefined && t.level >= 0 && b.length === t.width * HASH_SIZE) this.cache?.set(path, b);
          return b;
        })
        .finally(() => this.inflight.delete(path));
      this.inflight.set(path, p);
    }
    return p;
  }

  private async fetchExact(t: Tile): Promise<Buffer | undefined> {
    this.requests++;
    const url = `${this.base}/${formatTilePath(t)}`;
    try {
      return await getOk(url, { ...this.opts, maxBytes: (this.opts.maxTileBytes ?? maxTileSize)(t) });
    } catch (e) {
      if (isPkglogError(e, 'not_found')) return undefined;
      throw e;
    }
  }

  private prefix(data: Buffer, got: Tile, want: Tile): Buffer {
    const what = `${this.base}/${formatTilePath(got)}`;
    if (want.level < 0) return got.width === want.width ? data : bundlePrefix(data, want.width, what);
    if (data.length !== got.width * HASH_SIZE) fail('malformed', `${what} has ${data.length} bytes, not ${got.width * HASH_SIZE}`);
    return data.subarray(0, want.width * HASH_SIZE);
  }

  async tile(tile: Tile): Promise<Buffer> {
    const candidates: Tile[] = [tile];
    if (tile.width < TILE_WIDTH) candidates.push({ ...tile, width: TILE_WIDTH });
    for (const t of candidates) {
      const b = await this.exact(t);
      if (b !== undefined) return this.prefix(b, t, tile);
    }
    if (tile.width < TILE_WIDTH && this.opts.latestSize !== undefined) {
      const w = tileWidth(Math.max(tile.level, 0), tile.index, await this.opts.latestSize());
      if (w > tile.width && w < TILE_WIDTH) {
        const wider = { ...tile, width: w };
        const b = await this.exact(wider);
        if (b !== undefined) return this.prefix(b, wider, tile);
      }
    }
    return fail('not_found', `${this.base}/${formatTilePath(tile)}: not found (nor a full or wider tile holding it)`, { status: 404 });
  }
}
