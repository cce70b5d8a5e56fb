/**
 * The sequencer: verified submissions wait in a bounded pool and are integrated in batches (every batchIntervalMs, or
 * at once when maxBatch are waiting). A batch is ONE store transaction — entries, tiles, signed checkpoint — and only
 * after it commits are the waiting requests answered, so every answer's proof is valid and durable.
 */
import { fail, PkglogError } from '../core/errors.ts';
import { decodeLeaf, encodeLeaf, fileKey, sameSubmission, type Entry, type Submission } from '../core/entry.ts';
import { leafHash, sha256 } from '../core/hash.ts';
import { integrate } from '../core/integrate.ts';
import { formatCheckpoint } from '../core/checkpoint.ts';
import { signNote, type Signer } from '../core/note.ts';
import { decodeHex } from '../core/encoding.ts';
import type { LogStore, StoredEntry, TreeState } from '../log-store/store.ts';

export interface Sequenced {
  index: number;
  leaf: Buffer;
  leafHash: Buffer;
  entry: Entry;
  /** The tree (just committed) that includes the entry. */
  treeSize: number;
}

export interface SequencerOptions {
  store: LogStore;
  signer: Signer;
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
  log?: (msg: string) => void;
}

interface Pending {
  submission: Submission;
  resolve: (r: Sequenced) => void;
  reject: (e: unknown) => void;
}

export function fileHashOf(s: Submission): Buffer {
  return sha256(Buffer.from(fileKey(s), 'utf8'));
}

/** Signs the checkpoint of (treeSize, rootHash) with the log key. */
export function signCheckpoint(signer: Signer, origin: string, treeSize: number, rootHash: Buffer): string {
  return signNote(formatCheckpoint({ origin, treeSize, rootHash, extensions: [] }), [signer]);
}

export class Sequencer {
  private pool: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastTime = 0;
  private readonly o: SequencerOptions;

  constructor(options: SequencerOptions) {
    this.o = options;
  }

  get pending(): number {
    return this.pool.length;
  }

  /** Queues verified submissions; each promise settles after the batch holding it commits. */
  submit(submission: Submission): Promise<Sequenced> {
    if (this.closed) return Promise.reject(new PkglogError('overloaded', 'the log is shutting down'));
    if (this.pool.length >= this.o.maxPending) {
      return Promise.reject(new PkglogError('overloaded', 'too many submissions are waiting; retry shortly'));
    }
    return new Promise((resolve, reject) => {
      this.pool.push({ submission, resolve, reject });
      if (this.pool.length >= this.o.maxBatch) setImmediate(() => this.flush());
      else if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), this.o.batchIntervalMs);
    });
  }

  /** Integrates everything pending now (synchronously), in batches of at most maxBatch. */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.pool.length > 0) {
      const batch = this.pool.splice(0, this.o.maxBatch);
      this.integrateBatch(batch);
    }
  }

  async close(): Promise<void> {
    this.flush();
    this.closed = true;
  }

  private integrateBatch(batch: Pending[]): void {
    const { store } = this.o;
    let settle: Array<() => void> = [];
    try {
      const state = store.treeState();
      if (state === undefined) fail('internal', 'store is not initialized');
      const now = Math.max(this.o.now(), this.lastTime);
      const inBatch = new Map<string, { entry: Entry; index: number; leaf: Buffer; leafHash: Buffer }>();
      const fresh: StoredEntry[] = [];
      const waiting: Array<{ p: Pending; key: string } | { p: Pending; existing: { index: number; leaf: Buffer } }> = [];
      for (const p of batch) {
        const s = p.submission;
        const fh = fileHashOf(s);
        const key = fh.toString('latin1');
        const prior = inBatch.get(key);
        const stored = prior === undefined ? store.findByFile(fh) : undefined;
        const existing = prior ?? (stored && { index: stored.index, leaf: stored.leaf, entry: decodeLeaf(stored.leaf) });
        if (existing !== undefined) {
          if (!sameSubmission(existing.entry, s)) {
            settle.push(() =>
              p.reject(new PkglogError('conflict', `a different artifact is already logged for ${s.ecosystem}/${s.name}/${s.version}/${s.filename}`, { index: existing.index })),
            );
          } else {
            waiting.push({ p, existing });
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
      if (fresh.length > 0) {
        const readTile = (t: { level: number; index: number; width: number }) => {
          const data = store.readTile(t);
          if (data === undefined) fail('internal', `missing tile ${t.level}/${t.index}.p/${t.width}`);
          return data;
        };
        // The old root recomputed from the right-edge tiles this integration reads must be the stored root.
        const edgeRoot = integrate(state.treeSize, readTile, []).rootHash;
        if (this.o.guard) this.o.guard.beforeSign(state, edgeRoot);
        else if (!edgeRoot.equals(state.rootHash)) fail('unsafe_state', `the right-edge tiles of size ${state.treeSize} do not reproduce the stored root`);
        const r = integrate(state.treeSize, readTile, fresh.map((e) => e.leafHash));
        newState = { treeSize: r.treeSize, rootHash: r.rootHash, checkpoint: signCheckpoint(this.o.signer, this.o.origin, r.treeSize, r.rootHash) };
        store.append({ oldSize: state.treeSize, entries: fresh, tiles: r.tiles, newState, createdAt: now });
        this.lastTime = now;
        this.o.guard?.committed(newState);
      }
      const treeSize = newState.treeSize;
      for (const w of waiting) {
        if ('key' in w) {
          const e = inBatch.get(w.key)!;
          settle.push(() => w.p.resolve({ index: e.index, leaf: e.leaf, leafHash: e.leafHash, entry: e.entry, treeSize }));
        } else {
          const { index, leaf } = w.existing;
          settle.push(() => w.p.resolve({ index, leaf, leafHash: leafHash(leaf), entry: decodeLeaf(leaf), treeSize }));
        }
      }
      if (fresh.length > 0) this.o.onCheckpoint?.(newState);
    } catch (e) {
      // Nothing of this batch was committed: no request is acknowledged.
      const refused = e instanceof PkglogError && (e.code === 'overloaded' || e.code === 'unsafe_state');
      if (!refused) this.o.log?.(`batch of ${batch.length} failed: ${(e as Error)?.stack ?? String(e)}`);
      const err = refused ? e : new PkglogError('overloaded', 'the log could not commit this batch; retry');
      settle = batch.map((p) => () => p.reject(err));
    }
    for (const s of settle) s();
  }
}
