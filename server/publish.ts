/**
 * Static publication (`--publish-dir DIR`): the log writes the exact C2SP tlog-tiles layout into a directory —
 * `checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]` (and `tile/entries/….gz`, the same bundle gzipped,
 * for nginx `gzip_static`) — so that any static file server or CDN origin serves the whole read API.
 *
 * Rules (docs/storage.md, "Publication"):
 * - Only what is committed AND recorded as the high-water mark is published (the caller's `publishableSize`), tiles
 *   first, then the checkpoint, so the directory's checkpoint never names a tile that is not there.
 * - Every file is written to `DIR/.pkglog-tmp/`, fsynced, then moved into place: tiles by link() (a tile that exists is
 *   never replaced: full tiles are written once), the checkpoint by rename() over the old one. The directories
 *   touched are fsynced before the checkpoint is replaced.
 * - The checkpoint is never replaced by a smaller one, nor by a different checkpoint of the same size (the file in the
 *   directory is read and compared right before the rename); at the same size it is replaced only by the same
 *   checkpoint with more cosignatures.
 * - Partial tiles are written for every tree size the log signed a checkpoint for (tlog-tiles: "Logs MUST serve partial
 *   tiles corresponding to tree sizes for which a checkpoint was produced") as long as their full tile does not exist;
 *   once it does, the `<N>.p/` directory is removed (tlog-tiles: MAY delete).
 * - Publication runs off the commit path, one pass at a time: a pass publishes from the size already published to the
 *   newest publishable size, so passes coalesce under load. After a crash, the next start catches up from the size
 *   of the checkpoint in the directory (the record of what was published: nothing else is scanned) — idempotently,
 *   in the background after the log listens.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fail, PkglogError } from '../core/errors.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import { MAX_NOTE_SIZE, parseSignedNote, verifyNote, type Verifier } from '../core/note.ts';
import { formatEntryBundle, formatTilePath, TILE_WIDTH, type Tile } from '../core/tiles.ts';
import type { LogStore } from '../log-store/store.ts';

const gzipAsync = promisify(gzip);
export const TMP_DIR = '.pkglog-tmp';
/** Concurrent file writes in a pass. */
const WRITERS = 16;

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
  dir: string;
  store: LogStore;
  origin: string;
  verifier: Verifier;
  /** The newest size that may be published: committed and recorded as the high-water mark. */
  publishableSize: () => number;
  /** The checkpoint to publish (the one GET /checkpoint serves, with its cosignatures), of size ≤ publishableSize. */
  checkpoint: () => { treeSize: number; note: string };
  log?: (msg: string) => void;
  /** fsync files and directories (default true; tests on tmpfs may turn it off). */
  fsync?: boolean;
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

/** A published checkpoint file's size and body (the text before the signatures), or undefined if there is none. */
function readPublished(text: string | undefined, o: PublisherOptions, where: string): { treeSize: number; body: string; note: string } | undefined {
  if (text === undefined) return undefined;
  let cp;
  try {
    cp = parseCheckpoint(verifyNote(text, [o.verifier]).note.text);
  } catch (e) {
    return fail('unsafe_state', `${where} is not a checkpoint signed by this log's key (${(e as Error).message}): ` +
      'refusing to publish into a directory that belongs to another log (empty it, or choose another --publish-dir)');
  }
  if (cp.origin !== o.origin) fail('unsafe_state', `${where} is for origin ${cp.origin}, not ${o.origin}: refusing to publish into it`);
  return { treeSize: cp.treeSize, body: parseSignedNote(text).text, note: text };
}

export class Publisher {
  private readonly o: PublisherOptions;
  readonly dir: string;
  /** Size the tiles are published up to (in the directory, durable). */
  private tilesSize: number;
  /** The directory's checkpoint size. */
  private checkpointSize: number;
  private running: Promise<void> | undefined;
  private again = false;
  private started = false;
  private closed = false;
  /** Set when publishing would contradict the directory (never retried: an operator must look). */
  private halted: string | undefined;
  private retry: NodeJS.Timeout | undefined;
  private tick: NodeJS.Timeout | undefined;
  private readonly idleWaiters: Array<() => void> = [];
  readonly stats: PublishStats = { passes: 0, written: 0, skipped: 0, removed: 0, failures: 0 };

