/**
 * The log side of witnessing, with a real witness: checkpoints are pushed after batches, cosignatures verified and
 * stored, /checkpoint and replies carry them; a quorum holds replies until it is met; a dead witness never blocks.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import request from 'supertest';
import { parsePolicy, verifyCheckpointWithPolicy } from '../../core/policy.ts';
import { parseTlogProof } from '../../core/tlog-proof.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import { witnessesFile } from '../../server/main.ts';
import { addWitness } from '../../server/witness-config.ts';
import { startWitness, type RunningWitness } from '../../witness/main.ts';
import { submissionBody } from '../support/submissions.ts';
import { removeDir, startTestLog, tempDir } from '../support/log-harness.ts';

const ORIGIN = 'example.test/witnessed-log';

async function witnessFor(logDir: string): Promise<{ w: RunningWitness; dir: string; policy: string }> {
  const key = loadOrCreateLogKey(join(logDir, 'log.key'), ORIGIN);
  const dir = tempDir('pkglog-witness-');
  const w = await startWitness({ dataDir: dir, listen: '127.0.0.1:0', name: 'witness.test/one', log: { info() {}, warn() {}, error() {} } as never });
  w.store.addLog(ORIGIN, key.vkey, null, Math.floor(Date.now() / 1000));
  addWitness(witnessesFile(logDir), w.url, w.vkey);
  const policy = `log ${key.vkey}\nwitness w1 ${w.vkey}\nquorum w1\n`;
  return { w, dir, policy };
}

describe('server: witnessing with a real witness', function () {
  this.timeout(30_000);
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup.length = 0;
  });

  it('with a quorum of 1, replies and /checkpoint carry a verified cosignature', async () => {
    const logDir = tempDir();
    const { w, dir, policy } = await witnessFor(logDir);
    cleanup.push(() => removeDir(dir), () => w.close());
    const log = await startTestLog({ dataDir: logDir, origin: ORIGIN, witnessQuorum: '1', witnessInterval: '20' });
    cleanup.push(() => removeDir(logDir), () => log.close());
    const p = parsePolicy(policy);

    const res = await request(log.url).post('/v1/entries').send(submissionBody(1)).expect(200);
    assert.equal(res.body.cosigned, undefined);
    const proof = parseTlogProof(res.body.proof);
    const v = verifyCheckpointWithPolicy(p, proof.checkpoint);
    assert.equal(v.cosigners.length, 1);
    assert.ok(Math.abs(v.cosigners[0]!.timestamp - Date.now() / 1000) < 60);

    // a burst of submissions costs few add-checkpoint calls (rationed per witness)
    await Promise.all([2, 3, 4, 5, 6, 7].map((i) => request(log.url).post('/v1/entries').send(submissionBody(i)).expect(200)));
    const status = log.witnessing!.status()[0]!;
    assert.ok(status.requests <= 6, `add-checkpoint calls: ${status.requests}`);
    const cp = await request(log.url).get('/checkpoint').expect(200);
    verifyCheckpointWithPolicy(p, cp.text);
    // an entry's proof is against a cosigned checkpoint
    const entryProof = parseTlogProof((await request(log.url).get('/v1/entries/3/proof').expect(200)).text);
    assert.equal(verifyCheckpointWithPolicy(p, entryProof.checkpoint).cosigners.length, 1);
    // the witness's own view (its monitoring endpoint) is a checkpoint of this log that it cosigned
    const originHash = createHash('sha256').update(ORIGIN).digest('hex');
    const seen = await request(w.url).get(`/${originHash}/checkpoint`).expect(200);
    const mine = verifyCheckpointWithPolicy(p, seen.text);
    assert.equal(mine.cosigners[0]!.witness.name, 'w1');
  });

  it('a dead witness never blocks submissions without a quorum; with one, replies are 503 (entry committed) after the wait', async () => {
    const logDir = tempDir();
    const { w, dir } = await witnessFor(logDir);
    await w.close(); // the configured witness is down
    removeDir(dir);
    // A witness wait far beyond the test's timeout: a reply that waited for the witness would never arrive in time.
    const log = await startTestLog({ dataDir: logDir, origin: ORIGIN, witnessInterval: '20', witnessWait: '600000' });
    cleanup.push(() => removeDir(logDir), () => log.close());
    const t0 = Date.now();
    const res = await request(log.url).post('/v1/entries').send(submissionBody(1)).expect(200);
    assert.ok(Date.now() - t0 < 15_000, 'the reply did not wait for the dead witness');
    assert.equal(res.body.cosigned, undefined);
    await log.close();

    const quorumLog = await startTestLog({ dataDir: logDir, origin: ORIGIN, witnessQuorum: '1', witnessInterval: '20', witnessWait: '300' });
    cleanup.push(() => quorumLog.close());
    const t1 = Date.now();
    const late = await request(quorumLog.url).post('/v1/entries').send(submissionBody(2)).expect(503);
    assert.equal(late.body.error, 'overloaded');
    assert.equal(late.body.committed, true);
    assert.equal(late.body.index, 1);
    assert.match(late.body.message, /committed as entry 1 but not yet cosigned by a quorum of 1/);
    assert.ok(late.headers['retry-after'] !== undefined, 'Retry-After');
    assert.ok(Date.now() - t1 >= 250);
    assert.ok(quorumLog.witnessing!.status()[0]!.failures >= 1);
    // the entry is in the log, and resubmitting it is idempotent (same index, again 503 while no quorum forms)
    assert.equal((await quorumLog.store.treeState())!.treeSize, 2);
    const again = await request(quorumLog.url).post('/v1/entries').send(submissionBody(2)).expect(503);
    assert.equal(again.body.index, 1);
    assert.equal((await quorumLog.store.treeState())!.treeSize, 2);
  });
});
