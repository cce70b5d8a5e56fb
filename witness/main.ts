/**
 * Composes a running witness: data dir → store and key → Witness → HTTP app → listen, plus the pull and gossip loops.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fail } from '../core/errors.ts';
import { WitnessStore } from './store.ts';
import { loadOrCreateWitnessKey, loadOrCreateMlDsaKey } from './keys.ts';
import { Witness, type Logger, type WitnessHooks } from './witness.ts';
import { createHandler, DEFAULT_GOSSIP_BURST, DEFAULT_GOSSIP_RATE } from './app.ts';
import { DataDirLock } from './lock.ts';
import { RateLimiter } from './rate-limit.ts';
import { DEFAULT_MAX_GOSSIP_FETCHES } from './witness.ts';
import { startLoops } from './loops.ts';
import { parseListen } from '../runtime/listen.ts';
import type { Fetch } from './log-client.ts';
import { callbackLogger, levelLog, type Logger as RootLogger } from '../runtime/logger.ts';
import { createRegistry, type Registry } from '../runtime/metrics.ts';
import { drainServer, HttpOps } from '../runtime/http-ops.ts';
import { WitnessMetrics } from './metrics.ts';

export interface WitnessConfig {
  dataDir: string;
  /** host:port (port 0: any free port). */
  listen: string;
  name?: string;
  keyFile?: string;
  /** The ML-DSA-44 key file (default D/witness-mldsa.key), created 0600 on first start. */
  mldsaKeyFile?: string;
  /**
   * Which cosignatures add-checkpoint returns: Ed25519 cosignature/v1 and/or ML-DSA-44 subtree/v1. Default: both
   * (tlog-witness: witnesses SHOULD use ML-DSA-44; the Ed25519 one is what current clients know).
   */
  cosign?: { ed25519: boolean; mldsa: boolean };
  gossipIntervalMs?: number;
  pollIntervalMs?: number;
  /** The structured logger (runtime/logger.ts); else `log`, else nothing is logged. */
  logger?: RootLogger;
  log?: Logger;
  /** Also export the Node.js process metrics (the CLI does). */
  processMetrics?: boolean;
  /** Graceful shutdown: how long close() waits for requests in flight (default 60 s). */
  drainTimeoutMs?: number;
  fetch?: Fetch;
  now?: () => number;
  hooks?: WitnessHooks;
  /** HTTP limits (defaults in DEFAULT_LIMITS). */
  limits?: Partial<HttpLimits>;
}

export interface HttpLimits {
  /** A request's headers must arrive within this (slowloris), else 408 and the connection is closed. */
  headersTimeoutMs: number;
  /** A whole request (headers and body) must arrive within this. */
  requestTimeoutMs: number;
  /** A connection with no traffic is closed after this (also the keep-alive timeout). */
  idleTimeoutMs: number;
  /** Open connections in total; more are dropped at once. */
  maxConnections: number;
  /** Open connections from one IP address; more are dropped at once. */
  maxConnectionsPerClient: number;
  /** POST /v1/gossip per client: tokens per second and bucket size (429 with Retry-After beyond). */
  gossipRate: number;
  gossipBurst: number;
  /** POST /v1/gossip proof fetches from logs at once (503 beyond). */
  maxGossipFetches: number;
}

export const DEFAULT_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 65_000,
  maxConnections: 1024,
  maxConnectionsPerClient: 32,
  gossipRate: DEFAULT_GOSSIP_RATE,
  gossipBurst: DEFAULT_GOSSIP_BURST,
  maxGossipFetches: DEFAULT_MAX_GOSSIP_FETCHES,
};

export interface RunningWitness {
  url: string;
  vkey: string;
  /** Every cosigning key's vkey (GET /vkeys). */
  vkeys: string[];
  witness: Witness;
  store: WitnessStore;
  server: Server;
  metrics: Registry;
  ops: HttpOps;
  /** Graceful: new requests get 503 while those in flight (add-checkpoint included) finish; then everything closes. */
  close(): Promise<void>;
}


/** A pino logger for the ops middleware when the caller gave only a `(level, msg)` callback: its lines go there. */
function silentRoot(log: Logger): RootLogger {
  return callbackLogger((m) => (m.startsWith('error: ') ? log('error', m.slice(7)) : m.startsWith('warning: ') ? log('warn', m.slice(9)) : log('info', m)));
}

export const DEFAULT_GOSSIP_INTERVAL_MS = 60_000;
export const DEFAULT_POLL_INTERVAL_MS = 30_000;

