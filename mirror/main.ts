/**
 * Composes a running mirror: data dir (lock, SQLite, keys) → Mirror → HTTP app → listen, plus the pull loop over the
 * logs configured with a URL.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fail } from '../core/errors.ts';
import { cosignatureSigner, mldsaCosigner } from '../core/cosignature.ts';
import { SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44, type Signer } from '../core/note.ts';
import { parseListen } from '../runtime/listen.ts';
import { loadOrCreateCosignerKey } from '../runtime/key-file.ts';
import { DataDirLock } from '../runtime/data-dir-lock.ts';
import { Periodic } from '../runtime/periodic.ts';
import { createLimitedServer, type ConnectionLimits } from '../runtime/connection-limits.ts';
import { callbackLogger, levelLog, type Logger as RootLogger } from '../runtime/logger.ts';
import { createRegistry, type Registry } from '../runtime/metrics.ts';
import { drainServer, HttpOps } from '../runtime/http-ops.ts';
import type { Fetch } from '../runtime/http.ts';
import { MirrorStore } from './store.ts';
import { Mirror, type Logger } from './mirror.ts';
import { createApp } from './app.ts';
import { HttpLogSource } from './log-source.ts';

export const LOCK_FILE = 'mirror.lock';
export const DEFAULT_POLL_INTERVAL_MS = 10_000;

export interface MirrorConfig {
  dataDir: string;
  /** host:port (port 0: any free port). */
  listen: string;
  name?: string;
  /** The Ed25519 cosignature/v1 key file (default D/mirror.key), created 0600 on first start. */
  keyFile?: string;
  /** The ML-DSA-44 key file (default D/mirror-mldsa.key); used when cosign.mldsa. */
  mldsaKeyFile?: string;
  cosign?: { ed25519: boolean; mldsa: boolean };
  pollIntervalMs?: number;
  logger?: RootLogger;
  log?: Logger;
  processMetrics?: boolean;
  drainTimeoutMs?: number;
  fetch?: Fetch;
  limits?: Partial<ConnectionLimits>;
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  headersTimeoutMs: 10_000,
  // add-entries bodies are large: a whole request may take this long.
  requestTimeoutMs: 300_000,
  maxConnections: 1024,
  maxConnectionsPerClient: 32,
};

export interface RunningMirror {
  url: string;
  vkey: string;
  vkeys: string[];
  mirror: Mirror;
  store: MirrorStore;
  server: Server;
  metrics: Registry;
  /** Pull every log with a URL once now (tests, and the loop). */
  pullOnce(): Promise<void>;
  close(): Promise<void>;
}

export function defaultMirrorName(): string {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'localhost';
  return `${host}/pkglog-mirror`;
}

export async function startMirror(cfg: MirrorConfig): Promise<RunningMirror> {
  const { host, port } = parseListen(cfg.listen);
  const limits: ConnectionLimits = { ...DEFAULT_LIMITS, ...cfg.limits };
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) fail('malformed', 'the headers timeout must not exceed the request timeout');
  const log: Logger = cfg.logger ? levelLog(cfg.logger.child({ component: 'mirror' })) : cfg.log ?? (() => {});
  const sources = new Map<string, HttpLogSource>();
  const sourceFor = (l: { url: string }): HttpLogSource => {
    let source = sources.get(l.url);
    if (source === undefined) sources.set(l.url, (source = new HttpLogSource(l.url, cfg.fetch ? { fetch: cfg.fetch } : {})));
    return source;
  };
  const lock = DataDirLock.acquire(cfg.dataDir, LOCK_FILE, 'pkglog mirror');
  let store: MirrorStore | undefined;
  let mirror: Mirror;
  try {
    store = MirrorStore.open(cfg.dataDir);
    const cosign = cfg.cosign ?? { ed25519: true, mldsa: false };
    const clock = () => Math.floor(Date.now() / 1000);
    const key = loadOrCreateCosignerKey(cfg.keyFile ?? join(cfg.dataDir, 'mirror.key'), cfg.name, SIG_TYPE_COSIGNATURE_V1, defaultMirrorName());
    const signers: Signer[] = [];
    if (cosign.ed25519) signers.push(cosignatureSigner(key.name, key.seed, clock));
    if (cosign.mldsa) {
      const pq = loadOrCreateCosignerKey(cfg.mldsaKeyFile ?? join(cfg.dataDir, 'mirror-mldsa.key'), key.name, SIG_TYPE_MLDSA44, key.name);
      signers.push(mldsaCosigner(pq.name, pq.seed, { timestamp: clock, random: () => randomBytes(32) }));
    }
    mirror = new Mirror({ store, signers, log, sourceFor });
  } catch (e) {
    store?.close();
    lock.release();
    throw e;
  }
  const registry = createRegistry({ processMetrics: cfg.processMetrics === true });
  const ops = new HttpOps({
    logger: cfg.logger?.child({ component: 'http' }) ?? callbackLogger((m) => log('info', m)),
    registry,
    readiness: () => [store!.isOpen() ? { name: 'store', ok: true } : { name: 'store', ok: false, detail: 'the store is not open' }],
    refuseWhileDraining: (_req, res) => {
      res.statusCode = 503;
      res.setHeader('Retry-After', '1');
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('the mirror is shutting down\n');
    },
  });
  const app = createApp({ mirror, before: [ops.middleware] });
  const server = createLimitedServer(app, limits, (m) => log('info', m));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (e) {
    store.close();
    lock.release();
    throw e;
  }
  const addr = server.address() as AddressInfo;
  const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const opened = store;
  const pullOnce = async (): Promise<void> => {
    for (const l of opened.listLogs()) {
      if (!l.pull) continue;
      const source = sourceFor(l);
      try {
        const what = await mirror.pull(l.id, source);
        if (what !== 'up to date') log('info', `pull ${l.origin}: ${what}`);
      } catch (e) {
        source.clearCache();
        log('warn', `pull ${l.origin} from ${l.url}: ${(e as Error).message}`);
      }
    }
  };
  const loop = new Periodic(pullOnce, cfg.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS).start();
  let closed: Promise<void> | undefined;
  return {
    url: `http://${h}:${addr.port}`,
    vkey: mirror.vkey,
    vkeys: mirror.vkeys,
    mirror,
    store: opened,
    server,
    metrics: registry,
    pullOnce,
    close() {
      closed ??= (async () => {
        await loop.stop();
        await drainServer(server, ops, { ...(cfg.logger ? { logger: cfg.logger } : {}), ...(cfg.drainTimeoutMs !== undefined ? { timeoutMs: cfg.drainTimeoutMs } : {}) });
        opened.close();
        lock.release();
      })();
      return closed;
    },
  };
}
