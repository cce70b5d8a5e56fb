import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePublicKey, parsePublicKeyVerifier, isPrivateKeyText } from '../../core/public-key.ts';
import { formatSignerKey, formatVerifierKey, SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1 } from '../../core/note.ts';
import { keyPairFromSeed } from '../../core/ed25519.ts';
import { PkglogError, isPkglogError } from '../../core/errors.ts';

const seed = Buffer.alloc(32, 7);
const pub = keyPairFromSeed(seed).publicKey;
const VKEY = formatVerifierKey('alice.example', SIG_TYPE_ED25519, pub);
const COSIGNER_VKEY = formatVerifierKey('w.example', SIG_TYPE_COSIGNATURE_V1, pub);
const SKEY = formatSignerKey('alice.example', SIG_TYPE_ED25519, seed);
const B64 = pub.toString('base64');
const ED = { type: SIG_TYPE_ED25519, what: '--thing' };
const malformed = (re: RegExp) => (e: unknown) => isPkglogError(e, 'malformed') && re.test((e as Error).message);

describe('core/public-key: one parser for every public key', () => {
  it('accepts the vkey keygen prints (with its final newline) and bare base64', () => {
    const a = parsePublicKey(`${VKEY}\n`, ED);
    assert.deepEqual([a.form, a.name, a.vkey, a.type], ['vkey', 'alice.example', VKEY, SIG_TYPE_ED25519]);
    assert.ok(a.publicKey.equals(pub));
    const b = parsePublicKey(B64, ED);
    assert.deepEqual([b.form, b.name, b.vkey], ['base64', undefined, undefined]);
    assert.ok(b.publicKey.equals(pub));
    const named = parsePublicKey(B64, { ...ED, name: 'alice.example' });
    assert.equal(named.vkey, VKEY, 'a bare key with a name gives the same vkey');
    assert.equal(parsePublicKey(COSIGNER_VKEY, { type: SIG_TYPE_COSIGNATURE_V1 }).name, 'w.example');
  });

  it('recognises a private key (key file content) and says what to pass instead', () => {
    for (const text of [SKEY, `${SKEY}\n`, `  ${SKEY}`]) {
      assert.ok(isPrivateKeyText(text));
      assert.throws(() => parsePublicKey(text, ED), malformed(/^--thing: this is a private key .*pass the public key \(vkey\) that keygen printed/));
      assert.throws(() => parsePublicKeyVerifier(text, ED), malformed(/private key/));
    }
    assert.ok(!isPrivateKeyText(VKEY));
  });

  it('names the wrong type, a broken vkey, and anything else', () => {
    assert.throws(() => parsePublicKey(COSIGNER_VKEY, ED), malformed(/--thing must be an Ed25519 \(type 0x01\) key; .* is a cosigner/));
    assert.throws(() => parsePublicKey(VKEY, { type: SIG_TYPE_COSIGNATURE_V1, what: 'w' }), malformed(/w must be a cosigner .* is an Ed25519/));
    const badId = VKEY.replace(/\+[0-9a-f]{8}\+/, '+00000000+');
    assert.throws(() => parsePublicKey(badId, ED), malformed(/not a valid vkey: verifier key ID does not match/));
    assert.throws(() => parsePublicKey('hello', ED), malformed(/not a public key: expected a vkey .* or the base64/));
    assert.throws(() => parsePublicKey('', ED), malformed(/empty/));
    assert.throws(() => parsePublicKey(Buffer.alloc(31).toString("base64"), ED), malformed(/base64 of 31 bytes, where an Ed25519 public key is 32 bytes/));
    assert.throws(() => parsePublicKey('x'.repeat(5000), ED), malformed(/too long/));
  });

  it('a note verifier needs a name: from the vkey, or given for a bare key', () => {
    assert.equal(parsePublicKeyVerifier(VKEY, ED).name, 'alice.example');
    assert.throws(() => parsePublicKeyVerifier(B64, ED), malformed(/bare base64 key has no name/));
    const v = parsePublicKeyVerifier(B64, { ...ED, name: 'alice.example' });
    assert.equal(formatVerifierKey(v.name, v.type, v.publicKey), VKEY);
  });

  it('only ever throws PkglogError, and accepts only keys it can re-encode', () => {
    const near = fc.tuple(fc.constantFrom(VKEY, SKEY, B64), fc.nat(60), fc.string({ maxLength: 3 })).map(([s, i, x]) => s.slice(0, i) + x + s.slice(i + 1));
    fc.assert(
      fc.property(fc.oneof(near, fc.string({ maxLength: 80 })), fc.constantFrom(SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1), (s, type) => {
        try {
          const k = parsePublicKey(s, { type });
          if (k.form === 'vkey') assert.equal(formatVerifierKey(k.name!, k.type, k.publicKey), s.trim());
          else assert.equal(k.publicKey.toString('base64'), s.trim());
        } catch (e) {
          if (!(e instanceof PkglogError)) throw e;
        }
      }),
      { numRuns: 1000 },
    );
  });
});
