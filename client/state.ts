/**
 * The client's persistent state: per log (keyed by the SHA-256 of its origin), the newest checkpoint it verified
 * (never moved backwards), the monitor's position and index, and fork evidence it found.
 *
 * Location: an explicit directory, else $PKGLOG_STATE_DIR, else $XDG_STATE_HOME/pkglog, else ~/.local/state/pkglog.
 * Writes are atomic and durable (temporary file, fsync, rename, fsync of the directory); the saved checkpoint
 * advances by compare-and-swap under a lock file, so concurrent `pkglog verify` runs never move it backwards.
 */
import { mkdirSync, readFileSync, writeFileSync, renameSync, openSync, fsyncSync, closeSync, existsSync, unlinkSync, fstatSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { homedir, hostname } from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import { fail } from '../core/errors.ts';
import { parseSignedNote } from '../core/note.ts';
import { originHash } from '../core/hash.ts';
import { parseCheckpoint, type Checkpoint } from '../core/checkpoint.ts';

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PKGLOG_STATE_DIR) return env.PKGLOG_STATE_DIR;
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'pkglog');
  return join(homedir(), '.local', 'state', 'pkglog');
}

function fsyncPath(path: string, flags: string): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Atomically and durably replaces `path` with `data` (mode 0600): write a uniquely named temporary file, fsync it,
 * rename it over `path`, fsync the directory (so the rename itself survives a crash).
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
    fsyncPath(tmp, 'r');
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed or never created
    }
    throw e;
  }
  fsyncPath(dirname(path), 'r');
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A lock older than this is stale even if its process seems alive (the pid may have been reused). */
const LOCK_STALE_MS = 60_000;
const LOCK_WAIT_MS = 30_000;

interface LockInfo {
  ino: number;
  pid: number;
  host: string;
  timeMs: number;
}

function readLock(path: string): LockInfo | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined; // released meanwhile
  }
  try {
    const st = fstatSync(fd);
    const [pid, host, time] = readFileSync(fd, 'utf8').trim().split(' ');
    // A lock file still being written has no content yet: judge it by its age only.
    if (!Number.isFinite(Number(time))) return { ino: st.ino, pid: -1, host: '', timeMs: st.mtimeMs };
    return { ino: st.ino, pid: Number(pid), host: host ?? '', timeMs: Number(time) };
  } finally {
    closeSync(fd);
  }
}

