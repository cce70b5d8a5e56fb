/** POST /v1/entries and the batch form: every outcome (200, idempotent 200, 409, 400, 403, 413, 503). */
import assert from 'node:assert/strict';
import request from 'supertest';
import { decodeLeaf } from '../../core/entry.ts';
import { leafHash } from '../../core/hash.ts';
import { verifyInclusion } from '../../core/merkle.ts';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parseVerifierKey, verifyNote } from '../../core/note.ts';
import { parseTlogProof } from '../../core/tlog-proof.ts';
import { formatSubmission } from '../../core/entry.ts';
import { artifact, keyPair, sign, submissionBody } from '../support/submissions.ts';
import { openTestLog, removeDir } from '../support/log-harness.ts';

type Log = ReturnType<typeof openTestLog>;

/** Checks a reply's tlog-proof end to end: log signature, leaf, inclusion. */
function checkProof(log: Log, body: { index: number; entry: string; leafHash: string; proof: string }) {
  const proof = parseTlogProof(body.proof);
  assert.equal(proof.index, body.index);
  assert.equal(proof.extra!.toString('base64'), body.entry);
  const { note } = verifyNote(proof.checkpoint, [parseVerifierKey(log.vkey)]);
  const cp = parseCheckpoint(note.text);
  assert.equal(cp.origin, log.origin);
  const lh = leafHash(proof.extra!);
  assert.equal(lh.toString('base64'), body.leafHash);
  verifyInclusion(proof.index, cp.treeSize, lh, proof.inclusionProof, cp.rootHash);
  return cp;
}

