/**
 * Many front ends, one sequencer (PostgreSQL; docs/operations.md#scaling-out).
 *
 * Every front end: verifies a submission's signatures itself (the HTTP layer, before submit()), answers at once if the
 * file is already logged (200 "existing", or 409 for a different artifact), else queues it in the database's pending
 * table (log-store/pg-sequencing.ts) and waits until the entry with its file hash is committed — woken by the commit's
 * NOTIFY, polling meanwhile — then answers against the committed tree. A submission not committed within
 * `commitWaitMs` (no sequencer, e.g. during a failover) is answered 503: it stays queued, and resubmitting it is
 * idempotent (the same entry, once committed).
 *
 * The front end holding the lease also sequences: it runs the start-up safety checks when it takes the lease, then
 * integrates the oldest queued submissions in batches, each committed in ONE transaction that first runs the fence
 * (the lease epoch is still ours) and removes the batch's rows from the queue. A front end that lost its lease can
 * never commit.
 *
 * Every front end also follows the committed tree (at each commit's NOTIFY and every `followMs`): it observes it, so
 * its high-water mark, and with it what it serves, keeps up with commits by any front end even when it answers no
 * submissions; then `followed` runs (server/main.ts: the checkpoint view reads the cosignatures and the published mark
 * the lease holder stored).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fail, PkglogError } from '../core/errors.ts';
import { decodeLeaf, formatSubmission, parseSubmission, sameSubmission, type Submission } from '../core/entry.ts';
import { leafHash } from '../core/hash.ts';
import type { Hash } from '../core/types.ts';
import { Coordination, LeaseKeeper, type PendingRow, type SequencerLease } from '../log-store/pg-sequencing.ts';
import type { SigningGuard } from './safety.ts';
import { fileHashOf, type BatchHooks, type Sequenced, type Sequencer } from './sequencer.ts';

/** What the front end reads of the store. */
export interface EntryLookup {
  findByFiles(fileHashes: Hash[]): Promise<Array<{ index: number; leaf: Buffer } | undefined>>;
  treeState(): Promise<{ treeSize: number; rootHash: Hash; checkpoint: string } | undefined>;
}

export interface IntegrateResult {
  /** A new tree was committed (the queue rows were removed in its transaction). */
  committed: boolean;
  /** The whole batch was refused (nothing committed); the error it was refused with. */
  failed?: unknown;
}

export interface SharedSequencerOptions {
  store: EntryLookup;
  coordination: Coordination;
  /** This front end's name in the lease (unique per process). */
  holder: string;
  leaseTtlMs: number;
  /**
   * Integrates the submissions as ONE batch (server/sequencer.ts integrateNow): `hooks.beforeSign` right before the
   * checkpoint is signed, `hooks.inTransaction` first inside the commit transaction (it fences the commit and removes
   * the rows from the queue).
   */
  integrate(submissions: Submission[], hooks: BatchHooks): Promise<IntegrateResult>;
  /** The start-up safety checks, run when this front end takes the lease (throw to refuse to sequence). */
  onAcquired(epoch: number): Promise<void>;
  /**
   * A committed tree this front end is about to answer against (the high-water mark catches up here, so the
   * checkpoint it serves is one it recorded).
   */
  observe?(state: { treeSize: number; rootHash: Hash; checkpoint: string }): Promise<void> | void;
  batchIntervalMs: number;
  maxBatch: number;
  /** Submissions queued in the database (all front ends) before new ones get 503. */
  maxPending: number;
  /** How long a submission waits to be committed before its 503 (default 10 s). */
  commitWaitMs?: number;
  /** How often a waiting front end looks for its entries besides the commit notifications (default 250 ms). */
  pollMs?: number;
  /**
   * How often a front end follows the committed tree besides the commit notifications (default 250 ms): it observes
   * it (the `observe` hook: its high-water mark catches up), then runs `followed` (e.g. the checkpoint view's
   * refresh: cosignatures and the published mark other front ends stored).
   */
  followMs?: number;
  followed?(): Promise<void> | void;
  /** close() also closes the coordination (its connections). */
  closeCoordination?: boolean;
  log?: (msg: string) => void;
}

