/**
 * Witnessing rounds and quorum publication (server/witnessing.ts + server/checkpoint-view.ts) with in-process fake
 * witnesses, a fake clock and a fake store: deterministic, no sleeps. Shows that every witness is asked for the same
 * checkpoint per round, that a quorum forms under steady load, that the published size never decreases (also across
 * a restart and when one witness lags for a long time), that replies wait for a quorum and 503 after the wait, and
 * that both spec versions of "same size, different root" are recognised.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { cosignatureSigner } from '../../core/cosignature.ts';
import { EMPTY_ROOT } from '../../core/hash.ts';
import { verifyConsistency } from '../../core/merkle.ts';
import { formatSignatureLine, formatVerifierKey, parseSignedNote, signText, SIG_TYPE_COSIGNATURE_V1, verifyNote, parseVerifierKey } from '../../core/note.ts';
import { parseAddCheckpointRequest } from '../../core/witness-protocol.ts';
import { isPkglogError, PkglogError } from '../../core/errors.ts';
import type { Store } from '../../log-store/types.ts';
import { CheckpointView, PUBLISHED_SIZE_META } from '../../server/checkpoint-view.ts';
import { Witnessing, MAX_WITNESS_RESPONSE, type Timers } from '../../server/witnessing.ts';
import { FakeLog, seedFrom } from '../witness/fake-log.ts';

/** Event-loop turns, to let promise chains (fetch → body → verify → store) run; no wall-clock waiting. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

class FakeClock implements Timers {
  t = 1_000_000;
  private seq = 0;
  private pending = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.pending.delete(h as number);
  }
  /** Moves time forward, firing due timers in order and letting their consequences settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.pending) if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.pending.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
    await settle();
  }
}

/** The parts of LogStore that CheckpointView uses, over a FakeLog. */
class FakeStore {
  readonly meta = new Map<string, string>();
  readonly signed = new Set<number>([0]);
  private readonly cosigs = new Map<number, Map<string, string>>();
  constructor(readonly log: FakeLog) {}
  getMeta(k: string) {
    return this.meta.get(k);
  }
  setMeta(k: string, v: string) {
    this.meta.set(k, v);
  }
  raiseMeta(k: string, v: number) {
    const old = this.meta.get(k);
    if (old === undefined || !/^[0-9]{1,16}$/.test(old) || Number(old) < v) this.meta.set(k, String(v));
  }
  private readonly notes = new Map<number, string>();
  treeState() {
    return { treeSize: this.log.size, rootHash: this.log.rootAt(this.log.size), checkpoint: this.checkpoint(this.log.size)! };
  }
  /** The log-signed checkpoint of a size the log signed (signed once, like the real store). */
  checkpoint(size: number) {
    if (!this.signed.has(size)) return undefined;
    let n = this.notes.get(size);
    if (n === undefined) this.notes.set(size, (n = this.log.checkpoint(size)));
    return n;
  }
  addCosignatures(size: number, lines: string[]) {
    const m = this.cosigs.get(size) ?? new Map<string, string>();
    for (const l of lines) m.set(l.split(' ')[1]!, l.replace(/\n$/, ''));
    this.cosigs.set(size, m);
  }
  cosignatureLines(size: number) {
    return [...(this.cosigs.get(size)?.values() ?? [])].sort();
  }
  cosignedSizes(min: number) {
    return [...this.cosigs.entries()].filter(([s]) => s >= min).sort((a, b) => b[0] - a[0]).slice(0, 64).map(([treeSize, m]) => ({ treeSize, count: m.size }));
  }
}

type Mode = 'up' | 'dead' | 'hold';

