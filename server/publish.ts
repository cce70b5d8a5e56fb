/**
 * Static publication (`--publish-dir DIR`, `--publish-s3 s3://BUCKET/PREFIX`): the log writes the exact C2SP
 * tlog-tiles layout — `checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]` — into a target, so that any
 * static file server, CDN origin or object store serves the whole read API. One Publisher holds the rules; a
 * PublishTarget only stores objects: DirectoryTarget (server/publish-dir.ts: also `tile/entries/….gz`, the same bundle gzipped, for
 * nginx `gzip_static`) and S3Target (server/publish-s3.ts).
 *
 * Rules (docs/storage.md, "Publication"):
 * - Only what is committed AND recorded as the high-water mark is published (the caller's `publishableSize`), tiles
 *   first, then the checkpoint, so the target's checkpoint never names a tile that is not there.
 * - A tile or bundle that exists is never replaced (full tiles are written once). In a directory every file is written
 *   to `DIR/.pkglog-tmp/`, fsynced, then moved into place: tiles by link(), the checkpoint by rename() over the old
 *   one, the directories touched fsynced before the checkpoint is replaced. In a bucket a PUT is atomic and durable
 *   when it returns; a tile is PUT only if HEAD says it is absent, with `If-None-Match: *`.
 * - The checkpoint is never replaced by a smaller one, nor by a different checkpoint of the same size (the published
 *   one is read and compared right before it is replaced, and the replacement is conditional on it being unchanged:
 *   a lock file in a directory, If-Match in a bucket); at the same size it is replaced only by the same checkpoint
 *   with more cosignatures.
 * - Several front ends on one database with the same target: only the one holding the sequencer lease publishes
 *   (`active`); the conditional replacement keeps a former holder still finishing a pass from moving it back.
 * - Partial tiles are written for every tree size the log signed a checkpoint for (tlog-tiles: "Logs MUST serve partial
 *   tiles corresponding to tree sizes for which a checkpoint was produced") as long as their full tile does not exist;
 *   once it does, the `<N>.p/` partials are removed (tlog-tiles: MAY delete).
 * - Publication runs off the commit path, one pass at a time: a pass publishes from the size already published to the
 *   newest publishable size, so passes coalesce under load. After a crash, the next start catches up from the size
 *   of the target's checkpoint (the record of what was published: nothing else is scanned) — idempotently, in the
 *   background after the log listens.
 */
import { fail, PkglogError } from '../core/errors.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import { MAX_NOTE_SIZE, parseSignedNote, verifyNote, type Verifier } from '../core/note.ts';
import { formatEntryBundle, formatTilePath, TILE_WIDTH, type Tile } from '../core/tiles.ts';
import { errorLine } from '../runtime/logger.ts';

/** Concurrent object writes in a pass. */
const WRITERS = 16;
/** The largest checkpoint object read back (a note with many cosignatures). */
export const MAX_CHECKPOINT_OBJECT = MAX_NOTE_SIZE + 64 * 1024;

/** tlog-tiles caching: tiles and bundles (full and partial) never change; the checkpoint is fresh within seconds. */
export const CACHE_IMMUTABLE = 'public, max-age=31536000, immutable';
export const CACHE_CHECKPOINT = 'no-cache, max-age=1';
export const CONTENT_TYPE_CHECKPOINT = 'text/plain; charset=utf-8';
export const CONTENT_TYPE_TILE = 'application/octet-stream';

type MaybePromise<T> = T | Promise<T>;

/** What the publisher reads from the log's store (sync or async: each result is awaited). */
export interface PublishSource {
  treeState(): MaybePromise<{ treeSize: number } | undefined>;
  checkpoint(treeSize: number): MaybePromise<string | undefined>;
  readTile(tile: Tile): MaybePromise<Buffer | undefined>;
  entryLeaves(start: number, end: number): MaybePromise<Buffer[]>;
  firstCheckpointSizeIn(lo: number, hi: number): MaybePromise<number | undefined>;
}

/** A hash tile, or an entry bundle (`tile/entries/…`). */
export type ObjectKind = 'tile' | 'bundle';

/**
 * Where the layout is stored. Paths are the tlog-tiles paths relative to the log's URL (`checkpoint`, `tile/0/000`).
 * A target never replaces a tile it holds; the Publisher decides everything else.
 */
