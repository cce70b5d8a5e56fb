/**
 * A mirror with a minimum index M > 0 (C2SP tlog-mirror "Pruning and Retention Policies"): its copy is the log pruned
 * at M as C2SP tlog-tiles describes — no entry, bundle or tile whose end index is ≤ M, every other tile exactly as the
 * log serves it (the tiles straddling M start as the log's prefix below M, read from the log once and authenticated by
 * a consistency proof from M) — and it cosigns checkpoints of size ≥ M only. Pull mode and push (add-entries) both;
 * M at two tile levels; a log lying about the tiles at M; add-entries below M (409 mirror-info).
 */
import assert from 'node:assert/strict';
import { MemoryLog } from '../support/memory-log.ts';
import { pkglog } from '../support/cli.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { MirrorStore } from '../../mirror/store.ts';
import { Mirror } from '../../mirror/mirror.ts';
import { startMirror, type RunningMirror } from '../../mirror/main.ts';
import { cosignatureSigner } from '../../core/cosignature.ts';
import { parseVerifierKey, verifyNote } from '../../core/note.ts';
import { originHash } from '../../core/hash.ts';
import { formatTilePath, parseTilePath, tileWidth, TILE_WIDTH, type Tile } from '../../core/tiles.ts';
import { formatAddCheckpointRequest } from '../../core/witness-protocol.ts';
import { parseMirrorInfo } from '../../core/tlog-mirror.ts';
import { isPkglogError } from '../../core/errors.ts';
import { hashRanges, planConsistencyProof } from '../../core/merkle.ts';
import { nodeHashFromTiles } from '../../core/tiles.ts';

const clock = () => Math.floor(Date.now() / 1000);

function newMirror(dir: string): Mirror {
  return new Mirror({ store: MirrorStore.open(dir), signers: [cosignatureSigner('mirror.test/pruned', Buffer.alloc(32, 5), clock)] });
}

/** Every tile and bundle of the log at `size`: pruned ones (end index ≤ M) are not served, the others are the log's bytes. */
function checkCopy(m: Mirror, logId: number, log: MemoryLog, size: number, minIndex: number): { served: number; pruned: number } {
  const l = m.store.getLogById(logId)!;
  let served = 0;
  let pruned = 0;
  for (let level = -1; TILE_WIDTH ** Math.max(level, 0) <= size; level++) {
    for (let index = 0; tileWidth(Math.max(level, 0), index, size) > 0; index++) {
      const t: Tile = { level, index, width: tileWidth(Math.max(level, 0), index, size) };
      const end = (index + 1) * TILE_WIDTH ** (Math.max(level, 0) + 1);
      if (end <= minIndex) {
        assert.equal(m.servedTile(l, t), undefined, `${formatTilePath(t)} is pruned`);
        assert.ok(m.pruned(l, t));
        pruned++;
      } else {
        assert.deepEqual(m.servedTile(l, t), log.rawTile(t), formatTilePath(t));
        served++;
      }
    }
  }
  return { served, pruned };
}

