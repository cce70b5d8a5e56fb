/**
 * Drives the REAL log over HTTP and checks every artifact it puts on the wire with the independent verifier only
 * (test/interop/independent.ts): /checkpoint, /vkey, every hash tile and entry bundle at tree sizes 0, 1, 255, 256,
 * 257, 513 and 70000, headers, 404s beyond the tree, JSON proofs, and the tlog-proof files in submission replies.
 * Only the harness and submission helpers are imported from pkglog; nothing pkglog computes is trusted.
 */
import assert from 'node:assert/strict';
import * as I from './independent.ts';
import { startTestLog, removeDir } from '../support/log-harness.ts';
import { submissionBody } from '../support/submissions.ts';
// Bulk growth only (see submitBulk): the same integrate()/signCheckpoint()/key the sequencer uses.
import { integrate } from '../../core/integrate.ts';
import { signCheckpoint } from '../../server/sequencer.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import { join } from 'node:path';
import { SqliteStore } from '../../log-store/store.ts';

type Log = Awaited<ReturnType<typeof startTestLog>>;

interface Got {
  status: number;
  type: string | null;
  cache: string | null;
  body: Buffer;
}

async function get(base: string, path: string): Promise<Got> {
  const r = await fetch(`${base}/${path}`);
  return { status: r.status, type: r.headers.get('content-type'), cache: r.headers.get('cache-control'), body: Buffer.from(await r.arrayBuffer()) };
}

