/**
 * `pkglog proxy`: a verifying proxy in front of a Python package index (PEP 503 / PEP 691 simple API, under
 * /pypi/simple/) and an npm registry (read API, under /npm/). Index pages and packuments list only the files and
 * versions whose log entries pass every check (client/proxy-check.ts); every file handed out is downloaded from the
 * upstream, hashed, and checked against the log before a byte of it is sent. A refused file gets 403 with the reason
 * as the HTTP status text (pip and npm print it) and as JSON {"error":"unverified","message":…}; the proxy logs why.
 * docs/proxy.md documents the routes, configuration and every message.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { httpStatus, isPkglogError, type ErrorCode } from '../core/errors.ts';
import { request, type HttpResponse } from '../runtime/http.ts';
import type { Logger } from '../runtime/logger.ts';
import { reason } from '../runtime/cli.ts';
import { ArtifactGate, describe, type Artifact4, type Verdict } from './proxy-check.ts';
import { formatIntegrity } from '../core/entry.ts';
import { EXIT } from './report.ts';

export interface ProxyOptions {
  gate: ArtifactGate;
  upstreamPypi?: string;
  upstreamNpm?: string;
  logger: Logger;
  /** Largest artifact the proxy downloads and checks (bytes). */
  maxFileBytes: number;
  /** Upstream index pages and packuments. */
  maxIndexBytes?: number;
}

export interface RunningProxy {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** PEP 503 normalized project name. */
export function normalizePypiName(name: string): string {
  return name.replace(/[-_.]+/g, '-').toLowerCase();
}

/** The version in a wheel or sdist filename (PEP 427 / PEP 625), or undefined when it cannot be told. */
export function pypiFileVersion(filename: string): string | undefined {
  if (filename.endsWith('.whl')) {
    const parts = filename.slice(0, -4).split('-');
    return parts.length === 5 || parts.length === 6 ? parts[1] : undefined;
  }
  const m = /^(.+)-([^-]+)\.(tar\.gz|zip|tar\.bz2|tgz)$/.exec(filename);
  return m?.[2];
}

interface UpstreamFile {
  filename: string;
  url: string;
  sha256?: string;
  requiresPython?: string;
  yanked?: boolean | string;
}

const PEP691 = 'application/vnd.pypi.simple.v1+json';

function htmlUnescape(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'" })[e]!);
}

function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The files of an upstream project page: PEP 691 JSON or PEP 503 HTML; URLs resolved against the page. */
export function parseProjectPage(body: Buffer, contentType: string, pageURL: string): UpstreamFile[] {
  const text = body.toString('utf8');
  if (contentType.includes('json')) {
    const j = JSON.parse(text) as { files?: Array<Record<string, unknown>> };
    if (!Array.isArray(j.files)) throw new Error('the PEP 691 page has no "files" list');
    return j.files.flatMap((f) => {
      if (typeof f.filename !== 'string' || typeof f.url !== 'string') return [];
      const hashes = (f.hashes ?? {}) as Record<string, unknown>;
      return [{
        filename: f.filename,
        url: new URL(f.url, pageURL).href,
        ...(typeof hashes.sha256 === 'string' ? { sha256: hashes.sha256.toLowerCase() } : {}),
        ...(typeof f['requires-python'] === 'string' ? { requiresPython: f['requires-python'] } : {}),
        ...(f.yanked !== undefined && f.yanked !== false ? { yanked: f.yanked as boolean | string } : {}),
      }];
    });
  }
  const out: UpstreamFile[] = [];
  for (const m of text.matchAll(/<a\s([^>]*)>([^<]*)<\/a>/gi)) {
    const attrs = m[1]!;
    const href = /href\s*=\s*"([^"]*)"/i.exec(attrs)?.[1] ?? /href\s*=\s*'([^']*)'/i.exec(attrs)?.[1];
    if (href === undefined) continue;
    const url = new URL(htmlUnescape(href), pageURL);
    const sha = /^sha256=([0-9a-fA-F]{64})$/.exec(url.hash.slice(1))?.[1];
    url.hash = '';
    const rp = /data-requires-python\s*=\s*"([^"]*)"/i.exec(attrs)?.[1];
    const yanked = /data-yanked(?:\s*=\s*"([^"]*)")?/i.exec(attrs);
    out.push({
      filename: htmlUnescape(m[2]!.trim()) || decodeURIComponent(url.pathname.split('/').pop() ?? ''),
      url: url.href,
      ...(sha !== undefined ? { sha256: sha.toLowerCase() } : {}),
      ...(rp !== undefined ? { requiresPython: htmlUnescape(rp) } : {}),
      ...(yanked !== null ? { yanked: yanked[1] !== undefined ? htmlUnescape(yanked[1]) : true } : {}),
    });
  }
  return out;
}

