/** A log read over HTTP for pull mode: its /checkpoint and its C2SP tlog-tiles (runtime/tiles.ts HttpTiles, cached). */
import { MAX_NOTE_SIZE, parseSignedNote } from '../core/note.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import type { Tile } from '../core/tiles.ts';
import { getOk, normalizeBaseURL, type Fetch, type HttpOptions } from '../runtime/http.ts';
import { HttpTiles } from '../runtime/tiles.ts';
import type { LogSource } from './mirror.ts';

export class HttpLogSource implements LogSource {
  readonly base: string;
  private readonly http: HttpOptions;
  private readonly tiles: HttpTiles;

  constructor(url: string, opts: { fetch?: Fetch; timeoutMs?: number } = {}) {
    this.base = normalizeBaseURL(url);
    this.http = { ...(opts.fetch ? { fetch: opts.fetch } : {}), timeoutMs: opts.timeoutMs ?? 30_000, userAgent: 'pkglog-mirror' };
    this.tiles = new HttpTiles(this.base, {
      ...this.http,
      // Hash tiles are cached (a path names fixed contents; everything read is authenticated against a signed root).
      cacheSize: 1024,
      latestSize: async () => parseCheckpoint(parseSignedNote(await this.checkpoint()).text).treeSize,
    });
  }

  checkpoint(): Promise<Buffer> {
    return getOk(`${this.base}/checkpoint`, { ...this.http, maxBytes: MAX_NOTE_SIZE });
  }

  tile(tile: Tile): Promise<Buffer> {
    return this.tiles.tile(tile);
  }

  clearCache(): void {
    this.tiles.clearCache();
  }
}
