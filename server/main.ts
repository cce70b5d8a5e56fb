/** Composes config, store, keys, sequencer and the HTTP app, and listens. */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { Express } from 'express';
import { EMPTY_ROOT } from '../core/hash.ts';
import { LogStore } from '../log-store/store.ts';
import { createApp } from './app.ts';
import { CheckpointView } from './checkpoint-view.ts';
import type { LogConfig } from './config.ts';
import { loadOrCreateLogKey } from './keys.ts';
import { loadRegistries } from './registries.ts';
import { Sequencer, signCheckpoint } from './sequencer.ts';
import { TreeReader } from './tree-reader.ts';
import { loadWitnesses } from './witness-config.ts';
import { Witnessing } from './witnessing.ts';
import { VerifyPool } from './verify-pool.ts';
import { decodeBase64 } from '../core/encoding.ts';
import { fail } from '../core/errors.ts';

/** A verified cosignature line `— <name> <base64(keyId ‖ …)>` as a store row. */
function cosignatureRow(line: string): { keyName: string; keyId: Buffer; line: string } {
  const m = /^— (\S+) (\S+)\n?$/.exec(line);
  if (m === null) return fail('malformed', 'not a signature line');
  return { keyName: m[1]!, keyId: decodeBase64(m[2]!, 'signature').subarray(0, 4), line: `— ${m[1]} ${m[2]}` };
}

export interface OpenLog {
  origin: string;
  vkey: string;
  store: LogStore;
  sequencer: Sequencer;
  checkpoints: CheckpointView;
  app: Express;
  witnessing?: Witnessing;
  /** Flushes the pool and closes the store. */
  close(): Promise<void>;
}

export interface RunningLog extends OpenLog {
  url: string;
  server: Server;
}

export const registriesFile = (dataDir: string) => join(dataDir, 'registries.txt');
export const witnessesFile = (dataDir: string) => join(dataDir, 'witnesses.txt');

/** Opens the store and key and builds the app, without listening. */
export function openLog(config: LogConfig, log: (msg: string) => void = (m) => console.error(m)): OpenLog {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const key = loadOrCreateLogKey(config.keyFile, config.origin);
  const store = LogStore.open(join(config.dataDir, 'log.sqlite'), { exclusive: true });
  const storedOrigin = store.getMeta('origin');
  if (storedOrigin !== undefined && storedOrigin !== key.origin) {
    store.close();
    throw new Error(`the store in ${config.dataDir} belongs to origin ${storedOrigin}, not ${key.origin}`);
  }
  if (storedOrigin === undefined) store.setMeta('origin', key.origin);
  const now = Date.now();
  store.initialize({ treeSize: 0, rootHash: EMPTY_ROOT, checkpoint: signCheckpoint(key.signer, key.origin, 0, EMPTY_ROOT) }, now);

  // Registries are re-read when the file changes (pkglog registry add works on a running log).
  const regFile = registriesFile(config.dataDir);
  let registries = loadRegistries(regFile);
  let regCheckedAt = 0;
  const currentRegistries = () => {
    const t = Date.now();
    if (t - regCheckedAt > 1000) {
      regCheckedAt = t;
      try {
        registries = loadRegistries(regFile);
      } catch (e) {
        log(`keeping previous registries: ${(e as Error).message}`);
      }
    }
    return registries;
  };

  const witnesses = loadWitnesses(witnessesFile(config.dataDir));
  if (config.witnessQuorum > witnesses.length) {
    store.close();
    throw new Error(`witness quorum ${config.witnessQuorum} is more than the ${witnesses.length} configured witnesses`);
  }
  const checkpoints = new CheckpointView(store, config.witnessQuorum, config.witnessWaitMs);
  const reader = new TreeReader(store);
  const witnessing = witnesses.length === 0 ? undefined : new Witnessing({
    witnesses,
    latest: () => {
      const t = store.treeState()!;
      return { treeSize: t.treeSize, signedNote: t.checkpoint };
    },
    consistencyProof: (oldSize, newSize) => reader.consistencyProof(oldSize, newSize),
    storeCosignatures: (treeSize, lines) => {
      store.addCosignatures(treeSize, lines.map(cosignatureRow));
      checkpoints.cosignaturesChanged();
    },
    log,
    minIntervalMs: config.witnessIntervalMs,
  });
  const sequencer = new Sequencer({
    store, signer: key.signer, origin: key.origin, now: Date.now,
    batchIntervalMs: config.batchIntervalMs, maxBatch: config.maxBatch, maxPending: config.maxPending, log,
    onCheckpoint: () => witnessing?.notify(),
  });
  witnessing?.notify(); // bring witnesses up to date after a restart
  const verifyPool = config.verifyThreads > 0 ? new VerifyPool(config.verifyThreads) : undefined;
  const app = createApp({ store, sequencer, registries: currentRegistries, vkey: key.vkey, checkpoints, reader, log, ...(verifyPool ? { verifyPool } : {}) });
  let closed = false;
  return {
    origin: key.origin, vkey: key.vkey, store, sequencer, checkpoints, app, ...(witnessing ? { witnessing } : {}),
    async close() {
      if (closed) return;
      closed = true;
      await sequencer.close();
      await verifyPool?.close();
      await witnessing?.close();
      checkpoints.close();
      store.close();
    },
  };
}

export async function startLog(config: LogConfig, log: (msg: string) => void = (m) => console.error(m)): Promise<RunningLog> {
  const opened = openLog(config, log);
  const { app } = opened;
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    ...opened,
    url: `http://${host}:${addr.port}`,
    server,
    async close() {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      await opened.close();
    },
  };
}
