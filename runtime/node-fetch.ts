/**
 * A `fetch` over node:http/node:https, the default transport of the one capped HTTP read (runtime/http.ts `request`)
 * of the client, the witness and the log.
 *
 * Why not the global fetch: Node 20's bundled undici never settles a fetch whose connection the server closes before
 * the request is written (a server at its connection cap closes new connections on accept; so does a dying server).
 * Its timeout timer is unref'd, so a command awaiting it exits 13 ("unsettled top-level await") with no output instead
 * of reporting the network error. node:http reports that as ECONNRESET ("socket hang up") at once.
 *
 * What the callers rely on, as with fetch: a web `Response` whose body is a stream they read and cap themselves;
 * `init.signal` aborts the whole exchange, body included; transport failures reject with a TypeError whose `cause` is
 * the system error (its `code`, e.g. ECONNREFUSED); gzip/deflate replies are decompressed (we ask for gzip); GET/HEAD
 * redirects are followed (at most 5, http(s) only).
 */
import http from 'node:http';
import https from 'node:https';
import { PassThrough } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

function headerRecord(h: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (h === undefined) return out;
  new Headers(h).forEach((v, k) => (out[k] = v));
  return out;
}

function bodyBytes(body: RequestInit['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  throw new TypeError('nodeFetch: the request body must be a string or bytes');
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

export async function nodeFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  let url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  let method = (init.method ?? 'GET').toUpperCase();
  const headers = { 'accept-encoding': 'gzip, deflate', ...headerRecord(init.headers) };
  let body = bodyBytes(init.body);
  for (let redirects = 0; ; redirects++) {
    const res = await once(url, method, headers, body, init.signal ?? undefined);
    const location = res.headers.location;
    if (REDIRECTS.has(res.statusCode!) && location !== undefined && redirects < MAX_REDIRECTS && (init.redirect ?? 'follow') === 'follow') {
      const next = new URL(location, url);
      if (next.protocol === 'http:' || next.protocol === 'https:') {
        res.resume();
        if (res.statusCode === 303 && method !== 'HEAD') method = 'GET';
        if (method === 'GET' || method === 'HEAD') body = undefined;
        url = next;
        continue;
      }
    }
    return toResponse(res, method, init.signal ?? undefined);
  }
}

function once(url: URL, method: string, headers: Record<string, string>, body: Buffer | undefined, signal: AbortSignal | undefined): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      reject(new TypeError(`fetch failed: unsupported protocol ${url.protocol}`));
      return;
    }
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const h = { ...headers, ...(body !== undefined ? { 'content-length': String(body.length) } : {}) };
    const req = (url.protocol === 'https:' ? https : http).request(url, { method, headers: h, ...(signal ? { signal } : {}) });
    req.once('response', resolve);
    req.on('error', (e: Error) => {
      if (signal?.aborted) reject(abortReason(signal));
      else reject(new TypeError('fetch failed', { cause: e }));
    });
    req.end(body);
  });
}

function toResponse(res: http.IncomingMessage, method: string, signal: AbortSignal | undefined): Response {
  const status = res.statusCode!;
  if (!(status >= 200 && status <= 599)) {
    res.destroy();
    throw new TypeError(`fetch failed: HTTP status ${status}`);
  }
  const headers = new Headers();
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) {
      try {
        headers.append(k, one);
      } catch {
        // a header value fetch would refuse: dropped
      }
    }
  }
  if (NULL_BODY_STATUSES.has(status) || method === 'HEAD') {
    res.resume();
    return new Response(null, { status, statusText: res.statusMessage, headers });
  }
  // The body the caller reads: decompressed, and a transport error mid-body (reset, abort) errors it (read() rejects).
  const out = new PassThrough();
  const closedEarly = (e: Error) => out.destroy(signal?.aborted
    ? (abortReason(signal) as Error)
    : (e as { code?: string }).code === 'ECONNRESET' || e.message === 'aborted'
      ? new Error('the connection was closed before the response was complete')
      : e);
  res.on('error', closedEarly);
  out.once('close', () => res.destroy()); // the caller cancelled (over its cap) or finished
  const encoding = (res.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (encoding === 'gzip' || encoding === 'x-gzip' || encoding === 'deflate') {
    const unzip = encoding === 'deflate' ? createInflate() : createGunzip();
    unzip.on('error', (e) => out.destroy(new Error(`the ${encoding} response body is corrupt: ${e.message}`)));
    res.pipe(unzip).pipe(out);
    headers.delete('content-encoding');
    headers.delete('content-length'); // the decompressed size is not declared
  } else {
    res.pipe(out);
  }
  return new Response(webStream(out, () => res.destroy()), { status, statusText: res.statusMessage, headers });
}

/** A web ReadableStream over a node stream, with backpressure; nothing is enqueued after it is cancelled or closed. */
function webStream(node: PassThrough, onCancel: () => void): ReadableStream<Uint8Array> {
  let finished = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      node.pause();
      node.on('data', (chunk: Buffer) => {
        if (finished) return;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) node.pause();
      });
      node.once('end', () => {
        if (finished) return;
        finished = true;
        controller.close();
      });
      node.on('error', (e) => {
        if (finished) return;
        finished = true;
        controller.error(e);
      });
      node.once('close', () => {
        if (finished) return;
        finished = true;
        controller.error(new Error('the connection was closed before the response was complete'));
      });
    },
    pull() {
      node.resume();
    },
    cancel() {
      finished = true;
      node.destroy();
      onCancel();
    },
  });
}
