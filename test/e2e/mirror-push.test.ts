/**
 * The log pushes to a mirror (real processes on 127.0.0.1): `pkglog mirrors add` on the log, `pkglog mirror add-log
 * --no-pull` on the mirror. The log sends add-checkpoint and add-entries (gzip; continued from the mirror's 409
 * mirror-info; the 202 continuation is in test/server/mirroring.test.ts) and publishes the mirror's cosignature in its own /checkpoint, so a policy
 * that requires the mirror verifies against the log directly; after a restart of the mirror the log goes on from
 * where the mirror is.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parseSignedNote } from '../../core/note.ts';
import { originHash } from '../../core/hash.ts';
import { parsePolicy, verifyCheckpointWithPolicy } from '../../core/policy.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import { tempDir } from '../support/log-harness.ts';
import { startProcess, waitForValue as until, pkglogOk as ok } from '../support/process.ts';
import { addTestRegistry, cleanUpAfter, logEnv } from '../support/e2e-setup.ts';
import { submissionBody } from '../support/submissions.ts';

const ORIGIN = 'example.test/pushing-log';

describe('e2e: the log pushes entries to a mirror and publishes its cosignature', function () {
  this.timeout(180_000);
  const { dirs, procs } = cleanUpAfter();

  it('add-checkpoint + add-entries from the log; the log’s /checkpoint carries the mirror cosignature; resumes after a mirror restart', async () => {
    const [logDir, mDir] = ['log', 'mirror'].map((n) => tempDir(`pkglog-e2e-push-${n}-`));
    dirs.push(logDir!, mDir!);
    const logKey = loadOrCreateLogKey(join(logDir!, 'log.key'), ORIGIN);
    const env = logEnv(logDir!, ORIGIN);
    const mirrorEnv = { PKGLOG_MIRROR_DATA_DIR: mDir, PKGLOG_MIRROR_LISTEN: '127.0.0.1:0', PKGLOG_MIRROR_NAME: 'mirror.test/push' };
    await addTestRegistry(env);
    await ok(['mirror', 'add-log', ORIGIN, logKey.vkey, 'http://log.invalid', '--no-pull', '--data-dir', mDir!]);
    let mirror = await startProcess(['mirror'], mirrorEnv);
    procs.push(mirror);
    const mirrorVkey = mirror.info.get('vkey')!;
    await ok(['mirrors', 'add', mirror.url, mirrorVkey], env);
    const log = await startProcess(['serve', '--witness-interval', '100'], env);
    procs.push(log);
    const policy = parsePolicy(`log ${logKey.vkey}\nwitness m1 ${mirrorVkey}\nquorum m1\n`);

    const submit = async (from: number, to: number) => {
      for (let at = from; at < to; at += 1000) {
        const r = await fetch(`${log.url}/v1/entries/batch`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ entries: Array.from({ length: Math.min(1000, to - at) }, (_, k) => submissionBody(at + k)) }),
        });
        assert.equal(r.status, 200, await r.text());
      }
    };
    const mirroredOnLog = (size: number) =>
      until(`the log to publish the mirror's cosignature at ${size}`, async () => {
        const note = await (await fetch(`${log.url}/checkpoint`)).text();
        if (parseCheckpoint(parseSignedNote(note).text).treeSize !== size) return undefined;
        try {
          verifyCheckpointWithPolicy(policy, note);
          return note;
        } catch {
          return undefined;
        }
      });
    await submit(0, 600);
    await mirroredOnLog(600);
    const served = await (await fetch(`${mirror.url}/${originHash(ORIGIN)}/checkpoint`)).text();
    assert.equal(parseCheckpoint(parseSignedNote(served).text).treeSize, 600);
    for (const path of ['tile/0/001', 'tile/entries/002.p/88', 'tile/1/000.p/2']) {
      const [a, b] = await Promise.all([fetch(`${log.url}/${path}`), fetch(`${mirror.url}/${originHash(ORIGIN)}/${path}`)]);
      assert.equal(b.status, 200, path);
      assert.deepEqual(Buffer.from(await b.arrayBuffer()), Buffer.from(await a.arrayBuffer()), path);
    }

    // The mirror restarts (same data dir, a new port is fine for the test only if the log can reach it: keep the port).
    const port = new URL(mirror.url).port;
    await mirror.stop('SIGTERM');
    await submit(600, 700);
    mirror = await startProcess(['mirror'], { ...mirrorEnv, PKGLOG_MIRROR_LISTEN: `127.0.0.1:${port}` });
    procs.push(mirror);
    await mirroredOnLog(700);
  });
});
