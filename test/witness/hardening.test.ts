/**
 * The witness under misuse: a fork attempt is refused with evidence and does not freeze the log; gossip with an old
 * checkpoint costs at most one round of tile fetches and a flood is rate-limited; endless or oversized bodies from a
 * log or a peer are cut off at the cap; a second witness on one data dir is refused (real process); a key file that
 * others can read is refused; slow clients are disconnected; connections are capped; bodies over the limit are
 * refused before they are read. Every refusal is one log line, never a 500.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PKGLOG_BIN } from '../support/process.ts'; // rebuilds a stale dist/: the real process runs the compiled code
import request from 'supertest';
import { FakeLog, serveLogs, seedFrom } from './fake-log.ts';
import { makeWitness, tempDir, type TestWitness } from './helpers.ts';
import { createApp } from '../../witness/app.ts';
import { RateLimiter } from '../../witness/rate-limit.ts';
import { startWitness, type RunningWitness } from '../../witness/main.ts';
import { fetchPeerCheckpoint } from '../../witness/loops.ts';
import { WitnessStore } from '../../witness/store.ts';
import { parseEvidence, verifyEvidence } from '../../core/evidence.ts';
import { formatSignerKey, parseVerifierKey, SIG_TYPE_COSIGNATURE_V1 } from '../../core/note.ts';
import { MAX_NOTE_SIZE } from '../../core/note.ts';


const refusals = (t: TestWitness) => t.logs.filter((l) => l.msg.startsWith('refused '));

describe('witness hardening', () => {
  describe('a fork attempt: 422 and evidence, and the witness keeps cosigning what is consistent', () => {
    let t: TestWitness;
    const honest = new FakeLog('example.com/forked').append(300);
    const fork = honest.fork(200, 150); // 350 leaves, diverged after 200, same key
    before(async () => {
      t = makeWitness();
      t.store.addLog(honest.origin, honest.vkey, null, 0);
      assert.equal((await request(t.app).post('/add-checkpoint').send(honest.addCheckpointBody(0, 300))).status, 200);
    });
    after(() => t.close());

    it('a larger checkpoint of the fork, with its own (valid-looking) proof from 300: 422, evidence stored and exposed', async () => {
      const before = refusals(t).length;
      const r = await request(t.app).post('/add-checkpoint').send(fork.addCheckpointBody(300, 350));
      assert.equal(r.status, 422, r.text);
      assert.match(r.text, /consistency proof/);
      assert.equal(refusals(t).length - before, 1, 'one refusal line');
      assert.match(refusals(t).at(-1)!.msg, /^refused POST \/add-checkpoint from \S+: 422 invalid_proof: /);
      assert.ok(t.logs.some((l) => l.level === 'error' && /FORK DETECTED \(evidence #1 at \/v1\/evidence\/1/.test(l.msg)));
      const list = await request(t.app).get('/v1/evidence');
      assert.equal(list.status, 200);
      assert.equal(list.body.evidence.length, 1);
      const s = verifyEvidence(parseEvidence(list.body.evidence[0].evidence), parseVerifierKey(honest.vkey));
      assert.equal(s.kind, 'inconsistent');
      assert.deepEqual(s.sizes, [300, 350]);
      const one = await request(t.app).get('/v1/evidence/1').buffer(true).parse((res, cb) => {
        let d = '';
        res.on('data', (c: Buffer) => (d += c.toString()));
        res.on('end', () => cb(null, d));
      });
      assert.equal(one.status, 200);
      assert.equal(one.body, list.body.evidence[0].evidence);
    });

    it('the same fork attempt again: 422 again, no second evidence row', async () => {
      assert.equal((await request(t.app).post('/add-checkpoint').send(fork.addCheckpointBody(300, 350))).status, 422);
      assert.equal(t.store.listEvidence().length, 1);
    });

    it('afterwards a checkpoint consistent with what it cosigned IS cosigned (200), and the fork branch is still refused', async () => {
      const honest400 = new FakeLog('example.com/forked').append(400);
      const ok = await request(t.app).post('/add-checkpoint').send(honest400.addCheckpointBody(300, 400));
      assert.equal(ok.status, 200, ok.text);
      assert.match(ok.text, /^— witness\.test\/w1 /);
      assert.equal(t.store.latest(honest.origin)!.treeSize, 400);
      const fork500 = honest.fork(200, 300); // the fork grown to 500: consistent with the fork's 400, not the honest one
      const refused = await request(t.app).post('/add-checkpoint').send(fork500.addCheckpointBody(400, 500));
      assert.equal(refused.status, 422, refused.text);
      const sameSize = await request(t.app).post('/add-checkpoint').send(fork500.addCheckpointBody(400, 400));
      assert.equal(sameSize.status, 422, 'same size, different root');
      assert.equal(t.store.latest(honest.origin)!.treeSize, 400);
      assert.ok(t.store.latest(honest.origin)!.root.equals(honest400.rootAt(400)));
      assert.equal(t.store.listEvidence().length, 3, 'each distinct fork checkpoint is recorded once');
      // And the honest log goes on being cosigned.
      const honest450 = new FakeLog('example.com/forked').append(450);
      assert.equal((await request(t.app).post('/add-checkpoint').send(honest450.addCheckpointBody(400, 450))).status, 200);
    });
  });

  describe('POST /v1/gossip with an old checkpoint: cached, single-flight, rate-limited', () => {
    const honest = new FakeLog('example.com/gossip-cost').append(1000);
    let server: Awaited<ReturnType<typeof serveLogs>>;
    let t: TestWitness;
    beforeEach(async () => {
      server = await serveLogs({ '': () => honest });
      t = makeWitness();
      t.store.addLog(honest.origin, honest.vkey, server.url, 0);
      await t.witness.addCheckpoint(honest.addCheckpointBody(0, 1000));
    });
    afterEach(async () => {
      t.close();
      await server.close();
    });
    const roomy = () => createApp({ witness: t.witness, gossipLimiter: new RateLimiter({ rate: 1000, burst: 1000 }) });

    it('20 sequential requests with the same old checkpoint: one round of tile fetches', async () => {
      const app = roomy();
      const first = await request(app).post('/v1/gossip').send(honest.checkpoint(333));
      assert.equal(first.status, 200);
      assert.equal(first.body.result, 'consistent', first.body.reason);
      const round = server.requests.length;
      assert.ok(round >= 1 && round <= 12, `one round: ${round} requests`);
      for (let i = 0; i < 20; i++) {
        const r = await request(app).post('/v1/gossip').send(honest.checkpoint(333));
        assert.equal(r.body.result, 'consistent');
      }
      assert.equal(server.requests.length, round, `requests: ${server.requests.join(' ')}`);
    });

    it('20 concurrent requests with the same old checkpoint: still at most one round', async () => {
      const app = roomy();
      // Measure one round on a separate witness first (same log, same sizes).
      const probe = makeWitness();
      try {
        probe.store.addLog(honest.origin, honest.vkey, server.url, 0);
        await probe.witness.addCheckpoint(honest.addCheckpointBody(0, 1000));
        await probe.witness.checkCheckpoint(honest.checkpoint(555), 'probe');
      } finally {
        probe.close();
      }
      const round = server.requests.length;
      server.requests.length = 0;
      const rs = await Promise.all(Array.from({ length: 20 }, () => request(app).post('/v1/gossip').send(honest.checkpoint(555))));
      for (const r of rs) assert.equal(r.body.result, 'consistent');
      assert.ok(server.requests.length <= round, `${server.requests.length} requests for 20 concurrent gossips (one round: ${round})`);
    });

    it('a flood from one client gets 429 with Retry-After and a JSON error, before its body is read; the clock refills it', async () => {
      const app = createApp({ witness: t.witness, gossipLimiter: new RateLimiter({ rate: 1, burst: 5 }) });
      const statuses: number[] = [];
      let limited: request.Response | undefined;
      for (let i = 0; i < 12; i++) {
        const r = await request(app).post('/v1/gossip').send(honest.checkpoint(700 + i));
        statuses.push(r.status);
        if (r.status === 429) limited ??= r;
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429, 429, 429]);
      assert.equal(limited!.headers['retry-after'], '1');
      assert.equal(limited!.body.error, 'rate_limited');
      assert.match(limited!.body.message, /too many gossip requests/);
      const lines = refusals(t).filter((l) => / 429 rate_limited: /.test(l.msg));
      assert.equal(lines.length, 7, 'one line per refused request');
      assert.ok(lines.every((l) => !l.msg.includes('\n')));
      t.clock.ms += 2000;
      assert.equal((await request(app).post('/v1/gossip').send(honest.checkpoint(800))).status, 200);
      // 5 distinct old checkpoints + the one after the refill: at most 6 rounds of fetches for 13 requests.
      assert.ok(server.requests.length <= 6 * 12);
    });

    it('proof fetches for gossip are bounded: beyond the cap a request gets 503 with Retry-After, never a hang', async () => {
      const slow: { release?: () => void } = {};
      const gate = new Promise<void>((r) => (slow.release = r));
      const w = makeWitness({
        fetch: (async (input: string | URL | Request, init?: RequestInit) => {
          await gate;
          return fetch(input, init);
        }) as typeof fetch,
      });
      try {
        w.store.addLog(honest.origin, honest.vkey, server.url, 0);
        await w.witness.addCheckpoint(honest.addCheckpointBody(0, 1000));
        const app = createApp({ witness: w.witness, gossipLimiter: new RateLimiter({ rate: 1000, burst: 1000 }) });
        const parked = [1, 2, 3, 4].map((i) => request(app).post('/v1/gossip').send(honest.checkpoint(100 + i)).then((r) => r));
        await new Promise((r) => setTimeout(r, 100));
        const over = await request(app).post('/v1/gossip').send(honest.checkpoint(200));
        assert.equal(over.status, 503);
        assert.equal(over.headers['retry-after'], '1');
        assert.equal(over.body.error, 'overloaded');
        slow.release!();
        for (const r of await Promise.all(parked)) assert.equal(r.body.result, 'consistent');
      } finally {
        slow.release!();
        w.close();
      }
    });
  });

  describe('endless and oversized bodies from a log or a peer are cut off at the cap', () => {
    let server: Server;
    let url: string;
    let written = 0;
    let closedEarly = 0;
    const honest = new FakeLog('example.com/endless').append(10);
    before(async () => {
      server = createServer((req, res) => {
        const path = req.url ?? '/';
        if (path.startsWith('/declared/')) {
          res.writeHead(200, { 'content-length': String(1 << 30) });
          res.write(Buffer.alloc(1024));
          return; // never finishes
        }
        // Endless chunked body: write as fast as the client reads.
        res.writeHead(200, { 'content-type': 'text/plain' });
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        const pump = () => {
          while (res.write(chunk)) {
            written += chunk.length;
            if (written > 512 * 1024 * 1024) return; // a safety net for the test itself
          }
          written += chunk.length;
          res.once('drain', pump);
        };
        res.on('close', () => {
          if (!res.writableFinished) closedEarly++;
        });
        pump();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });

    it('pull mode: an endless /checkpoint is cut off at the note size limit with a clear error', async () => {
      const t = makeWitness();
      try {
        t.store.addLog(honest.origin, honest.vkey, url, 0);
        const heap0 = process.memoryUsage().heapUsed;
        written = 0;
        await assert.rejects(t.witness.pull(t.store.getLog(honest.origin)!), (e: Error) => {
          assert.match(e.message, new RegExp(`${url}/checkpoint: response is over the ${MAX_NOTE_SIZE}-byte limit`));
          return true;
        });
        await new Promise((r) => setTimeout(r, 200));
        assert.ok(closedEarly >= 1, 'the connection was dropped');
        assert.ok(written < 64 * 1024 * 1024, `the log wrote ${written} bytes before being cut off`);
        assert.ok(process.memoryUsage().heapUsed - heap0 < 64 * 1024 * 1024, 'no memory growth beyond the cap');
      } finally {
        t.close();
      }
    });

    it('pull mode: a declared Content-Length over the cap is refused before reading', async () => {
      const t = makeWitness();
      try {
        t.store.addLog(honest.origin, honest.vkey, `${url}/declared`, 0);
        await assert.rejects(t.witness.pull(t.store.getLog(honest.origin)!), /checkpoint: response of 1073741824 bytes is over the 1048576-byte limit/);
      } finally {
        t.close();
      }
    });

    it('gossip with a peer: an endless checkpoint reply is cut off, and so is one declaring a huge length', async () => {
      await assert.rejects(fetchPeerCheckpoint({ url, vkey: 'unused' }, 'a'.repeat(64), fetch, 10_000), /response is over the 1048576-byte limit/);
      await assert.rejects(
        fetchPeerCheckpoint({ url: `${url}/declared`, vkey: 'unused' }, 'a'.repeat(64), fetch, 10_000),
        /response of 1073741824 bytes is over the 1048576-byte limit/,
      );
    });
  });

  describe('data dir and key file', () => {
    let first: ChildProcess | undefined;
    afterEach(() => {
      if (first !== undefined && first.exitCode === null) first.kill('SIGTERM');
      first = undefined;
    });

    it('a second witness process on the same data dir is refused with one clear line and exit status 1', async function () {
      this.timeout(60_000);
      const tmp = tempDir();
      try {
        const args = ['witness', '--data-dir', tmp.dir, '--listen', '127.0.0.1:0', '--name', 'witness.test/locked'];
        first = spawn(process.execPath, [PKGLOG_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        await new Promise<void>((resolve, reject) => {
          let out = '';
          first!.stdout!.on('data', (d: Buffer) => {
            out += d.toString();
            if (/listening on http:\/\/127\.0\.0\.1:\d+/.test(out)) resolve();
          });
          first!.once('exit', (code) => reject(new Error(`first witness exited with ${code}`)));
        });
        const second = spawn(process.execPath, [PKGLOG_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        let stdout = '';
        second.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        second.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
        const code = await new Promise<number | null>((r) => second.once('exit', (c) => r(c)));
        assert.equal(code, 1);
        assert.equal(stdout, '');
        const lines = stderr.split('\n').filter((l) => l !== '');
        assert.equal(lines.length, 1, stderr);
        assert.match(lines[0]!, /^pkglog witness: another pkglog witness is already running on data dir .* \(it holds .*witness\.lock\); stop it, or give this one another --data-dir$/);
        // The first one still works.
        assert.equal(first.exitCode, null);
      } finally {
        if (first !== undefined && first.exitCode === null) {
          const exited = new Promise((r) => first!.once('exit', r));
          first.kill('SIGTERM');
          await exited;
        }
        tmp.cleanup();
      }
    });

    it('the lock is released when the witness closes: the next one starts', async () => {
      const tmp = tempDir();
      try {
        const cfg = { dataDir: tmp.dir, listen: '127.0.0.1:0', name: 'witness.test/relock' };
        const a = await startWitness(cfg);
        await assert.rejects(startWitness(cfg), /already running on data dir/);
        await a.close();
        const b = await startWitness(cfg);
        await b.close();
      } finally {
        tmp.cleanup();
      }
    });

    it('a key file with mode 0644 is refused with a clear message (and nothing is changed)', async () => {
      const tmp = tempDir();
      try {
        const keyFile = join(tmp.dir, 'witness.key');
        writeFileSync(keyFile, formatSignerKey('witness.test/k', SIG_TYPE_COSIGNATURE_V1, seedFrom('k')) + '\n', { mode: 0o644 });
        chmodSync(keyFile, 0o644); // whatever the umask
        await assert.rejects(startWitness({ dataDir: tmp.dir, listen: '127.0.0.1:0' }), (e: Error) => {
          assert.equal(e.message, `key file ${keyFile} has mode 0644: group or others may read it; run "chmod 600 ${keyFile}" (and consider a new key if others could have read it)`);
          return true;
        });
        chmodSync(keyFile, 0o600);
        const w = await startWitness({ dataDir: tmp.dir, listen: '127.0.0.1:0' });
        assert.match(w.vkey, /^witness\.test\/k\+/);
        await w.close();
      } finally {
        tmp.cleanup();
      }
    });
  });

  describe('slow and greedy clients of a listening witness', () => {
    let tmp: ReturnType<typeof tempDir>;
    let w: RunningWitness;
    const logs: string[] = [];
    const log = new FakeLog('example.com/slow').append(5);
    before(async () => {
      tmp = tempDir();
      const s = WitnessStore.open(tmp.dir);
      s.addLog(log.origin, log.vkey, null, 0);
      s.close();
      w = await startWitness({
        dataDir: tmp.dir,
        listen: '127.0.0.1:0',
        name: 'witness.test/slow',
        log: (level, msg) => logs.push(`${level}: ${msg}`),
        limits: { headersTimeoutMs: 300, requestTimeoutMs: 600, maxConnectionsPerClient: 4 },
      });
    });
    after(async () => {
      await w.close();
      tmp.cleanup();
    });
    const port = () => Number(new URL(w.url).port);
    const open = () =>
      new Promise<Socket>((resolve, reject) => {
        const s = connect(port(), '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
    /** Everything the server sent until it closed the connection, and how long that took. */
    const untilClosed = (s: Socket) =>
      new Promise<{ data: string; ms: number }>((resolve) => {
        const t0 = Date.now();
        let data = '';
        s.on('data', (d: Buffer) => (data += d.toString()));
        s.on('error', () => {});
        s.once('close', () => resolve({ data, ms: Date.now() - t0 }));
      });

    it('slowloris: headers sent byte by byte are cut off after the headers timeout (408, connection closed)', async () => {
      const s = await open();
      const closed = untilClosed(s);
      const head = 'POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(1000);
      let i = 0;
      const timer = setInterval(() => {
        if (s.destroyed || i >= head.length) return clearInterval(timer);
        s.write(head[i++]!);
      }, 20);
      const r = await closed;
      clearInterval(timer);
      assert.match(r.data, /^HTTP\/1\.1 408 /);
      assert.ok(i < head.length, `disconnected after ${i} of ${head.length} bytes (${r.ms} ms)`);
      assert.ok(logs.some((l) => /refused a request from .*ERR_HTTP_REQUEST_TIMEOUT/.test(l)));
    });

    it('a slow body is cut off after the request timeout', async () => {
      const s = await open();
      const closed = untilClosed(s);
      s.write('POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n');
      let i = 0;
      const timer = setInterval(() => {
        if (s.destroyed || i >= 5000) return clearInterval(timer);
        s.write('o');
        i++;
      }, 20);
      const r = await closed;
      clearInterval(timer);
      assert.ok(i < 5000, `disconnected after ${i} body bytes (${r.ms} ms)`);
      assert.doesNotMatch(r.data, / 500 /);
    });

    it('a body declared over the limit is refused with 413 before it is sent, and the connection is closed', async () => {
      const s = await open();
      const closed = untilClosed(s);
      s.write('POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n');
      const r = await closed; // nothing of the body was sent
      assert.match(r.data, /^HTTP\/1\.1 413 /);
      assert.match(r.data, /connection: close/i);
      assert.ok(logs.some((l) => /refused POST \/add-checkpoint from \S+: 413 too_large: /.test(l)));
    });

    it('a chunked body over the limit is refused while streaming (413), never read to its end', async () => {
      const s = await open();
      const closed = untilClosed(s);
      s.write('POST /v1/gossip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = () => {
        while (!s.destroyed && sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!s.write(`${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n`)) return void s.once('drain', pump);
        }
      };
      s.on('error', () => {});
      pump();
      const r = await closed;
      assert.match(r.data, /^HTTP\/1\.1 413 /);
      assert.match(r.data, /"error":"too_large"/);
      assert.ok(sent < 32 * 1024 * 1024, `${sent} bytes sent before the witness closed the connection`);
    });

    it('connections per client are capped: the ones over the cap are closed at once, the others still work', async () => {
      const socks = await Promise.all(Array.from({ length: 4 }, open));
      const extra = await open().catch(() => undefined);
      if (extra !== undefined) {
        const r = await untilClosed(extra);
        assert.equal(r.data, '');
      }
      assert.ok(logs.some((l) => /refused a connection from .*: it already has 4 open \(limit 4\)/.test(l)));
      // One of the four answers a request.
      const s = socks[0]!;
      const closed = untilClosed(s);
      s.write('GET /vkey HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match((await closed).data, /^HTTP\/1\.1 200 /);
      for (const x of socks) x.destroy();
    });

    it('every refusal was logged as one line, and nothing was a 500 or a stack trace', () => {
      assert.ok(logs.length > 0);
      for (const l of logs) {
        assert.ok(!l.includes('\n'), l);
        assert.doesNotMatch(l, /\n\s+at /);
        assert.doesNotMatch(l, /: 500 /);
      }
    });
  });
});
