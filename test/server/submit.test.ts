/** POST /v1/entries and the batch form: every outcome (200, idempotent 200, 409, 400, 403, 413, 429, 503). */
import assert from 'node:assert/strict';
import request from 'supertest';
import { decodeLeaf } from '../../core/entry.ts';
import { leafHash } from '../../core/hash.ts';
import { verifyInclusion } from '../../core/merkle.ts';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parseVerifierKey, verifyNote } from '../../core/note.ts';
import { parseTlogProof } from '../../core/tlog-proof.ts';
import { formatSubmission } from '../../core/entry.ts';
import { artifact, keyPair, REGISTRY, REGISTRY_NAME, sign, submissionBody } from '../support/submissions.ts';
import { openTestLog, removeDir, tempDir } from '../support/log-harness.ts';
import { registriesFile } from '../../server/main.ts';
import { addRegistry, type RegistryOptions } from '../../server/registries.ts';

/** A test log whose registries are configured as given (name → options; all with the test registry key). */
async function logWith(registries: Record<string, RegistryOptions>) {
  const dataDir = tempDir();
  for (const [name, o] of Object.entries(registries)) addRegistry(registriesFile(dataDir), name, REGISTRY.publicKey.toString('base64'), o);
  return await openTestLog({ dataDir, verifyThreads: '0' });
}

