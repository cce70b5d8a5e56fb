/**
 * server/index-writer.ts with its real worker thread (server/index-worker.ts) over a real log's databases: the worker
 * indexes what the log committed and the main thread signs each output checkpoint only while the signing guard
 * allows; a worker that dies is started again and resumes from the stored revision, without rebuilding.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parseSignedNote } from '../../core/note.ts';
import { SqliteIndexStore } from '../../log-store/index-store.ts';
import { Indexer, outputOrigin } from '../../server/indexer.ts';
import { IndexWriter } from '../../server/index-writer.ts';
import { indexDatabaseFile } from '../../server/index-service.ts';
import { databaseFile } from '../../server/main.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import { startTestLog, removeDir } from '../support/log-harness.ts';
import { submitRange } from '../support/tiles-check.ts';

const submit = (url: string, from: number, n: number) => submitRange(url, from, n, { name: 'writer-test' });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('server/index-writer (the index worker thread)', () => {
  it('indexes the committed entries in the worker; the served bundle covers them', async () => {
    const log = await startTestLog({ index: true });
    try {
      await submit(log.url, 0, 5);
      await log.index!.writer.caughtUp();
      const head = (await log.index!.indexer.currentHead())!;
      assert.equal(head.inputSize, 5);
      const b = JSON.parse(await log.index!.indexer.bundle({ kind: 'package', ecosystem: 'pypi', name: 'writer-test' })) as { entries: unknown[] };
      assert.equal(b.entries.length, 5);
    } finally {
      await log.close();
      log.server.close();
      removeDir(log.dataDir);
    }
  });

  it('signs only while the guard allows; a killed worker is started again and resumes from the stored revision', async () => {
    const log = await startTestLog({ index: true });
    const dataDir = log.dataDir;
    await submit(log.url, 0, 3);
    await log.index!.writer.caughtUp();
    const before = (await log.index!.indexer.currentHead())!;
    await log.close();
    log.server.close();
    try {
      // The input log has 3 more entries that the index has not seen.
      const log2 = await startTestLog({ dataDir });
      await submit(log2.url, 3, 3);
      await log2.close();
      log2.server.close();

      const key = loadOrCreateLogKey(join(dataDir, 'log.key'), undefined);
      const origin = outputOrigin(key.origin);
      const signer = { ...key.signer, name: origin };
      const readStore = SqliteIndexStore.open(indexDatabaseFile(dataDir));
      const indexer = new Indexer({ store: readStore, input: { entryLeaves: () => [], entryLeaf: () => undefined, checkpoint: () => undefined, firstCheckpointSizeIn: () => undefined }, inputProof: () => [], inputOrigin: key.origin, signer, publicSize: () => 6, maySign: () => false });
      let stopped: string | undefined = 'test: the log may not sign';
      const logs: string[] = [];
      const writer = new IndexWriter({
        data: { indexPath: indexDatabaseFile(dataDir), logPath: databaseFile(dataDir), origin, inputOrigin: key.origin, publishedRevisions: before.revisions },
        signer, indexer, publicSize: () => 6, stoppedReason: () => stopped, log: (m) => logs.push(m),
      });
      try {
        await writer.caughtUp();
        assert.equal((await readStore.head())!.revisions, before.revisions, 'nothing committed while the guard refuses');
        assert.ok(logs.some((m) => /may not sign: test: the log may not sign/.test(m)), logs.join('\n'));
        stopped = undefined;
        await writer.caughtUp();
        const head = (await readStore.head())!;
        assert.equal(head.inputSize, 6);
        assert.equal(head.revisions, before.revisions + 1);
        assert.equal(parseCheckpoint(parseSignedNote(indexer.latest()!.signedNote).text).treeSize, head.revisions, 'the read side adopted the revision');
        // Kill the worker: it is started again and goes on from the stored revision.
        await (writer as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
        for (let i = 0; i < 50 && writer.restarts === 0; i++) await sleep(100);
        assert.equal(writer.restarts, 1);
        await sleep(200);
        await writer.caughtUp();
        assert.deepEqual((await readStore.head())!, head, 'nothing redone after the restart');
      } finally {
        await writer.close();
        await readStore.close();
      }
    } finally {
      removeDir(dataDir);
    }
  });
});
