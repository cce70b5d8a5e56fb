/**
 * End to end: `pkglog monitor` and `pkglog audit` as real processes against a log on 127.0.0.1 (run in-process so the
 * test can write a conflicting re-upload directly into its store, behind the log's back).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestLog, removeDir } from '../support/log-harness.ts';
import { REGISTRY, REGISTRY_NAME, artifact, sign, submissionBody } from '../support/submissions.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import { signCheckpoint } from '../../server/sequencer.ts';
import { encodeLeaf } from '../../core/entry.ts';
import { leafHash } from '../../core/hash.ts';
import { integrate } from '../../core/integrate.ts';
import { encodeBase64 } from '../../core/encoding.ts';
import { parseVerifierKey } from '../../core/note.ts';
import { verifyViolation } from '../../client/violation.ts';
import { tempDir, runAsync } from '../client/helpers.ts';
import { SqliteStore } from '../../log-store/store.ts';

describe('e2e: pkglog monitor and audit', function () {
  this.timeout(120_000);
  let log: Awaited<ReturnType<typeof startTestLog>>;
  let tmp: { dir: string; cleanup(): void };
  const registryKey = `${REGISTRY_NAME}=${encodeBase64(REGISTRY.publicKey)}`;

  before(async () => {
    tmp = tempDir('pkglog-e2e-monitor-');
    log = await startTestLog();
    for (let i = 0; i < 300; i += 50) {
      const rs = await Promise.all(
        Array.from({ length: 50 }, (_, k) => fetch(`${log.url}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submissionBody(i + k, { name: `pkg${(i + k) % 7}` })) })),
      );
      for (const r of rs) assert.equal(r.status, 200, await r.text());
    }
  });
  after(async () => {
    await log.close();
    removeDir(log.dataDir);
    tmp.cleanup();
  });

  const trust = () => ['--log', log.url, '--log-key', log.vkey, '--registry-key', registryKey, '--state-dir', join(tmp.dir, 'state'), '--quiet'];

  /** Appends a leaf directly to the store (bypassing the sequencer's one-artifact-per-file check) and signs a checkpoint. */
  function injectBehindTheLogsBack(leaf: Buffer): number {
    const store = (log.store as SqliteStore).sync;
    const state = store.treeState()!;
    const lh = leafHash(leaf);
    const r = integrate(state.treeSize, (t) => store.readTile(t)!, [lh]);
    const key = loadOrCreateLogKey(join(log.dataDir, 'log.key'), undefined);
    const e = { ...artifact(0), name: 'pkg0' };
    const newState = { treeSize: r.treeSize, rootHash: r.rootHash, checkpoint: signCheckpoint(key.signer, log.origin, r.treeSize, r.rootHash) };
    store.append({
      oldSize: state.treeSize,
      entries: [{ index: state.treeSize, leaf, leafHash: lh, fileHash: createHash('sha256').update('not the real file hash').digest(), ecosystem: e.ecosystem, name: e.name, version: e.version, sha256: Buffer.alloc(32, 9), integratedTime: Date.now() }],
      tiles: r.tiles,
      newState,
      createdAt: Date.now(),
    });
    log.guard.committed(newState); // ... and publishes it, as the log's own sequencer would (high-water mark first)
    return state.treeSize;
  }

  /** Waits until the log serves a checkpoint of `size` (an injected one is public once the log's high-water mark
   *  reaches it, which happens asynchronously): the monitor must see the injected entry, not race the mark. */
  async function untilServed(size: number): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const text = await (await fetch(`${log.url}/checkpoint`)).text();
      if (Number(text.split('\n')[1]) >= size) return;
      assert.ok(Date.now() < deadline, `the log never served size ${size}; it serves:\n${text}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('audit of the clean log passes; monitor catches up and reports watched packages', async () => {
    const a = await runAsync(['audit', ...trust(), '--json']);
    assert.equal(a.code, 0, a.stdout + a.stderr);
    assert.equal(JSON.parse(a.stdout).entries, 300);
    const m = await runAsync(['monitor', ...trust(), '--watch', 'pypi/pkg3']);
    assert.equal(m.code, 0, m.stdout + m.stderr);
    assert.equal((m.stdout.match(/^NEW: /gm) ?? []).length, 43);
  });

  it('monitor catches a conflicting re-upload injected behind the log\'s back; audit of the corrupted log fails', async () => {
    const a0 = { ...artifact(0), name: 'pkg0' };
    const conflicting = { ...sign({ ...a0, sha256: createHash('sha256').update('a different artifact').digest('hex') }), integratedTime: Date.now() };
    const index = injectBehindTheLogsBack(encodeLeaf(conflicting));
    await untilServed(index + 1);
    const m = await runAsync(['monitor', ...trust(), '--watch', 'pypi/pkg3', '--json']);
    assert.equal(m.code, 8, m.stdout + m.stderr);
    const j = JSON.parse(m.stdout);
    assert.equal(j.from, 300);
    const c = j.checks.find((x: { id: string }) => x.id === 'conflict');
    assert.match(c.message, new RegExp(`entry ${index} logs a different artifact than entry 0`));
    const evidencePath = /evidence: (\S+)\)/.exec(c.message)![1]!;
    assert.match(verifyViolation(readFileSync(evidencePath, 'utf8'), parseVerifierKey(log.vkey)), /two artifacts for pypi\/pkg0/);

    const audit = await runAsync(['audit', ...trust()]);
    assert.equal(audit.code, 8, audit.stdout + audit.stderr);
    assert.match(audit.stdout, /FAIL  conflict: second artifact for an already logged file/);
  });
});
