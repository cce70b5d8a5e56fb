/**
 * Post-quantum end to end, real processes on 127.0.0.1: `pkglog serve` signs every checkpoint with its Ed25519 key
 * AND its own ML-DSA-44 subtree/v1 cosignature (key created on first start next to the Ed25519 one); three
 * `pkglog witness` processes cosign with both of their keys by default (one runs ML-DSA-44 on pure JavaScript,
 * PKGLOG_MLDSA_BACKEND=noble, one on pqclean's WebAssembly build, one on the native addon; one checks the log's
 * ML-DSA-44 signature instead of its Ed25519 one); the log is configured with both keys of each witness and keeps both
 * cosignatures. /checkpoint, the submission reply's tlog-proof and GET /v1/entries/0/proof carry the log's two
 * signatures and the witnesses' six; `pkglog verify --require-pq` passes online and offline with a policy of ML-DSA
 * keys, and fails (exit 3) with a policy that has only Ed25519 ones. `--mldsa off` signs with Ed25519 alone.
 */
import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatVerifierKey, parseSignedNote, parseVerifierKey, verifyNote, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519, SIG_TYPE_MLDSA44 } from '../../core/note.ts';
import { cosignatureTimestamp, COSIGNATURE_MLDSA44_SIZE } from '../../core/cosignature.ts';
import { parseTlogProof } from '../../core/tlog-proof.ts';
import { parsePolicy } from '../../core/policy.ts';
import { loadOrCreateLogKey, loadOrCreateLogMlDsaKey } from '../../server/keys.ts';
import { tempDir } from '../support/log-harness.ts';
import { pkglogOk, startProcess } from '../support/process.ts';
import { addTestRegistry, cleanUpAfter, logEnv, startWitness } from '../support/e2e-setup.ts';
import { runAsync } from '../client/helpers.ts';
import { REGISTRY, REGISTRY_NAME, artifact, submissionBody } from '../support/submissions.ts';

const ORIGIN = 'example.test/pq-log';

