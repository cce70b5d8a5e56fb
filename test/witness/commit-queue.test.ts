/**
 * Group commit (witness/commit-queue.ts) and the store's durability step (WitnessStore.durable): swaps submitted in one
 * event-loop turn are applied together, and nobody learns the outcome before the fsync that follows the commit.
 */
import assert from 'node:assert/strict';
import { CommitQueue } from '../../witness/commit-queue.ts';
import { WitnessStore } from '../../witness/store.ts';
import { tempDir } from './helpers.ts';

describe('witness group commit', () => {
  it('applies the swaps of one turn in one batch and answers only once the batch is durable', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const durable = new Promise<void>((r) => (release = r));
    const q = new CommitQueue<number>((ops) => (batches.push(ops), ops.map((n) => n % 2 === 0)), () => durable);
    const answered: boolean[] = [];
    const all = Promise.all([1, 2, 3, 4].map((n) => q.submit(n).then((ok) => (answered.push(ok), ok))));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, [[1, 2, 3, 4]]);
    assert.deepEqual(answered, [], 'no answer before the commit is durable');
    release();
    assert.deepEqual(await all, [false, true, false, true]);
  });

  it('a failed fsync fails every caller of the batch', async () => {
    const q = new CommitQueue<number>((ops) => ops.map(() => true), () => Promise.reject(new Error('EIO')));
    await assert.rejects(Promise.all([q.submit(1), q.submit(2)]), /EIO/);
  });

  it('WitnessStore: commits without an fsync inside (synchronous=NORMAL), durable() after them, state kept across a reopen', async () => {
    const tmp = tempDir();
    try {
      const st = WitnessStore.open(tmp.dir);
      assert.equal(st.db.pragma('synchronous', { simple: true }), 1);
      const cp = (origin: string, treeSize: number) => ({ origin, treeSize, root: Buffer.alloc(32, treeSize), cosignedAt: 1, note: `${origin} ${treeSize}` });
      assert.deepEqual(st.advance([{ expectedSize: null, checkpoint: cp('a', 1) }, { expectedSize: null, checkpoint: cp('b', 1) }]), [true, true]);
      const first = st.durable();
      assert.deepEqual(st.advance([{ expectedSize: 1, checkpoint: cp('a', 2) }, { expectedSize: 5, checkpoint: cp('b', 6) }]), [true, false]);
      // Made while the first fsync runs: they share the next one.
      const second = st.durable();
      assert.equal(st.durable(), second);
      await Promise.all([first, second]);
      assert.equal(await st.durable(), undefined, 'nothing left to sync');
      st.close();
      const again = WitnessStore.open(tmp.dir);
      assert.equal(again.latest('a')?.treeSize, 2);
      assert.equal(again.latest('b')?.treeSize, 1);
      assert.deepEqual(again.latestHead('a'), { treeSize: 2, root: Buffer.alloc(32, 2) });
      again.close();
    } finally {
      tmp.cleanup();
    }
  });
});
