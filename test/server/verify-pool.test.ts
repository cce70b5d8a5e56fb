/**
 * The signature verification pool survives its workers: a worker that is terminated, exits or stalls while it holds
 * jobs is replaced, and every submission it held still gets its answer (the jobs are sent again; a job whose second
 * worker dies too is refused with a clear 503) — directly and through POST /v1/entries.
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import { isPkglogError } from '../../core/errors.ts';
import type { Submission } from '../../core/entry.ts';
import { VerifyPool } from '../../server/verify-pool.ts';
import { artifact, keyPair, REGISTRY, sign, submissionBody } from '../support/submissions.ts';
import { openTestLog, removeDir } from '../support/log-harness.ts';

const OTHER = keyPair('not the registry');

/** Submission i: valid, except every 7th (registry signature by another key) and every 11th (publisher signature). */
function submission(i: number): { s: Submission; expect: 'ok' | 'registry' | 'publisher' } {
  const a = artifact(i);
  if (i % 11 === 5) {
    const s = sign(a);
    const bad = Buffer.from(s.publisherSignature);
    bad[0]! ^= 1;
    return { s: { ...s, publisherSignature: bad }, expect: 'publisher' };
  }
  if (i % 7 === 3) return { s: sign(a, undefined, OTHER), expect: 'registry' };
  return { s: sign(a), expect: 'ok' };
}

/** Verifies submissions from..to-1 and checks each answer; returns how many there were. */
async function checkAnswers(pool: VerifyPool, from: number, to: number, during?: () => unknown): Promise<number> {
  const subs = Array.from({ length: to - from }, (_, k) => submission(from + k));
  const answers = subs.map(({ s }) => pool.verify(s, REGISTRY.publicKey).then(() => 'ok', (e) => e));
  await during?.();
  const got = await Promise.all(answers);
  got.forEach((g, k) => {
    const { expect } = subs[k]!;
    if (expect === 'ok') assert.equal(g, 'ok', `submission ${from + k}: ${String(g)}`);
    else {
      assert.ok(isPkglogError(g, 'bad_signature'), `submission ${from + k}: ${String(g)}`);
      assert.match((g as Error).message, expect === 'publisher' ? /publisher signature/ : /registry signature/);
    }
  });
  return got.length;
}

