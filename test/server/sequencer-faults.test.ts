/**
 * The sequencer's commit and error paths: a batch that committed is answered as committed whatever a later step does
 * (the checkpoint callback throws, the store reports an error after COMMIT); a batch that did not commit (SQLITE_FULL,
 * injected with SQLite's max_page_count) is refused as a whole with a clear 503, leaves the tree and the sequencer as
 * they were, and the log carries on from the stored state once space returns — in-process and through HTTP.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import request from 'supertest';
import { EMPTY_ROOT, leafHash } from '../../core/hash.ts';
import { ed25519Signer } from '../../core/note.ts';
import { isPkglogError } from '../../core/errors.ts';
import { LogStore, SqliteStore } from '../../log-store/store.ts';
import { Sequencer, signCheckpoint, type Sequenced } from '../../server/sequencer.ts';
import { artifact, seedOf, sign, submissionBody } from '../support/submissions.ts';
import { openTestLog, removeDir, tempDir } from '../support/log-harness.ts';
import { ReferenceTree } from '../support/reference-tree.ts';

const ORIGIN = 'example.test/sequencer-faults';
const signer = ed25519Signer(ORIGIN, seedOf('sequencer-faults log key'));

/**
 * The disk-full cases assert nothing about time, but they sign, verify (on a worker thread) and integrate a few
 * hundred entries: about 1 s of CPU, which took over the default 20 s on a machine with a load average of 30. A
 * larger bound, still a bound.
 */
const DISK_FULL_TIMEOUT_MS = 120_000;

/** A stack trace line as Node prints it. */
const STACK_LINE = /\n\s+at /;

function setup(onCheckpoint?: () => void, maxBatch = 1000) {
  const dir = tempDir();
  const store = LogStore.open(join(dir, 'log.sqlite'));
  store.initialize({ treeSize: 0, rootHash: EMPTY_ROOT, checkpoint: signCheckpoint(signer, ORIGIN, 0, EMPTY_ROOT) }, 0);
  const lines: string[] = [];
  const sequencer = new Sequencer({
    store: new SqliteStore(store), signer, origin: ORIGIN, now: () => 1_700_000_000_000, batchIntervalMs: 1, maxBatch, maxPending: 10_000,
    log: (m) => lines.push(m), ...(onCheckpoint ? { onCheckpoint } : {}),
  });
  return {
    dir, store, sequencer, lines,
    async close() {
      await sequencer.close();
      store.close();
      removeDir(dir);
    },
  };
}

/** Every stored leaf hash, in order, checked against the stored root. */
function checkStoredTree(store: LogStore): ReferenceTree {
  const size = store.treeState()!.treeSize;
  const leaves = store.entryLeaves(0, size);
  assert.equal(leaves.length, size, 'every index below the tree size has its entry');
  const ref = ReferenceTree.fromEntries(leaves);
  assert.ok(ref.root().equals(store.treeState()!.rootHash), 'the stored root is the root of the stored entries');
  return ref;
}

