/**
 * The publisher (server/publish.ts, `--publish-dir`): the directory holds exactly the tlog-tiles layout of the
 * published tree (full tiles, the partial tiles of every signed size whose full tile is not there yet, entry bundles
 * and their .gz, the checkpoint), byte for byte what the log's own routes serve; files appear atomically (no temp file
 * is ever left in place of a tile); re-publication is idempotent (nothing rewritten), repairs what is missing since the
 * directory's checkpoint, never replaces the checkpoint by a smaller one or by another checkpoint of the same size, and
 * writes a full tile once. The expected layout is computed with the independent tlog-tiles code (test/interop).
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import request from 'supertest';
import * as I from '../interop/independent.ts';
import { openTestLog, removeDir, tempDir } from '../support/log-harness.ts';
import { artifact, sign } from '../support/submissions.ts';
import { Publisher } from '../../server/publish.ts';
import { DirectoryTarget, TMP_DIR } from '../../server/publish-dir.ts';
import { parseVerifierKey, ed25519Signer } from '../../core/note.ts';
import { signCheckpoint } from '../../server/sequencer.ts';
import { isPkglogError } from '../../core/errors.ts';
import { seedOf } from '../support/submissions.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import { expectedLayout } from '../support/publish-layout.ts';

type Log = Awaited<ReturnType<typeof openTestLog>>;

/** Every file under `dir` (relative paths), the temp dir excluded. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => !f.startsWith(TMP_DIR) && statSync(join(dir, f)).isFile())
    .sort();
}

let next = 0;
/** Commits one batch of `n` new entries; returns the new size. */
async function batch(log: Log, n: number): Promise<number> {
  const ps = Array.from({ length: n }, () => log.sequencer.submit(sign(artifact(next++))));
  log.sequencer.flush();
  const r = await Promise.all(ps);
  await log.publisher!.idle();
  return r[r.length - 1]!.treeSize;
}

