/**
 * The client's saved checkpoint (client/state.ts): compare-and-swap under a lock file, never backwards, durable
 * writes, stale locks broken safely; concurrent verifications in-process and as real `pkglog verify` processes.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { StateStore, withFileLock, readCheckpointNote } from '../../client/state.ts';
import { checkAgainstSaved } from '../../client/consistency.ts';
import { LogClient } from '../../client/http.ts';
import { isPkglogError } from '../../core/errors.ts';
import { LogDouble, makeEntry, fileSha, REGISTRY_VKEY } from './log-double.ts';
import { tempDir, writeFile, runAsync } from './helpers.ts';

const T0 = 1_750_000_000;
const content = 'the wheel bytes';
const artifact = { ecosystem: 'pypi', name: 'requests', version: '2.0.0', filename: 'requests-2.0.0.whl', sha256: fileSha(content) };

/** A log double whose checkpoints of sizes 2…2+steps·grow were each published (signed text by size). */
function grownLog(steps: number, grow: number, origin?: string): LogDouble {
  const log = new LogDouble(origin);
  log.append([makeEntry({ ...artifact, version: '1.0.0', filename: 'requests-1.0.0.whl', sha256: fileSha('old') }, T0 * 1000)]);
  log.append([makeEntry(artifact, T0 * 1000)]);
  log.publish();
  for (let s = 0; s < steps; s++) {
    log.append(Array.from({ length: grow }, (_, i) => makeEntry({ ...artifact, version: `3.${s}.${i}`, filename: `requests-3.${s}.${i}.whl`, sha256: fileSha(`${s}/${i}`) }, T0 * 1000)));
    log.publish();
  }
  return log;
}

const signed = (log: LogDouble, size: number) => {
  const s = log.published.get(size);
  assert.ok(s !== undefined, `no checkpoint of size ${size}`);
  return { signed: s, checkpoint: readCheckpointNote(s) };
};