interface Waiter {
  submission: Submission;
  queued: boolean;
  since: number;
  resolve: (r: Sequenced) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class SharedSequencer {
  private readonly o: SharedSequencerOptions;
  private readonly lease: SequencerLease;
  private readonly keeper: LeaseKeeper;
  /** Waiting submissions by file hash (latin1 key); several requests may wait for one file. */
  private readonly waiting = new Map<string, Waiter[]>();
  private waiterCount = 0;
  private closed = false;
  private checking: Promise<void> | undefined;
  private recheck = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private queuedSignal: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private queueSize = { n: 0, at: -Infinity };
  private following: Promise<void> | undefined;
  private refollow = false;
  private followTimer: NodeJS.Timeout | undefined;
  private followFailed = false;

  constructor(o: SharedSequencerOptions) {
    this.o = o;
    this.lease = o.coordination.lease(o.holder, o.leaseTtlMs);
    this.keeper = new LeaseKeeper({
      lease: this.lease,
      onAcquired: (epoch) => o.onAcquired(epoch),
      ...(o.log ? { log: o.log } : {}),
    });
    o.coordination.onCommitted(() => {
      this.check();
      this.follow();
    });
    o.coordination.onQueued(() => this.queuedSignal?.());
  }

  /** Starts taking part in the lease (and sequencing while it holds it). */
  start(): void {
    this.keeper.start();
    this.loop ??= this.sequenceLoop();
    if (this.followTimer === undefined) {
      this.followTimer = setInterval(() => this.follow(), this.o.followMs ?? 250);
      this.followTimer.unref();
      this.follow();
    }
  }

  /** True while this front end holds the lease and may sequence. */
  get sequencing(): boolean {
    return this.keeper.epoch !== undefined;
  }

  /** The lease epoch this front end sequences under, if it does. */
  get epoch(): number | undefined {
    return this.keeper.epoch;
  }

  /** Requests of this front end waiting for their entry to be committed. */
  get pending(): number {
    return this.waiterCount;
  }

  oldestPendingMs(): number {
    let oldest = Infinity;
    for (const ws of this.waiting.values()) for (const w of ws) oldest = Math.min(oldest, w.since);
    return oldest === Infinity ? 0 : performance.now() - oldest;
  }

  get running(): boolean {
    return !this.closed;
  }

  /** Queues a verified submission; settles once its file's entry is committed (or with 503 after commitWaitMs). */
  async submit(s: Submission): Promise<Sequenced> {
    if (this.closed) fail('overloaded', 'the log is shutting down');
    const fh = fileHashOf(s);
    const [found] = await this.o.store.findByFiles([fh]);
    if (found !== undefined) {
      const state = await this.committedTree();
      return this.answer(s, found, true, state.treeSize);
    }
    if (this.waiterCount >= this.o.maxPending || (await this.queuedCount()) >= this.o.maxPending) {
      fail('overloaded', 'too many submissions are waiting; retry shortly');
    }
    const queued = await this.o.coordination.queue.enqueue(fh, JSON.stringify(formatSubmission(s)));
    return new Promise<Sequenced>((resolve, reject) => {
      const key = fh.toString('latin1');
      const waitMs = this.o.commitWaitMs ?? 10_000;
      const w: Waiter = {
        submission: s, queued, since: performance.now(), resolve, reject,
        timer: setTimeout(() => {
          this.remove(key, w);
          reject(new PkglogError('overloaded', `no sequencer committed this submission within ${waitMs} ms (a failover may be under way); ` +
            'it stays queued: resubmit the same entry (idempotent) to get its proof'));
        }, waitMs),
      };
      const list = this.waiting.get(key);
      if (list === undefined) this.waiting.set(key, [w]);
      else list.push(w);
      this.waiterCount++;
      this.schedulePoll();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queuedSignal?.();
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    if (this.followTimer !== undefined) clearInterval(this.followTimer);
    await this.keeper.stop();
    await this.loop;
    await this.checking;
    await this.following;
    for (const [key, ws] of this.waiting) {
      for (const w of ws) {
        clearTimeout(w.timer);
        w.reject(new PkglogError('overloaded', 'the log is shutting down before this submission was committed; it stays queued: resubmit it'));
      }
      this.waiting.delete(key);
    }
    this.waiterCount = 0;
    if (this.o.closeCoordination) await this.o.coordination.close();
  }

  private remove(key: string, w: Waiter): void {
    const list = this.waiting.get(key);
    if (list === undefined) return;
    const i = list.indexOf(w);
    if (i < 0) return;
    list.splice(i, 1);
    this.waiterCount--;
    if (list.length === 0) this.waiting.delete(key);
  }

  private async queuedCount(): Promise<number> {
    const now = performance.now();
    if (now - this.queueSize.at > 250) this.queueSize = { n: await this.o.coordination.queue.size(this.o.maxPending), at: now };
    return this.queueSize.n;
  }

  private async committedTree() {
    const state = await this.o.store.treeState();
    if (state === undefined) fail('internal', 'store is not initialized');
    await this.o.observe?.(state);
    return state;
  }

  private answer(s: Submission, found: { index: number; leaf: Buffer }, existing: boolean, treeSize: number): Sequenced {
    const entry = decodeLeaf(found.leaf);
    if (!sameSubmission(entry, s)) {
      fail('conflict', `a different artifact is already logged for ${s.ecosystem}/${s.name}/${s.version}/${s.filename}`, { index: found.index });
    }
    return { index: found.index, leaf: found.leaf, leafHash: leafHash(found.leaf), entry, treeSize, ...(existing ? { existing: true as const } : {}) };
  }

  private schedulePoll(): void {
    if (this.pollTimer !== undefined || this.closed || this.waiterCount === 0) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      this.check();
    }, this.o.pollMs ?? 250);
  }

  /** Looks up every waiting file hash (coalesced: one look at a time, one more if asked meanwhile). */
  private check(): void {
    if (this.checking !== undefined) {
      this.recheck = true;
      return;
    }
    this.checking = (async () => {
      do {
        this.recheck = false;
        try {
          await this.checkOnce();
        } catch (e) {
          this.o.log?.(`looking up waiting submissions: ${(e as Error).message}`);
        }
      } while (this.recheck && !this.closed);
    })().finally(() => {
      this.checking = undefined;
      this.schedulePoll();
    });
  }

  private async checkOnce(): Promise<void> {
    if (this.waiterCount === 0) return;
    const keys = [...this.waiting.keys()];
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      const refs = await this.o.store.findByFiles(chunk.map((k) => Buffer.from(k, 'latin1')));
      if (refs.every((r) => r === undefined)) continue;
      const state = await this.committedTree();
      for (const [j, ref] of refs.entries()) {
        if (ref === undefined) continue;
        const ws = this.waiting.get(chunk[j]!) ?? [];
        this.waiting.delete(chunk[j]!);
        this.waiterCount -= ws.length;
        for (const w of ws) {
          clearTimeout(w.timer);
          try {
            w.resolve(this.answer(w.submission, ref, !w.queued, state.treeSize));
          } catch (e) {
            w.reject(e);
          }
        }
      }
    }
  }

