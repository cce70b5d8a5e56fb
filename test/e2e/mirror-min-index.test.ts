/**
 * Mirrors with a minimum index as real processes on 127.0.0.1: `pkglog mirror add-log … --min-index 512` in pull mode,
 * and one the log pushes to (`--no-pull --min-index 768`, `pkglog mirrors add` on the log; it reads the tiles
 * straddling its minimum index from the log's URL). Each cosigns only once it holds [M, size), serves the log's tiles
 * from M on byte for byte and 404s the pruned ones; `pkglog verify --mirror` proves an entry ≥ M from the mirror alone
 * and fails for an entry below M (the mirror does not hold it).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parseSignedNote } from '../../core/note.ts';
import { originHash } from '../../core/hash.ts';
import { parsePolicy, verifyCheckpointWithPolicy } from '../../core/policy.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { runPkglog, startProcess, waitForValue as until, pkglogOk as ok, type Started } from '../support/process.ts';
import { REGISTRY, REGISTRY_NAME, submissionBody } from '../support/submissions.ts';

const ORIGIN = 'example.test/pruned-mirrors-log';

describe('e2e: mirrors with a minimum index (pull and push)', function () {
  this.timeout(180_000);
  const dirs: string[] = [];
  const procs: Started[] = [];
  after(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    for (const d of dirs) removeDir(d);
  });

  it('hold and serve the log from M on, cosign sizes ≥ M, and prove entries ≥ M alone', async () => {
    const [logDir, pullDir, pushDir, work] = ['log', 'pull', 'push', 'work'].map((n) => tempDir(`pkglog-e2e-minidx-${n}-`));
    dirs.push(logDir!, pullDir!, pushDir!, work!);
    const logKey = loadOrCreateLogKey(join(logDir!, 'log.key'), ORIGIN);
    const logEnv = { PKGLOG_DATA_DIR: logDir, PKGLOG_LISTEN: '127.0.0.1:0', PKGLOG_ORIGIN: ORIGIN };
    await ok(['registry', 'add', REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), '--ecosystem', 'pypi'], logEnv);
    // The log pushes to a mirror it knows at start; the mirror learns the log's URL (from add-log, run while the
    // mirror runs) once the log listens.
    const push = await startProcess(['mirror'], { PKGLOG_MIRROR_DATA_DIR: pushDir, PKGLOG_MIRROR_LISTEN: '127.0.0.1:0', PKGLOG_MIRROR_NAME: 'mirror.test/push' });
    procs.push(push);
    await ok(['mirrors', 'add', push.url, push.info.get('vkey')!], logEnv);
    const log = await startProcess(['serve', '--witness-interval', '100'], logEnv);
    procs.push(log);
    await Promise.all([
      ok(['mirror', 'add-log', ORIGIN, logKey.vkey, log.url, '--min-index', '512', '--data-dir', pullDir!]),
      ok(['mirror', 'add-log', ORIGIN, logKey.vkey, log.url, '--no-pull', '--min-index', '768', '--data-dir', pushDir!]),
    ]);
    const pull = await startProcess(['mirror', '--poll-interval', '100'], { PKGLOG_MIRROR_DATA_DIR: pullDir, PKGLOG_MIRROR_LISTEN: '127.0.0.1:0', PKGLOG_MIRROR_NAME: 'mirror.test/pull' });
    procs.push(pull);

    const submit = async (from: number, to: number) => {
      const r = await fetch(`${log.url}/v1/entries/batch`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ entries: Array.from({ length: to - from }, (_, k) => submissionBody(from + k)) }),
      });
      assert.equal(r.status, 200, await r.text());
    };
    const cosigned = (url: string, size: number) =>
      until(`${url} to cosign size ${size}`, async () => {
        const r = await fetch(`${url}/${originHash(ORIGIN)}/checkpoint`);
        if (r.status !== 200) return undefined;
        const note = await r.text();
        return parseCheckpoint(parseSignedNote(note).text).treeSize === size ? note : undefined;
      });
    const logSize = async () => parseCheckpoint(parseSignedNote(await (await fetch(`${log.url}/checkpoint`)).text()).text).treeSize;

    // Below both minimum indexes: the log runs, the mirrors hold and cosign nothing.
    await submit(0, 400);
    await until('the log to publish 400 entries', async () => ((await logSize()) === 400 ? true : undefined));
    await new Promise((r) => setTimeout(r, 500));
    for (const m of [pull, push]) assert.equal((await fetch(`${m.url}/${originHash(ORIGIN)}/checkpoint`)).status, 404);

    await submit(400, 1000);
    await until('the log to publish 1000 entries', async () => ((await logSize()) === 1000 ? true : undefined));
    const policy = (m: Started) => parsePolicy(`log ${logKey.vkey} ${log.url}\nwitness m ${m.info.get('vkey')}\nquorum m\n`);
    for (const [m, minIndex] of [[pull, 512], [push, 768]] as const) {
      verifyCheckpointWithPolicy(policy(m), await cosigned(m.url, 1000));
      const copy = `${m.url}/${originHash(ORIGIN)}`;
      for (let b = 0; b < 4; b++) {
        const path = b === 3 ? 'tile/entries/003.p/232' : `tile/entries/00${b}`;
        const r = await fetch(`${copy}/${path}`);
        if ((b + 1) * 256 <= minIndex) {
          assert.equal(r.status, 404, `${m.url} ${path}`);
          continue;
        }
        assert.equal(r.status, 200, `${m.url} ${path}`);
        assert.deepEqual(Buffer.from(await r.arrayBuffer()), Buffer.from(await (await fetch(`${log.url}/${path}`)).arrayBuffer()), path);
      }
      const top = await fetch(`${copy}/tile/1/000.p/3`);
      assert.equal(top.status, 200, 'the level-1 tile straddling M is served whole');
      assert.deepEqual(Buffer.from(await top.arrayBuffer()), Buffer.from(await (await fetch(`${log.url}/tile/1/000.p/3`)).arrayBuffer()));
    }
    // The log publishes the pushing mirror's cosignature too.
    await until('the log to carry the push mirror cosignature', async () => {
      try {
        verifyCheckpointWithPolicy(policy(push), await (await fetch(`${log.url}/checkpoint`)).text());
        return true;
      } catch {
        return undefined;
      }
    });

    // The log stops; the pull mirror proves entry 900 alone, not entry 100 (below its minimum index).
    await log.stop('SIGKILL');
    const policyFile = join(work!, 'policy.txt');
    writeFileSync(policyFile, `log ${logKey.vkey}\nwitness m ${pull.info.get('vkey')}\nquorum m\n`);
    const registryKey = `${REGISTRY_NAME}=${REGISTRY.publicKey.toString('base64')}`;
    const verify = (i: number) => {
      const file = join(work!, `requests-1.0.${i}-py3-none-any.whl`);
      writeFileSync(file, `content ${i}`);
      return runPkglog(['verify', file, '--ecosystem', 'pypi', '--name', 'requests', '--version', `1.0.${i}`, '--policy', policyFile,
        '--mirror', pull.url, '--index', String(i), '--registry-key', registryKey, '--state-dir', join(work!, `state-${i}`)]);
    };
    const above = verify(900);
    assert.equal(above.status, 0, above.stdout + above.stderr);
    const below = verify(100);
    assert.notEqual(below.status, 0, below.stdout + below.stderr);
    assert.match(below.stdout + below.stderr, /404|not found|pruned/i);
  });
});
