/**
 * Leaf format version 2 (docs/leaf-format.md): the ecosystem's native digest (npm's sha512) next to sha256, signed
 * by publisher and registry. The vector (test/vectors/leaf-v2.json) is rebuilt here byte by byte from the layout
 * table, not with encodeLeaf; its signatures are checked with @noble/ed25519; version-1 leaves stay valid.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import * as ed from '@noble/ed25519';
import { PkglogError } from '../../core/errors.ts';
import { MAX_LEAF_SIZE, decodeLeaf, encodeLeaf, formatIntegrity, formatSubmission, parseSubmission, publisherMessage, registryMessage, sameSubmission, verifySubmissionSignatures, type Entry } from '../../core/entry.ts';
import { leafHash } from '../../core/hash.ts';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());

const V = JSON.parse(readFileSync(new URL('../vectors/leaf-v2.json', import.meta.url), 'utf8'));
const V1 = JSON.parse(readFileSync(new URL('../vectors/leaf-v1.json', import.meta.url), 'utf8'));
const b64 = (s: string) => Buffer.from(s, 'base64');

const vectorEntry = (): Entry => ({
  ecosystem: V.ecosystem, name: V.name, version: V.version, filename: V.filename, sha256: V.sha256,
  nativeDigest: { algorithm: 'sha512', digest: b64(V.nativeDigest.digest) },
  publisherKey: b64(V.publisherKey), publisherSignature: b64(V.publisherSignature),
  registryName: V.registryName, registrySignature: b64(V.registrySignature), integratedTime: V.integratedTime,
});

const str = (s: string) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);

describe('core/entry: leaf format version 2 (native digest)', () => {
  it('the vector digests are the content\'s SHA-256 and SHA-512, and its integrity is npm\'s form', () => {
    assert.equal(createHash('sha256').update(V.content).digest('hex'), V.sha256);
    assert.equal(createHash('sha512').update(V.content).digest('base64'), V.nativeDigest.digest);
    assert.equal(formatIntegrity(vectorEntry().nativeDigest!), V.integrity);
  });

  it('the signed messages are version 2, with the native digest line, byte for byte', () => {
    const e = vectorEntry();
    const line = `sha512:${b64(V.nativeDigest.digest).toString('hex')}\n`;
    assert.equal(publisherMessage(e).toString(), `pkglog/v2/artifact\nnpm\nleft-pad\n1.3.0\nleft-pad-1.3.0.tgz\n${V.sha256}\n${line}`);
    assert.equal(publisherMessage(e).toString(), V.publisherMessage);
    assert.equal(registryMessage(e, e.publisherKey, e.publisherSignature).toString(), `pkglog/v2/registry\nnpm\nleft-pad\n1.3.0\nleft-pad-1.3.0.tgz\n${V.sha256}\n${line}${V.publisherKey}\n${V.publisherSignature}\n`);
  });

  it('the vector signatures verify with @noble/ed25519 and with the log; they do not cover another digest', () => {
    const e = vectorEntry();
    assert.ok(ed.verify(e.publisherSignature, publisherMessage(e), e.publisherKey));
    assert.ok(ed.verify(e.registrySignature, registryMessage(e, e.publisherKey, e.publisherSignature), b64(V.registryKey)));
    verifySubmissionSignatures(e, b64(V.registryKey));
    const other = { ...e, nativeDigest: { algorithm: 'sha512' as const, digest: Buffer.alloc(64) } };
    assert.throws(() => verifySubmissionSignatures(other, b64(V.registryKey)), /publisher signature/);
    const { nativeDigest: _, ...withoutDigest } = e;
    assert.throws(() => verifySubmissionSignatures(withoutDigest, b64(V.registryKey)), /publisher signature/);
  });

  it('the leaf is the layout table, field by field; encodeLeaf and decodeLeaf agree with it', () => {
    const time = Buffer.alloc(8);
    time.writeBigUInt64BE(BigInt(V.integratedTime));
    const expected = Buffer.concat([
      Buffer.from([0x02]), time, str('npm'), str('left-pad'), str('1.3.0'), str('left-pad-1.3.0.tgz'),
      Buffer.from(V.sha256, 'hex'), Buffer.from([0x01]), b64(V.nativeDigest.digest),
      b64(V.publisherKey), b64(V.publisherSignature), str(V.registryName), b64(V.registrySignature),
    ]);
    assert.equal(expected.toString('hex'), V.leaf);
    assert.equal(encodeLeaf(vectorEntry()).toString('hex'), V.leaf);
    assert.equal(leafHash(expected).toString('hex'), V.leafHash);
    assert.deepEqual(decodeLeaf(expected), vectorEntry());
  });

  it('version-1 leaves stay valid and unchanged: no native digest means version 1', () => {
    const leaf = Buffer.from(V1.leaf, 'hex');
    const e = decodeLeaf(leaf);
    assert.equal(e.nativeDigest, undefined);
    assert.ok(encodeLeaf(e).equals(leaf));
    assert.equal(publisherMessage(e).toString(), V1.publisherMessage);
  });

  it('decodes strictly: unknown algorithm, truncated digest, trailing bytes', () => {
    const leaf = Buffer.from(V.leaf, 'hex');
    const algAt = leaf.indexOf(Buffer.from(V.sha256, 'hex')) + 32;
    assert.equal(leaf[algAt], 0x01);
    const unknown = Buffer.from(leaf);
    unknown[algAt] = 0x07;
    assert.throws(() => decodeLeaf(unknown), /native digest algorithm 7 is unknown/);
    assert.throws(() => decodeLeaf(leaf.subarray(0, algAt + 10)), /truncated/);
    assert.throws(() => decodeLeaf(Buffer.concat([leaf, Buffer.from([0])])), /trailing/);
  });

  it('the submission JSON carries {"nativeDigest": {"algorithm", "digest"}} and round-trips strictly', () => {
    const e = vectorEntry();
    const json = formatSubmission(e);
    assert.deepEqual(json.nativeDigest, { algorithm: 'sha512', digest: V.nativeDigest.digest });
    const back = parseSubmission(JSON.parse(JSON.stringify(json)));
    assert.ok(sameSubmission(back, e));
    const { nativeDigest: _, ...withoutDigest } = e;
    assert.ok(!sameSubmission(back, withoutDigest));
    const bad = (nd: unknown, re: RegExp) => assert.throws(() => parseSubmission({ ...json, nativeDigest: nd }), (x: unknown) => x instanceof PkglogError && re.test((x as Error).message));
    bad({ algorithm: 'md5', digest: V.nativeDigest.digest }, /algorithm must be one of sha512/);
    bad({ algorithm: 'sha512', digest: Buffer.alloc(32).toString('base64') }, /nativeDigest.digest/);
    bad({ algorithm: 'sha512', digest: V.nativeDigest.digest, extra: 1 }, /unknown field nativeDigest.extra/);
    bad('sha512-x', /must be an object/);
  });

  it('the largest version-2 entry is exactly MAX_LEAF_SIZE bytes; every v2 leaf re-encodes identically', () => {
    const long = 'v'.repeat(255);
    const e: Entry = { ...vectorEntry(), ecosystem: 'e'.repeat(32), name: 'n'.repeat(255), version: long, filename: long, registryName: 'r'.repeat(64) };
    assert.equal(encodeLeaf(e).length, MAX_LEAF_SIZE);
    fc.assert(fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.integer({ min: 0, max: 2 ** 40 }), (d, t) => {
      const x = { ...vectorEntry(), nativeDigest: { algorithm: 'sha512' as const, digest: Buffer.from(d) }, integratedTime: t };
      const leaf = encodeLeaf(x);
      assert.deepEqual(decodeLeaf(leaf), x);
    }), { numRuns: 200 });
  });
});
