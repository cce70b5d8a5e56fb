/**
 * The package index's HTTP routes (docs/http-api.md, "The log"; docs/index-format.md): proof bundles under /v1/index/,
 * and the output log (checkpoint with cosignatures, tlog-tiles tiles, vkey) under /v1/index/log/. Registered on every
 * log app; a log without an index answers them 404 not_found. `log`, `sha256` and `publisher` are therefore not
 * queryable as ecosystem names here (no ecosystem uses them).
 */
import type express from 'express';
import type { Request, Response } from 'express';
import { fail } from '../core/errors.ts';
import { parseTilePath, tileWidth, formatEntryBundle } from '../core/tiles.ts';
import { parseIndexCursor, type IndexCursor } from '../core/index-bundle.ts';
import { publisherQuery, type IndexQuery } from '../core/index-keys.ts';
import type { Indexer } from './indexer.ts';
import type { IndexStore } from '../log-store/index-store.ts';

export interface IndexService {
  indexer: Indexer;
  store: IndexStore;
  /** The output log's verifier key (`<origin>/index+<id>+<key>`). */
  vkey: string;
}

type Handler = (req: Request, res: Response) => unknown | Promise<unknown>;

const IMMUTABLE = 'public, max-age=31536000, immutable';
const SHORT_LIVED = 'no-cache, max-age=1';
const BASE64URL_KEY = /^[A-Za-z0-9_-]{43}$/;

function cursorOf(req: Request): IndexCursor | undefined {
  const c = req.query.cursor;
  if (c === undefined) return undefined;
  if (typeof c !== 'string') fail('malformed', 'query parameter cursor must be given once, as "<revision>.<page>"');
  return parseIndexCursor(c);
}

/** A publisher key in a URL: base64url without padding (43 characters for 32 bytes). */
export function publisherFromUrl(s: string): IndexQuery {
  if (!BASE64URL_KEY.test(s)) fail('malformed', 'publisher key must be 32 bytes in base64url without padding (43 characters of A-Z a-z 0-9 - _)');
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '=';
  return publisherQuery(b64);
}

export function addIndexRoutes(app: express.Express, index: () => IndexService | undefined, route: (h: Handler) => express.RequestHandler): void {
  const need = (): IndexService => {
    const s = index();
    if (s === undefined) fail('not_found', 'this log has no package index (pkglog serve --index)');
    return s;
  };
  const sendBundle = async (req: Request, res: Response, q: IndexQuery) => {
    const s = need();
    const text = await s.indexer.bundle(q, cursorOf(req));
    res.set('Cache-Control', SHORT_LIVED).type('application/json; charset=utf-8').send(text);
  };

  // The output log first: its paths would otherwise match /v1/index/:ecosystem/:name.
  app.get('/v1/index/log/checkpoint', route(async (_req, res) => {
    const s = need();
    const head = await s.indexer.currentHead();
    if (head === undefined) fail('not_found', 'the index has no revision yet');
    res.set('Cache-Control', SHORT_LIVED).type('text/plain; charset=utf-8').send(await s.indexer.noteWithCosignatures(head.revisions));
  }));

  app.get('/v1/index/log/vkey', route((_req, res) => {
    res.type('text/plain; charset=utf-8').send(need().vkey + '\n');
  }));

  app.get(/^\/v1\/index\/log\/tile\/(.+)$/, route(async (req, res) => {
    const s = need();
    const tile = parseTilePath(req.path.slice('/v1/index/log/'.length));
    const size = (await s.indexer.currentHead())?.revisions ?? 0;
    if (tileWidth(tile.level, tile.index, size) < tile.width) fail('not_found', `${req.path} is beyond the index log`);
    let data: Buffer;
    if (tile.level === -1) {
      data = formatEntryBundle(await s.store.revisionLeaves(tile.index * 256, tile.index * 256 + tile.width));
    } else {
      data = (await s.store.readTiles([tile])).get(`${tile.level}/${tile.index}`)!;
    }
    res.set('Cache-Control', IMMUTABLE).type('application/octet-stream').send(data);
  }));

  app.get('/v1/index/sha256/:hex', route((req, res) => sendBundle(req, res, { kind: 'sha256', sha256: String(req.params.hex) })));

  app.get('/v1/index/publisher/:key', route((req, res) => sendBundle(req, res, publisherFromUrl(String(req.params.key)))));

  app.get(['/v1/index/:ecosystem/:name', '/v1/index/:ecosystem/:name/:version', '/v1/index/:ecosystem/:name/:version/:filename'], route((req, res) => {
    const { ecosystem, name, version, filename } = req.params as Record<string, string | undefined>;
    const q: IndexQuery = version === undefined
      ? { kind: 'package', ecosystem: ecosystem!, name: name! }
      : filename === undefined
        ? { kind: 'version', ecosystem: ecosystem!, name: name!, version }
        : { kind: 'file', ecosystem: ecosystem!, name: name!, version, filename };
    return sendBundle(req, res, q);
  }));
}
