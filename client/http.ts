/**
 * A small HTTP client for the pkglog log API and C2SP tlog-tiles (global fetch only: no server dependencies).
 * Every response is size-capped and time-limited; every failure is a PkglogError naming the URL and what went wrong.
 */
import { PkglogError, fail } from '../core/errors.ts';
import { decodeBase64 } from '../core/encoding.ts';
import { formatTilePath, type Tile } from '../core/tiles.ts';
import { MAX_LEAF_SIZE } from '../core/entry.ts';
import { HASH_SIZE } from '../core/hash.ts';
import type { Hash } from '../core/types.ts';


export interface HttpOptions {
  timeoutMs?: number;
  maxBytes?: number;
  userAgent?: string;
}

const DEFAULT_TIMEOUT = 30_000;
/** Cap for JSON API replies (lookup pages, entries) unless the caller gives a tighter one. */
const DEFAULT_MAX = 16 * 1024 * 1024;
/** Error replies are read only this far (enough for the message); the rest is discarded, never buffered. */
export const MAX_ERROR_BODY = 64 * 1024;
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

export interface HttpResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

function describeError(e: unknown): string {
  if (e instanceof Error) {
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
    return e.cause instanceof Error ? e.cause.message : e.message;
  }
  return String(e);
}

/**
 * Reads the body, counting bytes while streaming: a declared Content-Length over `max` is refused before reading,
 * and the stream is cancelled as soon as it passes `max` (nothing over the cap is ever buffered). With
 * `truncate`, the first `max` bytes are kept and the rest discarded instead (error replies).
 */
async function readCapped(res: Response, max: number, url: string, truncate = false): Promise<Buffer> {
  const declared = res.headers.get('content-length');
  const len = declared !== null && /^\d{1,16}$/.test(declared) ? Number(declared) : undefined;
  if (len !== undefined && len > max && !truncate) {
    await res.body?.cancel().catch(() => {});
    fail('network', `${url}: response of ${len} bytes is over the ${max}-byte limit`);
  }
  if (res.body === null) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (total + value.byteLength > max) {
        await reader.cancel().catch(() => {});
        if (!truncate) fail('network', `${url}: response is over the ${max}-byte limit`);
        chunks.push(Buffer.from(value.buffer, value.byteOffset, max - total));
        total = max;
        break;
      }
      total += value.byteLength;
      chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    }
  } catch (e) {
    if (e instanceof PkglogError) throw e;
    await reader.cancel().catch(() => {});
    fail('network', `${url}: reading the response failed: ${describeError(e)}`);
  }
  return Buffer.concat(chunks, total);
}

/**
 * One HTTP request — the only network read of the client: the body is capped while streaming (`maxBytes`, error
 * replies at MAX_ERROR_BODY) and the whole exchange, body included, is time-limited. Never throws on HTTP status
 * (callers decide); throws 'network' on transport failure, timeout or an over-limit body.
 */
export async function request(url: string, init: RequestInit = {}, opts: HttpOptions = {}): Promise<HttpResponse> {
  let res: Response;
  try {
    res = await fetch(url, {
      ...init,
      headers: { 'user-agent': opts.userAgent ?? 'pkglog-client/0.1', ...(init.headers as Record<string, string> | undefined) },
      signal: AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT),
    });
  } catch (e) {
    fail('network', `cannot reach ${url}: ${describeError(e)}`);
  }
  const max = opts.maxBytes ?? DEFAULT_MAX;
  const ok = res.status >= 200 && res.status < 300;
  const body = ok ? await readCapped(res, max, url) : await readCapped(res, Math.min(max, MAX_ERROR_BODY), url, true);
  return { status: res.status, headers: res.headers, body };
}

function serverMessage(body: Buffer): string {
  const text = body.toString('utf8').slice(0, 300).trim();
  try {
    const j = JSON.parse(text) as { message?: unknown; error?: unknown };
    if (typeof j.message === 'string') return j.message;
    if (typeof j.error === 'string') return j.error;
  } catch {
    // not JSON
  }
  return text;
}

/** Throws unless status is 200: 404 → 'not_found', other statuses → 'network' (details.status). */
export function expectOk(res: HttpResponse, url: string): Buffer {
  if (res.status === 200) return res.body;
  const msg = serverMessage(res.body);
  if (res.status === 404) fail('not_found', `${url}: not found${msg ? ` (${msg})` : ''}`, { status: 404 });
  fail('network', `${url}: HTTP ${res.status}${msg ? `: ${msg}` : ''}`, { status: res.status });
}

export function parseJSON(body: Buffer, url: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    return fail('malformed', `${url}: response is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('malformed', `${url}: response is not a JSON object`);
  return v as Record<string, unknown>;
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

/** Base URL without trailing slash; must be http(s). */
export function normalizeBaseURL(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail('malformed', `not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail('malformed', `URL must be http or https: ${url}`);
  return url.replace(/\/+$/, '');
}

/** Read access to a log: the C2SP tiles and the pkglog JSON API. */
export class LogClient {
  readonly base: string;
  readonly opts: HttpOptions;
  constructor(baseURL: string, opts: HttpOptions = {}) {
    this.base = normalizeBaseURL(baseURL);
    this.opts = opts;
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

  /** A hash tile or (level -1) entry bundle. */
  async tile(tile: Tile): Promise<Buffer> {
    return this.get(formatTilePath(tile), maxTileBytes(tile));
  }

  async inclusionProof(index: number, size: number): Promise<Hash[]> {
    const path = `v1/proof/inclusion?index=${index}&size=${size}`;
    const j = await this.getJSON(path);
    if (j.index !== index || j.treeSize !== size) fail('malformed', `${this.base}/${path}: response is for another index or size`);
    return jsonHashes(j, 'proof', `${this.base}/${path}`);
  }

  async consistencyProof(oldSize: number, size: number): Promise<Hash[]> {
    const path = `v1/proof/consistency?old=${oldSize}&size=${size}`;
    const j = await this.getJSON(path);
    if (j.old !== oldSize || j.treeSize !== size) fail('malformed', `${this.base}/${path}: response is for other sizes`);
    return jsonHashes(j, 'proof', `${this.base}/${path}`);
  }

  /** The tlog-proof text for entry `index` against the latest checkpoint. */
  async entryProof(index: number): Promise<string> {
    return (await this.get(`v1/entries/${index}/proof`, MAX_NOTE_REPLY)).toString('utf8');
  }

  async entry(index: number): Promise<Record<string, unknown>> {
    return this.getJSON(`v1/entries/${index}`);
  }

  /** All pages of a lookup (`path` below v1/lookup/), at most `maxEntries` entries. */
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
        if (e instanceof PkglogError && e.code === 'not_found') return out;
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
