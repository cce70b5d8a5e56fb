/**
 * `pkglog backup`: an online, consistent copy of a log's database (SQLite's backup API, from another process while
 * the log runs: the log's single-process lock is a separate file). The copy is written next to FILE, fsynced, checked
 * (integrity_check, its tree row) and renamed into place. A restored copy cannot sign until it has caught up with the
 * log's high-water mark: see docs/operations.md#backup-and-restore.
 */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { fail } from '../core/errors.ts';
import { LogStore } from '../log-store/store.ts';
import { SqliteIndexStore } from '../log-store/index-store.ts';

export interface BackupResult {
  out: string;
  treeSize: number;
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes a file only whole: `write(tmp)` makes it at a temporary name next to `out`, which is then fsynced and renamed
 * to `out` (its directory fsynced). `out` must not exist.
 */
async function writeWhole<T>(out: string, write: (tmp: string) => Promise<T>): Promise<T> {
  if (existsSync(out)) fail('conflict', `${out} already exists; choose a new file`);
  const tmp = join(dirname(out), `.${basename(out)}.partial`);
  rmSync(tmp, { force: true });
  const r = await write(tmp);
  fsyncPath(tmp);
  renameSync(tmp, out);
  fsyncPath(dirname(out));
  return r;
}

export async function backupDatabase(dbPath: string, out: string): Promise<BackupResult> {
  const treeSize = await writeWhole(out, async (tmp) => {
    const src = LogStore.open(dbPath, { readonly: true });
    try {
      await src.backup(tmp);
    } finally {
      src.close();
    }
    const copy = LogStore.open(tmp, { mustExist: true });
    try {
      copy.db.pragma('journal_mode = DELETE'); // one self-contained file: restoring it is copying it
      const check = copy.db.pragma('integrity_check', { simple: true });
      if (check !== 'ok') fail('internal', `the backup does not pass integrity_check: ${String(check)}`);
      const tree = copy.treeState();
      if (tree === undefined) fail('internal', 'the backup has no tree row');
      return tree.treeSize;
    } finally {
      copy.close();
    }
  });
  return { out, treeSize };
}

/** Where `pkglog backup --out FILE` writes the copy of the index database (index.sqlite), when the log has one. */
export const indexBackupFile = (out: string) => `${out}.index.sqlite`;

/**
 * An online, consistent copy of the package index's database (index.sqlite), the same way: written whole next to
 * FILE, checked (integrity_check, its head row: log-store's SqliteIndexStore.backup). Returns its revision count.
 */
export async function backupIndexDatabase(indexPath: string, out: string): Promise<{ out: string; revisions: number }> {
  return { out, revisions: await writeWhole(out, (tmp) => SqliteIndexStore.backup(indexPath, tmp)) };
}
