/** The read API: C2SP tlog-tiles paths, headers and contents; JSON proofs, entries and lookups; errors as JSON 4xx. */
import assert from 'node:assert/strict';
import request from 'supertest';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { leafHash } from '../../core/hash.ts';
import { verifyConsistency, verifyInclusion } from '../../core/merkle.ts';
import { parseVerifierKey, verifyNote } from '../../core/note.ts';
import { parseEntryBundle } from '../../core/tiles.ts';
import { parseTlogProof } from '../../core/tlog-proof.ts';
import { submissionBody } from '../support/submissions.ts';
import { openTestLog, removeDir } from '../support/log-harness.ts';

const N = 300;

describe('server: read API', () => {
  let log: Awaited<ReturnType<typeof openTestLog>>;
  let leaves: Buffer[];
  const binary = (res: request.Response, cb: (err: Error | null, body: Buffer) => void) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => cb(null, Buffer.concat(chunks)));
  };
  const get = (path: string) => request(log.app).get(path).buffer(true).parse(binary);

  before(async () => {
    log = await openTestLog();
    // two batches so a checkpoint of size 100 exists as well
    await request(log.app).post('/v1/entries/batch').send({ entries: Array.from({ length: 100 }, (_, i) => submissionBody(i)) }).expect(200);
    const res = await request(log.app).post('/v1/entries/batch').send({ entries: Array.from({ length: N - 100 }, (_, i) => submissionBody(100 + i)) }).expect(200);
    assert.equal(res.body.results.length, N - 100);
    leaves = [];
    for (let i = 0; i < N; i++) leaves.push((await log.store.entryLeaf(i))!);
  });
  after(async () => {
    await log.close();
    removeDir(log.dataDir);
  });

  const latest = async () => {
    const res = await get('/checkpoint').expect(200);
    const { note } = verifyNote(res.body, [parseVerifierKey(log.vkey)]);
    return { res, cp: parseCheckpoint(note.text) };
  };

  it('serves the checkpoint as a signed note, short-lived, text/plain; charset=utf-8', async () => {
    const { res, cp } = await latest();
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.match(res.headers['cache-control'], /max-age=[0-9]\b|no-cache/);
    assert.equal(cp.treeSize, N);
    assert.equal(cp.origin, log.origin);
  });

  it('serves full and partial hash tiles and entry bundles with the right widths and headers', async () => {
    const full = await get('/tile/0/000').expect(200);
    assert.equal(full.headers['content-type'], 'application/octet-stream');
    assert.match(full.headers['cache-control'], /immutable/);
    assert.equal(full.body.length, 256 * 32);
    for (let i = 0; i < 256; i += 51) assert.ok(full.body.subarray(i * 32, i * 32 + 32).equals(leafHash(leaves[i]!)));
    const partial = await get(`/tile/0/001.p/${N - 256}`).expect(200);
    assert.equal(partial.body.length, (N - 256) * 32);
    assert.ok(partial.body.subarray(0, 32).equals(leafHash(leaves[256]!)));
    // a narrower partial tile (for the older checkpoint of size 100) is a prefix
    const older = await get('/tile/0/000.p/100').expect(200);
    assert.ok(older.body.equals(full.body.subarray(0, 100 * 32)));
    const level1 = await get('/tile/1/000.p/1').expect(200);
    assert.equal(level1.body.length, 32);
    const bundle = await get('/tile/entries/000').expect(200);
    const entries = parseEntryBundle(bundle.body);
    assert.equal(entries.length, 256);
    assert.ok(entries[7]!.equals(leaves[7]!));
    const pbundle = await get(`/tile/entries/001.p/${N - 256}`).expect(200);
    assert.equal(parseEntryBundle(pbundle.body).length, N - 256);
  });

  it('answers 404 beyond the tree and 400 for malformed tile paths', async () => {
    for (const p of ['/tile/0/001', `/tile/0/001.p/${N - 255}`, '/tile/0/002.p/1', '/tile/1/000', '/tile/2/000.p/1', '/tile/entries/001', '/tile/entries/005.p/3']) {
      const res = await request(log.app).get(p).expect(404);
      assert.equal(res.body.error, 'not_found', p);
    }
    for (const p of ['/tile/0/1', '/tile/0/000.p/0', '/tile/0/000.p/256', '/tile/64/000', '/tile/0/x000/001', '/tile/x/000', '/tile/0/000.p/01']) {
      const res = await request(log.app).get(p).expect(400);
      assert.equal(res.body.error, 'malformed', p);
    }
  });

  it('bounds every tile coordinate by the tree: no index aliases another level\'s tile', async () => {
    const real = await get('/tile/1/000.p/1').expect(200);
    assert.equal(real.body.length, 32);
    // index 2^46 at level 0 used to share the storage key of tile 1/0 and was served, immutable, with its bytes
    for (const p of ['/tile/0/x070/x368/x744/x177/664.p/1', '/tile/0/x070/x368/x744/x177/664', '/tile/0/x140/x737/x488/x355/328.p/1', '/tile/entries/x070/x368/x744/x177/664.p/1', '/tile/63/000.p/1', '/tile/0/x009/x007/x199/x254/x740/991']) {
      const res = await request(log.app).get(p).expect(404);
      assert.equal(res.body.error, 'not_found', p);
      assert.equal(res.headers['cache-control'], undefined, `${p}: a 404 is never marked immutable`);
    }
  });

  it('serves inclusion proofs by index and by leaf hash that verify against checkpoints', async () => {
    const { cp } = await latest();
    for (const index of [0, 1, 255, 256, N - 1]) {
      const res = await request(log.app).get(`/v1/proof/inclusion?index=${index}&size=${N}`).expect(200);
      assert.equal(res.body.index, index);
      assert.equal(res.body.treeSize, N);
      verifyInclusion(index, N, leafHash(leaves[index]!), res.body.proof.map((p: string) => Buffer.from(p, 'base64')), cp.rootHash);
    }
    const lh = leafHash(leaves[123]!).toString('base64');
    const res = await request(log.app).get('/v1/proof/inclusion').query({ leafHash: lh, size: N }).expect(200);
    assert.equal(res.body.index, 123);
    const small = parseCheckpoint(verifyNote((await get('/v1/checkpoints/100').expect(200)).body, [parseVerifierKey(log.vkey)]).note.text);
    const old = await request(log.app).get('/v1/proof/inclusion?index=42&size=100').expect(200);
    verifyInclusion(42, 100, leafHash(leaves[42]!), old.body.proof.map((p: string) => Buffer.from(p, 'base64')), small.rootHash);
  });

  it('serves consistency proofs that verify', async () => {
    const { cp } = await latest();
    const small = parseCheckpoint(verifyNote((await get('/v1/checkpoints/100').expect(200)).body, [parseVerifierKey(log.vkey)]).note.text);
    const res = await request(log.app).get(`/v1/proof/consistency?old=100&size=${N}`).expect(200);
    assert.equal(res.body.old, 100);
    verifyConsistency(100, N, small.rootHash, cp.rootHash, res.body.proof.map((p: string) => Buffer.from(p, 'base64')));
    assert.deepEqual((await request(log.app).get(`/v1/proof/consistency?old=${N}&size=${N}`).expect(200)).body.proof, []);
  });

  it('answers clear 4xx for bad proof parameters', async () => {
    const cases: Array<[string, number]> = [
      [`/v1/proof/inclusion?index=${N}&size=${N}`, 400],
      [`/v1/proof/inclusion?index=0&size=${N + 1}`, 400],
      ['/v1/proof/inclusion?index=0&size=0', 400],
      ['/v1/proof/inclusion?index=01&size=5', 400],
      ['/v1/proof/inclusion?index=-1&size=5', 400],
      ['/v1/proof/inclusion?index=1e3&size=5', 400],
      ['/v1/proof/inclusion?size=5', 400],
      ['/v1/proof/inclusion?index=0&index=1&size=5', 400],
      ['/v1/proof/inclusion?leafHash=AAAA&size=5', 400],
      [`/v1/proof/inclusion?leafHash=${encodeURIComponent(Buffer.alloc(32).toString('base64'))}&size=5`, 404],
      [`/v1/proof/consistency?old=${N + 1}&size=${N}`, 400],
      ['/v1/proof/consistency?old=1&size=99999999999999999999', 400],
    ];
    for (const [path, status] of cases) {
      const res = await request(log.app).get(path);
      assert.equal(res.status, status, path);
      assert.equal(typeof res.body.error, 'string', path);
      assert.equal(typeof res.body.message, 'string', path);
    }
  });

  it('serves entries, their tlog-proofs and lookups', async () => {
    const e = await request(log.app).get('/v1/entries/5').expect(200);
    assert.equal(e.body.index, 5);
    assert.equal(e.body.version, '1.0.5');
    assert.equal(e.body.leaf, leaves[5]!.toString('base64'));
    assert.equal(e.body.leafHash, leafHash(leaves[5]!).toString('base64'));
    await request(log.app).get(`/v1/entries/${N}`).expect(404);
    await request(log.app).get('/v1/entries/abc').expect(400);

    const p = await get('/v1/entries/7/proof').expect(200);
    assert.equal(p.headers['content-type'], 'text/plain; charset=utf-8');
    const proof = parseTlogProof(p.body);
    assert.ok(proof.extra!.equals(leaves[7]!));
    const cp = parseCheckpoint(verifyNote(proof.checkpoint, [parseVerifierKey(log.vkey)]).note.text);
    verifyInclusion(7, cp.treeSize, leafHash(leaves[7]!), proof.inclusionProof, cp.rootHash);

    const one = await request(log.app).get('/v1/lookup/pypi/requests/1.0.9').expect(200);
    assert.deepEqual(one.body.entries.map((x: { index: number }) => x.index), [9]);
    assert.equal(one.body.next, undefined);
    let cursor: string | undefined;
    const seen: number[] = [];
    do {
      const r = await request(log.app).get('/v1/lookup/pypi/requests').query(cursor ? { cursor, limit: 100 } : { limit: 100 }).expect(200);
      seen.push(...r.body.entries.map((x: { index: number }) => x.index));
      cursor = r.body.next;
    } while (cursor !== undefined);
    assert.deepEqual(seen, Array.from({ length: N }, (_, i) => i));
    const sha = (await request(log.app).get('/v1/entries/11').expect(200)).body.sha256;
    const bySha = await request(log.app).get(`/v1/lookup/sha256/${sha}`).expect(200);
    assert.deepEqual(bySha.body.entries.map((x: { index: number }) => x.index), [11]);
    await request(log.app).get('/v1/lookup/sha256/XYZ').expect(400);
    assert.deepEqual((await request(log.app).get('/v1/lookup/npm/nothing').expect(200)).body.entries, []);
  });

  it('serves old checkpoints by size, the vkey, and JSON 404s for unknown routes', async () => {
    await request(log.app).get('/v1/checkpoints/99').expect(404);
    await request(log.app).get('/v1/checkpoints/0').expect(200);
    const v = await get('/vkey').expect(200);
    assert.equal(v.body.toString(), log.vkey + '\n');
    const res = await request(log.app).get('/nope').expect(404);
    assert.equal(res.body.error, 'not_found');
  });
});