type Log = Awaited<ReturnType<typeof openTestLog>>;

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
  beforeEach(async () => {
    log = await openTestLog();
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
    assert.equal((await log.store.treeState())!.treeSize, 1);
  });

  it('answers an identical resubmission with the original index and time (idempotent 200)', async () => {
    const first = await request(log.app).post('/v1/entries').send(submissionBody(1)).expect(200);
    await request(log.app).post('/v1/entries').send(submissionBody(2)).expect(200);
    const again = await request(log.app).post('/v1/entries').send(submissionBody(1)).expect(200);
    assert.equal(again.body.index, first.body.index);
    assert.equal(again.body.integratedTime, first.body.integratedTime);
    assert.equal(again.body.entry, first.body.entry);
    assert.equal(first.body.existing, undefined, 'a new entry is not marked');
    assert.equal(again.body.existing, true, 'the resubmission is marked as the existing entry');
    checkProof(log, again.body);
    assert.equal((await log.store.treeState())!.treeSize, 2, 'nothing new is logged');
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
    assert.equal((await log.store.treeState())!.treeSize, 2);
  });

  it('refuses conflicting submissions of one file within the same batch', async () => {
    const a = request(log.app).post('/v1/entries').send(submissionBody(3));
    const b = request(log.app).post('/v1/entries').send(formatSubmission(sign({ ...artifact(3), sha256: 'e'.repeat(64) })));
    const [ra, rb] = await Promise.all([a, b]);
    assert.deepEqual([ra.status, rb.status].sort(), [200, 409]);
    assert.equal((await log.store.treeState())!.treeSize, 1);
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
    assert.equal((await log.store.treeState())!.treeSize, 0);
  });

  it('verifies on the event loop too (--verify-threads 0) with the same answers', async () => {
    const inline = await openTestLog({ verifyThreads: '0' });
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
    const busy = await openTestLog({ maxPending: '1', batchInterval: '300' });
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
    assert.equal((await log.store.treeState())!.treeSize, 2);
  });

  it('answers 403 wrong_ecosystem when a registry submits outside its ecosystems, before checking signatures', async () => {
    const bound = await logWith({ [REGISTRY_NAME]: { ecosystems: ['npm'] }, 'real-pypi': { ecosystems: ['pypi'] } });
    try {
      // an npm-only registry claims pypi/requests: refused, nothing logged, the real PyPI upload is not blocked
      const claim = formatSubmission(sign(artifact(1)));
      let res = await request(bound.app).post('/v1/entries').send(claim).expect(403);
      assert.equal(res.body.error, 'wrong_ecosystem');
      assert.match(res.body.message, /may not submit "pypi".*npm/);
      res = await request(bound.app).post('/v1/entries').send({ ...claim, publisher: { ...(claim.publisher as object), signature: 'A'.repeat(86) + '==' } }).expect(403);
      assert.equal(res.body.error, 'wrong_ecosystem', 'refused before the (bad) signature is looked at');
      assert.equal((await bound.store.treeState())!.treeSize, 0);
      const real = formatSubmission(sign(artifact(1), undefined, undefined, 'real-pypi'));
      checkProof(bound, (await request(bound.app).post('/v1/entries').send(real).expect(200)).body);
      // npm entries from the npm registry are fine; in a batch each entry is judged on its own
      const npm = formatSubmission(sign(artifact(2, { ecosystem: 'npm', name: 'left-pad', filename: 'left-pad-1.0.2.tgz' })));
      const batch = (await request(bound.app).post('/v1/entries/batch').send({ entries: [npm, formatSubmission(sign(artifact(3)))] }).expect(200)).body.results;
      assert.equal(batch[0].index, 1);
      assert.equal(batch[1].status, 403);
      assert.equal(batch[1].error, 'wrong_ecosystem');
    } finally {
      await bound.close();
      removeDir(bound.dataDir);
    }
  });

  it('answers 429 rate_limited with Retry-After over a registry quota; a batch counts each entry; other registries are unaffected', async () => {
    const limited = await logWith({ [REGISTRY_NAME]: { ecosystems: '*', rate: 0.01, burst: 3 }, other: { ecosystems: '*' } });
    try {
      for (let i = 0; i < 2; i++) await request(limited.app).post('/v1/entries').send(submissionBody(i)).expect(200);
      // a batch of 2 does not fit the 1 token left: all or none, the whole batch is 429
      let res = await request(limited.app).post('/v1/entries/batch').send({ entries: [submissionBody(2), submissionBody(3)] }).expect(429);
      assert.equal(res.body.error, 'rate_limited');
      assert.ok(Number(res.headers['retry-after']) >= 1 && res.body.retryAfter === Number(res.headers['retry-after']));
      await request(limited.app).post('/v1/entries').send(submissionBody(2)).expect(200);
      res = await request(limited.app).post('/v1/entries').send(submissionBody(3)).expect(429);
      assert.equal(res.body.error, 'rate_limited');
      assert.ok(Number(res.headers['retry-after']) >= 100, 'at 0.01/s the next token is 100 s away');
      // a mixed batch: the other registry's entries are logged, the limited one's answered 429 each, Retry-After set
      const mine = formatSubmission(sign(artifact(4), undefined, undefined, 'other'));
      res = await request(limited.app).post('/v1/entries/batch').send({ entries: [mine, submissionBody(5)] }).expect(200);
      assert.equal(res.body.results[0].index, 3);
      assert.equal(res.body.results[1].status, 429);
      assert.equal(res.body.results[1].error, 'rate_limited');
      assert.ok(Number(res.headers['retry-after']) >= 1);
      // more entries at once than the burst can ever take: 413 per entry, not a retry hint
      res = await request(limited.app).post('/v1/entries/batch').send({ entries: [6, 7, 8, 9].map((i) => submissionBody(i)) }).expect(200);
      assert.deepEqual(res.body.results.map((r: { status: number }) => r.status), [413, 413, 413, 413]);
      assert.equal((await limited.store.treeState())!.treeSize, 4);
    } finally {
      await limited.close();
      removeDir(limited.dataDir);
    }
  });

  it('answers 400 for JSON nested deeper than 8 and 413 for too many values, refusing other content encodings', async () => {
    const deep = '{"entries":' + '['.repeat(20) + ']'.repeat(20) + '}';
    let res = await request(log.app).post('/v1/entries/batch').set('content-type', 'application/json').send(deep).expect(400);
    assert.match(res.body.message, /deeper than 8/);
    res = await request(log.app).post('/v1/entries').set('content-type', 'application/json').send('[' + '0,'.repeat(100) + '0]').expect(413);
    assert.equal(res.body.error, 'too_large');
    res = await request(log.app).post('/v1/entries').set('content-type', 'application/json').send('[1]').expect(400);
    assert.match(res.body.message, /JSON object/);
    res = await request(log.app).post('/v1/entries').set('content-type', 'application/json').set('content-encoding', 'gzip').send('{}').expect(400);
    assert.match(res.body.message, /content-encoding/);
    res = await request(log.app).post('/v1/entries').set('content-type', 'application/octet-stream').send(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])).expect(400);
    assert.match(res.body.message, /UTF-8/);
  });

  it('refuses an empty or oversized batch', async () => {
    await request(log.app).post('/v1/entries/batch').send({ entries: [] }).expect(400);
    const res = await request(log.app).post('/v1/entries/batch').send({ entries: new Array(1001).fill({}) }).expect(413);
    assert.equal(res.body.error, 'too_large');
  });
});
