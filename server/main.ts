/** Composes config, store, keys, sequencer and the HTTP app, and listens. */
import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { Express } from 'express';
import { EMPTY_ROOT } from '../core/hash.ts';
import { SqliteStore } from '../log-store/store.ts';
import { PostgresStore } from '../log-store/postgres.ts';
import type { Store } from '../log-store/types.ts';
import { DataDirLock } from '../log-store/lock.ts';
import { highWaterMarkFile, readHighWaterMark } from '../log-store/high-water-mark.ts';
import { parseVerifierKey } from '../core/note.ts';
import { SigningGuard, verifyLogCheckpoint, SAFETY_DOC } from './safety.ts';
import { checkWitnesses } from './witness-check.ts';
import { createApp } from './app.ts';
import { loadExplorer, logPolicy } from './explorer.ts';
import { createLimitedServer } from '../runtime/connection-limits.ts';
import { CheckpointView } from './checkpoint-view.ts';
import type { LogConfig } from './config.ts';
import { loadOrCreateLogKey, loadOrCreateLogMlDsaKey } from './keys.ts';
import { loadRegistries } from './registries.ts';
import { Sequencer, signCheckpoint } from './sequencer.ts';
import { openSharedSequencer } from './shared-sequencer.ts';
import { TreeReader } from './tree-reader.ts';
import { loadWitnesses } from './witness-config.ts';
import { cosignatureRow, Witnessing } from './witnessing.ts';
import { openIndex } from './index-service.ts';
import type { IndexWriter } from './index-writer.ts';
import { Mirroring } from './mirroring.ts';
import { loadMirrors } from './mirror-config.ts';
import { VerifyPool } from './verify-pool.ts';
import { Publisher, publishFaultFromEnv, type PublishTarget } from './publish.ts';
import { DirectoryTarget } from './publish-dir.ts';
import { parseS3Url, S3Target } from './publish-s3.ts';
import { fail } from '../core/errors.ts';
import { callbackLogger, createLogger, lineLog, type Logger } from '../runtime/logger.ts';
import { createRegistry, type Registry } from '../runtime/metrics.ts';
import { drainServer, HttpOps } from '../runtime/http-ops.ts';
import { LogHealth } from './health.ts';
import { LogMetrics } from './metrics.ts';
import type { IndexService } from './index-routes.ts';

export interface OpenLog {
  origin: string;
  vkey: string;
  /** Every key the log signs checkpoints with: the Ed25519 vkey, then the ML-DSA-44 one (GET /vkeys). */
  vkeys: string[];
  store: Store;
  sequencer: Sequencer;
  checkpoints: CheckpointView;
  app: Express;
  witnessing?: Witnessing;
  /** With --index: the package index, its output log and that log's witnessing. */
  index?: IndexService & { witnessing?: Witnessing; writer: IndexWriter };
  guard: SigningGuard;
  /** Settles once the witnesses were asked what they cosigned (signing starts then); rejects with the refusal. */
  ready: Promise<void>;
  /** Signature verification workers (when --verify-threads > 0); `restarts` counts replaced workers. */
  verifyPool?: VerifyPool;
  /** With --publish-dir / --publish-s3: write the tlog-tiles layout there (started by startLog before listening). */
  publishers: Publisher[];
  /** The first of them. */
  publisher?: Publisher;
  /** The root logger (component loggers are its children). */
  logger: Logger;
  /** This log's own metrics registry (GET /metrics). */
  metrics: Registry;
  /** Request ids, /healthz, /readyz, /metrics and the drain state. */
  ops: HttpOps;
  health: LogHealth;
  /** Flushes the pool and closes the store. */
  close(): Promise<void>;
}

export interface RunningLog extends OpenLog {
  url: string;
  server: Server;
}

export const registriesFile = (dataDir: string) => join(dataDir, 'registries.txt');
/** The explorer's files when built (npm run build); without them / answers 404 with how to build them. */
function explorerDeps() {
  const explorer = loadExplorer();
  return explorer === undefined ? {} : { explorer };
}

export const witnessesFile = (dataDir: string) => join(dataDir, 'witnesses.txt');
export const mirrorsFile = (dataDir: string) => join(dataDir, 'mirrors.txt');
export const databaseFile = (dataDir: string) => join(dataDir, 'log.sqlite');
export const lockFile = (dataDir: string) => join(dataDir, 'log.lock');

