/**
 * The explorer's checks outside the browser: the same functions the page runs (explorer/verify.ts) against a real
 * log's proofs and published policy; the browser stand-in for node:crypto (explorer/crypto-shim.ts) agrees with
 * node:crypto on SHA-256 and Ed25519 (fast-check); formatPolicy is canonical (parse ∘ format ∘ parse = parse).
 */
import assert from 'node:assert/strict';
import { createHash, hash as nodeHash } from 'node:crypto';
import fc from 'fast-check';
import request from 'supertest';
import { ed25519Sign, ed25519Verify, keyPairFromSeed } from '../../core/ed25519.ts';
import { isPkglogError } from '../../core/errors.ts';
import { formatPolicy, parsePolicy, verifyCheckpointWithPolicy } from '../../core/policy.ts';
import { ed25519Signer, formatVerifierKey, signNote, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519, SIG_TYPE_MLDSA44, type Signer } from '../../core/note.ts';
import { cosignatureSigner, mldsaCosigner } from '../../core/cosignature.ts';
import { formatCheckpoint } from '../../core/checkpoint.ts';
import * as shim from '../../explorer/crypto-shim.ts';
import { publisherKeyChanges, verifyEntryProof } from '../../explorer/verify.ts';
import { logPolicy } from '../../server/explorer.ts';
import { openTestLog, removeDir } from '../support/log-harness.ts';
import { artifact, submissionBody } from '../support/submissions.ts';

