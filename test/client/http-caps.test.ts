/**
 * Issue 7.13 (client part): every body the client reads from the network is capped while streaming, through the
 * one capped request() in runtime/http.ts — checkpoints, tiles (to their exact maximum size), JSON replies, error
 * replies, witness gossip and history — and a slow or broken body is a 'network' error, never a hang or a crash.
 * A hostile server on 127.0.0.1 streams endless bodies, lies in Content-Length, stalls and resets.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LogClient, maxTileBytes, MAX_NOTE_REPLY } from '../../client/http.ts';
import { request, expectOk, MAX_ERROR_BODY } from '../../runtime/http.ts';
import { gossipCheckpoint } from '../../client/gossip.ts';
import { parsePolicy } from '../../core/policy.ts';
import { isPkglogError } from '../../core/errors.ts';
import { readCheckpointNote } from '../../client/state.ts';
import { LogDouble, TestWitness } from './log-double.ts';

type Handler = (res: ServerResponse, path: string) => void;

describe('client http: every network body is capped while streaming', function () {
  this.timeout(60_000);
  let server: Server;
  let base = '';
  let handler: Handler = (res) => res.end();
  /** Bytes the server managed to write for the last reply, and whether the client hung up on it. */
  let written = 0;
  let closed: Promise<void> = Promise.resolve();

  before(async () => {
    server = createServer((req, res) => {
      written = 0;
      closed = new Promise((r) => res.once('close', () => r()));
      handler(res, req.url ?? '/');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** Streams `chunk` forever (no Content-Length), as fast as the client reads. */
  const endless = (status = 200, chunk = Buffer.alloc(64 * 1024, 0x61)): Handler => (res) => {
    res.writeHead(status, { 'content-type': 'application/octet-stream' });
    const pump = () => {
      while (!res.destroyed && res.write(chunk)) written += chunk.length;
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  };
  const network = (re: RegExp) => (e: unknown) => isPkglogError(e, 'network') && re.test((e as Error).message);

  it('an endless checkpoint is cut at 1 MiB and the connection is closed', async () => {
    handler = endless();
    const log = new LogClient(base);
    await assert.rejects(log.checkpoint(), network(new RegExp(`over the ${MAX_NOTE_REPLY}-byte limit`)));
    await closed;
    assert.ok(written < 64 * 1024 * 1024, `the server stopped after ${written} bytes`);
  });

  it('tiles are capped at their exact maximum size (32 bytes a hash, 2 + the largest leaf an entry)', async () => {
    const log = new LogClient(base);
    const full = { level: 0, index: 0, width: 256 };
    assert.equal(maxTileBytes(full), 8192);
    assert.equal(maxTileBytes({ level: -1, index: 0, width: 1 }), 2 + 1132);
    handler = (res) => res.end(Buffer.alloc(8192));
    assert.equal((await log.tile(full)).length, 8192);
    handler = (res) => {
      res.writeHead(200);
      res.write(Buffer.alloc(8000));
      res.end(Buffer.alloc(193));
    };
    await assert.rejects(log.tile(full), network(/over the 8192-byte limit/));
    handler = endless();
    await assert.rejects(log.tile({ level: -1, index: 0, width: 3 }), network(new RegExp(`over the ${3 * 1134}-byte limit`)));
  });

  it('a declared Content-Length over the cap is refused before any byte is read', async () => {
    // Headers promise 10 MiB, then nothing comes: the client must not wait for it.
    handler = (res) => {
      res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
      res.flushHeaders();
    };
    const t0 = Date.now();
    await assert.rejects(new LogClient(base, { timeoutMs: 30_000 }).tile({ level: 0, index: 0, width: 256 }), network(/response of 10485760 bytes is over the 8192-byte limit/));
    assert.ok(Date.now() - t0 < 25_000, 'refused on the header, not after the timeout');
    await closed;
  });

  it('an endless error reply is read only to 64 KiB: the status and the start of the message are reported', async () => {
    handler = endless(500, Buffer.from('{"error":"internal","message":"boom"}'.padEnd(64 * 1024, ' ')));
    const url = `${base}/v1/entries/1`;
    const res = await request(url);
    assert.equal(res.status, 500);
    assert.equal(res.body.length, MAX_ERROR_BODY);
    await closed;
    assert.throws(() => expectOk(res, url), (e) => isPkglogError(e, 'network') && /HTTP 500/.test((e as Error).message));
  });

  it('an endless JSON reply and a stalled or reset body are network errors', async () => {
    handler = endless(200, Buffer.from('['.repeat(1024)));
    await assert.rejects(new LogClient(base).entry(1), network(/over the 16777216-byte limit/));
    handler = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"index":');
    };
    await assert.rejects(new LogClient(base, { timeoutMs: 300 }).entry(1), network(/reading the response failed: timed out/));
    handler = (res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('example.test/log\n');
      setTimeout(() => res.socket?.destroy(), 20);
    };
    await assert.rejects(new LogClient(base).checkpoint(), network(/reading the response failed/));
  });

  it('a witness answering gossip with an endless body is reported as an error for that witness', async () => {
    const log = new LogDouble();
    const w = new TestWitness('w0.test', 1_750_000_000);
    log.witnesses = [w];
    log.publish();
    const policy = parsePolicy(`log ${log.vkey}\nwitness w0 ${w.vkey} ${base}/w\nquorum none\n`);
    handler = endless(200, Buffer.from('{"result":"consistent","reason":"'.padEnd(64 * 1024, 'x')));
    const current = { signed: log.latest, checkpoint: readCheckpointNote(log.latest) };
    const { results } = await gossipCheckpoint(policy, current, undefined);
    assert.equal(results.length, 1);
    assert.equal(results[0]!.status, 'error');
    assert.match(results[0]!.detail, /over the 4194304-byte limit/);
    await closed;
  });
});
