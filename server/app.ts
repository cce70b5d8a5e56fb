/**
 * The log's HTTP service: submissions, the C2SP tlog-tiles read API, and JSON conveniences.
 * createApp builds the express app without listening; main.ts composes config, store, keys and listen.
 */
import { gzipSync } from 'node:zlib';
import express, { type Request, type Response } from 'express';
import { fail, PkglogError } from '../core/errors.ts';
import { decodeBase64, decodeHex, encodeBase64, parseDecimal } from '../core/encoding.ts';
import { decodeLeaf, formatEntryJSON, parseSubmission, verifySubmissionSignatures, type Submission } from '../core/entry.ts';
import { leafHash } from '../core/hash.ts';
import { formatEntryBundle, parseTilePath, tileWidth } from '../core/tiles.ts';
import { formatTlogProof } from '../core/tlog-proof.ts';
import { MAX_PAGE, type Store } from '../log-store/types.ts';
import { errorMiddleware, errorResponse, sendError } from './http-errors.ts';
import { jsonBody } from './json-body.ts';
import { Quotas } from './quotas.ts';
import { allowsEcosystem, type Registries, type RegistryConfig } from './registries.ts';
import type { Sequenced, Sequencer } from './sequencer.ts';
import { TreeReader } from './tree-reader.ts';
import type { VerifyPool } from './verify-pool.ts';
import { CheckpointView } from './checkpoint-view.ts';
import { EXPLORER_CSP, type ExplorerAsset } from './explorer.ts';
import { addIndexRoutes, type IndexService } from './index-routes.ts';

export const MAX_BODY = 64 * 1024;
export const MAX_BATCH_BODY = 4 * 1024 * 1024;
export const MAX_BATCH_ENTRIES = 1000;
/** Structural tokens (values and members) a body may hold: a submission has about 20. */
const MAX_TOKENS = 64;
const IMMUTABLE = 'public, max-age=31536000, immutable';
const SHORT_LIVED = 'no-cache, max-age=1';

export interface AppDeps {
  store: Store;
  sequencer: Pick<Sequencer, 'submit'>;
  registries: () => Registries;
  vkey: string;
  /** Every key the log signs checkpoints with (default [vkey]): Ed25519, then ML-DSA-44. */
  vkeys?: string[];
  checkpoints: CheckpointView;
  reader?: TreeReader;
  /** Verifies submission signatures on worker threads (else on the event loop). */
  verifyPool?: VerifyPool;
  log?: (msg: string) => void;
  /** The clock of the per-registry quotas (default Date.now). */
  now?: () => number;
  /** Mounted before every route (the ops middleware: request ids, /healthz, /readyz, /metrics, draining). */
  before?: Array<(req: Request, res: Response, next: (err?: unknown) => void) => void>;
  /** The tlog-policy text this log publishes about itself (GET /v1/policy). */
  policy?: string;
  /** The web explorer's files (server/explorer.ts), served at / and /explorer/*. */
  explorer?: Map<string, ExplorerAsset>;
  /** Every answered submission (a batch entry counts as one): its submitted registry name and `logged` or the error code. */
  onSubmission?: (registryName: unknown, outcome: string) => void;
  /** The package index (pkglog serve --index), answering /v1/index/… (server/index-routes.ts). */
  index?: IndexService;
}

type Handler = (req: Request, res: Response) => unknown | Promise<unknown>;

