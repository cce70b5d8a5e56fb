/**
 * The index clients end to end with real processes on 127.0.0.1: `pkglog serve --index` and one real `pkglog witness`
 * witnessing both the log and its output log; the real CLI as child processes: `pkglog history` (the policy names only
 * the log and the witness: the output log's key is the log key under `<origin>/index`, found from the checkpoint),
 * `pkglog verify` using the index (key continuity from the proven history, proven absence of another artifact for the
 * file), and `pkglog audit --index` rebuilding the map from the log and checking every published revision.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatVerifierKey, SIG_TYPE_ED25519 } from '../../core/note.ts';
import { formatSubmission } from '../../core/entry.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import { tempDir } from '../support/log-harness.ts';
import { ensureBuilt, pkglogOk, pkglogRun, startProcess } from '../support/process.ts';
import { addTestRegistry, cleanUpAfter, logEnv, startWitness } from '../support/e2e-setup.ts';
import { artifact, keyPair, REGISTRY, REGISTRY_NAME, sign } from '../support/submissions.ts';

const ORIGIN = 'example.test/index-client';
const INDEX_ORIGIN = `${ORIGIN}/index`;

const run = (args: string[], env: NodeJS.ProcessEnv = {}) => pkglogRun(args, { PKGLOG_STATE_DIR: '', ...env });
const ok = (args: string[], env: NodeJS.ProcessEnv = {}) => pkglogOk(args, { PKGLOG_STATE_DIR: '', ...env });

const newKey = keyPair('index-client e2e new publisher');

async function submit(url: string, subs: Array<Record<string, unknown>>): Promise<number[]> {
  const r = await fetch(`${url}/v1/entries/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ entries: subs }) });
  assert.equal(r.status, 200, await r.clone().text());
  const { results } = (await r.json()) as { results: Array<{ index?: number }> };
  return results.map((x) => x.index!);
}

describe('e2e: pkglog history, verify and audit --index against pkglog serve --index', function () {
  this.timeout(180_000);
  const { dirs, procs } = cleanUpAfter();

  it('proves the history (key change highlighted), verifies with the index, and audits every revision', async () => {
    ensureBuilt();
    const logDir = tempDir('pkglog-ic-log-');
    const wDir = tempDir('pkglog-ic-w-');
    const dir = tempDir('pkglog-ic-client-');
    dirs.push(logDir, wDir, dir);
    const logKey = loadOrCreateLogKey(join(logDir, 'log.key'), ORIGIN);
    const indexVkey = formatVerifierKey(INDEX_ORIGIN, SIG_TYPE_ED25519, logKey.signer.publicKey);
    const env = logEnv(logDir, ORIGIN);
    await ok(['witness', 'add-log', ORIGIN, logKey.vkey, '--data-dir', wDir]);
    await ok(['witness', 'add-log', INDEX_ORIGIN, indexVkey, '--data-dir', wDir]);
    await addTestRegistry(env);
    const w = await startWitness(wDir, 'witness.test/w1');
    procs.push(w);
    await ok(['witnesses', 'add', w.url, w.info.get('vkey')!], env);
    const log = await startProcess(['serve', '--index', '--witness-quorum', '1', '--witness-interval', '100', '--batch-interval', '20'], env);
    procs.push(log);

    // pypi/demo: 3 versions by the usual publisher, then 1 by a new key; and another package.
    const demo = (i: number) => artifact(i, { name: 'demo', version: `1.${i}`, filename: `demo-1.${i}.tar.gz` });
    const first = await submit(log.url, [0, 1, 2].map((i) => formatSubmission(sign(demo(i)))));
    const second = await submit(log.url, [formatSubmission(sign(demo(3), newKey)), formatSubmission(sign(artifact(9, { name: 'other' })))]);
    const size = second[1]! + 1;
    const policy = join(dir, 'policy');
    writeFileSync(policy, `log ${logKey.vkey} ${log.url}\nwitness w1 ${w.info.get('vkey')}\nquorum w1\n`);
    const common = ['--policy', policy, '--registry-key', `${REGISTRY_NAME}=${REGISTRY.publicKey.toString('base64')}`, '--state-dir', join(dir, 'state')];

    // pkglog history: wait until the index covers the last batch (it lags by at most one batch).
    let j: Record<string, any> = {};
    for (let attempt = 0; ; attempt++) {
      const r = await run(['history', 'pypi/demo', ...common, '--json']);
      j = JSON.parse(r.stdout);
      if (j.ok === true && j.index.logSize >= size) break;
      assert.ok(attempt < 100, `the index did not reach size ${size}: ${r.stdout}${r.stderr}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(j.index.origin, INDEX_ORIGIN);
    assert.deepEqual(j.index.cosigners.map((c: { witness: string }) => c.witness), ['w1']);
    assert.deepEqual(j.entries.map((e: { index: number }) => e.index), [...first, second[0]]);
    assert.equal(j.keyChanges.length, 1);
    assert.equal(j.keyChanges[0].index, second[0]);
    const human = await run(['history', 'pypi/demo', ...common]);
    assert.equal(human.status, 0, human.stdout + human.stderr);
    assert.match(human.stdout, new RegExp(`>> KEY CHANGE entry ${second[0]} {2}1\\.3 {2}demo-1\\.3\\.tar\\.gz`));
    assert.match(human.stdout, /ok {4}complete: the 4 entries below are proven to be all of pypi\/demo/);
    assert.equal((await run(['history', 'pypi/demo', ...common, '--strict-keys'])).status, 5);
    const version = JSON.parse(await ok(['history', 'pypi/demo', '--version', '1.1', ...common, '--json']));
    assert.deepEqual(version.entries.map((e: { index: number }) => e.index), [first[1]]);

    // pkglog verify uses the index.
    const file = join(dir, 'demo-1.3.tar.gz');
    writeFileSync(file, 'content 3');
    const v = await run(['verify', file, '--ecosystem', 'pypi', '--name', 'demo', '--version', '1.3', ...common, '--json']);
    const vj = JSON.parse(v.stdout);
    const check = (id: string) => vj.checks.find((c: { id: string }) => c.id === id);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(check('index').message, /proves the complete history of pypi\/demo among the first \d+ entries: 4 entries/);
    assert.match(check('one-artifact').message, /proven: no other artifact for pypi\/demo 1\.3 demo-1\.3\.tar\.gz/);
    assert.equal(check('key-continuity').status, 'warn');
    assert.equal((await run(['verify', file, '--ecosystem', 'pypi', '--name', 'demo', '--version', '1.3', ...common, '--strict-keys'])).status, 5);

    // pkglog audit --index: the map rebuilt from the log matches every revision.
    const a = await run(['audit', '--index', ...common, '--json']);
    assert.equal(a.status, 0, a.stdout + a.stderr);
    assert.match(JSON.parse(a.stdout).checks.find((c: { id: string }) => c.id === 'index').message, /rebuilt the map from \d+ log entries: all \d+ revision map roots match/);
  });
});