  /**
   * Opens the directory (creating it) and reads its checkpoint: it must be this log's, not larger than the tree, and
   * the log's own checkpoint of that size (else 'unsafe_state': the directory belongs to another history).
   */
  constructor(o: PublisherOptions) {
    this.o = o;
    this.dir = o.dir;
    mkdirSync(join(o.dir, TMP_DIR), { recursive: true, mode: 0o755 });
    rmSync(join(o.dir, TMP_DIR), { recursive: true, force: true }); // leftovers of a crash
    mkdirSync(join(o.dir, TMP_DIR), { mode: 0o755 });
    const file = join(o.dir, 'checkpoint');
    let text: string | undefined;
    try {
      const b = readFileSync(file);
      if (b.length > MAX_NOTE_SIZE + 64 * 1024) fail('unsafe_state', `${file} is larger than a checkpoint can be`);
      text = b.toString('utf8');
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    }
    const cur = readPublished(text, o, file);
    const size = cur?.treeSize ?? 0;
    if (cur !== undefined) {
      const tree = o.store.treeState()!.treeSize;
      if (size > tree) fail('unsafe_state', `${file} is at size ${size}, ahead of the database (size ${tree}): refusing to publish`);
      const ours = o.store.checkpoint(size);
      if (ours === undefined || parseSignedNote(ours).text !== cur.body) {
        fail('unsafe_state', `${file} (size ${size}) is not the checkpoint this log signed for that size: refusing to publish (see docs/storage.md)`);
      }
    }
    this.tilesSize = size;
    this.checkpointSize = size;
  }

  /** The size of the checkpoint in the directory. */
  get publishedSize(): number {
    return this.checkpointSize;
  }

