/**
 * The high-water mark at start-up (server/safety.ts), in process: a database ahead of it (a crash between the commit
 * and the high-water mark write) is fine and brings the file up to date; another root at its size, a mark signed by
 * another key, or a database behind it are refused; a missing mark is recreated with a warning.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isPkglogError } from '../../core/errors.ts';
import { ed25519Signer } from '../../core/note.ts';
import { parseSignerKey } from '../../core/note.ts';
import { signCheckpoint } from '../../server/sequencer.ts';
import { openTestLog, removeDir, tempDir } from '../support/log-harness.ts';
import { artifact, seedOf, sign } from '../support/submissions.ts';

const ORIGIN = 'example.test/safety-unit';

describe('server/safety: the high-water mark at start-up', () => {
  let dir: string;
  const hwm = () => join(dir, 'log.key.hwm');
  let next = 0;
  async function grow(n: number) {
    const log = await openTestLog({ dataDir: dir, origin: ORIGIN });
    const ps = Array.from({ length: n }, () => log.sequencer.submit(sign(artifact(next++))));
    log.sequencer.flush();
    await Promise.all(ps);
    const notes = (size: number) => log.store.checkpoint(size)!;
    const out = { size: (await log.store.treeState())!.treeSize, notes };
    await log.close();
    return out;
  }
  beforeEach(() => {
    dir = tempDir('pkglog-safety-unit-');
    next = 0;
  });
  afterEach(() => removeDir(dir));

  it('is written after every batch: it holds the newest checkpoint', async () => {
    await grow(3);
    const log = await openTestLog({ dataDir: dir });
    assert.equal(readFileSync(hwm(), 'utf8'), (await log.store.treeState())!.checkpoint);
    assert.equal(log.guard.highWaterMark.treeSize, 3);
    await log.close();
  });

  it('a database ahead of it (crash after the commit): starts, and brings the mark up to date', async () => {
    await grow(3);
    const at3 = readFileSync(hwm(), 'utf8');
    await grow(2);
    writeFileSync(hwm(), at3); // as if the process died between the commit of size 5 and the mark's write
    const log = await openTestLog({ dataDir: dir });
    assert.equal(log.guard.highWaterMark.treeSize, 5);
    assert.equal(readFileSync(hwm(), 'utf8'), (await log.store.treeState())!.checkpoint);
    await log.close();
  });

  it('another root at its size: refused', async () => {
    await grow(5);
    const key = parseSignerKey(readFileSync(join(dir, 'log.key'), 'utf8').trim());
    writeFileSync(hwm(), signCheckpoint(key, ORIGIN, 5, Buffer.alloc(32, 7)));
    await assert.rejects(() => openTestLog({ dataDir: dir }), (e: Error) => {
      assert.ok(isPkglogError(e, 'unsafe_state'));
      assert.match(e.message, /has a different root at size 5, the size this log last published/);
      return true;
    });
  });

  it('a mark signed by another key: refused', async () => {
    await grow(2);
    writeFileSync(hwm(), signCheckpoint(ed25519Signer(ORIGIN, seedOf('another key')), ORIGIN, 2, Buffer.alloc(32, 1)));
    await assert.rejects(() => openTestLog({ dataDir: dir }), /refusing to sign: the high-water mark .* is not a checkpoint signed by this log's key/);
  });

  it('a database behind it: refused, naming both sizes', async () => {
    await grow(4);
    const at4 = readFileSync(hwm(), 'utf8');
    rmSync(join(dir, 'log.sqlite'));
    rmSync(join(dir, 'log.sqlite-wal'), { force: true });
    rmSync(join(dir, 'log.sqlite-shm'), { force: true });
    rmSync(hwm());
    await grow(2); // a new history from scratch (and a new mark at size 2)
    writeFileSync(hwm(), at4);
    await assert.rejects(() => openTestLog({ dataDir: dir }), /holds a tree of size 2, but this log already published size 4/);
  });

  it('no mark (first start after an upgrade): recreated from the database with a warning', async () => {
    await grow(3);
    rmSync(hwm());
    const logs: string[] = [];
    const { resolveConfig } = await import('../../server/config.ts');
    const { openLog } = await import('../../server/main.ts');
    const log = await openLog(resolveConfig({ dataDir: dir, listen: '127.0.0.1:0' }, {}), (m) => logs.push(m));
    assert.match(logs.join('\n'), /warning: no high-water mark file .*; creating it at size 3 from the database/);
    assert.equal(readFileSync(hwm(), 'utf8'), (await log.store.treeState())!.checkpoint);
    await log.close();
  });
});

describe('server/safety: several front ends (recheck at a takeover, observe another sequencer\'s commit)', () => {
  let dir: string;
  const hwm = () => join(dir, 'log.key.hwm');
  beforeEach(() => {
    dir = tempDir('pkglog-safety-shared-');
  });
  afterEach(() => removeDir(dir));

  async function logAt(n: number) {
    const log = await openTestLog({ dataDir: dir, origin: ORIGIN });
    const ps = Array.from({ length: n }, (_, i) => log.sequencer.submit(sign(artifact(i))));
    void log.sequencer.flush();
    await Promise.all(ps);
    const key = parseSignerKey(readFileSync(join(dir, 'log.key'), 'utf8').trim());
    return { log, key };
  }

  it('observe: a newer checkpoint signed by the log becomes the high-water mark (written) before it is served', async () => {
    const { log, key } = await logAt(3);
    try {
      const state = (await log.store.treeState())!;
      await log.guard.observe(state); // the same: nothing to do
      const next = { treeSize: 7, rootHash: Buffer.alloc(32, 9), checkpoint: signCheckpoint(key, ORIGIN, 7, Buffer.alloc(32, 9)) };
      await log.guard.observe(next);
      assert.equal(log.guard.highWaterMark.treeSize, 7);
      assert.equal(readFileSync(hwm(), 'utf8'), next.checkpoint);
    } finally {
      await log.close();
    }
  });

  it('observe: a database behind the mark, another root at the mark, or a checkpoint not signed by the log: refused, signing stops', async () => {
    for (const bad of ['behind', 'other key', 'other root'] as const) {
      removeDir(dir);
      dir = tempDir('pkglog-safety-shared-');
      const { log, key } = await logAt(3);
      try {
        const state = bad === 'behind' ? { treeSize: 2, rootHash: Buffer.alloc(32, 1), checkpoint: signCheckpoint(key, ORIGIN, 2, Buffer.alloc(32, 1)) }
          : bad === 'other key' ? { treeSize: 5, rootHash: Buffer.alloc(32, 1), checkpoint: signCheckpoint(ed25519Signer(ORIGIN, seedOf('x')), ORIGIN, 5, Buffer.alloc(32, 1)) }
            : { treeSize: 3, rootHash: Buffer.alloc(32, 2), checkpoint: signCheckpoint(key, ORIGIN, 3, Buffer.alloc(32, 2)) };
        await assert.rejects(log.guard.observe(state), (e: Error) => isPkglogError(e, 'unsafe_state'), bad);
        assert.equal(log.guard.highWaterMark.treeSize, 3, bad);
        if (bad !== 'other key') assert.ok(log.guard.stoppedReason !== undefined, bad);
      } finally {
        await log.close();
      }
    }
  });

  it('recheck: the start-up checks run again against the database as it is now (a mark ahead of it refuses)', async () => {
    const { log, key } = await logAt(3);
    try {
      await log.guard.recheck(); // as it was: fine
      assert.equal(log.guard.highWaterMark.treeSize, 3);
      writeFileSync(hwm(), signCheckpoint(key, ORIGIN, 10, Buffer.alloc(32, 3)));
      await assert.rejects(log.guard.recheck(), /holds a tree of size 3, but this log already published size 10/);
    } finally {
      await log.close();
    }
  });
});
