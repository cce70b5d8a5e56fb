/**
 * Reads a published tlog-tiles log through its URL alone, with the independent tlog-tiles code (test/interop), and
 * checks everything a static read path must get right: the checkpoint verifies (text/plain, cacheable for seconds at
 * most), every hash tile and entry bundle of its tree is there (application/octet-stream, immutable), the root
 * recomputed from the level-0 tiles and from the right-edge tiles is the checkpoint's, every higher-level hash is the
 * subtree's, every bundle entry hashes to its level-0 leaf, and tiles beyond the tree are 404 and not cacheable.
 * With `logUrl`, every object is also compared byte for byte with the log's own routes. Used for nginx serving a
 * --publish-dir (test/e2e/publish-nginx.test.ts) and an S3-compatible server holding a --publish-s3 bucket
 * (test/e2e/publish-s3.test.ts).
 */
import assert from 'node:assert/strict';
import * as I from '../interop/independent.ts';
import { submissionBody } from './submissions.ts';
import type { Artifact } from '../../core/entry.ts';

export async function get(base: string, path: string, headers: Record<string, string> = {}) {
  const r = await fetch(`${base}/${path}`, { headers });
  return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

export interface ReadOptions {
  /** The published log's URL (the checkpoint is at `${base}/checkpoint`). */
  base: string;
  vkey: I.VKey;
  /** The log's own URL, to compare every object with. */
  logUrl?: string;
  /** Entry bundles must come gzipped to a client that accepts gzip (nginx gzip_static). */
  gzipBundles?: boolean;
  /** Paths that must not be served (200). */
  notServed?: string[];
}

/** Returns the size of the published checkpoint; fails listing every problem found. */
export async function readPublishedLog(o: ReadOptions): Promise<number> {
  const problems: string[] = [];
  const cp = await get(o.base, 'checkpoint');
  assert.equal(cp.status, 200);
  if (cp.headers.get('content-type') !== 'text/plain; charset=utf-8') problems.push(`checkpoint content-type ${cp.headers.get('content-type')}`);
  if (!/no-cache|max-age=[0-9]\b/.test(cp.headers.get('cache-control') ?? '')) problems.push(`checkpoint cache-control ${cp.headers.get('cache-control')}`);
  const c = I.parseCheckpointText(I.openNote(cp.body, [o.vkey]).text);
  const tiles = I.tilesForSize(c.size);
  const got = new Map<string, Buffer>();
  for (const t of tiles) {
    const path = I.tilePath(t.level, t.index, t.width);
    const r = await get(o.base, path);
    if (r.status !== 200) {
      problems.push(`${path} → ${r.status}`);
      continue;
    }
    if (r.headers.get('content-type') !== 'application/octet-stream') problems.push(`${path} content-type ${r.headers.get('content-type')}`);
    if (!/immutable/.test(r.headers.get('cache-control') ?? '')) problems.push(`${path} cache-control ${r.headers.get('cache-control')}`);
    if (o.logUrl !== undefined && !r.body.equals((await get(o.logUrl, path)).body)) problems.push(`${path} differs from the log's /${path}`);
    got.set(path, r.body);
  }
  assert.deepEqual(problems.slice(), []);
  const tileAt = (l: number, i: number, w: number) => got.get(I.tilePath(l, i, w))!;
  const leaves: Buffer[] = [];
  for (const t of tiles.filter((t) => t.level === 0)) leaves.push(...I.tileHashes(tileAt(0, t.index, t.width), t.width));
  const tree = new I.HashTree(leaves);
  assert.ok(tree.root(c.size).equals(c.root), 'root of the level-0 tiles');
  assert.ok(I.rootFromTiles(c.size, tileAt).equals(c.root), 'root from the right-edge tiles');
  for (const t of tiles.filter((t) => t.level > 0)) {
    const span = 256 ** t.level;
    I.tileHashes(tileAt(t.level, t.index, t.width), t.width).forEach((h, i) => {
      const lo = (t.index * 256 + i) * span;
      if (!h.equals(tree.mth(lo, lo + span))) problems.push(`${I.tilePath(t.level, t.index, t.width)}[${i}]`);
    });
  }
  for (const t of tiles.filter((t) => t.level === 0)) {
    const path = I.tilePath('entries', t.index, t.width);
    const r = await fetch(`${o.base}/${path}`, { headers: { 'accept-encoding': 'gzip, identity' } });
    const body = Buffer.from(await r.arrayBuffer()); // fetch gunzips
    if (r.status !== 200) problems.push(`${path} → ${r.status}`);
    if (o.gzipBundles === true && r.headers.get('content-encoding') !== 'gzip') problems.push(`${path} not gzipped`);
    if (r.headers.get('content-type') !== 'application/octet-stream') problems.push(`${path} content-type ${r.headers.get('content-type')}`);
    if (!/immutable/.test(r.headers.get('cache-control') ?? '')) problems.push(`${path} cache-control ${r.headers.get('cache-control')}`);
    if (o.logUrl !== undefined && !body.equals((await get(o.logUrl, path)).body)) problems.push(`${path} differs from the log's`);
    const plain = await get(o.base, path, { 'accept-encoding': 'identity' });
    if (!plain.body.equals(body)) problems.push(`${path} identity ≠ gzip`);
    I.parseBundle(body).forEach((e, i) => {
      if (!I.leafHash(e).equals(leaves[t.index * 256 + i]!)) problems.push(`${path}[${i}]`);
    });
  }
  // beyond the tree: 404, not cacheable
  const full = I.fullTiles(0, c.size);
  for (const path of [I.tilePath(0, full), I.tilePath('entries', full + 1, 1), I.tilePath(1, I.fullTiles(1, c.size) + 1)]) {
    const r = await get(o.base, path);
    if (r.status !== 404) problems.push(`${path} beyond the tree → ${r.status}`);
    if (/immutable|max-age=[1-9][0-9]{3,}/.test(r.headers.get('cache-control') ?? '')) problems.push(`${path} 404 is cacheable`);
  }
  for (const path of o.notServed ?? []) {
    if ((await get(o.base, path)).status === 200) problems.push(`${path} is served`);
  }
  assert.deepEqual(problems, []);
  return c.size;
}

/** POSTs artifacts [from, from + count) as one batch (submissionBody) and returns their indexes; every one must be logged. */
export async function submitRange(url: string, from: number, count: number, overrides: Partial<Artifact> = {}): Promise<number[]> {
  const r = await fetch(`${url}/v1/entries/batch`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ entries: Array.from({ length: count }, (_, i) => submissionBody(from + i, overrides)) }),
  });
  assert.equal(r.status, 200);
  const j = (await r.json()) as { results: Array<{ index: number; status?: number }> };
  for (const x of j.results) assert.equal(x.status, undefined, JSON.stringify(x));
  return j.results.map((x) => x.index);
}

/** Polls `f` every 25 ms until it is true; throws after `ms`. */
export async function until(what: string, f: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The tree size of a published checkpoint's bytes. */
export const sizeOf = (note: Buffer) => Number(note.toString('utf8').split('\n')[1]);
