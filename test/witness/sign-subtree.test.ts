/**
 * POST /sign-subtree (C2SP tlog-witness, OPTIONAL): the vectors of test/vectors/sign-subtree.json replayed against a
 * Witness with their seeds (deterministic ML-DSA-44: byte-identical answers), every answer's subtree/v1 signature
 * checked with @noble/post-quantum over a message built straight from tlog-cosignature (test/interop/independent.ts)
 * and the subtree hash recomputed independently; the live flow (add-checkpoint, then sign-subtree with the witness's
 * cosignatures); and every refusal: 400 (grammar, invalid subtree, end past the checkpoint), 404 (unknown origin, no
 * ML-DSA-44 key), 403 (no or a forged cosignature of the witness's own keys), 422 (proof or hash that does not verify).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { WitnessStore } from '../../witness/store.ts';
import { Witness } from '../../witness/witness.ts';
import { createApp } from '../../witness/app.ts';
import { formatSignSubtreeRequest, parseSignSubtreeRequest } from '../../core/sign-subtree.ts';
import { formatAddCheckpointRequest } from '../../core/witness-protocol.ts';
import { ed25519Signer, parseSignedNote, signNote } from '../../core/note.ts';
import { formatCheckpoint } from '../../core/checkpoint.ts';
import * as ind from '../interop/independent.ts';
import { MemoryLog } from '../support/memory-log.ts';
import { tempDir } from './helpers.ts';

const V = JSON.parse(readFileSync(new URL('../vectors/sign-subtree.json', import.meta.url), 'utf8')) as {
  origin: string;
  leaves: string[];
  log: { seed: string; vkey: string };
  witness: { name: string; ed25519Seed: string; mldsaSeed: string; vkeys: string[] };
  checkpoint: string;
  exchanges: Array<{ start: number; end: number; request: string; response: string }>;
};

/** RFC 6962 MTH, written out independently of core. */
function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 1) return ind.sha256(Buffer.from([0]), leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return ind.sha256(Buffer.from([1]), mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

function witnessOn(dir: string, opts: { mldsa?: boolean } = {}) {
  const store = WitnessStore.open(dir);
  store.addLog(V.origin, V.log.vkey, null, 0);
  const witness = new Witness({
    store, name: V.witness.name, seed: Buffer.from(V.witness.ed25519Seed, 'hex'),
    ...(opts.mldsa === false ? {} : { mldsaSeed: Buffer.from(V.witness.mldsaSeed, 'hex') }),
    now: () => 1_700_000_200_000,
  });
  return { store, witness, app: createApp({ witness }) };
}

const post = (app: ReturnType<typeof createApp>, path: string, body: Buffer | string) =>
  request(app).post(path).set('content-type', 'application/octet-stream').send(Buffer.from(body));

describe('witness: sign-subtree (C2SP tlog-witness)', function () {
  this.timeout(60_000);
  const tmp = tempDir('pkglog-sign-subtree-');
  const w = witnessOn(tmp.dir);
  after(() => {
    w.store.close();
    tmp.cleanup();
  });

  it('answers the vectors byte for byte; each answer is a subtree/v1 ML-DSA-44 cosignature, timestamp 0, that noble verifies', async () => {
    const pq = ind.parseVKey(V.witness.vkeys[1]!);
    assert.equal(pq.type, 0x06);
    for (const x of V.exchanges) {
      const r = await post(w.app, '/sign-subtree', x.request).expect(200);
      assert.equal(r.text, x.response, `[${x.start}, ${x.end})`);
      const lines = r.text.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, 'one line: the ML-DSA-44 key (cosignature/v1 cannot sign subtrees)');
      const sig = ind.parseSigLine(Buffer.from(lines[0]!, 'utf8'));
      assert.equal(sig.name, V.witness.name);
      assert.deepEqual(sig.keyId, ind.computeKeyId(pq.name, pq.type, pq.publicKey));
      const { timestamp, signature } = ind.splitMlDsaCosignature(sig.sig);
      assert.equal(timestamp, 0);
      const hash = mth(V.leaves.slice(x.start, x.end).map((l) => Buffer.from(l)));
      assert.deepEqual(parseSignSubtreeRequest(Buffer.from(x.request)).hash, hash, 'the request names the subtree\'s real hash');
      const msg = ind.subtreeV1Message({ cosignerName: V.witness.name, timestamp: 0, origin: V.origin, start: x.start, end: x.end, hash });
      assert.ok(ind.mldsa44Verify(pq.publicKey, msg, signature), 'noble verifies the subtree signature');
      assert.ok(!ind.mldsa44Verify(pq.publicKey, ind.subtreeV1Message({ cosignerName: V.witness.name, timestamp: 0, origin: V.origin, start: x.start, end: x.end + 1, hash }), signature));
    }
  });

  it('the live flow: add-checkpoint, then sign-subtree on the checkpoint with the witness\'s cosignatures', async () => {
    const tmp2 = tempDir('pkglog-sign-subtree-live-');
    const log = new MemoryLog('example.test/subtree-log');
    const store = WitnessStore.open(tmp2.dir);
    try {
      store.addLog(log.origin, log.vkey, null, 0);
      const witness = new Witness({ store, name: 'witness.test/live', seed: Buffer.alloc(32, 1), mldsaSeed: Buffer.alloc(32, 2), random: () => Buffer.alloc(32, 3) });
      const app = createApp({ witness });
      log.append(1000);
      const cosigned = await post(app, '/add-checkpoint', formatAddCheckpointRequest({ oldSize: 0, consistencyProof: [], checkpoint: Buffer.from(log.signedCheckpoint()) })).expect(200);
      const note = Buffer.from(log.signedCheckpoint() + cosigned.text);
      const body = formatSignSubtreeRequest({ start: 512, end: 768, hash: mth(log.entries.slice(512, 768)), proof: log.subtreeProof(512, 768), checkpoint: note });
      const r = await post(app, '/sign-subtree', body).expect(200);
      assert.match(r.text, /^— witness\.test\/live \S+\n$/);
      // The checkpoint signed by the log alone (no cosignature of the witness): 403.
      await post(app, '/sign-subtree', formatSignSubtreeRequest({ ...parseSignSubtreeRequest(body), checkpoint: Buffer.from(log.signedCheckpoint()) })).expect(403);
    } finally {
      store.close();
      tmp2.cleanup();
    }
  });

  it('refuses: 400 grammar, invalid subtree, end past the checkpoint; 404 unknown origin; 403 forged cosignature; 422 bad proof or hash', async () => {
    const x = V.exchanges[0]!; // [8, 13)
    const req = parseSignSubtreeRequest(Buffer.from(x.request));
    const send = (body: Buffer | string) => post(w.app, '/sign-subtree', body);
    await send(x.request.replace('subtree 8 13', 'subtree 08 13')).expect(400);
    await send(x.request.replace('subtree 8 13', 'subtree 8  13')).expect(400);
    await send(x.request.replace('\n\n', '\n')).expect(400);
    await send(formatSignSubtreeRequest({ ...req, proof: Array.from({ length: 64 }, () => req.hash) })).expect(400);
    await send(formatSignSubtreeRequest({ ...req, start: 3, end: 7 })).expect(400); // 3 is not a multiple of BIT_CEIL(4)
    await send(formatSignSubtreeRequest({ ...req, start: 8, end: 16 })).expect(400); // past the checkpoint's 14
    // Another origin, cosigned by the witness's keys all the same: 404.
    const other = signNote(formatCheckpoint({ origin: 'example.com/unknown', treeSize: 14, rootHash: req.hash, extensions: [] }), [ed25519Signer('example.com/unknown', Buffer.alloc(32, 9))]);
    await send(formatSignSubtreeRequest({ ...req, checkpoint: Buffer.from(other) })).expect(404);
    // A cosignature byte changed: it no longer verifies (403), as a checkpoint with only the log's signature.
    const note = parseSignedNote(V.checkpoint);
    const forged = note.signatures.map((s) => (s.name === V.witness.name ? { ...s, signature: Buffer.from(s.signature.map((b, i) => (i === 20 ? b ^ 1 : b))) } : s));
    const noteText = (sigs: typeof forged) => note.text + '\n' + sigs.map((s) => `— ${s.name} ${Buffer.concat([s.keyId, s.signature]).toString('base64')}\n`).join('');
    await send(formatSignSubtreeRequest({ ...req, checkpoint: Buffer.from(noteText(forged)) })).expect(403);
    await send(formatSignSubtreeRequest({ ...req, checkpoint: Buffer.from(noteText(note.signatures.filter((s) => s.name !== V.witness.name))) })).expect(403);
    // The proof or the hash changed: 422.
    await send(formatSignSubtreeRequest({ ...req, proof: req.proof.map((h, i) => (i === 1 ? Buffer.from(h.map((b, j) => (j === 0 ? b ^ 1 : b))) : h)) })).expect(422);
    await send(formatSignSubtreeRequest({ ...req, hash: mth([Buffer.from('leaf 8')]) })).expect(422);
    await send(formatSignSubtreeRequest({ ...req, proof: req.proof.slice(1) })).expect(422);
  });

  it('a witness without an ML-DSA-44 key cannot sign subtrees: 404', async () => {
    const tmp3 = tempDir('pkglog-sign-subtree-ed-');
    const ed = witnessOn(tmp3.dir, { mldsa: false });
    try {
      const r = await post(ed.app, '/sign-subtree', V.exchanges[0]!.request).expect(404);
      assert.match(r.text, /ML-DSA-44/);
    } finally {
      ed.store.close();
      tmp3.cleanup();
    }
  });
});
