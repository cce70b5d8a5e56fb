/**
 * The sequencer lease, the fence and the pending queue (log-store/pg-sequencing.ts) against a real PostgreSQL server,
 * in a database of this test's own (created here, dropped afterwards).
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { PkglogError } from '../../core/errors.ts';
import {
  COMMITTED_CHANNEL, ensureSequencingSchema, inTransaction, LeaseKeeper, Listener, PendingQueue, SequencerLease,
} from '../../log-store/pg-sequencing.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('log-store/pg-sequencing (PostgreSQL)', function () {
  this.timeout(30_000);
  let db: TestDatabase;
  let pool: pg.Pool;

  before(async () => {
    db = await createTestDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 8 });
    pool.on('error', () => {}); // an idle client dropped with the database at the end
    await ensureSequencingSchema(pool);
    await ensureSequencingSchema(pool); // idempotent
  });
  after(async () => {
    await pool?.end();
    await db?.drop();
  });
  beforeEach(async () => {
    await pool.query(`UPDATE sequencer_lease SET holder = '', expires_at = '-infinity'`);
    await pool.query('DELETE FROM pending');
  });

  it('one holder at a time; the epoch rises at every takeover; renew is a CAS on (holder, epoch)', async () => {
    const a = new SequencerLease(pool, { holder: 'a', ttlMs: 400 });
    const b = new SequencerLease(pool, { holder: 'b', ttlMs: 400 });
    const ea = await a.tryAcquire();
    assert.ok(ea !== undefined);
    assert.equal(await b.tryAcquire(), undefined, 'b cannot take an unexpired lease');
    assert.equal(await a.tryAcquire(), undefined, 'not even a itself: acquire only takes an expired lease');
    assert.equal(await a.renew(ea), true);
    assert.equal(await b.renew(ea), false, 'b cannot renew a lease it does not hold');
    assert.equal((await a.current()).holder, 'a');
    await sleep(500);
    assert.equal(await a.renew(ea), false, 'an expired lease cannot be renewed');
    const eb = await b.tryAcquire();
    assert.equal(eb, ea + 1);
    assert.equal(await a.renew(ea), false);
    const cur = await b.current();
    assert.equal(cur.holder, 'b');
    assert.equal(cur.epoch, eb);
    assert.ok(cur.remainingMs > 0 && cur.remainingMs <= 400);
    await b.release(eb);
    assert.equal(await a.tryAcquire(), eb + 1, 'a released lease is free at once');
  });

  it('the fence: only the current, unexpired holder commits; a stale one never does', async () => {
    await pool.query('CREATE TABLE IF NOT EXISTS fenced (n INTEGER)');
    const a = new SequencerLease(pool, { holder: 'a', ttlMs: 300 });
    const b = new SequencerLease(pool, { holder: 'b', ttlMs: 5000 });
    const ea = (await a.tryAcquire())!;
    await inTransaction(pool, async (tx) => {
      await a.fence(tx, ea);
      await tx.query('INSERT INTO fenced VALUES (1)');
    });
    await sleep(400); // a's lease expired: it must not commit even before anyone took over
    await assert.rejects(inTransaction(pool, async (tx) => {
      await a.fence(tx, ea);
      await tx.query('INSERT INTO fenced VALUES (2)');
    }), (e: unknown) => e instanceof PkglogError && e.code === 'overloaded' && /no longer holds/.test(e.message));
    const eb = (await b.tryAcquire())!;
    await assert.rejects(inTransaction(pool, async (tx) => {
      await a.fence(tx, ea);
      await tx.query('INSERT INTO fenced VALUES (3)');
    }), /epoch/);
    await assert.rejects(inTransaction(pool, async (tx) => b.fence(tx, ea)), /epoch/, 'the right holder with a stale epoch');
    await inTransaction(pool, async (tx) => {
      await b.fence(tx, eb);
      await tx.query('INSERT INTO fenced VALUES (4)');
    });
    const rows = (await pool.query<{ n: number }>('SELECT n FROM fenced ORDER BY n')).rows.map((r) => r.n);
    assert.deepEqual(rows, [1, 4]);
  });

  it('a takeover waits for a fenced commit in progress (no takeover between the check and COMMIT)', async () => {
    const a = new SequencerLease(pool, { holder: 'a', ttlMs: 200 });
    const b = new SequencerLease(pool, { holder: 'b', ttlMs: 5000 });
    const ea = (await a.tryAcquire())!;
    let takenAt = 0;
    let committedAt = 0;
    const commit = inTransaction(pool, async (tx) => {
      await a.fence(tx, ea);
      await sleep(500); // the lease expires by the clock meanwhile, but the row is locked until COMMIT
      await tx.query('SELECT 1');
      committedAt = performance.now();
    });
    await sleep(300);
    const took = (async () => {
      // b polls for the expired lease; its UPDATE blocks on the row lock until a's transaction ends
      for (;;) {
        const e = await b.tryAcquire();
        if (e !== undefined) {
          takenAt = performance.now();
          return e;
        }
        await sleep(20);
      }
    })();
    await commit;
    const eb = await took;
    assert.equal(eb, ea + 1);
    assert.ok(takenAt >= committedAt, 'the takeover completed only after the fenced transaction ended');
  });

  it('pending: one row per file hash, oldest first, removed with the commit that NOTIFYs', async () => {
    const q = new PendingQueue(pool);
    const h = [0, 1, 2].map(() => randomBytes(32));
    assert.equal(await q.enqueue(h[0]!, 's0'), true);
    assert.equal(await q.enqueue(h[1]!, 's1'), true);
    assert.equal(await q.enqueue(h[0]!, 'another s0'), false, 'a queued file is not queued twice');
    assert.equal(await q.enqueue(h[2]!, 's2'), true);
    assert.equal(await q.size(100), 3);
    assert.equal(await q.size(2), 2, 'the count is bounded');
    const rows = await q.oldest(2);
    assert.deepEqual(rows.map((r) => r.submission), ['s0', 's1']);
    assert.ok(rows[0]!.fileHash.equals(h[0]!));

    const seen: string[] = [];
    const listener = await Listener.start(() => new pg.Client({ connectionString: db.url }), [COMMITTED_CHANNEL], (_c, p) => seen.push(p));
    try {
      // a rolled-back settle removes nothing and notifies nobody
      await assert.rejects(inTransaction(pool, async (tx) => {
        await q.settle(tx, rows.map((r) => r.id), 7);
        throw new Error('abort');
      }), /abort/);
      assert.equal(await q.size(100), 3);
      await inTransaction(pool, (tx) => q.settle(tx, rows.map((r) => r.id), 2));
      assert.deepEqual((await q.oldest(10)).map((r) => r.submission), ['s2']);
      for (let i = 0; i < 100 && seen.length === 0; i++) await sleep(20);
      assert.deepEqual(seen, ['2']);
    } finally {
      await listener.close();
    }
  });

  it('LeaseKeeper: exactly one of three sequences; when it stops another takes over within the TTL', async () => {
    const ttlMs = 600;
    const log: string[] = [];
    const keepers = ['k1', 'k2', 'k3'].map((holder) => new LeaseKeeper({
      lease: new SequencerLease(pool, { holder, ttlMs }),
      onAcquired: async () => {
        await sleep(50); // start-up checks
      },
      log: (m) => log.push(`${holder}: ${m}`),
    }));
    try {
      for (const k of keepers) k.start();
      const leaders = async () => {
        for (let i = 0; i < 200; i++) {
          const l = keepers.filter((k) => k.epoch !== undefined);
          if (l.length === 1) return l;
          assert.ok(l.length <= 1, `two sequencers at once: ${log.join('\n')}`);
          await sleep(10);
        }
        assert.fail(`no sequencer: ${log.join('\n')}`);
      };
      const [first] = await leaders();
      const firstEpoch = first!.epoch!;
      // still exactly one after several renewals
      for (let i = 0; i < 20; i++) {
        assert.equal(keepers.filter((k) => k.epoch !== undefined).length, 1);
        await sleep(50);
      }
      assert.equal(first!.epoch, firstEpoch, 'renewed, not re-taken');
      const stoppedAt = performance.now();
      await first!.stop(); // releases: the next one does not wait for the TTL
      const [second] = await leaders();
      assert.notEqual(second, first);
      assert.ok(second!.epoch! > firstEpoch);
      assert.ok(performance.now() - stoppedAt < 5000);
    } finally {
      await Promise.all(keepers.map((k) => k.stop()));
    }
  });

  it('LeaseKeeper: refused start-up checks release the lease and nobody sequences under it', async () => {
    const k = new LeaseKeeper({
      lease: new SequencerLease(pool, { holder: 'bad', ttlMs: 5000 }),
      onAcquired: async () => {
        throw new Error('the tree row disagrees with its checkpoint');
      },
    });
    const other = new SequencerLease(pool, { holder: 'good', ttlMs: 5000 });
    try {
      k.start();
      let epoch: number | undefined;
      for (let i = 0; i < 200 && epoch === undefined; i++) {
        await sleep(20);
        epoch = await other.tryAcquire();
      }
      assert.ok(epoch !== undefined, 'the lease was released after the refusal');
      assert.equal(k.epoch, undefined);
    } finally {
      await k.stop();
    }
  });
});
