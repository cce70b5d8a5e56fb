/**
 * Bad input never gets a 500 or a stack trace: arbitrary paths, queries and bodies against the log and the witness
 * answer a 4xx (or a 200 where the input happens to be valid), with a JSON error body from the log.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import request from 'supertest';
import { submissionBody } from '../support/submissions.ts';
import { openTestLog, removeDir } from '../support/log-harness.ts';
import { makeWitness } from '../witness/helpers.ts';
import { FakeLog } from '../witness/fake-log.ts';

const segment = fc.oneof(
  fc.constantFrom('tile', 'entries', '0', '1', 'x001', '000', '000.p', 'p', '255', 'v1', 'proof', 'lookup', 'sha256', 'pypi', 'checkpoint', 'checkpoints', '..', '%2F', '%00', '-1', '1e9', '9007199254740993'),
  fc.stringMatching(/^[A-Za-z0-9._~%-]{0,12}$/),
);
const path = fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => '/' + s.join('/'));
/** A printable excerpt of any reply: `res.text` is undefined for binary bodies (tiles, entry bundles). */
export function bodyExcerpt(res: { text?: unknown; body?: unknown }, max = 200): string {
  if (typeof res.text === 'string') return res.text.slice(0, max);
  if (Buffer.isBuffer(res.body)) return `<${res.body.length} bytes: ${res.body.subarray(0, max / 2).toString('hex')}>`;
  return JSON.stringify(res.body ?? null).slice(0, max);
}

const query = fc.dictionary(fc.constantFrom('index', 'size', 'old', 'leafHash', 'cursor', 'limit', 'before'), fc.oneof(fc.string({ maxLength: 20 }), fc.nat().map(String), fc.constant('')));

const prefixes = ['', '/tile', '/tile/0', '/tile/entries', '/v1/proof/inclusion', '/v1/proof/consistency', '/v1/entries', '/v1/lookup', '/v1/checkpoints'];

/** Arbitrary GETs against the log: status < 500, and every error a JSON body without a stack trace. */
function logGetProperty(app: Parameters<typeof request>[0]) {
  return fc.asyncProperty(fc.constantFrom(...prefixes), path, query, async (prefix, p, q) => {
    const res = await request(app).get(prefix + p).query(q);
    assert.ok(res.status < 500, `${res.status} for GET ${prefix + p} ${JSON.stringify(q)}: ${bodyExcerpt(res)}`);
    if (res.status >= 400) {
      assert.equal(typeof res.body.error, 'string', `no JSON error for GET ${prefix + p}: ${bodyExcerpt(res)}`);
      assert.doesNotMatch(bodyExcerpt(res, 10_000), /at .*\.ts:\d+/, 'no stack trace');
    }
  });
}

describe('robustness: no 500 on arbitrary input', function () {
  this.timeout(60_000);

  it('regression: seed 860077103 (path "35:4", GET /tile/entries/000.p/1, a binary 200) passes', async () => {
    const log = await openTestLog();
    try {
      await request(log.app).post('/v1/entries/batch').send({ entries: [0, 1, 2, 3, 4].map((i) => submissionBody(i)) }).expect(200);
      // The counterexample itself, then the whole run of that seed (it threw a TypeError on res.text of a tile).
      const tile = await request(log.app).get('/tile/entries/000.p/1').buffer(true);
      assert.equal(tile.status, 200);
      assert.equal(tile.text, undefined, 'a binary reply has no res.text (what broke the message)');
      assert.match(bodyExcerpt(tile), /^<\d+ bytes: /);
      await fc.assert(logGetProperty(log.app), { seed: 860077103, path: '35:4', endOnFailure: true });
      await fc.assert(logGetProperty(log.app), { seed: 860077103, numRuns: 400 });
    } finally {
      await log.close();
      removeDir(log.dataDir);
    }
  });

  it('the log answers arbitrary GETs and POSTs with a status < 500 and JSON errors', async () => {
    const log = await openTestLog();
    try {
      await request(log.app).post('/v1/entries/batch').send({ entries: [0, 1, 2, 3, 4].map((i) => submissionBody(i)) }).expect(200);
      await fc.assert(logGetProperty(log.app), { numRuns: 400 });
      await fc.assert(
        fc.asyncProperty(fc.constantFrom('/v1/entries', '/v1/entries/batch'), fc.oneof(fc.jsonValue(), fc.string({ maxLength: 300 })), async (p, body) => {
          const res = await request(log.app).post(p).set('content-type', 'application/json').send(typeof body === 'string' ? body : JSON.stringify(body));
          assert.ok(res.status >= 400 && res.status < 500, `${res.status} for POST ${p}: ${bodyExcerpt(res)}`);
          assert.equal(typeof res.body.error, 'string');
        }),
        { numRuns: 300 },
      );
    } finally {
      await log.close();
      removeDir(log.dataDir);
    }
  });

  it('the witness answers arbitrary add-checkpoint bodies and paths with a status < 500', async () => {
    const w = makeWitness();
    const fake = new FakeLog('example.test/robust').append(10);
    w.store.addLog(fake.origin, fake.vkey, null, 0);
    const valid = fake.addCheckpointBody(0).toString('utf8');
    try {
      // mutations of a valid request, and arbitrary bytes
      const mutated = fc.tuple(fc.nat(valid.length), fc.nat(valid.length), fc.string({ maxLength: 8 })).map(([a, b, s]) => valid.slice(0, Math.min(a, b)) + s + valid.slice(Math.max(a, b)));
      await fc.assert(
        fc.asyncProperty(fc.oneof(mutated, fc.string({ maxLength: 400 }), fc.uint8Array({ maxLength: 400 }).map((u) => Buffer.from(u).toString('latin1'))), async (body) => {
          const res = await request(w.app).post('/add-checkpoint').send(Buffer.from(body, 'latin1'));
          assert.ok(res.status < 500, `${res.status} for ${JSON.stringify(body).slice(0, 200)}: ${bodyExcerpt(res)}`);
        }),
        { numRuns: 400 },
      );
      await fc.assert(
        fc.asyncProperty(path, query, async (p, q) => {
          const res = await request(w.app).get(p).query(q);
          assert.ok(res.status < 500, `${res.status} for GET ${p}`);
        }),
        { numRuns: 200 },
      );
      await fc.assert(
        fc.asyncProperty(fc.oneof(mutated, fc.string({ maxLength: 300 })), async (body) => {
          const res = await request(w.app).post('/v1/gossip').send(Buffer.from(body, 'latin1'));
          assert.ok(res.status < 500, `${res.status} for gossip ${JSON.stringify(body).slice(0, 100)}`);
        }),
        { numRuns: 200 },
      );
    } finally {
      w.close();
    }
  });
});
