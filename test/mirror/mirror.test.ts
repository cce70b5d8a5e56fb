/**
 * The mirror in-process, against an in-memory log (test/support/memory-log.ts): pull mode copies the log tile for
 * tile and cosigns only a copy whose root is the log's; a lying log's bundle is refused and nothing is cosigned; and
 * over HTTP (startMirror on 127.0.0.1:0) every status code of C2SP tlog-mirror add-checkpoint and add-entries:
 * 404, 422 (no pending checkpoint, forged package), 409 with text/x.tlog.size or text/x.tlog.mirror-info, 400,
 * 202 for a prefix, 200 with the mirror's cosignature; gzip bodies; tiles beyond the mirror checkpoint are 404.
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { MemoryLog } from '../support/memory-log.ts';
import { pkglog } from '../support/cli.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { MirrorStore } from '../../mirror/store.ts';
import { Mirror } from '../../mirror/mirror.ts';
import { startMirror, type RunningMirror } from '../../mirror/main.ts';
import { cosignatureSigner, cosignatureVerifier, mldsaCosigner } from '../../core/cosignature.ts';
import { parseVerifierKey, verifyNote } from '../../core/note.ts';
import { originHash } from '../../core/hash.ts';
import { formatTilePath, TILE_WIDTH } from '../../core/tiles.ts';
import { formatAddCheckpointRequest } from '../../core/witness-protocol.ts';
import { parseMirrorInfo, MIRROR_INFO_CONTENT_TYPE } from '../../core/tlog-mirror.ts';
import { isPkglogError } from '../../core/errors.ts';
import { hashRanges, planConsistencyProof } from '../../core/merkle.ts';
import { nodeHashFromTiles } from '../../core/tiles.ts';

const seed = Buffer.alloc(32, 7);

function newMirror(dir: string): Mirror {
  const store = MirrorStore.open(dir);
  return new Mirror({ store, signers: [cosignatureSigner('mirror.test/m1', seed, () => Math.floor(Date.now() / 1000))] });
}

describe('mirror: pull mode (in-process)', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  it('copies every tile and bundle, cosigns the log checkpoint, and catches up incrementally', async () => {
    const dir = tempDir('pkglog-mirror-');
    dirs.push(dir);
    const log = new MemoryLog();
    log.append(1000);
    const m = newMirror(dir);
    const l = m.store.addLog(log.origin, log.vkey, 'http://log.invalid', true, 0, 0);
    assert.equal(await m.pull(l.id, log.source()), 'cosigned 1000');
    const cp = m.store.mirrorCheckpoint(l.id)!;
    assert.equal(cp.treeSize, 1000);
    // The served checkpoint carries the log's signature and the mirror's cosignature, both valid.
    const v = verifyNote(cp.note, [parseVerifierKey(log.vkey), parseVerifierKey(m.vkey)]);
    assert.equal(v.verified.length, 2);
    const check = (size: number) => {
      for (let i = 0; i * TILE_WIDTH < size; i++) {
        const w = Math.min(TILE_WIDTH, size - i * TILE_WIDTH);
        for (const level of [-1, 0]) {
          const t = { level, index: i, width: w };
          assert.deepEqual(m.servedTile(l, t), log.rawTile(t), formatTilePath(t));
        }
      }
      const top = { level: 1, index: 0, width: Math.min(TILE_WIDTH, Math.floor(size / TILE_WIDTH)) };
      if (top.width > 0) assert.deepEqual(m.servedTile(l, top), log.rawTile(top));
    };
    check(1000);
    assert.equal(m.servedTile(l, { level: 0, index: 3, width: 233 }), undefined, 'beyond the mirror checkpoint');
    log.append(70_000 - 1000);
    assert.equal(await m.pull(l.id, log.source()), 'cosigned 70000');
    check(70_000);
    assert.equal(await m.pull(l.id, log.source()), 'up to date');
    m.store.close();
  });

  it('cosigns with ML-DSA-44 (subtree/v1) too when configured: both cosignatures verify', async () => {
    const dir = tempDir('pkglog-mirror-pq-');
    dirs.push(dir);
    const log = new MemoryLog('example.test/pq-log');
    log.append(300);
    const clock = () => Math.floor(Date.now() / 1000);
    const m = new Mirror({ store: MirrorStore.open(dir), signers: [cosignatureSigner('mirror.test/pq', seed, clock), mldsaCosigner('mirror.test/pq', Buffer.alloc(32, 8), { timestamp: clock })] });
    const l = m.store.addLog(log.origin, log.vkey, 'http://log.invalid', true, 0, 0);
    assert.equal(await m.pull(l.id, log.source()), 'cosigned 300');
    assert.equal(m.vkeys.length, 2);
    const v = verifyNote(m.store.mirrorCheckpoint(l.id)!.note, [parseVerifierKey(log.vkey), ...m.vkeys.map((k) => parseVerifierKey(k))]);
    assert.equal(v.verified.length, 3);
    m.store.close();
  });

  it('carries the witnesses\' cosignatures the log adds later: re-cosigns once, then is up to date', async () => {
    const dir = tempDir('pkglog-mirror-carry-');
    dirs.push(dir);
    const log = new MemoryLog('example.test/carry-log');
    log.append(10);
    const m = newMirror(dir);
    const l = m.store.addLog(log.origin, log.vkey, 'http://log.invalid', true, 0, 0);
    assert.equal(await m.pull(l.id, log.source()), 'cosigned 10');
    const w = cosignatureSigner('witness.test/w', Buffer.alloc(32, 3), () => Math.floor(Date.now() / 1000));
    const note = log.signedCheckpoint(10, [w]);
    const source = { ...log.source(), checkpoint: async () => note };
    assert.equal(await m.pull(l.id, source), 'cosigned 10 again (new cosignatures from the log)');
    assert.equal(await m.pull(l.id, source), 'up to date');
    const served = m.store.mirrorCheckpoint(l.id)!.note;
    assert.equal(verifyNote(served, [parseVerifierKey(log.vkey), parseVerifierKey(m.vkey), cosignatureVerifier(w.name, w.publicKey)]).verified.length, 3);
    m.store.close();
  });

  it('refuses a bundle the log tampered with: nothing stored, nothing cosigned', async () => {
    const dir = tempDir('pkglog-mirror-');
    dirs.push(dir);
    const log = new MemoryLog();
    log.append(600);
    const m = newMirror(dir);
    const l = m.store.addLog(log.origin, log.vkey, 'http://log.invalid', true, 0, 0);
    log.tamper = (t, data) => (t.level === -1 && t.index === 1 ? Buffer.concat([data.subarray(0, data.length - 1), Buffer.from('X')]) : data);
    await assert.rejects(m.pull(l.id, log.source()), (e: unknown) => isPkglogError(e, 'invalid_proof'));
    assert.equal(m.store.mirrorCheckpoint(l.id), undefined);
    assert.equal(m.store.getLogById(l.id)!.nextEntry, 0, 'nothing of the batch holding the forged package is kept');
    log.tamper = undefined;
    assert.equal(await m.pull(l.id, log.source()), 'cosigned 600');
    m.store.close();
  });
});

describe('mirror: add-checkpoint and add-entries over HTTP', function () {
  this.timeout(60_000);
  let dir: string;
  let running: RunningMirror;
  const log = new MemoryLog('example.test/pushing-log');
  let mirrorVkey: string;

  before(async () => {
    dir = tempDir('pkglog-mirror-http-');
    const store = MirrorStore.open(dir);
    store.addLog(log.origin, log.vkey, 'http://log.invalid', false, 0, 0);
    store.close();
    running = await startMirror({ dataDir: dir, listen: '127.0.0.1:0', name: 'mirror.test/http', pollIntervalMs: 3_600_000 });
    mirrorVkey = running.vkey;
    log.append(700);
  });
  after(async () => {
    await running.close();
    removeDir(dir);
  });

  const post = (path: string, body: Buffer, headers: Record<string, string> = {}) =>
    fetch(`${running.url}/${path}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', ...headers } });
  const consistency = (oldSize: number, size: number) =>
    oldSize === 0 ? [] : hashRanges(planConsistencyProof(oldSize, size), (n) => nodeHashFromTiles(n, log.size, (t) => log.rawTile(t)));
  const addCheckpoint = (oldSize: number, size: number) =>
    post('add-checkpoint', formatAddCheckpointRequest({ oldSize, consistencyProof: consistency(oldSize, size), checkpoint: Buffer.from(log.signedCheckpoint(size)) }));

  it('add-entries before any pending checkpoint is 422; an unknown origin is 404', async () => {
    const r = await post('add-entries', log.addEntriesBody(0, 0));
    assert.equal(r.status, 422, await r.text());
    const other = new MemoryLog('example.test/unknown');
    other.append(3);
    assert.equal((await post('add-entries', other.addEntriesBody(0, 3))).status, 404);
  });

  it('add-checkpoint updates the pending checkpoint (empty 200), 409 text/x.tlog.size on a stale old size, 403 on a bad signature', async () => {
    const r = await addCheckpoint(0, 500);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), '');
    const stale = await addCheckpoint(0, 600);
    assert.equal(stale.status, 409);
    assert.equal(stale.headers.get('content-type'), 'text/x.tlog.size');
    assert.equal(await stale.text(), '500\n');
    const forged = new MemoryLog(log.origin, 'another key'); // same origin, another key
    forged.append(600);
    const bad = await post('add-checkpoint', formatAddCheckpointRequest({ oldSize: 500, consistencyProof: [], checkpoint: Buffer.from(forged.signedCheckpoint()) }));
    assert.equal(bad.status, 403);
    // No checkpoint is served until entries are in: the mirror never cosigns in add-checkpoint.
    assert.equal((await fetch(`${running.url}/${originHash(log.origin)}/checkpoint`)).status, 404);
  });

  it('409 with mirror-info for an unknown upload_end or an upload_start past the next entry', async () => {
    const r = await post('add-entries', log.addEntriesBody(0, 123));
    assert.equal(r.status, 409);
    assert.equal(r.headers.get('content-type'), MIRROR_INFO_CONTENT_TYPE);
    assert.deepEqual(parseMirrorInfo(await r.text()), { treeSize: 500, nextEntry: 0, ticket: Buffer.alloc(0) });
    const past = await post('add-entries', log.addEntriesBody(10, 500));
    assert.equal(past.status, 409);
    assert.deepEqual(parseMirrorInfo(await past.text()), { treeSize: 500, nextEntry: 0, ticket: Buffer.alloc(0) });
  });

  it('a forged package is 422 and never cosigned; a truncated first package is 400', async () => {
    const body = log.addEntriesBody(0, 500, { to: 1 });
    const forged = Buffer.from(body);
    forged[forged.length - 40] ^= 1; // inside the last entry of package 0
    const r = await post('add-entries', forged);
    assert.equal(r.status, 422, await r.text());
    const cut = await post('add-entries', body.subarray(0, body.length - 5));
    assert.equal(cut.status, 400);
    assert.equal(running.store.getLog(log.origin)!.nextEntry, 0);
    assert.equal((await fetch(`${running.url}/${originHash(log.origin)}/checkpoint`)).status, 404);
  });

  it('a prefix is 202 with the advanced next entry; the rest (gzip) is 200 with the mirror cosignature', async () => {
    const first = await post('add-entries', log.addEntriesBody(0, 500, { to: 1 }));
    assert.equal(first.status, 202);
    assert.match(first.headers.get('accept-encoding') ?? '', /gzip/);
    assert.deepEqual(parseMirrorInfo(await first.text()), { treeSize: 500, nextEntry: 256, ticket: Buffer.alloc(0) });
    const rest = await post('add-entries', gzipSync(log.addEntriesBody(256, 500)), { 'content-encoding': 'gzip' });
    assert.equal(rest.status, 200);
    const lines = await rest.text();
    assert.match(lines, /^— mirror\.test\/http \S+\n$/);
    const served = await (await fetch(`${running.url}/${originHash(log.origin)}/checkpoint`)).text();
    assert.ok(served.startsWith(log.checkpointText(500)));
    assert.ok(served.endsWith(lines));
    verifyNote(served, [parseVerifierKey(log.vkey), parseVerifierKey(mirrorVkey)]);
    const tile = await fetch(`${running.url}/${originHash(log.origin)}/tile/entries/001.p/244`);
    assert.equal(tile.status, 200);
    assert.deepEqual(Buffer.from(await tile.arrayBuffer()), log.rawTile({ level: -1, index: 1, width: 244 }));
    assert.equal((await fetch(`${running.url}/${originHash(log.origin)}/tile/0/001.p/245`)).status, 404);
  });

  it('re-sending a finished upload re-cosigns (timestamp refresh); an upload_end below the mirror checkpoint is 409', async () => {
    const again = await post('add-entries', log.addEntriesBody(500, 500));
    assert.equal(again.status, 200);
    assert.equal((await addCheckpoint(500, 700)).status, 200);
    const done = await post('add-entries', log.addEntriesBody(500, 700));
    assert.equal(done.status, 200);
    const below = await post('add-entries', log.addEntriesBody(500, 500));
    assert.equal(below.status, 409);
    assert.equal(parseMirrorInfo(await below.text()).nextEntry, 700);
  });
});

describe('mirror: configuration and the data dir', function () {
  this.timeout(30_000);
  it('one mirror per data dir; add-log refuses another key for an origin (test/mirror/min-index.test.ts: --min-index)', async () => {
    const dir = tempDir('pkglog-mirror-cfg-');
    try {
      const log = new MemoryLog('example.test/cfg');
      assert.equal((await pkglog(['mirror', 'add-log', log.origin, log.vkey, 'http://127.0.0.1:9/', '--data-dir', dir])).code, 0);
      const other = new MemoryLog('example.test/cfg', 'another key');
      const again = await pkglog(['mirror', 'add-log', other.origin, other.vkey, 'http://127.0.0.1:9/', '--data-dir', dir]);
      assert.equal(again.code, 1);
      assert.match(again.err, /already mirrored with a different key/);
      const first = await startMirror({ dataDir: dir, listen: '127.0.0.1:0', pollIntervalMs: 3_600_000 });
      try {
        await assert.rejects(startMirror({ dataDir: dir, listen: '127.0.0.1:0' }), (e: unknown) => isPkglogError(e, 'conflict') && /another pkglog mirror is already running/.test((e as Error).message));
      } finally {
        await first.close();
      }
    } finally {
      removeDir(dir);
    }
  });
});
