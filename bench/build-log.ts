/**
 * Builds a large log directly in the store (no HTTP, no signature checking): leaves carry one fixed publisher key and
 * fixed (cheap, not valid for these artifacts) signatures, and are integrated with core/integrate + LogStore.append in
 * big batches, each batch one transaction with a checkpoint signed by the log key — the same data layout a log that
 * accepted these entries over HTTP would have, in a fraction of the time.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { encodeLeaf, fileKey, type Entry } from '../core/entry.ts';
import { leafHash, sha256, EMPTY_ROOT } from '../core/hash.ts';
import { integrate } from '../core/integrate.ts';
import { fail } from '../core/errors.ts';
import { LogStore, type StoredEntry } from '../log-store/store.ts';
import { loadOrCreateLogKey } from '../server/keys.ts';
import { signCheckpoint } from '../server/sequencer.ts';

const FIXED_KEY = Buffer.alloc(32, 0x11);
const FIXED_SIG = Buffer.alloc(64, 0x22);

/** Appends `count` synthetic entries to the log in `dataDir` (creating it and its key). Returns the new tree size. */
export function buildLog(dataDir: string, count: number, batch = 100_000): number {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = loadOrCreateLogKey(join(dataDir, 'log.key'), undefined);
  const store = LogStore.open(join(dataDir, 'log.sqlite'));
  try {
    if (store.getMeta('origin') === undefined) store.setMeta('origin', key.origin);
    const t0 = Date.now();
    store.initialize({ treeSize: 0, rootHash: EMPTY_ROOT, checkpoint: signCheckpoint(key.signer, key.origin, 0, EMPTY_ROOT) }, t0);
    store.db.pragma('cache_size = -262144'); // 256 MiB page cache for this connection only: index inserts stay in memory
    // Secondary indexes are dropped for the load and rebuilt (sorted, much faster) by LogStore.open's schema at the end.
    const indexes = store.db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries' AND sql IS NOT NULL").all();
    for (const { name } of indexes) store.db.exec(`DROP INDEX ${name}`);
    let size = store.treeState()!.treeSize;
    const end = size + count;
    while (size < end) {
      const n = Math.min(batch, end - size);
      const now = Date.now();
      const entries: StoredEntry[] = new Array(n);
      for (let k = 0; k < n; k++) {
        const i = size + k;
        const sha = i.toString(16).padStart(64, '0');
        const e: Entry = {
          ecosystem: 'pypi', name: `bulk-${i >>> 8}`, version: `1.${i & 255}`, filename: `bulk-${i}.whl`, sha256: sha,
          publisherKey: FIXED_KEY, publisherSignature: FIXED_SIG, registryName: 'pypi.org', registrySignature: FIXED_SIG,
          integratedTime: now,
        };
        const leaf = encodeLeaf(e);
        entries[k] = {
          index: i, leaf, leafHash: leafHash(leaf), fileHash: sha256(Buffer.from(fileKey(e), 'utf8')),
          ecosystem: e.ecosystem, name: e.name, version: e.version, sha256: Buffer.from(sha, 'hex'), integratedTime: now,
        };
      }
      const r = integrate(size, (t) => store.readTile(t) ?? fail('internal', 'missing tile'), entries.map((e) => e.leafHash));
      const newState = { treeSize: r.treeSize, rootHash: r.rootHash, checkpoint: signCheckpoint(key.signer, key.origin, r.treeSize, r.rootHash) };
      store.append({ oldSize: size, entries, tiles: r.tiles, newState, createdAt: now });
      size = r.treeSize;
    }
    store.close();
    LogStore.open(join(dataDir, 'log.sqlite')).close(); // recreates the dropped indexes
    return size;
  } finally {
    if (store.db.open) store.close();
  }
}
