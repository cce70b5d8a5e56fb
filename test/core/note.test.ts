import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import fc from 'fast-check';
import { isPkglogError, PkglogError } from '../../core/errors.ts';
import {
  ed25519Signer,
  ed25519Verifier,
  formatSignatureLine,
  formatSignedNote,
  formatSignerKey,
  formatVerifierKey,
  isValidKeyName,
  keyId,
  MAX_NOTE_SIGNATURES,
  MAX_NOTE_SIZE,
  parseSignedNote,
  parseSignerKey,
  parseSignerKeyFields,
  parseVerifierKey,
  signNote,
  signText,
  verifyNote,
  type Note,
  type Verifier,
} from '../../core/note.ts';
import { cosignatureSigner } from '../../core/cosignature.ts';
import { ENOCH_SIG, ENOCH_VKEY, PETER_SIG, PETER_SKEY, PETER_VKEY, TEXT } from '../vectors/go-note.ts';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());


function throwsCode(f: () => unknown, code: string): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof PkglogError, `expected PkglogError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

function onlyPkglogErrors(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof PkglogError)) throw e;
  }
}

describe('core/note', () => {
  const peter = parseVerifierKey(PETER_VKEY);
  const enoch = parseVerifierKey(ENOCH_VKEY);

  describe('keys (golang sumdb/note vectors)', () => {
    it('parses the PeterNeumann vkey and skey', () => {
      assert.equal(peter.name, 'PeterNeumann');
      assert.equal(peter.keyId.toString('hex'), 'c74f20a3');
      assert.equal(peter.type, 0x01);
      const signer = parseSignerKey(PETER_SKEY);
      assert.equal(signer.name, 'PeterNeumann');
      assert.equal(signer.keyId.toString('hex'), 'c74f20a3');
      assert.ok(signer.publicKey.equals(peter.publicKey));
      assert.equal(formatVerifierKey('PeterNeumann', 1, peter.publicKey), PETER_VKEY);
      const f = parseSignerKeyFields(PETER_SKEY);
      assert.equal(formatSignerKey(f.name, f.type, f.seed), PETER_SKEY);
      assert.equal(enoch.keyId.toString('hex'), 'af0cfe78');
    });

    it('computes key IDs as SHA-256(name ‖ "\\n" ‖ type ‖ key)[:4]', () => {
      const byHand = createHash('sha256').update('PeterNeumann\n\x01', 'latin1').update(peter.publicKey).digest().subarray(0, 4);
      assert.ok(keyId('PeterNeumann', 1, peter.publicKey).equals(byHand));
      assert.ok(!keyId('PeterNeumann', 4, peter.publicKey).equals(byHand));
    });

    it('rejects every substring and every byte increment of the vkey and skey (as Go does)', () => {
      for (const [k, parse] of [
        [PETER_VKEY, (s: string) => parseVerifierKey(s)],
        [PETER_SKEY, (s: string) => parseSignerKey(s)],
      ] as const) {
        const b = Buffer.from(k, 'latin1');
        for (let i = 0; i <= b.length; i++) {
          for (let j = i + 1; j <= b.length; j++) {
            if (i === 0 && j === b.length) continue;
            throwsCode(() => parse(b.subarray(i, j).toString('latin1')), 'malformed');
          }
        }
        for (let i = 0; i < b.length; i++) {
          const m = Buffer.from(b);
          m[i]!++;
          throwsCode(() => parse(m.toString('latin1')), 'malformed');
        }
      }
      throwsCode(() => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='), 'malformed');
      throwsCode(() => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'), 'malformed');
      throwsCode(() => parseVerifierKey('PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'), 'malformed');
      throwsCode(() => parseSignerKey('PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz'), 'malformed');
    });

    it('validates key names', () => {
      for (const good of ['a', 'example.com/log', 'é', 'x\u007fy', 'oid/1.2.3']) assert.ok(isValidKeyName(good), good);
      for (const bad of ['', 'a b', 'a+b', 'a\tb', 'a\nb', 'a\u00a0b', 'a\u3000b', 'a\u0085b', 'a\u2028b', 'a\u0001b', 'a\ud800b']) {
        assert.ok(!isValidKeyName(bad), JSON.stringify(bad));
      }
      throwsCode(() => ed25519Signer('bad name', Buffer.alloc(32)), 'malformed');
      throwsCode(() => formatVerifierKey('a+b', 1, Buffer.alloc(32)), 'malformed');
    });
  });

  describe('signing', () => {
    it('produces the Go signed note byte for byte', () => {
      assert.equal(signNote(TEXT, [parseSignerKey(PETER_SKEY)]), TEXT + '\n' + PETER_SIG);
    });

    it('matches @noble/ed25519 signatures and verification', () => {
      const seed = parseSignerKeyFields(PETER_SKEY).seed;
      assert.ok(Buffer.from(ed.getPublicKey(seed)).equals(peter.publicKey));
      const sig = signText(TEXT, parseSignerKey(PETER_SKEY));
      assert.ok(Buffer.from(ed.sign(Buffer.from(TEXT), seed)).equals(sig.signature));
      assert.ok(ed.verify(sig.signature, Buffer.from(TEXT), peter.publicKey));
      // And a signature made by noble verifies with ours.
      const seed2 = Buffer.alloc(32, 7);
      const v = ed25519Verifier('noble.example', ed.getPublicKey(seed2));
      const line = formatSignatureLine({ name: v.name, keyId: v.keyId, signature: Buffer.from(ed.sign(Buffer.from(TEXT), seed2)) });
      assert.equal(verifyNote(TEXT + '\n' + line, [v]).verified[0]!.verifier, v);
    });

    it('rejects text that is not a note text', () => {
      const s = parseSignerKey(PETER_SKEY);
      for (const t of ['abc', '', 'a\rb\n', 'a\u0000\n', '\ud800\n']) throwsCode(() => signNote(t, [s]), 'malformed');
    });
  });

  describe('verifyNote (golang Open cases)', () => {
    it('verifies known signatures and ignores unknown ones', () => {
      const msg = TEXT + '\n' + PETER_SIG + ENOCH_SIG;
      const one = verifyNote(msg, [peter]);
      assert.equal(one.note.text, TEXT);
      assert.equal(one.note.signatures.length, 2);
      assert.deepEqual(one.verified.map((v) => v.verifier.name), ['PeterNeumann']);
      const both = verifyNote(Buffer.from(msg), [peter, enoch]);
      assert.deepEqual(both.verified.map((v) => v.verifier.name), ['PeterNeumann', 'EnochRoot']);
      throwsCode(() => verifyNote(msg, []), 'unknown_key');
    });

    it('handles duplicated and ambiguous verifiers', () => {
      verifyNote(TEXT + '\n' + ENOCH_SIG, [enoch, peter, parseVerifierKey(ENOCH_VKEY)]);
      const impostor: Verifier = { ...enoch, publicKey: Buffer.alloc(32, 1), verify: () => true };
      throwsCode(() => verifyNote(TEXT + '\n' + ENOCH_SIG, [enoch, peter, impostor]), 'unknown_key');
      verifyNote(TEXT + '\n' + PETER_SIG, [enoch, peter, impostor]); // unused ambiguity is fine
    });

    it('ignores signatures sharing only the name or only the key ID with a known key', () => {
      const otherName = PETER_SIG.replace('PeterNeumann', 'PeterNeuman');
      throwsCode(() => verifyNote(TEXT + '\n' + otherName, [peter]), 'unknown_key');
      const otherId = PETER_SIG.replace('x08g', 'xxxx');
      throwsCode(() => verifyNote(TEXT + '\n' + otherId, [peter]), 'unknown_key');
      assert.equal(verifyNote(TEXT + '\n' + otherName + otherId + PETER_SIG, [peter]).verified.length, 1);
    });

    it('rejects the whole note when a known signature fails', () => {
      throwsCode(() => verifyNote(TEXT + '\n' + PETER_SIG.slice(0, 60) + 'ABCD' + PETER_SIG.slice(60), [peter]), 'bad_signature');
      const enochBad = ENOCH_SIG.slice(0, 60) + 'ABCD' + ENOCH_SIG.slice(60);
      // Go skips a second signature by the same key; we verify every known signature.
      throwsCode(() => verifyNote(TEXT + '\n' + PETER_SIG + PETER_SIG.slice(0, 60) + 'ABCD' + PETER_SIG.slice(60), [peter]), 'bad_signature');
      const r = verifyNote(TEXT + '\n' + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enochBad, [peter]);
      assert.equal(r.verified.length, 1);
      throwsCode(() => verifyNote(TEXT + '\n' + PETER_SIG + enochBad, [peter, enoch]), 'bad_signature');
    });

    it('rejects malformed notes', () => {
      const bad = [
        TEXT,
        TEXT + '\n',
        TEXT + '\n' + PETER_SIG.slice(0, -1),
        '\x01' + TEXT + '\n' + PETER_SIG,
        TEXT.replace('\n', '\r\n') + '\n' + PETER_SIG,
        TEXT + '\n' + '— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n',
        TEXT + '\n' + PETER_SIG + 'Unexpected line.\n',
        TEXT + '\n' + PETER_SIG.replace('—', '-'),
        TEXT + '\n' + PETER_SIG.replace('— ', '—  '),
        TEXT + '\n' + PETER_SIG.replace('AM=', 'AN='), // non-canonical base64
        TEXT + '\n' + PETER_SIG.replace('AM=', 'AM'), // unpadded
        TEXT + '\n' + '— PeterNeumann x08gow==\n', // key ID only, no signature bytes
        TEXT + '\n' + '— PeterNeumann \n',
        TEXT + '\n' + '— PeterNeumann\n',
        TEXT + '\n' + '—  x08go/ZJ\n',
        TEXT + '\n' + PETER_SIG.replace('\n', ' \n'),
      ];
      for (const m of bad) {
        for (const input of [m, Buffer.from(m)]) {
          assert.throws(() => parseSignedNote(input), (e: unknown) => isPkglogError(e, 'malformed'), JSON.stringify(m));
          assert.throws(() => verifyNote(input, [peter]), (e: unknown) => isPkglogError(e, 'malformed'));
        }
      }
      const invalidUtf8 = Buffer.concat([Buffer.from([0xff]), Buffer.from(TEXT + '\n' + PETER_SIG)]);
      throwsCode(() => parseSignedNote(invalidUtf8), 'malformed');
      const overlong = Buffer.concat([Buffer.from([0xc0, 0xaf, 0x0a, 0x0a]), Buffer.from(PETER_SIG)]);
      throwsCode(() => parseSignedNote(overlong), 'malformed');
    });

    it('splits text and signatures at the last blank line', () => {
      const text = 'first paragraph\n\nsecond\n\n\nthird\n';
      const note = signNote(text, [parseSignerKey(PETER_SKEY)]);
      const r = verifyNote(note, [peter]);
      assert.equal(r.note.text, text);
      assert.equal(parseSignedNote('\n\n' + PETER_SIG).text, '\n');
    });

    it('keeps a byte order mark and non-ASCII text as bytes', () => {
      const text = '\ufeffüñí©ødé 🎉\n';
      const r = verifyNote(signNote(text, [parseSignerKey(PETER_SKEY)]), [peter]);
      assert.equal(r.note.text, text);
    });

    it('enforces caps: at least 16 and at most 100 signatures, 1 MiB', () => {
      const s = parseSignerKey(PETER_SKEY);
      const grease = (i: number) => formatSignatureLine({ name: `grease${i}.example`, keyId: Buffer.from([i, 0, 0, 1]), signature: Buffer.alloc(64, i) });
      const signed = signNote(TEXT, [s]);
      for (const n of [16, MAX_NOTE_SIGNATURES]) {
        const note = signed + Array.from({ length: n - 1 }, (_, i) => grease(i)).join('');
        assert.equal(parseSignedNote(note).signatures.length, n);
        assert.equal(verifyNote(note, [peter]).verified.length, 1);
      }
      throwsCode(() => parseSignedNote(TEXT + '\n' + PETER_SIG.repeat(MAX_NOTE_SIGNATURES + 1)), 'too_large');
      const big = 'x'.repeat(MAX_NOTE_SIZE) + '\n\n' + PETER_SIG;
      throwsCode(() => parseSignedNote(big), 'too_large');
      throwsCode(() => parseSignedNote(Buffer.from(big)), 'too_large');
      const justFits = 'x'.repeat(MAX_NOTE_SIZE - 2 - Buffer.byteLength(PETER_SIG) - 1) + '\n\n' + PETER_SIG;
      assert.equal(Buffer.byteLength(justFits), MAX_NOTE_SIZE - 1);
      parseSignedNote(justFits);
    });

    it('checks log signatures and cosignatures in one call', () => {
      const log = ed25519Signer('example.com/log', Buffer.alloc(32, 1));
      const w = cosignatureSigner('witness.example/w1', Buffer.alloc(32, 2), () => 1700000000);
      const note = signNote('example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n', [log, w]);
      const vLog = parseVerifierKey(formatVerifierKey(log.name, 1, log.publicKey));
      const vW = parseVerifierKey(formatVerifierKey(w.name, 4, w.publicKey));
      assert.equal(vW.type, 4);
      assert.deepEqual(verifyNote(note, [vLog, vW]).verified.map((v) => v.verifier.type), [1, 4]);
      // A type-0x01 verifier for the witness key has another key ID: the cosignature is just unknown.
      const vWas1 = ed25519Verifier(w.name, w.publicKey);
      assert.equal(verifyNote(note, [vLog, vWas1]).verified.length, 1);
    });
  });

  describe('properties', () => {
    const log = ed25519Signer('example.com/log', Buffer.alloc(32, 1));
    const w = cosignatureSigner('witness.example/w1', Buffer.alloc(32, 2), () => 1700000000);
    const vLog = ed25519Verifier(log.name, log.publicKey);
    const vW = parseVerifierKey(formatVerifierKey(w.name, 4, w.publicKey));
    const text = 'example.com/log\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n';

    it('every single-bit flip of a singly signed note fails verification', () => {
      const note = Buffer.from(signNote(text, [log]));
      for (let i = 0; i < note.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const m = Buffer.from(note);
          m[i]! ^= 1 << bit;
          assert.throws(() => verifyNote(m, [vLog]), PkglogError, `byte ${i} bit ${bit}`);
        }
      }
    });

    it('no single-bit flip of a log+cosigned note keeps both signatures valid', () => {
      const note = Buffer.from(signNote(text, [log, w]));
      for (let i = 0; i < note.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const m = Buffer.from(note);
          m[i]! ^= 1 << bit;
          let n = 0;
          try {
            const r = verifyNote(m, [vLog, vW]);
            assert.equal(r.note.text, text);
            n = r.verified.length;
          } catch (e) {
            assert.ok(e instanceof PkglogError);
          }
          assert.ok(n < 2, `byte ${i} bit ${bit}`);
        }
      }
    });

    it('accepts grease lines and any signature order', () => {
      const sigs = [signText(text, log), signText(text, w)];
      const arbGrease = fc.record({
        name: fc.constantFrom('example.com/log', 'witness.example/w1', 'grease.example', 'ġrease'),
        keyId: fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => Buffer.from(b)),
        signature: fc.uint8Array({ minLength: 1, maxLength: 100 }).map((b) => Buffer.from(b)),
      });
      fc.assert(
        fc.property(fc.array(arbGrease, { maxLength: 14 }), fc.integer(), (grease, seed) => {
          // Grease that collides on both name and key ID with a known key would be a (bad) signature by it.
          fc.pre(grease.every((g) => !sigs.some((s) => s.name === g.name && s.keyId.equals(g.keyId))));
          const all = [...sigs, ...grease];
          let x = seed;
          for (let i = all.length - 1; i > 0; i--) {
            x = (x * 1103515245 + 12345) & 0x7fffffff;
            const j = x % (i + 1);
            [all[i], all[j]] = [all[j]!, all[i]!];
          }
          const r = verifyNote(formatSignedNote({ text, signatures: all }), [vLog, vW]);
          assert.deepEqual(new Set(r.verified.map((v) => v.verifier)), new Set([vLog, vW]));
        }),
        { numRuns: 100 },
      );
    });

    it('parsers only throw PkglogError on arbitrary input', () => {
      const valid = signNote(text, [log, w]);
      const nearValid = fc
        .tuple(fc.nat(valid.length), fc.nat(valid.length), fc.string({ unit: 'binary', maxLength: 8 }))
        .map(([a, b, s]) => valid.slice(0, Math.min(a, b)) + s + valid.slice(Math.max(a, b)));
      fc.assert(
        fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string(), nearValid), (s) => {
          onlyPkglogErrors(() => parseSignedNote(s));
          onlyPkglogErrors(() => verifyNote(s, [vLog, vW]));
          onlyPkglogErrors(() => parseVerifierKey(s));
          onlyPkglogErrors(() => parseSignerKey(s));
          onlyPkglogErrors(() => parseSignerKey(s, () => 1));
        }),
        { numRuns: 500 },
      );
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
          onlyPkglogErrors(() => parseSignedNote(b));
          onlyPkglogErrors(() => verifyNote(b, [vLog]));
        }),
        { numRuns: 300 },
      );
    });

    it('format ∘ parse round-trips', () => {
      const line = fc.string({ maxLength: 20 }).filter((s) => !/[\u0000-\u001f]|\p{Cs}/u.test(s));
      const name = fc.string({ minLength: 1, maxLength: 12 }).filter(isValidKeyName);
      const arbNote: fc.Arbitrary<Note> = fc.record({
        text: fc.array(line, { minLength: 1, maxLength: 6 }).map((ls) => ls.map((l) => l + '\n').join('')),
        signatures: fc.array(
          fc.record({
            name,
            keyId: fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => Buffer.from(b)),
            signature: fc.uint8Array({ minLength: 1, maxLength: 80 }).map((b) => Buffer.from(b)),
          }).map((r) => ({ ...r })),
          { minLength: 1, maxLength: 5 },
        ),
      }).map((r) => ({ ...r }));
      fc.assert(
        fc.property(arbNote, (note) => {
          const s = formatSignedNote(note);
          const p = parseSignedNote(s);
          assert.deepEqual(p, note);
          assert.equal(formatSignedNote(p), s);
          assert.deepEqual(parseSignedNote(Buffer.from(s)), note);
        }),
        { numRuns: 300 },
      );
    });
  });
});
