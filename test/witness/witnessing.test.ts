/** server/witnessing.ts (the log side of add-checkpoint) against real witnesses and broken ones. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeLog } from './fake-log.ts';
import { tempDir } from './helpers.ts';
import { startWitness, type RunningWitness } from '../../witness/main.ts';
import { WitnessStore } from '../../witness/store.ts';
import { Witnessing } from '../../server/witnessing.ts';
import { parseVerifierKey, verifyNote } from '../../core/note.ts';

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('server/witnessing (log side)', () => {
  let w: RunningWitness;
  let tmp: ReturnType<typeof tempDir>;
  const log = new FakeLog('example.com/witnessed');
  beforeEach(async () => {
    tmp = tempDir();
    const s = WitnessStore.open(tmp.dir);
    s.addLog(log.origin, log.vkey, null, 0);
    s.close();
    w = await startWitness({ dataDir: tmp.dir, listen: '127.0.0.1:0', name: 'witness.test/ws', gossipIntervalMs: 60_000, pollIntervalMs: 60_000 });
  });
  afterEach(async () => {
    await w.close();
    tmp.cleanup();
  });

  function make(l: FakeLog, witnesses: Array<{ url: string; vkey: string }>, minIntervalMs = 50) {
    const stored = new Map<number, string[]>();
    const msgs: string[] = [];
    const witnessing = new Witnessing({
      witnesses,
      latest: () => ({ treeSize: l.size, signedNote: l.checkpoint() }),
      consistencyProof: (a, b) => l.consistencyProof(a, b),
      storeCosignatures: (size, lines) => void stored.set(size, [...(stored.get(size) ?? []), ...lines]),
      log: (m) => msgs.push(m),
      minIntervalMs,
    });
    return { witnessing, stored, msgs };
  }

  it('coalesces a burst of notify() into few requests and stores verified cosignatures', async () => {
    const l = new FakeLog(log.origin);
    const { witnessing, stored } = make(l, [{ url: w.url, vkey: w.vkey }], 200);
    for (let i = 0; i < 50; i++) {
      l.append(3);
      witnessing.notify();
    }
    await until(() => stored.has(150), 3000, 'cosignature of 150');
    const st = witnessing.status()[0]!;
    assert.ok(st.requests <= 2, `requests: ${st.requests}`);
    const note = l.checkpoint(150) + stored.get(150)!.join('');
    assert.equal(verifyNote(note, [parseVerifierKey(w.vkey)]).verified.length, 1);
    await witnessing.close();
  });

  it('learns the witness size from a 409 and retries from it (e.g. after the log restarts)', async () => {
    const l = new FakeLog(log.origin).append(10);
    const first = make(l, [{ url: w.url, vkey: w.vkey }]);
    first.witnessing.notify();
    await until(() => first.stored.has(10), 3000, 'first cosignature');
    await first.witnessing.close();
    l.append(15);
    const second = make(l, [{ url: w.url, vkey: w.vkey }]); // a fresh instance believes the witness knows 0
    second.witnessing.notify();
    await until(() => second.stored.has(25), 3000, 'cosignature after 409');
    assert.equal(second.witnessing.status()[0]!.requests, 2);
    assert.equal(w.store.latest(log.origin)!.treeSize, 25);
    await second.witnessing.close();
  });

  it('a dead witness and a lying witness never block, back off, and store nothing', async () => {
    const liar = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`— witness.test/ws ${Buffer.alloc(76, 1).toString('base64')}\n`));
    });
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
    const liarUrl = `http://127.0.0.1:${(liar.address() as AddressInfo).port}`;
    const l = new FakeLog(log.origin).append(4);
    const { witnessing, stored, msgs } = make(l, [
      { url: 'http://127.0.0.1:1', vkey: w.vkey },
      { url: liarUrl, vkey: w.vkey },
      { url: w.url, vkey: w.vkey },
    ]);
    const t0 = Date.now();
    witnessing.notify();
    assert.ok(Date.now() - t0 < 50, 'notify() returns at once');
    await until(() => stored.has(4) && witnessing.status().every((s) => s.requests > 0 && (s.cosignedSize !== null || s.failures > 0)), 3000, 'attempts');
    assert.equal(stored.get(4)!.length, 1, 'only the honest witness cosignature is stored');
    const [dead, lying] = witnessing.status();
    assert.ok(dead!.failures >= 1 && lying!.failures >= 1);
    assert.ok(msgs.some((m) => m.includes(liarUrl)));
    await witnessing.close();
    await new Promise<void>((r) => liar.close(() => r()));
  });
});
