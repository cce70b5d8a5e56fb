/**
 * The sequencer: verified submissions wait in a bounded pool and are integrated in batches (every batchIntervalMs, or
 * at once when maxBatch are waiting). A batch is ONE store transaction — entries, tiles, signed checkpoint — and only
 * after it commits are the waiting requests answered, so every answer's proof is valid and durable.
 */
import { fail, PkglogError } from '../core/errors.ts';
import { errorLine } from '../runtime/logger.ts';
import { decodeLeaf, encodeLeaf, fileKey, sameSubmission, type Entry, type Submission } from '../core/entry.ts';
import { leafHash, sha256 } from '../core/hash.ts';
import { integrate, rightEdgeTiles } from '../core/integrate.ts';
import { formatCheckpoint } from '../core/checkpoint.ts';
import { signNote, type Signer } from '../core/note.ts';
import { decodeHex } from '../core/encoding.ts';
import type { AppendBatch, AppendHook, Store, StoredEntry, TreeState } from '../log-store/types.ts';
import { performance } from 'node:perf_hooks';

export interface Sequenced {
  index: number;
  leaf: Buffer;
  leafHash: Buffer;
  entry: Entry;
  /** The tree (just committed) that includes the entry. */
  treeSize: number;
  /** An identical submission was already logged (earlier, or earlier in this batch): this is that entry. */
  existing?: true;
}

export interface SequencerOptions {
  store: Store;
  /** The log's key, or its keys: Ed25519 first, then its ML-DSA-44 cosigner (each checkpoint carries every signature). */
  signer: Signer | readonly Signer[];
  origin: string;
  now: () => number;
  batchIntervalMs: number;
  maxBatch: number;
  maxPending: number;
  /**
   * Checks before each signature and records each commit (server/safety.ts): beforeSign throws to refuse signing;
   * committed makes the new checkpoint the durable high-water mark before anything of the batch is published.
   */
  guard?: {
    beforeSign(state: TreeState, edgeRoot: Buffer): void;
    committed(state: TreeState): void;
  };
  /** Called after each committed batch that grew the tree. */
  onCheckpoint?: (state: TreeState) => void;
  /**
   * Called after each batch is settled (metrics): `entries` requests, `fresh` of them new entries (0 when nothing was
   * committed), `failed` when the whole batch was refused, how long the integration and commit took, and how long each request waited from submit to answer
   * (all in ms, monotonic clock).
   */
  onBatch?: (b: { entries: number; fresh: number; failed: boolean; commitMs: number; waitedMs: number[] }) => void;
  log?: (msg: string) => void;
}

/** What the shared queue's sequencer adds to a batch (server/shared-sequencer.ts). */
export interface BatchHooks {
  /** Right before the checkpoint is signed: throws to refuse the batch (this front end no longer holds the lease). */
  beforeSign?: () => void;
  /** First inside the commit transaction, with the new tree size: the fence, and the queue rows' removal. */
  inTransaction?: (tx: Parameters<AppendHook>[0], newTreeSize: number) => Promise<void>;
}

interface Pending {
  submission: Submission;
  /** performance.now() when it was queued. */
  queuedAt: number;
  resolve: (r: Sequenced) => void;
  reject: (e: unknown) => void;
}

export function fileHashOf(s: Submission): Buffer {
  return sha256(Buffer.from(fileKey(s), 'utf8'));
}

/** Signs the checkpoint of (treeSize, rootHash) with the log key(s): Ed25519, and the ML-DSA-44 cosignature if given. */
export function signCheckpoint(signer: Signer | readonly Signer[], origin: string, treeSize: number, rootHash: Buffer): string {
  return signNote(formatCheckpoint({ origin, treeSize, rootHash, extensions: [] }), Array.isArray(signer) ? [...signer] : [signer as Signer]);
}

export class Sequencer {
  private pool: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastTime = 0;
  /** The batches being integrated (one at a time), while there are any. */
  private draining: Promise<void> | undefined;
  private readonly o: SequencerOptions;

  constructor(options: SequencerOptions) {
    this.o = options;
  }

  get pending(): number {
    return this.pool.length;
  }

  /** How long (ms) the oldest waiting submission has waited; 0 when none waits. */
  oldestPendingMs(): number {
    const first = this.pool[0];
    return first === undefined ? 0 : performance.now() - first.queuedAt;
  }

  /** False once closed (a closed sequencer refuses submissions). */
  get running(): boolean {
    return !this.closed;
  }

  /** Queues verified submissions; each promise settles after the batch holding it commits. */
  submit(submission: Submission): Promise<Sequenced> {
    if (this.closed) return Promise.reject(new PkglogError('overloaded', 'the log is shutting down'));
    if (this.pool.length >= this.o.maxPending) {
      return Promise.reject(new PkglogError('overloaded', 'too many submissions are waiting; retry shortly'));
    }
    return new Promise((resolve, reject) => {
      this.pool.push({ submission, queuedAt: performance.now(), resolve, reject });
      if (this.pool.length >= this.o.maxBatch) setImmediate(() => this.flushInBackground());
      else if (this.timer === undefined) this.timer = setTimeout(() => this.flushInBackground(), this.o.batchIntervalMs);
    });
  }

