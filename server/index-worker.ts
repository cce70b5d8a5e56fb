/**
 * The index writer's worker thread (server/index-writer.ts starts it): the package index is built here, off the log's
 * event loop, so a revision's map update and commit never delay submissions, proofs or the sequencer. It owns the
 * writes to the index database (index.sqlite), reads the input log through its own read-only connection to
 * log.sqlite, and asks the main thread — which holds the key and the signing guard — to sign each output checkpoint.
 *
 * Messages from the main thread: {type: 'notify', publicSize}, {type: 'caughtUp', id, publicSize},
 * {type: 'cosignatures', treeSize, lines}, {type: 'signed', id, note} | {type: 'signed', id, error}, {type: 'close'}.
 * To it: {type: 'ready'}, {type: 'sign', id, text}, {type: 'revision', head, note}, {type: 'caughtUp', id},
 * {type: 'log', msg}, {type: 'closed'}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { fail, PkglogError } from '../core/errors.ts';
import { LogStore } from '../log-store/store.ts';
import { SqliteIndexStore, type SqliteIndexStoreOptions } from '../log-store/index-store.ts';
import { Indexer } from './indexer.ts';

export interface IndexWorkerData {
  indexPath: string;
  logPath: string;
  origin: string;
  inputOrigin: string;
  keepRevisions?: number;
  publishedRevisions: number;
  storeOptions?: SqliteIndexStoreOptions;
}

const port = parentPort;
if (port === null) throw new Error('server/index-worker.ts runs in a worker thread');
const d = workerData as IndexWorkerData;
const post = (m: unknown) => port.postMessage(m);
const log = (msg: string) => post({ type: 'log', msg });

let store: SqliteIndexStore;
let input: LogStore;
try {
  store = SqliteIndexStore.open(d.indexPath, d.storeOptions);
  input = LogStore.open(d.logPath, { readonly: true });
} catch (e) {
  post({ type: 'ready', error: (e as Error).message });
  throw e;
}
let publicSize = 0;
let nextId = 1;
const pending = new Map<number, { resolve(note: string): void; reject(e: Error): void }>();

const indexer = new Indexer({
  store,
  input,
  inputProof: () => fail('internal', 'the index worker does not serve bundles'),
  inputOrigin: d.inputOrigin,
  signer: {
    name: d.origin,
    signCheckpoint: (text) => new Promise<string>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      post({ type: 'sign', id, text });
    }),
  },
  publicSize: () => publicSize,
  ...(d.keepRevisions !== undefined ? { keepRevisions: d.keepRevisions } : {}),
  publishedRevisions: d.publishedRevisions,
  onRevision: (head) => post({ type: 'revision', head, note: indexer.latest()!.signedNote }),
  log,
});

port.on('message', (m: { type: string; id?: number; publicSize?: number; note?: string; error?: { code: string; message: string }; treeSize?: number; lines?: Array<{ keyName: string; keyId: Uint8Array; line: string }> }) => {
  switch (m.type) {
    case 'notify':
      publicSize = Math.max(publicSize, m.publicSize!);
      indexer.notify();
      break;
    case 'caughtUp':
      publicSize = Math.max(publicSize, m.publicSize!);
      void indexer.caughtUp().then(() => post({ type: 'caughtUp', id: m.id }));
      break;
    case 'signed': {
      const p = pending.get(m.id!);
      pending.delete(m.id!);
      if (m.error !== undefined) p?.reject(new PkglogError(m.error.code as never, m.error.message));
      else p?.resolve(m.note!);
      break;
    }
    case 'cosignatures':
      store.addCosignatures(m.treeSize!, m.lines!.map((l) => ({ ...l, keyId: Buffer.from(l.keyId) }))).catch((e: Error) => log(`cosignatures for size ${m.treeSize} not stored: ${e.message}`));
      break;
    case 'close':
      void (async () => {
        await indexer.close();
        await store.close();
        input.close();
        post({ type: 'closed' });
      })();
      break;
  }
});

// Start-up: the stored head only (nothing rebuilt); the main thread learns it, then notifies.
void indexer.currentHead().then(
  (head) => post({ type: 'ready', head, note: indexer.latest()?.signedNote }),
  (e: Error) => post({ type: 'ready', error: e.message }),
);