describe('publisher (--publish-dir)', function () {
  this.timeout(60_000);
  const cleanup: string[] = [];
  after(() => cleanup.forEach(removeDir));

  async function open(dataDir?: string, publishDir?: string): Promise<{ log: Log; dir: string }> {
    const dir = publishDir ?? tempDir('pkglog-publish-');
    const log = await openTestLog({ publishDir: dir, ...(dataDir ? { dataDir } : {}) });
    cleanup.push(dir, log.dataDir);
    await log.publisher!.start();
    return { log, dir };
  }

  /** The publisher of a log opened on `dir` refuses to start with 'unsafe_state' and a message matching `re`. */
  async function refuses(dataDir: string, dir: string, re: RegExp): Promise<void> {
    const log = await openTestLog({ publishDir: dir, dataDir });
    try {
      await assert.rejects(log.publisher!.start(), (e: unknown) => isPkglogError(e, 'unsafe_state') && re.test((e as Error).message));
    } finally {
      await log.close();
    }
  }

  it('writes exactly the tlog-tiles layout, byte for byte what the log serves, after every commit', async () => {
    const { log, dir } = await open();
    try {
      await log.publisher!.idle();
      assert.deepEqual(files(dir), ['checkpoint'], 'size 0: the checkpoint only');
      const signed: number[] = [];
      for (const n of [1, 3, 251, 1, 1, 256, 300, 5]) {
        const size = await batch(log, n);
        signed.push(size);
        assert.deepEqual(files(dir), expectedLayout(size, signed), `layout at size ${size}`);
        assert.equal(readFileSync(join(dir, 'checkpoint'), 'utf8'), (await request(log.app).get('/checkpoint')).text);
      }
      for (const f of files(dir)) {
        if (f === 'checkpoint') continue;
        const plain = f.replace(/\.gz$/, '');
        const r = await request(log.app).get('/' + plain).set('accept-encoding', 'identity').buffer(true).parse((res, cb) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => cb(null, Buffer.concat(chunks)));
        });
        assert.equal(r.status, 200, plain);
        const data = readFileSync(join(dir, f));
        assert.ok((f.endsWith('.gz') ? gunzipSync(data) : data).equals(r.body as Buffer), `${f} differs from GET /${plain}`);
      }
      // the independent reader: root from the published level-0 tiles = the published checkpoint's root
      const vkey = I.parseVKey(log.vkey);
      const cp = I.parseCheckpointText(I.openNote(readFileSync(join(dir, 'checkpoint')), [vkey]).text);
      const leaves: Buffer[] = [];
      for (let i = 0; i * 256 < cp.size; i++) {
        const w = Math.min(256, cp.size - i * 256);
        leaves.push(...I.tileHashes(readFileSync(join(dir, I.tilePath(0, i, w))), w));
      }
      assert.ok(new I.HashTree(leaves).root(cp.size).equals(cp.root));
      assert.deepEqual(readdirSync(join(dir, TMP_DIR)), [], 'no temporary file is left');
    } finally {
      await log.close();
    }
  });

  it('writes a full tile once: later passes and restarts never rewrite it; its partial tiles are removed', async () => {
    const { log, dir } = await open();
    let dataDir = log.dataDir;
    try {
      await batch(log, 100);
      assert.ok(existsSync(join(dir, 'tile/0/000.p/100')));
      await batch(log, 156);
      const full = join(dir, 'tile/0/000');
      const st = statSync(full);
      assert.ok(!existsSync(join(dir, 'tile/0/000.p')), 'partials of a full tile are removed');
      assert.ok(!existsSync(join(dir, 'tile/entries/000.p')));
      for (let i = 0; i < 3; i++) await batch(log, 7);
      const again = statSync(full);
      assert.equal(again.ino, st.ino);
      assert.equal(again.mtimeMs, st.mtimeMs);
    } finally {
      await log.close();
    }
    // A restart publishes nothing new: same files, same inodes.
    const before = new Map(files(dir).map((f) => [f, statSync(join(dir, f)).ino]));
    const { log: log2 } = await open(dataDir, dir);
    try {
      await log2.publisher!.idle();
      assert.equal(log2.publisher!.stats.written, 0);
      assert.deepEqual(new Map(files(dir).map((f) => [f, statSync(join(dir, f)).ino])), before);
    } finally {
      await log2.close();
    }
  });

  it('repairs at the next start what is missing since the directory\'s checkpoint (crash between commit and publish)', async () => {
    const { log, dir } = await open();
    const dataDir = log.dataDir;
    const signed: number[] = [];
    let size = 0;
    try {
      for (const n of [10, 20]) signed.push((size = await batch(log, n)));
      copyFileSync(join(dir, 'checkpoint'), join(dataDir, 'old-checkpoint')); // what a crash would have left
      for (const n of [300, 40, 1]) signed.push((size = await batch(log, n)));
    } finally {
      await log.close();
    }
    const complete = files(dir);
    assert.deepEqual(complete, expectedLayout(size, signed));
    const bytes = new Map(complete.map((f) => [f, readFileSync(join(dir, f))]));
    // Roll the directory back to size 30: its checkpoint, and every file written after it.
    copyFileSync(join(dataDir, 'old-checkpoint'), join(dir, 'checkpoint'));
    for (const f of complete) if (!expectedLayout(30, signed.slice(0, 2)).includes(f)) rmSync(join(dir, f));
    // and a leftover temp file
    writeFileSync(join(dir, TMP_DIR, 'leftover'), 'x');
    const { log: log2 } = await open(dataDir, dir);
    try {
      assert.equal(log2.publisher!.publishedSize, 30);
      await log2.publisher!.idle();
      assert.equal(log2.publisher!.publishedSize, size);
      assert.deepEqual(files(dir), expectedLayout(size, signed));
      for (const [f, b] of bytes) assert.ok(readFileSync(join(dir, f)).equals(b), `${f} after repair`);
      assert.deepEqual(readdirSync(join(dir, TMP_DIR)), []);
    } finally {
      await log2.close();
    }
  });

  it('never replaces the checkpoint by a smaller one, and refuses a directory holding another checkpoint or another log', async () => {
    const { log, dir } = await open();
    try {
      await batch(log, 5);
      const older = (await log.store.checkpoint(5))!;
      await batch(log, 5);
      const newer = readFileSync(join(dir, 'checkpoint'), 'utf8');
      assert.match(newer, /\n10\n/);
      // A second publisher (e.g. a stale process) asked to publish size 5 over size 10: the file stays at 10.
      const stale = new Publisher({
        target: new DirectoryTarget(dir, { fsync: false }), store: log.store, origin: log.origin, verifier: parseVerifierKey(log.vkey),
        publishableSize: () => 5, checkpoint: async () => ({ treeSize: 5, note: older }),
      });
      await stale.start();
      await stale.idle();
      assert.equal(readFileSync(join(dir, 'checkpoint'), 'utf8'), newer);
      await stale.close();
    } finally {
      await log.close();
    }
    // Another checkpoint of size 10 signed by the same key (a fork) in the directory: the log refuses to publish into it.
    const key = ed25519Signer(log.origin, seedOf('unused')); // a different key: another log with the same origin
    writeFileSync(join(dir, 'checkpoint'), signCheckpoint(key, log.origin, 10, Buffer.alloc(32, 7)));
    await refuses(log.dataDir, dir, /not a checkpoint signed by this log/);
    // The log's own key, another root at size 10 (what a forked history would have published): refused too.
    const own = loadOrCreateLogKey(join(log.dataDir, 'log.key'), undefined);
    writeFileSync(join(dir, 'checkpoint'), signCheckpoint(own.signer, own.origin, 10, Buffer.alloc(32, 7)));
    await refuses(log.dataDir, dir, /not the checkpoint this log signed/);
    // Bigger than the database: refused.
    writeFileSync(join(dir, 'checkpoint'), signCheckpoint(own.signer, own.origin, 11, Buffer.alloc(32, 7)));
    await refuses(log.dataDir, dir, /ahead of the database/);
  });

  it('republishes the same checkpoint with more cosignatures, never with fewer; a different checkpoint of the same size halts it', async () => {
    const { log, dir } = await open();
    try {
      await batch(log, 3);
      const base = (await log.store.checkpoint(3))!;
      const cosig = (name: string) => `— ${name} ${Buffer.alloc(76, name.length).toString('base64')}\n`;
      const lines: string[] = [];
      const lines2: string[] = [];
      const p = new Publisher({
        target: new DirectoryTarget(dir, { fsync: false }), store: log.store, origin: log.origin, verifier: parseVerifierKey(log.vkey), log: (m) => lines2.push(m),
        publishableSize: () => 3, checkpoint: async () => ({ treeSize: 3, note: base + lines.join('') }),
      });
      await p.start();
      await p.idle();
      assert.equal(readFileSync(join(dir, 'checkpoint'), 'utf8'), base);
      lines.push(cosig('witness.example/w1'));
      p.notify();
      await p.idle();
      assert.equal(readFileSync(join(dir, 'checkpoint'), 'utf8'), base + cosig('witness.example/w1'), 'more cosignatures: replaced');
      lines.pop();
      p.notify();
      await p.idle();
      assert.equal(readFileSync(join(dir, 'checkpoint'), 'utf8'), base + cosig('witness.example/w1'), 'fewer cosignatures: kept');
      await p.close();
      // a checkpoint of size 3 with another root, signed by the log's own key: refused, the file stays
      const own = loadOrCreateLogKey(join(log.dataDir, 'log.key'), undefined);
      const forked = signCheckpoint(own.signer, own.origin, 3, Buffer.alloc(32, 1));
      const q = new Publisher({
        target: new DirectoryTarget(dir, { fsync: false }), store: log.store, origin: log.origin, verifier: parseVerifierKey(log.vkey), log: (m) => lines2.push(m),
        publishableSize: () => 3, checkpoint: async () => ({ treeSize: 3, note: forked }),
      });
      await q.start();
      await q.idle();
      assert.equal(readFileSync(join(dir, 'checkpoint'), 'utf8'), base + cosig('witness.example/w1'));
      assert.match(lines2.join('\n'), /holds a different checkpoint of size 3 than the log's: not replaced/);
      await q.close();
    } finally {
      await log.close();
    }
  });

  it('two publishers on one directory: the replacement is conditional, so the one that read an older checkpoint never moves it back', async () => {
    const dataDir = tempDir();
    const dir = tempDir('pkglog-publish-');
    cleanup.push(dataDir, dir);
    const log = await openTestLog({ dataDir });
    try {
      await batch2(log, 5);
      await batch2(log, 5);
      const note5 = (await log.store.checkpoint(5))!;
      const note10 = (await log.store.checkpoint(10))!;
      // The target itself: a replacement conditional on a checkpoint that is no longer there writes nothing.
      const t = new DirectoryTarget(dir, { fsync: false });
      await t.open();
      await t.putCheckpoint(Buffer.from(note5), undefined);
      await assert.rejects(t.putCheckpoint(Buffer.from(note10), undefined), (e: unknown) => isPkglogError(e, 'conflict'));
      await t.putCheckpoint(Buffer.from(note10), Buffer.from(note5));
      await assert.rejects(t.putCheckpoint(Buffer.from(note5), Buffer.from(note5)), (e: unknown) => isPkglogError(e, 'conflict'));
      assert.equal(readFileSync(join(dir, 'checkpoint'), 'utf8'), note10);
      rmSync(join(dir, 'checkpoint'));
      // Publisher `slow` (size 5) reads the empty directory, then stalls before replacing the checkpoint; meanwhile
      // `fast` publishes size 10. When `slow` goes on, its replacement is refused, it reads again and sees size 10.
      let release!: () => void;
      const stalled = new Promise<void>((r) => (release = r));
      let reached!: () => void;
      const atPut = new Promise<void>((r) => (reached = r));
      const slowTarget = new DirectoryTarget(dir, { fsync: false });
      const put = slowTarget.putCheckpoint.bind(slowTarget);
      let attempts = 0;
      slowTarget.putCheckpoint = async (data, expected) => {
        if (attempts++ === 0) {
          reached();
          await stalled;
        }
        return put(data, expected);
      };
      const mk = (target: DirectoryTarget, size: number, note: string) => new Publisher({
        target, store: log.store, origin: log.origin, verifier: parseVerifierKey(log.vkey),
        publishableSize: () => size, checkpoint: async () => ({ treeSize: size, note }),
      });
      const slow = mk(slowTarget, 5, note5);
      await slow.start();
      await atPut;
      const fast = mk(new DirectoryTarget(dir, { fsync: false }), 10, note10);
      await fast.start();
      await fast.idle();
      assert.equal(readFileSync(join(dir, 'checkpoint'), 'utf8'), note10);
      release();
      await slow.idle();
      assert.equal(attempts, 1, 'the stale publisher read the checkpoint again and did not try to replace it');
      assert.equal(readFileSync(join(dir, 'checkpoint'), 'utf8'), note10, 'never moved back to size 5');
      assert.equal(slow.stats.failures, 0);
      await slow.close();
      await fast.close();
      // A publisher that is not active (a front end without the sequencer lease) does nothing to the target.
      let active = false;
      const idle = new Publisher({
        target: new DirectoryTarget(dir, { fsync: false }), store: log.store, origin: log.origin, verifier: parseVerifierKey(log.vkey),
        publishableSize: () => 5, checkpoint: async () => ({ treeSize: 5, note: note5 }), active: () => active,
      });
      writeFileSync(join(dir, TMP_DIR, 'someone-elses-temp-file'), 'x');
      await idle.start();
      await idle.idle();
      assert.equal(idle.stats.passes, 0);
      assert.deepEqual(readdirSync(join(dir, TMP_DIR)), ['someone-elses-temp-file'], 'an inactive publisher does not even open the target');
      active = true;
      idle.notify();
      await idle.idle();
      assert.equal(idle.stats.passes, 1);
      assert.equal(readFileSync(join(dir, 'checkpoint'), 'utf8'), note10, 'active: it read the target, which is ahead');
      await idle.close();
    } finally {
      await log.close();
    }
  });

  it('publishes nothing beyond the publishable size (the high-water mark)', async () => {
    const dataDir = tempDir();
    const dir = tempDir('pkglog-publish-');
    cleanup.push(dataDir, dir);
    const log = await openTestLog({ dataDir });
    try {
      await batch2(log, 200);
      await batch2(log, 100);
      const p = new Publisher({
        target: new DirectoryTarget(dir, { fsync: false }), store: log.store, origin: log.origin, verifier: parseVerifierKey(log.vkey),
        publishableSize: () => 200, checkpoint: async () => ({ treeSize: 200, note: (await log.store.checkpoint(200))! }),
      });
      await p.start();
      await p.idle();
      assert.deepEqual(files(dir), ['checkpoint', 'tile/0/000.p/200', 'tile/entries/000.p/200', 'tile/entries/000.p/200.gz']);
      assert.match(readFileSync(join(dir, 'checkpoint'), 'utf8'), /\n200\n/);
      await p.close();
    } finally {
      await log.close();
    }
  });
});

/** A batch on a log without a publisher. */
async function batch2(log: Log, n: number): Promise<number> {
  const ps = Array.from({ length: n }, () => log.sequencer.submit(sign(artifact(next++))));
  log.sequencer.flush();
  const r = await Promise.all(ps);
  return r[r.length - 1]!.treeSize;
}

