/** The package index (--index) as `pkglog serve` composes it: index store, indexer and the output log's witnessing. */
import { join } from 'node:path';
import type { Store } from '../log-store/types.ts';
import { SqliteIndexStore } from '../log-store/index-store.ts';
import { upgradeOldIndex } from '../log-store/index-upgrade.ts';
import { readHighWaterMark, writeHighWaterMark } from '../log-store/high-water-mark.ts';
import { formatVerifierKey, parseVerifierKey, SIG_TYPE_ED25519 } from '../core/note.ts';
import type { LogConfig } from './config.ts';
import type { loadOrCreateLogKey } from './keys.ts';
import { SigningGuard, verifyLogCheckpoint } from './safety.ts';
import type { TreeReader } from './tree-reader.ts';
import type { loadWitnesses } from './witness-config.ts';
import { cosignatureRow, Witnessing } from './witnessing.ts';
import { Indexer, outputOrigin } from './indexer.ts';
import { IndexWriter } from './index-writer.ts';
import type { IndexService } from './index-routes.ts';

/** The index's own database file, next to the log's (docs/storage.md). */
export const indexDatabaseFile = (dataDir: string) => join(dataDir, 'index.sqlite');

/**
 * The package index (--index): its own database (index.sqlite), written by the index worker thread that the
 * sequencer's commits notify (server/index-writer.ts), read here to serve bundles, and the output log
 * `<origin>/index`, signed with the log's own key under that name and witnessed by the log's witnesses.
 */
export function openIndex(o: {
  config: LogConfig; dbPath: string; key: ReturnType<typeof loadOrCreateLogKey>; guard: SigningGuard;
  witnesses: ReturnType<typeof loadWitnesses>; store: Store; reader: TreeReader; log: (m: string) => void; witnessLog: (m: string) => void;
}): IndexService & { witnessing?: Witnessing; writer: IndexWriter } {
  const origin = outputOrigin(o.key.origin);
  const vkey = formatVerifierKey(origin, SIG_TYPE_ED25519, o.key.signer.publicKey);
  const signer = { ...o.key.signer, name: origin, keyId: parseVerifierKey(vkey).keyId };
  // The output log's high-water mark, next to the key like the log's: its newest checkpoint, written after each revision.
  const hwmFile = `${o.config.keyFile}.index.hwm`;
  const hwmNote = readHighWaterMark(hwmFile);
  const published = hwmNote === undefined ? 0 : verifyLogCheckpoint(hwmNote, parseVerifierKey(vkey), origin, `the index high-water mark ${hwmFile}`).treeSize;
  const indexPath = indexDatabaseFile(o.config.dataDir);
  upgradeOldIndex(o.dbPath, indexPath, o.log); // once: an index of the earlier layout inside log.sqlite
  // The read side: serves bundles and the output log from the committed revisions the writer reports.
  const indexStore = SqliteIndexStore.open(indexPath);
  let witnessing: Witnessing | undefined;
  const indexer = new Indexer({
    store: indexStore, input: o.store, inputProof: (i, size) => o.reader.inclusionProof(i, size), inputOrigin: o.key.origin, signer,
    publicSize: () => o.guard.highWaterMark.treeSize,
    maySign: () => false, // never writes: the worker does
    quorum: o.config.witnessQuorum,
    publishedRevisions: published,
    onRevision: (head) => {
      const l = indexer.latest();
      if (l !== undefined && l.treeSize === head.revisions && l.treeSize > published) writeHighWaterMark(hwmFile, l.signedNote);
      witnessing?.notify();
    },
    log: o.log,
  });
  const writer = new IndexWriter({
    data: { indexPath, logPath: o.dbPath, origin, inputOrigin: o.key.origin, publishedRevisions: published },
    signer, indexer,
    publicSize: () => o.guard.highWaterMark.treeSize,
    stoppedReason: () => o.guard.stoppedReason,
    log: o.log,
  });
  witnessing = o.witnesses.length === 0 ? undefined : new Witnessing({
    witnesses: o.witnesses,
    latest: () => indexer.latest() ?? { treeSize: 0, signedNote: '' },
    consistencyProof: (oldSize, newSize) => indexer.outputConsistencyProof(oldSize, newSize),
    storeCosignatures: (treeSize, lines) => writer.addCosignatures(treeSize, lines.map(cosignatureRow)),
    log: o.witnessLog,
    quorum: o.config.witnessQuorum,
    minIntervalMs: o.config.witnessIntervalMs,
  });
  return { indexer, store: indexStore, vkey, writer, ...(witnessing ? { witnessing } : {}) };
}