describe('server: submissions', () => {
  let log: Log;
  beforeEach(() => {
    log = openTestLog();
  });
  afterEach(async () => {
    await log.close();
    removeDir(log.dataDir);
  });

  it('logs a new entry and answers with a valid proof (200)', async () => {
    const res = await request(log.app).post('/v1/entries').send(submissionBody(1)).expect(200);
    assert.equal(res.body.index, 0);
    const cp = checkProof(log, res.body);
    assert.equal(cp.treeSize, 1);
    const e = decodeLeaf(Buffer.from(res.body.entry, 'base64'));
    assert.equal(e.version, '1.0.1');
    assert.equal(e.integratedTime, res.body.integratedTime);
    // durable: the store has it before the reply
    assert.equal(log.store.treeState()!.treeSize, 1);
  });

  it('answers an identical resubmission with the original index and time (idempotent 200)', async () => {
    const first = await request(log.app).post('/v1/entries').send(submissionBody(1)).expect(200);
    await request(log.app).post('/v1/entries').send(submissionBody(2)).expect(200);
    const again = await request(log.app).post('/v1/entries').send(submissionBody(1)).expect(200);
    assert.equal(again.body.index, first.body.index);
    assert.equal(again.body.integratedTime, first.body.integratedTime);
    assert.equal(again.body.entry, first.body.entry);
    checkProof(log, again.body);
    assert.equal(log.store.treeState()!.treeSize, 2, 'nothing new is logged');
  });

  it('refuses a different artifact for an already logged file (409 with the existing index)', async () => {
    await request(log.app).post('/v1/entries').send(submissionBody(0)).expect(200);
    const first = await request(log.app).post('/v1/entries').send(submissionBody(1)).expect(200);
    const evil = formatSubmission(sign({ ...artifact(1), sha256: 'f'.repeat(64) }));
    const res = await request(log.app).post('/v1/entries').send(evil).expect(409);
    assert.equal(res.body.error, 'conflict');
    assert.equal(res.body.index, first.body.index);
    // a different publisher key for the same file is a conflict too
    const other = formatSubmission(sign(artifact(1), keyPair('thief')));
    assert.equal((await request(log.app).post('/v1/entries').send(other).expect(409)).body.index, 1);
    assert.equal(log.store.treeState()!.treeSize, 2);
  });

  it('refuses conflicting submissions of one file within the same batch', async () => {
    const a = request(log.app).post('/v1/entries').send(submissionBody(3));
    const b = request(log.app).post('/v1/entries').send(formatSubmission(sign({ ...artifact(3), sha256: 'e'.repeat(64) })));
    const [ra, rb] = await Promise.all([a, b]);
    assert.deepEqual([ra.status, rb.status].sort(), [200, 409]);
    assert.equal(log.store.treeState()!.treeSize, 1);
  });

  const malformed: Array<[string, unknown]> = [
    ['not an object', [1, 2]],
    ['missing fields', { ecosystem: 'pypi' }],
    ['bad ecosystem', submissionBody(1, { ecosystem: 'PyPI' })],
    ['non-normalized pypi name', submissionBody(1, { name: 'Requests' })],
    ['pypi name with underscore', submissionBody(1, { name: 'my_pkg' })],
    ['uppercase npm name', submissionBody(1, { ecosystem: 'npm', name: 'React' })],
    ['filename with slash', submissionBody(1, { filename: '../evil.whl' })],
    ['version with space', submissionBody(1, { version: '1.0 beta' })],
    ['uppercase sha256', submissionBody(1, { sha256: 'A'.repeat(64) })],
    ['short sha256', submissionBody(1, { sha256: 'a'.repeat(63) })],
    ['name over 255 bytes', submissionBody(1, { name: 'a'.repeat(256) })],
    ['unknown field', { ...submissionBody(1), extra: 1 }],
    ['non-canonical base64 key', { ...submissionBody(1), publisher: { key: 'not base64!', signature: 'AA==' } }],
  ];
  for (const [what, body] of malformed) {
    it(`answers 400 for ${what}`, async () => {
      const res = await request(log.app).post('/v1/entries').send(body as object).expect(400);
      assert.equal(res.body.error, 'malformed');
      assert.equal(typeof res.body.message, 'string');
    });
  }

  it('answers 400 for a body that is not JSON', async () => {
    const res = await request(log.app).post('/v1/entries').set('content-type', 'application/json').send('{"ecosystem":').expect(400);
    assert.equal(res.body.error, 'malformed');
  });

  it('answers 403 for a bad publisher signature, a bad registry signature and an unknown registry', async () => {
    const good = submissionBody(1) as { publisher: { key: string; signature: string }; registry: { name: string; signature: string } };
    const flip = (b64: string) => {
      const b = Buffer.from(b64, 'base64');
      b[5]! ^= 1;
      return b.toString('base64');
    };
    let res = await request(log.app).post('/v1/entries').send({ ...good, publisher: { ...good.publisher, signature: flip(good.publisher.signature) } }).expect(403);
    assert.equal(res.body.error, 'bad_signature');
    assert.match(res.body.message, /publisher/);
    res = await request(log.app).post('/v1/entries').send({ ...good, registry: { ...good.registry, signature: flip(good.registry.signature) } }).expect(403);
    assert.match(res.body.message, /registry/);
    res = await request(log.app).post('/v1/entries').send({ ...good, registry: { ...good.registry, name: 'evil.example' } }).expect(403);
    assert.equal(res.body.error, 'unknown_key');
    assert.equal(log.store.treeState()!.treeSize, 0);
  });

  it('verifies on the event loop too (--verify-threads 0) with the same answers', async () => {
    const inline = openTestLog({ verifyThreads: '0' });
    try {
      const bad = { ...submissionBody(1), sha256: 'd'.repeat(64) };
      assert.equal((await request(inline.app).post('/v1/entries').send(bad).expect(403)).body.error, 'bad_signature');
      checkProof(inline, (await request(inline.app).post('/v1/entries').send(submissionBody(1)).expect(200)).body);
    } finally {
      await inline.close();
      removeDir(inline.dataDir);
    }
  });

  it('answers 413 for a body over the limit', async () => {
    const res = await request(log.app).post('/v1/entries').set('content-type', 'application/json').send(JSON.stringify({ pad: 'x'.repeat(100_000) })).expect(413);
    assert.equal(res.body.error, 'too_large');
  });

  it('answers 503 with Retry-After when the pending pool is full', async () => {
    const busy = openTestLog({ maxPending: '1', batchInterval: '300' });
    try {
      const first = request(busy.app).post('/v1/entries').send(submissionBody(1)).then((r) => r);
      await new Promise((r) => setTimeout(r, 50));
      const res = await request(busy.app).post('/v1/entries').send(submissionBody(2)).expect(503);
      assert.equal(res.body.error, 'overloaded');
      assert.ok(res.headers['retry-after']);
      assert.equal((await first).status, 200);
    } finally {
      await busy.close();
      removeDir(busy.dataDir);
    }
  });

  it('accepts a batch and answers each entry on its own', async () => {
    const bad = { ...submissionBody(2), sha256: 'nope' };
    const entries = [submissionBody(1), bad, submissionBody(3), submissionBody(1)];
    const res = await request(log.app).post('/v1/entries/batch').send({ entries }).expect(200);
    const r = res.body.results;
    assert.equal(r.length, 4);
    assert.equal(r[1].status, 400);
    assert.equal(r[1].error, 'malformed');
    assert.equal(r[0].index, r[3].index, 'duplicate in one batch gets one index');
    for (const i of [0, 2, 3]) checkProof(log, r[i]);
    assert.equal(log.store.treeState()!.treeSize, 2);
  });

  it('refuses an empty or oversized batch', async () => {
    await request(log.app).post('/v1/entries/batch').send({ entries: [] }).expect(400);
    const res = await request(log.app).post('/v1/entries/batch').send({ entries: new Array(1001).fill({}) }).expect(413);
    assert.equal(res.body.error, 'too_large');
  });
});
