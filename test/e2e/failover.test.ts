/**
 * Many front ends, one sequencer, on PostgreSQL, with real processes: three `pkglog serve --database` on one fresh
 * database (created here, dropped afterwards), submissions flowing from client loops to all of them, and repeated
 * kill -9 of whichever holds the sequencer lease (restarted afterwards). Then: every acknowledged (200) entry is at its
 * index with its leaf; no size was ever served with two roots; every checkpoint ever served (GET /checkpoint of every
 * front end, every reply's proof) is a prefix of the final tree, with the log's consistency proof verified; in-flight
 * submissions were answered 200 or an error, and resubmitting each of them is answered 200 (idempotent).
 */
import assert from 'node:assert/strict';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { formatSubmission } from '../../core/entry.ts';
import { parseVerifierKey, verifyNote } from '../../core/note.ts';
import { checkAfterRestart, CRASH_ORIGIN, pollCheckpoint, submitLoop, Tracker } from '../support/crash-loop.ts';
import { mulberry32 } from '../support/prng.ts';
import { FrontEnds } from '../support/front-ends.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { artifact, sign } from '../support/submissions.ts';

const KILLS = 4;
const LEASE_TTL_MS = 1000;

describe('e2e: several front ends on PostgreSQL, the sequencer killed with SIGKILL', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let dir: string;
  let fes: FrontEnds | undefined;
  before(async () => {
    db = await createTestDatabase();
    dir = tempDir('pkglog-failover-');
  });
  after(async () => {
    await fes?.stop();
    await db?.drop();
    removeDir(dir);
  });

  it(`another front end takes over within the lease TTL, ${KILLS} times; nothing acknowledged is lost, nothing forks`, async () => {
    fes = await FrontEnds.start({ dir, databaseUrl: db.url, count: 3, origin: CRASH_ORIGIN, leaseTtlMs: LEASE_TTL_MS });
    const verifier = parseVerifierKey(fes.vkey);
    const rand = mulberry32(Number(process.env.PKGLOG_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31)));
    const t = new Tracker();
    let next = 0;
    let stop = false;
    const stopped = () => stop;
    const anyLive = () => {
      const l = fes!.live();
      return l[Math.floor(rand() * l.length)]!.url;
    };
    const loops = [
      ...Array.from({ length: 6 }, () => submitLoop(anyLive, t, verifier, () => next++, rand, stopped)),
      ...fes.all.map((fe) => pollCheckpoint(() => fe.url, t, verifier, stopped)),
    ];
    const newest = () => Math.max(0, ...t.served.keys());
    const takeovers: number[] = [];
    try {
      for (let k = 1; k <= KILLS; k++) {
        const holder = await fes.waitForHolder();
        // let it commit something first
        const before = newest();
        for (let i = 0; i < 400 && newest() <= before; i++) await new Promise((r) => setTimeout(r, 25));
        assert.ok(newest() > before, `kill ${k}: the log did not grow before the kill`);
        const sizeAtKill = newest();
        const killedAt = performance.now();
        await fes.kill(holder);
        // the first checkpoint bigger than any served before the kill: signed by the new sequencer
        for (let i = 0; i < 800 && newest() <= sizeAtKill; i++) await new Promise((r) => setTimeout(r, 10));
        const took = performance.now() - killedAt;
        assert.ok(newest() > sizeAtKill, `kill ${k}: no new checkpoint after the sequencer was killed (${t.problems.slice(0, 3).join('; ')})`);
        takeovers.push(took);
        const next = await fes.waitForHolder();
        assert.notEqual(next, holder, `kill ${k}: another front end holds the lease`);
        await fes.restart(holder);
      }
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    const final = fes.live()[0]!;
    // A front end that does not sequence serves the newest commit once NOTIFY or its next poll tells it: wait (bounded)
    // until it serves every acknowledged entry, so the check below reads the tree that holds them all.
    const needed = Math.max(0, ...[...t.acks.values()].map((a) => a.index + 1));
    const servedSize = async () => parseCheckpoint(verifyNote(await (await fetch(`${final.url}/checkpoint`)).text(), [verifier]).note.text).treeSize;
    for (let i = 0; i < 100 && (await servedSize()) < needed; i++) await new Promise((r) => setTimeout(r, 100));
    const n = await checkAfterRestart(final.url, t, verifier, KILLS);
    // In flight at a kill: answered with an error then; resubmitted now, each is logged exactly once.
    for (const i of [...t.unacked].slice(0, 50)) {
      const res = await fetch(`${final.url}/v1/entries`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(formatSubmission(sign(artifact(i)))),
      });
      const body = (await res.json()) as { index?: number };
      assert.equal(res.status, 200, `resubmitting artifact ${i}: ${JSON.stringify(body)}`);
    }
    // Every front end serves the same checkpoint once the dust settles.
    // (each front end learns of the newest commit by NOTIFY or its next poll: wait for it, bounded)
    const headsNow = () => Promise.all(fes!.live().map(async (fe) => parseCheckpoint(verifyNote(await (await fetch(`${fe.url}/checkpoint`)).text(), [verifier]).note.text)));
    let heads = await headsNow();
    for (let i = 0; i < 100 && !heads.every((h) => h.treeSize >= n); i++) {
      await new Promise((r) => setTimeout(r, 100));
      heads = await headsNow();
    }
    assert.ok(heads.every((h) => h.treeSize >= n), `front ends serve sizes ${heads.map((h) => h.treeSize).join(", ")}, want >= ${n}`);
    const line = `tree size ${n}, ${t.acks.size} acknowledged, ${t.unacked.size} in flight at kills, ${t.served.size} checkpoints, ` +
      `takeover (kill → new checkpoint) ${takeovers.map((ms) => Math.round(ms)).join(', ')} ms`;
    console.log(`      ${line}`);
    assert.deepEqual(t.problems, [], `${line}\n${t.problems.join('\n')}`);
    assert.equal(t.losses, 0);
    assert.ok(t.acks.size >= KILLS * 5, `too few acknowledged entries to mean anything: ${line}`);
    for (const ms of takeovers) assert.ok(ms < 15_000, `a takeover took ${ms} ms (${line})`);
  });
});
