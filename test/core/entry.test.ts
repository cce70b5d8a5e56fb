/** The entry codec: signed messages, leaf format v1 vector, strict decoding, and parser properties. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import * as ed from '@noble/ed25519';
import { PkglogError } from '../../core/errors.ts';
import { MAX_LEAF_SIZE, decodeLeaf, encodeLeaf, parseSubmission, publisherMessage, registryMessage, verifySubmissionSignatures, type Entry } from '../../core/entry.ts';
import { leafHash } from '../../core/hash.ts';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());

const V = JSON.parse(readFileSync(new URL('../vectors/leaf-v1.json', import.meta.url), 'utf8'));
const b64 = (s: string) => Buffer.from(s, 'base64');

const vectorEntry = (): Entry => ({
  ecosystem: V.ecosystem, name: V.name, version: V.version, filename: V.filename, sha256: V.sha256,
  publisherKey: b64(V.publisherKey), publisherSignature: b64(V.publisherSignature),
  registryName: 'pypi.org', registrySignature: b64(V.registrySignature), integratedTime: V.integratedTime,
});

const isTyped = (e: unknown) => e instanceof PkglogError;

describe('core/entry', () => {
  it('builds the publisher and registry messages byte for byte', () => {
    assert.equal(publisherMessage(vectorEntry()).toString(), V.publisherMessage);
    const e = vectorEntry();
    assert.equal(registryMessage(e, e.publisherKey, e.publisherSignature).toString(), V.registryMessage);
  });

  it('the vector signatures verify with @noble/ed25519 (independent implementation) and with the log', () => {
    const e = vectorEntry();
    assert.ok(ed.verify(e.publisherSignature, publisherMessage(e), e.publisherKey));
    assert.ok(ed.verify(e.registrySignature, registryMessage(e, e.publisherKey, e.publisherSignature), b64(V.registryKey)));
    verifySubmissionSignatures(e, b64(V.registryKey));
    assert.throws(() => verifySubmissionSignatures({ ...e, sha256: '0'.repeat(64) }, b64(V.registryKey)), /publisher signature/);
  });

  it('encodes the leaf-format v1 vector and decodes it back', () => {
    const leaf = encodeLeaf(vectorEntry());
    assert.equal(leaf.toString('hex'), V.leaf);
    assert.equal(leafHash(leaf).toString('hex'), V.leafHash);
    assert.deepEqual(decodeLeaf(leaf), vectorEntry());
  });

  it('the largest valid version-1 entry encodes to MAX_LEAF_SIZE bytes less the native digest of version 2', () => {
    const long = 'v'.repeat(255);
    const e: Entry = { ...vectorEntry(), ecosystem: 'e'.repeat(32), name: 'n'.repeat(255), version: long, filename: long, registryName: 'r'.repeat(64) };
    assert.equal(encodeLeaf(e).length, MAX_LEAF_SIZE - 65);
    assert.deepEqual(decodeLeaf(encodeLeaf(e)), e);
  });

  it('decodes strictly: version, truncation, trailing bytes, empty and invalid fields', () => {
    const leaf = Buffer.from(V.leaf, 'hex');
    const bad = (b: Buffer, re: RegExp) => assert.throws(() => decodeLeaf(b), (e: unknown) => isTyped(e) && re.test((e as Error).message));
    bad(Buffer.concat([leaf, Buffer.from([0])]), /trailing/);
    bad(leaf.subarray(0, leaf.length - 1), /truncated/);
    const v3 = Buffer.from(leaf);
    v3[0] = 3;
    bad(v3, /version/);
    const noName = Buffer.from(leaf);
    noName[9] = 0;
    bad(noName, /empty/);
    const badUtf8 = Buffer.from(leaf);
    badUtf8[15] = 0xff; // first byte of the name
    assert.throws(() => decodeLeaf(badUtf8), isTyped);
    const upper = Buffer.from(leaf);
    upper[15] = 'R'.charCodeAt(0);
    assert.throws(() => decodeLeaf(upper), /PEP 503/);
  });

  it('decodeLeaf only ever throws the typed error, and accepts only what it re-encodes identically', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      try {
        const e = decodeLeaf(bytes);
        assert.ok(encodeLeaf(e).equals(Buffer.from(bytes)));
      } catch (e) {
        if (!isTyped(e)) throw e;
      }
    }), { numRuns: 2000 });
    const leaf = Buffer.from(V.leaf, 'hex');
    fc.assert(fc.property(fc.nat(leaf.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
      const m = Buffer.from(leaf);
      m[i]! ^= x;
      try {
        const e = decodeLeaf(m);
        assert.ok(encodeLeaf(e).equals(m), 'a decodable mutation is a different canonical leaf');
        assert.notEqual(leafHash(m).toString('hex'), V.leafHash);
      } catch (e) {
        if (!isTyped(e)) throw e;
      }
    }));
  });

  it('round-trips random valid entries', () => {
    const text = fc.stringMatching(/^[A-Za-z0-9.+~!@#%^&*()=_-]{1,40}$/);
    fc.assert(fc.property(
      fc.stringMatching(/^[a-z0-9]{1,20}(-[a-z0-9]{1,5}){0,3}$/), text, text, fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.nat({ max: 2 ** 48 }),
      (name, version, filename, sha, t) => {
        const e: Entry = { ...vectorEntry(), name, version, filename: filename.replace(/[/\\]/g, ''), sha256: Buffer.from(sha).toString('hex'), integratedTime: t };
        if (e.filename === '') return;
        assert.deepEqual(decodeLeaf(encodeLeaf(e)), e);
      },
    ));
  });

  it('parseSubmission only ever throws the typed error on arbitrary JSON', () => {
    fc.assert(fc.property(fc.jsonValue(), (j) => {
      try {
        parseSubmission(j);
      } catch (e) {
        if (!isTyped(e)) throw e;
      }
    }), { numRuns: 1000 });
    const good = { ecosystem: V.ecosystem, name: V.name, version: V.version, filename: V.filename, sha256: V.sha256,
      publisher: { key: V.publisherKey, signature: V.publisherSignature }, registry: { name: 'pypi.org', signature: V.registrySignature } };
    fc.assert(fc.property(fc.constantFrom('ecosystem', 'name', 'version', 'filename', 'sha256', 'publisher', 'registry'), fc.jsonValue(), (k, v) => {
      try {
        parseSubmission({ ...good, [k]: v });
      } catch (e) {
        if (!isTyped(e)) throw e;
      }
    }), { numRuns: 1000 });
    assert.equal(parseSubmission(good).name, 'requests');
  });
});
