// Imported first on purpose: cosignature.ts and note.ts import each other; either load order must work.
import { COSIGNATURE_V1_SIZE, cosignatureMessage, cosignatureSigner, cosignatureTimestamp, cosignatureVerifier } from '../../core/cosignature.ts';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import fc from 'fast-check';
import { PkglogError } from '../../core/errors.ts';
import {
  ed25519Signer,
  formatSignatureLine,
  formatSignerKey,
  formatVerifierKey,
  parseSignedNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  signText,
  verifyNote,
} from '../../core/note.ts';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());

function throwsCode(f: () => unknown, code: string): void {
  assert.throws(f, (e: unknown) => e instanceof PkglogError && e.code === code);
}

const CHECKPOINT = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
const TS = 1679315147;
const NAME = 'witness.example.com/w1';
const SEED = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'); // RFC 8032 test 1

describe('core/cosignature', () => {
  const pub = Buffer.from(ed.getPublicKey(SEED));

  it('builds the cosignature/v1 message byte for byte', () => {
    const byHand = Buffer.from(
      'cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n',
      'utf8',
    );
    assert.ok(cosignatureMessage(CHECKPOINT, TS).equals(byHand));
    assert.ok(cosignatureMessage('o\n0\nx\next\n', 0).equals(Buffer.from('cosignature/v1\ntime 0\no\n0\nx\next\n')));
    throwsCode(() => cosignatureMessage(CHECKPOINT, 1.5), 'malformed');
    throwsCode(() => cosignatureMessage(CHECKPOINT, -1), 'malformed');
    throwsCode(() => cosignatureMessage('no newline', 1), 'malformed');
  });

  it('signs a vector that @noble/ed25519 verifies, with a type-0x04 key ID', () => {
    assert.equal(pub.toString('hex'), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const signer = cosignatureSigner(NAME, SEED, () => TS);
    const keyIdByHand = createHash('sha256').update(NAME + '\n').update(Buffer.from([0x04])).update(pub).digest().subarray(0, 4);
    assert.ok(signer.keyId.equals(keyIdByHand));
    assert.equal(signer.type, 0x04);
    assert.ok(!ed25519Signer(NAME, SEED).keyId.equals(keyIdByHand));

    const note = signNote(CHECKPOINT, [signer]);
    const line = note.slice(CHECKPOINT.length + 1);
    assert.ok(line.startsWith(`— ${NAME} `) && line.endsWith('\n'));
    const raw = Buffer.from(line.slice(`— ${NAME} `.length, -1), 'base64');
    assert.equal(raw.length, 4 + 8 + 64);
    assert.ok(raw.subarray(0, 4).equals(keyIdByHand));
    assert.equal(raw.readBigUInt64BE(4), BigInt(TS));
    const msg = Buffer.from(`cosignature/v1\ntime ${TS}\n${CHECKPOINT}`);
    assert.ok(ed.verify(raw.subarray(12), msg, pub));
    // Ed25519 is deterministic: noble's signature of the hand-built message is the same bytes.
    assert.ok(Buffer.from(ed.sign(msg, SEED)).equals(raw.subarray(12)));
    assert.equal(cosignatureTimestamp(parseSignedNote(note).signatures[0]!), TS);
  });

  it('verifies a cosignature made with @noble/ed25519 (via verifyNote and a parsed vkey)', () => {
    const ts = 1712345678;
    const msg = Buffer.from(`cosignature/v1\ntime ${ts}\n${CHECKPOINT}`);
    const tsBytes = Buffer.alloc(8);
    tsBytes.writeBigUInt64BE(BigInt(ts));
    const v = parseVerifierKey(formatVerifierKey(NAME, 4, pub));
    assert.equal(v.type, 4);
    const sig = Buffer.concat([tsBytes, Buffer.from(ed.sign(msg, SEED))]);
    const note = CHECKPOINT + '\n' + formatSignatureLine({ name: NAME, keyId: v.keyId, signature: sig });
    const r = verifyNote(note, [v]);
    assert.equal(cosignatureTimestamp(r.verified[0]!.signature), ts);
    // Same signature with another timestamp in the 8 bytes does not verify.
    const other = Buffer.from(sig);
    other.writeBigUInt64BE(BigInt(ts + 1));
    throwsCode(() => verifyNote(CHECKPOINT + '\n' + formatSignatureLine({ name: NAME, keyId: v.keyId, signature: other }), [v]), 'bad_signature');
    // A plain note signature (over the text only) by the witness key is not a cosignature.
    const plain = Buffer.concat([tsBytes, Buffer.from(ed.sign(Buffer.from(CHECKPOINT), SEED))]);
    throwsCode(() => verifyNote(CHECKPOINT + '\n' + formatSignatureLine({ name: NAME, keyId: v.keyId, signature: plain }), [v]), 'bad_signature');
  });

  it('reads the timestamp of the spec example cosignature', () => {
    const example =
      CHECKPOINT +
      '\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n' +
      '— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n';
    const sigs = parseSignedNote(example).signatures;
    assert.equal(sigs[1]!.keyId.toString('hex'), '8d66cf3f');
    assert.equal(sigs[1]!.signature.length, COSIGNATURE_V1_SIZE);
    assert.equal(cosignatureTimestamp(sigs[1]!), TS);
    throwsCode(() => cosignatureTimestamp(sigs[0]!), 'malformed'); // 64 bytes: not a cosignature
  });

  it('rejects bad timestamps and lengths', () => {
    throwsCode(() => cosignatureTimestamp(Buffer.alloc(71)), 'malformed');
    throwsCode(() => cosignatureTimestamp(Buffer.alloc(73)), 'malformed');
    const big = Buffer.alloc(72);
    big.writeBigUInt64BE(2n ** 53n);
    throwsCode(() => cosignatureTimestamp(big), 'malformed');
    big.writeBigUInt64BE(2n ** 53n - 1n);
    assert.equal(cosignatureTimestamp(big), Number.MAX_SAFE_INTEGER);
    const v = cosignatureVerifier(NAME, pub);
    assert.equal(v.verify(Buffer.from(CHECKPOINT), Buffer.alloc(72)), false);
    assert.equal(v.verify(Buffer.from(CHECKPOINT), Buffer.alloc(10)), false);
    // The clock must return integer seconds (Date.now() is milliseconds and not what is wanted; /1000 is fractional).
    throwsCode(() => signText(CHECKPOINT, cosignatureSigner(NAME, SEED, () => 1.5)), 'internal');
    throwsCode(() => signText(CHECKPOINT, cosignatureSigner(NAME, SEED, () => -1)), 'internal');
    throwsCode(() => cosignatureSigner('bad name', SEED, () => 1), 'malformed');
    throwsCode(() => cosignatureVerifier(NAME, Buffer.alloc(31)), 'malformed');
  });

  it('reads the clock at signing time', () => {
    let now = 100;
    const s = cosignatureSigner(NAME, SEED, () => now);
    const a = signText(CHECKPOINT, s);
    now = 200;
    const b = signText(CHECKPOINT, s);
    assert.equal(cosignatureTimestamp(a), 100);
    assert.equal(cosignatureTimestamp(b), 200);
    const v = cosignatureVerifier(NAME, pub);
    assert.deepEqual(verifyNote(CHECKPOINT + '\n' + formatSignatureLine(a) + formatSignatureLine(b), [v]).verified.length, 1);
  });

  it('parses type-0x04 signer keys only with a clock', () => {
    const skey = formatSignerKey(NAME, 4, SEED);
    throwsCode(() => parseSignerKey(skey), 'malformed');
    const s = parseSignerKey(skey, () => TS);
    assert.equal(s.type, 4);
    assert.ok(s.publicKey.equals(pub));
    assert.ok(verifyNote(signNote(CHECKPOINT, [s]), [cosignatureVerifier(NAME, pub)]).verified.length === 1);
  });

  it('round-trips timestamps and verifies for arbitrary checkpoint texts', () => {
    const v = cosignatureVerifier(NAME, pub);
    fc.assert(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.string({ maxLength: 40 }), (ts, origin) => {
        const text = `${origin.replace(/[\u0000-\u001f]|\p{Cs}/gu, '') || 'o'}\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n`;
        const sig = signText(text, cosignatureSigner(NAME, SEED, () => ts));
        assert.equal(cosignatureTimestamp(sig), ts);
        assert.ok(v.verify(Buffer.from(text), sig.signature));
        assert.ok(ed.verify(sig.signature.subarray(8), cosignatureMessage(text, ts), pub));
      }),
      { numRuns: 50 },
    );
  });
});
