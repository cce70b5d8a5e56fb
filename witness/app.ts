/**
 * The witness's HTTP interface (express 5), built without listening:
 *   POST /add-checkpoint                     C2SP tlog-witness
 *   GET  /<hex sha256(origin)>/checkpoint    latest cosigned checkpoint (monitoring prefix = submission prefix)
 *   GET  /vkey                               this witness's cosigner verifier key
 *   GET  /v1/history/<hex>?before=<unix s>   newest checkpoint cosigned at or before that time
 *   POST /v1/gossip                          is this signed checkpoint consistent with what you cosigned?
 *   GET  /v1/evidence, /v1/evidence/<id>     fork evidence
 * Error statuses come from the one code table in core/errors.ts (docs/errors.md), whose codes follow tlog-witness:
 * not_found 404, bad_signature/unknown_key 403, out_of_range 400, stale_size 409 (text/x.tlog.size body),
 * invalid_proof and inconsistent 422.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { isPkglogError, fail, httpStatus } from '../core/errors.ts';
import { parseDecimal } from '../core/encoding.ts';
import { MAX_ADD_CHECKPOINT_BODY } from '../core/witness-protocol.ts';
import { MAX_NOTE_SIZE } from '../core/note.ts';
import type { Witness } from './witness.ts';

export interface AppDeps {
  witness: Witness;
}

const TEXT = 'text/plain; charset=utf-8';
const HEX64 = /^[0-9a-f]{64}$/;

function sendText(res: Response, status: number, body: string, type = TEXT): void {
    // setHeader, not res.set/type: express appends a charset to text/* types, and text/x.tlog.size must be exact.
  res.status(status);
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.send(Buffer.from(body, 'utf8'));
}

export function createApp(deps: AppDeps): express.Express {
  const { witness } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  const raw = (limit: number) => express.raw({ type: () => true, limit });

  app.post('/add-checkpoint', raw(MAX_ADD_CHECKPOINT_BODY), async (req: Request, res: Response) => {
    try {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const lines = await witness.addCheckpoint(body);
      sendText(res, 200, lines);
    } catch (e) {
      if (isPkglogError(e, 'stale_size') && typeof e.details?.treeSize === 'number') {
        sendText(res, 409, `${e.details.treeSize}\n`, 'text/x.tlog.size');
        return;
      }
      sendError(res, e, witness);
    }
  });

  app.get('/vkey', (_req, res) => sendText(res, 200, witness.vkey + '\n'));

  app.get('/:hash/checkpoint', (req, res) => {
    const log = lookup(witness, String(req.params.hash));
    const latest = witness.store.latest(log.origin);
    if (latest === undefined) fail('not_found', `no cosigned checkpoint for ${log.origin}`);
    sendText(res, 200, latest.note);
  });

  app.get('/v1/history/:hash', (req, res) => {
    const log = lookup(witness, String(req.params.hash));
    const before = typeof req.query.before === 'string' ? parseDecimal(req.query.before, 'before') : Math.floor(witness.now() / 1000);
    const cp = witness.store.historyBefore(log.origin, before);
    if (cp === undefined) fail('not_found', `no checkpoint of ${log.origin} cosigned at or before ${before}`);
    sendText(res, 200, cp.note);
  });

  app.post('/v1/gossip', raw(MAX_NOTE_SIZE), async (req: Request, res: Response) => {
    try {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const v = await witness.checkCheckpoint(body, `gossip from ${req.ip ?? 'unknown'}`);
      res.status(200).set('Cache-Control', 'no-store').json({
        result: v.result,
        reason: v.reason,
        witnessTreeSize: v.latest?.treeSize ?? null,
        checkpoint: v.latest?.note ?? null,
        ...(v.evidence !== undefined ? { evidence: v.evidence } : {}),
      });
    } catch (e) {
      sendError(res, e, witness);
    }
  });

  app.get('/v1/evidence', (_req, res) => {
    const list = witness.store.listEvidence().map((r) => ({ id: r.id, origin: r.origin, foundAt: r.foundAt, source: r.source, evidence: r.evidence }));
    res.status(200).set('Cache-Control', 'no-store').json({ evidence: list });
  });

  app.get('/v1/evidence/:id', (req, res) => {
    const id = parseDecimal(String(req.params.id), 'evidence id');
    const r = witness.store.getEvidence(id);
    if (r === undefined) fail('not_found', `no evidence #${id}`);
    sendText(res, 200, r.evidence, 'application/json; charset=utf-8');
  });

  app.use((_req: Request, res: Response) => sendText(res, 404, 'not found\n'));
  // Express error handler (4 arguments): body-parser errors and thrown PkglogErrors; never a stack trace.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: unknown })?.status;
    if (!isPkglogError(err) && typeof status === 'number' && status >= 400 && status < 500) {
      sendText(res, status, status === 413 ? 'request body too large\n' : 'bad request\n');
      return;
    }
    sendError(res, err, witness);
  });
  return app;
}

function lookup(witness: Witness, hash: string) {
  if (!HEX64.test(hash)) fail('not_found', 'not a lowercase hex SHA-256 of a log origin');
  const log = witness.store.getLogByHash(hash);
  if (log === undefined) fail('not_found', 'unknown log');
  return log;
}

function sendError(res: Response, e: unknown, witness: Witness): void {
  if (isPkglogError(e)) {
    const status = httpStatus(e.code);
    if (status >= 500) witness.log('error', `internal error: ${e.message}`);
    sendText(res, status, e.message.replace(/\n/g, ' ') + '\n');
    return;
  }
  witness.log('error', `unexpected error: ${(e as Error)?.stack ?? String(e)}`);
  sendText(res, 500, 'internal error\n');
}
