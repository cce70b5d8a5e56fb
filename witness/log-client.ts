/**
 * Reading a log over C2SP tlog-tiles: its checkpoint, and the proofs the witness needs, computed from hash tiles
 * authenticated against a signed root (runtime/tiles.ts over core/tile-hashes.ts: the witness never trusts a proof it
 * did not build from tiles that hash to a root the log signed).
 */
import type { Hash } from '../core/types.ts';
import type { Tile } from '../core/tiles.ts';
import { planEvidenceProof } from '../core/evidence.ts';
import { MAX_NOTE_SIZE, parseSignedNote } from '../core/note.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import { getOk, normalizeBaseURL, type Fetch, type HttpOptions } from '../runtime/http.ts';
import { HttpTiles, consistencyProofFromTiles, proofFromTiles } from '../runtime/tiles.ts';

export type { Fetch };

export interface LogClientOptions {
  fetch?: Fetch;
  timeoutMs?: number;
  userAgent?: string;
  /** How many tiles to keep (default 512, at most 8 KiB each: 4 MiB). */
  tileCacheSize?: number;
}

export class LogClient {
  readonly baseUrl: string;
  private readonly http: HttpOptions;
  /**
   * The log's tiles, cached by path (runtime/tiles.ts HttpTiles). A tile path names fixed contents (a full tile never
   * changes; `.p/W` is the first W hashes), and every proof built from them is authenticated against signed roots,
   * so caching cannot make the witness accept anything; it makes repeated proofs (gossip with the same old
   * checkpoint, pull) cost no requests. Concurrent callers of one tile share one request.
   */
  private readonly tiles: HttpTiles;
  private checkpointRequests = 0;

  constructor(baseUrl: string, opts: LogClientOptions = {}) {
    this.baseUrl = normalizeBaseURL(baseUrl);
    this.http = { ...(opts.fetch ? { fetch: opts.fetch } : {}), timeoutMs: opts.timeoutMs ?? 10_000, userAgent: opts.userAgent ?? 'pkglog-witness' };
    this.tiles = new HttpTiles(this.baseUrl, {
      ...this.http,
      cacheSize: opts.tileCacheSize ?? 512,
      latestSize: async () => parseCheckpoint(parseSignedNote(await this.checkpoint()).text).treeSize,
    });
  }

  /** Requests sent (for tests and metrics). */
  get requests(): number {
    return this.checkpointRequests + this.tiles.requests;
  }

  /**
   * Forgets every cached tile. Called when a proof built from tiles failed to verify: a log that changed its history
   * (or a bad cache upstream) would otherwise keep failing from stale bytes; the caller retries once with fresh tiles.
   */
  clearCache(): void {
    this.tiles.clearCache();
  }

  /** The log's current signed checkpoint (unverified bytes). */
  async checkpoint(): Promise<Buffer> {
    this.checkpointRequests++;
    return getOk(`${this.baseUrl}/checkpoint`, { ...this.http, maxBytes: MAX_NOTE_SIZE });
  }

  /** The contents of `tile` as of the tree it was planned for (a replaced partial tile: the full or wider one's prefix). */
  tile(tile: Tile): Promise<Buffer> {
    return this.tiles.tile(tile);
  }

  /** The RFC 6962 consistency proof from `oldSize` to `newSize` (empty when oldSize is 0 or equal), tiles checked against `newRoot`. */
  consistencyProof(oldSize: number, newSize: number, newRoot: Hash): Promise<Hash[]> {
    return consistencyProofFromTiles(this.tiles, oldSize, newSize, newRoot);
  }

  /** The evidence proof (core/evidence.ts) from `smallerSize` to `largerSize`, from tiles checked against `largerRoot`. */
  evidenceProof(smallerSize: number, largerSize: number, largerRoot: Hash): Promise<Hash[]> {
    return proofFromTiles(this.tiles, planEvidenceProof(smallerSize, largerSize), largerSize, largerRoot);
  }
}