async function post(base: string, path: string, json: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`${base}/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(json) });
  return { status: r.status, body: await r.json() };
}

/** tlog-tiles: "its caching headers SHOULD be long-lived" — at least a day, or immutable. */
function longLived(cache: string | null): boolean {
  if (cache === null) return false;
  const m = /max-age=(\d+)/.exec(cache);
  return /immutable/.test(cache) || (m !== null && Number(m[1]) >= 86400 && !/no-cache|no-store/.test(cache));
}

/** tlog-tiles: the checkpoint's "headers SHOULD prevent caching beyond a few seconds". */
function shortLived(cache: string | null): boolean {
  if (cache === null) return false;
  if (/immutable/.test(cache)) return false;
  if (/no-store|no-cache/.test(cache)) return true;
  const m = /max-age=(\d+)/.exec(cache);
  return m !== null && Number(m[1]) <= 10;
}

/** Everything the independent checker learned about one tree size. */
interface SizeView {
  size: number;
  root: Buffer;
  tree: I.HashTree;
  note: Buffer;
  partials: Array<{ path: string; data: Buffer }>;
}

describe('interop: the log, checked by the independent verifier', function () {
  this.timeout(60_000);
  let log: Log;
  let vkey: I.VKey;
  const views: SizeView[] = [];
  const problems: string[] = [];
  /** Submission replies (tlog-proof files) collected along the way. */
  const replies: Array<{ index: number; entry: string; leafHash: string; proof: string }> = [];

  before(async () => {
    log = await startTestLog();
  });
  after(async () => {
    await log?.close();
    if (log) removeDir(log.dataDir);
  });

  async function submitHttp(from: number, count: number): Promise<void> {
    if (count === 1) {
      const r = await post(log.url, 'v1/entries', submissionBody(from));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      replies.push(r.body);
      return;
    }
    const r = await post(log.url, 'v1/entries/batch', { entries: Array.from({ length: count }, (_, i) => submissionBody(from + i)) });
    assert.equal(r.status, 200);
    for (const x of r.body.results) {
      assert.equal(x.status, undefined, JSON.stringify(x));
      replies.push(x);
    }
  }

  /**
   * Bulk growth for the large size, done the way the sequencer commits a batch but without the per-entry work
   * (HTTP would verify ~140k signatures, the sequencer path takes ~6 s): the log's own integrate() over the new leaf
   * hashes, its signCheckpoint() with its key, one store.append(). The leaves are opaque filler bytes (not v1 leaf
   * encodings): the tree, tiles, bundles and checkpoint are what is checked here, not entry validity.
   */
  async function submitBulk(from: number, count: number): Promise<void> {
    const key = loadOrCreateLogKey(join(log.dataDir, 'log.key'), undefined);
    const state = (await log.store.treeState())!;
    assert.equal(state.treeSize, from);
    const entries = Array.from({ length: count }, (_, k) => {
      const i = from + k;
      const leaf = Buffer.from(`interop filler leaf ${i}`);
      const id = I.sha256(leaf);
      return { index: i, leaf, leafHash: I.leafHash(leaf), fileHash: id, ecosystem: 'pypi', name: 'filler', version: String(i), sha256: id, integratedTime: 1 };
    });
    const sync = (log.store as SqliteStore).sync;
    const readTile = (t: { level: number; index: number; width: number }) => sync.readTile(t)!;
    const r = integrate(from, readTile, entries.map((e) => e.leafHash));
    const newState = { treeSize: r.treeSize, rootHash: r.rootHash, checkpoint: signCheckpoint(key.signer, key.origin, r.treeSize, r.rootHash) };
    sync.append({ oldSize: from, entries, tiles: r.tiles, newState, createdAt: Date.now() });
  }

  /** Runs `f` over `items` with at most `n` in flight. */
  async function pool<T>(items: T[], n: number, f: (x: T) => Promise<unknown>): Promise<void> {
    let next = 0;
    await Promise.all(Array.from({ length: n }, async () => {
      while (next < items.length) await f(items[next++]!);
    }));
  }

  /** Checks /checkpoint, all tiles and bundles, headers and 404s at the current size; returns the view. */
  async function checkSize(size: number): Promise<SizeView> {
    const p = (msg: string) => problems.push(`size ${size}: ${msg}`);

    // --- /checkpoint
    const cp = await get(log.url, 'checkpoint');
    assert.equal(cp.status, 200);
    if (cp.type !== 'text/plain; charset=utf-8') p(`/checkpoint Content-Type ${cp.type}`);
    if (!shortLived(cp.cache)) p(`/checkpoint Cache-Control ${cp.cache} is not short-lived`);
    const note = I.openNote(cp.body, [vkey]);
    const logSig = note.verified[0]!.sig;
    // The signature line, byte by byte: E2 80 94 20, key name, space, base64(keyID ‖ 64-byte sig), "\n".
    const lineStart = cp.body.indexOf(Buffer.from(`— ${log.origin} `, 'utf8'), note.text.length);
    assert.ok(lineStart > 0);
    assert.ok(cp.body.subarray(lineStart, lineStart + 3).equals(Buffer.from([0xe2, 0x80, 0x94])));
    assert.equal(cp.body[lineStart + 3], 0x20);
    assert.equal(logSig.name, log.origin, 'the log key name should match the origin');
    assert.ok(logSig.keyId.equals(vkey.keyId));
    assert.equal(logSig.sig.length, 64);
    assert.equal(cp.body.subarray(note.text.length, note.text.length + 1).toString(), '\n', 'blank line between text and signatures');
    const c = I.parseCheckpointText(note.text);
    assert.equal(c.origin, log.origin);
    assert.equal(c.size, size);
    assert.deepEqual(c.extensions, []);

    // --- every hash tile, full and partial
    const tiles = I.tilesForSize(size);
    const fetched = new Map<string, Buffer>();
    await pool(tiles, 8, async (t) => {
      const path = I.tilePath(t.level, t.index, t.width);
      const r = await get(log.url, path);
      if (r.status !== 200) return p(`${path} → ${r.status}`);
      if (r.type !== 'application/octet-stream') p(`${path} Content-Type ${r.type}`);
      if (t.width === 256 && !longLived(r.cache)) p(`${path} Cache-Control ${r.cache} is not long-lived`);
      if (r.body.length !== t.width * 32) p(`${path} is ${r.body.length} bytes, want ${t.width * 32}`);
      fetched.set(path, r.body);
    });
    const tileAt = (level: number, index: number, width: number) => {
      const d = fetched.get(I.tilePath(level, index, width));
      if (d === undefined) throw new Error(`missing ${I.tilePath(level, index, width)}`);
      return d;
    };
    // level 0 → all leaf hashes
    const leaves: Buffer[] = [];
    for (const t of tiles.filter((t) => t.level === 0)) leaves.push(...I.tileHashes(tileAt(0, t.index, t.width), t.width));
    assert.equal(leaves.length, size);
    const tree = new I.HashTree(leaves);
    const root = tree.root(size);
    assert.equal(I.b64(c.root), I.b64(root), 'checkpoint root = RFC 6962 MTH of the level-0 tiles');
    assert.equal(I.b64(I.rootFromTiles(size, tileAt)), I.b64(root), 'root from the right-edge tiles');
    // level ≥ 1: "each hash in a tile is the Merkle Tree Hash of a full tile at the level below"
    for (const t of tiles.filter((t) => t.level > 0)) {
      const span = 256 ** t.level;
      I.tileHashes(tileAt(t.level, t.index, t.width), t.width).forEach((h, i) => {
        const lo = (t.index * 256 + i) * span;
        if (!h.equals(tree.mth(lo, lo + span))) p(`${I.tilePath(t.level, t.index, t.width)}[${i}] is not MTH(D[${lo}:${lo + span}])`);
      });
    }

    // --- entry bundles: each entry hashes to the level-0 tile hash
    await pool(tiles.filter((t) => t.level === 0), 8, async (t) => {
      const path = I.tilePath('entries', t.index, t.width);
      const r = await get(log.url, path);
      if (r.status !== 200) return p(`${path} → ${r.status}`);
      if (r.type !== 'application/octet-stream') p(`${path} Content-Type ${r.type}`);
      if (t.width === 256 && !longLived(r.cache)) p(`${path} Cache-Control ${r.cache} is not long-lived`);
      const entries = I.parseBundle(r.body);
      if (entries.length !== t.width) return p(`${path} has ${entries.length} entries, want ${t.width}`);
      entries.forEach((e, i) => {
        if (!I.leafHash(e).equals(leaves[t.index * 256 + i]!)) p(`${path}[${i}] does not hash to the level-0 tile`);
      });
    });

    // --- nothing beyond the tree
    const beyond: string[] = [];
    for (let level = 0; level <= 3; level++) {
      const full = I.fullTiles(level, size);
      const w = I.partialWidth(level, size);
      beyond.push(I.tilePath(level, full)); // the full tile not yet complete
      if (w < 255) beyond.push(I.tilePath(level, full, w + 1)); // one wider than the partial tile
      beyond.push(I.tilePath(level, full + 1, 1));
      if (level === 0) {
        beyond.push(I.tilePath('entries', full));
        if (w < 255) beyond.push(I.tilePath('entries', full, w + 1));
        beyond.push(I.tilePath('entries', full + 1, 1));
      }
    }
    await Promise.all(beyond.map(async (path) => {
      const r = await get(log.url, path);
      if (r.status !== 404) p(`${path} beyond the tree → ${r.status}, want 404`);
      // a 404 must not be cached for long: the tile will exist later
      if (r.cache !== null && longLived(r.cache)) p(`${path} 404 is cacheable: ${r.cache}`);
    }));

    const partials = tiles.filter((t) => t.width < 256).map((t) => ({ path: I.tilePath(t.level, t.index, t.width), data: tileAt(t.level, t.index, t.width) }));
    partials.push(...tiles.filter((t) => t.level === 0 && t.width < 256).map((t) => ({ path: I.tilePath('entries', t.index, t.width), data: Buffer.alloc(0) })));
    const view: SizeView = { size, root, tree, note: cp.body, partials };
    views.push(view);
    return view;
  }

  it('serves /vkey: name = origin, type 0x01, key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]', async () => {
    const r = await get(log.url, 'vkey');
    assert.equal(r.status, 200);
    const text = r.body.toString('utf8');
    assert.match(text, /\n$/);
    vkey = I.parseVKey(text.replace(/\n$/, ''));
    assert.equal(vkey.type, I.TYPE_ED25519);
    assert.equal(vkey.name, log.origin);
    assert.equal(I.formatVKey(vkey.name, vkey.type, vkey.publicKey), log.vkey);
  });

  it('size 0: checkpoint of the empty tree (root SHA-256("")), no tiles served', async () => {
    const v = await checkSize(0);
    assert.ok(v.root.equals(I.EMPTY_ROOT));
    for (const path of ['tile/0/000.p/1', 'tile/entries/000.p/1', 'tile/0/000', 'tile/1/000.p/1']) {
      assert.equal((await get(log.url, path)).status, 404, path);
    }
  });

  it('size 1 (one POST /v1/entries)', async () => {
    await submitHttp(0, 1);
    await checkSize(1);
  });

  it('size 255 (batch)', async () => {
    await submitHttp(1, 254);
    await checkSize(255);
  });

  it('size 256: tile/0/000 full and tile/1/000.p/1', async () => {
    await submitHttp(255, 1);
    const v = await checkSize(256);
    assert.deepEqual(v.partials.map((x) => x.path), ['tile/1/000.p/1']);
  });

  it('size 257', async () => {
    await submitHttp(256, 1);
    await checkSize(257);
  });

  it('size 513', async () => {
    await submitHttp(257, 256);
    await checkSize(513);
  });

  it('size 70000 (bulk via integrate/store, all tiles and bundles over HTTP)', async () => {
    await submitBulk(513, 70000 - 513);
    const v = await checkSize(70000);
    assert.deepEqual(v.partials.filter((x) => x.path.startsWith('tile/') && !x.path.startsWith('tile/entries')).map((x) => x.path), ['tile/0/273.p/112', 'tile/1/001.p/17', 'tile/2/000.p/1']);
  });

  it('had no header, status or content problems at any size', () => {
    assert.deepEqual(problems, []);
  });

  it('still serves every partial tile of every earlier checkpoint (or the full tile that replaced it), unchanged', async () => {
    const bad: string[] = [];
    for (const v of views.slice(0, -1)) {
      for (const { path, data } of v.partials) {
        const r = await get(log.url, path);
        if (r.status === 200) {
          if (data.length > 0 && !r.body.equals(data)) bad.push(`${path} changed`);
          continue;
        }
        const full = path.replace(/\.p\/\d+$/, '');
        if ((await get(log.url, full)).status !== 200) bad.push(`${path} (size ${v.size}) → ${r.status} and ${full} not available`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('serves the signed checkpoint of every earlier size at /v1/checkpoints/<size>', async () => {
    for (const v of views) {
      const r = await get(log.url, `v1/checkpoints/${v.size}`);
      assert.equal(r.status, 200, `size ${v.size}`);
      const n = I.openNote(r.body, [vkey]);
      const c = I.parseCheckpointText(n.text);
      assert.equal(c.size, v.size);
      assert.ok(c.root.equals(v.root));
    }
  });

  it('rejects non-canonical tile paths (never 200)', async () => {
    const paths = ['tile/0/0', 'tile/0/00', 'tile/00/000', 'tile/0/x000/000', 'tile/0/000.p/0', 'tile/0/000.p/256', 'tile/0/000.p/01',
      'tile/entries/x000/000', 'tile/64/000', 'tile/-1/000', 'tile/0/000.p/', 'tile/8/0/000', 'tile/data/000', 'tile/0/000/'];
    const served: string[] = [];
    for (const path of paths) {
      const r = await get(log.url, path);
      if (r.status === 200) served.push(path);
      else assert.ok(r.status === 404 || r.status === 400, `${path} → ${r.status}`);
    }
    assert.deepEqual(served, []);
  });

  it('JSON inclusion proofs are RFC 6962 PATH(m, D[n]) and verify (recomputed along the RFC 6962 recursion) against the checkpoint roots', async () => {
    const big = views[views.length - 1]!;
    for (const v of views.filter((x) => x.size > 0)) {
      for (const m of new Set([0, 1, v.size >> 1, v.size - 2, v.size - 1].filter((x) => x >= 0 && x < v.size))) {
        const r = await get(log.url, `v1/proof/inclusion?index=${m}&size=${v.size}`);
        assert.equal(r.status, 200);
        const j = JSON.parse(r.body.toString());
        assert.equal(j.index, m);
        assert.equal(j.treeSize, v.size);
        const proof = (j.proof as string[]).map((x) => I.b64decode(x, 'proof', 32));
        assert.ok(I.verifyInclusion(big.tree.leaves[m]!, m, v.size, proof, v.root), `inclusion ${m} in ${v.size}`);
        assert.deepEqual(proof.map(I.b64), v.tree.inclusionPath(m, v.size).map(I.b64));
      }
    }
    // by leaf hash
    const lh = big.tree.leaves[300]!;
    const r = await get(log.url, `v1/proof/inclusion?leafHash=${encodeURIComponent(I.b64(lh))}&size=513`);
    const j = JSON.parse(r.body.toString());
    assert.equal(j.index, 300);
    assert.ok(I.verifyInclusion(lh, 300, 513, j.proof.map((x: string) => I.b64decode(x, 'proof', 32)), views.find((v) => v.size === 513)!.root));
  });

  it('JSON consistency proofs are RFC 6962 PROOF(m, D[n]) and verify (recomputed along the RFC 6962 recursion)', async () => {
    const sized = views.filter((v) => v.size > 0);
    const big = sized[sized.length - 1]!;
    for (const a of sized) {
      for (const b of sized.filter((x) => x.size >= a.size)) {
        const r = await get(log.url, `v1/proof/consistency?old=${a.size}&size=${b.size}`);
        assert.equal(r.status, 200);
        const j = JSON.parse(r.body.toString());
        const proof = (j.proof as string[]).map((x) => I.b64decode(x, 'proof', 32));
        assert.ok(I.verifyConsistency(a.size, b.size, a.root, b.root, proof), `consistency ${a.size} → ${b.size}`);
        assert.deepEqual(proof.map(I.b64), big.tree.consistencyProof(a.size, b.size).map(I.b64));
      }
    }
  });

  it('every submission reply carries a tlog-proof that verifies offline (extra = leaf, inclusion, log signature)', () => {
    assert.equal(replies.length, 513);
    const byRoot = new Map(views.map((v) => [v.size, v]));
    for (const r of replies) {
      const tp = I.parseTlogProofFile(r.proof);
      assert.equal(tp.index, r.index);
      assert.ok(tp.extra, 'extra present');
      assert.equal(I.b64(tp.extra!), r.entry);
      const lh = I.leafHash(tp.extra!);
      assert.equal(I.b64(lh), r.leafHash);
      const n = I.openNote(tp.checkpoint, [vkey]);
      const c = I.parseCheckpointText(n.text);
      assert.equal(c.origin, log.origin);
      assert.ok(I.verifyInclusion(lh, tp.index, c.size, tp.proof, c.root), `tlog-proof ${r.index}`);
      const v = byRoot.get(c.size);
      if (v) assert.ok(v.root.equals(c.root));
    }
  });

  it('GET /v1/entries/<i>/proof is a tlog-proof against the latest checkpoint', async () => {
    const big = views[views.length - 1]!;
    for (const i of [0, 256, 69999]) {
      const r = await get(log.url, `v1/entries/${i}/proof`);
      assert.equal(r.status, 200);
      const tp = I.parseTlogProofFile(r.body);
      const n = I.openNote(tp.checkpoint, [vkey]);
      const c = I.parseCheckpointText(n.text);
      assert.equal(c.size, 70000);
      assert.ok(I.leafHash(tp.extra!).equals(big.tree.leaves[i]!));
      assert.ok(I.verifyInclusion(I.leafHash(tp.extra!), i, 70000, tp.proof, c.root));
    }
  });

  it('entry bundles are compressed at the HTTP layer ("Entry bundles SHOULD be compressed at the HTTP layer")', async () => {
    const r = await fetch(`${log.url}/tile/entries/000`, { headers: { 'accept-encoding': 'gzip, identity' } });
    await r.arrayBuffer();
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-encoding') ?? '(none)', /gzip|br|deflate|zstd/);
  });
});
