/**
 * Two front ends on one PostgreSQL database with a witness quorum and one shared --publish-dir, real processes: two
 * `pkglog witness` processes and two `pkglog serve --database … --witness-quorum 2 --publish-dir DIR`. Only the
 * front end holding the sequencer lease talks to the witnesses and stores their cosignatures; the other one must still
 * answer submissions with proofs against a quorum-cosigned checkpoint (it reads the cosignatures and the published
 * mark from the database), and serve at /checkpoint only quorum-cosigned checkpoints, never going back. The shared
 * directory's checkpoint, written by whichever front end sequences (also across a kill of the lease holder), is
 * always quorum-cosigned, never goes back, and its tiles hold exactly its tree.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parseSignedNote } from '../../core/note.ts';
import { parsePolicy, verifyCheckpointWithPolicy, type Policy } from '../../core/policy.ts';
import { parseTlogProof } from '../../core/tlog-proof.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import * as I from '../interop/independent.ts';
import { FrontEnds, type FrontEnd } from '../support/front-ends.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { pkglogOk as pkglog, startProcess, type Started } from '../support/process.ts';
import { submissionBody } from '../support/submissions.ts';

const ORIGIN = 'example.test/frontends-quorum';
const WAIT_MS = 8000;

async function submit(url: string, i: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${url}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submissionBody(i)) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

/** The size of a signed checkpoint; throws unless it meets the policy (size 0, the empty tree, is never cosigned). */
function checked(policy: Policy, text: string, what: string): number {
  const size = parseCheckpoint(parseSignedNote(text).text).treeSize;
  if (size > 0) {
    try {
      verifyCheckpointWithPolicy(policy, text);
    } catch (e) {
      throw new Error(`${what} served size ${size} without the quorum: ${(e as Error).message}`);
    }
  }
  return size;
}

