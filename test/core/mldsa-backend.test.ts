/**
 * The ML-DSA-44 backends behind core/mldsa.ts (pqclean native addon, pqclean WebAssembly, @noble/post-quantum):
 * each is FIPS 204 final ML-DSA-44 with the empty context — checked by cross-verification in both directions against
 * noble used directly (signatures of one verify on every other; a signature made with a non-empty context does not),
 * the committed subtree/v1 vector verifies on each; the fallback order (a missing or broken backend is skipped), and
 * the PKGLOG_MLDSA_BACKEND switch (in-process here; test/e2e/pq.test.ts runs real processes with it).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import {
  mldsa44BackendName,
  mldsa44KeyPairFromSeed,
  mldsa44Sign,
  mldsa44Verify,
  pickMlDsa44Backend,
  useMlDsa44Backend,
  MLDSA44_BACKENDS,
  MLDSA44_LOADERS,
  type MlDsa44Backend,
  type MlDsa44BackendName,
} from '../../core/mldsa.ts';
import { parseSignedNote, parseVerifierKey, verifyNote } from '../../core/note.ts';
import { applyMlDsaBackendEnv } from '../../runtime/mldsa-backend.ts';
import { MLDSA44_KAT_MESSAGE, MLDSA44_KAT_PUBLIC_KEY, MLDSA44_KAT_SEED_BYTE, MLDSA44_KAT_SIGNATURE } from '../../core/mldsa-kat.ts';
import { PkglogError } from '../../core/errors.ts';

const V = JSON.parse(readFileSync(new URL('../vectors/mldsa44.json', import.meta.url), 'utf8'));
const addon = createRequire(import.meta.url).resolve('pqclean/package.json').replace(/package\.json$/, 'build/Release/node_pqclean.node');

function throwsCode(f: () => unknown, code: string): void {
  assert.throws(f, (e: unknown) => e instanceof PkglogError && e.code === code);
}

describe('core ML-DSA-44 backends (pqclean native, pqclean WASM, noble)', function () {
  this.timeout(60_000);
  const initial = mldsa44BackendName();
  after(() => useMlDsa44Backend(initial));

  it('the default is the native addon when npm ci built it, else WebAssembly (never noble while pqclean is installed)', () => {
    assert.equal(initial, existsSync(addon) ? 'native' : 'wasm');
  });

  const kp = mldsa44KeyPairFromSeed(Buffer.alloc(32, 0x42));
  const msg = Buffer.from('subtree/v1\n\0 a message of some length');
  /** A signature by each backend (hedged), made through core with that backend selected. */
  const sigs = new Map<MlDsa44BackendName, Buffer>();

  for (const name of MLDSA44_BACKENDS) {
    it(`${name}: signs (hedged) what noble verifies directly, with the empty context and only that`, () => {
      useMlDsa44Backend(name);
      assert.equal(mldsa44BackendName(), name);
      const a = mldsa44Sign(kp, msg, randomBytes(32));
      const b = mldsa44Sign(kp, msg, randomBytes(32));
      assert.equal(a.length, 2420);
      assert.ok(!a.equals(b), 'hedged signatures differ');
      for (const s of [a, b]) {
        assert.ok(ml_dsa44.verify(s, msg, kp.publicKey), 'noble verifies it (empty context)');
        assert.ok(ml_dsa44.verify(s, msg, kp.publicKey, { context: new Uint8Array(0) }));
        assert.equal(ml_dsa44.verify(s, msg, kp.publicKey, { context: Buffer.from('x') }), false, 'not a signature under another context');
        assert.equal(ml_dsa44.verify(s, Buffer.concat([msg, Buffer.from('!')]), kp.publicKey), false);
      }
      sigs.set(name, a);
    });

    it(`${name}: verifies noble's signatures (deterministic and hedged), refuses other contexts, flipped bytes, wrong lengths`, () => {
      useMlDsa44Backend(name);
      const det = Buffer.from(ml_dsa44.sign(msg, kp.secretKey, { extraEntropy: false }));
      const hedged = Buffer.from(ml_dsa44.sign(msg, kp.secretKey));
      const ctx = Buffer.from(ml_dsa44.sign(msg, kp.secretKey, { context: Buffer.from('pkglog') }));
      assert.ok(mldsa44Verify(kp.publicKey, msg, det));
      assert.ok(mldsa44Verify(kp.publicKey, msg, hedged));
      assert.equal(mldsa44Verify(kp.publicKey, msg, ctx), false, 'a signature with a non-empty context is not valid for ctx = ""');
      for (const i of [0, 100, 2419]) {
        const bad = Buffer.from(det);
        bad[i]! ^= 1;
        assert.equal(mldsa44Verify(kp.publicKey, msg, bad), false);
      }
      const otherKey = mldsa44KeyPairFromSeed(Buffer.alloc(32, 0x43)).publicKey;
      assert.equal(mldsa44Verify(otherKey, msg, det), false);
      assert.equal(mldsa44Verify(kp.publicKey, msg, det.subarray(1)), false);
      assert.equal(mldsa44Verify(kp.publicKey.subarray(1), msg, det), false);
      // Deterministic signing is the same bytes on every backend (it is always noble's; PQClean has no such mode).
      assert.ok(mldsa44Sign(kp, msg).equals(det));
    });

    it(`${name}: the committed subtree/v1 vector and the signed checkpoint verify`, () => {
      useMlDsa44Backend(name);
      const st = V.subtree;
      const line = parseSignedNote(V.checkpoint + '\n' + st.signatureLine).signatures[0]!;
      const w = parseVerifierKey(V.keys.find((k: { name: string }) => k.name === st.cosigner).vkey);
      assert.ok(mldsa44Verify(w.publicKey, Buffer.from(st.message, 'hex'), line.signature.subarray(8)));
      const keys = V.keys.map((k: { vkey: string }) => parseVerifierKey(k.vkey));
      assert.equal(verifyNote(V.signedCheckpoint, keys).verified.length, keys.length);
    });
  }

  it('every backend verifies every other backend\'s signatures', () => {
    assert.equal(sigs.size, MLDSA44_BACKENDS.length);
    for (const verifier of MLDSA44_BACKENDS) {
      useMlDsa44Backend(verifier);
      for (const [signer, sig] of sigs) assert.ok(mldsa44Verify(kp.publicKey, msg, sig), `${verifier} verifies ${signer}'s signature`);
    }
  });

  it('the self-test\'s known answer (core/mldsa-kat.ts) is what noble computes from its seed', () => {
    const { publicKey, secretKey } = ml_dsa44.keygen(new Uint8Array(32).fill(MLDSA44_KAT_SEED_BYTE));
    assert.equal(Buffer.from(publicKey).toString('base64'), MLDSA44_KAT_PUBLIC_KEY);
    const sig = ml_dsa44.sign(Buffer.from(MLDSA44_KAT_MESSAGE), secretKey, { extraEntropy: false });
    assert.equal(Buffer.from(sig).toString('base64'), MLDSA44_KAT_SIGNATURE);
  });

  it('fallback: a backend that does not load, or fails the self-test, is skipped; noble is last', () => {
    const missing = (): MlDsa44Backend => {
      throw new Error('Cannot find module node_pqclean.node');
    };
    const wasm = MLDSA44_LOADERS.wasm;
    const broken = (): MlDsa44Backend => ({ name: 'native', sign: () => new Uint8Array(2420), verify: () => true }); // accepts anything
    assert.equal(pickMlDsa44Backend([missing, wasm, MLDSA44_LOADERS.noble]).name, 'wasm');
    assert.equal(pickMlDsa44Backend([missing, missing]).name, 'noble');
    assert.equal(pickMlDsa44Backend([broken, MLDSA44_LOADERS.noble]).name, 'noble');
    assert.equal(pickMlDsa44Backend([MLDSA44_LOADERS.native, wasm]).name, existsSync(addon) ? 'native' : 'wasm');
  });

  it('PKGLOG_MLDSA_BACKEND selects a backend; an unknown name is a usage error; unset changes nothing', () => {
    applyMlDsaBackendEnv({ PKGLOG_MLDSA_BACKEND: 'noble' });
    assert.equal(mldsa44BackendName(), 'noble');
    applyMlDsaBackendEnv({});
    assert.equal(mldsa44BackendName(), 'noble');
    applyMlDsaBackendEnv({ PKGLOG_MLDSA_BACKEND: 'wasm' });
    assert.equal(mldsa44BackendName(), 'wasm');
    throwsCode(() => applyMlDsaBackendEnv({ PKGLOG_MLDSA_BACKEND: 'openssl' }), 'usage');
    throwsCode(() => useMlDsa44Backend('openssl' as MlDsa44BackendName), 'usage');
    assert.equal(mldsa44BackendName(), 'wasm');
  });
});
