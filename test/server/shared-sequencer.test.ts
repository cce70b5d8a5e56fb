/**
 * SharedSequencer (server/shared-sequencer.ts): several front ends on one PostgreSQL database, one of them sequencing,
 * answers only after the commit, idempotent resubmission, 409 for a different artifact, 503 without a sequencer.
 * The store here is a minimal one in the same database (its commit runs the fence first, like the real one); the
 * real store and processes are tested end to end in test/e2e/failover.test.ts.
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import { PkglogError } from '../../core/errors.ts';
import { encodeLeaf, type Submission } from '../../core/entry.ts';
import { Coordination, inTransaction } from '../../log-store/pg-sequencing.ts';
import { fileHashOf, type BatchHooks } from '../../server/sequencer.ts';
import { SharedSequencer, type IntegrateResult } from '../../server/shared-sequencer.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { artifact, sign } from '../support/submissions.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('server/shared-sequencer (PostgreSQL)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let pool: pg.Pool;
  const fronts: Array<{ s: SharedSequencer; c: Coordination }> = [];

  before(async () => {
    db = await createTestDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 10 });
    pool.on('error', () => {}); // an idle client dropped with the database at the end
    await pool.query(`CREATE TABLE toy_tree (id INTEGER PRIMARY KEY, size INTEGER NOT NULL);
      CREATE TABLE toy_entries (idx INTEGER PRIMARY KEY, file_hash BYTEA NOT NULL UNIQUE, leaf BYTEA NOT NULL)`);
  });
  after(async () => {
    await pool?.end();
    await db?.drop();
  });
  beforeEach(async () => {
    await pool.query(`DROP TABLE IF EXISTS pending; DROP TABLE IF EXISTS sequencer_lease; DELETE FROM toy_entries;
      DELETE FROM toy_tree; INSERT INTO toy_tree VALUES (1, 0)`);
  });
  afterEach(async () => {
    for (const f of fronts.splice(0)) {
      await f.s.close();
      await f.c.close();
    }
  });

  const store = {
    async findByFiles(hashes: Buffer[]) {
      const r = await pool.query<{ idx: number; file_hash: Buffer; leaf: Buffer }>('SELECT idx, file_hash, leaf FROM toy_entries WHERE file_hash = ANY($1)', [hashes]);
      return hashes.map((h) => {
        const row = r.rows.find((x) => x.file_hash.equals(h));
        return row && { index: row.idx, leaf: row.leaf };
      });
    },
    async treeState() {
      const size = (await pool.query<{ size: number }>('SELECT size FROM toy_tree')).rows[0]!.size;
      return { treeSize: size, rootHash: Buffer.alloc(32), checkpoint: `cp ${size}` };
    },
  };

  /** A minimal sequencer core: new entries appended by CAS on the size, the fence hook first in the transaction. */
  const integrate = (calls: number[]) => async (subs: Submission[], hooks: BatchHooks): Promise<IntegrateResult> => {
    calls.push(subs.length);
    const size = (await store.treeState()).treeSize;
    const known = await store.findByFiles(subs.map(fileHashOf));
    const fresh = subs.filter((_, i) => known[i] === undefined);
    if (fresh.length === 0) return { committed: false };
    try {
      hooks.beforeSign?.();
      await inTransaction(pool, async (tx) => {
        await hooks.inTransaction!(tx, size + fresh.length);
        const r = await tx.query('UPDATE toy_tree SET size = $1 WHERE size = $2', [size + fresh.length, size]);
        if (r.rowCount !== 1) throw new PkglogError('inconsistent', 'the tree moved');
        for (const [i, s] of fresh.entries()) {
          await tx.query('INSERT INTO toy_entries VALUES ($1, $2, $3)', [size + i, fileHashOf(s), encodeLeaf({ ...s, integratedTime: 1 })]);
        }
      });
      return { committed: true };
    } catch (e) {
      return { committed: false, failed: e };
    }
  };

  async function front(holder: string, opts: { onAcquired?: () => Promise<void>; commitWaitMs?: number; calls?: number[] } = {}) {
    const c = await Coordination.open(pool, () => new pg.Client({ connectionString: db.url }));
    const s = new SharedSequencer({
      store, coordination: c, holder, leaseTtlMs: 1000, integrate: integrate(opts.calls ?? []),
      onAcquired: opts.onAcquired ?? (async () => {}), batchIntervalMs: 20, maxBatch: 100, maxPending: 1000,
      commitWaitMs: opts.commitWaitMs ?? 10_000,
    });
    s.start();
    fronts.push({ s, c });
    return s;
  }

  it('two front ends: every submission answered after its commit, one sequencer, idempotent, 409 on a different artifact', async () => {
    const calls: number[] = [];
    const a = await front('a', { calls });
    const b = await front('b', { calls });
    const subs = Array.from({ length: 40 }, (_, i) => sign(artifact(i)));
    const results = await Promise.all(subs.map((s, i) => (i % 2 === 0 ? a : b).submit(s)));
    assert.deepEqual(results.map((r) => r.index).sort((x, y) => x - y), [...Array(40).keys()]);
    for (const [i, r] of results.entries()) {
      assert.equal(r.entry.sha256, subs[i]!.sha256);
      assert.ok(r.treeSize > r.index, 'answered against a tree that holds it');
      assert.equal(r.existing, undefined);
    }
    assert.equal([a, b].filter((x) => x.sequencing).length, 1, 'exactly one sequences');
    assert.ok(calls.length < 40, `batched (${calls.length} batches for 40)`);
    // an identical resubmission, to either front end: the same entry, marked existing
    const again = await b.submit(subs[3]!);
    assert.equal(again.index, results[3]!.index);
    assert.equal(again.existing, true);
    // a different artifact for a logged file
    await assert.rejects(a.submit(sign(artifact(3, { sha256: 'ab'.repeat(32) }))),
      (e: unknown) => e instanceof PkglogError && e.code === 'conflict' && e.details?.index === results[3]!.index);
    // the same new submission to both at once: one entry, both answered with it
    const s = sign(artifact(100));
    const [r1, r2] = await Promise.all([a.submit(s), b.submit(s)]);
    assert.equal(r1.index, r2.index);
    assert.equal([r1, r2].filter((r) => r.existing).length, 1);
    // a different artifact for the same new file at once: one wins, the other is refused
    const x = sign(artifact(200));
    const y = sign(artifact(200, { sha256: 'cd'.repeat(32) }));
    const settled = await Promise.allSettled([a.submit(x), b.submit(y)]);
    assert.equal(settled.filter((p) => p.status === 'fulfilled').length, 1);
    const refused = settled.find((p) => p.status === 'rejected') as PromiseRejectedResult;
    assert.equal((refused.reason as PkglogError).code, 'conflict');
    assert.equal((await pool.query('SELECT count(*)::int AS n FROM pending')).rows[0].n, 0, 'the queue is empty');
  });

  it('no sequencer: 503 after the commit wait, the entry stays queued; a new sequencer commits it and a resubmission gets it', async () => {
    const a = await front('a', { onAcquired: async () => { throw new Error('refusing to sign'); }, commitWaitMs: 800 });
    const s = sign(artifact(1));
    await assert.rejects(a.submit(s), (e: unknown) => e instanceof PkglogError && e.code === 'overloaded' && /resubmit/.test(e.message));
    assert.equal((await pool.query('SELECT count(*)::int AS n FROM pending')).rows[0].n, 1);
    await a.close();
    const b = await front('b');
    let r;
    for (let i = 0; i < 50; i++) {
      r = await b.submit(s);
      if (r !== undefined) break;
      await sleep(100);
    }
    assert.equal(r!.index, 0);
  });

  it('failover: when the sequencer stops, another front end takes over and commits what is queued', async () => {
    const a = await front('a');
    const b = await front('b');
    await a.submit(sign(artifact(0)));
    const leader = a.sequencing ? a : b;
    const other = leader === a ? b : a;
    const epoch = leader.epoch!;
    await leader.close();
    const t0 = performance.now();
    const r = await other.submit(sign(artifact(1)));
    assert.equal(r.index, 1);
    assert.ok(other.sequencing && other.epoch! > epoch);
    assert.ok(performance.now() - t0 < 5000);
  });
});