/** A tlog-witness in memory: latest (size, root), 409 with text/x.tlog.size, proof checks, cosignature/v1. */
class FakeWitness {
  readonly name: string;
  readonly url: string;
  readonly vkey: string;
  size = 0;
  root = EMPTY_ROOT;
  mode: Mode = 'up';
  /** How this witness answers "same size, different root": current spec (422) or v1.0.0 (409, no body). */
  sameSizeAnswer: 422 | 409 = 422;
  /** Every checkpoint size it was asked to cosign. */
  readonly asked: number[] = [];
  readonly cosigned: number[] = [];
  readonly held: Array<() => void> = [];
  readonly signer;
  constructor(i: number) {
    this.name = `witness.test/fake${i}`;
    this.url = `http://127.0.0.1:1/fake${i}`;
    this.signer = cosignatureSigner(this.name, seedFrom(this.name), () => 1_700_000_000);
    this.vkey = formatVerifierKey(this.name, SIG_TYPE_COSIGNATURE_V1, this.signer.publicKey);
  }
  handle(body: Buffer): Response {
    const req = parseAddCheckpointRequest(body);
    const note = parseSignedNote(req.checkpoint);
    const cp = parseCheckpoint(note.text);
    this.asked.push(cp.treeSize);
    if (req.oldSize !== this.size) return new Response(`${this.size}\n`, { status: 409, headers: { 'content-type': 'text/x.tlog.size' } });
    if (cp.treeSize === this.size) {
      if (!cp.rootHash.equals(this.root)) return this.sameSizeAnswer === 422 ? new Response('different root\n', { status: 422 }) : new Response(null, { status: 409 });
    } else {
      try {
        if (req.oldSize === 0 && req.consistencyProof.length > 0) throw new Error('proof with old 0');
        if (req.oldSize > 0) verifyConsistency(req.oldSize, cp.treeSize, this.root, cp.rootHash, req.consistencyProof);
      } catch {
        return new Response('bad proof\n', { status: 422 });
      }
    }
    this.size = cp.treeSize;
    this.root = cp.rootHash;
    this.cosigned.push(cp.treeSize);
    return new Response(formatSignatureLine(signText(note.text, this.signer)), { status: 200 });
  }
  /** Answers held requests now. */
  release(): void {
    for (const r of this.held.splice(0)) r();
  }
}

async function setup(opts: { witnesses?: number; quorum: number; intervalMs?: number; waitMs?: number }) {
  const clock = new FakeClock();
  const log = new FakeLog('example.test/rounds');
  const store = new FakeStore(log);
  const ws = Array.from({ length: opts.witnesses ?? 3 }, (_, i) => new FakeWitness(i + 1));
  const msgs: string[] = [];
  const fakeFetch = (async (url: string | URL, init?: RequestInit) => {
    const w = ws.find((x) => String(url) === `${x.url}/add-checkpoint`)!;
    if (w.mode === 'dead') throw new TypeError('fetch failed (connection refused)');
    const body = Buffer.from(init!.body as Uint8Array);
    if (w.mode === 'hold') {
      return new Promise<Response>((resolve, reject) => {
        w.held.push(() => resolve(w.handle(body)));
        init!.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      });
    }
    return w.handle(body);
  }) as typeof fetch;
  const makeView = () => CheckpointView.open(store as unknown as Store, opts.quorum, opts.waitMs ?? 5000, ws.map((w) => w.vkey), clock);
  let view = await makeView();
  const witnessing = new Witnessing({
    witnesses: ws.map((w) => ({ url: w.url, vkey: w.vkey })),
    latest: () => ({ treeSize: log.size, signedNote: store.checkpoint(log.size)! }),
    checkpointAt: (s) => store.checkpoint(s),
    consistencyProof: (a, b) => log.consistencyProof(a, b),
    storeCosignatures: async (s, lines) => {
      store.addCosignatures(s, lines);
      await view.cosignaturesChanged(s);
    },
    log: (m) => msgs.push(m),
    fetch: fakeFetch,
    quorum: opts.quorum,
    minIntervalMs: opts.intervalMs ?? 1000,
    timers: clock,
  });
  /** A batch commits: the log signs a new checkpoint and tells witnessing. */
  const commit = (n = 1) => {
    log.append(n);
    store.signed.add(log.size);
    witnessing.notify();
  };
  return {
    clock, log, store, ws, msgs, witnessing, commit,
    get view() {
      return view;
    },
    async restartView() {
      view = await makeView();
      return view;
    },
  };
}

/** The published note verifies with at least `k` distinct fake-witness cosignatures. */
function assertCosigned(note: string, ws: FakeWitness[], k: number): void {
  const v = verifyNote(note, ws.map((w) => parseVerifierKey(w.vkey)));
  assert.ok(v.verified.length >= k, `${v.verified.length} cosignatures, want ≥ ${k}`);
}