export interface PublishTarget {
  /** For messages: the directory, or s3://bucket/prefix. */
  readonly name: string;
  /** Where `path` is, for messages. */
  where(path: string): string;
  /** Prepares the target (creates the directory, removes a crash's leftovers; connects). */
  open(): Promise<void>;
  /** The published checkpoint's bytes (at most MAX_CHECKPOINT_OBJECT, else 'unsafe_state'), undefined if none. */
  readCheckpoint(): Promise<Buffer | undefined>;
  /** Whether the object (for a bundle: every object of it) is still to be written. */
  missing(path: string, kind: ObjectKind): Promise<boolean>;
  /** Stores the object unless it exists (never replaces); resolves to the number of objects written. */
  putOnce(path: string, data: Buffer, kind: ObjectKind): Promise<number>;
  /** Removes the partial tiles under `<path>` (a `…/<N>.p` prefix); resolves to the number removed. */
  removePartials(path: string): Promise<number>;
  /** Makes every object written so far durable (before the checkpoint names them). */
  flush(): Promise<void>;
  /**
   * Replaces the checkpoint, atomically and durably — only if the target still holds `expected` (undefined: no
   * checkpoint), else rejects with 'conflict' (another process replaced it meanwhile; nothing was written).
   */
  putCheckpoint(data: Buffer, expected: Buffer | undefined): Promise<void>;
  close(): Promise<void>;
}

/** Test hooks (env PKGLOG_TEST_PUBLISH_FAULT): hold publication at a size, or SIGKILL the process mid-publication. */
export type PublishFault =
  | { kind: 'hold'; size: number }
  | { kind: 'kill-before-checkpoint'; size: number };

export function publishFaultFromEnv(env: NodeJS.ProcessEnv = process.env): PublishFault | undefined {
  const v = env.PKGLOG_TEST_PUBLISH_FAULT;
  if (v === undefined || v === '') return undefined;
  const m = /^(hold|kill-before-checkpoint):(0|[1-9][0-9]{0,15})$/.exec(v);
  if (m === null) fail('malformed', `PKGLOG_TEST_PUBLISH_FAULT=${JSON.stringify(v)}: want hold:<size> or kill-before-checkpoint:<size>`);
  return { kind: m[1] as PublishFault['kind'], size: Number(m[2]) };
}

export interface PublisherOptions {
  target: PublishTarget;
  store: PublishSource;
  origin: string;
  verifier: Verifier;
  /** The newest size that may be published: committed and recorded as the high-water mark. */
  publishableSize: () => number;
  /** The checkpoint to publish (the one GET /checkpoint serves, with its cosignatures), of size ≤ publishableSize. */
  checkpoint: () => MaybePromise<{ treeSize: number; note: string }>;
  log?: (msg: string) => void;
  /**
   * Publishes only while this says so (several front ends on one database: the one holding the sequencer lease); a
   * publisher that is not active does no I/O on the target, and reads the target afresh when it becomes active.
   */
  active?: () => boolean;
  fault?: PublishFault;
  /** After a failed pass, retry after this long (default 1000 ms). */
  retryMs?: number;
}

export interface PublishStats {
  passes: number;
  written: number;
  skipped: number;
  removed: number;
  failures: number;
}

/** A published checkpoint's size and body (the text before the signatures), or undefined if there is none. */
function readPublished(data: Buffer | undefined, o: PublisherOptions, where: string): { treeSize: number; body: string; note: string } | undefined {
  if (data === undefined) return undefined;
  const text = data.toString('utf8');
  let cp;
  try {
    cp = parseCheckpoint(verifyNote(text, [o.verifier]).note.text);
  } catch (e) {
    return fail('unsafe_state', `${where} is not a checkpoint signed by this log's key (${(e as Error).message}): ` +
      `refusing to publish into ${o.target.name}, which belongs to another log (empty it, or choose another target)`);
  }
  if (cp.origin !== o.origin) fail('unsafe_state', `${where} is for origin ${cp.origin}, not ${o.origin}: refusing to publish into it`);
  return { treeSize: cp.treeSize, body: parseSignedNote(text).text, note: text };
}

export class Publisher {
  private readonly o: PublisherOptions;
  readonly target: PublishTarget;
  /** Size the tiles are published up to (in the target, durable). */
  private tilesSize = 0;
  /** The target's checkpoint size. */
  private checkpointSize = 0;
  private opened = false;
  private running: Promise<void> | undefined;
  private again = false;
  private started = false;
  private closed = false;
  /** Set when publishing would contradict the target (never retried: an operator must look). */
  private halted: string | undefined;
  private retry: NodeJS.Timeout | undefined;
  private tick: NodeJS.Timeout | undefined;
  private readonly idleWaiters: Array<() => void> = [];
  readonly stats: PublishStats = { passes: 0, written: 0, skipped: 0, removed: 0, failures: 0 };

  /** Does no I/O: start() opens the target and checks it. */
  constructor(o: PublisherOptions) {
    this.o = o;
    this.target = o.target;
  }

