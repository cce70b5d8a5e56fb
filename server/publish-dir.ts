/**
 * The directory target of static publication (`--publish-dir DIR`): the Publisher's rules are in server/publish.ts;
 * this only stores objects, durably and atomically, never replacing a tile.
 */
import { link, mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fail } from '../core/errors.ts';
import { MAX_CHECKPOINT_OBJECT, type ObjectKind, type PublishTarget } from './publish.ts';

const gzipAsync = promisify(gzip);
export const TMP_DIR = '.pkglog-tmp';

/**
 * A directory (`--publish-dir`): files written to `DIR/.pkglog-tmp/`, fsynced, linked (tiles: never replacing) or
 * renamed (the checkpoint) into place; entry bundles also as `<bundle>.gz` (for nginx `gzip_static`), written first.
 */
export class DirectoryTarget implements PublishTarget {
  readonly name: string;
  /** Directories holding files written since the last flush. */
  private touched = new Set<string>();

  /** `fsync`: fsync files and directories (default true; tests on tmpfs may turn it off). */
  constructor(readonly dir: string, private readonly opts: { fsync?: boolean } = {}) {
    this.name = dir;
  }

  where(path: string): string {
    return join(this.dir, path);
  }

  async open(): Promise<void> {
    await mkdir(join(this.dir, TMP_DIR), { recursive: true, mode: 0o755 });
    await rm(join(this.dir, TMP_DIR), { recursive: true, force: true }); // leftovers of a crash
    await mkdir(join(this.dir, TMP_DIR), { mode: 0o755 });
  }

  async readCheckpoint(): Promise<Buffer | undefined> {
    const file = join(this.dir, 'checkpoint');
    let fh;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      if ((await fh.stat()).size > MAX_CHECKPOINT_OBJECT) fail('unsafe_state', `${file} is larger than a checkpoint can be`);
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }

  async missing(path: string, kind: ObjectKind): Promise<boolean> {
    if (!(await exists(join(this.dir, path)))) return true;
    return kind === 'bundle' && !(await exists(join(this.dir, path + '.gz')));
  }

  async putOnce(path: string, data: Buffer, kind: ObjectKind): Promise<number> {
    let n = 0;
    // The .gz first: nginx gzip_static serves it when it exists, the plain file is what the checkpoint promises.
    if (kind === 'bundle' && !(await exists(join(this.dir, path + '.gz')))) {
      n += await this.writeOnce(path + '.gz', await gzipAsync(data, { level: 6 }));
    }
    if (!(await exists(join(this.dir, path)))) n += await this.writeOnce(path, data);
    return n;
  }

  async removePartials(path: string): Promise<number> {
    const partials = join(this.dir, path);
    if (!(await exists(partials))) return 0;
    await rm(partials, { recursive: true, force: true });
    return 1;
  }

  async flush(): Promise<void> {
    const dirs = this.touched;
    this.touched = new Set();
    if (this.opts.fsync === false) return;
    // Parents too: a new tile directory's own entry must be durable.
    const all = new Set<string>();
    for (const d of dirs) for (let x = d; x.length >= this.dir.length; x = dirname(x)) all.add(x);
    for (const d of all) await fsyncDir(d);
  }

  /**
   * Under the checkpoint lock (`.pkglog-tmp/checkpoint.lock`, created exclusively; one taken more than LOCK_STALE_MS
   * ago is a crashed holder's and is broken): re-reads the checkpoint, and renames the new one over it only if it is
   * still `expected`.
   */
  async putCheckpoint(data: Buffer, expected: Buffer | undefined): Promise<void> {
    const tmp = await this.writeTemp(data);
    const lock = join(this.dir, TMP_DIR, 'checkpoint.lock');
    try {
      await takeLock(lock);
      try {
        const now = await this.readCheckpoint();
        if (!(now === undefined ? expected === undefined : expected !== undefined && now.equals(expected))) {
          fail('conflict', `${join(this.dir, 'checkpoint')} was replaced by another process meanwhile`);
        }
        await rename(tmp, join(this.dir, 'checkpoint'));
        if (this.opts.fsync !== false) await fsyncDir(this.dir);
      } finally {
        await unlink(lock).catch(() => {});
      }
    } finally {
      await unlink(tmp).catch(() => {}); // still there unless renamed
    }
  }

  async close(): Promise<void> {}

  /** Writes `path` unless it exists: temp file, fsync, link into place (never replaces), unlink the temp file. */
  private async writeOnce(path: string, data: Buffer): Promise<number> {
    const dest = join(this.dir, path);
    const tmp = await this.writeTemp(data);
    await mkdir(dirname(dest), { recursive: true, mode: 0o755 });
    try {
      await link(tmp, dest);
      this.touched.add(dirname(dest));
      return 1;
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
      return 0;
    } finally {
      await unlink(tmp);
    }
  }

  private async writeTemp(data: Buffer): Promise<string> {
    const tmp = join(this.dir, TMP_DIR, randomBytes(8).toString('hex'));
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      if (this.opts.fsync !== false) await fh.sync();
    } finally {
      await fh.close();
    }
    return tmp;
  }
}

/** A lock file older than this is a crashed holder's: the lock is held only around one read and one rename. */
const LOCK_STALE_MS = 10_000;

/** Creates `path` exclusively, waiting (bounded) while another process holds it; breaks a stale one. */
async function takeLock(path: string): Promise<void> {
  const until = Date.now() + 2 * LOCK_STALE_MS;
  for (;;) {
    try {
      await (await open(path, 'wx', 0o644)).close();
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
    }
    const st = await stat(path).catch(() => undefined);
    if (st !== undefined && Date.now() - st.mtimeMs > LOCK_STALE_MS) {
      await unlink(path).catch(() => {});
      continue;
    }
    if (Date.now() > until) fail('conflict', `${path} is held by another process`);
    await new Promise((r) => setTimeout(r, 5));
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
