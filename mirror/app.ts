/**
 * The mirror's HTTP interface (express 5), built without listening. Submission prefix = monitoring prefix = the root:
 *   POST /add-checkpoint                          C2SP tlog-mirror (the witness's request; updates the pending checkpoint)
 *   POST /add-entries                             C2SP tlog-mirror entry packages (gzip accepted), streamed
 *   POST /sign-subtree                            C2SP tlog-mirror/tlog-witness (OPTIONAL): subtree/v1 by the ML-DSA-44 key
 *   GET  /<hex sha256(origin)>/checkpoint         the mirror checkpoint: the log's signature(s) + the mirror's cosignature
 *   GET  /<hex sha256(origin)>/tile/<L>/<N>[.p/<W>], …/tile/entries/<N>[.p/<W>]   C2SP tlog-tiles of the copy
 *   GET  /vkey, /vkeys                            the mirror's cosigner verifier key(s)
 * Errors use the one code table (core/errors.ts): 404 unknown origin, 403 bad log signature, 400 malformed, 413 too
 * large, 409 stale_size (add-checkpoint: text/x.tlog.size; add-entries: text/x.tlog.mirror-info), 422 invalid_proof,
 * inconsistent and no_checkpoint; 202 with mirror-info for a prefix. Text bodies on every path (C2SP paths only).
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { isPkglogError, fail, httpStatus, PkglogError } from '../core/errors.ts';
import { MAX_ADD_CHECKPOINT_BODY } from '../core/witness-protocol.ts';
import { parseTilePath } from '../core/tiles.ts';
import { HASH_SIZE } from '../core/hash.ts';
import { formatMirrorInfo, MAX_PACKAGE_HASHES, MIRROR_INFO_CONTENT_TYPE, packageCount, packageRange, parseAddEntriesHeader, type MirrorInfo } from '../core/tlog-mirror.ts';
import { answerSignSubtree, subtreeCosigner, MAX_SIGN_SUBTREE_BODY, type SignSubtreeCosigner } from '../core/sign-subtree.ts';
import { requestLog, logText } from '../runtime/http-ops.ts';
import { BodyReader, decodedBody } from './body.ts';
import type { Mirror, EntryPackage } from './mirror.ts';

export interface AppDeps {
  mirror: Mirror;
  /** Mounted before every route (the ops middleware: request ids, /healthz, /readyz, /metrics, draining). */
  before?: Array<(req: Request, res: Response, next: NextFunction) => void>;
  /** Packages one add-entries request may carry before the mirror answers 202 (default MAX_PACKAGES_PER_REQUEST). */
  maxPackagesPerRequest?: number;
}

/** Packages processed per add-entries request; more get a 202 and the client continues (the spec's clients send ≤ 32). */
export const MAX_PACKAGES_PER_REQUEST = 64;
/** Decompressed add-entries bytes per request: 64 packages of pkglog-sized entries fit many times over. */
export const MAX_ADD_ENTRIES_BODY = 256 * 1024 * 1024;

const TEXT = 'text/plain; charset=utf-8';
const HEX64 = /^[0-9a-f]{64}$/;

