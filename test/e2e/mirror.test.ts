/**
 * A log, a witness and a mirror as real processes on 127.0.0.1 (`pkglog serve --witness-quorum 1`, `pkglog witness`,
 * `pkglog mirror` in pull mode). The mirror catches up with the log through its tiles, serves the copy with a
 * checkpoint carrying the log's signature, the witness's cosignature and its own; it follows the log as it grows.
 * Then the log is stopped, and `pkglog verify --mirror` (a policy that requires the witness AND the mirror) and
 * `pkglog audit --mirror` still succeed against the mirror alone.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parseSignedNote } from '../../core/note.ts';
import { originHash } from '../../core/hash.ts';
import { parsePolicy, verifyCheckpointWithPolicy } from '../../core/policy.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import { tempDir } from '../support/log-harness.ts';
import { pkglogOk as ok, pkglogRun, startProcess, waitForValue as until } from '../support/process.ts';
import { addTestRegistry, cleanUpAfter, logEnv, startWitness } from '../support/e2e-setup.ts';
import { REGISTRY, REGISTRY_NAME, submissionBody } from '../support/submissions.ts';

const ORIGIN = 'example.test/mirrored-log';

describe('e2e: mirror (pull mode) with a log and a witness; the log stops, the mirror still serves proofs', function () {
  this.timeout(180_000);
  const { dirs, procs } = cleanUpAfter();

  it('follows the log, cosigns only what it holds, and alone serves verify and audit', async () => {
    const [logDir, wDir, mDir, work] = ['log', 'witness', 'mirror', 'work'].map((n) => tempDir(`pkglog-e2e-mirror-${n}-`));
    dirs.push(logDir!, wDir!, mDir!, work!);
    const logKey = loadOrCreateLogKey(join(logDir!, 'log.key'), ORIGIN);
    const env = logEnv(logDir!, ORIGIN);
    await Promise.all([
      ok(['witness', 'add-log', ORIGIN, logKey.vkey, '--data-dir', wDir!]),
      addTestRegistry(env),
    ]);
    const witness = await startWitness(wDir!, 'witness.test/w1');
    procs.push(witness);
    await ok(['witnesses', 'add', witness.url, witness.info.get('vkey')!], env);
    const log = await startProcess(['serve', '--witness-quorum', '1', '--witness-interval', '100', '--witness-wait', '20000'], env);
    procs.push(log);

    const submit = async (from: number, to: number) => {
      const r = await fetch(`${log.url}/v1/entries/batch`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ entries: Array.from({ length: to - from }, (_, k) => submissionBody(from + k)) }),
      });
      assert.equal(r.status, 200, await r.text());
    };
    await submit(0, 300);
    const logSize = async () => parseCheckpoint(parseSignedNote(await (await fetch(`${log.url}/checkpoint`)).text()).text).treeSize;
    await until('the log to publish 300 entries', async () => ((await logSize()) === 300 ? true : undefined));

    await ok(['mirror', 'add-log', ORIGIN, logKey.vkey, log.url, '--data-dir', mDir!]);
    const mirror = await startProcess(['mirror', '--poll-interval', '100'], {
      PKGLOG_MIRROR_DATA_DIR: mDir, PKGLOG_MIRROR_LISTEN: '127.0.0.1:0', PKGLOG_MIRROR_NAME: 'mirror.test/m1',
    });
    procs.push(mirror);
    const copy = `${mirror.url}/${originHash(ORIGIN)}`;
    const policyText = `log ${logKey.vkey} ${log.url}\nwitness w1 ${witness.info.get('vkey')}\nwitness m1 ${mirror.info.get('vkey')}\ngroup both all w1 m1\nquorum both\n`;
    const policy = parsePolicy(policyText);
    const mirrored = (size: number) =>
      until(`the mirror to cosign size ${size}`, async () => {
        const r = await fetch(`${copy}/checkpoint`);
        if (r.status !== 200) return undefined;
        const note = await r.text();
        return parseCheckpoint(parseSignedNote(note).text).treeSize >= size ? note : undefined;
      });
    const first = await mirrored(300);
    // The log's signature, the witness's cosignature (carried from the log's checkpoint) and the mirror's: the policy holds.
    verifyCheckpointWithPolicy(policy, first);

    // The log grows past a bundle boundary: the mirror follows in pull mode.
    await submit(300, 700);
    await until('the log to publish 700 entries', async () => ((await logSize()) === 700 ? true : undefined));
    verifyCheckpointWithPolicy(policy, await mirrored(700));
    for (const path of ['tile/0/001', 'tile/entries/002.p/188', 'tile/1/000.p/2']) {
      const [a, b] = await Promise.all([fetch(`${log.url}/${path}`), fetch(`${copy}/${path}`)]);
      assert.equal(b.status, 200, path);
      assert.deepEqual(Buffer.from(await b.arrayBuffer()), Buffer.from(await a.arrayBuffer()), path);
    }

    // A tlog-proof the registry would publish next to the file (made while the log was up, on its old checkpoint).
    const proofFile = join(work!, 'entry.tlog-proof');
    writeFileSync(proofFile, await (await fetch(`${log.url}/v1/entries/100/proof`)).text());

    // The log goes away.
    await log.stop('SIGKILL');
    const policyFile = join(work!, 'policy.txt');
    writeFileSync(policyFile, policyText);
    const i = 512;
    const file = join(work!, `requests-1.0.${i}-py3-none-any.whl`);
    writeFileSync(file, `content ${i}`);
    const registryKey = `${REGISTRY_NAME}=${REGISTRY.publicKey.toString('base64')}`;
    const state = join(work!, 'state');
    const verified = await pkglogRun(['verify', file, '--ecosystem', 'pypi', '--name', 'requests', '--version', `1.0.${i}`, '--policy', policyFile,
      '--mirror', mirror.url, '--index', String(i), '--registry-key', registryKey, '--state-dir', state, '--json']);
    assert.equal(verified.status, 0, `${verified.stdout}\n${verified.stderr}`);
    const report = JSON.parse(verified.stdout) as { ok: boolean; checks: Array<{ name: string; status: string; message: string }> };
    assert.ok(report.ok);
    // --proof names the entry; the checkpoint (with the mirror's cosignature) and inclusion proof come from the mirror.
    const f100 = join(work!, 'requests-1.0.100-py3-none-any.whl');
    writeFileSync(f100, 'content 100');
    const byProof = await pkglogRun(['verify', f100, '--ecosystem', 'pypi', '--name', 'requests', '--version', '1.0.100', '--policy', policyFile,
      '--mirror', mirror.url, '--proof', proofFile, '--registry-key', registryKey, '--state-dir', state]);
    assert.equal(byProof.status, 0, `${byProof.stdout}\n${byProof.stderr}`);
    // Without --mirror the same command needs the (stopped) log: a network failure, exit 7.
    const direct = await pkglogRun(['verify', file, '--ecosystem', 'pypi', '--name', 'requests', '--version', `1.0.${i}`, '--policy', policyFile,
      '--index', String(i), '--registry-key', registryKey, '--state-dir', join(work!, 'state2')]);
    assert.equal(direct.status, 7, direct.stdout + direct.stderr);
    const audited = await pkglogRun(['audit', '--mirror', mirror.url, '--policy', policyFile, '--registry-key', registryKey, '--state-dir', state, '--quiet', '--json']);
    assert.equal(audited.status, 0, `${audited.stdout}\n${audited.stderr}`);
    assert.equal((JSON.parse(audited.stdout) as { entries: number }).entries, 700);
    // A file whose hash is not the logged one does not verify, mirror or not.
    writeFileSync(file, 'not the logged content');
    const wrong = await pkglogRun(['verify', file, '--ecosystem', 'pypi', '--name', 'requests', '--version', `1.0.${i}`, '--policy', policyFile,
      '--mirror', mirror.url, '--index', String(i), '--registry-key', registryKey, '--state-dir', state]);
    assert.equal(wrong.status, 1, wrong.stdout + wrong.stderr);
  });
});
