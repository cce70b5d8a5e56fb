/**
 * The witness's HTTP interface (express 5), built without listening:
 *   POST /add-checkpoint                     C2SP tlog-witness
 *   POST /sign-subtree                       C2SP tlog-witness (OPTIONAL): subtree/v1 cosignatures (witness/sign-subtree.ts)
 *   GET  /<hex sha256(origin)>/checkpoint    latest cosigned checkpoint (monitoring prefix = submission prefix)
 *   GET  /vkey                               this witness's cosigner verifier key (the Ed25519 cosignature/v1 one)
 *   GET  /vkeys                              every cosigning key's vkey, one per line (Ed25519, ML-DSA-44)
 *   GET  /v1/history/<hex>?before=<unix s>   newest checkpoint cosigned at or before that time
 *   POST /v1/gossip                          is this signed checkpoint consistent with what you cosigned?
 *   GET  /v1/evidence, /v1/evidence/<id>     fork evidence
 * Error statuses come from the one code table in core/errors.ts (docs/errors.md), whose codes follow tlog-witness:
 * not_found 404, bad_signature/unknown_key 403, out_of_range 400, stale_size 409 (text/x.tlog.size body),
 * invalid_proof and inconsistent 422 (same size, different root: since C2SP/C2SP#280).
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isPkglogError, fail, httpStatus } from '../core/errors.ts';
import { parseDecimal } from '../core/encoding.ts';
import { MAX_ADD_CHECKPOINT_BODY } from '../core/witness-protocol.ts';
import { MAX_NOTE_SIZE } from '../core/note.ts';
import type { Witness } from './witness.ts';
import { witnessSignSubtree } from './sign-subtree.ts';
import { MAX_SIGN_SUBTREE_BODY } from '../core/sign-subtree.ts';
import { RateLimiter } from './rate-limit.ts';
import { rawBody } from './raw-body.ts';
import { requestLog } from '../runtime/http-ops.ts';
import type { WitnessMetrics } from './metrics.ts';

export interface AppDeps {
  witness: Witness;
  /** Per-client limit on POST /v1/gossip (default: DEFAULT_GOSSIP_RATE per second, burst DEFAULT_GOSSIP_BURST). */
  gossipLimiter?: RateLimiter;
  /** Mounted before every route (the ops middleware: request ids, /healthz, /readyz, /metrics, draining). */
  before?: Array<(req: Request, res: Response, next: NextFunction) => void>;
  metrics?: WitnessMetrics;
}

export const DEFAULT_GOSSIP_RATE = 1;
export const DEFAULT_GOSSIP_BURST = 10;

const TEXT = 'text/plain; charset=utf-8';
const HEX64 = /^[0-9a-f]{64}$/;

/** One line, printable, bounded: what a refusal log line may contain of untrusted text. */
function oneLine(s: string, max = 300): string {
  const t = s.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  return t.length > max ? t.slice(0, max) + '…' : t;
}

/** The request's path (no query), on express requests and plain node:http ones (the add-checkpoint fast path). */
const pathOf = (req: IncomingMessage): string => {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
};

/** Is this path one of ours with JSON errors (the /v1/ API), rather than a C2SP path with text bodies? */
const isJsonApi = (req: IncomingMessage): boolean => pathOf(req).startsWith('/v1/');

function clientOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/** A text answer on node:http's own API (so the fast path and the express routes answer byte for byte alike). */
function sendText(res: ServerResponse, status: number, body: string, type = TEXT): void {
  // Exact types: express's res.type would append a charset to text/* types, and text/x.tlog.size must be exact.
  const b = Buffer.from(body, 'utf8');
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', b.length);
  res.end(b);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const b = Buffer.from(JSON.stringify(value), 'utf8');
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', b.length);
  res.end(b);
}

type Refusal = { type?: string; body?: string; retryAfter?: number; publicMessage?: string };

