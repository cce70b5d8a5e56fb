/** The log's configuration: flags over environment over defaults; registries and witnesses files. */
import assert from 'node:assert/strict';
import { formatVerifierKey, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519, SIG_TYPE_MLDSA44 } from '../../core/note.ts';
import { resolveConfig } from '../../server/config.ts';
import { parseListen } from '../../runtime/listen.ts';
import { parseRegistries } from '../../server/registries.ts';
import { parseWitnesses } from '../../server/witness-config.ts';
import { mldsa44KeyPairFromSeed } from '../../core/mldsa.ts';
import { REGISTRY } from '../support/submissions.ts';

describe('server: configuration', () => {
  it('takes flags over PKGLOG_* environment variables over defaults', () => {
    const env = { PKGLOG_DATA_DIR: '/tmp/env-dir', PKGLOG_LISTEN: '0.0.0.0:9000', PKGLOG_ORIGIN: 'env.example/log', PKGLOG_KEY_FILE: '/tmp/k' };
    const fromEnv = resolveConfig({}, env);
    assert.deepEqual([fromEnv.dataDir, fromEnv.host, fromEnv.port, fromEnv.origin, fromEnv.keyFile], ['/tmp/env-dir', '0.0.0.0', 9000, 'env.example/log', '/tmp/k']);
    const fromFlags = resolveConfig({ dataDir: '/tmp/flag-dir', listen: '127.0.0.1:0' }, env);
    assert.equal(fromFlags.dataDir, '/tmp/flag-dir');
    assert.equal(fromFlags.port, 0);
    const defaults = resolveConfig({}, {});
    assert.equal(defaults.host, '127.0.0.1');
    assert.equal(defaults.port, 8080);
    assert.match(defaults.keyFile, /data\/log\.key$/);
    assert.equal(defaults.batchIntervalMs, 100);
    assert.equal(defaults.witnessQuorum, 0);
  });

  it('parses listen addresses strictly', () => {
    assert.deepEqual(parseListen('[::1]:80'), { host: '::1', port: 80 });
    for (const bad of ['8080', 'host:', 'host:65536', 'host:08080x', ':80', 'a b:1']) assert.throws(() => parseListen(bad), /host:port|port/, bad);
  });

  it('reads registries given as vkeys or base64 keys, with line numbers in errors', () => {
    const vkey = formatVerifierKey('npmjs.com', SIG_TYPE_ED25519, REGISTRY.publicKey);
    const r = parseRegistries(`# registries\n\npypi.org ${REGISTRY.publicKey.toString('base64')} ecosystems=pypi\nnpmjs.com ${vkey} ecosystems=*\n`);
    assert.ok(r.get('pypi.org')!.publicKey.equals(REGISTRY.publicKey));
    assert.ok(r.get('npmjs.com')!.publicKey.equals(REGISTRY.publicKey));
    assert.throws(() => parseRegistries('a.org AAAA\n'), /registries:1: .*32 bytes/);
    assert.throws(() => parseRegistries(`x ${vkey} ecosystems=npm\nx ${vkey} ecosystems=npm\n`), /:2: registry x is listed twice/);
    assert.throws(() => parseRegistries('only-one-field\n'), /expected/);
    const cosigner = formatVerifierKey('w', SIG_TYPE_COSIGNATURE_V1, REGISTRY.publicKey);
    assert.throws(() => parseRegistries(`w ${cosigner} ecosystems=npm\n`), /Ed25519/);
  });

  it('reads witnesses: http(s) URL and a cosignature/v1 or ML-DSA-44 vkey; two keys for one URL are one witness', () => {
    const vkey = formatVerifierKey('witness.example', SIG_TYPE_COSIGNATURE_V1, REGISTRY.publicKey);
    assert.deepEqual(parseWitnesses(`http://127.0.0.1:1234 ${vkey}\n`), [{ url: 'http://127.0.0.1:1234', vkey, vkeys: [vkey] }]);
    assert.throws(() => parseWitnesses(`ftp://x ${vkey}\n`), /http/);
    const noteKey = formatVerifierKey('witness.example', SIG_TYPE_ED25519, REGISTRY.publicKey);
    assert.throws(() => parseWitnesses(`http://x ${noteKey}\n`), /0x04/);
    const pq = formatVerifierKey('witness.example', SIG_TYPE_MLDSA44, mldsa44KeyPairFromSeed(Buffer.alloc(32, 1)).publicKey);
    const other = formatVerifierKey('w2.example', SIG_TYPE_COSIGNATURE_V1, Buffer.alloc(32, 2));
    assert.deepEqual(parseWitnesses(`http://a.example/w ${vkey}\nhttp://b.example ${other}\nhttp://a.example/w/ ${pq}\n`), [
      { url: 'http://a.example/w', vkey, vkeys: [vkey, pq] },
      { url: 'http://b.example', vkey: other, vkeys: [other] },
    ]);
  });
});