describe('server: sequencer commit and error paths', () => {
  it('keeps integrating after a flush that found nothing to do (close, a timer and a full pool firing together)', async function () {
    // Pools of MAX_BATCH (not the default 1000): the same race for a tenth of the signing, which a loaded machine
    // (load average 20+) took over 30 s to do.
    const MAX_BATCH = 100;
    const t = setup(undefined, MAX_BATCH);
    try {
      await t.sequencer.flush(); // nothing pending
      await t.sequencer.flush();
      assert.equal((await t.sequencer.submit(sign(artifact(0)))).index, 0);
      for (let round = 0; round < 5; round++) {
        const subs = Array.from({ length: MAX_BATCH }, (_, i) => sign(artifact(1 + round * MAX_BATCH + i))); // a full pool: setImmediate and the timer
        const got = await Promise.all(subs.map((s) => t.sequencer.submit(s)));
        assert.equal(got.length, MAX_BATCH);
        await new Promise((r) => setTimeout(r, 5)); // the other trigger finds the pool empty
      }
      assert.equal((await t.store.treeState())!.treeSize, 5 * MAX_BATCH + 1);
    } finally {
      await t.close();
    }
  });

  it('answers a committed batch as committed although the checkpoint callback throws', async () => {
    let calls = 0;
    const t = setup(() => {
      calls++;
      throw new Error('witness push exploded');
    });
    try {
      for (let round = 0; round < 3; round++) {
        const got = await Promise.all([0, 1, 2, 3].map((i) => t.sequencer.submit(sign(artifact(round * 4 + i)))));
        assert.deepEqual(got.map((r) => r.index).sort((a, b) => a - b), [0, 1, 2, 3].map((i) => round * 4 + i));
        for (const r of got) assert.ok(r.leafHash.equals(leafHash(r.leaf)));
        assert.equal((await t.store.treeState())!.treeSize, (round + 1) * 4);
      }
      assert.equal(calls, 3, 'called once per committed batch');
      const failures = t.lines.filter((l) => /checkpoint callback failed/.test(l));
      assert.equal(failures.length, 3, t.lines.join('\n'));
      assert.match(failures[0]!, /after committing size 4: the checkpoint callback failed: Error: witness push exploded/);
      for (const l of t.lines) assert.doesNotMatch(l, STACK_LINE, 'one line, no stack trace');
      checkStoredTree(t.store);
    } finally {
      await t.close();
    }
  });

  it('answers as committed when the store reports an error after COMMIT', async () => {
    const t = setup();
    try {
      await t.sequencer.submit(sign(artifact(0)));
      const append = t.store.append.bind(t.store);
      let thrown = 0;
      t.store.append = (b) => {
        append(b);
        thrown++;
        throw Object.assign(new Error('disk I/O error after commit'), { code: 'SQLITE_IOERR' });
      };
      const got = await Promise.all([1, 2].map((i) => t.sequencer.submit(sign(artifact(i)))));
      assert.equal(thrown, 1);
      assert.deepEqual(got.map((r) => r.index).sort(), [1, 2]);
      assert.equal((await t.store.treeState())!.treeSize, 3);
      assert.ok(t.lines.some((l) => /size 3 is committed although the store reported: Error SQLITE_IOERR/.test(l)), t.lines.join('\n'));
      t.store.append = append;
      assert.equal((await t.sequencer.submit(sign(artifact(3)))).index, 3);
      checkStoredTree(t.store);
    } finally {
      await t.close();
    }
  });

  it('refuses a batch that did not commit (SQLITE_FULL) as a whole and carries on from the stored state', async function () {
    this.timeout(DISK_FULL_TIMEOUT_MS);
    const t = setup();
    try {
      const first = await Promise.all([0, 1, 2].map((i) => t.sequencer.submit(sign(artifact(i)))));
      const before = (await t.store.treeState())!;
      const db = t.store.db;
      db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
      // Enough entries that the batch needs new pages.
      const refused = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => t.sequencer.submit(sign(artifact(100 + i)))));
      for (const r of refused) {
        assert.equal(r.status, 'rejected');
        const e = (r as PromiseRejectedResult).reason;
        assert.ok(isPkglogError(e, 'overloaded'), String(e));
        assert.match(e.message, /disk is full/);
      }
      const after = (await t.store.treeState())!;
      assert.equal(after.treeSize, before.treeSize, 'the tree did not move');
      assert.ok(after.rootHash.equals(before.rootHash));
      assert.equal(after.checkpoint, before.checkpoint);
      assert.equal(t.store.entryLeaf(3), undefined, 'no entry of the refused batch is stored');
      const refusals = t.lines.filter((l) => /refused/.test(l));
      assert.ok(refusals.length >= 1, t.lines.join('\n'));
      for (const l of refusals) assert.match(l, /^batch of \d+ refused \(nothing of it was logged\): disk full: SqliteError SQLITE_FULL: /);
      for (const l of t.lines) assert.doesNotMatch(l, STACK_LINE);

      // Space returns: the same submissions are logged right after the stored tree, the earlier ones keep their place.
      db.pragma('max_page_count = 1073741823');
      const later: Sequenced[] = await Promise.all(Array.from({ length: 200 }, (_, i) => t.sequencer.submit(sign(artifact(100 + i)))));
      assert.deepEqual(later.map((r) => r.index).sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => 3 + i));
      const again = await Promise.all([0, 1, 2].map((i) => t.sequencer.submit(sign(artifact(i)))));
      assert.deepEqual(again.map((r) => r.index), first.map((r) => r.index));
      const ref = checkStoredTree(t.store);
      assert.ok(ref.root(3).equals(before.rootHash), 'the new tree extends the one before the failure');
    } finally {
      await t.close();
    }
  });

  it('answers 503 with a clear message through HTTP while the disk is full, and resumes by itself', async function () {
    this.timeout(DISK_FULL_TIMEOUT_MS);
    const log = await openTestLog({ verifyThreads: '1' });
    try {
      const ok = await request(log.app).post('/v1/entries').send(submissionBody(0)).expect(200);
      assert.equal(ok.body.index, 0);
      const sync = (log.store as SqliteStore).sync;
      const db = sync.db;
      db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
      const res = await request(log.app).post('/v1/entries/batch').send({ entries: Array.from({ length: 100 }, (_, i) => submissionBody(1 + i)) }).expect(200);
      for (const r of res.body.results) {
        assert.equal(r.status, 503);
        assert.equal(r.error, 'overloaded');
        assert.match(r.message, /disk is full/);
      }
      assert.equal((await log.store.treeState())!.treeSize, 1);

      db.pragma('max_page_count = 1073741823');
      const back = await request(log.app).post('/v1/entries/batch').send({ entries: Array.from({ length: 100 }, (_, i) => submissionBody(1 + i)) }).expect(200);
      assert.deepEqual(back.body.results.map((r: { index: number }) => r.index).sort((a: number, b: number) => a - b), Array.from({ length: 100 }, (_, i) => 1 + i));
      const again = await request(log.app).post('/v1/entries').send(submissionBody(0)).expect(200);
      assert.equal(again.body.index, 0);
      checkStoredTree(sync);
    } finally {
      await log.close();
      removeDir(log.dataDir);
    }
  });
});
