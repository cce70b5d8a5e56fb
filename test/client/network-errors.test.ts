/**
 * A server that closes or resets the client's connections: every request settles with one 'network' error, and
 * `pkglog audit` / `pkglog monitor` (real processes: the failure was a process exit) report it in one line and exit 7
 * (docs/errors.md), never 13 ("unsettled top-level await", no output) as they did with Node 20's fetch, which never
 * settles when the server closes a connection before the request is written.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { LogDouble, TestWitness, makeEntry, fileSha, REGISTRY_VKEY } from './log-double.ts';
import { runAsync, tempDir, writeFile } from './helpers.ts';
import { LogClient } from '../../client/http.ts';
import { request } from '../../runtime/http.ts';
import { PkglogError } from '../../core/errors.ts';

const T0 = 1_750_000_000;

type Mode = 'close-on-accept' | 'reset-on-accept' | 'reset-mid-body' | 'close-after-request';

/** A proxy in front of `target` that sabotages connection number ≥ `from` (1-based) the way `mode` says. */
async function saboteur(target: string, mode: Mode, from = 1) {
  const up = new URL(target);
  let connections = 0;
  const server = http.createServer((req, res) => {
    const fwd = http.request({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      const n = (req.socket as net.Socket & { n?: number }).n ?? 0;
      if (mode === 'reset-mid-body' && n >= from) {
        res.writeHead(r.statusCode!, r.headers);
        r.once('data', (d: Buffer) => {
          res.write(d.subarray(0, Math.max(1, d.length >> 1)));
          setTimeout(() => req.socket.resetAndDestroy(), 10);
        });
        return;
      }
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  server.on('connection', (socket: net.Socket & { n?: number }) => {
    socket.n = ++connections;
    if (socket.n < from) return;
    if (mode === 'close-on-accept') socket.destroy();
    else if (mode === 'reset-on-accept') socket.resetAndDestroy();
    else if (mode === 'close-after-request') socket.once('data', () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

describe('client: a server that closes or resets connections', function () {
  this.timeout(60_000);
  let log: LogDouble;
  let tmp: { dir: string; cleanup(): void };
  before(async () => {
    tmp = tempDir('pkglog-neterr-test-');
    log = new LogDouble();
    log.witnesses = [new TestWitness('w0.test', T0)];
    await log.listen();
    log.append(Array.from({ length: 600 }, (_, i) => makeEntry({ ecosystem: 'pypi', name: `p${i % 7}`, version: `1.${i}`, filename: `p-${i}.tar.gz`, sha256: fileSha(`n${i}`) }, T0 * 1000)));
    log.publish();
  });
  after(async () => {
    await log.close();
    tmp.cleanup();
  });

  for (const mode of ['close-on-accept', 'reset-on-accept', 'close-after-request', 'reset-mid-body'] as const) {
    it(`request() settles with a 'network' error at once (${mode})`, async () => {
      const s = await saboteur(log.url, mode);
      try {
        const t0 = Date.now();
        // A 60 s timeout: the error must come from the closed connection, not from the timeout.
        await assert.rejects(new LogClient(s.url, { timeoutMs: 60_000 }).checkpoint(), (e: unknown) => {
          assert.ok(e instanceof PkglogError, String(e));
          assert.equal(e.code, 'network');
          assert.match(e.message, new RegExp(`${s.url}/checkpoint`));
          assert.doesNotMatch(e.message, /timed out/);
          return true;
        });
        assert.ok(Date.now() - t0 < 30_000, 'not the timeout');
        // and a POST (gossip, submissions) alike
        await assert.rejects(request(`${s.url}/w/w0.test/v1/gossip`, { method: 'POST', body: log.latest }, { timeoutMs: 60_000 }), /network|cannot reach|closed/);
      } finally {
        await s.close();
      }
    });
  }

  const cases: Array<[string, Mode, number]> = [
    ['audit', 'close-on-accept', 1],
    ['monitor', 'close-on-accept', 1],
    ['audit', 'reset-on-accept', 2],
    ['monitor', 'reset-mid-body', 2],
    ['audit', 'reset-mid-body', 3],
  ];
  for (const [cmd, mode, from] of cases) {
    it(`pkglog ${cmd} (real process) reports one network error and exits 7 (${mode} from connection ${from})`, async () => {
      const s = await saboteur(log.url, mode, from);
      try {
        const policy = writeFile(tmp.dir, `policy-${cmd}-${mode}-${from}`, log.policy().replaceAll(log.url, s.url));
        const state = join(tmp.dir, `state-${cmd}-${mode}-${from}`);
        const r = await runAsync([cmd, '--log', s.url, '--policy', policy, '--registry-key', REGISTRY_VKEY, '--state-dir', state]);
        const all = r.stdout + r.stderr;
        assert.equal(r.code, 7, `exit ${r.code}: ${all}`);
        const failures = all.split('\n').filter((l) => /FAIL/.test(l) && !/^FAILED/.test(l));
        assert.equal(failures.length, 1, all);
        assert.match(failures[0]!, new RegExp(`network: .*${s.url}/`));
        assert.doesNotMatch(all, /at .*\.(ts|js):\d+/, 'no stack trace');
        const json = await runAsync([cmd, '--log', s.url, '--policy', policy, '--registry-key', REGISTRY_VKEY, '--state-dir', state, '--json']);
        assert.equal(json.code, 7, json.stdout + json.stderr);
        const j = JSON.parse(json.stdout);
        assert.equal(j.exitCode, 7);
      } finally {
        await s.close();
      }
    });
  }
});
