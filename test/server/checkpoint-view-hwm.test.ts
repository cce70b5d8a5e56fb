/**
 * Nothing beyond the high-water mark is served: a batch that committed but whose mark could not be written (e.g. a
 * full disk) stays out of /checkpoint and entry proofs until the mark is written (server/safety.ts retries it).
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import request from 'supertest';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parseSignedNote } from '../../core/note.ts';
import { highWaterMarkFile } from '../../log-store/high-water-mark.ts';
import { openTestLog, removeDir } from '../support/log-harness.ts';
import { submissionBody } from '../support/submissions.ts';

const servedSize = async (app: Parameters<typeof request>[0]) => {
  const res = await request(app).get('/checkpoint').expect(200);
  return parseCheckpoint(parseSignedNote(res.text).text).treeSize;
};

describe('server/checkpoint-view: bounded by the high-water mark', () => {
  it('a committed batch whose mark failed to write is not served until the mark is written', async () => {
    const log = await openTestLog();
    try {
      await request(log.app).post('/v1/entries').send(submissionBody(1)).expect(200);
      assert.equal(await servedSize(log.app), 1);
      // Make the next mark write fail: its temporary file's path is taken by a directory.
      const hwm = highWaterMarkFile(join(log.dataDir, 'log.key'));
      const blocker = join(dirname(hwm), `.${basename(hwm)}.tmp`);
      mkdirSync(blocker);
      const res = await request(log.app).post('/v1/entries').send(submissionBody(2));
      assert.equal(res.status, 503, `expected 503 while the mark cannot be written, got ${res.status} ${res.text}`);
      assert.equal((await log.store.treeState())!.treeSize, 2, 'the batch itself committed');
      assert.equal(await servedSize(log.app), 1, '/checkpoint must not show a size the mark does not hold');
      const proof = await request(log.app).get('/v1/entries/1/proof');
      assert.equal(proof.status, 404, `an entry beyond the mark has no published proof yet: ${proof.status} ${proof.text}`);
      await request(log.app).get('/v1/entries/0/proof').expect(200);
      const early = await request(log.app).post('/v1/entries').send(submissionBody(2));
      assert.equal(early.status, 503, `a resubmission must not carry the unpublished checkpoint: ${early.status} ${early.text}`);
      rmSync(blocker, { recursive: true });
      // The guard retries the mark every second (and before the next signature): then size 2 is published.
      const deadline = Date.now() + 10_000;
      while ((await servedSize(log.app)) < 2) {
        assert.ok(Date.now() < deadline, 'the mark was not retried');
        await new Promise((r) => setTimeout(r, 50));
      }
      const again = await request(log.app).post('/v1/entries').send(submissionBody(2)).expect(200);
      assert.equal(again.body.index, 1);
    } finally {
      await log.close();
      removeDir(log.dataDir);
    }
  });
});
