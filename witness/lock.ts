/**
 * One witness per data directory: the running witness holds `<dataDir>/witness.lock` (runtime/data-dir-lock.ts, shared
 * with the mirror). A second witness on the same directory is refused at start with one clear message.
 * `pkglog witness add-log` / `add-peer` do not take this lock: they write the shared database while a witness runs.
 */
import { DataDirLock as Lock } from '../runtime/data-dir-lock.ts';

export const LOCK_FILE = 'witness.lock';

export const DataDirLock = {
  acquire: (dataDir: string): Lock => Lock.acquire(dataDir, LOCK_FILE, 'pkglog witness'),
};