/** Semantic-version order (npm), prereleases before their release; unparseable versions sort first. */
export function compareSemver(a: string, b: string): number {
  const p = (v: string) => /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?/.exec(v);
  const x = p(a);
  const y = p(b);
  if (x === null || y === null) return x === null ? (y === null ? a.localeCompare(b) : -1) : 1;
  for (let i = 1; i <= 3; i++) if (Number(x[i]) !== Number(y[i])) return Number(x[i]) - Number(y[i]);
  if (x[4] === undefined || y[4] === undefined) return x[4] === y[4] ? 0 : x[4] === undefined ? 1 : -1;
  const xs = x[4].split('.');
  const ys = y[4].split('.');
  for (let i = 0; i < Math.max(xs.length, ys.length); i++) {
    const s = xs[i];
    const t = ys[i];
    if (s === undefined || t === undefined) return s === undefined ? -1 : 1;
    const sn = /^\d+$/.test(s);
    const tn = /^\d+$/.test(t);
    if (sn && tn && Number(s) !== Number(t)) return Number(s) - Number(t);
    if (sn !== tn) return sn ? -1 : 1;
    if (s !== t) return s < t ? -1 : 1;
  }
  return 0;
}

class HttpReply extends Error {
  constructor(readonly status: number, readonly code: ErrorCode | 'unverified', message: string) {
    super(message);
  }
}

/** The HTTP status text carries the message (pip and npm print it): printable ASCII, bounded. */
function statusText(message: string): string {
  const t = message.replace(/[^\x20-\x7e]/g, '?');
  return t.length > 400 ? `${t.slice(0, 397)}...` : t;
}