export interface OpenOptions {
  /** Called once if the log stops signing for good while running (its database file was deleted or replaced). */
  onFatal?: (message: string) => void;
  /** Start-up witness check: per-witness timeout (default 5000 ms). */
  witnessCheckTimeoutMs?: number;
  /** Also export the Node.js process metrics (the CLI does; in-process tests need not). */
  processMetrics?: boolean;
  /** Graceful shutdown: how long close() waits for requests in flight (default 60 s). */
  drainTimeoutMs?: number;
}

/** Where a log's lines go: a logger, or a `(msg) => void` callback (tests), or by default stderr (runtime/logger.ts). */
export type LogSink = Logger | ((msg: string) => void);

function toLogger(log: LogSink | undefined): Logger {
  if (log === undefined) return createLogger({ base: { service: 'pkglog-log' } });
  return typeof log === 'function' ? callbackLogger(log) : log;
}

/** Opens the store and key and builds the app, without listening. */
export async function openLog(config: LogConfig, sink?: LogSink, options: OpenOptions = {}): Promise<OpenLog> {
  const logger = toLogger(sink);
  const componentLog = (component: string) => lineLog(logger.child({ component }));
  const log = componentLog('log');
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const key = loadOrCreateLogKey(config.keyFile, config.origin);
  // The log's own ML-DSA-44 cosignature on every checkpoint (tlog-checkpoint), next to the Ed25519 signature.
  const pq = config.mldsaKeyFile === undefined ? undefined : loadOrCreateLogMlDsaKey(config.mldsaKeyFile, key.origin);
  const signers = pq === undefined ? [key.signer] : [key.signer, pq.signer];
  const vkeys = pq === undefined ? [key.vkey] : [key.vkey, pq.vkey];
  const verifier = parseVerifierKey(key.vkey);
  const lock = DataDirLock.acquire(lockFile(config.dataDir));
  const dbPath = databaseFile(config.dataDir);
  const hwmFile = highWaterMarkFile(config.keyFile);
  let store: Store;
  let guard: SigningGuard;
  const witnesses = loadWitnesses(witnessesFile(config.dataDir));
  try {
    if (config.database === undefined && !existsSync(dbPath)) {
      // No database but a published high-water mark: refuse before creating an empty one.
      const hwmNote = readHighWaterMark(hwmFile);
      const hwm = hwmNote === undefined ? undefined : verifyLogCheckpoint(hwmNote, verifier, key.origin, `the high-water mark ${hwmFile}`);
      if (hwm !== undefined && hwm.treeSize > 0) {
        fail('unsafe_state', `refusing to sign: the database ${dbPath} is missing, but this log already published size ${hwm.treeSize} ` +
          `(high-water mark ${hwmFile}); starting from an empty database would fork the log. Put back the newest database, or ` +
          `rebuild it up to size ${hwm.treeSize} from a mirror or the published tiles (see ${SAFETY_DOC}).`);
      }
    }
    store = config.database === undefined ? SqliteStore.open(dbPath) : await PostgresStore.open(config.database);
    try {
      if ((await store.treeState()) === undefined) {
        // An empty database (a new PostgreSQL one) but a published high-water mark: refuse before initializing it.
        const hwmNote = readHighWaterMark(hwmFile);
        const hwm = hwmNote === undefined ? undefined : verifyLogCheckpoint(hwmNote, verifier, key.origin, `the high-water mark ${hwmFile}`);
        if (hwm !== undefined && hwm.treeSize > 0) {
          fail('unsafe_state', `refusing to sign: the database ${store.location} holds no tree, but this log already published size ${hwm.treeSize} ` +
            `(high-water mark ${hwmFile}); starting from an empty database would fork the log. Point --database at this log's database, or ` +
            `rebuild it up to size ${hwm.treeSize} from a mirror or the published tiles (see ${SAFETY_DOC}).`);
        }
      }
      const storedOrigin = await store.getMeta('origin');
      if (storedOrigin !== undefined && storedOrigin !== key.origin) {
        throw new Error(`the store in ${store.location} belongs to origin ${storedOrigin}, not ${key.origin}`);
      }
      if (storedOrigin === undefined) await store.setMeta('origin', key.origin);
      await store.initialize({ treeSize: 0, rootHash: EMPTY_ROOT, checkpoint: signCheckpoint(signers, key.origin, 0, EMPTY_ROOT) }, Date.now());
      if (config.witnessQuorum > witnesses.length) {
        throw new Error(`witness quorum ${config.witnessQuorum} is more than the ${witnesses.length} configured witnesses`);
      }
      guard = await SigningGuard.open({
        store, verifier, origin: key.origin, hwmFile, log: componentLog('safety'),
        witnessVerifiers: witnesses.flatMap((w) => w.vkeys.map(parseVerifierKey)),
        ...(options.onFatal ? { onFatal: options.onFatal } : {}),
      });
    } catch (e) {
      await store.close();
      throw e;
    }
  } catch (e) {
    lock.release();
    throw e;
  }

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

  let checkpoints: CheckpointView;
  try {
    checkpoints = await CheckpointView.open(store, config.witnessQuorum, config.witnessWaitMs, witnesses.map((w) => w.vkeys));
  } catch (e) {
    guard.close();
    await store.close();
    lock.release();
    throw e;
  }
  // Only what the high-water mark holds is public: /checkpoint and proofs never show a batch whose mark is not written.
  checkpoints.limitTo(() => guard.highWaterMark.treeSize);
  const reader = new TreeReader(store);
  // Several front ends on PostgreSQL (set below): the lease holder sequences, talks to the witnesses and publishes.
  let shared: Awaited<ReturnType<typeof openSharedSequencer>> | undefined;
  // One publisher per target (--publish-dir, --publish-s3): each keeps its own published size.
  const targets: PublishTarget[] = [
    ...(config.publishDir !== undefined ? [new DirectoryTarget(config.publishDir)] : []),
    ...(config.publishS3 !== undefined ? [new S3Target({ ...parseS3Url(config.publishS3.url), ...config.publishS3 })] : []),
  ];
  const publishers = targets.map((target) => new Publisher({
    target, store, origin: key.origin, verifier, log: componentLog('publish'),
    publishableSize: () => guard.highWaterMark.treeSize,
    active: () => shared === undefined || shared.sequencing,
    checkpoint: async () => {
      // What GET /checkpoint serves, but never beyond the high-water mark.
      const hwm = guard.highWaterMark.treeSize;
      const l = await checkpoints.latest();
      return l.treeSize <= hwm ? l : { treeSize: hwm, note: await checkpoints.noteAt(hwm) };
    },
    fault: publishFaultFromEnv(),
  }));
  const publisher = publishers[0];
  const witnessing = witnesses.length === 0 ? undefined : new Witnessing({
    witnesses,
    // What the witnesses are asked to cosign is what the log made public: its high-water mark (server/safety.ts).
    latest: () => {
      const h = guard.highWaterMark;
      return { treeSize: h.treeSize, signedNote: h.note };
    },
    checkpointAt: (treeSize) => store.checkpoint(treeSize),
    consistencyProof: (oldSize, newSize) => reader.consistencyProof(oldSize, newSize),
    storeCosignatures: async (treeSize, lines) => {
      await store.addCosignatures(treeSize, lines.map(cosignatureRow));
      await checkpoints.cosignaturesChanged(treeSize);
      for (const p of publishers) p.notify();
      refreshServed(); // a newly cosigned checkpoint may now be published (then the mirrors are told)
    },
    log: componentLog('witnessing'),
    quorum: config.witnessQuorum,
    minIntervalMs: config.witnessIntervalMs,
  });
  let index: ReturnType<typeof openIndex> | undefined;
  try {
    index = config.index ? openIndex({ config, dbPath, key, guard, witnesses, store, reader, log: componentLog('index'), witnessLog: componentLog('index-witnessing') }) : undefined;
  } catch (e) {
    guard.close();
    store.close();
    lock.release();
    throw e;
  }
  // Mirrors (C2SP tlog-mirror) get what /checkpoint serves, with the entries up to it; their cosignatures join the others.
  const mirrorList = loadMirrors(mirrorsFile(config.dataDir));
  // What /checkpoint serves (never beyond the high-water mark), kept current for the mirrors' synchronous scheduling.
  const servedCheckpoint = async () => {
    const hwm = guard.highWaterMark.treeSize;
    const l = await checkpoints.latest();
    return l.treeSize <= hwm ? { treeSize: l.treeSize, note: l.note } : { treeSize: hwm, note: await checkpoints.noteAt(hwm) };
  };
  let served = mirrorList.length === 0 ? { treeSize: 0, note: '' } : await servedCheckpoint();
  const refreshServed = () => {
    if (mirrorList.length === 0) return;
    servedCheckpoint().then((c) => {
      if (c.treeSize >= served.treeSize) served = c;
      mirroring?.notify();
    }, () => {});
  };
  const mirroring = mirrorList.length === 0 ? undefined : new Mirroring({
    mirrors: mirrorList,
    active: () => shared === undefined || shared.sequencing, // several front ends: the lease holder pushes
    latest: () => served,
    consistencyProof: (oldSize, newSize) => reader.consistencyProof(oldSize, newSize),
    node: (n, treeSize) => reader.nodeHash(n, treeSize),
    entries: (start, end) => store.entryLeaves(start, end),
    storeCosignatures: async (treeSize, lines) => {
      await store.addCosignatures(treeSize, lines.map(cosignatureRow));
      await checkpoints.cosignaturesChanged(treeSize);
      refreshServed();
      for (const p of publishers) p.notify();
    },
    log: componentLog('mirroring'),
    minIntervalMs: config.witnessIntervalMs,
  });
  const sequencer = new Sequencer({
    store, signer: signers, origin: key.origin, now: Date.now,
    batchIntervalMs: config.batchIntervalMs, maxBatch: config.maxBatch, maxPending: config.maxPending, log: componentLog('sequencer'),
    onCheckpoint: (state) => {
      treeSize = state.treeSize;
      health.committed(state.treeSize);
      witnessing?.notify();
      refreshServed(); // then the mirrors are told
      for (const p of publishers) p.notify();
      index?.writer.notify();
    },
    onBatch: (b) => metrics.batch(b),
    guard,
  });
  // Nothing is signed before every witness was asked what it last cosigned for this log.
  const start = (await store.treeState())!;
  let treeSize = start.treeSize;
  const askWitnesses = async () => {
    if (witnesses.length === 0) return;
    const t = (await store.treeState())!;
    await checkWitnesses({
      witnesses, treeSize: t.treeSize, note: t.checkpoint, log: componentLog('witness-check'),
      ...(options.witnessCheckTimeoutMs !== undefined ? { timeoutMs: options.witnessCheckTimeoutMs } : {}),
    });
  };
  // Several front ends on PostgreSQL: submissions go through the database's queue; the lease holder sequences, and
  // runs the start-up checks and asks the witnesses when it takes the lease (docs/operations.md#scaling-out).
  if (store.kind === 'postgres' && config.database !== undefined) {
    try {
      shared = await openSharedSequencer({
        databaseUrl: config.database, store, sequencer, guard, leaseTtlMs: config.leaseTtlMs, commitWaitMs: config.commitWaitMs,
        batchIntervalMs: config.batchIntervalMs, maxBatch: config.maxBatch, maxPending: config.maxPending, log: componentLog('sequencer'),
        checkWitnesses: askWitnesses,
        sequencing: () => {
          witnessing?.notify();
          for (const p of publishers) p.notify();
          refreshServed(); // and the mirrors are told
        },
        // Cosignatures and the published mark stored by the sequencing front end (witness quorum), then publication.
        followed: async () => {
          if (await checkpoints.refresh()) for (const p of publishers) p.notify();
        },
        observed: (state) => {
          if (state.treeSize > treeSize) health.committed(state.treeSize);
          treeSize = Math.max(treeSize, state.treeSize);
        },
      });
    } catch (e) {
      await publisher?.close();
      checkpoints.close();
      guard.close();
      await store.close();
      lock.release();
      throw e;
    }
  }
  const submitter = shared ?? sequencer;
  const health = new LogHealth({
    store, guard, sequencer: submitter, checkpoints,
    stallMs: Math.max(10_000, 20 * config.batchIntervalMs),
    cosignWaitMs: Math.max(30_000, 2 * config.witnessWaitMs),
  });
  const ready = shared !== undefined || witnesses.length === 0
    ? Promise.resolve()
    : (() => {
      const t = start;
      return checkWitnesses({
        witnesses, treeSize: t.treeSize, note: t.checkpoint, log: componentLog('witness-check'),
        ...(options.witnessCheckTimeoutMs !== undefined ? { timeoutMs: options.witnessCheckTimeoutMs } : {}),
      });
    })();
  if (shared !== undefined || witnesses.length === 0) guard.allowSigning();
  ready.then(() => {
    guard.allowSigning();
    if (shared === undefined) witnessing?.notify(); // bring witnesses up to date after a restart (shared: the lease holder)
    index?.writer.notify(); // revision 0 on the first start; after a crash, the batches not yet indexed
    mirroring?.notify();
  }, (e: Error) => guard.stop(e.message, false));
  const verifyPool = config.verifyThreads > 0 ? new VerifyPool(config.verifyThreads, { log: componentLog('verify') }) : undefined;
  const registry = createRegistry({ processMetrics: options.processMetrics === true });
  const metrics = new LogMetrics(registry, {
    treeSize: () => treeSize,
    publishedSize: () => checkpoints.publishedSize(),
    pending: () => submitter.pending,
    isRegistry: (name) => currentRegistries().has(name),
    ...(witnessing ? { witnesses: () => witnessing.status() } : {}),
    ...(verifyPool ? { verifyRestarts: () => verifyPool.restarts } : {}),
  });
  const ops = new HttpOps({ logger: logger.child({ component: 'http' }), registry, readiness: () => health.checks() });
  const app = createApp({
    store, sequencer: submitter, registries: currentRegistries, vkey: key.vkey, vkeys, checkpoints, reader, log: componentLog('http'),
    ...(index ? { index } : {}),
    ...(verifyPool ? { verifyPool } : {}),
    before: [ops.middleware],
    onSubmission: (registryName, outcome) => metrics.submission(registryName, outcome),
    policy: logPolicy(vkeys, witnesses.map((w) => w.vkeys), config.witnessQuorum),
    ...explorerDeps(),
  });
  let closed = false;
  return {
    origin: key.origin, vkey: key.vkey, vkeys, store, sequencer, checkpoints, app, ...(witnessing ? { witnessing } : {}), guard, ready, ...(verifyPool ? { verifyPool } : {}),
    ...(index ? { index } : {}),
    ...(publisher ? { publisher } : {}), publishers,
    logger, metrics: registry, ops, health,
    async close() {
      if (closed) return;
      closed = true;
      await shared?.close();
      await sequencer.close();
      for (const p of publishers) await p.close();
      await verifyPool?.close();
      await witnessing?.close();
      await index?.writer.close();
      await index?.witnessing?.close();
      await index?.store.close();
      await mirroring?.close();
      checkpoints.close();
      guard.close();
      await store.close();
      lock.release();
    },
  };
}

