/**
 * The client's view of a log: C2SP tlog-tiles (all that verify, proof, monitor and audit need, so any static
 * tlog-tiles URL will do) and, where the log offers it, the pkglog JSON API (lookups, submissions). Reads go through
 * runtime/http.ts (capped, time-limited); proofs are computed from tiles authenticated against the signed root.
 */
import { PkglogError, fail } from '../core/errors.ts';
import { decodeBase64 } from '../core/encoding.ts';
import { type Tile } from '../core/tiles.ts';
import { MAX_LEAF_SIZE } from '../core/entry.ts';
import { HASH_SIZE } from '../core/hash.ts';
import { formatTlogProof } from '../core/tlog-proof.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import { parseSignedNote } from '../core/note.ts';
import type { Hash } from '../core/types.ts';
import { request, expectOk, parseJSON, normalizeBaseURL, type HttpOptions } from '../runtime/http.ts';
import { HttpTiles, consistencyProofFromTiles, inclusionProofFromTiles, leafFromTiles } from '../runtime/tiles.ts';

export type { HttpOptions };

/** Signed notes: checkpoints, tlog-proofs. */
export const MAX_NOTE_REPLY = 1024 * 1024;
/** A witness's gossip answer (JSON): its checkpoint and possibly fork evidence (two checkpoints and a proof). */
export const MAX_GOSSIP_REPLY = 4 * MAX_NOTE_REPLY;
/** A witness's cosignature history (min-age). */
export const MAX_HISTORY_REPLY = MAX_NOTE_REPLY;

/** The most bytes a tile can have: 32 per hash, or per entry its 2-byte length and a pkglog leaf. */
export function maxTileBytes(tile: Tile): number {
  return tile.level < 0 ? tile.width * (2 + MAX_LEAF_SIZE) : tile.width * HASH_SIZE;
}

export function jsonNumber(o: Record<string, unknown>, key: string, url: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail('malformed', `${url}: field ${key} is not a non-negative integer`);
  return v;
}

export function jsonHashes(o: Record<string, unknown>, key: string, url: string): Hash[] {
  const v = o[key];
  if (!Array.isArray(v) || v.length > 128) fail('malformed', `${url}: field ${key} is not a list of hashes`);
  return v.map((h, i) => decodeBase64(h as string, `${url}: ${key}[${i}]`, 32));
}

/** Read access to a log: the C2SP tiles and the pkglog JSON API. */
export class LogClient {
  readonly base: string;
  readonly opts: HttpOptions;
  private readonly tiles: HttpTiles;
  constructor(baseURL: string, opts: HttpOptions = {}) {
    this.base = normalizeBaseURL(baseURL);
    this.opts = opts;
    this.tiles = new HttpTiles(this.base, { ...opts, maxTileBytes, latestSize: async () => parseCheckpoint(parseSignedNote(await this.checkpoint()).text).treeSize });
  }

  async get(path: string, maxBytes?: number): Promise<Buffer> {
    const url = `${this.base}/${path.replace(/^\//, '')}`;
    const res = await request(url, {}, { ...this.opts, ...(maxBytes !== undefined ? { maxBytes } : {}) });
    return expectOk(res, url);
  }

  async getJSON(path: string): Promise<Record<string, unknown>> {
    const url = `${this.base}/${path.replace(/^\//, '')}`;
    return parseJSON(await this.get(path), url);
  }

  /** The latest signed checkpoint (verbatim note text). */
  async checkpoint(): Promise<string> {
    return (await this.get('checkpoint', MAX_NOTE_REPLY)).toString('utf8');
  }

  /** The signed checkpoint of exactly `size`, with every cosignature the log collected for it. */
  async checkpointAt(size: number): Promise<string> {
    return (await this.get(`v1/checkpoints/${size}`, MAX_NOTE_REPLY)).toString('utf8');
  }