function sendError(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, unknown> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: code, message, ...extra }) + '\n';
  res.writeHead(status, statusText(`pkglog proxy: ${message}`), { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** Runs `fn` over items with at most `n` in flight. */
async function pool<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

interface KnownFile {
  url: string;
  version: string;
}

export function startProxy(opts: ProxyOptions, listen: { host: string; port: number }): Promise<RunningProxy> {
  const { gate, logger } = opts;
  const maxIndexBytes = opts.maxIndexBytes ?? 32 * 1024 * 1024;
  /** Upstream URL and version of each file listed on an index page served, for its download. */
  const known = new LRUCache<string, KnownFile>({ max: 100_000 });
  const fileKey = (eco: string, name: string, filename: string) => `${eco}\n${name}\n${filename}`;

  async function upstreamGet(url: string, accept: string | undefined, maxBytes: number): Promise<HttpResponse> {
    let r: HttpResponse;
    try {
      r = await request(url, accept ? { headers: { accept } } : {}, { maxBytes, timeoutMs: 120_000 });
    } catch (e) {
      throw new HttpReply(502, 'network', `upstream ${reason(e)}`);
    }
    if (r.status === 404) throw new HttpReply(404, 'not_found', `not found upstream: ${url}`);
    if (r.status !== 200) throw new HttpReply(502, 'network', `upstream answered HTTP ${r.status} for ${url}`);
    return r;
  }

  function refused(a: Artifact4, v: Verdict & { ok: false }): void {
    logger.warn({ ecosystem: a.ecosystem, name: a.name, version: a.version, filename: a.filename, check: v.check, exitCode: v.exitCode, ...(v.evidence ? { evidence: v.evidence } : {}) }, `refused ${describe(a)}: ${v.message}`);
  }

  function refuse(res: ServerResponse, a: Artifact4, v: Verdict & { ok: false }): void {
    refused(a, v);
    sendError(res, 403, 'unverified', v.message, { check: v.check, ...(v.evidence ? { evidence: v.evidence } : {}) });
  }

  /** Downloads an upstream file, checks its bytes against the log, and sends it (or the refusal). */
  async function serveFile(res: ServerResponse, a: Artifact4, url: string, contentType: string): Promise<void> {
    const r = await upstreamGet(url, undefined, opts.maxFileBytes);
    const sha256 = createHash('sha256').update(r.body).digest('hex');
    const v = await gate.check(a, sha256);
    if (!v.ok) return refuse(res, a, v);
    logger.info({ ecosystem: a.ecosystem, name: a.name, version: a.version, filename: a.filename, index: v.index, sha256 }, `served ${describe(a)} (entry ${v.index})`);
    res.writeHead(200, { 'content-type': contentType, 'content-length': r.body.length, 'cache-control': 'no-store' });
    res.end(r.body);
  }

  // ---- PyPI -------------------------------------------------------------------------------------------------

  async function pypiProject(name: string): Promise<{ name: string; files: Array<UpstreamFile & { version: string; sha256: string }> }> {
    if (opts.upstreamPypi === undefined) throw new HttpReply(404, 'not_found', 'no --upstream-pypi configured');
    const pageURL = `${opts.upstreamPypi.replace(/\/+$/, '')}/${name}/`;
    const r = await upstreamGet(pageURL, `${PEP691}, text/html;q=0.1`, maxIndexBytes);
    let files: UpstreamFile[];
    try {
      files = parseProjectPage(r.body, r.headers.get('content-type') ?? '', pageURL);
    } catch (e) {
      throw new HttpReply(502, 'network', `upstream page ${pageURL} cannot be read: ${(e as Error).message}`);
    }
    const checked = await pool(files, 8, async (f) => {
      const logged = await gate.entryFor({ ecosystem: 'pypi', name, version: '', filename: f.filename }).catch(() => undefined);
      const a = { ecosystem: 'pypi', name, version: pypiFileVersion(f.filename) ?? logged?.entry.version ?? '', filename: f.filename };
      const v = await gate.check(a, f.sha256);
      if (!v.ok) {
        refused(a, v);
        return undefined;
      }
      known.set(fileKey('pypi', name, f.filename), { url: f.url, version: a.version });
      return { ...f, version: a.version, sha256: v.entry.sha256 };
    });
    return { name, files: checked.filter((f) => f !== undefined) };
  }

  async function pypiIndex(req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> {
    const name = normalizePypiName(decodeURIComponent(raw));
    if (name !== raw) {
      res.writeHead(301, { location: `/pypi/simple/${encodeURIComponent(name)}/` });
      res.end();
      return;
    }
    const project = await pypiProject(name);
    const href = (f: { filename: string }) => `/pypi/files/${encodeURIComponent(name)}/${encodeURIComponent(f.filename)}`;
    const accept = req.headers.accept ?? '';
    if (accept.includes(PEP691)) {
      const body = JSON.stringify({
        meta: { 'api-version': '1.0' },
        name,
        files: project.files.map((f) => ({
          filename: f.filename,
          url: href(f),
          hashes: { sha256: f.sha256 },
          ...(f.requiresPython !== undefined ? { 'requires-python': f.requiresPython } : {}),
          ...(f.yanked !== undefined ? { yanked: f.yanked } : {}),
        })),
      });
      res.writeHead(200, { 'content-type': PEP691, 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    const links = project.files.map((f) => {
      const rp = f.requiresPython !== undefined ? ` data-requires-python="${htmlEscape(f.requiresPython)}"` : '';
      const y = f.yanked === undefined ? '' : f.yanked === true ? ' data-yanked' : ` data-yanked="${htmlEscape(String(f.yanked))}"`;
      return `<a href="${htmlEscape(href(f))}#sha256=${f.sha256}"${rp}${y}>${htmlEscape(f.filename)}</a><br/>`;
    });
    const html = `<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0"><title>Links for ${htmlEscape(name)}</title></head>\n<body><h1>Links for ${htmlEscape(name)}</h1>\n${links.join('\n')}\n</body></html>\n`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  }

  async function pypiFile(res: ServerResponse, name: string, filename: string): Promise<void> {
    let k = known.get(fileKey('pypi', name, filename));
    if (k === undefined) {
      await pypiProject(name);
      k = known.get(fileKey('pypi', name, filename));
    }
    if (k === undefined) {
      // Not listed (or not passing): say why.
      const logged = await gate.entryFor({ ecosystem: 'pypi', name, version: '', filename }).catch(() => undefined);
      const a = { ecosystem: 'pypi', name, version: pypiFileVersion(filename) ?? logged?.entry.version ?? '', filename };
      const v = await gate.check(a);
      if (!v.ok) return refuse(res, a, v);
      throw new HttpReply(404, 'not_found', `${filename} is not on the upstream index page of ${name}`);
    }
    await serveFile(res, { ecosystem: 'pypi', name, version: k.version, filename }, k.url, 'application/octet-stream');
  }

  // ---- npm --------------------------------------------------------------------------------------------------

  function npmName(raw: string): string {
    const name = decodeURIComponent(raw);
    if (!/^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9._~-][a-z0-9._~-]*$/.test(name) || name.length > 214) throw new HttpReply(400, 'malformed', `not an npm package name: ${JSON.stringify(name)}`);
    return name;
  }

  async function npmPackument(name: string, base: string): Promise<Record<string, unknown>> {
    if (opts.upstreamNpm === undefined) throw new HttpReply(404, 'not_found', 'no --upstream-npm configured');
    const url = `${opts.upstreamNpm.replace(/\/+$/, '')}/${name.replace('/', '%2f')}`;
    const r = await upstreamGet(url, 'application/json', maxIndexBytes);
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
      if (typeof doc !== 'object' || doc === null || typeof doc.versions !== 'object' || doc.versions === null) throw new Error('no "versions" object');
    } catch (e) {
      throw new HttpReply(502, 'network', `upstream packument ${url} cannot be read: ${(e as Error).message}`);
    }
    const versions = doc.versions as Record<string, Record<string, unknown>>;
    const kept: Record<string, Record<string, unknown>> = {};
    const reasons: string[] = [];
    await pool(Object.entries(versions), 8, async ([version, manifest]) => {
      const dist = (manifest?.dist ?? {}) as Record<string, unknown>;
      if (typeof dist.tarball !== 'string') return;
      const tarball = new URL(dist.tarball, url);
      const filename = decodeURIComponent(tarball.pathname.split('/').pop() ?? '');
      const a = { ecosystem: 'npm', name, version, filename };
      const v = await gate.check(a);
      if (!v.ok) {
        refused(a, v);
        reasons.push(v.message);
        return;
      }
      const upstreamIntegrity = typeof dist.integrity === 'string' ? dist.integrity : undefined;
      const native = v.entry.nativeDigest;
      const logged = native !== undefined ? formatIntegrity(native) : `sha256-${Buffer.from(v.entry.sha256, 'hex').toString('base64')}`;
      // With a logged sha512 (leaf version 2) the upstream's integrity is checked before any download.
      if (native !== undefined && upstreamIntegrity !== undefined && upstreamIntegrity.startsWith(`${native.algorithm}-`) && upstreamIntegrity !== logged) {
        const bad = { ok: false as const, exitCode: EXIT.VERIFY_FAILED, check: 'file-hash', message: `${describe(a)}: the upstream integrity is ${upstreamIntegrity} but the log has ${logged} (entry ${v.index}): the file was replaced after it was logged` };
        refused(a, bad);
        reasons.push(bad.message);
        return;
      }
      known.set(fileKey('npm', name, filename), { url: tarball.href, version });
      // npm checks `integrity` (ssri: sha512 or sha256): the logged digest. The upstream's shasum (SHA-1) cannot be
      // checked against the log: dropped.
      const newDist: Record<string, unknown> = { ...dist, tarball: `${base}/npm/${name}/-/${encodeURIComponent(filename)}`, integrity: logged };
      delete newDist.shasum;
      delete newDist.signatures;
      kept[version] = { ...manifest, dist: newDist };
    });
    if (Object.keys(kept).length === 0 && Object.keys(versions).length > 0) {
      throw new HttpReply(403, 'unverified', `no version of ${name} passes the checks: ${reasons.slice(0, 3).join('; ')}`);
    }
    const tags: Record<string, string> = {};
    for (const [tag, v] of Object.entries((doc['dist-tags'] ?? {}) as Record<string, unknown>)) if (typeof v === 'string' && v in kept) tags[tag] = v;
    const order = Object.keys(kept).sort(compareSemver);
    const releases = order.filter((v) => !v.includes('-'));
    if (tags.latest === undefined && order.length > 0) tags.latest = releases.at(-1) ?? order.at(-1)!;
    const time = doc.time as Record<string, unknown> | undefined;
    const out: Record<string, unknown> = { ...doc, versions: kept, 'dist-tags': tags };
    if (time !== undefined) out.time = Object.fromEntries(Object.entries(time).filter(([k]) => k === 'created' || k === 'modified' || k in kept));
    return out;
  }

  async function npmTarball(res: ServerResponse, name: string, filename: string, base: string): Promise<void> {
    let k = known.get(fileKey('npm', name, filename));
    if (k === undefined) {
      try {
        await npmPackument(name, base);
      } catch (e) {
        if (!(e instanceof HttpReply && e.code === 'unverified')) throw e;
      }
      k = known.get(fileKey('npm', name, filename));
    }
    if (k === undefined) {
      const logged = await gate.entryFor({ ecosystem: 'npm', name, version: '', filename }).catch(() => undefined);
      const a = { ecosystem: 'npm', name, version: logged?.entry.version ?? '', filename };
      const v = await gate.check(a);
      if (!v.ok) return refuse(res, a, v);
      throw new HttpReply(404, 'not_found', `${filename} is not a tarball of ${name} upstream`);
    }
    await serveFile(res, { ecosystem: 'npm', name, version: k.version, filename }, k.url, 'application/octet-stream');
  }

  // ---- routing ----------------------------------------------------------------------------------------------

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://proxy.invalid');
    const path = u.pathname;
    const base = `http://${req.headers.host ?? `${listen.host}:${listen.port}`}`;
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpReply(405, 'usage', 'the proxy is read-only (GET)');
    let m: RegExpExecArray | null;
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(gate.fork !== undefined ? `fork: ${gate.fork}\n` : 'ok\n');
      return;
    }
    if (path === '/pypi/simple/' || path === '/pypi/simple') {
      const html = '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0"><title>pkglog proxy</title></head><body><p>pkglog proxy: ask for /pypi/simple/&lt;project&gt;/</p></body></html>\n';
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
      return;
    }
    if ((m = /^\/pypi\/simple\/([^/]+)\/?$/.exec(path))) return pypiIndex(req, res, m[1]!);
    if ((m = /^\/pypi\/files\/([^/]+)\/([^/]+)$/.exec(path))) return pypiFile(res, normalizePypiName(decodeURIComponent(m[1]!)), decodeURIComponent(m[2]!));
    if ((m = /^\/npm\/((?:@[^/]+(?:\/|%2[fF]))?[^/@][^/]*)\/-\/([^/]+)$/.exec(path))) return npmTarball(res, npmName(m[1]!), decodeURIComponent(m[2]!), base);
    if ((m = /^\/npm\/((?:@[^/]+(?:\/|%2[fF]))?[^/@][^/]*)$/.exec(path))) {
      const name = npmName(m[1]!);
      const doc = await npmPackument(name, base);
      const body = JSON.stringify(doc);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    throw new HttpReply(404, 'not_found', `no such route: ${path} (the proxy serves /pypi/simple/<project>/ and /npm/<package>)`);
  }

  const server = createServer((req, res) => {
    route(req, res).catch((e: unknown) => {
      if (e instanceof HttpReply) {
        if (e.status >= 500 || e.code === 'unverified') logger.warn({ url: req.url, status: e.status }, e.message);
        sendError(res, e.status, e.code, e.message);
      } else if (isPkglogError(e)) {
        logger.warn({ url: req.url, code: e.code }, e.message);
        sendError(res, e.code === 'network' ? 502 : httpStatus(e.code), e.code, e.message);
      } else {
        logger.error({ url: req.url, err: e }, `internal error: ${(e as Error)?.message ?? String(e)}`);
        sendError(res, 500, 'internal', 'internal error');
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      const addr = server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve({
        url: `http://${host}:${addr.port}`,
        server,
        close: () => new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
      });
    });
  });
}
