/**
 * kill -9 under load, 20 times (test/support/crash-loop.ts; `npm run crash-test` runs the same loop 200 times): after
 * every restart every acknowledged entry is at its index with its leaf hash, every checkpoint ever served is a prefix of
 * the new tree, and no size was served with two roots.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { crashLoop, summary } from '../support/crash-loop.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';

const KILLS = 20;

describe('e2e: pkglog serve killed with SIGKILL under load', function () {
  this.timeout(180_000);
  let dir: string;
  before(() => {
    dir = tempDir('pkglog-crash-');
  });
  after(() => removeDir(dir));

  it(`loses nothing acknowledged and never forks across ${KILLS} kills`, async () => {
    const seed = Number(process.env.PKGLOG_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const started = Date.now();
    const r = await crashLoop({ dataDir: dir, kills: KILLS, seed, maxRunMs: 500, progressEvery: 1000 });
    const line = `${summary(r)} (seed ${seed}, ${r.entryChecks} entry checks, ${r.checkpointsChecked} checkpoints, tree size ${r.treeSize}, ${((Date.now() - started) / 1000).toFixed(1)} s)`;
    console.log(`      ${line}`);
    assert.deepEqual(r.problems, [], `${line}\n${r.problems.join('\n')}`);
    assert.equal(r.kills, KILLS);
    assert.equal(r.losses, 0);
    assert.ok(r.entriesChecked >= KILLS, `too few acknowledged entries to mean anything: ${line}`);
    assert.ok(r.checkpointsChecked >= KILLS, line);
  });

  it('notices when the data dir is rolled back between two kills (the checks bite)', async () => {
    const rolled = tempDir('pkglog-crash-rollback-');
    const saved = tempDir('pkglog-crash-saved-');
    const files = ['log.sqlite', 'log.sqlite-wal'];
    try {
      const r = await crashLoop({
        dataDir: rolled, kills: 3, seed: 1, minRunMs: 400, maxRunMs: 600, progressEvery: 1000,
        afterKill: (kill, d) => {
          // Save the store after the first kill, put it back after the third: an older copy restored.
          for (const f of files) {
            if (kill === 1 && existsSync(join(d, f))) copyFileSync(join(d, f), join(saved, f));
            if (kill === 3) {
              rmSync(join(d, f), { force: true });
              if (existsSync(join(saved, f))) copyFileSync(join(saved, f), join(d, f));
            }
          }
        },
      });
      assert.ok(r.problems.length > 0, `a rolled-back store must be noticed: ${summary(r)}`);
      // Either the log refuses to start from the older copy, or the loop sees the acknowledged entries and the
      // checkpoints it was served go missing.
      const refused = r.problems.some((p) => /start after kill 3 failed/.test(p));
      assert.ok(refused || (r.losses > 0 && r.problems.some((p) => /not a prefix|two roots|but the tree is now/.test(p))), r.problems.slice(0, 5).join('\n'));
    } finally {
      removeDir(rolled);
      removeDir(saved);
    }
  });
});
