/**
 * Reading a log over C2SP tlog-tiles: its checkpoint, and the proofs the witness needs, computed from hash tiles
 * (the witness never trusts a proof it did not build from tiles and verify against a signed root).
 */
import { fail } from '../core/errors.ts';
import type { Hash } from '../core/types.ts';
import type { ProofRange } from '../core/merkle.ts';
import { hashRanges, nodesOf, planConsistencyProof } from '../core/merkle.ts';
import { formatTilePath, nodeHashFromTiles, tilesForNodes, tileWidth, TILE_WIDTH, type Tile } from '../core/tiles.ts';
import { planEvidenceProof } from '../core/evidence.ts';
import { MAX_NOTE_SIZE, parseSignedNote } from '../core/note.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import { HASH_SIZE } from '../core/hash.ts';
import { LRUCache } from 'lru-cache';
import { readCapped } from './read-capped.ts';

export type Fetch = typeof fetch;

export interface LogClientOptions {
  fetch?: Fetch;
  timeoutMs?: number;
  userAgent?: string;
  /** How many tiles to keep (default 512, at most 8 KiB each: 4 MiB). */
  tileCacheSize?: number;
}

export class LogClient {
  readonly baseUrl: string;
  private readonly fetch: Fetch;
  private readonly timeoutMs: number;
  private readonly userAgent: string;
  /**
   * Tile bytes by path. A tile path names fixed contents (a full tile never changes; `.p/W` is the first W hashes),
   * and every proof built from them is verified against signed roots, so caching cannot make the witness accept
   * anything; it makes repeated proofs (gossip with the same old checkpoint, pull) cost no requests.
   */
  private readonly tiles: LRUCache<string, Buffer>;
  /** Requests in flight by path: concurrent callers share one request. */
  private readonly inflight = new Map<string, Promise<Buffer | null>>();
  /** Requests sent (for tests and metrics). */
  requests = 0;

  /**
   * Forgets every cached tile. Called when a proof built from tiles failed to verify: a log that changed its history
   * (or a bad cache upstream) would otherwise keep failing from stale bytes; the caller retries once with fresh tiles.
   */
  clearCache(): void {
    this.tiles.clear();
  }

  constructor(baseUrl: string, opts: LogClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.fetch = opts.fetch ?? fetch;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.userAgent = opts.userAgent ?? 'pkglog-witness';
    this.tiles = new LRUCache({ max: opts.tileCacheSize ?? 512 });
  }

  /** A tile, from the cache, a request in flight, or a new request (404: null; only well-sized tiles are cached). */
  private getTile(t: Tile): Promise<Buffer | null> {
    const path = formatTilePath(t);
    const hit = this.tiles.get(path);
    if (hit !== undefined) return Promise.resolve(hit);
    let p = this.inflight.get(path);
    if (p === undefined) {
      p = this.get(path, TILE_WIDTH * HASH_SIZE)
        .then((b) => {
          if (b !== null && b.length === t.width * HASH_SIZE) this.tiles.set(path, b);
          return b;
        })
        .finally(() => this.inflight.delete(path));
      this.inflight.set(path, p);
    }
    return p;
  }

  private async get(path: string, max: number): Promise<Buffer | null> {
    this.requests++;
    const res = await this.fetch(`${this.baseUrl}/${path}`, {
      signal: AbortSignal.timeout(this.timeoutMs),
      headers: { 'user-agent': this.userAgent },
    });
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      fail('not_found', `GET ${this.baseUrl}/${path}: HTTP ${res.status}`);
    }
    return readCapped(res, max, `GET ${this.baseUrl}/${path}`);
  }

  /** The log's current signed checkpoint (unverified bytes). */
  async checkpoint(): Promise<Buffer> {
    const b = await this.get('checkpoint', MAX_NOTE_SIZE);
    if (b === null) fail('not_found', `${this.baseUrl}/checkpoint: 404`);
    return b;
  }

  /**
   * The contents of `tile` as of the tree it was planned for: the partial tile, or (when the log has since filled
   * or grown it) a prefix of the full or a wider partial tile.
   */
  async tile(tile: Tile): Promise<Buffer> {
    const want = tile.width * HASH_SIZE;
    const candidates: Tile[] = [tile];
    if (tile.width < TILE_WIDTH) candidates.push({ ...tile, width: TILE_WIDTH });
    for (const t of candidates) {
      const b = await this.getTile(t);
      if (b !== null) return checkTile(b, t, want);
    }
    // Neither exact nor full: the log may have a wider partial tile now.
    const current = parseCheckpoint(parseSignedNote(await this.checkpoint()).text).treeSize;
    const w = tileWidth(tile.level, tile.index, current);
    if (w > tile.width && w < TILE_WIDTH) {
      const b = await this.getTile({ ...tile, width: w });
      if (b !== null) return checkTile(b, { ...tile, width: w }, want);
    }
    return fail('not_found', `tile ${formatTilePath(tile)} is not available from ${this.baseUrl}`);
  }

  /** The hashes of `ranges` in the log's tree of `treeSize`, read from its tiles. */
  async hashRanges(ranges: ProofRange[], treeSize: number): Promise<Hash[]> {
    if (ranges.length === 0) return [];
    const nodes = nodesOf(ranges);
    const tiles = tilesForNodes(nodes, treeSize);
    const data = new Map<string, Buffer>();
    await Promise.all(
      tiles.map(async (t) => {
        data.set(`${t.level}/${t.index}`, await this.tile(t));
      }),
    );
    return hashRanges(ranges, (node) =>
      nodeHashFromTiles(node, treeSize, (t) => {
        const b = data.get(`${t.level}/${t.index}`);
        if (b === undefined) fail('internal', `tile ${formatTilePath(t)} was not fetched`);
        return b;
      }),
    );
  }

  /** The RFC 6962 consistency proof from `oldSize` to `newSize` (empty when oldSize is 0 or equal). */
  async consistencyProof(oldSize: number, newSize: number): Promise<Hash[]> {
    if (oldSize === 0 || oldSize === newSize) return [];
    return this.hashRanges(planConsistencyProof(oldSize, newSize), newSize);
  }

  /** The evidence proof (core/evidence.ts) from `smallerSize` to `largerSize`, in the log's tree of `largerSize`. */
  async evidenceProof(smallerSize: number, largerSize: number): Promise<Hash[]> {
    return this.hashRanges(planEvidenceProof(smallerSize, largerSize), largerSize);
  }
}

function checkTile(b: Buffer, t: Tile, want: number): Buffer {
  if (b.length !== t.width * HASH_SIZE) fail('malformed', `${formatTilePath(t)} has ${b.length} bytes, want ${t.width * HASH_SIZE}`);
  return b.subarray(0, want);
}