  /** The size of the checkpoint in the target. */
  get publishedSize(): number {
    return this.checkpointSize;
  }

  /**
   * Opens the target and reads its checkpoint: it must be this log's, not larger than the tree, and the log's own
   * checkpoint of that size (else 'unsafe_state': the target belongs to another history).
   */
  private async open(): Promise<void> {
    const o = this.o;
    await o.target.open();
    const where = o.target.where('checkpoint');
    const cur = readPublished(await o.target.readCheckpoint(), o, where);
    const size = cur?.treeSize ?? 0;
    if (cur !== undefined) {
      const tree = (await o.store.treeState())!.treeSize;
      if (size > tree) fail('unsafe_state', `${where} is at size ${size}, ahead of the database (size ${tree}): refusing to publish`);
      const ours = await o.store.checkpoint(size);
      if (ours === undefined || parseSignedNote(ours).text !== cur.body) {
        fail('unsafe_state', `${where} (size ${size}) is not the checkpoint this log signed for that size: refusing to publish (see docs/storage.md)`);
      }
    }
    this.tilesSize = size;
    this.checkpointSize = size;
    this.opened = true;
  }

  /**
   * Opens and checks the target (rejects with 'unsafe_state' when it belongs to another log or history; any other
   * failure, e.g. an unreachable bucket, is logged and retried), then publishes: the catch-up pass runs in the
   * background.
   */
  async start(): Promise<void> {
    try {
      if (this.isActive()) await this.open();
    } catch (e) {
      if (e instanceof PkglogError && e.code === 'unsafe_state') throw e;
      this.o.log?.(`publish ${this.target.name}: ${errorLine(e)} (retrying)`);
    }
    this.started = true;
    this.notify();
    // A high-water mark written late (the guard retries a failed write every second) is published without a new batch.
    this.tick = setInterval(() => {
      if (!this.isActive()) this.opened = false; // what it knew of the target may be stale when it is active again
      else if (!this.opened || this.o.publishableSize() > this.tilesSize) this.notify();
    }, 1000);
    this.tick.unref();
  }

  private isActive(): boolean {
    return this.o.active === undefined || this.o.active();
  }