  /**
   * Follows the committed tree (coalesced: one at a time, one more if asked meanwhile): observes it, so what this
   * front end serves (GET /checkpoint, proofs: bounded by its high-water mark) catches up with commits by any front
   * end even when it answers no submissions, then runs `followed`. A failure is logged once until one succeeds.
   */
  private follow(): void {
    if (this.closed) return;
    if (this.following !== undefined) {
      this.refollow = true;
      return;
    }
    this.following = (async () => {
      do {
        this.refollow = false;
        try {
          await this.committedTree();
          await this.o.followed?.();
          this.followFailed = false;
        } catch (e) {
          if (!this.followFailed) this.o.log?.(`following the committed tree: ${(e as Error).message}`);
          this.followFailed = true;
        }
      } while (this.refollow && !this.closed);
    })().finally(() => {
      this.following = undefined;
    });
  }

  /** Resolves when something was queued (any front end), or after `ms`. */
  private queuedOrAfter(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(t);
        if (self.queuedSignal === done) self.queuedSignal = undefined;
        resolve();
      }
      this.queuedSignal = done;
    });
  }

  private async sequenceLoop(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      const epoch = this.keeper.epoch;
      if (epoch === undefined) {
        await this.keeper.changed(this.o.leaseTtlMs);
        continue;
      }
      let rows: PendingRow[];
      try {
        rows = await this.o.coordination.queue.oldest(this.o.maxBatch);
      } catch (e) {
        this.o.log?.(`reading the pending queue: ${(e as Error).message}`);
        await sleep(Math.min(1000, this.o.leaseTtlMs / 4));
        continue;
      }
      if (rows.length === 0) {
        await this.queuedOrAfter(Math.max(this.o.batchIntervalMs, 50) * 10);
        // let a burst gather into one batch, as the single-process sequencer does
        if (!this.closed) await sleep(this.o.batchIntervalMs);
        continue;
      }
      const good: Submission[] = [];
      const goodIds: string[] = [];
      const bad: string[] = [];
      for (const r of rows) {
        try {
          good.push(parseSubmission(JSON.parse(r.submission)));
          goodIds.push(r.id);
        } catch (e) {
          bad.push(r.id);
          this.o.log?.(`dropping an unreadable queued submission (row ${r.id}): ${(e as Error).message}`);
        }
      }
      const ids = [...goodIds, ...bad];
      const result = await this.o.integrate(good, {
        beforeSign: () => {
          if (this.keeper.epoch !== epoch) fail('overloaded', `this front end no longer holds the sequencer lease of epoch ${epoch}; retry`);
        },
        inTransaction: async (tx, newTreeSize) => {
          await this.lease.fence(tx, epoch);
          await this.o.coordination.queue.settle(tx, ids, newTreeSize);
        },
      }).catch((e: unknown): IntegrateResult => ({ committed: false, failed: e }));
      if (result.failed !== undefined) {
        failures++;
        if (failures === 1 || failures % 50 === 0) {
          this.o.log?.(`a batch of ${rows.length} queued submissions was not committed (${failures} in a row): ${(result.failed as Error)?.message ?? result.failed}`);
        }
        await sleep(Math.min(1000, 50 * failures));
        continue;
      }
      failures = 0;
      if (!result.committed) {
        // Nothing new (every row was already logged, or conflicts): the rows are settled without a commit.
        try {
          await this.o.coordination.queue.remove(ids);
        } catch (e) {
          this.o.log?.(`removing settled queue rows: ${(e as Error).message}`);
        }
        this.check();
      }
    }
  }
}