export async function startLog(config: LogConfig, sink?: LogSink, options: OpenOptions = {}): Promise<RunningLog> {
  const opened = await openLog(config, sink, options);
  try {
    await opened.ready;
    // Each target is checked before the log listens (one of another log or history refuses the start: unsafe_state);
    // the catch-up (after a crash: from the target's checkpoint size) runs in the background.
    for (const p of opened.publishers) await p.start();
  } catch (e) {
    await opened.close();
    throw e;
  }
  const { app } = opened;
  let server: Server;
  try {
    server = await new Promise<Server>((resolve, reject) => {
      const s = createLimitedServer(app, config, lineLog(opened.logger.child({ component: 'http' })));
      s.once('error', reject);
      s.listen(config.port, config.host, () => resolve(s));
    });
  } catch (e) {
    // Listening failed (port in use, no such address): release the store and its lock before reporting it.
    await opened.close();
    throw e;
  }
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    ...opened,
    url: `http://${host}:${addr.port}`,
    server,
    /**
     * Graceful: new requests are answered 503 while every request in flight — each accepted submission — is committed
     * and answered; then the connections close, the sequencer, workers and witnessing stop, and the store closes.
     */
    async close() {
      closing ??= (async () => {
        opened.logger.info('shutting down: answering the requests in flight, refusing new ones (503)');
        await drainServer(server, opened.ops, { logger: opened.logger, quietMs: 500, maxQuietWaitMs: 5000, ...(options.drainTimeoutMs !== undefined ? { timeoutMs: options.drainTimeoutMs } : {}) });
        await opened.close();
        opened.logger.info('shut down: every accepted request was answered; the store is closed');
      })();
      return closing;
    },
  };
}
