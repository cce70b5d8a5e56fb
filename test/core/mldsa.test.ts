/**
 * ML-DSA-44 (signature type 0x06, tlog-cosignature subtree/v1): committed vectors checked against a second,
 * independent computation (test/interop/independent.ts: the message re-encoded from the spec's struct, the
 * signature checked with @noble/post-quantum directly), plus properties: round trips, any flipped byte rejected,
 * unknown signature types ignored, the policy (0x06 logs and witnesses, post-quantum only).
 */
import { mldsaCosigner, mldsaCosignatureVerifier, checkpointCosignedMessage, cosignatureSigner, cosignatureTimestamp, verifySubtreeSignature, COSIGNATURE_MLDSA44_SIZE } from '../../core/cosignature.ts';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import fc from 'fast-check';
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { PkglogError } from '../../core/errors.ts';
import {
  ed25519Signer,
  formatSignatureLine,
  formatSignerKey,
  formatVerifierKey,
  parseSignedNote,
  parseSignerKey,
  parseSignerKeyFields,
  parseVerifierKey,
  signNote,
  verifyNote,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  SIG_TYPE_MLDSA44,
} from '../../core/note.ts';
import { formatCosignedMessage, parseCosignedMessage, SUBTREE_V1_LABEL, type CosignedMessage } from '../../core/subtree.ts';
import { mldsa44KeyPairFromSeed, mldsa44Sign, mldsa44Verify } from '../../core/mldsa.ts';
import { parsePolicy, postQuantumPolicy, verifyCheckpointWithPolicy } from '../../core/policy.ts';
import * as ind from '../interop/independent.ts';

const V = JSON.parse(readFileSync(new URL('../vectors/mldsa44.json', import.meta.url), 'utf8'));

function throwsCode(f: () => unknown, code: string): void {
  assert.throws(f, (e: unknown) => e instanceof PkglogError && e.code === code);
}

const ORIGIN = 'example.com/behind-the-sofa';
const CHECKPOINT: string = V.checkpoint;
const logKey = V.keys[0];
const witnessKey = V.keys[1];

