/**
 * Post-quantum verification through the CLI: a tlog-proof whose checkpoint carries the log's Ed25519 signature, its
 * ML-DSA-44 cosignature and cosignatures from ML-DSA-44 and Ed25519 witnesses; `pkglog verify` (offline) with a
 * policy listing both kinds of keys, and with --require-pq, where only the ML-DSA ones count. Keys come from
 * `pkglog keygen --alg ml-dsa-44` (the compiled binary, as a user runs it).
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LogDouble, TestWitness, makeEntry, fileSha, REGISTRY_VKEY } from './log-double.ts';
import { cli, tempDir, writeFile, runAsync } from './helpers.ts';
import { formatSignedNote, parseSignedNote, parseSignerKey, parseVerifierKey, signText, formatVerifierKey, SIG_TYPE_MLDSA44, SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1, type Signer } from '../../core/note.ts';
import { formatTlogProof } from '../../core/tlog-proof.ts';
import { mldsaCosigner } from '../../core/cosignature.ts';
import { seed } from './log-double.ts';

const T0 = 1_750_000_000;

describe('client: ML-DSA-44 keys and pkglog verify --require-pq', function () {
  this.timeout(180_000);
  let tmp: { dir: string; cleanup(): void };
  let log: LogDouble;
  let file: string;
  const content = 'pq wheel';
  const artifact = { ecosystem: 'pypi', name: 'pq', version: '1.0.0', filename: 'pq-1.0.0.whl', sha256: fileSha(content) };
  let logPq: Signer;
  let pqWitnesses: Signer[];
  let edWitnesses: TestWitness[];

  before(async () => {
    tmp = tempDir();
    log = new LogDouble('example.test/pq-log');
    log.append([makeEntry(artifact, T0 * 1000)]);
    log.publish([]);
    file = writeFile(tmp.dir, 'pq-1.0.0.whl', content);
    // The log's ML-DSA key comes from `pkglog keygen --alg ml-dsa-44` run as a real process.
    const r = await runAsync(['keygen', '--name', log.origin, '--alg', 'ml-dsa-44', '--out', join(tmp.dir, 'log-pq.key')]);
    assert.equal(r.code, 0, r.stderr);
    const vkey = r.stdout.trim();
    assert.equal(parseVerifierKey(vkey).type, SIG_TYPE_MLDSA44);
    assert.equal(statSync(join(tmp.dir, 'log-pq.key')).mode & 0o777, 0o600);
    logPq = parseSignerKey(readFileSync(join(tmp.dir, 'log-pq.key'), 'utf8').trim(), () => T0);
    assert.equal(formatVerifierKey(logPq.name, SIG_TYPE_MLDSA44, logPq.publicKey), vkey);
    pqWitnesses = ['pq0.test', 'pq1.test', 'pq2.test'].map((n) => mldsaCosigner(n, seed(n), { timestamp: () => T0 + 1 }));
    edWitnesses = [new TestWitness('ed0.test', T0 + 1), new TestWitness('ed1.test', T0 + 1)];
  });
  after(() => tmp.cleanup());

  function policyFile(name: string, quorum: string): string {
    return writeFile(
      tmp.dir,
      name,
      `log ${log.vkey}\nlog ${formatVerifierKey(log.origin, SIG_TYPE_MLDSA44, logPq.publicKey)}\n` +
        pqWitnesses.map((w, i) => `witness P${i} ${formatVerifierKey(w.name, SIG_TYPE_MLDSA44, w.publicKey)}\n`).join('') +
        edWitnesses.map((w, i) => `witness E${i} ${formatVerifierKey(w.name, SIG_TYPE_COSIGNATURE_V1, w.signer.publicKey)}\n`).join('') +
        quorum,
    );
  }

  /** A tlog-proof for entry 0 whose checkpoint is signed by `signers` (the Ed25519 log key is log.signer). */
  function proofFile(name: string, signers: Signer[]): string {
    const text = parseSignedNote(log.latest).text;
    const note = formatSignedNote({ text, signatures: signers.map((s) => signText(text, s)) });
    return writeFile(tmp.dir, name, formatTlogProof({ extra: log.leaves[0]!, index: 0, inclusionProof: log.inclusionProof(0, 1), checkpoint: note }));
  }

  const verify = (policy: string, proof: string, extra: string[] = []) =>
    cli(['verify', file, '--ecosystem', 'pypi', '--name', 'pq', '--version', '1.0.0', '--policy', policy, '--registry-key', REGISTRY_VKEY, '--proof', proof, '--offline', '--no-state', ...extra], { now: (T0 + 10) * 1000 });

  it('a quorum of ML-DSA cosignatures with the ML-DSA log cosignature verifies, with and without --require-pq', async () => {
    const policy = policyFile('p1', 'group q 2 P0 P1 P2 E0 E1\nquorum q\n');
    const all = proofFile('all.tlog-proof', [log.signer, logPq, ...pqWitnesses, ...edWitnesses.map((w) => w.signer)]);
    for (const extra of [[], ['--require-pq']]) {
      const r = await verify(policy, all, extra);
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(r.out, /VERIFIED/);
    }
    // Only the ML-DSA signatures (no Ed25519 log signature at all): fine either way.
    const pqOnly = proofFile('pq.tlog-proof', [logPq, pqWitnesses[0]!, pqWitnesses[2]!]);
    assert.equal((await verify(policy, pqOnly)).code, 0);
    assert.equal((await verify(policy, pqOnly, ['--require-pq'])).code, 0);
  });

  it('--require-pq ignores Ed25519 signatures: an Ed25519-only log signature or an Ed25519 quorum fails (exit 3)', async () => {
    const policy = policyFile('p2', 'group q 2 P0 P1 P2 E0 E1\nquorum q\n');
    const edQuorum = proofFile('ed.tlog-proof', [log.signer, logPq, pqWitnesses[0]!, ...edWitnesses.map((w) => w.signer)]);
    assert.equal((await verify(policy, edQuorum)).code, 0);
    const r = await verify(policy, edQuorum, ['--require-pq']);
    assert.equal(r.code, 3, r.out + r.err);
    assert.match(r.out + r.err, /quorum/i);
    const edLog = proofFile('edlog.tlog-proof', [log.signer, ...pqWitnesses]);
    assert.equal((await verify(policy, edLog)).code, 0);
    const r2 = await verify(policy, edLog, ['--require-pq']);
    assert.equal(r2.code, 3, r2.out + r2.err);
    assert.match(r2.out + r2.err, /post-quantum|signed by a policy log/);
  });

  it('a tampered ML-DSA witness cosignature fails the checkpoint (exit 3)', async () => {
    const policy = policyFile('p3', 'group q 2 P0 P1 P2\nquorum q\n');
    const text = parseSignedNote(log.latest).text;
    const sigs = [log.signer, logPq, ...pqWitnesses].map((s) => signText(text, s));
    sigs[3]!.signature[500]! ^= 0x40;
    const proof = writeFile(tmp.dir, 'bad.tlog-proof', formatTlogProof({ extra: log.leaves[0]!, index: 0, inclusionProof: [], checkpoint: formatSignedNote({ text, signatures: sigs }) }));
    const r = await verify(policy, proof);
    assert.equal(r.code, 3, r.out + r.err);
  });

  it('keygen: --alg ml-dsa-44 makes a type-0x06 key, the default stays Ed25519, a bad --alg is a usage error', async () => {
    const a = await cli(['keygen', '--name', 'w.example/pq', '--alg', 'ml-dsa-44', '--out', join(tmp.dir, 'w.key'), '--json']);
    assert.equal(a.code, 0, a.err);
    assert.equal(parseVerifierKey(a.json().vkey).type, SIG_TYPE_MLDSA44);
    assert.match(readFileSync(join(tmp.dir, 'w.key'), 'utf8'), /^PRIVATE\+KEY\+w\.example\/pq\+[0-9a-f]{8}\+B[A-Za-z0-9+/]{43}\n$/);
    const b = await cli(['keygen', '--name', 'pub', '--out', join(tmp.dir, 'pub.key')]);
    assert.equal(parseVerifierKey(b.out.trim()).type, SIG_TYPE_ED25519);
    const c = await cli(['keygen', '--name', 'x', '--alg', 'rsa', '--out', join(tmp.dir, 'x.key')]);
    assert.equal(c.code, 2, c.out + c.err);
  });
});