describe('mirror: a minimum index (pull mode)', function () {
  this.timeout(120_000);
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));
  /** A log of `size` entries and a fresh mirror of it (pull mode) from minimum index `minIndex`. */
  const setUp = (origin: string, size: number, minIndex: number) => {
    const dir = tempDir('pkglog-mirror-min-');
    dirs.push(dir);
    const log = new MemoryLog(origin);
    log.append(size);
    const m = newMirror(dir);
    return { log, m, l: m.store.addLog(log.origin, log.vkey, 'http://log.invalid', true, minIndex, 0) };
  };

  it('waits for the log to reach M, then holds [M, size) and serves the log pruned at M; cosigns sizes ≥ M only', async () => {
    const { log, m, l } = setUp('example.test/min-log', 300, 512);
    assert.equal(l.nextEntry, 512, 'the next entry starts at the minimum index');
    assert.equal(await m.pull(l.id, log.source()), 'waiting: the log has 300 entries, the minimum index is 512');
    assert.equal(m.store.mirrorCheckpoint(l.id), undefined, 'nothing below M is cosigned');
    log.append(1000 - 300);
    assert.equal(await m.pull(l.id, log.source()), 'cosigned 1000');
    const cp = m.store.mirrorCheckpoint(l.id)!;
    assert.equal(verifyNote(cp.note, [parseVerifierKey(log.vkey), parseVerifierKey(m.vkey)]).verified.length, 2);
    assert.equal(m.store.bundle(l.id, 0), undefined, 'no entry below M is stored');
    assert.equal(m.store.bundle(l.id, 1), undefined);
    assert.deepEqual(checkCopy(m, l.id, log, 1000, 512), { served: 5, pruned: 4 }); // bundles 2,3 + tiles 0/2, 0/3, 1/0
    log.append(3000);
    assert.equal(await m.pull(l.id, log.source()), 'cosigned 4000');
    checkCopy(m, l.id, log, 4000, 512);
    m.store.close();
  });

  it('M above a level-1 tile: the tiles straddling M at levels 1 and 2 come from the log and the copy grows from them', async () => {
    const M = TILE_WIDTH ** 2 + 3 * TILE_WIDTH; // 66,304: level-1 tile 1 (width 3) and level-2 tile 0 (width 1) straddle it
    const { log, m, l } = setUp('example.test/min2-log', M, M);
    assert.equal(await m.pull(l.id, log.source()), `cosigned ${M}`, 'a checkpoint of size M: no entry yet, the edge alone');
    log.append(2000);
    assert.equal(await m.pull(l.id, log.source()), `cosigned ${M + 2000}`);
    const { served, pruned } = checkCopy(m, l.id, log, M + 2000, M);
    assert.deepEqual({ served, pruned }, { served: 2 * 8 + 2, pruned: 2 * 259 + 1 }); // bundles and level-0 tiles 259…266; tiles 1/1 and 2/0
    m.store.close();
  });

  it('refuses tiles at M that do not match the signed root: nothing stored, nothing cosigned', async () => {
    const { log, m, l } = setUp('example.test/min-lie', 900, 768);
    // The level-1 tile straddling 768 (its hashes 0…2 are below M): a lie in hash 1, which no entry package carries.
    log.tamper = (t, data) => {
      if (t.level !== 1) return data;
      const d = Buffer.from(data);
      d[40] ^= 1;
      return d;
    };
    await assert.rejects(m.pull(l.id, log.source()), (e: unknown) => isPkglogError(e, 'invalid_proof') && /minimum index 768/.test((e as Error).message));
    assert.equal(m.store.tile(l.id, 1, 0), undefined);
    assert.equal(m.store.mirrorCheckpoint(l.id), undefined);
    log.tamper = undefined;
    assert.equal(await m.pull(l.id, log.source()), 'cosigned 900');
    checkCopy(m, l.id, log, 900, 768);
    m.store.close();
  });
});

