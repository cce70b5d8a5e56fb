/** Pull mode, POST /v1/gossip, and witness-to-witness gossip, against fake logs served over HTTP. */
import assert from 'node:assert/strict';
import request from 'supertest';
import { FakeLog, serveLogs } from './fake-log.ts';
import { makeWitness, tempDir, type TestWitness } from './helpers.ts';
import { parseEvidence, verifyEvidence } from '../../core/evidence.ts';
import { parseVerifierKey } from '../../core/note.ts';
import { startWitness, type RunningWitness } from '../../witness/main.ts';
import { WitnessStore } from '../../witness/store.ts';

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<number> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - start;
}

describe('witness pull mode and gossip', () => {
  describe('pull mode', () => {
    let t: TestWitness;
    let server: Awaited<ReturnType<typeof serveLogs>>;
    let current: FakeLog;
    beforeEach(async () => {
      current = new FakeLog('example.com/pulled').append(300);
      server = await serveLogs({ '': () => current });
      t = makeWitness();
      t.store.addLog(current.origin, current.vkey, server.url, 0);
    });
    afterEach(async () => {
      t.close();
      await server.close();
    });

    it('polls /checkpoint, builds the consistency proof from tiles, verifies and cosigns', async () => {
      const log = t.store.getLog(current.origin)!;
      assert.equal(await t.witness.pull(log), 'cosigned 300');
      assert.equal(await t.witness.pull(log), 'up to date');
      current.append(700); // 1000: crosses tile boundaries, the old partial tiles are now full
      assert.equal(await t.witness.pull(log), 'cosigned 1000');
      assert.equal(t.store.latest(current.origin)!.treeSize, 1000);
    });

    it('a log that switches to a forked history is refused, and the fork is recorded', async () => {
      const log = t.store.getLog(current.origin)!;
      await t.witness.pull(log);
      current = current.fork(200, 150); // 350, diverged after 200; its tiles are the fork's
      const what = await t.witness.pull(log);
      assert.match(what, /^refused 350/);
      // The fork's own tiles hash to the fork's root and imply another root for 300: provable.
      assert.match(what, /fork/);
      const [ev] = t.store.listEvidence();
      assert.equal(verifyEvidence(parseEvidence(ev!.evidence), parseVerifierKey(current.vkey)).kind, 'inconsistent');
      // Not frozen (tlog-witness: if all checks pass the witness MUST cosign): the fork's branch stays refused,
      // and the honest branch is cosigned again as soon as the log serves it.
      assert.match(await t.witness.pull(t.store.getLog(current.origin)!), /^refused 350/);
      current = new FakeLog('example.com/pulled').append(400);
      assert.equal(await t.witness.pull(t.store.getLog(current.origin)!), 'cosigned 400');
    });
  });

  describe('POST /v1/gossip', () => {
    let t: TestWitness;
    let server: Awaited<ReturnType<typeof serveLogs>>;
    const honest = new FakeLog('example.com/gossiped').append(500);
    const forked = honest.fork(100, 400);
    before(async () => {
      server = await serveLogs({ '': () => honest });
      t = makeWitness();
      t.store.addLog(honest.origin, honest.vkey, server.url, 0);
      await t.witness.addCheckpoint(honest.addCheckpointBody(0, 300));
    });
    after(async () => {
      t.close();
      await server.close();
    });
    const gossip = (note: string) => request(t.app).post('/v1/gossip').send(note);

    it('same checkpoint → consistent', async () => {
      const r = await gossip(honest.checkpoint(300));
      assert.equal(r.status, 200);
      assert.equal(r.body.result, 'consistent');
      assert.equal(r.body.witnessTreeSize, 300);
      assert.match(r.body.checkpoint, /— witness\.test\/w1 /);
    });
    it('an older and a newer honest checkpoint → consistent (proofs from the log tiles)', async () => {
      assert.equal((await gossip(honest.checkpoint(123))).body.result, 'consistent');
      assert.equal((await gossip(honest.checkpoint(500))).body.result, 'consistent');
      assert.equal(t.store.listEvidence().length, 0);
    });
    it('unknown origin → 404; bad signature → 403; garbage → 400', async () => {
      assert.equal((await gossip(new FakeLog('example.com/nope').append(1).checkpoint())).status, 404);
      assert.equal((await gossip(new FakeLog(honest.origin, 'imposter').append(1).checkpoint())).status, 403);
      assert.equal((await gossip('garbage')).status, 400);
    });
    it('a forked checkpoint shown to a client → fork, with evidence anyone can verify', async () => {
      const r = await gossip(forked.checkpoint(250));
      assert.equal(r.status, 200);
      assert.equal(r.body.result, 'fork', r.body.reason);
      const s = verifyEvidence(parseEvidence(r.body.evidence), parseVerifierKey(honest.vkey));
      assert.deepEqual(s.sizes, [250, 300]);
      assert.ok(t.logs.some((l) => l.level === 'error' && /FORK DETECTED/.test(l.msg)));
      const add = await request(t.app).post('/add-checkpoint').send(honest.addCheckpointBody(300, 400));
      assert.equal(add.status, 200, 'the witness still cosigns what is consistent with what it cosigned');
      const fork = await request(t.app).post('/add-checkpoint').send(forked.addCheckpointBody(400, 500));
      assert.equal(fork.status, 422, 'the fork branch stays refused');
    });
  });

  describe('witness-to-witness gossip', () => {
    const tmps: Array<{ cleanup(): void }> = [];
    const ws: RunningWitness[] = [];
    after(async () => {
      for (const w of ws) await w.close();
      for (const d of tmps) d.cleanup();
    });

    it('two witnesses shown different roots for one size detect the fork by gossip within a bounded time', async () => {
      const honest = new FakeLog('example.com/split').append(40);
      const forked = honest.fork(20, 20);
      for (const name of ['witness.test/g1', 'witness.test/g2']) {
        const d = tempDir();
        tmps.push(d);
        const s = WitnessStore.open(d.dir);
        s.addLog(honest.origin, honest.vkey, null, 0);
        s.close();
        ws.push(await startWitness({ dataDir: d.dir, listen: '127.0.0.1:0', name, gossipIntervalMs: 100, pollIntervalMs: 60_000 }));
      }
      const [w1, w2] = ws as [RunningWitness, RunningWitness];
      w1.store.addPeer(w2.url, w2.vkey, 0);
      w2.store.addPeer(w1.url, w1.vkey, 0);
      const post = (w: RunningWitness, body: Buffer) => fetch(`${w.url}/add-checkpoint`, { method: 'POST', body });
      assert.equal((await post(w1, honest.addCheckpointBody(0, 40))).status, 200);
      assert.equal((await post(w2, forked.addCheckpointBody(0, 40))).status, 200); // w2 never saw the honest view
      const took = await until(() => w1.store.listEvidence().length > 0 && w2.store.listEvidence().length > 0, 3000, 'gossip');
      assert.ok(took < 3000);
      for (const w of ws) {
        const r = await fetch(`${w.url}/v1/evidence`);
        const { evidence } = (await r.json()) as { evidence: Array<{ evidence: string }> };
        assert.equal(verifyEvidence(parseEvidence(evidence[0]!.evidence), parseVerifierKey(honest.vkey)).kind, 'same-size');
      }
    });
  });
});