function sendText(res: Response, status: number, body: string | Buffer, type = TEXT, cache = 'no-store'): void {
  res.status(status);
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', cache);
  res.send(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
}

export function createApp(deps: AppDeps): express.Express {
  const { mirror } = deps;
  const maxPackages = deps.maxPackagesPerRequest ?? MAX_PACKAGES_PER_REQUEST;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  for (const h of deps.before ?? []) app.use(h);

  const refuse = (req: Request, res: Response, status: number, code: string, message: string, extra: { type?: string; body?: string } = {}): void => {
    const rlog = requestLog(req);
    const line = `refused ${req.method} ${logText(req.originalUrl, 200)} from ${req.socket.remoteAddress ?? 'unknown'}: ${status} ${code}: ${logText(message)}`;
    if (rlog) (status >= 500 ? rlog.error(line) : rlog.info(line));
    else mirror.log(status >= 500 ? 'error' : 'info', line);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A body not read to its end: close the connection (nothing more of it is read).
    if (!req.complete) res.setHeader('Connection', 'close');
    if (status === 503) res.setHeader('Retry-After', '1');
    sendText(res, status, extra.body ?? logText(message, 2000) + '\n', extra.type);
  };

  const sendError = (req: Request, res: Response, e: unknown): void => {
    if (isPkglogError(e)) {
      const info = e.details?.mirrorInfo as MirrorInfo | undefined;
      if (e.code === 'stale_size' && info !== undefined) return refuse(req, res, 409, e.code, e.message, { type: MIRROR_INFO_CONTENT_TYPE, body: formatMirrorInfo(info) });
      if (e.code === 'stale_size' && typeof e.details?.treeSize === 'number') return refuse(req, res, 409, e.code, e.message, { type: 'text/x.tlog.size', body: `${e.details.treeSize}\n` });
      return refuse(req, res, httpStatus(e.code), e.code, e.message);
    }
    const status = (e as { status?: unknown })?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) return refuse(req, res, status, status === 413 ? 'too_large' : 'malformed', (e as Error).message || 'bad request');
    const err = e as Error | undefined;
    refuse(req, res, 500, 'internal', `unexpected error: ${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`, { body: 'internal error\n' });
  };

  const route = (fn: (req: Request, res: Response) => unknown) => async (req: Request, res: Response) => {
    try {
      await fn(req, res);
    } catch (e) {
      sendError(req, res, e);
    }
  };

  app.post(
    '/add-checkpoint',
    route(async (req, res) => {
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > MAX_ADD_CHECKPOINT_BODY) fail('too_large', `the request body declares ${declared} bytes; the limit is ${MAX_ADD_CHECKPOINT_BODY}`);
      const body = await new BodyReader(decodedBody(req), MAX_ADD_CHECKPOINT_BODY).rest();
      mirror.addCheckpoint(body);
      sendText(res, 200, '');
    }),
  );

  app.post(
    '/add-entries',
    route(async (req, res) => {
      res.setHeader('Accept-Encoding', 'gzip');
      const reader = new BodyReader(decodedBody(req), MAX_ADD_ENTRIES_BODY);
      // The header: origin, upload_start, upload_end, ticket (checked before any package is read).
      let need = 2;
      let parsed: ReturnType<typeof parseAddEntriesHeader>;
      for (;;) {
        if (!(await reader.fill(need))) fail('malformed', 'the request body ends inside the add-entries header');
        const head = reader.peek(need);
        parsed = parseAddEntriesHeader(head);
        if (parsed !== undefined) break;
        const on = head.readUInt16BE(0);
        need = need === 2 ? 2 + on + 18 : 2 + on + 18 + head.readUInt16BE(2 + on + 16);
      }
      await reader.take(parsed.length);
      const { origin, uploadStart, uploadEnd } = parsed.header;
      const { log, target } = mirror.checkUpload(origin, uploadStart, uploadEnd);
      await mirror.ensureEdge(log, target); // a minimum index: the tiles straddling it, from the log, once
      const count = packageCount(uploadStart, uploadEnd);
      let saved = 0;
      for (let i = 0; i < count && saved < maxPackages; i++) {
        const pkg = await readPackage(reader, packageRange(uploadStart, uploadEnd, i));
        if (pkg === undefined) break; // the body ended (or broke off) inside this package: what came before stands
        mirror.ingest(log.id, target, [pkg]);
        saved++;
      }
      if (saved < count) {
        if (saved === 0) fail('malformed', count === 0 ? 'empty upload' : 'the request body holds no complete entry package');
        res.setHeader('Connection', 'close');
        sendText(res, 202, formatMirrorInfo(mirror.info(log, uploadEnd)), MIRROR_INFO_CONTENT_TYPE);
        return;
      }
      const fresh = mirror.store.getLogById(log.id)!;
      if (fresh.nextEntry < uploadEnd) {
        // An empty canonical sequence while entries are missing: tell the client where to start.
        return sendError(req, res, new PkglogError('stale_size', `entries from ${fresh.nextEntry} are missing below upload_end ${uploadEnd}`, { mirrorInfo: mirror.info(log, uploadEnd) }));
      }
      sendText(res, 200, mirror.finish(log.id, target));
    }),
  );

  // tlog-mirror sign-subtree (OPTIONAL): a subtree of a checkpoint the mirror cosigned, signed by its ML-DSA-44 key.
  let subtree: SignSubtreeCosigner | undefined;
  app.post(
    '/sign-subtree',
    route(async (req, res) => {
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > MAX_SIGN_SUBTREE_BODY) fail('too_large', `the request body declares ${declared} bytes; the limit is ${MAX_SIGN_SUBTREE_BODY}`);
      const body = await new BodyReader(decodedBody(req), MAX_SIGN_SUBTREE_BODY).rest();
      subtree ??= subtreeCosigner(mirror.signers, (origin) => mirror.store.getLog(origin) !== undefined);
      sendText(res, 200, answerSignSubtree(body, subtree).lines);
    }),
  );

  app.get('/vkey', (_req, res) => sendText(res, 200, mirror.vkey + '\n'));
  app.get('/vkeys', (_req, res) => sendText(res, 200, mirror.vkeys.map((k) => k + '\n').join('')));

  // The monitoring prefix of each log: <hex>/checkpoint and <hex>/tile/…
  app.use(
    route((req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') fail('not_found', 'not found');
      const m = /^\/([^/]+)\/(.+)$/.exec(req.path);
      if (m === null || !HEX64.test(m[1]!)) fail('not_found', 'not found');
      const log = mirror.store.getLogByHash(m[1]!);
      if (log === undefined) fail('not_found', 'unknown log');
      if (m[2] === 'checkpoint') {
        const cp = mirror.store.mirrorCheckpoint(log.id);
        if (cp === undefined) fail('not_found', `no mirror checkpoint of ${log.origin} yet`);
        return sendText(res, 200, cp.note);
      }
      let tile;
      try {
        tile = parseTilePath(m[2]!);
      } catch {
        return fail('not_found', 'not found');
      }
      if (mirror.pruned(log, tile)) fail('not_found', `pruned: this mirror keeps ${log.origin} from the minimum index ${log.minIndex} on`);
      const data = mirror.servedTile(log, tile);
      if (data === undefined) fail('not_found', 'beyond the mirror checkpoint');
      sendText(res, 200, data, 'application/octet-stream', 'public, max-age=31536000, immutable');
    }),
  );
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => sendError(req, res, err));
  return app;
}

/** One entry package of `range` from the body, or undefined when the body ends (or is malformed) inside it. */
async function readPackage(reader: BodyReader, range: { subtreeStart: number; start: number; end: number }): Promise<EntryPackage | undefined> {
  const entries: Buffer[] = [];
  for (let i = range.start; i < range.end; i++) {
    const len = await reader.take(2);
    if (len === undefined) return undefined;
    const e = await reader.take(len.readUInt16BE(0));
    if (e === undefined) return undefined;
    entries.push(e);
  }
  const nh = await reader.take(1);
  if (nh === undefined || nh[0]! > MAX_PACKAGE_HASHES) return undefined;
  const hashes = await reader.take(nh[0]! * HASH_SIZE);
  if (hashes === undefined) return undefined;
  const proof = Array.from({ length: nh[0]! }, (_, i) => hashes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
  return { range, entries, proof };
}

