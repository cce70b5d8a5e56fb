/**
 * server/mirroring.ts against a real mirror (startMirror on 127.0.0.1:0) and an in-memory log: a push goes through
 * add-checkpoint and several add-entries requests (3 packages each: every one but the last answered 202), stores the
 * mirror's verified cosignature; the next push goes on from the mirror's next entry; a mirror that refuses the
 * entries (here: a log whose entries differ from what it signed) is backed off and nothing is stored.
 */
import assert from 'node:assert/strict';
import { MemoryLog } from '../support/memory-log.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { MirrorStore } from '../../mirror/store.ts';
import { startMirror, type RunningMirror } from '../../mirror/main.ts';
import { Mirroring } from '../../server/mirroring.ts';
import { hashRanges, planConsistencyProof } from '../../core/merkle.ts';
import { nodeHashFromTiles } from '../../core/tiles.ts';
import { parseVerifierKey, verifyNote } from '../../core/note.ts';

async function until(what: string, fn: () => boolean, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('server/mirroring: the log pushes to a mirror', function () {
  this.timeout(60_000);
  let dir: string;
  let running: RunningMirror;
  const log = new MemoryLog('example.test/mirroring');

  before(async () => {
    dir = tempDir('pkglog-mirroring-');
    const store = MirrorStore.open(dir);
    store.addLog(log.origin, log.vkey, 'http://log.invalid', false, 0, 0);
    store.close();
    running = await startMirror({ dataDir: dir, listen: '127.0.0.1:0', name: 'mirror.test/pushed', pollIntervalMs: 3_600_000 });
  });
  after(async () => {
    await running.close();
    removeDir(dir);
  });

  const deps = (stored: Array<{ size: number; lines: string[] }>, logs: string[], entries = (s: number, e: number) => log.entries.slice(s, e)) => ({
    mirrors: [{ url: running.url, vkey: running.vkey }],
    latest: () => ({ treeSize: log.size, note: log.signedCheckpoint() }),
    consistencyProof: (o: number, n: number) => hashRanges(planConsistencyProof(o, n), (nd) => nodeHashFromTiles(nd, log.size, (t) => log.rawTile(t))),
    node: (nd: { level: number; index: number }) => nodeHashFromTiles(nd, log.size, (t) => log.rawTile(t)),
    entries,
    storeCosignatures: (size: number, lines: string[]) => stored.push({ size, lines }),
    log: (m: string) => logs.push(m),
    minIntervalMs: 10,
    packagesPerRequest: 3,
  });

  it('pushes in several add-entries requests, stores the verified cosignature, then continues from the next entry', async () => {
    log.append(2000);
    const stored: Array<{ size: number; lines: string[] }> = [];
    const logs: string[] = [];
    const m = new Mirroring(deps(stored, logs));
    m.notify();
    await until('the first cosignature', () => stored.length === 1);
    assert.equal(stored[0]!.size, 2000);
    verifyNote(log.checkpointText(2000) + '\n' + stored[0]!.lines.join(''), [parseVerifierKey(running.vkey)]);
    const first = m.status()[0]!;
    assert.ok(first.requests >= 1 + Math.ceil(2000 / 256 / 3), `${first.requests} requests`);
    log.append(300);
    m.notify();
    await until('the second cosignature', () => stored.length === 2);
    assert.equal(stored[1]!.size, 2300);
    assert.equal(running.store.getLog(log.origin)!.nextEntry, 2300);
    assert.deepEqual(logs, []);
    await m.close();
  });

  it('a push the mirror refuses (entries that are not the signed ones) is backed off; nothing is stored', async () => {
    log.append(100);
    const stored: Array<{ size: number; lines: string[] }> = [];
    const logs: string[] = [];
    const m = new Mirroring(deps(stored, logs, (s, e) => log.entries.slice(s, e).map((x) => Buffer.concat([x, Buffer.from('!')]))));
    m.notify();
    await until('a refusal', () => logs.length > 0);
    assert.match(logs[0]!, /422/);
    assert.equal(stored.length, 0);
    assert.equal(m.status()[0]!.failures >= 1, true);
    assert.equal(running.store.getLog(log.origin)!.nextEntry, 2300);
    await m.close();
  });

  it('an inactive front end (not the lease holder) pushes nothing; once active it pushes on the next notify', async () => {
    log.append(100);
    const stored: Array<{ size: number; lines: string[] }> = [];
    const logs: string[] = [];
    let active = false;
    const m = new Mirroring({ ...deps(stored, logs), active: () => active });
    m.notify();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(m.status()[0]!.requests, 0, 'no request while inactive');
    assert.equal(stored.length, 0);
    active = true;
    m.notify();
    await until('the cosignature once active', () => stored.length === 1);
    assert.equal(stored[0]!.size, log.size);
    assert.deepEqual(logs, []);
    await m.close();
  });
});