  /** Starts publishing (the catch-up pass runs in the background). */
  start(): void {
    this.started = true;
    this.notify();
    // A high-water mark written late (the guard retries a failed write every second) is published without a new batch.
    this.tick = setInterval(() => {
      if (this.o.publishableSize() > this.tilesSize) this.notify();
    }, 1000);
    this.tick.unref();
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
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (e) {
        this.stats.failures++;
        this.o.log?.(`publish ${this.dir}: ${oneLine(e)} (published size stays ${this.checkpointSize}; retrying)`);
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
    const fault = this.o.fault;
    if (fault?.kind === 'hold' && this.checkpointSize >= fault.size) return;
    this.stats.passes++;
    const target = Math.min(this.o.publishableSize(), this.o.store.treeState()!.treeSize);
    const cp = this.o.checkpoint();
    const dirs = new Set<string>();
    if (target > this.tilesSize) {
      await this.writeTiles(this.tilesSize, target, dirs);
      this.tilesSize = target;
    }
    if (cp.treeSize > this.tilesSize) return; // its tiles are not published yet (a later pass will)
    if (fault?.kind === 'kill-before-checkpoint' && cp.treeSize >= fault.size) process.kill(process.pid, 'SIGKILL');
    await this.syncDirs(dirs);
    await this.writeCheckpoint(cp);
  }

  /**
   * Every tile and bundle of the tree of `to` that the tree of `from` did not have (see the file comment), written by
   * WRITERS concurrent jobs (their fsyncs overlap; nothing orders tiles among themselves, only the checkpoint is last).
   */
  private async writeTiles(from: number, to: number, dirs: Set<string>): Promise<void> {
    const jobs = this.tileJobs(from, to, dirs);
    const worker = async () => {
      for (let j = jobs.next(); !j.done; j = jobs.next()) await j.value();
    };
    const results = await Promise.allSettled(Array.from({ length: WRITERS }, worker));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /** The jobs of writeTiles, generated lazily (a catch-up over a big range holds no list of its tiles). */
  private *tileJobs(from: number, to: number, dirs: Set<string>): Generator<() => Promise<void>> {
    for (let level = 0; TILE_WIDTH ** level <= to; level++) {
      const span = TILE_WIDTH ** level;
      const cFrom = Math.floor(from / span);
      const cTo = Math.floor(to / span);
      const kinds = level === 0 ? [0, -1] : [level];
      for (let idx = Math.floor(cFrom / TILE_WIDTH); idx < Math.floor(cTo / TILE_WIDTH); idx++) {
        for (const l of kinds) {
          yield async () => {
            const tile = { level: l, index: idx, width: TILE_WIDTH };
            await this.writeTile(tile, dirs);
            const partials = join(this.dir, formatTilePath(tile) + '.p');
            if (await exists(partials)) {
              await rm(partials, { recursive: true, force: true });
              this.stats.removed++;
            }
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
        if (w < wTo && (lo >= hi || this.o.store.firstCheckpointSizeIn(lo, hi) === undefined)) continue;
        for (const l of kinds) yield () => this.writeTile({ level: l, index: pIdx, width: w }, dirs);
      }
    }
  }

  private async writeTile(tile: Tile, dirs: Set<string>): Promise<void> {
    const rel = formatTilePath(tile);
    if (tile.level >= 0) {
      if (await exists(join(this.dir, rel))) return void this.stats.skipped++;
      const data = this.o.store.readTile(tile);
      if (data === undefined) fail('internal', `the store has no tile ${rel}`);
      await this.writeOnce(rel, data, dirs);
      return;
    }
    const plain = await exists(join(this.dir, rel));
    const zipped = await exists(join(this.dir, rel + '.gz'));
    if (plain && zipped) return void (this.stats.skipped += 2);
    const start = tile.index * TILE_WIDTH;
    const leaves = this.o.store.entryLeaves(start, start + tile.width);
    if (leaves.length !== tile.width) fail('internal', `the store has ${leaves.length} of the ${tile.width} entries of ${rel}`);
    const data = formatEntryBundle(leaves);
    // The .gz first: nginx gzip_static serves it when it exists, the plain file is what the checkpoint promises.
    if (!zipped) await this.writeOnce(rel + '.gz', await gzipAsync(data, { level: 6 }), dirs);
    if (!plain) await this.writeOnce(rel, data, dirs);
  }

  /** Writes `rel` unless it exists: temp file, fsync, link into place (never replaces), unlink the temp file. */
  private async writeOnce(rel: string, data: Buffer, dirs: Set<string>): Promise<void> {
    const dest = join(this.dir, rel);
    const tmp = await this.writeTemp(data);
    await mkdir(dirname(dest), { recursive: true, mode: 0o755 });
    try {
      await link(tmp, dest);
      this.stats.written++;
      dirs.add(dirname(dest));
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
      this.stats.skipped++;
    } finally {
      await unlink(tmp);
    }
  }

  private async writeTemp(data: Buffer): Promise<string> {
    const tmp = join(this.dir, TMP_DIR, randomBytes(8).toString('hex'));
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      if (this.o.fsync !== false) await fh.sync();
    } finally {
      await fh.close();
    }
    return tmp;
  }

  private async syncDirs(dirs: Set<string>): Promise<void> {
    if (this.o.fsync === false) return;
    // Parents too: a new tile directory's own entry must be durable.
    const all = new Set<string>();
    for (const d of dirs) for (let x = d; x.length >= this.dir.length; x = dirname(x)) all.add(x);
    for (const d of all) await fsyncDir(d);
  }

  /**
   * Replaces DIR/checkpoint with `cp` unless the file already holds a bigger checkpoint, or a different checkpoint of
   * the same size (refused and logged: never overwritten), or exactly this note.
   */
  private async writeCheckpoint(cp: { treeSize: number; note: string }): Promise<void> {
    const file = join(this.dir, 'checkpoint');
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    }
    const cur = readPublished(text, this.o, file);
    if (cur !== undefined) {
      if (cur.treeSize > cp.treeSize) return;
      if (cur.treeSize === cp.treeSize) {
        if (cur.note === cp.note) return;
        if (cur.body !== parseSignedNote(cp.note).text) {
          fail('unsafe_state', `${file} holds a different checkpoint of size ${cp.treeSize} than the log's: not replaced`);
        }
        if (cp.note.length < cur.note.length) return; // fewer cosignatures than what is published
      }
    }
    const tmp = await this.writeTemp(Buffer.from(cp.note, 'utf8'));
    await rename(tmp, file);
    if (this.o.fsync !== false) await fsyncDir(this.dir);
    this.checkpointSize = cp.treeSize;
    this.stats.written++;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return false;
    throw e;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function oneLine(e: unknown): string {
  const err = e as { name?: unknown; code?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' ? ` ${err.code}` : '';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return `${typeof err?.name === 'string' ? err.name : 'Error'}${code}: ${message}`.replace(/[\r\n]+/g, ' ');
}