describe('mirror: a minimum index (add-entries over HTTP)', function () {
  this.timeout(60_000);
  let dir: string;
  let running: RunningMirror;
  const log = new MemoryLog('example.test/pushing-min-log');
  const LOG_URL = 'http://log.test/prefix';
  let tileRequests = 0;
  // The log's URL, answered from the in-memory log: the mirror reads the tiles straddling M from there.
  const fakeFetch = async (input: string | URL | Request): Promise<Response> => {
    const url = String(input instanceof Request ? input.url : input);
    if (!url.startsWith(LOG_URL + '/')) return new Response('no', { status: 404 });
    const path = url.slice(LOG_URL.length + 1);
    if (path === 'checkpoint') return new Response(log.signedCheckpoint());
    try {
      const t = parseTilePath(path);
      tileRequests++;
      return new Response(await log.source().tile(t));
    } catch {
      return new Response('no', { status: 404 });
    }
  };

  before(async () => {
    dir = tempDir('pkglog-mirror-min-http-');
    const store = MirrorStore.open(dir);
    store.addLog(log.origin, log.vkey, LOG_URL, false, 512, 0);
    store.close();
    running = await startMirror({ dataDir: dir, listen: '127.0.0.1:0', name: 'mirror.test/min-http', pollIntervalMs: 3_600_000, fetch: fakeFetch as typeof fetch });
    log.append(300);
  });
  after(async () => {
    await running.close();
    removeDir(dir);
  });

  const post = (path: string, body: Buffer) => fetch(`${running.url}/${path}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  const consistency = (oldSize: number, size: number) =>
    oldSize === 0 ? [] : hashRanges(planConsistencyProof(oldSize, size), (n) => nodeHashFromTiles(n, log.size, (t) => log.rawTile(t)));
  const addCheckpoint = (oldSize: number, size: number) =>
    post('add-checkpoint', formatAddCheckpointRequest({ oldSize, consistencyProof: consistency(oldSize, size), checkpoint: Buffer.from(log.signedCheckpoint(size)) }));

  it('below M: add-checkpoint is accepted, add-entries is 409 with the next entry M, nothing is cosigned', async () => {
    assert.equal((await addCheckpoint(0, 300)).status, 200);
    const r = await post('add-entries', log.addEntriesBody(0, 300));
    assert.equal(r.status, 409);
    assert.deepEqual(parseMirrorInfo(await r.text()), { treeSize: 300, nextEntry: 512, ticket: Buffer.alloc(0) });
    assert.equal((await fetch(`${running.url}/${originHash(log.origin)}/checkpoint`)).status, 404);
  });

  it('from M: upload_start below M is 409; [M, size) is 200 with the cosignature; pruned tiles are 404, the rest is the log', async () => {
    log.append(1100 - 300);
    assert.equal((await addCheckpoint(300, 1100)).status, 200);
    const low = await post('add-entries', log.addEntriesBody(256, 1100));
    assert.equal(low.status, 409);
    assert.equal(parseMirrorInfo(await low.text()).nextEntry, 512);
    const r = await post('add-entries', log.addEntriesBody(512, 1100));
    const lines = await r.text();
    assert.equal(r.status, 200, lines);
    assert.match(lines, /^— mirror\.test\/min-http /);
    assert.ok(tileRequests > 0, 'the tiles at M came from the log URL');
    const copy = `${running.url}/${originHash(log.origin)}`;
    const served = await (await fetch(`${copy}/checkpoint`)).text();
    verifyNote(served, [parseVerifierKey(log.vkey), parseVerifierKey(running.vkey)]);
    for (const path of ['tile/entries/000', 'tile/entries/001', 'tile/0/000', 'tile/0/001']) {
      const res = await fetch(`${copy}/${path}`);
      assert.equal(res.status, 404, path);
      assert.match(await res.text(), /pruned: .* minimum index 512/);
    }
    for (const path of ['tile/entries/002', 'tile/entries/004.p/76', 'tile/0/003', 'tile/1/000.p/4']) {
      const res = await fetch(`${copy}/${path}`);
      assert.equal(res.status, 200, path);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), log.rawTile(parseTilePath(path)), path);
    }
  });
});

describe('mirror: add-log --min-index', function () {
  this.timeout(30_000);
  it('takes a multiple of 256; another minimum index for a mirrored log is refused', async () => {
    const dir = tempDir('pkglog-mirror-min-cfg-');
    try {
      const log = new MemoryLog('example.test/min-cfg');
      const odd = await pkglog(['mirror', 'add-log', log.origin, log.vkey, 'http://127.0.0.1:9/', '--min-index', '100', '--data-dir', dir]);
      assert.equal(odd.code, 2);
      assert.match(odd.err, /--min-index must be a multiple of 256/);
      const ok = await pkglog(['mirror', 'add-log', log.origin, log.vkey, 'http://127.0.0.1:9/', '--min-index', '1024', '--data-dir', dir]);
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /from entry 1,024 on/);
      const other = await pkglog(['mirror', 'add-log', log.origin, log.vkey, 'http://127.0.0.1:9/', '--data-dir', dir]);
      assert.equal(other.code, 1);
      assert.match(other.err, /already mirrored from minimum index 1024/);
    } finally {
      removeDir(dir);
    }
  });
});
