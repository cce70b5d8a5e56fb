/**
 * Compare-and-swap under concurrency: a hook parks a request between its checks and its write; whatever happens
 * in between, the witness never cosigns a smaller tree after a larger one nor two roots for one size.
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import { FakeLog } from './fake-log.ts';
import { makeWitness, type TestWitness } from './helpers.ts';
import { isPkglogError } from '../../core/errors.ts';

function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

describe('witness compare-and-swap under concurrency', () => {
  let t: TestWitness;
  let park: Map<number, Promise<void>>;
  let arrived: Map<number, () => void>;
  const log = new FakeLog('example.com/cas').append(10);
  const forked = log.fork(5, 3); // size 8, different root

  beforeEach(async () => {
    park = new Map();
    arrived = new Map();
    t = makeWitness({
      hooks: {
        afterCheck: async (_origin, size) => {
          arrived.get(size)?.();
          await park.get(size);
        },
      },
    });
    t.store.addLog(log.origin, log.vkey, null, 0);
    await t.witness.addCheckpoint(log.addCheckpointBody(0, 5));
  });
  afterEach(() => t.close());

  function parkAt(size: number) {
    const g = gate();
    const a = gate();
    park.set(size, g.p);
    arrived.set(size, a.open);
    return { release: g.open, arrived: a.p };
  }

  it('a parked smaller request loses to a larger one that commits first (409 with the new size)', async () => {
    const p8 = parkAt(8);
    const small = request(t.app).post('/add-checkpoint').send(log.addCheckpointBody(5, 8)).then((r) => r);
    await p8.arrived; // A has passed every check and holds a cosignature for size 8
    const big = await request(t.app).post('/add-checkpoint').send(log.addCheckpointBody(5, 10));
    assert.equal(big.status, 200, big.text);
    p8.release();
    const r = await small;
    assert.equal(r.status, 409, r.text);
    assert.equal(r.headers['content-type'], 'text/x.tlog.size');
    assert.equal(r.text, '10\n');
    assert.equal(t.store.latest(log.origin)!.treeSize, 10);
  });

  it('two parked requests for different roots of the same size: exactly one is cosigned, the other is a fork', async () => {
    const p8 = parkAt(8);
    const honest = t.witness.addCheckpoint(log.addCheckpointBody(5, 8)).then(
      () => 'ok',
      (e) => (isPkglogError(e) ? e.code : 'other'),
    );
    const fork = t.witness.addCheckpoint(forked.addCheckpointBody(5, 8)).then(
      () => 'ok',
      (e) => (isPkglogError(e) ? e.code : 'other'),
    );
    await p8.arrived;
    await new Promise((r) => setTimeout(r, 20)); // let the second one reach the hook too
    p8.release();
    const results = await Promise.all([honest, fork]);
    assert.deepEqual(results.filter((x) => x === 'ok').length, 1, JSON.stringify(results));
    // The loser is re-checked against the new state: 409 (old 5 is stale) or 422; either way it is a recorded fork.
    assert.ok(results.includes('inconsistent') || results.includes('stale_size'), JSON.stringify(results));
    assert.equal(t.store.listEvidence().length, 1);
    assert.ok(t.logs.some((l) => l.level === 'error' && /FORK DETECTED/.test(l.msg)));
  });

  it('identical parked requests: one 200, the other re-checked against the new state (409)', async () => {
    const p8 = parkAt(8);
    const a = request(t.app).post('/add-checkpoint').send(log.addCheckpointBody(5, 8)).then((r) => r);
    const b = request(t.app).post('/add-checkpoint').send(log.addCheckpointBody(5, 8)).then((r) => r);
    await p8.arrived;
    await new Promise((r) => setTimeout(r, 20));
    p8.release();
    const statuses = (await Promise.all([a, b])).map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 409]);
  });

  it('a burst of random concurrent requests never cosigns a rollback or two roots for a size', async () => {
    const sizes = [5, 6, 7, 8, 9, 10];
    const bodies: Buffer[] = [];
    let seed = 42;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 60; i++) {
      const newSize = sizes[rnd(sizes.length)]!;
      const oldSize = sizes.filter((s) => s <= newSize)[rnd(sizes.filter((s) => s <= newSize).length)]!;
      const src = newSize === 8 && rnd(4) === 0 ? forked : log;
      bodies.push(src.addCheckpointBody(oldSize, newSize));
    }
    const cosigned: number[] = [];
    await Promise.all(
      bodies.map(async (b) => {
        try {
          await t.witness.addCheckpoint(b);
          cosigned.push(t.store.latest(log.origin)!.treeSize);
        } catch (e) {
          assert.ok(isPkglogError(e), String(e));
        }
      }),
    );
    // The cosigned sizes, in commit order, never decrease; history holds one root per size.
    for (let i = 1; i < cosigned.length; i++) assert.ok(cosigned[i]! >= cosigned[i - 1]!, String(cosigned));
    const rows = t.store.db.prepare('SELECT tree_size, COUNT(DISTINCT root) AS n FROM history GROUP BY tree_size').all() as Array<{ n: number }>;
    for (const r of rows) assert.equal(r.n, 1);
  });
});
