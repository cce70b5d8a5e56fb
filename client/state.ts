/**
 * The client's persistent state: per log (keyed by the SHA-256 of its origin), the newest checkpoint it verified
 * (never moved backwards), the monitor's position and index, and fork evidence it found.
 *
 * Location: an explicit directory, else $PKGLOG_STATE_DIR, else $XDG_STATE_HOME/pkglog, else ~/.local/state/pkglog.
 * Writes are atomic (write a temporary file, fsync, rename).
 */
import { mkdirSync, readFileSync, writeFileSync, renameSync, openSync, fsyncSync, closeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { createHash } from 'node:crypto';
import { fail } from '../core/errors.ts';
import { parseSignedNote } from '../core/note.ts';
import { parseCheckpoint, type Checkpoint } from '../core/checkpoint.ts';

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PKGLOG_STATE_DIR) return env.PKGLOG_STATE_DIR;
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'pkglog');
  return join(homedir(), '.local', 'state', 'pkglog');
}

export function originHash(origin: string): string {
  return createHash('sha256').update(origin, 'utf8').digest('hex');
}

/** Atomically replaces `path` with `data` (mode 0600). */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(tmp, data, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export interface StoredCheckpoint {
  signed: string;
  checkpoint: Checkpoint;
}

export function readCheckpointNote(signed: string): Checkpoint {
  return parseCheckpoint(parseSignedNote(signed).text);
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
      if (!existsSync(o)) writeFileSync(o, `${origin}\n`, { mode: 0o600 });
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
   * Saves `signed` as the newest verified checkpoint. The caller has verified it and its consistency with the
   * previous one. Never moves backwards: a smaller size than the saved one is refused ('inconsistent').
   */
  saveLatest(signed: string): void {
    const cp = readCheckpointNote(signed);
    const prev = this.latest(cp.origin);
    if (prev !== undefined && prev.checkpoint.treeSize > cp.treeSize) {
      fail('inconsistent', `refusing to move the saved checkpoint of ${cp.origin} back from size ${prev.checkpoint.treeSize} to ${cp.treeSize}`);
    }
    if (prev !== undefined && prev.checkpoint.treeSize === cp.treeSize && !prev.checkpoint.rootHash.equals(cp.rootHash)) {
      fail('inconsistent', `refusing to replace the saved checkpoint of ${cp.origin} at size ${cp.treeSize} with a different root`);
    }
    if (prev !== undefined && prev.signed === signed) return;
    writeFileAtomic(join(this.logDir(cp.origin), 'checkpoint'), signed);
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