describe('server: witnessing rounds and quorum publication (fake witnesses, fake clock)', () => {
  it('quorum 2 of 3 under steady commits: one target per round, sizes never decrease, replies within the wait', async () => {
    const t = await setup({ quorum: 2, intervalMs: 1000, waitMs: 5000 });
    const published: number[] = [];
    const replies: Array<{ index: number; at: number; done?: number; size?: number; err?: unknown }> = [];
    // 20 s of fake time: a batch every 50 ms; the third witness is slow (its answers come 1.5 s late).
    t.ws[2]!.mode = 'hold';
    for (let step = 0; step < 400; step++) {
      t.commit(1 + (step % 3));
      const index = t.log.size - 1;
      const r: (typeof replies)[number] = { index, at: t.clock.now() };
      replies.push(r);
      Promise.resolve(t.view.forReply(t.log.size, index)).then(
        (n) => {
          r.done = t.clock.now();
          r.size = n.treeSize;
          assertCosigned(n.note, t.ws, 2);
        },
        (e) => (r.err = e),
      );
      if (step % 30 === 29) t.ws[2]!.release();
      await t.clock.advance(50);
      published.push(await t.view.publishedSize());
    }
    t.ws[2]!.release();
    await t.clock.advance(2000);
    for (let i = 1; i < published.length; i++) assert.ok(published[i]! >= published[i - 1]!, `published went from ${published[i - 1]} to ${published[i]}`);
    assert.equal(await t.view.publishedSize(), t.log.size, 'the last round covered the last batch');
    // every witness was only ever asked for round targets, so the cosigned sizes are few and shared
    const rounds = t.witnessing.currentRound()!.id;
    assert.ok(rounds >= 15 && rounds <= 21, `rounds in 20 s at a 1 s interval: ${rounds}`);
    const fastSizes = new Set([...t.ws[0]!.cosigned, ...t.ws[1]!.cosigned]);
    assert.deepEqual([...t.ws[0]!.cosigned], [...t.ws[1]!.cosigned], 'the two prompt witnesses cosigned exactly the same sizes');
    for (const s of t.ws[2]!.cosigned) assert.ok(fastSizes.has(s), `the slow witness cosigned ${s}, not a round target`);
    assert.ok(fastSizes.size <= rounds);
    // every reply was answered with a quorum-cosigned checkpoint containing its entry, within the wait
    for (const r of replies) {
      assert.equal(r.err, undefined, `reply for ${r.index}: ${(r.err as Error)?.message}`);
      assert.ok(r.done !== undefined && r.done - r.at <= 5000, `reply for ${r.index} took ${r.done! - r.at} ms`);
      assert.ok(r.size! > r.index);
    }
    const worst = Math.max(...replies.map((r) => r.done! - r.at));
    assert.ok(worst <= 1100, `worst reply latency ${worst} ms (one interval plus a batch)`);
    assertCosigned((await await t.view.latest()).note, t.ws, 2);
    await t.witnessing.close();
  });

  it('one witness dead: still publishes; two dead: replies are 503 after the wait, entries committed', async () => {
    const t = await setup({ quorum: 2, intervalMs: 200, waitMs: 3000 });
    t.ws[0]!.mode = 'dead';
    for (let i = 0; i < 20; i++) {
      t.commit();
      await t.clock.advance(100);
    }
    const p1 = await t.view.publishedSize();
    assert.ok(p1 >= 18, `published ${p1}`);
    assertCosigned((await await t.view.latest()).note, t.ws, 2);
    const dead = t.witnessing.status()[0]!;
    assert.ok(dead.failures >= 1 && dead.cosignedSize === null);
    assert.ok(dead.requests <= 6, `a dead witness backs off: ${dead.requests} requests in 2 s`);

    t.ws[1]!.mode = 'dead';
    t.commit();
    const index = t.log.size - 1;
    let err: unknown;
    let answeredAt: number | undefined;
    const start = t.clock.now();
    Promise.resolve(t.view.forReply(t.log.size, index)).then(() => (answeredAt = t.clock.now()), (e) => ((err = e), (answeredAt = t.clock.now())));
    await t.clock.advance(2999);
    assert.equal(answeredAt, undefined, 'waits up to the wait');
    await t.clock.advance(1);
    assert.equal(answeredAt! - start, 3000);
    assert.ok(isPkglogError(err, 'overloaded'), String(err));
    assert.match((err as PkglogError).message, new RegExp(`committed as entry ${index} but not yet cosigned by a quorum of 2`));
    assert.deepEqual((err as PkglogError).details, { committed: true, index, treeSize: index + 1 });
    assert.equal(await t.view.publishedSize(), p1, 'the published checkpoint stays where it was');
    assert.deepEqual((await await t.view.forEntry(index)).cosigned, false);

    // a witness comes back: the entry gets published at the next round (after its backoff)
    t.ws[1]!.mode = 'up';
    t.commit();
    await t.clock.advance(60_000);
    assert.ok((await t.view.publishedSize()) > index);
    assert.equal((await await t.view.forEntry(index)).cosigned, true);
    await t.witnessing.close();
  });

  it('a long-lagging quorum never makes the published checkpoint fall back (also after a restart)', async () => {
    const t = await setup({ quorum: 2, intervalMs: 100 });
    t.commit(5);
    await t.clock.advance(100);
    assert.equal(await t.view.publishedSize(), 5);
    t.ws[1]!.mode = 'dead';
    t.ws[2]!.mode = 'dead';
    // 150 rounds where only one witness cosigns: 150 sizes with one cosignature each
    for (let i = 0; i < 150; i++) {
      t.commit();
      await t.clock.advance(100);
      assert.equal(await t.view.publishedSize(), 5);
    }
    assert.ok(t.ws[0]!.cosigned.length > 100);
    assert.equal((await await t.view.latest()).treeSize, 5);
    assertCosigned((await await t.view.latest()).note, t.ws, 2);
    assert.equal(t.store.meta.get(PUBLISHED_SIZE_META), '5');
    assert.equal(await (await t.restartView()).publishedSize(), 5, 'a restart publishes the same checkpoint');
    await t.witnessing.close();
  });

  it('recovers the published size from the store: the mark, raised by a quorum stored after it', async () => {
    const t = await setup({ quorum: 2 });
    const sign = (n: number) => (t.log.append(n), t.store.signed.add(t.log.size)); // batches, no witnessing
    sign(3);
    sign(4);
    const lines = (w: FakeWitness, size: number) => [formatSignatureLine(signText(t.log.checkpointText(size), w.signer))];
    t.store.addCosignatures(3, [...lines(t.ws[0]!, 3), ...lines(t.ws[1]!, 3)]);
    t.store.setMeta(PUBLISHED_SIZE_META, '3');
    assert.equal(await (await t.restartView()).publishedSize(), 3);
    // a crash after storing the second cosignature of 7 but before raising the mark
    t.store.addCosignatures(7, [...lines(t.ws[0]!, 7), ...lines(t.ws[2]!, 7)]);
    assert.equal(await (await t.restartView()).publishedSize(), 7);
    assert.equal(t.store.meta.get(PUBLISHED_SIZE_META), '7');
    // cosignatures by keys that are not configured witnesses do not count
    sign(1);
    const stranger = cosignatureSigner('witness.test/stranger', seedFrom('stranger'), () => 1);
    t.store.addCosignatures(8, [...lines(t.ws[0]!, 8), formatSignatureLine(signText(t.log.checkpointText(8), stranger))]);
    await t.view.cosignaturesChanged(8);
    assert.equal(await t.view.publishedSize(), 7);
    assert.equal(await t.view.cosignerCount(8), 1);
  });

  it('a witness that knows a larger size than its round (e.g. it pulled /checkpoint) re-cosigns that size', async () => {
    const t = await setup({ quorum: 1, witnesses: 1, intervalMs: 1000 });
    const w = t.ws[0]!;
    w.mode = 'hold';
    t.commit(5); // round 1: target 5, the request is held
    t.commit(5); // the log is at 10; round 1 is still in flight
    w.size = 10; // meanwhile the witness cosigned 10 by other means
    w.root = t.log.rootAt(10);
    w.release(); // → 409 "10"
    await t.clock.advance(1);
    w.release(); // → old 10, the log's checkpoint of size 10
    await t.clock.advance(1);
    assert.deepEqual(w.asked, [5, 10]);
    assert.deepEqual(w.cosigned, [10]);
    assert.equal(t.witnessing.currentRound()!.treeSize, 5);
    assert.equal(await t.view.publishedSize(), 10);
    // a witness that knows more than the log ever signed is reported, never fed
    const t2 = await setup({ quorum: 1, witnesses: 1 });
    t2.ws[0]!.size = 50;
    t2.commit(3);
    await t2.clock.advance(1);
    assert.match(t2.witnessing.status()[0]!.lastError!, /holds size 50, larger than this log's 3/);
    assert.deepEqual(t2.ws[0]!.cosigned, []);
    await t.witnessing.close();
    await t2.witnessing.close();
  });

  for (const answer of [422, 409] as const) {
    it(`same size, different root answered ${answer === 422 ? '422 (current spec)' : '409 without a body (v1.0.0)'}: reported as inconsistent, backed off, nothing published`, async () => {
      const t = await setup({ quorum: 1, witnesses: 1, intervalMs: 100 });
      const other = new FakeLog('example.test/rounds', 'example.test/rounds', 'fork').append(8);
      const w = t.ws[0]!;
      w.sameSizeAnswer = answer;
      w.size = 8;
      w.root = other.rootAt(8);
      t.commit(8);
      await t.clock.advance(1);
      const st = t.witnessing.status()[0]!;
      assert.equal(st.cosignedSize, null);
      assert.ok(st.failures >= 1);
      assert.match(st.lastError!, /different root for size 8/);
      assert.ok(t.msgs.some((m) => m.startsWith('error: witness') && m.includes('different root for size 8')), t.msgs.join('\n'));
      assert.equal(await t.view.publishedSize(), 0);
      // a 409 request then a same-size request: exactly two requests, then a backoff (no hot loop)
      assert.equal(st.requests, 2);
      await t.clock.advance(50);
      assert.equal(t.witnessing.status()[0]!.requests, 2);
      await t.witnessing.close();
    });
  }

  it('a consistency proof the witness rejects (422) is reported as inconsistent; an oversized answer is refused', async () => {
    const t = await setup({ quorum: 1, witnesses: 1, intervalMs: 100 });
    const other = new FakeLog('example.test/rounds', 'example.test/rounds', 'fork').append(5);
    t.ws[0]!.size = 5;
    t.ws[0]!.root = other.rootAt(5);
    t.commit(8);
    await t.clock.advance(1);
    assert.match(t.witnessing.status()[0]!.lastError!, /refused checkpoint 8 \(422.*does not extend/);

    const big = await setup({ quorum: 1, witnesses: 1 });
    const huge = '— x ' + 'A'.repeat(MAX_WITNESS_RESPONSE) + '\n';
    (big.ws[0] as unknown as { handle: () => Response }).handle = () => new Response(huge, { status: 200 });
    big.commit(1);
    await big.clock.advance(1);
    assert.match(big.witnessing.status()[0]!.lastError!, /over the 65536-byte limit/);
    await t.witnessing.close();
    await big.witnessing.close();
  });

  it('a round is complete when a quorum cosigned, so a hung witness does not hold rounds back', async () => {
    const t = await setup({ quorum: 2, intervalMs: 100 });
    t.ws[2]!.mode = 'hold'; // never answers during this test
    for (let i = 0; i < 10; i++) {
      t.commit();
      await t.clock.advance(100);
    }
    assert.ok(t.witnessing.currentRound()!.id >= 9);
    assert.equal(t.ws[2]!.held.length, 1, 'one request in flight to the hung witness, no pile-up');
    assert.equal(await t.view.publishedSize(), 10);
    t.ws[2]!.release(); // it answers the old round, then is asked for the current one
    await t.clock.advance(1);
    t.ws[2]!.release();
    await t.clock.advance(1);
    assert.equal(t.ws[2]!.cosigned.at(-1), 10);
    await t.witnessing.close();
  });

  it('property: under any schedule of batches and witness failures, the published size never decreases, always has a quorum, and catches up once witnesses recover', async () => {
    const step = fc.record({
      commit: fc.integer({ min: 0, max: 3 }),
      advance: fc.integer({ min: 0, max: 400 }),
      toggle: fc.option(fc.record({ witness: fc.integer({ min: 0, max: 2 }), mode: fc.constantFrom<Mode>('up', 'dead', 'hold') }), { nil: undefined }),
      release: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 3 }), fc.constantFrom(50, 100, 300), fc.array(step, { minLength: 1, maxLength: 40 }), async (quorum, intervalMs, steps) => {
        const t = await setup({ quorum, intervalMs, waitMs: 1000 });
        let last = 0;
        const check = async () => {
          const p = await t.view.publishedSize();
          assert.ok(p >= last, `published went from ${last} to ${p}`);
          if (p > 0) assert.ok((await t.view.cosignerCount(p)) >= quorum, `published ${p} with ${await t.view.cosignerCount(p)} cosignatures`);
          last = p;
        };
        for (const s of steps) {
          if (s.toggle) t.ws[s.toggle.witness]!.mode = s.toggle.mode;
          if (s.commit > 0) t.commit(s.commit);
          if (s.release) for (const w of t.ws) w.release();
          await t.clock.advance(s.advance);
          await check();
        }
        const rounds = t.witnessing.currentRound()?.id ?? 0;
        const distinct = new Set(t.ws.flatMap((w) => w.cosigned));
        assert.ok(distinct.size <= rounds, `${distinct.size} cosigned sizes in ${rounds} rounds: only round targets are cosigned`);
        for (const w of t.ws) for (let i = 1; i < w.cosigned.length; i++) assert.ok(w.cosigned[i]! >= w.cosigned[i - 1]!);
        // every witness recovers: the newest batch gets published
        for (const w of t.ws) w.mode = 'up';
        for (let i = 0; i < 5; i++) {
          for (const w of t.ws) w.release();
          await t.clock.advance(60_000);
        }
        await check();
        assert.equal(await t.view.publishedSize(), t.log.size, 'published the newest checkpoint after the witnesses recovered');
        await t.witnessing.close();
      }),
      { numRuns: 30 },
    );
  });
});