describe('server: signature verification pool', function () {
  this.timeout(60_000);
  let pool: VerifyPool | undefined;
  let lines: string[];
  beforeEach(() => {
    lines = [];
  });
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });

  it('replaces a terminated worker and answers every submission it held', async () => {
    pool = new VerifyPool(2, { log: (m) => lines.push(m) });
    const before = pool.threadId(0);
    await checkAnswers(pool, 0, 300, () => pool!.terminateWorker(0));
    assert.equal(pool.restarts, 1);
    // A worker that dies before answering anything (a loaded machine: it may not have started yet) is replaced after
    // a short pause (100 ms, doubling), so wait for the replacement instead of expecting it at once.
    for (const deadline = Date.now() + 10_000; pool.alive < 2 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pool.alive, 2);
    assert.notEqual(pool.threadId(0), before, 'a new worker took its place');
    assert.equal(lines.length, 1, lines.join('\n'));
    const m = /^signature worker 0 exited with code \d+; replacing it \(restart 1\), (\d+) submission\(s\) it held are retried$/.exec(lines[0]!);
    assert.ok(m, lines[0]);
    assert.ok(Number(m[1]) > 0, 'the worker was holding submissions when it died');
    // The replacement verifies (good and bad signatures alike).
    await checkAnswers(pool, 300, 400);
  });

  it('answers everything while its workers are terminated again and again', async () => {
    pool = new VerifyPool(2, { log: (m) => lines.push(m) });
    let kills = 0;
    let n = 0;
    for (let round = 0; round < 10; round++) {
      n += await checkAnswers(pool, round * 100, round * 100 + 100, async () => {
        if (await pool!.terminateWorker(round % 2)) kills++;
      });
    }
    assert.equal(n, 1000);
    assert.equal(pool.restarts, kills);
    // A worker killed before it answered anything is replaced after a pause, so a round may find its slot empty.
    assert.ok(kills >= 5, `only ${kills} workers were terminated`);
  });

  it('refuses with 503 the submissions of a job whose worker died twice, and keeps working', async () => {
    // Two workers: the job's first worker dies, the retry goes to the other one, which dies too.
    pool = new VerifyPool(2, { log: (m) => lines.push(m) });
    pool.failNextJobs(2, 'exit');
    const subs = [0, 1, 2, 4].map((i) => sign(artifact(i)));
    const got = await Promise.allSettled(subs.map((s) => pool!.verify(s, REGISTRY.publicKey)));
    for (const g of got) {
      assert.equal(g.status, 'rejected');
      const e = (g as PromiseRejectedResult).reason;
      assert.ok(isPkglogError(e, 'overloaded'), String(e));
      assert.equal(e.message, 'signature verification failed: its worker stopped twice; retry');
    }
    assert.equal(pool.restarts, 2);
    assert.match(lines[0]!, /^signature worker [01] exited with code 70; replacing it \(restart 1\), 4 submission\(s\) it held are retried$/);
    assert.match(lines[1]!, /^signature worker [01] exited with code 70; replacing it \(restart 2\), 4 submission\(s\) it held are retried$/);
    // While the replacements start (after a pause: both died right after starting, so for a moment no worker is alive
    // and the event loop verifies) and after, answers stay exact.
    await checkAnswers(pool, 0, 100);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(pool.alive, 2);
    await checkAnswers(pool, 100, 200);
  });

  it('terminates and replaces a worker that stops answering', async () => {
    pool = new VerifyPool(1, { log: (m) => lines.push(m), stallMs: 300 });
    pool.failNextJobs(1, 'hang');
    await checkAnswers(pool, 0, 20);
    assert.equal(pool.restarts, 1);
    assert.match(lines[0]!, /^signature worker 0 did not answer for \d+ ms; replacing it \(restart 1\), 20 submission\(s\) it held are retried$/);
    await checkAnswers(pool, 20, 60);
  });

  it('refuses work after close with 503, not a hang', async () => {
    pool = new VerifyPool(1);
    const pending = pool.verify(sign(artifact(1)), REGISTRY.publicKey).then(() => 'ok', (e) => e);
    await pool.close();
    const p = await pending;
    assert.ok(p === 'ok' || isPkglogError(p, 'overloaded'), String(p));
    await assert.rejects(pool.verify(sign(artifact(2)), REGISTRY.publicKey), (e: unknown) => isPkglogError(e, 'overloaded'));
  });

  it('every POST /v1/entries is answered while a worker is terminated under load', async () => {
    const log = await openTestLog({ verifyThreads: '1' });
    try {
      const p = log.verifyPool!;
      // Two waves of 100 concurrent submissions; the worker is terminated in each as soon as it holds work.
      const got = [];
      for (let wave = 0; wave < 2; wave++) {
        const replies = Array.from({ length: 100 }, (_, i) => request(log.app).post('/v1/entries').send(submissionBody(wave * 100 + i)).then((r) => r));
        // Bounded: under load the pool may have drained the wave before this loop first looks (then an idle worker is terminated).
        const deadline = Date.now() + 10_000;
        while (p.inFlight === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
        await p.terminateWorker(0);
        got.push(...(await Promise.all(replies)));
      }
      for (const r of got) assert.equal(r.status, 200, r.text);
      assert.deepEqual(got.map((r) => r.body.index).sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i));
      assert.equal(p.restarts, 2);
      assert.equal((await log.store.treeState())!.treeSize, 200);
    } finally {
      await log.close();
      removeDir(log.dataDir);
    }
  });
});
