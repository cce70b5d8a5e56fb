/**
 * The witness's HTTP behaviour as a table of literal wire-format requests (C2SP tlog-witness add-checkpoint and
 * the witness's read endpoints): expected status, content type and body.
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import { FakeLog } from './fake-log.ts';
import { makeWitness, type TestWitness } from './helpers.ts';
import { parseVerifierKey, verifyNote } from '../../core/note.ts';
import { originHash } from '../../core/hash.ts';
import { cosignatureTimestamp } from '../../core/cosignature.ts';
import { parseEvidence, verifyEvidence } from '../../core/evidence.ts';
import { createHandler } from '../../witness/app.ts';
import { WitnessMetrics } from '../../witness/metrics.ts';
import { createRegistry } from '../../runtime/metrics.ts';
import { HttpOps } from '../../runtime/http-ops.ts';
import { callbackLogger } from '../../runtime/logger.ts';

const b64 = (b: Buffer): string => b.toString('base64');

interface Row {
  name: string;
  method?: 'POST' | 'GET';
  path?: string;
  body?: () => string;
  status: number;
  type: RegExp;
  resBody: RegExp | ((body: string) => void);
}

// The same table through the express app and through the server's handler (add-checkpoint answered without express).
for (const via of ['express app', 'node:http handler'] as const) describe(`witness HTTP (C2SP tlog-witness table), ${via}`, () => {
  let t: TestWitness;
  let app: Parameters<typeof request>[0];
  // log A: cosigned at 5 before the table runs; log B: never cosigned; log C: for the fork row; log Z: not configured.
  const A = new FakeLog('example.com/log-a').append(5);
  const B = new FakeLog('example.com/log-b').append(3);
  const C = new FakeLog('example.com/log-c').append(4);
  const Cfork = C.fork(2, 2); // size 4, a different root, same key
  const Z = new FakeLog('example.com/unknown').append(2);
  const impostor = new FakeLog('example.com/log-a', 'another key').append(5);
  const cp5 = A.checkpoint(5);
  const A8 = new FakeLog('example.com/log-a').append(8);

  before(async () => {
    t = makeWitness();
    app = via === 'express app' ? t.app : createHandler({ witness: t.witness });
    for (const l of [A, B, C]) t.store.addLog(l.origin, l.vkey, null, 0);
    const r1 = await request(app).post('/add-checkpoint').send(`old 0\n\n${cp5}`);
    assert.equal(r1.status, 200, r1.text);
    const r2 = await request(app).post('/add-checkpoint').send(`old 0\n\n${C.checkpoint()}`);
    assert.equal(r2.status, 200, r2.text);
  });
  after(() => t.close());

  const proofLines = (h: Buffer[]): string => h.map((x) => b64(x) + '\n').join('');
  const SIZE = /^text\/x\.tlog\.size/;
  const TEXT = /^text\/plain/;
  const JSON_TYPE = /^application\/json/;
  const COSIG = (body: string) => assert.match(body, /^— witness\.test\/w1 [A-Za-z0-9+/]+=*\n$/);

  const rows: Row[] = [
    { name: 'unknown origin → 404', body: () => `old 0\n\n${Z.checkpoint()}`, status: 404, type: TEXT, resBody: /unknown log origin/ },
    { name: 'signed by another key → 403', body: () => `old 5\n\n${impostor.checkpoint()}`, status: 403, type: TEXT, resBody: /no valid signature/ },
    { name: 'not a request → 400', body: () => 'hello\n', status: 400, type: TEXT, resBody: /old/ },
    { name: 'no blank line before the checkpoint → 400', body: () => `old 5\n${cp5}`, status: 400, type: TEXT, resBody: /./ },
    { name: 'old size with a leading zero → 400', body: () => `old 05\n\n${cp5}`, status: 400, type: TEXT, resBody: /decimal/ },
    { name: 'bad base64 proof line → 400', body: () => `old 5\n!!!!\n\n${A8.checkpoint()}`, status: 400, type: TEXT, resBody: /base64/ },
    {
      name: '64 proof lines → 400',
      body: () => `old 5\n${proofLines(Array(64).fill(Buffer.alloc(32)))}\n${A8.checkpoint()}`,
      status: 400,
      type: TEXT,
      resBody: /63/,
    },
    { name: 'old > checkpoint size → 400', body: () => `old 6\n\n${cp5}`, status: 400, type: TEXT, resBody: /larger than/ },
    { name: 'old 0 but the witness knows 5 → 409 with the size', body: () => `old 0\n\n${A8.checkpoint()}`, status: 409, type: SIZE, resBody: /^5\n$/ },
    { name: 'old 3 but the witness knows 5 → 409', body: () => `old 3\n${proofLines(A8.consistencyProof(3))}\n${A8.checkpoint()}`, status: 409, type: SIZE, resBody: /^5\n$/ },
    { name: 'rollback to 4 → 409', body: () => `old 4\n\n${A.checkpoint(4)}`, status: 409, type: SIZE, resBody: /^5\n$/ },
    { name: 'empty proof 5 → 8 → 422', body: () => `old 5\n\n${A8.checkpoint()}`, status: 422, type: TEXT, resBody: /proof/ },
    {
      name: 'tampered proof 5 → 8 → 422',
      body: () => {
        const p = A8.consistencyProof(5);
        p[0] = Buffer.alloc(32, 7);
        return `old 5\n${proofLines(p)}\n${A8.checkpoint()}`;
      },
      status: 422,
      type: TEXT,
      resBody: /proof/,
    },
    { name: 'proof with old 0 → 422', body: () => `old 0\n${proofLines([Buffer.alloc(32)])}\n${B.checkpoint()}`, status: 422, type: TEXT, resBody: /empty/ },
    {
      name: 'checkpoint edited after signing (signature no longer verifies) → 403',
      body: () => `old 5\n\n${cp5.replace(b64(A.rootAt(5)), b64(Buffer.alloc(32, 9)))}`,
      status: 403,
      type: TEXT,
      resBody: /no valid signature/,
    },
    { name: 'same size, same root: resubmission is cosigned again → 200', body: () => `old 5\n\n${cp5}`, status: 200, type: TEXT, resBody: COSIG },
    { name: 'valid proof 5 → 8 → 200 cosignature', body: () => `old 5\n${proofLines(A8.consistencyProof(5))}\n${A8.checkpoint()}`, status: 200, type: TEXT, resBody: COSIG },
    { name: 'same request again: old 5 is stale now → 409 8', body: () => `old 5\n${proofLines(A8.consistencyProof(5))}\n${A8.checkpoint()}`, status: 409, type: SIZE, resBody: /^8\n$/ },
    { name: 'first checkpoint of log B with old 0 → 200', body: () => `old 0\n\n${B.checkpoint()}`, status: 200, type: TEXT, resBody: COSIG },
    { name: 'same size 4, different root → 422 (and evidence)', body: () => `old 4\n\n${Cfork.checkpoint()}`, status: 422, type: TEXT, resBody: /different root/ },
    { name: 'log C after the fork: its cosigned checkpoint is still cosigned → 200', body: () => `old 4\n\n${C.checkpoint()}`, status: 200, type: TEXT, resBody: COSIG },
    { name: 'GET unknown path → 404', method: 'GET', path: '/nope', status: 404, type: TEXT, resBody: /not found/ },
    { name: 'GET add-checkpoint → 404', method: 'GET', path: '/add-checkpoint', status: 404, type: TEXT, resBody: /not found/ },
    {
      name: 'GET /<sha256(origin)>/checkpoint → latest cosigned',
      method: 'GET',
      path: `/${originHash('example.com/log-a')}/checkpoint`,
      status: 200,
      type: TEXT,
      resBody: (body) => assert.ok(body.startsWith(A8.checkpointText()) && body.includes('— witness.test/w1 ') && body.includes('— example.com/log-a ')),
    },
    { name: 'GET /<unknown hash>/checkpoint → 404', method: 'GET', path: `/${'0'.repeat(64)}/checkpoint`, status: 404, type: TEXT, resBody: /unknown log/ },
    { name: 'GET /<uppercase hex>/checkpoint → 404', method: 'GET', path: `/${originHash('example.com/log-a').toUpperCase()}/checkpoint`, status: 404, type: TEXT, resBody: /./ },
    { name: 'GET /vkey', method: 'GET', path: '/vkey', status: 200, type: TEXT, resBody: /^witness\.test\/w1\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*\n$/ },
    {
      name: 'GET /v1/history?before=now → size 8',
      method: 'GET',
      path: `/v1/history/${originHash('example.com/log-a')}?before=1700000000`,
      status: 200,
      type: TEXT,
      resBody: (body) => assert.ok(body.startsWith(A8.checkpointText())),
    },
    { name: 'GET /v1/history before the first cosignature → 404', method: 'GET', path: `/v1/history/${originHash('example.com/log-a')}?before=1699999999`, status: 404, type: JSON_TYPE, resBody: /"error":"not_found","message":"no checkpoint/ },
    { name: 'GET /v1/history?before=-1 → 400', method: 'GET', path: `/v1/history/${originHash('example.com/log-a')}?before=-1`, status: 400, type: JSON_TYPE, resBody: /"error":"malformed".*decimal/ },
    {
      name: 'GET /v1/evidence → the fork of log C',
      method: 'GET',
      path: '/v1/evidence',
      status: 200,
      type: /^application\/json/,
      resBody: (body) => {
        const list = JSON.parse(body).evidence;
        assert.equal(list.length, 1);
        assert.equal(list[0].origin, 'example.com/log-c');
        const s = verifyEvidence(parseEvidence(list[0].evidence), parseVerifierKey(C.vkey));
        assert.equal(s.kind, 'same-size');
      },
    },
  ];

  for (const row of rows) {
    it(row.name, async () => {
      const r =
        (row.method ?? 'POST') === 'POST'
          ? await request(app).post(row.path ?? '/add-checkpoint').send(row.body!())
          : await request(app).get(row.path!);
      assert.equal(r.status, row.status, r.text);
      assert.match(String(r.headers['content-type']), row.type);
      if (typeof row.resBody === 'function') row.resBody(r.text);
      else assert.match(r.text, row.resBody);
    });
  }

  it('a size-0 checkpoint validly signed with a non-empty root → 422', async () => {
    const D = new FakeLog('example.com/log-d');
    t.store.addLog(D.origin, D.vkey, null, 0);
    const text = `example.com/log-d\n0\n${b64(Buffer.alloc(32, 1))}\n`;
    const { signNote } = await import('../../core/note.ts');
    const r = await request(app).post('/add-checkpoint').send(`old 0\n\n${signNote(text, [D.signer])}`);
    assert.equal(r.status, 422, r.text);
    const ok = await request(app).post('/add-checkpoint').send(`old 0\n\n${D.checkpoint(0)}`);
    assert.equal(ok.status, 200, ok.text);
  });

  it('the 200 body is a cosignature/v1 that verifies with the witness vkey over the checkpoint', async () => {
    const A9 = new FakeLog('example.com/log-a').append(9);
    t.clock.ms += 5000;
    const r = await request(app).post('/add-checkpoint').send(`old 8\n${proofLines(A9.consistencyProof(8))}\n${A9.checkpoint()}`);
    assert.equal(r.status, 200, r.text);
    const v = verifyNote(A9.checkpoint() + r.text, [parseVerifierKey(t.witness.vkey)]);
    assert.equal(v.verified.length, 1);
    assert.equal(cosignatureTimestamp(v.verified[0]!.signature), Math.floor(t.clock.ms / 1000));
  });

  it('a checkpoint with extra unknown signatures and extension lines is accepted', async () => {
    const E = new FakeLog('example.com/log-e').append(3);
    t.store.addLog(E.origin, E.vkey, null, 0);
    const other = new FakeLog('other.example/log', 'other');
    const { signNote } = await import('../../core/note.ts');
    const text = E.checkpointText() + 'extension line\n';
    const note = signNote(text, [other.signer, E.signer]);
    const r = await request(app).post('/add-checkpoint').send(`old 0\n\n${note}`);
    assert.equal(r.status, 200, r.text);
    verifyNote(text + '\n' + r.text, [parseVerifierKey(t.witness.vkey)]);
  });

  it('an oversized body → 413, never a 500', async () => {
    const r = await request(app).post('/add-checkpoint').send(Buffer.alloc(2 << 20, 0x61));
    assert.equal(r.status, 413);
  });
});

describe('witness HTTP: the node:http handler answers add-checkpoint through the ops middleware', () => {
  it('request id, metrics and the refusal log line on the fast path, as on the express routes', async () => {
    const t = makeWitness();
    try {
      const A = new FakeLog('example.com/log-a').append(5);
      t.store.addLog(A.origin, A.vkey, null, 0);
      const registry = createRegistry();
      const lines: string[] = [];
      const ops = new HttpOps({ logger: callbackLogger((m) => lines.push(m)), registry, readiness: () => [] });
      const handler = createHandler({ witness: t.witness, before: [ops.middleware], metrics: new WitnessMetrics(registry, t.store) });
      const ok = await request(handler).post('/add-checkpoint').set('X-Request-Id', 'fast-1').send(`old 0\n\n${A.checkpoint()}`);
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.headers['x-request-id'], 'fast-1');
      assert.equal(ok.headers['content-length'], String(Buffer.byteLength(ok.text)));
      const bad = await request(handler).post('/add-checkpoint').set('X-Request-Id', 'fast-2').send('old 0\n\nnot a checkpoint');
      assert.equal(bad.status, 400, bad.text);
      assert.ok(lines.some((l) => l.startsWith('refused POST /add-checkpoint from ') && l.includes('400 malformed')), JSON.stringify(lines));
      const m = await registry.metrics();
      assert.match(m, /pkglog_witness_add_checkpoint_total\{outcome="cosigned"\} 1/);
      assert.match(m, /pkglog_witness_add_checkpoint_total\{outcome="malformed"\} 1/);
      assert.match(m, /pkglog_http_requests_total\{method="POST",code="200"\} 1/);
      const vkey = await request(handler).get('/vkey');
      assert.equal(vkey.status, 200);
      assert.equal(vkey.text, t.witness.vkey + '\n');
    } finally {
      t.close();
    }
  });
});