describe('client state: the saved checkpoint', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup(): void };
  beforeEach(() => (tmp = tempDir('pkglog-state-test-')));
  afterEach(() => tmp.cleanup());

  it('compareAndSwap writes only over the expected checkpoint and never backwards or to another root', () => {
    const log = grownLog(2, 3);
    const store = new StateStore(join(tmp.dir, 'state'));
    const [a, b, c] = [2, 5, 8].map((n) => signed(log, n).signed) as [string, string, string];
    assert.deepEqual(store.compareAndSwap(undefined, b), { swapped: true });
    const moved = store.compareAndSwap(undefined, a);
    assert.equal(moved.swapped, false);
    assert.equal(!moved.swapped && moved.current?.signed, b, 'returns what is saved now');
    assert.throws(() => store.compareAndSwap(b, a), (e) => isPkglogError(e, 'inconsistent') && /back from size 5 to 2/.test(e.message));
    const other = grownLog(2, 3);
    other.rewrite(3, Buffer.from('another leaf'));
    const forked = other.publish();
    assert.equal(readCheckpointNote(forked).treeSize, 8);
    assert.deepEqual(store.compareAndSwap(b, c), { swapped: true });
    assert.throws(() => store.compareAndSwap(c, forked), (e) => isPkglogError(e, 'inconsistent') && /different root/.test(e.message));
    assert.equal(store.latest(log.origin)!.signed, c);
    // Nothing but the checkpoint, its origin and no leftover temporary or lock file.
    assert.deepEqual(readdirSync(store.logDir(log.origin)).sort(), ['checkpoint', 'origin']);
    assert.throws(() => store.saveLatest(b), (e) => isPkglogError(e, 'inconsistent'));
  });

  it('a stale lock (its process is gone) is broken; a live one is waited for and then named', () => {
    const lock = join(tmp.dir, 'x.lock');
    // A process that has exited: its pid is free (the lock it "left" is stale).
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(lock, `${dead} ${hostname()} ${Date.now()}\n`);
    assert.equal(withFileLock(lock, () => 42), 42);
    assert.equal(existsSync(lock), false, 'released');
    assert.equal(existsSync(`${lock}.break`), false);
    // An old lock is stale even when its pid looks alive (pid reuse).
    writeFileSync(lock, `${process.pid} ${hostname()} ${Date.now() - 10 * 60_000}\n`);
    assert.equal(withFileLock(lock, () => 'ok'), 'ok');
    // A live, fresh lock: waited for until the deadline (a fake clock makes it pass quickly), then 'overloaded'.
    writeFileSync(lock, `${process.pid} ${hostname()} ${Date.now()}\n`);
    let t = Date.now();
    assert.throws(
      () => withFileLock(lock, () => assert.fail('must not run'), () => (t += 1000)),
      (e) => isPkglogError(e, 'overloaded') && e.message.includes(lock) && e.message.includes(String(process.pid)),
    );
    assert.ok(existsSync(lock), 'a live lock is never removed');
  });

  it('many concurrent in-process checks of different sizes leave the largest, and a fork seen meanwhile is found', async () => {
    const log = grownLog(12, 5);
    await log.listen();
    try {
      const store = new StateStore(join(tmp.dir, 'state'));
      const client = new LogClient(log.url);
      const sizes = [...log.published.keys()].filter((n) => n >= 2);
      // Random order, each size several times, all at once.
      const order = [...sizes, ...sizes, ...sizes].sort(() => Math.random() - 0.5);
      const results = await Promise.all(order.map((n) => checkAgainstSaved(store, signed(log, n), client)));
      assert.ok(results.every((r) => r.status !== 'fork'), JSON.stringify(results.filter((r) => r.status === 'fork')));
      assert.equal(store.latest(log.origin)!.checkpoint.treeSize, Math.max(...sizes));

      // A concurrent run saves a forked checkpoint (same key, other history) right before our swap: we re-check
      // against it instead of overwriting it, and report the fork.
      const store2 = new StateStore(join(tmp.dir, 'state2'));
      store2.saveLatest(signed(log, 12).signed);
      const evil = grownLog(3, 5);
      evil.rewrite(4, Buffer.from('rewritten'));
      const forked = evil.publish();
      const racing = Object.create(store2) as StateStore;
      let raced = false;
      racing.compareAndSwap = (expected, s) => {
        if (!raced) {
          raced = true;
          assert.deepEqual(store2.compareAndSwap(expected, forked), { swapped: true });
        }
        return store2.compareAndSwap(expected, s);
      };
      const r = await checkAgainstSaved(racing, signed(log, 62), client);
      assert.ok(raced);
      assert.equal(r.status, 'fork', r.message);
      assert.equal(store2.latest(log.origin)!.signed, forked, 'the state is not overwritten by the run that found the fork');
    } finally {
      await log.close();
    }
  });

  it('concurrent real `pkglog verify` processes against logs of different sizes never move the state backwards', async function () {
    this.timeout(300_000);
    const log = grownLog(16, 3);
    await log.listen();
    try {
      const file = writeFile(tmp.dir, 'requests-2.0.0.whl', content);
      const policy = writeFile(tmp.dir, 'policy', log.policy('none'));
      const state = join(tmp.dir, 'state');
      const sizes = [...log.published.keys()].filter((n) => n >= 2);
      const proofs = new Map<number, string>();
      for (const n of sizes) {
        // A tlog-proof of entry 1 against the checkpoint of size n (each process sees "the log" at another size).
        const saved = log.latest;
        log.latest = log.published.get(n)!;
        proofs.set(n, writeFile(tmp.dir, `p${n}.tlog-proof`, log.tlogProof(1)));
        log.latest = saved;
      }
      const base = ['verify', file, '--ecosystem', 'pypi', '--name', 'requests', '--version', '2.0.0', '--policy', policy, '--registry-key', REGISTRY_VKEY, '--state-dir', state];
      const pick = [...sizes].sort(() => Math.random() - 0.5).slice(0, 8);
      const runs = await Promise.all(pick.map((n) => runAsync([...base, '--proof', proofs.get(n)!, '--log', log.url])));
      runs.forEach((r, i) => assert.equal(r.code, 0, `size ${pick[i]}: ${r.stdout}\n${r.stderr}`));
      const store = new StateStore(state);
      assert.equal(store.latest(log.origin)!.checkpoint.treeSize, Math.max(...pick), 'the largest verified size is saved');
      const dir = store.logDir(log.origin, false);
      assert.deepEqual(readdirSync(dir).sort(), ['checkpoint', 'origin'], 'no temporary or lock file left');
      // And in-process runs racing with real processes, all sizes.
      const more = Promise.all(sizes.slice(0, 4).map((n) => runAsync([...base, '--proof', proofs.get(n)!, '--log', log.url])));
      const client = new LogClient(log.url);
      await Promise.all(sizes.map((n) => checkAgainstSaved(store, signed(log, n), client)));
      for (const r of await more) assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(store.latest(log.origin)!.checkpoint.treeSize, Math.max(...sizes));
      assert.equal(readCheckpointNote(readFileSync(join(dir, 'checkpoint'), 'utf8')).treeSize, Math.max(...sizes));
    } finally {
      await log.close();
    }
  });
});