describe('explorer: verification code (Node)', () => {
  let log: Awaited<ReturnType<typeof openTestLog>>;
  let policy: ReturnType<typeof parsePolicy>;
  let proof: string;

  before(async () => {
    log = await openTestLog();
    await request(log.app).post('/v1/entries/batch').send({ entries: Array.from({ length: 5 }, (_, i) => submissionBody(i)) }).expect(200);
    const p = await request(log.app).get('/v1/policy').expect(200).expect('content-type', 'text/plain; charset=utf-8');
    policy = parsePolicy(p.text);
    proof = (await request(log.app).get('/v1/entries/3/proof').expect(200)).text;
  });
  after(async () => {
    await log.close();
    removeDir(log.dataDir);
  });

  it('GET /v1/policy names the log keys (Ed25519, then ML-DSA-44) and no witness (quorum none) when none is configured', () => {
    assert.deepEqual(policy.logs.map((l) => [l.verifier.name, l.verifier.type]), [[log.origin, SIG_TYPE_ED25519], [log.origin, SIG_TYPE_MLDSA44]]);
    assert.deepEqual(policy.witnesses, []);
    assert.equal(policy.quorum.kind, 'none');
  });

  it('verifies an entry proof from the log (index, SHA-256, inclusion, log signature)', () => {
    const v = verifyEntryProof(proof, policy, { index: 3, sha256: artifact(3).sha256 });
    assert.equal(v.index, 3);
    assert.equal(v.entry.filename, artifact(3).filename);
    assert.equal(v.checkpoint.treeSize, 5);
    assert.equal(v.checkpoint.logKey, log.origin);
  });

  it('refuses a proof for another entry, another file, or with any byte of its proof or checkpoint changed', () => {
    assert.throws(() => verifyEntryProof(proof, policy, { index: 2 }), (e) => isPkglogError(e, 'invalid_proof'));
    assert.throws(() => verifyEntryProof(proof, policy, { sha256: artifact(2).sha256 }), (e) => isPkglogError(e, 'invalid_proof'));
    const bytes = Buffer.from(proof);
    let refused = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = Buffer.from(bytes);
      b[i] = b[i]! ^ 0x01;
      try {
        verifyEntryProof(b.toString('latin1'), policy, { index: 3 });
      } catch {
        refused++;
      }
    }
    assert.equal(refused, bytes.length, 'every one-bit change is refused');
  });

  it('logPolicy: witnesses by key name and a k-of-n group; the text round-trips through parsePolicy', () => {
    const w = [1, 2, 3].map((i) => formatVerifierKey(`witness.test/w${i}`, SIG_TYPE_COSIGNATURE_V1, keyPairFromSeed(Buffer.alloc(32, i)).publicKey));
    const text = logPolicy([log.vkey], w.map((k) => [k]), 2);
    const p = parsePolicy(text);
    assert.deepEqual(p.witnesses.map((x) => x.name), ['witness.test/w1', 'witness.test/w2', 'witness.test/w3']);
    assert.equal(p.quorum.kind === 'group' && p.quorum.threshold, 2);
    assert.equal(formatPolicy(p), text);
  });

  it('logPolicy: a log with Ed25519 + ML-DSA-44 keys and witnesses with two keys each; verify and --require-pq use it', () => {
    const now = () => 1_800_000_000;
    const logEd = ed25519Signer('example.test/two-key-log', Buffer.alloc(32, 40));
    const logPq = mldsaCosigner('example.test/two-key-log', Buffer.alloc(32, 41), { timestamp: now });
    const ws = [1, 2, 3].map((i) => [cosignatureSigner(`witness.test/k${i}`, Buffer.alloc(32, 50 + i), now), mldsaCosigner(`witness.test/k${i}`, Buffer.alloc(32, 60 + i), { timestamp: now })] as const);
    const vk = (s: { name: string; type: number; publicKey: Uint8Array }) => formatVerifierKey(s.name, s.type, s.publicKey);
    // Witness 3 has one key only: it is its own slot.
    const text = logPolicy([vk(logEd), vk(logPq)], [[vk(ws[0]![0]), vk(ws[0]![1])], [vk(ws[1]![0]), vk(ws[1]![1])], [vk(ws[2]![0])]], 2);
    assert.equal(text, [
      `log ${vk(logEd)}`, `log ${vk(logPq)}`,
      `witness witness.test/k1 ${vk(ws[0]![0])}`, `witness witness.test/k1-pq ${vk(ws[0]![1])}`,
      `witness witness.test/k2 ${vk(ws[1]![0])}`, `witness witness.test/k2-pq ${vk(ws[1]![1])}`,
      `witness witness.test/k3 ${vk(ws[2]![0])}`,
      'group witness.test/k1-any any witness.test/k1 witness.test/k1-pq',
      'group witness.test/k2-any any witness.test/k2 witness.test/k2-pq',
      'group witnesses 2 witness.test/k1-any witness.test/k2-any witness.test/k3',
      'quorum witnesses', '',
    ].join('\n'));
    const p = parsePolicy(text);
    assert.equal(formatPolicy(p), text);
    const body = formatCheckpoint({ origin: logEd.name, treeSize: 9, rootHash: Buffer.alloc(32, 1), extensions: [] });
    const signed = (signers: Signer[]) => signNote(body, signers);
    // Both keys of one witness fill one slot: two slots need two witnesses.
    assert.throws(() => verifyCheckpointWithPolicy(p, signed([logEd, ws[0]![0], ws[0]![1]])), (e) => isPkglogError(e, 'quorum_not_met'));
    assert.equal(verifyCheckpointWithPolicy(p, signed([logEd, ws[0]![0], ws[1]![1]])).cosigners.length, 2);
    assert.equal(verifyCheckpointWithPolicy(p, signed([logEd, ws[0]![0], ws[2]![0]])).cosigners.length, 2);
    // --require-pq: the log's ML-DSA cosignature and two witnesses' ML-DSA cosignatures; Ed25519 ones do not count.
    const pq = { requirePostQuantum: true };
    assert.equal(verifyCheckpointWithPolicy(p, signed([logEd, logPq, ws[0]![1], ws[1]![1]]), pq).cosigners.length, 2);
    assert.throws(() => verifyCheckpointWithPolicy(p, signed([logEd, logPq, ws[0]![1], ws[2]![0]]), pq), (e) => isPkglogError(e, 'quorum_not_met'));
    assert.throws(() => verifyCheckpointWithPolicy(p, signed([logEd, ws[0]![1], ws[1]![1]]), pq), (e) => isPkglogError(e, 'unknown_key') || isPkglogError(e, 'bad_signature'));
  });

  it('formatPolicy is canonical: nested groups, any/all/k thresholds, URLs', () => {
    const v = (i: number) => formatVerifierKey(`w${i}.example`, SIG_TYPE_COSIGNATURE_V1, keyPairFromSeed(Buffer.alloc(32, i)).publicKey);
    const text = `log ${log.vkey} https://log.example/\n`
      + `witness a ${v(1)} https://a.example/\nwitness b ${v(2)}\nwitness c ${v(3)}\nwitness d ${v(4)}\nwitness e ${v(5)}\n`
      + `group ab any a b\ngroup cd all c d\ngroup top 2 ab cd e\nquorum top\n`;
    assert.equal(formatPolicy(parsePolicy(text)), text);
    assert.equal(formatPolicy(parsePolicy(`log ${log.vkey}\nquorum none\n`)), `log ${log.vkey}\nquorum none\n`);
  });

  it('publisherKeyChanges marks each entry signed by another key than the one before it', () => {
    assert.deepEqual(publisherKeyChanges([{ publisherKey: 'a' }, { publisherKey: 'a' }, { publisherKey: 'b' }, { publisherKey: 'a' }]), [false, false, true, true]);
    assert.deepEqual(publisherKeyChanges([]), []);
  });

  it('the browser crypto stand-in agrees with node:crypto: SHA-256 (one-shot and incremental) and Ed25519 verification', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 50 }), (a, b) => {
      const whole = Buffer.concat([a, b]);
      assert.deepEqual(shim.hash('sha256', whole), nodeHash('sha256', whole, 'buffer'));
      assert.deepEqual(shim.createHash('sha256').update(a).update(b).digest(), createHash('sha256').update(whole).digest());
    }));
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 100 }), fc.nat(63), (seed, msg, flip) => {
      const k = keyPairFromSeed(seed);
      const sig = ed25519Sign(k, msg);
      const key = shim.createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), k.publicKey]), format: 'der', type: 'spki' });
      assert.equal(shim.verify(null, msg, key, sig), true);
      const bad = Buffer.from(sig);
      bad[flip] = bad[flip]! ^ 0x80;
      assert.equal(shim.verify(null, msg, key, bad), ed25519Verify(k.publicKey, msg, bad));
    }), { numRuns: 50 });
  });
});
