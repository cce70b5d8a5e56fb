/**
 * runtime/logger.ts and runtime/http-ops.ts in-process: levels, request ids, message levels, redaction, the ops routes,
 * and the drain (a request in flight is answered, one arriving during the drain gets 503, the listener then closes).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger, lineLog, requestId, resolveLogLevel, type Logger } from '../../runtime/logger.ts';
import { createRegistry } from '../../runtime/metrics.ts';
import { drainServer, HttpOps, requestLog } from '../../runtime/http-ops.ts';

function capture(level: 'info' | 'debug' = 'info'): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  let text = '';
  const stream = new Writable({ write(chunk, _e, cb) { text += chunk.toString(); cb(); } });
  const logger = createLogger({ level, stream: stream as unknown as NodeJS.WritableStream & { write(s: string): boolean }, format: 'json' });
  return { logger, lines: () => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('runtime/logger', () => {
  it('resolves the level from the flag, then PKGLOG_LOG_LEVEL, else info; refuses other words', () => {
    assert.equal(resolveLogLevel(undefined, {}), 'info');
    assert.equal(resolveLogLevel(undefined, { PKGLOG_LOG_LEVEL: 'DEBUG' }), 'debug');
    assert.equal(resolveLogLevel('warn', { PKGLOG_LOG_LEVEL: 'debug' }), 'warn');
    assert.throws(() => resolveLogLevel('loud', {}), /log level must be one of fatal, error, warn, info, debug, trace, silent/);
  });

  it('request ids: a well-formed X-Request-Id is kept, anything else is replaced by a UUID', () => {
    assert.equal(requestId('abc-123.x'), 'abc-123.x');
    for (const bad of [undefined, '', 'a b', 'x'.repeat(129), 'é', 'a\nb', ['a', 'b']]) {
      assert.match(requestId(bad as string | undefined), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }
  });

  it('lineLog keeps the message and takes the level from an error:/warning: prefix; secrets in fields are censored', () => {
    const c = capture();
    const log = lineLog(c.logger);
    log('error: witness w: it holds another root');
    log('warning: the witness does not know the log');
    log('plain');
    c.logger.info({ seed: 'S3CRET', nested: { privateKey: 'K3Y' } }, 'with fields');
    const l = c.lines();
    assert.deepEqual(l.slice(0, 3).map((o) => [o.level, o.msg]), [['error', 'error: witness w: it holds another root'], ['warn', 'warning: the witness does not know the log'], ['info', 'plain']]);
    assert.equal(l[3]!.seed, '[redacted]');
    assert.deepEqual(l[3]!.nested, { privateKey: '[redacted]' });
    assert.ok(!JSON.stringify(l).includes('S3CRET') && !JSON.stringify(l).includes('K3Y'));
  });
});

describe('runtime/http-ops', () => {
  let server: Server;
  let url: string;
  let ops: HttpOps;
  let c: ReturnType<typeof capture>;
  let release: () => void = () => {};
  let ready = true;

  beforeEach(async () => {
    c = capture('debug');
    ops = new HttpOps({ logger: c.logger, registry: createRegistry(), readiness: () => [{ name: 'thing', ok: ready, ...(ready ? {} : { detail: 'not yet' }) }] });
    server = createServer((req, res) => ops.middleware(req, res, () => {
      requestLog(req)!.info('handling');
      if (req.url === '/slow') {
        release = () => res.end('slow done');
        return;
      }
      res.end('ok');
    }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => {
    server.closeAllConnections();
    server.close();
  });

  it('healthz, readyz (200 / 503 with the failing check), metrics; the request id is echoed and on the lines', async () => {
    const h = await fetch(`${url}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok' });
    ready = true;
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    ready = false;
    const r = await fetch(`${url}/readyz`);
    assert.equal(r.status, 503);
    assert.deepEqual(await r.json(), { status: 'not ready', checks: [{ name: 'thing', ok: false, detail: 'not yet' }] });
    ready = true;
    const x = await fetch(`${url}/x`, { headers: { 'x-request-id': 'req-42' } });
    assert.equal(x.headers.get('x-request-id'), 'req-42');
    await x.text();
    const m = await fetch(`${url}/metrics`);
    assert.match(m.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    assert.match(await m.text(), /pkglog_http_requests_total\{method="GET",code="503"\} 1/);
    const mine = c.lines().filter((o) => o.reqId === 'req-42');
    assert.deepEqual(mine.map((o) => o.msg), ['handling', 'request']);
    assert.equal(mine[1]!.status, 200);
  });

  it('drain: the request in flight is answered, a new one gets 503, readyz says shutdown, then the listener closes', async () => {
    const slow = fetch(`${url}/slow`).then(async (res) => ({ status: res.status, body: await res.text(), connection: res.headers.get('connection') }));
    await new Promise<void>((r) => {
      const t = setInterval(() => {
        if (ops.inFlight === 1) clearInterval(t), r();
      }, 5);
    });
    const drained = drainServer(server, ops, { quietMs: 50 });
    const during = await fetch(`${url}/other`);
    assert.equal(during.status, 503);
    assert.equal((await during.json() as { error: string }).error, 'overloaded');
    const rz = await fetch(`${url}/readyz`);
    assert.equal(rz.status, 503);
    assert.ok(((await rz.json()) as { checks: Array<{ name: string }> }).checks.some((k) => k.name === 'shutdown'));
    let done = false;
    void drained.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(done, false, 'the drain waits for the request in flight');
    release();
    assert.deepEqual(await slow, { status: 200, body: 'slow done', connection: 'close' });
    await drained;
    await assert.rejects(fetch(`${url}/healthz`), 'the listener is closed after the drain');
  });
});