  /** Something new may be publishable (a commit, new cosignatures): schedules a pass. Never throws. */
  notify(): void {
    if (!this.started || this.closed) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
      if (this.again && !this.closed) return this.notify();
      for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  /** Resolves when no pass is running or pending (tests). */
  idle(): Promise<void> {
    if (this.running === undefined) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Lets the running pass finish; publishes nothing after. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retry !== undefined) clearTimeout(this.retry);
    if (this.tick !== undefined) clearInterval(this.tick);
    await this.running;
    for (const w of this.idleWaiters.splice(0)) w();
    await this.target.close();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (e) {
        this.stats.failures++;
        this.o.log?.(`publish ${this.target.name}: ${errorLine(e)} (published size stays ${this.checkpointSize}; retrying)`);
        if (e instanceof PkglogError && e.code === 'unsafe_state') {
          this.halted = e.message; // never retried: an operator must look
          return;
        }
        if (!this.closed && this.retry === undefined) {
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.notify();
          }, this.o.retryMs ?? 1000);
          this.retry.unref();
        }
        return;
      }
    } while (this.again && !this.closed);
  }

  /** One publication pass: tiles from the published size to the publishable one, then the checkpoint. */
  private async pass(): Promise<void> {
    if (this.halted !== undefined) return;
    if (!this.isActive()) {
      this.opened = false;
      return;
    }
    if (!this.opened) await this.open();
    const fault = this.o.fault;
    if (fault?.kind === 'hold' && this.checkpointSize >= fault.size) return;
    this.stats.passes++;
    const target = Math.min(this.o.publishableSize(), (await this.o.store.treeState())!.treeSize);
    const cp = await this.o.checkpoint();
    if (target > this.tilesSize) {
      await this.writeTiles(this.tilesSize, target);
      this.tilesSize = target;
    }
    if (cp.treeSize > this.tilesSize) return; // its tiles are not published yet (a later pass will)
    if (fault?.kind === 'kill-before-checkpoint' && cp.treeSize >= fault.size) process.kill(process.pid, 'SIGKILL');
    await this.o.target.flush();
    await this.writeCheckpoint(cp);
  }

  /**
   * Every tile and bundle of the tree of `to` that the tree of `from` did not have (see the file comment), written by
   * WRITERS concurrent jobs (their writes overlap; nothing orders tiles among themselves, only the checkpoint is last).
   */
  private async writeTiles(from: number, to: number): Promise<void> {
    const jobs = this.tileJobs(from, to);
    const worker = async () => {
      for (let j = jobs.next(); !j.done; j = jobs.next()) await j.value();
    };
    const results = await Promise.allSettled(Array.from({ length: WRITERS }, worker));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /** The jobs of writeTiles, generated lazily (a catch-up over a big range holds no list of its tiles). */
  private *tileJobs(from: number, to: number): Generator<() => Promise<void>> {
    for (let level = 0; TILE_WIDTH ** level <= to; level++) {
      const span = TILE_WIDTH ** level;
      const cFrom = Math.floor(from / span);
      const cTo = Math.floor(to / span);
      const kinds = level === 0 ? [0, -1] : [level];
      for (let idx = Math.floor(cFrom / TILE_WIDTH); idx < Math.floor(cTo / TILE_WIDTH); idx++) {
        for (const l of kinds) {
          yield async () => {
            const tile = { level: l, index: idx, width: TILE_WIDTH };
            await this.writeTile(tile);
            this.stats.removed += await this.o.target.removePartials(formatTilePath(tile) + '.p');
          };
        }
      }
      const wTo = cTo % TILE_WIDTH;
      if (wTo === 0) continue;
      const pIdx = Math.floor(cTo / TILE_WIDTH);
      const tileStart = pIdx * TILE_WIDTH * span; // first leaf of the partial tile
      const wLo = Math.floor(cFrom / TILE_WIDTH) === pIdx ? (cFrom % TILE_WIDTH) + 1 : 1;
      for (let w = wLo; w <= wTo; w++) {
        // Was a checkpoint signed for a size in (from, to] at which this tile was w wide?
        const lo = Math.max(from + 1, tileStart + w * span);
        const hi = Math.min(to + 1, tileStart + (w + 1) * span);
        if (w < wTo && lo >= hi) continue;
        yield async () => {
          if (w < wTo && (await this.o.store.firstCheckpointSizeIn(lo, hi)) === undefined) return;
          for (const l of kinds) await this.writeTile({ level: l, index: pIdx, width: w });
        };
      }
    }
  }

  private async writeTile(tile: Tile): Promise<void> {
    const path = formatTilePath(tile);
    const kind: ObjectKind = tile.level >= 0 ? 'tile' : 'bundle';
    if (!(await this.o.target.missing(path, kind))) return void this.stats.skipped++;
    let data: Buffer;
    if (kind === 'tile') {
      const t = await this.o.store.readTile(tile);
      if (t === undefined) fail('internal', `the store has no tile ${path}`);
      data = t;
    } else {
      const start = tile.index * TILE_WIDTH;
      const leaves = await this.o.store.entryLeaves(start, start + tile.width);
      if (leaves.length !== tile.width) fail('internal', `the store has ${leaves.length} of the ${tile.width} entries of ${path}`);
      data = formatEntryBundle(leaves);
    }
    const n = await this.o.target.putOnce(path, data, kind);
    this.stats.written += n;
    if (n === 0) this.stats.skipped++;
  }

  /**
   * Replaces the target's checkpoint with `cp` unless it already holds a bigger checkpoint, or a different checkpoint
   * of the same size (refused and logged: never overwritten), or exactly this note. The replacement is conditional on
   * the target still holding what was read (PublishTarget.putCheckpoint): when another process replaced it meanwhile,
   * it is read and compared again (bounded), so concurrent publishers never move the checkpoint back.
   */
  private async writeCheckpoint(cp: { treeSize: number; note: string }): Promise<void> {
    const where = this.o.target.where('checkpoint');
    for (let attempt = 1; ; attempt++) {
      const bytes = await this.o.target.readCheckpoint();
      const cur = readPublished(bytes, this.o, where);
      if (cur !== undefined) {
        if (cur.treeSize > cp.treeSize) return;
        if (cur.treeSize === cp.treeSize) {
          if (cur.note === cp.note) {
            this.checkpointSize = cp.treeSize;
            return;
          }
          if (cur.body !== parseSignedNote(cp.note).text) {
            fail('unsafe_state', `${where} holds a different checkpoint of size ${cp.treeSize} than the log's: not replaced`);
          }
          if (cp.note.length < cur.note.length) return; // fewer cosignatures than what is published
        }
      }
      if (!this.isActive()) return; // e.g. the sequencer lease was lost during the pass
      try {
        await this.o.target.putCheckpoint(Buffer.from(cp.note, 'utf8'), bytes);
      } catch (e) {
        if (e instanceof PkglogError && e.code === 'conflict' && attempt < 3) continue;
        throw e;
      }
      this.checkpointSize = cp.treeSize;
      this.stats.written++;
      return;
    }
  }
}