export function createApp(deps: AppDeps): express.Express {
  const { store, sequencer } = deps;
  const reader = deps.reader ?? new TreeReader(store);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  for (const h of deps.before ?? []) app.use(h);

  const route = (h: Handler) => async (req: Request, res: Response) => {
    try {
      await h(req, res);
    } catch (e) {
      sendError(res, e, deps.log, req);
    }
  };
  const quotas = new Quotas(deps.now);
  const counted = deps.onSubmission ?? (() => {});
  const registryOf = (body: unknown): unknown => (body as { registry?: { name?: unknown } } | null)?.registry?.name;

  /** Parses and authorizes one submission, before any costly work (throws 400, 403 unknown_key or wrong_ecosystem). */
  const authorize = (body: unknown): { s: Submission; registry: RegistryConfig } => {
    const s = parseSubmission(body);
    const registry = deps.registries().get(s.registryName);
    if (registry === undefined) fail('unknown_key', `registry ${JSON.stringify(s.registryName)} is not allowed to submit to this log`);
    if (!allowsEcosystem(registry, s.ecosystem)) {
      fail('wrong_ecosystem', `registry ${s.registryName} may not submit ${JSON.stringify(s.ecosystem)} entries (it is bound to ${[...(registry.ecosystems as Set<string>)].join(', ')})`);
    }
    return { s, registry };
  };

  /** Checks the signatures (throws 403 bad_signature), on the worker pool when there is one. */
  const verify = async ({ s, registry }: { s: Submission; registry: RegistryConfig }): Promise<Submission> => {
    if (deps.verifyPool) await deps.verifyPool.verify(s, registry.publicKey);
    else verifySubmissionSignatures(s, registry.publicKey);
    return s;
  };

  /** The reply for a sequenced entry: its proof against the checkpoint that first included it (with cosignatures). */
  const reply = async (r: Sequenced) => {
    const note = await deps.checkpoints.forReply(r.treeSize, r.index);
    return {
      index: r.index,
      leafHash: encodeBase64(r.leafHash),
      integratedTime: r.entry.integratedTime,
      entry: encodeBase64(r.leaf),
      proof: formatTlogProof({ extra: r.leaf, index: r.index, inclusionProof: await reader.inclusionProof(r.index, note.treeSize), checkpoint: note.note }),
      ...(note.cosigned ? {} : { cosigned: false }),
      ...(r.existing ? { existing: true } : {}),
    };
  };

  app.post('/v1/entries', jsonBody({ maxBytes: MAX_BODY, maxTokens: MAX_TOKENS }), route(async (req, res) => {
    try {
      const a = authorize(req.body);
      quotas.take(a.registry.name, a.registry, 1);
      sendJson(res, await reply(await sequencer.submit(await verify(a))));
      counted(a.registry.name, 'logged');
    } catch (e) {
      counted(registryOf(req.body), errorResponse(e).body.error);
      throw e;
    }
  }));

  app.post('/v1/entries/batch', jsonBody({ maxBytes: MAX_BATCH_BODY, maxTokens: MAX_TOKENS * MAX_BATCH_ENTRIES + 8 }), route(async (req, res) => {
    const list = (req.body as { entries?: unknown })?.entries;
    if (!Array.isArray(list) || list.length === 0) fail('malformed', 'body must be {"entries": [ … ]} with at least one entry');
    if (list.length > MAX_BATCH_ENTRIES) fail('too_large', `at most ${MAX_BATCH_ENTRIES} entries per batch`);
    // Every entry is parsed and authorized, and the quotas taken (each entry counts), before any signature is checked.
    const items: Array<{ ok: ReturnType<typeof authorize> } | { err: unknown }> = list.map((item) => {
      try {
        return { ok: authorize(item) };
      } catch (e) {
        return { err: e };
      }
    });
    const perRegistry = new Map<string, { registry: RegistryConfig; count: number; refused?: unknown }>();
    for (const it of items) {
      if (!('ok' in it)) continue;
      const g = perRegistry.get(it.ok.registry.name) ?? { registry: it.ok.registry, count: 0 };
      g.count++;
      perRegistry.set(g.registry.name, g);
    }
    for (const g of perRegistry.values()) {
      try {
        quotas.take(g.registry.name, g.registry, g.count);
      } catch (e) {
        g.refused = e;
      }
    }
    const refusals = [...perRegistry.values()].filter((g) => g.refused !== undefined);
    if (refusals.length > 0 && refusals.length === perRegistry.size && refusals.some((g) => (g.refused as PkglogError).code === 'rate_limited')) {
      const e = refusals.find((g) => (g.refused as PkglogError).code === 'rate_limited')!.refused;
      for (const item of list) counted(registryOf(item), 'rate_limited');
      throw e; // nothing of the batch fits: 429
    }
    const refused: Record<string, number> = {};
    const results = await Promise.all(items.map(async (it, i) => {
      try {
        if ('err' in it) throw it.err;
        const over = perRegistry.get(it.ok.registry.name)!.refused;
        if (over !== undefined) throw over;
        const r = await reply(await sequencer.submit(await verify(it.ok)));
        counted(it.ok.registry.name, 'logged');
        return r;
      } catch (e) {
        const { status, body } = errorResponse(e);
        counted('ok' in it ? it.ok.registry.name : registryOf(list[i]), body.error);
        refused[body.error] = (refused[body.error] ?? 0) + 1;
        return { ...body, status };
      }
    }));
    const retryAfter = Math.max(0, ...refusals.map((g) => Number((g.refused as PkglogError).details?.retryAfter ?? 0)));
    if (retryAfter > 0) res.set('Retry-After', String(retryAfter));
    const counts = Object.entries(refused);
    if (counts.length > 0) {
      deps.log?.(`batch POST /v1/entries/batch: 200, ${counts.reduce((n, [, c]) => n + c, 0)} of ${list.length} entries refused (${counts.map(([k, c]) => `${k} ${c}`).join(', ')})`);
    }
    sendJson(res, { results });
  }));

  app.get('/checkpoint', route(async (_req, res) => {
    const { note } = await deps.checkpoints.latest();
    res.set('Cache-Control', SHORT_LIVED).type('text/plain; charset=utf-8').send(note);
  }));

  app.get(/^\/tile\/(.+)$/, route(async (req, res) => {
    const tile = parseTilePath(req.path.slice(1));
    const size = (await store.treeState())!.treeSize;
    let data: Buffer | undefined;
    // Every coordinate is bounded by the tree: a tile is served only when the tree is at least that wide there.
    if (tileWidth(tile.level, tile.index, size) >= tile.width) {
      data = tile.level === -1 ? formatEntryBundle(await store.entryLeaves(tile.index * 256, tile.index * 256 + tile.width)) : await store.readTile(tile);
    }
    if (data === undefined) fail('not_found', `${req.path} is beyond the tree`);
    res.set('Cache-Control', IMMUTABLE).type('application/octet-stream');
    // tlog-tiles: entry bundles SHOULD be compressed at the HTTP layer (hash tiles are random bytes: not worth it).
    if (tile.level === -1) {
      res.vary('Accept-Encoding');
      if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
        res.set('Content-Encoding', 'gzip');
        data = gzipSync(data, { level: 1 });
      }
    }
    res.send(data);
  }));

  app.get('/v1/proof/inclusion', route(async (req, res) => {
    const treeSize = await sizeParam(req, 'size', store);
    let index: number;
    if (req.query.leafHash !== undefined) {
      const lh = decodeBase64(stringParam(req, 'leafHash'), 'leafHash', 32);
      const found = await store.findByLeafHash(lh, treeSize);
      if (found === undefined) fail('not_found', `no entry with that leaf hash in the tree of size ${treeSize}`);
      index = found;
    } else {
      index = parseDecimal(stringParam(req, 'index'), 'index');
    }
    if (index >= treeSize) fail('out_of_range', `index ${index} is not in the tree of size ${treeSize}`);
    res.json({ index, treeSize, proof: (await reader.inclusionProof(index, treeSize)).map(encodeBase64) });
  }));

  app.get('/v1/proof/consistency', route(async (req, res) => {
    const treeSize = await sizeParam(req, 'size', store);
    const old = parseDecimal(stringParam(req, 'old'), 'old');
    if (old > treeSize) fail('out_of_range', `old ${old} is larger than size ${treeSize}`);
    const proof = old === 0 ? [] : await reader.consistencyProof(old, treeSize);
    res.json({ old, treeSize, proof: proof.map(encodeBase64) });
  }));

  const entryAt = async (req: Request) => {
    const index = parseDecimal(String(req.params.index), 'index');
    const leaf = index < (await store.treeState())!.treeSize ? await store.entryLeaf(index) : undefined;
    if (leaf === undefined) fail('not_found', `no entry ${index}`);
    return { index, leaf };
  };
  const entryJSON = (index: number, leaf: Buffer) => ({
    index, ...formatEntryJSON(decodeLeaf(leaf)), leaf: encodeBase64(leaf), leafHash: encodeBase64(leafHash(leaf)),
  });

  app.get('/v1/entries/:index', route(async (req, res) => {
    const { index, leaf } = await entryAt(req);
    res.json(entryJSON(index, leaf));
  }));

  app.get('/v1/entries/:index/proof', route(async (req, res) => {
    const { index, leaf } = await entryAt(req);
    const note = await deps.checkpoints.forEntry(index);
    const text = formatTlogProof({ extra: leaf, index, inclusionProof: await reader.inclusionProof(index, note.treeSize), checkpoint: note.note });
    res.set('Cache-Control', SHORT_LIVED).type('text/plain; charset=utf-8').send(text);
  }));

  const page = (rows: Array<{ index: number; leaf: Buffer }>, limit: number) => ({
    entries: rows.map((r) => entryJSON(r.index, r.leaf)),
    ...(rows.length === limit ? { next: String(rows[rows.length - 1]!.index) } : {}),
  });
  const paging = (req: Request) => ({
    after: req.query.cursor === undefined ? -1 : parseDecimal(stringParam(req, 'cursor'), 'cursor'),
    limit: req.query.limit === undefined ? MAX_PAGE : Math.max(1, parseDecimal(stringParam(req, 'limit'), 'limit', MAX_PAGE)),
  });

  app.get('/v1/lookup/sha256/:hex', route(async (req, res) => {
    const sha = decodeHex(String(req.params.hex), 'sha256', 32);
    const { after, limit } = paging(req);
    res.json(page(await store.lookupSha256(sha, after, limit), limit));
  }));

  app.get(['/v1/lookup/:ecosystem/:name', '/v1/lookup/:ecosystem/:name/:version'], route(async (req, res) => {
    const { after, limit } = paging(req);
    const { ecosystem, name, version } = req.params as Record<string, string | undefined>;
    res.json(page(await store.lookupPackage(ecosystem!, name!, version, after, limit), limit));
  }));

  app.get('/v1/checkpoints/:size', route(async (req, res) => {
    const size = parseDecimal(String(req.params.size), 'size');
    const note = await deps.checkpoints.noteAt(size);
    res.set('Cache-Control', SHORT_LIVED).type('text/plain; charset=utf-8').send(note);
  }));

  app.get('/vkey', route((_req, res) => {
    res.type('text/plain; charset=utf-8').send(deps.vkey + '\n');
  }));

  app.get('/vkeys', route((_req, res) => {
    res.type('text/plain; charset=utf-8').send((deps.vkeys ?? [deps.vkey]).map((k) => k + '\n').join(''));
  }));

  app.get('/v1/policy', route((_req, res) => {
    if (deps.policy === undefined) fail('not_found', 'this log publishes no policy');
    res.set('Cache-Control', SHORT_LIVED).type('text/plain; charset=utf-8').send(deps.policy);
  }));

  const asset = (res: Response, name: string) => {
    const a = deps.explorer?.get(name);
    if (a === undefined) fail('not_found', deps.explorer === undefined ? 'the explorer is not built (npm run build)' : `no explorer file ${name.slice(0, 100)}`);
    res.set({ 'Content-Security-Policy': EXPLORER_CSP, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', 'Cache-Control': 'no-cache' });
    res.type(a.type).send(a.body);
  };
  app.get('/', route((_req, res) => asset(res, 'index.html')));
  app.get(/^\/explorer\/(.+)$/, route((req, res) => asset(res, String((req.params as Record<string, string>)[0]))));
  addIndexRoutes(app, () => deps.index, route);

  app.use(route((req) => fail('not_found', `no route for ${req.method} ${req.path.slice(0, 200)}`)));
  app.use(errorMiddleware(deps.log));
  return app;
}

/**
 * res.json without express's per-call settings lookups and send() checks: the same bytes and headers (Content-Type
 * application/json; charset=utf-8, Content-Length; no ETag, which the app disables), for the submission replies.
 */
function sendJson(res: Response, value: unknown): void {
  const body = JSON.stringify(value);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body, 'utf8'));
  res.end(body, 'utf8');
}

function stringParam(req: Request, name: string): string {
  const v = req.query[name];
  if (typeof v !== 'string') fail('malformed', `query parameter ${name} is required (once)`);
  return v;
}

/** A tree size parameter: at most the current size. */
async function sizeParam(req: Request, name: string, store: Store): Promise<number> {
  const size = parseDecimal(stringParam(req, name), name);
  const current = (await store.treeState())!.treeSize;
  if (size > current) fail('out_of_range', `${name} ${size} is larger than the current tree size ${current}`);
  if (size === 0) fail('out_of_range', `${name} must be positive`);
  return size;
}
