/**
 * Witness quorum 2 of 3, end to end with real processes on 127.0.0.1: three `pkglog witness` processes and
 * `pkglog serve --witness-quorum 2`. Under steady submissions for 10 s every /checkpoint size seen is non-decreasing and
 * every reply arrives within --witness-wait (plus a margin) with ≥ 2 cosignatures that verify under a 2-of-3 policy.
 * With one witness killed the log still publishes; with two killed a submission is answered 503 after the wait, says
 * that its entry is committed, and the entry is in the log.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parseSignedNote } from '../../core/note.ts';
import { parsePolicy, verifyCheckpointWithPolicy } from '../../core/policy.ts';
import { parseTlogProof } from '../../core/tlog-proof.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import { tempDir } from '../support/log-harness.ts';
import { startProcess, pkglogOk as pkglog } from '../support/process.ts';
import { addTestRegistry, cleanUpAfter, logEnv, startWitness } from '../support/e2e-setup.ts';
import { submissionBody } from '../support/submissions.ts';

const ORIGIN = 'example.test/quorum-log';
const WAIT_MS = 3000;
const MARGIN_MS = 3000; // two shared cores: process scheduling, not the protocol
/** Steady phases run until this many replies (and, with one witness dead, a newer published checkpoint), not for a
 *  fixed time: the test waits for events, not the clock. Each phase still gives up after PHASE_LIMIT_MS. */
const PHASE1_REPLIES = 24;
const PHASE2_REPLIES = 6;
const PHASE_LIMIT_MS = 60_000;


async function submit(url: string, i: number): Promise<{ status: number; body: Record<string, unknown>; ms: number }> {
  const t0 = Date.now();
  const r = await fetch(`${url}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submissionBody(i)) });
  const body = (await r.json()) as Record<string, unknown>;
  return { status: r.status, body, ms: Date.now() - t0, ...(r.status === 503 ? { retryAfter: r.headers.get('retry-after') } : {}) };
}

describe('e2e: witness quorum 2 of 3 (real witnesses, real log)', function () {
  this.timeout(120_000);
  const { dirs, procs } = cleanUpAfter();

  it('publishes only quorum-cosigned checkpoints, never backwards; survives one dead witness; 503 after the wait with two', async () => {
    const logDir = tempDir('pkglog-quorum-log-');
    dirs.push(logDir);
    const logKey = loadOrCreateLogKey(join(logDir, 'log.key'), ORIGIN);
    const wDirs = [1, 2, 3].map((i) => tempDir(`pkglog-quorum-w${i}-`));
    dirs.push(...wDirs);
    const env = logEnv(logDir, ORIGIN);
    await Promise.all([
      ...wDirs.map((d) => pkglog(['witness', 'add-log', ORIGIN, logKey.vkey, '--data-dir', d])),
      addTestRegistry(env),
    ]);
    const ws = await Promise.all(wDirs.map((d, i) => startWitness(d, `witness.test/q${i + 1}`)));
    procs.push(...ws);
    const vkeys = ws.map((w) => w.info.get('vkey')!);
    // (one at a time: each appends a line to witnesses.txt)
    for (const [i, w] of ws.entries()) await pkglog(['witnesses', 'add', w.url, vkeys[i]!], env);
    const log = await startProcess(['serve', '--witness-quorum', '2', '--witness-interval', '200', '--witness-wait', String(WAIT_MS)], env);
    procs.push(log);
    const policy = parsePolicy(`log ${logKey.vkey}\n${vkeys.map((v, i) => `witness q${i + 1} ${v}\n`).join('')}group two 2 q1 q2 q3\nquorum two\n`);

    // Watch /checkpoint the whole time: sizes never decrease, and every published checkpoint meets the policy.
    const seen: number[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const text = await (await fetch(`${log.url}/checkpoint`)).text();
        const size = parseCheckpoint(parseSignedNote(text).text).treeSize;
        if (size > 0) verifyCheckpointWithPolicy(policy, text);
        seen.push(size);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();

    let next = 0;
    const checkReply = (r: Awaited<ReturnType<typeof submit>>) => {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.ms <= WAIT_MS + MARGIN_MS, `reply took ${r.ms} ms`);
      const proof = parseTlogProof(r.body.proof as string);
      const v = verifyCheckpointWithPolicy(policy, proof.checkpoint);
      assert.ok(v.cosigners.length >= 2, `${v.cosigners.length} cosignatures`);
      assert.ok(proof.index === r.body.index);
    };
    /** `workers` clients submitting back to back until `done(replies)` (checked after each reply), or the phase limit. */
    const steady = async (workers: number, done: (replies: Array<Awaited<ReturnType<typeof submit>>>) => boolean) => {
      const end = Date.now() + PHASE_LIMIT_MS;
      const replies: Array<Awaited<ReturnType<typeof submit>>> = [];
      let finished = false;
      await Promise.all(Array.from({ length: workers }, async () => {
        while (!finished && Date.now() < end) {
          replies.push(await submit(log.url, next++));
          if (done(replies)) finished = true;
        }
      }));
      return replies;
    };
    const publishedSize = async () => parseCheckpoint(parseSignedNote(await (await fetch(`${log.url}/checkpoint`)).text()).text).treeSize;

    // --- steady submissions from 4 clients, all three witnesses up ---
    const t1 = Date.now();
    const phase1 = await steady(4, (r) => r.length >= PHASE1_REPLIES);
    const phase1Ms = Date.now() - t1;
    for (const r of phase1) checkReply(r);
    const worst1 = Math.max(...phase1.map((r) => r.ms));
    assert.ok(phase1.length >= PHASE1_REPLIES, `only ${phase1.length} submissions in ${PHASE_LIMIT_MS} ms`);

    // --- one witness dead: still publishes ---
    await ws[0]!.stop('SIGKILL');
    const before = seen.at(-1)!;
    // Every reply is 200 with ≥ 2 cosignatures (checkReply); the phase ends once a newer size is published.
    const phase2 = await steady(2, (r) => r.length >= PHASE2_REPLIES && seen.at(-1)! > before);
    for (const r of phase2) checkReply(r);
    const published2 = await publishedSize();
    assert.ok(published2 > before, `published ${published2} after ${before}`);

    // --- two witnesses dead: 503 after the wait, the entry is committed ---
    await ws[1]!.stop('SIGKILL');
    const late = await submit(log.url, next++);
    assert.equal(late.status, 503, JSON.stringify(late.body));
    assert.ok(late.ms >= WAIT_MS - 100 && late.ms <= WAIT_MS + MARGIN_MS, `503 after ${late.ms} ms`);
    assert.equal(late.body.error, 'overloaded');
    assert.equal(late.body.committed, true);
    assert.match(String(late.body.message), new RegExp(`committed as entry ${late.body.index} but not yet cosigned by a quorum of 2`));
    const entry = await fetch(`${log.url}/v1/entries/${late.body.index}`);
    assert.equal(entry.status, 200, 'the entry is in the log');
    // resubmitting is idempotent: the same index, not a second entry
    const again = await submit(log.url, next - 1);
    assert.equal(again.status, 503);
    assert.equal(again.body.index, late.body.index);

    watching = false;
    await watcher;
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, `/checkpoint went from ${seen[i - 1]} to ${seen[i]}`);
    const total = phase1.length + phase2.length;
    console.log(`      ${total} replies (${phase1.length} in ${phase1Ms} ms, worst ${worst1} ms with 3 witnesses), ${seen.length} /checkpoint reads, ${new Set(seen).size} distinct published sizes, last ${seen.at(-1)}`);
  });
});