/** The answering side shared by the express app and the add-checkpoint fast path (createHandler). */
function answers(deps: AppDeps) {
  const { witness } = deps;
  const counted = (req: IncomingMessage, outcome: string) => {
    const path = pathOf(req);
    if (path === '/add-checkpoint') deps.metrics?.addCheckpointAnswered(outcome);
    else if (path === '/v1/gossip') deps.metrics?.gossipAnswered(outcome);
  };

  /**
   * Every refusal goes through here: ONE log line (never a stack trace), then the answer — text on the C2SP paths,
   * JSON `{error, message}` on /v1/. A body not read to its end closes the connection (nothing more is read).
   */
  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string, extra: Refusal = {}): void => {
    const level = status >= 500 ? 'error' : 'info';
    counted(req, code);
    const rlog = requestLog(req);
    const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    (rlog ? (l: typeof level, m: string) => rlog[l](m) : witness.log)(level, `refused ${req.method} ${oneLine(url, 200)} from ${clientOf(req)}: ${status} ${code}: ${oneLine(message)}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (!req.complete) res.setHeader('Connection', 'close');
    if (extra.retryAfter !== undefined) res.setHeader('Retry-After', String(extra.retryAfter));
    if (extra.body !== undefined) {
      sendText(res, status, extra.body, extra.type);
    } else if (isJsonApi(req)) {
      sendJson(res, status, { error: code, message: oneLine(extra.publicMessage ?? message, 2000) });
    } else {
      sendText(res, status, oneLine(extra.publicMessage ?? message, 2000) + '\n');
    }
  };

  const sendError = (req: IncomingMessage, res: ServerResponse, e: unknown): void => {
    if (isPkglogError(e)) {
      if (e.code === 'stale_size' && typeof e.details?.treeSize === 'number') {
        refuse(req, res, 409, e.code, e.message, { type: 'text/x.tlog.size', body: `${e.details.treeSize}\n` });
        return;
      }
      refuse(req, res, httpStatus(e.code), e.code, e.message, e.code === 'overloaded' ? { retryAfter: 1 } : {});
      return;
    }
    const status = (e as { status?: unknown; type?: unknown })?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // http-errors style errors from express itself (e.g. a malformed URL encoding): 4xx as they are.
      refuse(req, res, status, status === 413 ? 'too_large' : 'malformed', (e as Error).message || 'bad request');
      return;
    }
    const err = e as Error | undefined;
    refuse(req, res, httpStatus('internal'), 'internal', `unexpected error: ${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`, { publicMessage: 'internal error' });
  };

  /** POST /add-checkpoint once the body is read (req.body): cosign, answer the signature lines. */
  const addCheckpoint = (req: IncomingMessage & { body?: unknown }, res: ServerResponse): void => {
    witness.addCheckpoint(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)).then(
      (lines) => {
        sendText(res, 200, lines);
        counted(req, 'cosigned');
      },
      (e: unknown) => sendError(req, res, e),
    );
  };
  return { counted, refuse, sendError, addCheckpoint };
}

export function createApp(deps: AppDeps): express.Express {
  const { witness } = deps;
  const { counted, refuse, sendError, addCheckpoint } = answers(deps);
  const limiter = deps.gossipLimiter ?? new RateLimiter({ rate: DEFAULT_GOSSIP_RATE, burst: DEFAULT_GOSSIP_BURST });
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  for (const h of deps.before ?? []) app.use(h);

  const raw = rawBody;
  const route = (fn: (req: Request, res: Response) => unknown) => async (req: Request, res: Response) => {
    try {
      await fn(req, res);
    } catch (e) {
      sendError(req, res, e);
    }
  };
  const bodyOf = (req: Request): Buffer => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));

  app.post('/add-checkpoint', raw(MAX_ADD_CHECKPOINT_BODY), (req, res) => addCheckpoint(req, res));

  const signSubtree = witnessSignSubtree(witness);
  app.post(
    '/sign-subtree',
    raw(MAX_SIGN_SUBTREE_BODY),
    route((req, res) => sendText(res, 200, signSubtree(bodyOf(req)))),
  );

  app.get('/vkey', (_req, res) => sendText(res, 200, witness.vkey + '\n'));
  app.get('/vkeys', (_req, res) => sendText(res, 200, witness.vkeys.map((k) => k + '\n').join('')));

  app.get(
    '/:hash/checkpoint',
    route(async (req, res) => {
      const log = lookup(witness, String(req.params.hash));
      const latest = witness.store.latest(log.origin);
      if (latest === undefined) fail('not_found', `no cosigned checkpoint for ${log.origin}`);
      await witness.store.durable(); // a cosignature leaves the process only once it is on disk
      sendText(res, 200, latest.note);
    }),
  );

  app.get(
    '/v1/history/:hash',
    route(async (req, res) => {
      const log = lookup(witness, String(req.params.hash));
      const before = typeof req.query.before === 'string' ? parseDecimal(req.query.before, 'before') : Math.floor(witness.now() / 1000);
      const cp = witness.store.historyBefore(log.origin, before);
      if (cp === undefined) fail('not_found', `no checkpoint of ${log.origin} cosigned at or before ${before}`);
      await witness.store.durable();
      sendText(res, 200, cp.note);
    }),
  );

  // Rate-limited BEFORE the body is read: a flood costs a token-bucket lookup per request, nothing more.
  const gossipLimit = (req: Request, res: Response, next: NextFunction): void => {
    const wait = limiter.take(clientOf(req), witness.now());
    if (wait === 0) return next();
    refuse(req, res, httpStatus('rate_limited'), 'rate_limited', `too many gossip requests from ${clientOf(req)}: at most ${limiter.burst} at once, then ${limiter.rate} per second; retry in ${wait} s`, { retryAfter: wait });
  };

  app.post(
    '/v1/gossip',
    gossipLimit,
    raw(MAX_NOTE_SIZE),
    route(async (req, res) => {
      const v = await witness.checkCheckpoint(bodyOf(req), `gossip from ${clientOf(req)}`, { bounded: true });
      await witness.store.durable(); // the reply carries the latest cosigned checkpoint
      counted(req, v.result);
      res.status(200).set('Cache-Control', 'no-store').json({
        result: v.result,
        reason: v.reason,
        witnessTreeSize: v.latest?.treeSize ?? null,
        checkpoint: v.latest?.note ?? null,
        ...(v.evidence !== undefined ? { evidence: v.evidence } : {}),
      });
    }),
  );

  app.get('/v1/evidence', (_req, res) => {
    const list = witness.store.listEvidence().map((r) => ({ id: r.id, origin: r.origin, foundAt: r.foundAt, source: r.source, evidence: r.evidence }));
    res.status(200).set('Cache-Control', 'no-store').json({ evidence: list });
  });

  app.get(
    '/v1/evidence/:id',
    route((req, res) => {
      const id = parseDecimal(String(req.params.id), 'evidence id');
      const r = witness.store.getEvidence(id);
      if (r === undefined) fail('not_found', `no evidence #${id}`);
      sendText(res, 200, r.evidence, 'application/json; charset=utf-8');
    }),
  );

  app.use((req: Request, res: Response) => refuse(req, res, 404, 'not_found', 'not found'));
  // Express error handler (4 arguments): body-parser errors and anything thrown outside a route.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => sendError(req, res, err));
  return app;
}

/**
 * The witness's node:http request handler: POST /add-checkpoint — the hot path — is answered without express (its
 * routing costs about as much as the rest of a request), through the same `before` middleware, body reader and
 * answers as the express route; every other request goes to createApp's app.
 */
export function createHandler(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const app = createApp(deps);
  const { sendError, addCheckpoint } = answers(deps);
  const before = deps.before ?? [];
  const read = rawBody(MAX_ADD_CHECKPOINT_BODY);
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== '/add-checkpoint') {
      app(req, res);
      return;
    }
    const step = (i: number) => (err?: unknown): void => {
      if (err !== undefined) return sendError(req, res, err);
      if (i < before.length) return before[i]!(req as Request, res as Response, step(i + 1));
      read(req, res, (e?: unknown) => (e !== undefined ? sendError(req, res, e) : addCheckpoint(req, res)));
    };
    step(0)();
  };
}

function lookup(witness: Witness, hash: string) {
  if (!HEX64.test(hash)) fail('not_found', 'not a lowercase hex SHA-256 of a log origin');
  const log = witness.store.getLogByHash(hash);
  if (log === undefined) fail('not_found', 'unknown log');
  return log;
}