describe('e2e: two front ends on PostgreSQL with a witness quorum and one shared publish directory', function () {
  this.timeout(180_000);
  let db: TestDatabase | undefined;
  let fes: FrontEnds | undefined;
  const procs: Started[] = [];
  const dirs: string[] = [];
  let watching = true;
  after(async () => {
    watching = false; // the watchers stop (also when the test failed half-way)
    await fes?.stop();
    for (const p of procs) await p.stop('SIGKILL');
    await db?.drop();
    for (const d of dirs) removeDir(d);
  });

  it('the front end that does not sequence answers with quorum-cosigned proofs; /checkpoint and the directory never go back or lack the quorum', async () => {
    db = await createTestDatabase();
    const dir = tempDir('pkglog-feq-');
    const pub = tempDir('pkglog-feq-pub-');
    dirs.push(dir, pub);
    // The log key first (the witnesses must know it), then two witnesses, then witnesses.txt in both data dirs.
    const feDirs = ['fe1', 'fe2'].map((n) => join(dir, n));
    for (const d of feDirs) mkdirSync(d, { recursive: true, mode: 0o700 });
    const logKey = loadOrCreateLogKey(join(feDirs[0]!, 'log.key'), ORIGIN);
    const wDirs = [1, 2].map((i) => tempDir(`pkglog-feq-w${i}-`));
    dirs.push(...wDirs);
    await Promise.all(wDirs.map((d) => pkglog(['witness', 'add-log', ORIGIN, logKey.vkey, '--data-dir', d])));
    const ws = await Promise.all(wDirs.map((d, i) => startProcess(['witness', '--gossip-interval', '600000', '--poll-interval', '600000'], {
      PKGLOG_WITNESS_DATA_DIR: d, PKGLOG_WITNESS_LISTEN: '127.0.0.1:0', PKGLOG_WITNESS_NAME: `witness.test/feq${i + 1}`,
    })));
    procs.push(...ws);
    const vkeys = ws.map((w) => w.info.get('vkey')!);
    for (const d of feDirs) for (const [i, w] of ws.entries()) await pkglog(['witnesses', 'add', w.url, vkeys[i]!], { PKGLOG_DATA_DIR: d });
    const policy = parsePolicy(`log ${logKey.vkey}\n${vkeys.map((v, i) => `witness w${i + 1} ${v}\n`).join('')}group both 2 w1 w2\nquorum both\n`);

    fes = await FrontEnds.start({
      dir, databaseUrl: db.url, count: 2, origin: ORIGIN, leaseTtlMs: 1000,
      extraArgs: ['--witness-quorum', '2', '--witness-interval', '100', '--witness-wait', String(WAIT_MS), '--publish-dir', pub],
    });
    const holder = await fes.waitForHolder();
    const other = fes.all.find((fe) => fe !== holder)!;

    // Watch both front ends' /checkpoint and the directory's checkpoint the whole time.
    const seen = new Map<string, number[]>([['fe1', []], ['fe2', []], ['dir', []]]);
    const watch = (name: string, read: () => Promise<string | undefined>) => (async () => {
      while (watching) {
        const text = await read().catch(() => undefined); // a killed front end, a directory without a checkpoint yet
        if (text !== undefined) seen.get(name)!.push(checked(policy, text, name));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const live = (fe: FrontEnd) => async () => (fe.proc === undefined ? undefined : (await fetch(`${fe.url}/checkpoint`)).text());
    const watchers = [
      watch('fe1', live(fes.all[0]!)), watch('fe2', live(fes.all[1]!)),
      watch('dir', async () => readFileSync(join(pub, 'checkpoint'), 'utf8')),
    ];

    let next = 0;
    const acked: Array<{ index: number; via: string }> = [];
    const checkReply = (r: Awaited<ReturnType<typeof submit>>, via: string) => {
      assert.equal(r.status, 200, `${via}: ${JSON.stringify(r.body)}`);
      const proof = parseTlogProof(r.body.proof as string);
      assert.equal(proof.index, r.body.index);
      const v = verifyCheckpointWithPolicy(policy, proof.checkpoint);
      assert.equal(v.cosigners.length, 2, `${via}: a reply's checkpoint with ${v.cosigners.length} cosignatures`);
      acked.push({ index: r.body.index as number, via });
    };
    // Submissions to both front ends at once (most to the one that does not sequence).
    const round = async (targets: FrontEnd[], n: number) => {
      await Promise.all(Array.from({ length: n }, async (_, k) => {
        const fe = targets[k % targets.length]!;
        checkReply(await submit(fe.url, next++), fe.name);
      }));
    };
    for (let k = 0; k < 4; k++) await round([other, other, holder], 6);

    // The front end that does not sequence: its proofs (GET /v1/entries/<i>/proof) carry a quorum-cosigned checkpoint.
    for (const a of acked.slice(0, 8)) {
      const r = await fetch(`${other.url}/v1/entries/${a.index}/proof`);
      assert.equal(r.status, 200);
      const proof = parseTlogProof(await r.text());
      assert.equal(proof.index, a.index);
      verifyCheckpointWithPolicy(policy, proof.checkpoint);
    }

    // The lease holder killed: the other takes over, sequences, asks the witnesses and publishes into the directory.
    const before = Math.max(...seen.get('dir')!);
    await fes.kill(holder);
    await round([other], 6);
    for (let i = 0; i < 400 && Math.max(...seen.get('dir')!) <= before; i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(Math.max(...seen.get('dir')!) > before, `the directory was not published beyond ${before} after the takeover`);
    await fes.restart(holder);
    await round([holder, other], 6);

    // Settle: every acknowledged entry is in the directory's tree (each front end follows commits within a poll).
    const needed = Math.max(...acked.map((a) => a.index)) + 1;
    for (let i = 0; i < 400 && Math.max(0, ...seen.get('dir')!) < needed; i++) await new Promise((r) => setTimeout(r, 25));
    watching = false;
    await Promise.all(watchers);
    for (const [name, sizes] of seen) {
      assert.ok(sizes.length > 0, `${name}: no checkpoint read`);
      for (let i = 1; i < sizes.length; i++) assert.ok(sizes[i]! >= sizes[i - 1]!, `${name}: the checkpoint went from ${sizes[i - 1]} to ${sizes[i]}`);
    }
    const dirSize = Math.max(...seen.get('dir')!);
    assert.ok(dirSize >= needed, `the directory is at ${dirSize}, want ≥ ${needed}`);
    for (const fe of fes.live()) {
      const text = await (await fetch(`${fe.url}/checkpoint`)).text();
      assert.ok(checked(policy, text, fe.name) >= needed, `${fe.name} serves ${text}`);
    }
    // The directory's tiles hold exactly the tree of its checkpoint (the independent tlog-tiles code): the root from
    // its right-edge tiles and from its level-0 tiles is the checkpoint's, every bundle entry hashes to its leaf.
    const cp = I.parseCheckpointText(I.openNote(readFileSync(join(pub, 'checkpoint')), [I.parseVKey(logKey.vkey)]).text);
    assert.equal(cp.size, dirSize);
    const file = (path: string) => readFileSync(join(pub, path));
    assert.ok(I.rootFromTiles(cp.size, (l, i, w) => file(I.tilePath(l, i, w))).equals(cp.root), 'root from the right-edge tiles');
    const leaves: Buffer[] = [];
    for (let i = 0; i * 256 < cp.size; i++) {
      const w = Math.min(256, cp.size - i * 256);
      const hashes = I.tileHashes(file(I.tilePath(0, i, w)), w);
      assert.deepEqual(I.parseBundle(file(I.tilePath('entries', i, w))).map(I.leafHash), hashes, `bundle ${i}`);
      leaves.push(...hashes);
    }
    assert.ok(new I.HashTree(leaves).root(cp.size).equals(cp.root), 'root from the level-0 tiles');
    console.log(`      ${acked.length} replies (${acked.filter((a) => a.via === other.name).length} from the front end that did not sequence at first), ` +
      `checkpoints read: ${[...seen].map(([n, s]) => `${n} ${s.length} (${new Set(s).size} sizes)`).join(', ')}; directory at ${dirSize}`);
  });
});
