/**
 * What every pkglog HTTP service (log and witness) does before its own routes, as one connect-style middleware:
 *   - a request id per request (the client's X-Request-Id when well-formed, else generated), echoed in the response's
 *     X-Request-Id header, and a child logger carrying it (requestLog(req));
 *   - GET /healthz (200 while the process runs), GET /readyz (200 when every readiness check passes, else 503 with the
 *     failing checks), GET /metrics (Prometheus text format, the app's own registry);
 *   - counting requests in flight, so a graceful shutdown can wait for them (drain());
 *   - while draining: every new request is answered 503 (Connection: close), responses still in flight close their
 *     connection when done.
 * docs/operations.md ("Health", "Shutdown") and docs/http-api.md.
 */
import type { IncomingMessage, ServerResponse, Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Counter, METRICS_CONTENT_TYPE, type Registry } from './metrics.ts';
import { REQUEST_ID_HEADER, requestId, type Logger } from './logger.ts';

export interface ReadyCheck {
  name: string;
  ok: boolean;
  /** Why not (only when !ok). */
  detail?: string;
}

export interface OpsOptions {
  logger: Logger;
  registry: Registry;
  /** The readiness checks, evaluated on every GET /readyz (cheap: in-memory state and one indexed read). */
  readiness: () => ReadyCheck[] | Promise<ReadyCheck[]>;
  /** The answer to a request that arrives while draining (default: 503 JSON overloaded). */
  refuseWhileDraining?: (req: IncomingMessage, res: ServerResponse) => void;
}

type Next = (err?: unknown) => void;

/** Per request: its id and the logger it is made from; the child logger is made on first use (most requests log nothing). */
const LOGGERS = new WeakMap<IncomingMessage, { root: Logger; reqId: string; log?: Logger }>();

/** The request's logger (with its reqId), or undefined for a request the ops middleware did not see. */
export function requestLog(req: IncomingMessage): Logger | undefined {
  const r = LOGGERS.get(req);
  if (r === undefined) return undefined;
  r.log ??= r.root.child({ reqId: r.reqId });
  return r.log;
}

/** One line of untrusted text for a log line: no control characters, bounded. */
export function logText(s: string, max = 300): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\x00-\x1f\x7f]/g, '?');
  return clean.length > max ? clean.slice(0, max) + '…' : clean;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);