describe('core ML-DSA-44 (type 0x06, subtree/v1)', function () {
  this.timeout(120_000); // pure-JS ML-DSA on a loaded machine

  describe('committed vectors, checked independently', () => {
    it('vkeys: independent parse (key ID = SHA-256(name ‖ "\\n" ‖ 0x06 ‖ key)[:4]), 1,312-byte keys, same key from the seed', () => {
      for (const k of V.keys) {
        const iv = ind.parseVKey(k.vkey);
        assert.equal(iv.type, 0x06);
        assert.equal(iv.publicKey.length, 1312);
        assert.equal(iv.keyId.toString('hex'), k.keyId);
        assert.ok(ind.computeKeyId(k.name, 0x06, iv.publicKey).equals(iv.keyId));
        // The seed is the FIPS 204 key generation seed: noble's own keygen gives the same public key.
        assert.ok(Buffer.from(ml_dsa44.keygen(Buffer.from(k.seed, 'hex')).publicKey).equals(iv.publicKey));
        const cv = parseVerifierKey(k.vkey);
        assert.equal(cv.type, SIG_TYPE_MLDSA44);
        assert.ok(cv.publicKey.equals(iv.publicKey));
        assert.equal(formatVerifierKey(k.name, SIG_TYPE_MLDSA44, iv.publicKey), k.vkey);
        const f = parseSignerKeyFields(k.signerKey);
        assert.equal(f.type, SIG_TYPE_MLDSA44);
        assert.equal(f.seed.toString('hex'), k.seed);
        assert.ok(f.publicKey.equals(iv.publicKey));
        assert.equal(formatSignerKey(k.name, SIG_TYPE_MLDSA44, Buffer.from(k.seed, 'hex')), k.signerKey);
      }
    });

    it('the subtree/v1 messages re-encode byte for byte from the spec struct (core and independent)', () => {
      const cp = ind.parseCheckpointText(CHECKPOINT);
      for (const m of V.checkpointMessages) {
        const byHand = ind.subtreeV1Message({ cosignerName: m.cosigner, timestamp: m.timestamp, origin: cp.origin, start: 0, end: cp.size, hash: cp.root });
        assert.equal(byHand.toString('hex'), m.message);
        assert.equal(checkpointCosignedMessage(m.cosigner, CHECKPOINT, m.timestamp).toString('hex'), m.message);
        const parsed = parseCosignedMessage(Buffer.from(m.message, 'hex'));
        assert.deepEqual({ ...parsed, hash: parsed.hash.toString('base64') }, {
          cosignerName: m.cosigner, timestamp: m.timestamp, origin: ORIGIN, start: 0, end: 20852163, hash: 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=',
        });
      }
      const s = V.subtree;
      const byHand = ind.subtreeV1Message({ cosignerName: s.cosigner, timestamp: 0, origin: s.origin, start: s.start, end: s.end, hash: Buffer.from(s.hash, 'hex') });
      assert.equal(byHand.toString('hex'), s.message);
      // The label is the 12 bytes "subtree/v1\n\0", then a 1-byte length of the cosigner name.
      assert.equal(byHand.subarray(0, 12).toString('latin1'), 'subtree/v1\n\0');
      assert.equal(byHand[12], Buffer.byteLength(s.cosigner));
    });

    it('the signed checkpoint: Ed25519 log + ML-DSA log + ML-DSA witness signatures verify independently (noble, spec message)', () => {
      const keys = [ind.parseVKey(V.ed25519Log.vkey), ind.parseVKey(logKey.vkey), ind.parseVKey(witnessKey.vkey)];
      const n = ind.openNote(V.signedCheckpointWithUnknown, keys);
      assert.deepEqual(n.verified.map((v) => [v.key.name, v.key.type, v.timestamp]), [
        [ORIGIN, 0x01, undefined],
        [ORIGIN, 0x06, 1679315147],
        ['witness.example.com/w1', 0x06, 1679315154],
      ]);
      // Signature line bytes: key ID (4) ‖ timestamp u64 BE (8) ‖ signature (2,420).
      const line = ind.parseNote(V.signedCheckpoint).sigs[1]!;
      assert.equal(line.keyId.length + line.sig.length, 4 + 8 + 2420);
      assert.equal(line.sig.readBigUInt64BE(0), 1679315147n);
      // And core agrees.
      const c = verifyNote(V.signedCheckpointWithUnknown, [V.ed25519Log.vkey, logKey.vkey, witnessKey.vkey].map(parseVerifierKey));
      assert.deepEqual(c.verified.map((v) => [v.verifier.type, cosignatureTimestampOrNull(v.signature.signature)]), [
        [0x01, null],
        [0x06, 1679315147],
        [0x06, 1679315154],
      ]);
    });

    it('core with deterministic signing reproduces the committed signatures exactly', () => {
      const log = parseSignerKey(logKey.signerKey, () => 1679315147);
      const witness = parseSignerKey(witnessKey.signerKey, () => 1679315154);
      const ed = ed25519Signer(ORIGIN, Buffer.from(V.ed25519Log.seed, 'hex'));
      assert.equal(signNote(CHECKPOINT, [ed, log, witness]), V.signedCheckpoint);
      const w = mldsaCosigner(witnessKey.name, Buffer.from(witnessKey.seed, 'hex'), { timestamp: () => 1 });
      const s = V.subtree;
      const sub = { origin: s.origin, start: s.start, end: s.end, hash: Buffer.from(s.hash, 'hex'), timestamp: 0 };
      assert.equal(formatSignatureLine({ name: w.name, keyId: w.keyId, signature: w.signSubtree(sub) }), s.signatureLine);
    });

    it('the subtree [8, 13) cosignature (timestamp 0) verifies independently and with core', () => {
      const s = V.subtree;
      const line = ind.parseSigLine(Buffer.from(s.signatureLine.slice(0, -1), 'utf8'));
      const { timestamp, signature } = ind.splitMlDsaCosignature(line.sig);
      assert.equal(timestamp, 0);
      const pk = ind.parseVKey(witnessKey.vkey).publicKey;
      assert.ok(ind.mldsa44Verify(pk, Buffer.from(s.message, 'hex'), signature));
      const sub = { origin: s.origin, start: s.start, end: s.end, hash: Buffer.from(s.hash, 'hex') };
      assert.ok(verifySubtreeSignature(witnessKey.name, pk, sub, line.sig));
      assert.ok(!verifySubtreeSignature(witnessKey.name, pk, { ...sub, end: 14 }, line.sig));
      assert.ok(!verifySubtreeSignature('witness.example.com/w2', pk, sub, line.sig)); // the name is signed
      // A non-zero timestamp on a subtree with start ≠ 0 is invalid per spec, even if someone signed it.
      const forged = Buffer.from(line.sig);
      forged.writeBigUInt64BE(5n, 0);
      assert.ok(!verifySubtreeSignature(witnessKey.name, pk, sub, forged));
    });
  });

  describe('the subtree/v1 message', () => {
    const arbName = fc.string({ minLength: 1, maxLength: 60 }).filter((s) => !/\p{Cs}/u.test(s) && Buffer.byteLength(s) <= 255);
    const arbMsg: fc.Arbitrary<CosignedMessage> = fc
      .record({
        cosignerName: arbName,
        origin: arbName,
        start: fc.nat({ max: 2 ** 40 }),
        len: fc.integer({ min: 1, max: 2 ** 40 }),
        timestamp: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        hash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      })
      .map(({ start, len, timestamp, hash, ...r }) => ({ ...r, start, end: start + len, timestamp: start === 0 ? timestamp : 0, hash: Buffer.from(hash) }));

    it('format/parse round trip, equal to the independent encoding, and any truncation or extra byte rejected', () => {
      fc.assert(
        fc.property(arbMsg, fc.nat(), (m, cut) => {
          const b = formatCosignedMessage(m);
          assert.ok(b.equals(ind.subtreeV1Message(m)));
          assert.deepEqual(parseCosignedMessage(b), m);
          throwsCode(() => parseCosignedMessage(b.subarray(0, cut % b.length)), 'malformed');
          throwsCode(() => parseCosignedMessage(Buffer.concat([b, Buffer.from([0])])), 'malformed');
        }),
      );
    });

    it('enforces the spec rules: names 1..255 bytes, start ≠ 0 ⇒ timestamp 0, start < end (or the empty tree), label', () => {
      const base = { cosignerName: 'w', origin: 'o', start: 0, end: 1, timestamp: 1, hash: Buffer.alloc(32) };
      assert.equal(formatCosignedMessage(base).subarray(0, 12).toString('latin1'), 'subtree/v1\n\0');
      assert.ok(formatCosignedMessage({ ...base, end: 0 })); // checkpoint of the empty tree
      throwsCode(() => formatCosignedMessage({ ...base, start: 1, end: 2 }), 'malformed');
      assert.ok(formatCosignedMessage({ ...base, start: 1, end: 2, timestamp: 0 }));
      throwsCode(() => formatCosignedMessage({ ...base, start: 2, end: 2, timestamp: 0 }), 'malformed');
      throwsCode(() => formatCosignedMessage({ ...base, cosignerName: '' }), 'malformed');
      throwsCode(() => formatCosignedMessage({ ...base, origin: 'x'.repeat(256) }), 'malformed');
      assert.ok(formatCosignedMessage({ ...base, origin: 'x'.repeat(255) }));
      throwsCode(() => formatCosignedMessage({ ...base, hash: Buffer.alloc(31) }), 'malformed');
      const b = formatCosignedMessage(base);
      const badLabel = Buffer.from(b);
      badLabel[11] = 0x0a;
      throwsCode(() => parseCosignedMessage(badLabel), 'malformed');
      const zeroLen = Buffer.concat([SUBTREE_V1_LABEL, Buffer.from([0]), b.subarray(14)]);
      throwsCode(() => parseCosignedMessage(zeroLen), 'malformed');
      const tsWithStart = formatCosignedMessage({ ...base, start: 1, end: 2, timestamp: 0 });
      tsWithStart.writeBigUInt64BE(9n, 12 + 1 + 1);
      throwsCode(() => parseCosignedMessage(tsWithStart), 'malformed');
    });
  });

  describe('signing and verification', () => {
    const seed = createHash('sha256').update('mldsa test key').digest();
    const w = mldsaCosigner('w.example/pq', seed, { timestamp: () => 1700000000 });
    const wv = mldsaCosignatureVerifier('w.example/pq', w.publicKey);
    const logEd = ed25519Signer(ORIGIN, createHash('sha256').update('ed log').digest());
    const logEdV = parseVerifierKey(formatVerifierKey(ORIGIN, SIG_TYPE_ED25519, logEd.publicKey));

    it('any flipped byte in an ML-DSA signature line, or in the signed checkpoint fields, is rejected', () => {
      const signed = signNote(CHECKPOINT, [w]);
      const sig = parseSignedNote(signed).signatures[0]!;
      assert.equal(sig.signature.length, COSIGNATURE_MLDSA44_SIZE);
      fc.assert(
        fc.property(fc.nat({ max: COSIGNATURE_MLDSA44_SIZE - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
          const bad = Buffer.from(sig.signature);
          bad[i]! ^= x;
          assert.equal(wv.verify(Buffer.from(CHECKPOINT), bad), false);
          throwsCode(() => verifyNote(formatSignedNoteLike(CHECKPOINT, { ...sig, signature: bad }), [wv]), 'bad_signature');
        }),
        { numRuns: 25 },
      );
      // Text changes that reach the signed fields (origin, size, root) are rejected too.
      for (const other of [CHECKPOINT.replace('20852163', '20852164'), CHECKPOINT.replace('sofa', 'sofb'), CHECKPOINT.replace('CsUY', 'CsUZ')]) {
        assert.equal(wv.verify(Buffer.from(other), sig.signature), false);
      }
    });

    it('extension lines are not signed (tlog-cosignature: no statement about them)', () => {
      const sig = parseSignedNote(signNote(CHECKPOINT, [w])).signatures[0]!;
      assert.ok(wv.verify(Buffer.from(CHECKPOINT + 'an extension line\n'), sig.signature));
    });

    it('the cosigner clock must give a non-zero timestamp; a zero-timestamp start-0 cosignature still verifies', () => {
      const zero = mldsaCosigner('w.example/pq', seed, { timestamp: () => 0 });
      throwsCode(() => signNote(CHECKPOINT, [zero]), 'internal');
      const cp = ind.parseCheckpointText(CHECKPOINT);
      const s = w.signSubtree({ origin: cp.origin, start: 0, end: cp.size, hash: cp.root, timestamp: 0 });
      assert.equal(cosignatureTimestamp(s), 0);
      assert.ok(wv.verify(Buffer.from(CHECKPOINT), s));
      throwsCode(() => w.signSubtree({ origin: cp.origin, start: 4, end: 8, hash: cp.root, timestamp: 1 }), 'malformed');
    });

    it('hedged signing with caller randomness: different signatures, all verify (noble directly too)', () => {
      const h = mldsaCosigner('w.example/pq', seed, { timestamp: () => 1700000000, random: () => randomBytes(32) });
      const a = parseSignedNote(signNote(CHECKPOINT, [h])).signatures[0]!;
      const b = parseSignedNote(signNote(CHECKPOINT, [h])).signatures[0]!;
      assert.ok(!a.signature.equals(b.signature));
      const msg = checkpointCosignedMessage('w.example/pq', CHECKPOINT, 1700000000);
      for (const s of [a, b]) {
        assert.ok(wv.verify(Buffer.from(CHECKPOINT), s.signature));
        assert.ok(ml_dsa44.verify(s.signature.subarray(8), msg, w.publicKey));
      }
      const kp = mldsa44KeyPairFromSeed(seed);
      assert.ok(mldsa44Verify(kp.publicKey, Buffer.from('x'), mldsa44Sign(kp, Buffer.from('x'), randomBytes(32))));
      throwsCode(() => mldsa44Sign(kp, Buffer.from('x'), Buffer.alloc(31)), 'internal');
    });

    it('a note with Ed25519 + ML-DSA + unknown-type signatures verifies with either key set; unknown lines never fatal', () => {
      const unknown = [
        formatSignatureLine({ name: 'pq.example/other', keyId: Buffer.from('01020304', 'hex'), signature: randomBytes(3000) }),
        formatSignatureLine({ name: 'w.example/pq', keyId: Buffer.from('deadbeef', 'hex'), signature: randomBytes(2428) }), // same name, other key ID
        formatSignatureLine({ name: 'odd.example/x', keyId: w.keyId, signature: randomBytes(1) }), // same key ID, other name
      ];
      fc.assert(
        fc.property(fc.shuffledSubarray(unknown), fc.boolean(), (extra, edFirst) => {
          const signers = edFirst ? [logEd, w] : [w, logEd];
          const note = signNote(CHECKPOINT, signers) + extra.join('');
          assert.deepEqual(verifyNote(note, [logEdV]).verified.map((v) => v.verifier.type), [SIG_TYPE_ED25519]);
          assert.deepEqual(verifyNote(note, [wv]).verified.map((v) => v.verifier.type), [SIG_TYPE_MLDSA44]);
          assert.equal(verifyNote(note, [logEdV, wv]).verified.length, 2);
          throwsCode(() => verifyNote(note, [parseVerifierKey(V.keys[1].vkey)]), 'unknown_key');
        }),
        { numRuns: 8 },
      );
    });

    it('vkeys and signer keys of type 0x06: strict lengths, names of at most 255 bytes, random strings never crash', () => {
      const vkey = formatVerifierKey('w.example/pq', SIG_TYPE_MLDSA44, w.publicKey);
      assert.equal(parseVerifierKey(vkey).keyId.toString('hex'), vkey.split('+')[1]);
      const raw = Buffer.concat([Buffer.from([0x06]), w.publicKey]);
      const withKey = (k: Buffer) => `w.example/pq+${createHash('sha256').update(Buffer.concat([Buffer.from('w.example/pq\n'), k])).digest().subarray(0, 4).toString('hex')}+${k.toString('base64')}`;
      assert.equal(withKey(raw), vkey);
      throwsCode(() => parseVerifierKey(withKey(raw.subarray(0, 1312))), 'malformed');
      throwsCode(() => parseVerifierKey(withKey(Buffer.concat([raw, Buffer.from([0])]))), 'malformed');
      throwsCode(() => parseVerifierKey(withKey(Buffer.concat([Buffer.from([0x01]), w.publicKey]))), 'malformed');
      throwsCode(() => formatVerifierKey('w.example/pq', SIG_TYPE_MLDSA44, Buffer.alloc(32)), 'malformed');
      throwsCode(() => formatVerifierKey('x'.repeat(256), SIG_TYPE_MLDSA44, w.publicKey), 'malformed');
      throwsCode(() => formatSignerKey('x'.repeat(256), SIG_TYPE_MLDSA44, seed), 'malformed');
      throwsCode(() => parseSignerKey(formatSignerKey('w.example/pq', SIG_TYPE_MLDSA44, seed)), 'malformed'); // needs a clock
      const s = parseSignerKey(formatSignerKey('w.example/pq', SIG_TYPE_MLDSA44, seed), () => 5);
      assert.ok(s.publicKey.equals(w.publicKey));
      fc.assert(
        fc.property(fc.nat({ max: vkey.length - 1 }), fc.string({ minLength: 1, maxLength: 1 }), (i, ch) => {
          const m = vkey.slice(0, i) + ch + vkey.slice(i + 1);
          if (m === vkey) return;
          try {
            const v = parseVerifierKey(m);
            assert.fail(`accepted a mangled vkey (type ${v.type})`);
          } catch (e) {
            assert.ok(e instanceof PkglogError, String(e));
          }
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('tlog-policy with ML-DSA-44 logs and witnesses', () => {
    const mk = (name: string) => mldsaCosigner(name, createHash('sha256').update(name).digest(), { timestamp: () => 1700000000 });
    const edW = (name: string) => cosignatureSigner(name, createHash('sha256').update(name).digest(), () => 1700000000);
    const logEd = ed25519Signer(ORIGIN, createHash('sha256').update('ed log').digest());
    const logPq = mk(ORIGIN);
    const pq = [mk('pq1.example'), mk('pq2.example'), mk('pq3.example')];
    const ed = [edW('ed1.example'), edW('ed2.example')];
    const policyText =
      `log ${formatVerifierKey(ORIGIN, SIG_TYPE_ED25519, logEd.publicKey)}\n` +
      `log ${formatVerifierKey(ORIGIN, SIG_TYPE_MLDSA44, logPq.publicKey)} https://log.example/\n` +
      pq.map((s, i) => `witness P${i + 1} ${formatVerifierKey(s.name, SIG_TYPE_MLDSA44, s.publicKey)}\n`).join('') +
      ed.map((s, i) => `witness E${i + 1} ${formatVerifierKey(s.name, SIG_TYPE_COSIGNATURE_V1, s.publicKey)}\n`).join('') +
      'group G 3 P1 P2 P3 E1 E2\nquorum G\n';
    const policy = parsePolicy(policyText);

    it('parses 0x06 keys for logs and witnesses; rejects a 0x06 key listed twice', () => {
      assert.deepEqual(policy.logs.map((l) => l.verifier.type), [0x01, 0x06]);
      assert.deepEqual(policy.witnesses.map((w) => [w.name, w.verifier.type]), [['P1', 6], ['P2', 6], ['P3', 6], ['E1', 4], ['E2', 4]]);
      const dup = `witness A ${formatVerifierKey('a', SIG_TYPE_MLDSA44, pq[0]!.publicKey)}\nwitness B ${formatVerifierKey('b', SIG_TYPE_MLDSA44, pq[0]!.publicKey)}\nquorum A\n`;
      throwsCode(() => parsePolicy(dup), 'malformed'); // same underlying key, other name: duplicate per tlog-policy
    });

    it('a quorum met by ML-DSA cosignatures; mixed quorums; post-quantum only counts only 0x06 signatures', () => {
      const all = signNote(CHECKPOINT, [logEd, logPq, ...pq, ...ed]);
      const v = verifyCheckpointWithPolicy(policy, all);
      assert.deepEqual(v.cosigners.map((c) => c.witness.name), ['P1', 'P2', 'P3', 'E1', 'E2']);
      assert.equal(verifyCheckpointWithPolicy(policy, all, { requirePostQuantum: true }).log.verifier.type, SIG_TYPE_MLDSA44);
      // ML-DSA log signature alone (no Ed25519 one) is a valid log signature.
      assert.deepEqual(verifyCheckpointWithPolicy(policy, signNote(CHECKPOINT, [logPq, ...pq])).cosigners.length, 3);
      // 2 PQ + 1 Ed25519 witness: meets the quorum, but not when post-quantum only.
      const mixed = signNote(CHECKPOINT, [logEd, logPq, pq[0]!, pq[1]!, ed[0]!]);
      assert.equal(verifyCheckpointWithPolicy(policy, mixed).cosigners.length, 3);
      throwsCode(() => verifyCheckpointWithPolicy(policy, mixed, { requirePostQuantum: true }), 'quorum_not_met');
      // Only the Ed25519 log signature: rejected when post-quantum only.
      const edLogOnly = signNote(CHECKPOINT, [logEd, ...pq]);
      assert.equal(verifyCheckpointWithPolicy(policy, edLogOnly).cosigners.length, 3);
      throwsCode(() => verifyCheckpointWithPolicy(policy, edLogOnly, { requirePostQuantum: true }), 'unknown_key');
      throwsCode(() => verifyCheckpointWithPolicy(postQuantumPolicy(policy), edLogOnly), 'unknown_key');
      // A bad ML-DSA witness cosignature rejects the checkpoint (signed-note: a known key must verify).
      const sigs = parseSignedNote(all).signatures;
      const bad = Buffer.from(sigs[3]!.signature);
      bad[100]! ^= 1;
      const tampered = CHECKPOINT + '\n' + sigs.map((s, i) => formatSignatureLine(i === 3 ? { ...s, signature: bad } : s)).join('');
      throwsCode(() => verifyCheckpointWithPolicy(policy, tampered), 'bad_signature');
      // notBefore applies to ML-DSA timestamps too.
      throwsCode(() => verifyCheckpointWithPolicy(policy, all, { notBefore: 1700000001 }), 'quorum_not_met');
    });
  });
});

function cosignatureTimestampOrNull(sig: Buffer): number | null {
  return sig.length === COSIGNATURE_MLDSA44_SIZE ? cosignatureTimestamp(sig) : null;
}

function formatSignedNoteLike(text: string, sig: { name: string; keyId: Buffer; signature: Buffer }): string {
  return text + '\n' + formatSignatureLine(sig);
}
