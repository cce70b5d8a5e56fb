/**
 * The one capped HTTP read of every pkglog party (client, witness, log): a fetch over node:http (runtime/node-fetch.ts, or an injected one), the whole
 * exchange time-limited, the body counted while streaming and never buffered past its cap. Every failure is a
 * PkglogError naming the URL: 'network' for transport failures, timeouts and over-limit bodies.
 */
import { PkglogError, fail } from '../core/errors.ts';
import { nodeFetch } from './node-fetch.ts';

export type Fetch = typeof fetch;

export interface HttpOptions {
  /** The whole exchange, body included (default 30 s). */
  timeoutMs?: number;
  /** Cap on a 2xx body (default 16 MiB); error replies are read at most MAX_ERROR_BODY and truncated. */
  maxBytes?: number;
  userAgent?: string;
  /** Another fetch (tests, a proxy-aware one); default nodeFetch (node:http: see node-fetch.ts for why not the global fetch). */
  fetch?: Fetch;
  /**
   * Error replies (non-2xx): 'truncate' (default) keeps their first MAX_ERROR_BODY bytes, enough for a message;
   * 'refuse' caps them like any body (for protocols whose error replies carry data, e.g. tlog-witness 409 sizes).
   */
  errorBodies?: 'truncate' | 'refuse';
}

export const DEFAULT_TIMEOUT_MS = 30_000;
/** Cap for JSON API replies (lookup pages, entries) unless the caller gives a tighter one. */
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
/** Error replies are read only this far (enough for the message); the rest is discarded, never buffered. */
export const MAX_ERROR_BODY = 64 * 1024;

export interface HttpResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

function describeError(e: unknown): string {
  if (e instanceof Error) {
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
    return e.cause instanceof Error ? e.cause.message : e.message;
  }
  return String(e);
}

/** The short reason of a transport failure: 'timed out', or the system error code (ECONNREFUSED, …). */
function shortReason(e: unknown): string {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) return 'timed out';
  const code = e instanceof Error ? (e.cause as { code?: unknown } | undefined)?.code : undefined;
  return typeof code === 'string' ? code : describeError(e);
}

/**
 * Reads the body, counting bytes while streaming: a declared Content-Length over `max` is refused before reading,
 * and the stream is cancelled as soon as it passes `max` (nothing over the cap is ever buffered). With
 * `truncate`, the first `max` bytes are kept and the rest discarded instead (error replies).
 */
async function readCapped(res: Response, max: number, url: string, truncate = false): Promise<Buffer> {
  const declared = res.headers.get('content-length');
  const len = declared !== null && /^\d{1,16}$/.test(declared) ? Number(declared) : undefined;
  if (len !== undefined && len > max && !truncate) {
    await res.body?.cancel().catch(() => {});
    fail('network', `${url}: response of ${len} bytes is over the ${max}-byte limit`);
  }
  if (res.body === null) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (total + value.byteLength > max) {
        await reader.cancel().catch(() => {});
        if (!truncate) fail('network', `${url}: response is over the ${max}-byte limit`);
        chunks.push(Buffer.from(value.buffer, value.byteOffset, max - total));
        total = max;
        break;
      }
      total += value.byteLength;
      chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    }
  } catch (e) {
    if (e instanceof PkglogError) throw e;
    await reader.cancel().catch(() => {});
    fail('network', `${url}: reading the response failed: ${describeError(e)}`);
  }
  return Buffer.concat(chunks, total);
}

/**
 * One HTTP request: the body is capped while streaming (`maxBytes`, error replies at MAX_ERROR_BODY) and the whole
 * exchange, body included, is time-limited (and ends early if `init.signal` aborts). Never throws on HTTP status
 * (callers decide); throws 'network' on transport failure (details.reason: 'timed out' or the error code, e.g.
 * ECONNREFUSED), timeout or an over-limit body.
 */
export async function request(url: string, init: RequestInit = {}, opts: HttpOptions = {}): Promise<HttpResponse> {
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  let res: Response;
  try {
    res = await (opts.fetch ?? nodeFetch)(url, {
      ...init,
      headers: { 'user-agent': opts.userAgent ?? 'pkglog/0.1', ...(init.headers as Record<string, string> | undefined) },
      signal: init.signal ? AbortSignal.any([init.signal, timeout]) : timeout,
    });
  } catch (e) {
    fail('network', `cannot reach ${url}: ${describeError(e)}`, { reason: shortReason(e) });
  }
  const max = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const ok = res.status >= 200 && res.status < 300;
  const body = ok || opts.errorBodies === 'refuse' ? await readCapped(res, max, url) : await readCapped(res, Math.min(max, MAX_ERROR_BODY), url, true);
  return { status: res.status, headers: res.headers, body };
}

/** The server's own words from an error reply: its JSON `message` (or `error`), else the start of its text. */
export function serverMessage(body: Buffer): string {
  const text = body.toString('utf8').slice(0, 300).trim();
  try {
    const j = JSON.parse(text) as { message?: unknown; error?: unknown };
    if (typeof j.message === 'string') return j.message;
    if (typeof j.error === 'string') return j.error;
  } catch {
    // not JSON
  }
  return text;
}

/** Throws unless status is 200: 404 → 'not_found', other statuses → 'network' (details.status). */
export function expectOk(res: HttpResponse, url: string): Buffer {
  if (res.status === 200) return res.body;
  const msg = serverMessage(res.body);
  if (res.status === 404) fail('not_found', `${url}: not found${msg ? ` (${msg})` : ''}`, { status: 404 });
  fail('network', `${url}: HTTP ${res.status}${msg ? `: ${msg}` : ''}`, { status: res.status });
}

/** A GET whose reply must be 200 (see expectOk); returns the capped body. */
export async function getOk(url: string, opts: HttpOptions = {}): Promise<Buffer> {
  return expectOk(await request(url, {}, opts), url);
}

/** A JSON object body, else 'malformed'. */
export function parseJSON(body: Buffer, url: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    return fail('malformed', `${url}: response is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('malformed', `${url}: response is not a JSON object`);
  return v as Record<string, unknown>;
}

/** Base URL without trailing slash; must be http(s). */
export function normalizeBaseURL(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail('malformed', `not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail('malformed', `URL must be http or https: ${url}`);
  return url.replace(/\/+$/, '');
}