function sendJson(res: ServerResponse, status: number, value: unknown, extra: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

export class HttpOps {
  private readonly o: OpsOptions;
  private readonly active = new Set<ServerResponse>();
  private draining = false;
  private idleWaiters: Array<() => void> = [];
  private readonly requests: Counter<'method' | 'code'>;
  /** performance.now() of the newest request. */
  private lastRequestAt = 0;

  constructor(o: OpsOptions) {
    this.o = o;
    this.requests = new Counter({
      name: 'pkglog_http_requests_total',
      help: 'HTTP requests answered, by method and status code',
      labelNames: ['method', 'code'],
      registers: [o.registry],
    });
  }

  /** Requests whose response has not finished yet. */
  get inFlight(): number {
    return this.active.size;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Milliseconds since the newest request arrived. */
  get quietMs(): number {
    return performance.now() - this.lastRequestAt;
  }

  /** The readiness verdict (draining counts as not ready). */
  async readiness(): Promise<{ ready: boolean; checks: ReadyCheck[] }> {
    const checks = [...await this.o.readiness(), ...(this.draining ? [{ name: 'shutdown', ok: false, detail: 'the process is shutting down' }] : [])];
    return { ready: checks.every((c) => c.ok), checks };
  }

  /** The middleware: mount it before every route. */
  readonly middleware = (req: IncomingMessage, res: ServerResponse, next: Next): void => {
    const id = requestId(req.headers['x-request-id']);
    LOGGERS.set(req, { root: this.o.logger, reqId: id });
    const log = (): Logger => requestLog(req)!;
    res.setHeader(REQUEST_ID_HEADER, id);
    const started = performance.now();
    this.lastRequestAt = started;
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0]!;
    this.active.add(res);
    res.once('close', () => {
      this.active.delete(res);
      this.requests.inc({ method: METHODS.has(method) ? method : 'OTHER', code: String(res.statusCode) });
      if (this.o.logger.isLevelEnabled('debug')) {
        log().debug({ method, url: logText(req.url ?? '/', 200), status: res.statusCode, ms: Math.round(performance.now() - started), finished: res.writableFinished }, 'request');
      }
      if (this.active.size === 0) this.wakeIdle();
    });
    if (this.draining) res.setHeader('Connection', 'close');
    if (method === 'GET' || method === 'HEAD') {
      if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
      if (path === '/readyz') {
        this.readiness().then((r) => sendJson(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', checks: r.checks }), (e: unknown) => {
          log().error({ err: e }, 'readiness checks failed');
          sendJson(res, 503, { status: 'not ready', checks: [{ name: 'readiness', ok: false, detail: 'the readiness checks failed' }] });
        });
        return;
      }
      if (path === '/metrics') {
        this.o.registry.metrics().then((text) => {
          res.statusCode = 200;
          res.setHeader('Content-Type', METRICS_CONTENT_TYPE);
          res.setHeader('Cache-Control', 'no-store');
          res.end(text);
        }, (e: unknown) => {
          log().error({ err: e }, 'collecting metrics failed');
          sendJson(res, 500, { error: 'internal', message: 'internal error' });
        });
        return;
      }
    }
    if (this.draining) {
      if (this.o.refuseWhileDraining) return this.o.refuseWhileDraining(req, res);
      return sendJson(res, 503, { error: 'overloaded', message: 'the server is shutting down; retry on another instance or after it restarts' }, { 'Retry-After': '1' });
    }
    next();
  };

  /** Starts draining: new requests get 503, responses in flight close their connections once sent. */
  startDrain(): void {
    if (this.draining) return;
    this.draining = true;
    for (const res of this.active) if (!res.headersSent) res.setHeader('Connection', 'close');
  }

  /** Resolves once no request is in flight. */
  idle(): Promise<void> {
    if (this.active.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }
}

export interface DrainOptions {
  /** Give up waiting for requests in flight after this long (default 60 s), then close every connection. */
  timeoutMs?: number;
  /**
   * When requests keep arriving during the drain, the listener closes only once none arrived for quietMs (default
   * 300 ms; each gets its 503), waiting for that at most maxQuietWaitMs (default 1 s) after the last one in flight.
   */
  quietMs?: number;
  maxQuietWaitMs?: number;
  logger?: Logger;
  /** Runs once the requests in flight are answered, before the connections are closed (e.g. a final flush). */
  beforeClose?: () => Promise<void> | void;
}

/**
 * The graceful end of an HTTP server: new requests are answered 503 while every request in flight completes (the
 * listener stays open meanwhile, so a client that connects during the drain gets an answer, not a refused
 * connection); then the listener and every connection are closed. Idle keep-alive connections are closed as soon as
 * they are idle.
 */
export async function drainServer(server: Server, ops: HttpOps, opts: DrainOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const quietMs = opts.quietMs ?? 300;
  const maxQuietWaitMs = opts.maxQuietWaitMs ?? 1000;
  const drainStartedAt = performance.now();
  const deadline = drainStartedAt + timeoutMs;
  ops.startDrain();
  // No closeIdleConnections() during the drain: to Node a connection just accepted, whose request is still on its way,
  // is idle too, and closing it would reset a client that gets its 503 otherwise. Every response from now on closes its
  // connection (Connection: close); idle keep-alive connections are closed at the end.
  const settled = async (): Promise<boolean> => {
    // Every request in flight answered, and none arrived for quietMs (a client whose request was on its way when the
    // drain began gets its 503 instead of a closed connection) — waiting for quiet at most a second, since steady
    // traffic (a peer polling every 100 ms) would never let it come.
    let quietUntil: number | undefined;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const idle = await Promise.race([ops.idle().then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), left)))]);
      clearTimeout(timer);
      if (!idle) return false;
      quietUntil ??= performance.now() + maxQuietWaitMs;
      // No request since the drain began: nobody is still sending, nothing to wait for.
      if (performance.now() - ops.quietMs < drainStartedAt) return true;
      const wait = quietMs - ops.quietMs;
      if ((wait <= 0 || performance.now() >= quietUntil) && ops.inFlight === 0) return true;
      await new Promise((r) => setTimeout(r, Math.max(10, Math.min(wait, quietUntil! - performance.now(), deadline - performance.now()))));
    }
  };
  try {
    if (!(await settled())) opts.logger?.warn(`shutdown: ${ops.inFlight} request(s) still in flight after ${timeoutMs} ms; closing their connections`);
    await opts.beforeClose?.();
  } finally {
    // Stop listening; connections left are idle keep-alive ones or one whose request is just arriving (answered 503
    // and closed): give those a moment to end by themselves, then close whatever remains.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, Math.min(1000, Math.max(100, deadline - performance.now())))))]);
    clearTimeout(timer);
    server.closeAllConnections();
    await closed;
  }
}