function isStale(l: LockInfo, nowMs: number): boolean {
  if (nowMs - l.timeMs > LOCK_STALE_MS) return true;
  if (l.host !== hostname() || !Number.isSafeInteger(l.pid) || l.pid <= 0) return false;
  try {
    process.kill(l.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Runs `fn` holding an exclusive lock on `lockPath`: a file created with O_EXCL holding "pid host time".
 * A lock whose process is gone (same host) or older than a minute is stale. Breaking it is itself serialised by a
 * second O_EXCL file (`.break`), under which the breaker re-checks that the lock is still the very file (inode and
 * content) it judged stale, so a live lock taken meanwhile is never removed. Waits up to 30 s, then 'overloaded'.
 */
export function withFileLock<T>(lockPath: string, fn: () => T, now: () => number = Date.now): T {
  const deadline = now() + LOCK_WAIT_MS;
  let delay = 1;
  for (;;) {
    let fd: number | undefined;
    try {
      fd = openSync(lockPath, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (fd !== undefined) {
      try {
        writeFileSync(fd, `${process.pid} ${hostname()} ${now()}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      try {
        return fn();
      } finally {
        unlinkSync(lockPath);
      }
    }
    const held = readLock(lockPath);
    if (held !== undefined && isStale(held, now())) breakStaleLock(lockPath, held, now);
    else {
      if (now() > deadline) {
        fail('overloaded', `the state lock ${lockPath} is held by process ${held?.pid ?? '?'}; if no pkglog is running, remove the file`);
      }
      sleepSync(delay);
      delay = Math.min(delay * 2, 50);
    }
  }
}

function breakStaleLock(lockPath: string, judged: LockInfo, now: () => number): void {
  const breakPath = `${lockPath}.break`;
  let fd: number;
  try {
    fd = openSync(breakPath, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // Someone else is breaking it; a breaker that died leaves an old .break file behind.
    try {
      if (now() - statSync(breakPath).mtimeMs > LOCK_STALE_MS) unlinkSync(breakPath);
    } catch {
      // gone meanwhile
    }
    sleepSync(2);
    return;
  }
  closeSync(fd);
  try {
    const again = readLock(lockPath);
    if (again !== undefined && again.ino === judged.ino && again.pid === judged.pid && again.timeMs === judged.timeMs) unlinkSync(lockPath);
  } finally {
    unlinkSync(breakPath);
  }
}

export interface StoredCheckpoint {
  signed: string;
  checkpoint: Checkpoint;
}

export function readCheckpointNote(signed: string): Checkpoint {
  return parseCheckpoint(parseSignedNote(signed).text);
}

function checkForward(prev: Checkpoint, next: Checkpoint): void {
  if (prev.treeSize > next.treeSize) {
    fail('inconsistent', `refusing to move the saved checkpoint of ${next.origin} back from size ${prev.treeSize} to ${next.treeSize}`);
  }
  if (prev.treeSize === next.treeSize && !prev.rootHash.equals(next.rootHash)) {
    fail('inconsistent', `refusing to replace the saved checkpoint of ${next.origin} at size ${next.treeSize} with a different root`);
  }
}

export class StateStore {
  readonly dir: string;
  constructor(dir?: string) {
    this.dir = dir ?? defaultStateDir();
  }

  /** The directory for one log (created on demand). */
  logDir(origin: string, create = true): string {
    const d = join(this.dir, 'logs', originHash(origin));
    if (create) {
      mkdirSync(d, { recursive: true, mode: 0o700 });
      const o = join(d, 'origin');
      if (!existsSync(o)) writeFileAtomic(o, `${origin}\n`);
    }
    return d;
  }

  /** The newest checkpoint verified for `origin`, or undefined on first use. Throws 'malformed' if the file is corrupt. */
  latest(origin: string): StoredCheckpoint | undefined {
    const path = join(this.logDir(origin, false), 'checkpoint');
    let signed: string;
    try {
      signed = readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
    let checkpoint: Checkpoint;
    try {
      checkpoint = readCheckpointNote(signed);
    } catch (e) {
      return fail('malformed', `saved checkpoint ${path} is corrupt (${(e as Error).message}); remove it to start over`);
    }
    if (checkpoint.origin !== origin) fail('malformed', `saved checkpoint ${path} is for another origin`);
    return { signed, checkpoint };
  }

  /**
   * Compare-and-swap of the saved checkpoint, under the log's lock file: replaces it with `signed` only if the saved
   * one is still `expected` (its exact text; undefined = nothing saved yet). When another process moved it meanwhile,
   * nothing is written and the checkpoint now saved is returned, so the caller checks `signed` against that one
   * (consistency, forks) and tries again. Even then the saved checkpoint never moves backwards: a smaller size, or the
   * same size with a different root, is refused ('inconsistent'). The write is atomic and durable (writeFileAtomic).
   */
  compareAndSwap(expected: string | undefined, signed: string): { swapped: true } | { swapped: false; current: StoredCheckpoint | undefined } {
    const cp = readCheckpointNote(signed);
    const dir = this.logDir(cp.origin);
    return withFileLock(join(dir, 'checkpoint.lock'), () => {
      const prev = this.latest(cp.origin);
      if (prev?.signed !== expected) return { swapped: false as const, current: prev };
      if (prev !== undefined) checkForward(prev.checkpoint, cp);
      if (prev?.signed !== signed) writeFileAtomic(join(dir, 'checkpoint'), signed);
      return { swapped: true as const };
    });
  }

  /**
   * Saves `signed` as the newest verified checkpoint. The caller has verified it and its consistency with the
   * saved one. Never moves backwards: a smaller size than the saved one is refused ('inconsistent').
   */
  saveLatest(signed: string): void {
    for (;;) {
      const prev = this.latest(readCheckpointNote(signed).origin);
      if (prev !== undefined) checkForward(prev.checkpoint, readCheckpointNote(signed));
      if (this.compareAndSwap(prev?.signed, signed).swapped) return;
    }
  }

  /** Writes fork or violation evidence under evidence/ and returns its path. */
  saveEvidence(origin: string, text: string, now: number): string {
    const d = join(this.dir, 'evidence');
    mkdirSync(d, { recursive: true, mode: 0o700 });
    const name = `${new Date(now).toISOString().replace(/[:.]/g, '-')}-${originHash(origin).slice(0, 16)}-${createHash('sha256').update(text).digest('hex').slice(0, 8)}.txt`;
    const path = join(d, name);
    writeFileAtomic(path, text);
    return path;
  }
}