export interface SharedLogDeps {
  databaseUrl: string;
  store: EntryLookup;
  sequencer: Sequencer;
  guard: SigningGuard;
  leaseTtlMs: number;
  commitWaitMs: number;
  batchIntervalMs: number;
  maxBatch: number;
  maxPending: number;
  /** After the safety checks, before sequencing: ask the witnesses what they cosigned (server/witness-check.ts). */
  checkWitnesses(): Promise<void>;
  /** This front end now sequences (publish and push to witnesses what the previous sequencer left). */
  sequencing?(): void;
  /** A committed tree this front end answers against (it became its high-water mark). */
  observed?(state: { treeSize: number }): void;
  /** After each follow-up of the committed tree (SharedSequencerOptions.followed). */
  followed?(): Promise<void>;
  log(msg: string): void;
}

/** A front end of a log in PostgreSQL (server/main.ts, `--database postgres://…`): connects, takes part in the lease. */
export async function openSharedSequencer(d: SharedLogDeps): Promise<SharedSequencer> {
  const coordination = await Coordination.connect(d.databaseUrl, d.log);
  const shared = new SharedSequencer({
    store: d.store, coordination,
    holder: `pkglog/${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`,
    leaseTtlMs: d.leaseTtlMs, commitWaitMs: d.commitWaitMs, batchIntervalMs: d.batchIntervalMs, maxBatch: d.maxBatch, maxPending: d.maxPending,
    integrate: (submissions, hooks) => d.sequencer.integrateNow(submissions, hooks),
    onAcquired: async () => {
      // The start-up safety checks, against the database as the previous sequencer left it, before signing anything.
      await d.guard.recheck();
      await d.checkWitnesses();
      d.sequencing?.();
    },
    observe: async (state) => {
      // A read that began before a commit raised the high-water mark (this process's own, or one it observed
      // meanwhile: follow-ups and replies run concurrently) is older than the mark without any rollback: read again.
      // Still behind the mark, the database did go back, and the guard stops.
      let s = state;
      if (s.treeSize < d.guard.highWaterMark.treeSize) s = (await d.store.treeState()) ?? s;
      await d.guard.observe(s);
      d.observed?.(s);
    },
    ...(d.followed ? { followed: d.followed } : {}),
    log: d.log,
    closeCoordination: true,
  });
  shared.start();
  return shared;
}