  /**
   * Integrates everything pending now, in batches of at most maxBatch, one batch at a time (a batch that arrives while
   * one is being integrated waits for it). Resolves when the pool is empty.
   */
  flush(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.draining !== undefined) return this.draining;
    const drain = async () => {
      await null; // never settles synchronously: `draining` is set before the finally below clears it
      try {
        while (this.pool.length > 0) await this.integrateBatch(this.pool.splice(0, this.o.maxBatch));
      } finally {
        this.draining = undefined;
      }
    };
    this.draining = drain();
    return this.draining;
  }

  private flushInBackground(): void {
    this.flush().catch((e) => this.o.log?.(`the sequencer failed: ${errorLine(e)}`));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  /**
   * Integrates `submissions` as ONE batch now, outside the pool (the shared queue's sequencer, server/shared-sequencer.ts,
   * answers its requests through the database). `hooks.beforeSign` runs right before the checkpoint is signed and may
   * throw to refuse the batch; `hooks.inTransaction` runs first inside the commit transaction (the fence).
   */
  async integrateNow(submissions: Submission[], hooks: BatchHooks): Promise<{ committed: boolean; failed?: unknown }> {
    const queuedAt = performance.now();
    const batch: Pending[] = submissions.map((submission) => ({ submission, queuedAt, resolve: () => {}, reject: () => {} }));
    // A shared log never uses the pool (submit()), so this is the only batch in flight.
    return this.integrateBatch(batch, hooks);
  }

  /**
   * Integrates one batch. Never throws: every request of the batch is settled exactly once. Before the store
   * transaction commits, any failure rejects the whole batch (nothing of it is logged; the tree and this object are
   * unchanged, so the next batch integrates from the stored state). Committed means stored AND recorded as the
   * high-water mark (the guard's `committed`; if that fails the batch is refused, and a retry returns the same
   * entries). Once committed, every request is answered as committed, whatever a later step (onCheckpoint, the
   * witness notification) does.
   */
  private async integrateBatch(batch: Pending[], hooks: BatchHooks = {}): Promise<{ committed: boolean; failed?: unknown }> {
    const { store } = this.o;
    const startedAt = performance.now();
    let freshCount = 0;
    let failed = false;
    let settle: Array<() => void> = [];
    let committedState: TreeState | undefined;
    let committed: TreeState | undefined;
    let failure: unknown;
    try {
      const state = await store.treeState();
      if (state === undefined) fail('internal', 'store is not initialized');
      const fileHashes = batch.map((p) => fileHashOf(p.submission));
      const known = await store.findByFiles(fileHashes);
      const now = Math.max(this.o.now(), this.lastTime);
      const inBatch = new Map<string, { entry: Entry; index: number; leaf: Buffer; leafHash: Buffer }>();
      const fresh: StoredEntry[] = [];
      const waiting: Array<{ p: Pending; key: string } | { p: Pending; existing: Sequenced }> = [];
      for (const [i, p] of batch.entries()) {
        const s = p.submission;
        const fh = fileHashes[i]!;
        const key = fh.toString('latin1');
        const prior = inBatch.get(key);
        const found = prior === undefined ? known[i] : undefined;
        const existing = prior ?? (found && { index: found.index, leaf: found.leaf, leafHash: leafHash(found.leaf), entry: decodeLeaf(found.leaf) });
        if (existing !== undefined) {
          if (!sameSubmission(existing.entry, s)) {
            settle.push(() =>
              p.reject(new PkglogError('conflict', `a different artifact is already logged for ${s.ecosystem}/${s.name}/${s.version}/${s.filename}`, { index: existing.index })),
            );
          } else {
            waiting.push({ p, existing: { ...existing, treeSize: 0, existing: true } });
          }
          continue;
        }
        const entry: Entry = { ...s, integratedTime: now };
        const leaf = encodeLeaf(entry);
        const index = state.treeSize + fresh.length;
        const lh = leafHash(leaf);
        inBatch.set(key, { entry, index, leaf, leafHash: lh });
        fresh.push({
          index, leaf, leafHash: lh, fileHash: fh, ecosystem: s.ecosystem, name: s.name, version: s.version,
          sha256: decodeHex(s.sha256, 'sha256', 32), integratedTime: now,
        });
        waiting.push({ p, key });
      }
      let newState = state;
      let append: AppendBatch | undefined;
      if (fresh.length > 0) {
        // The right-edge tiles are all integration reads: fetched in one round trip, then integrated synchronously.
        const edge = rightEdgeTiles(state.treeSize);
        const edgeData = await store.readTiles(edge);
        const readTile = (t: { level: number; index: number; width: number }) => {
          const i = edge.findIndex((e) => e.level === t.level && e.index === t.index && e.width === t.width);
          const data = i < 0 ? undefined : edgeData[i];
          if (data === undefined) fail('internal', `missing tile ${t.level}/${t.index}.p/${t.width}`);
          return data;
        };
        // The old root recomputed from the right-edge tiles this integration reads must be the stored root.
        const edgeRoot = integrate(state.treeSize, readTile, []).rootHash;
        if (this.o.guard) this.o.guard.beforeSign(state, edgeRoot);
        else if (!edgeRoot.equals(state.rootHash)) fail('unsafe_state', `the right-edge tiles of size ${state.treeSize} do not reproduce the stored root`);
        const r = integrate(state.treeSize, readTile, fresh.map((e) => e.leafHash));
        hooks.beforeSign?.();
        newState = { treeSize: r.treeSize, rootHash: r.rootHash, checkpoint: signCheckpoint(this.o.signer, this.o.origin, r.treeSize, r.rootHash) };
        append = { oldSize: state.treeSize, entries: fresh, tiles: r.tiles, newState, createdAt: now };
      }
      // Every answer is computed before the commit, so nothing after it can fail.
      const treeSize = newState.treeSize;
      for (const w of waiting) {
        const r: Sequenced = 'key' in w ? { ...inBatch.get(w.key)!, treeSize } : { ...w.existing, treeSize };
        settle.push(() => w.p.resolve(r));
      }
      if (append !== undefined) {
        freshCount = fresh.length;
        await this.commit(append, hooks.inTransaction && ((tx) => hooks.inTransaction!(tx, append!.newState.treeSize)));
        committedState = newState;
        this.lastTime = now;
        // The high-water mark (server/safety.ts) is durable before anything of the batch is answered or published.
        this.o.guard?.committed(newState);
        committed = newState;
      }
    } catch (e) {
      failed = true;
      failure = e;
      // Safety refusals are logged once by the guard; anything else is one line per batch here.
      const refused = e instanceof PkglogError && (e.code === 'overloaded' || e.code === 'unsafe_state');
      let err: PkglogError;
      if (committedState !== undefined) {
        const stored = committedState;
        // Stored, but its high-water mark is not durable: not acknowledged; a retry returns the same entries (and the
        // guard writes the mark before it signs anything newer).
        this.o.log?.(`size ${stored.treeSize} is stored but not acknowledged (its high-water mark was not written): ${errorLine(e)}`);
        err = refused ? e : isDiskFull(e)
          ? new PkglogError('overloaded', "the log's disk is full: this submission was not acknowledged; retry later")
          : new PkglogError('overloaded', 'the log could not record this batch as published; retry');
      } else {
        // Nothing of this batch was committed: no request is acknowledged, and nothing here or in the store moved.
        if (!refused) this.o.log?.(`batch of ${batch.length} refused (nothing of it was logged): ${isDiskFull(e) ? 'disk full: ' : ''}${errorLine(e)}`);
        err = refused ? e : refusal(e);
      }
      settle = batch.map((p) => () => p.reject(err));
    }
    for (const s of settle) s();
    if (this.o.onBatch !== undefined) {
      const done = performance.now();
      try {
        this.o.onBatch({
          entries: batch.length, fresh: committed !== undefined ? freshCount : 0, failed,
          commitMs: done - startedAt, waitedMs: batch.map((p) => done - p.queuedAt),
        });
      } catch {
        // metrics must never affect a batch
      }
    }
    if (committed !== undefined && this.o.onCheckpoint !== undefined) {
      try {
        this.o.onCheckpoint(committed);
      } catch (e) {
        // The batch is committed and answered; a failing notification must not undo that (the next one catches up).
        this.o.log?.(`after committing size ${committed.treeSize}: the checkpoint callback failed: ${errorLine(e)}`);
      }
    }
    return failed ? { committed: committedState !== undefined, failed: failure } : { committed: committed !== undefined };
  }

  /**
   * Appends the batch in one store transaction. If append throws, the store is asked what happened: a transaction that
   * did commit (an error raised after COMMIT) counts as committed; otherwise the error propagates (nothing was written).
   */
  private async commit(batch: AppendBatch, inTransaction?: AppendHook): Promise<void> {
    try {
      await this.o.store.append(batch, inTransaction);
    } catch (e) {
      let now: TreeState | undefined;
      try {
        now = await this.o.store.treeState();
      } catch {
        throw e;
      }
      const { newState } = batch;
      if (now !== undefined && now.treeSize === newState.treeSize && now.rootHash.equals(newState.rootHash)) {
        this.o.log?.(`size ${newState.treeSize} is committed although the store reported: ${errorLine(e)}`);
        return;
      }
      throw e;
    }
  }
}

/** Errors that mean the disk (or the volume's quota) is full (PostgreSQL: SQLSTATE 53100 disk_full). */
export function isDiskFull(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT' || code === '53100';
}

/** The error every request of a batch that could not be committed gets (503: nothing was logged, retry). */
function refusal(e: unknown): PkglogError {
  if (isDiskFull(e)) {
    return new PkglogError('overloaded', "the log's disk is full: this submission was not logged; retry later");
  }
  if (e instanceof PkglogError) return new PkglogError('overloaded', `the log could not commit this batch: ${e.message}; retry`);
  return new PkglogError('overloaded', 'the log could not commit this batch; retry');
}