describe('e2e: ML-DSA-44 log cosignature, witnesses cosigning with both keys, verify --require-pq (real processes)', function () {
  this.timeout(240_000);
  const { dirs, procs } = cleanUpAfter();

  it('checkpoints and proofs carry the log\'s ML-DSA-44 cosignature and both cosignatures of every witness; --require-pq verifies', async () => {
    const logDir = tempDir('pkglog-pq-log-');
    const work = tempDir('pkglog-pq-work-');
    dirs.push(logDir, work);
    // The log's keys exist before the witnesses are told about them (as an operator would do it: keys first).
    const edKey = loadOrCreateLogKey(join(logDir, 'log.key'), ORIGIN);
    const pqKey = loadOrCreateLogMlDsaKey(join(logDir, 'log-mldsa.key'), ORIGIN);
    assert.equal(statSync(join(logDir, 'log-mldsa.key')).mode & 0o777, 0o600);
    const wDirs = [1, 2, 3].map((i) => tempDir(`pkglog-pq-w${i}-`));
    dirs.push(...wDirs);
    const env = logEnv(logDir, ORIGIN);
    // w3 is told the log's ML-DSA-44 key: it checks the log's post-quantum signature on every request.
    const logKeyFor = [edKey.vkey, edKey.vkey, pqKey.vkey];
    await Promise.all([
      ...wDirs.map((d, i) => pkglogOk(['witness', 'add-log', ORIGIN, logKeyFor[i]!, '--data-dir', d])),
      addTestRegistry(env),
    ]);
    const backends = ['noble', 'wasm', ''];
    const ws = await Promise.all(wDirs.map((d, i) => startWitness(d, `witness.test/pq${i + 1}`, { PKGLOG_MLDSA_BACKEND: backends[i]! }, 60_000)));
    procs.push(...ws);
    // Each witness has two keys by default: /vkeys lists both, the start-up lines print both.
    const wKeys = await Promise.all(ws.map(async (w) => (await (await fetch(`${w.url}/vkeys`)).text()).trimEnd().split('\n')));
    for (const [i, keys] of wKeys.entries()) {
      assert.deepEqual(keys.map((k) => parseVerifierKey(k).type), [SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44]);
      assert.deepEqual([ws[i]!.info.get('vkey'), ws[i]!.info.get('also-vkey')], keys);
    }
    for (const [i, w] of ws.entries()) for (const k of wKeys[i]!) await pkglogOk(['witnesses', 'add', w.url, k], env);

    const log = await startProcess(['serve', '--witness-quorum', '3', '--witness-interval', '200', '--witness-wait', '60000'], env, 60_000);
    procs.push(log);
    assert.equal(log.info.get('vkey'), edKey.vkey);
    assert.equal(log.info.get('also-vkey'), pqKey.vkey);
    assert.equal(await (await fetch(`${log.url}/vkeys`)).text(), `${edKey.vkey}\n${pqKey.vkey}\n`);

    // A submission is answered once all three witnesses cosigned a checkpoint containing it (quorum 3: each counts once).
    const r = await fetch(`${log.url}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submissionBody(0)) });
    const body = (await r.json()) as { proof: string; index: number };
    assert.equal(r.status, 200, JSON.stringify(body));
    const logVerifiers = [parseVerifierKey(edKey.vkey), parseVerifierKey(pqKey.vkey)];
    const witnessVerifiers = wKeys.flat().map(parseVerifierKey);
    const signersOf = (note: string) => verifyNote(note, [...logVerifiers, ...witnessVerifiers]).verified.map((v) => `${v.verifier.name}/${v.verifier.type}`).sort();
    const everyone = [`${ORIGIN}/1`, `${ORIGIN}/6`, ...[1, 2, 3].flatMap((i) => [`witness.test/pq${i}/4`, `witness.test/pq${i}/6`])].sort();
    const replyCheckpoint = parseTlogProof(body.proof).checkpoint;
    assert.deepEqual(signersOf(replyCheckpoint), everyone, 'the reply\'s proof: log Ed25519 + ML-DSA, 3 witnesses × 2');
    // The log's own ML-DSA cosignature is a timestamped subtree/v1 signature with a non-zero timestamp.
    const logPqSig = parseSignedNote(replyCheckpoint).signatures.find((s) => s.name === ORIGIN && s.signature.length === COSIGNATURE_MLDSA44_SIZE)!;
    assert.ok(cosignatureTimestamp(logPqSig) > 1_700_000_000);
    // /checkpoint and GET /v1/entries/0/proof carry them too.
    assert.deepEqual(signersOf(await (await fetch(`${log.url}/checkpoint`)).text()), everyone);
    const proofText = await (await fetch(`${log.url}/v1/entries/0/proof`)).text();
    assert.deepEqual(signersOf(parseTlogProof(proofText).checkpoint), everyone);
    // The witness that knows the log's ML-DSA key stored (and serves) the checkpoint with that signature.
    const w3 = await (await fetch(`${ws[2]!.url}/${(await import('node:crypto')).createHash('sha256').update(ORIGIN).digest('hex')}/checkpoint`)).text();
    assert.ok(verifyNote(w3, [parseVerifierKey(pqKey.vkey)]).verified.length === 1);

    // Clients: pkglog verify with --require-pq, online and offline.
    const a = artifact(0);
    const file = join(work, a.filename);
    writeFileSync(file, 'content 0');
    const proofFile = join(work, 'entry.tlog-proof');
    writeFileSync(proofFile, proofText);
    const pqPolicy = join(work, 'pq.policy');
    writeFileSync(pqPolicy, `log ${pqKey.vkey} ${log.url}\n${wKeys.map((k, i) => `witness p${i + 1} ${k[1]}\n`).join('')}group all-pq all p1 p2 p3\nquorum all-pq\n`);
    const edPolicy = join(work, 'ed.policy');
    writeFileSync(edPolicy, `log ${edKey.vkey} ${log.url}\n${wKeys.map((k, i) => `witness e${i + 1} ${k[0]}\n`).join('')}group all-ed all e1 e2 e3\nquorum all-ed\n`);
    const registryKey = formatVerifierKey(REGISTRY_NAME, SIG_TYPE_ED25519, REGISTRY.publicKey);
    const verify = (policy: string, extra: string[]) =>
      runAsync(['verify', file, '--ecosystem', a.ecosystem, '--name', a.name, '--version', a.version, '--policy', policy, '--registry-key', registryKey, '--no-state', ...extra]);
    for (const extra of [['--require-pq'], ['--require-pq', '--proof', proofFile, '--offline'], ['--proof', proofFile, '--offline']]) {
      const v = await verify(pqPolicy, extra);
      assert.equal(v.code, 0, `${extra.join(' ')}: ${v.stdout}${v.stderr}`);
    }
    // The Ed25519 keys verify the same proof without --require-pq, and fail it with (no post-quantum key: exit 3).
    assert.equal((await verify(edPolicy, ['--proof', proofFile, '--offline'])).code, 0);
    const refused = await verify(edPolicy, ['--require-pq', '--proof', proofFile, '--offline']);
    assert.equal(refused.code, 3, refused.stdout + refused.stderr);
    assert.match(refused.stdout + refused.stderr, /no log key in the policy/); // --require-pq left no (ML-DSA) log key
    // The log's own policy (GET /v1/policy) lists both log keys and both keys of every witness, either key filling the
    // witness's slot in the quorum of 3: it verifies the proof, and with --require-pq counts only its ML-DSA-44 lines.
    const own = await (await fetch(`${log.url}/v1/policy`)).text();
    const ownPolicy = parsePolicy(own);
    assert.deepEqual(ownPolicy.logs.map((l) => l.verifier.type), [SIG_TYPE_ED25519, SIG_TYPE_MLDSA44]);
    assert.deepEqual(ownPolicy.witnesses.map((w) => w.name), [1, 2, 3].flatMap((i) => [`witness.test/pq${i}`, `witness.test/pq${i}-pq`]));
    const ownFile = join(work, 'own.policy');
    writeFileSync(ownFile, own);
    for (const extra of [['--proof', proofFile, '--offline'], ['--require-pq', '--proof', proofFile, '--offline']]) {
      const v = await verify(ownFile, extra);
      assert.equal(v.code, 0, `the log's own policy ${extra.join(' ')}: ${v.stdout}${v.stderr}`);
    }
  });

  it('--mldsa off: no ML-DSA key is created and checkpoints carry the Ed25519 signature only', async () => {
    const logDir = tempDir('pkglog-pq-off-');
    dirs.push(logDir);
    const log = await startProcess(['serve', '--mldsa', 'off'], { PKGLOG_DATA_DIR: logDir, PKGLOG_LISTEN: '127.0.0.1:0' }, 60_000);
    procs.push(log);
    assert.equal(existsSync(join(logDir, 'log-mldsa.key')), false);
    assert.equal(log.info.get('also-vkey'), undefined);
    const vkeys = (await (await fetch(`${log.url}/vkeys`)).text()).trimEnd().split('\n');
    assert.deepEqual(vkeys, [log.info.get('vkey')]);
    const cp = await (await fetch(`${log.url}/checkpoint`)).text();
    assert.equal(parseSignedNote(cp).signatures.length, 1);
    const bad = await runAsync(['serve', '--mldsa', 'maybe'], { PKGLOG_DATA_DIR: logDir, PKGLOG_LISTEN: '127.0.0.1:0' });
    assert.equal(bad.code, 2, bad.stderr);
    const badBackend = await runAsync(['keygen', '--name', 'x', '--out', join(logDir, 'x.key')], { PKGLOG_MLDSA_BACKEND: 'openssl' });
    assert.equal(badBackend.code, 2, badBackend.stderr);
    assert.match(badBackend.stderr, /PKGLOG_MLDSA_BACKEND/);
  });
});