export async function startWitness(cfg: WitnessConfig): Promise<RunningWitness> {
  const { host, port } = parseListen(cfg.listen);
  const limits: HttpLimits = { ...DEFAULT_LIMITS, ...cfg.limits };
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) fail('malformed', 'the headers timeout must not exceed the request timeout');
  const log: Logger = cfg.logger ? levelLog(cfg.logger.child({ component: 'witness' })) : cfg.log ?? (() => {});
  const lock = DataDirLock.acquire(cfg.dataDir); // before anything else touches the directory
  let store: WitnessStore | undefined;
  let witness: Witness;
  try {
    store = WitnessStore.open(cfg.dataDir);
    const cosign = cfg.cosign ?? { ed25519: true, mldsa: true };
    const key = loadOrCreateWitnessKey(cfg.keyFile ?? join(cfg.dataDir, 'witness.key'), cfg.name);
    // The ML-DSA key carries the same name (one witness identity, two keys); created from the Ed25519 key's name.
    const pq = cosign.mldsa ? loadOrCreateMlDsaKey(cfg.mldsaKeyFile ?? join(cfg.dataDir, 'witness-mldsa.key'), key.name) : undefined;
    witness = new Witness({
      store,
      name: key.name,
      seed: key.seed,
      maxGossipFetches: limits.maxGossipFetches,
      log,
      cosignEd25519: cosign.ed25519,
      ...(pq !== undefined ? { mldsaSeed: pq.seed, random: () => randomBytes(32) } : {}),
      ...(cfg.now ? { now: cfg.now } : {}),
      ...(cfg.fetch ? { fetch: cfg.fetch } : {}),
      ...(cfg.hooks ? { hooks: cfg.hooks } : {}),
    });
  } catch (e) {
    store?.close();
    lock.release();
    throw e;
  }
  const registry = createRegistry({ processMetrics: cfg.processMetrics === true });
  const metrics = new WitnessMetrics(registry, store);
  const opsLogger = cfg.logger?.child({ component: 'http' });
  const ops = new HttpOps({
    logger: opsLogger ?? silentRoot(log),
    registry,
    readiness: () => {
      const open = store!.isOpen();
      return [
        open ? { name: 'store', ok: true } : { name: 'store', ok: false, detail: 'the store is not open' },
        witness.vkey ? { name: 'key', ok: true } : { name: 'key', ok: false, detail: 'no cosigning key is loaded' },
      ];
    },
    refuseWhileDraining: (req, res) => {
      res.statusCode = 503;
      res.setHeader('Retry-After', '1');
      const json = (req.url ?? '').startsWith('/v1/');
      res.setHeader('Content-Type', json ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8');
      res.end(json ? JSON.stringify({ error: 'overloaded', message: 'the witness is shutting down' }) : 'the witness is shutting down\n');
    },
  });
  const handler = createHandler({
    witness, gossipLimiter: new RateLimiter({ rate: limits.gossipRate, burst: limits.gossipBurst }), before: [ops.middleware], metrics,
  });
  const server = createServer(
    {
      keepAliveTimeout: limits.idleTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // How often Node checks the two timeouts above (its default, 30 s, would make them that coarse).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    handler,
  );
  server.setTimeout(limits.idleTimeoutMs); // a connection silent for this long is closed
  server.maxConnections = limits.maxConnections;
  server.on('drop', (d?: { remoteAddress?: string }) => {
    log('info', `refused a connection from ${d?.remoteAddress ?? 'unknown'}: ${limits.maxConnections} connections open`);
  });
  const perClient = new Map<string, number>();
  server.on('connection', (socket) => {
    const ip = socket.remoteAddress ?? 'unknown';
    const n = (perClient.get(ip) ?? 0) + 1;
    if (n > limits.maxConnectionsPerClient) {
      log('info', `refused a connection from ${ip}: it already has ${n - 1} open (limit ${limits.maxConnectionsPerClient})`);
      socket.destroy();
      return;
    }
    perClient.set(ip, n);
    socket.once('close', () => {
      const left = (perClient.get(ip) ?? 1) - 1;
      if (left <= 0) perClient.delete(ip);
      else perClient.set(ip, left);
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, duplex) => {
    const socket = duplex as Socket;
    // Malformed HTTP, or a timeout (Node answers 408 itself): one line, no stack.
    log('info', `refused a request from ${socket.remoteAddress ?? 'unknown'}: ${err.code ?? 'clientError'}: ${err.message}`);
    if (socket.writable && !socket.destroyed) {
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else {
      socket.destroy();
    }
  });
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
  const loops = startLoops({
    witness,
    pollIntervalMs: cfg.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
    gossipIntervalMs: cfg.gossipIntervalMs ?? DEFAULT_GOSSIP_INTERVAL_MS,
    ...(cfg.fetch ? { fetch: cfg.fetch } : {}),
  });
  const opened = store;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${h}:${addr.port}`,
    vkey: witness.vkey,
    vkeys: witness.vkeys,
    witness,
    store: opened,
    server,
    metrics: registry,
    ops,
    close() {
      closed ??= (async () => {
        await loops.stop();
        await drainServer(server, ops, { ...(cfg.logger ? { logger: cfg.logger } : {}), ...(cfg.drainTimeoutMs !== undefined ? { timeoutMs: cfg.drainTimeoutMs } : {}) });
        opened.close();
        lock.release();
      })();
      return closed;
    },
  };
}