  /** A hash tile or (level -1) entry bundle (a replaced partial tile is read from the full one). */
  async tile(tile: Tile): Promise<Buffer> {
    return this.tiles.tile(tile);
  }

  /** The inclusion proof of `index` in the tree of `size`, from tiles authenticated against that tree's `rootHash`. */
  async inclusionProof(index: number, size: number, rootHash: Hash): Promise<Hash[]> {
    return inclusionProofFromTiles(this.tiles, index, size, rootHash);
  }

  /** The consistency proof from `oldSize` to `size`, from tiles authenticated against the root of `size`. */
  async consistencyProof(oldSize: number, size: number, rootHash: Hash): Promise<Hash[]> {
    return consistencyProofFromTiles(this.tiles, oldSize, size, rootHash);
  }

  /**
   * A C2SP tlog-proof for entry `index` against the log's latest checkpoint, built from tiles alone (any tlog-tiles
   * URL): the entry from its bundle (in the "extra" line), the inclusion proof from hash tiles authenticated against
   * the checkpoint's root. The checkpoint's signatures are the verifier's to check, as with any tlog-proof.
   */
  async entryProof(index: number): Promise<string> {
    const signed = await this.checkpoint();
    const cp = parseCheckpoint(parseSignedNote(signed).text);
    if (index >= cp.treeSize) fail('not_found', `${this.base}: entry ${index} is not in the log's checkpoint (size ${cp.treeSize})`);
    const leaf = await leafFromTiles(this.tiles, index, cp.treeSize);
    const inclusionProof = await this.inclusionProof(index, cp.treeSize, cp.rootHash);
    return formatTlogProof({ extra: leaf, index, inclusionProof, checkpoint: signed });
  }

  async entry(index: number): Promise<Record<string, unknown>> {
    return this.getJSON(`v1/entries/${index}`);
  }

  /**
   * All pages of a lookup (`path` below v1/lookup/), at most `maxEntries` entries. A log without the pkglog lookup
   * service (a static tlog-tiles URL: its v1/lookup/… is 404) fails with 'not_found' and details.noLookup.
   */
  async lookup(path: string, maxEntries = 100_000): Promise<Array<Record<string, unknown>>> {
    const out: Array<Record<string, unknown>> = [];
    let cursor: string | undefined;
    for (;;) {
      const q = cursor === undefined ? '' : `?cursor=${encodeURIComponent(cursor)}`;
      const url = `v1/lookup/${path}${q}`;
      let j: Record<string, unknown>;
      try {
        j = await this.getJSON(url);
      } catch (e) {
        if (e instanceof PkglogError && e.code === 'not_found') {
          if (cursor !== undefined) return out;
          fail('not_found', `${this.base} offers no lookup service (v1/lookup/ answers 404, as on a static tlog-tiles URL)`, { noLookup: true });
        }
        throw e;
      }
      if (!Array.isArray(j.entries)) fail('malformed', `${this.base}/${url}: entries is not a list`);
      for (const e of j.entries) {
        if (typeof e !== 'object' || e === null) fail('malformed', `${this.base}/${url}: entry is not an object`);
        out.push(e as Record<string, unknown>);
      }
      if (out.length > maxEntries) fail('too_large', `${this.base}/${url}: more than ${maxEntries} entries`);
      if (typeof j.next !== 'string' || j.next === '' || j.entries.length === 0) return out;
      cursor = j.next;
    }
  }

  /** POST /v1/entries; returns the status and decoded JSON (callers interpret 200/409/4xx). */
  async submit(body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown>; retryAfter?: string }> {
    const url = `${this.base}/v1/entries`;
    const res = await request(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }, this.opts);
    let json: Record<string, unknown> = {};
    try {
      json = parseJSON(res.body, url);
    } catch {
      json = { message: res.body.toString('utf8').slice(0, 300) };
    }
    const ra = res.headers.get('retry-after');
    return { status: res.status, json, ...(ra !== null ? { retryAfter: ra } : {}) };
  }
}
