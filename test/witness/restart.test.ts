/** Restarting a witness (a real listening process state: data dir + key file): it keeps its state and refuses rollbacks. */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { FakeLog } from './fake-log.ts';
import { tempDir } from './helpers.ts';
import { startWitness } from '../../witness/main.ts';
import { WitnessStore } from '../../witness/store.ts';

describe('witness restart', () => {
  it('keeps its key and state across a restart and still refuses a rollback', async () => {
    const tmp = tempDir();
    try {
      const log = new FakeLog('example.com/restart').append(20);
      const s = WitnessStore.open(tmp.dir);
      s.addLog(log.origin, log.vkey, null, 0);
      s.close();
      const cfg = { dataDir: tmp.dir, listen: '127.0.0.1:0', name: 'witness.test/restart', gossipIntervalMs: 60_000, pollIntervalMs: 60_000 };
      const w1 = await startWitness(cfg);
      assert.equal(statSync(join(tmp.dir, 'witness.key')).mode & 0o777, 0o600);
      const post = (url: string, body: Buffer) => fetch(`${url}/add-checkpoint`, { method: 'POST', body });
      assert.equal((await post(w1.url, log.addCheckpointBody(0, 12))).status, 200);
      assert.equal((await post(w1.url, log.addCheckpointBody(12, 20))).status, 200);
      const vkey = w1.vkey;
      await w1.close();

      const w2 = await startWitness(cfg);
      try {
        assert.equal(w2.vkey, vkey);
        const rollback = await post(w2.url, log.addCheckpointBody(12, 12));
        assert.equal(rollback.status, 409);
        assert.equal(await rollback.text(), '20\n');
        const fromZero = await post(w2.url, log.addCheckpointBody(0, 15));
        assert.equal(fromZero.status, 409);
        const forked = log.fork(12, 8);
        const fork = await post(w2.url, forked.addCheckpointBody(20, 20));
        assert.equal(fork.status, 422);
        assert.equal(w2.store.latest(log.origin)!.treeSize, 20);
      } finally {
        await w2.close();
      }
      await assert.rejects(startWitness({ ...cfg, name: 'witness.test/other-name' }), /differs/);
    } finally {
      tmp.cleanup();
    }
  });
});
